"""Filters and sorting of :class:`~scim2_core_django.backend.DjangoModelBackend`: the
expressions of :func:`scim2_core.mapping.translate` compiled into Django ``Q`` objects,
subqueries and ``ORDER BY`` values, so that nothing is filtered in Python.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import (  # type: ignore[import-untyped]
    ValidationError,
)
from django.db import connections, models  # type: ignore[import-untyped]
from django.db.models import Exists, F, OuterRef, Q, Subquery, Value  # type: ignore[import-untyped]
from django.db.models import lookups as lk
from django.db.models.functions import (  # type: ignore[import-untyped]
    Cast,
    Coalesce,
    Collate,
    Left,
    Length,
    Lower,
    NullIf,
    Right,
    StrIndex,
)

from scim2_core.filter import Untranslatable
from scim2_core.mapping import (
    ELEMENT,
    AllOf,
    AnyElement,
    AnyMember,
    AnyOf,
    Assigned,
    Cmp,
    Column,
    Const,
    ElementSort,
    ElementSub,
    Expr,
    LeafValue,
    MemberValue,
    MetaValue,
    Negate,
    Present,
    element_where,
)
from scim2_core.schema import Attribute

from ._backend_core import _Core
from ._backend_types import _INTEGER_PKS, _TEXT_FIELDS, _UNSET, _marker_column, _split_key, _Type


class _Filters(_Core):
    """Compiling filter and sort expressions into the ORM's."""

    def _collate(self, expr: Any) -> Any:
        # Code point order, as Python orders strings (RFC 7644 §3.4.2.2 "lexicographical").
        if connections[self.using].vendor == "postgresql":
            return Collate(expr, "C")
        return expr

    def _column(self, t: _Type, target: Column, depth: int) -> tuple[Any, Any, bool]:
        """``(expression, field, nullable)`` of a mapped field at ``depth`` (0: the app's
        row; 1: inside a subquery on the value index or the relation)."""
        field = t.fields[target.field]
        name = target.field if depth == 0 else f"_o_{target.field}"
        return F(name), field, field.null

    def _string_test(self, lhs: Any, op: str, value: str, exact: bool) -> Any:
        """A comparison of text ``lhs`` with ``value``, honouring caseExact (RFC 7643 §2.1:
        "caseExact" decides whether "string comparisons [are] case sensitive")."""
        if not exact:
            lhs, value = Lower(lhs), value.lower()
        lit = Value(value, output_field=models.TextField())
        if op == "eq":
            return lk.Exact(lhs, lit)
        if op == "ne":
            return ~Q(lk.Exact(lhs, lit))
        if op in ("co", "sw", "ew") and not value:
            return lk.IsNull(lhs, False)  # every string has the empty string in it
        if op == "co":
            return lk.GreaterThan(StrIndex(lhs, lit), 0)
        if op == "sw":
            return lk.Exact(Left(lhs, len(value)), lit)
        if op == "ew":
            return Q(lk.Exact(Right(lhs, len(value)), lit)) & Q(
                lk.GreaterThanOrEqual(Length(lhs), len(value))
            )
        order = {"gt": lk.GreaterThan, "ge": lk.GreaterThanOrEqual, "lt": lk.LessThan}
        cls = order.get(op, lk.LessThanOrEqual)
        return cls(self._collate(lhs), self._collate(lit))

    def _plain_test(self, lhs: Any, op: str, value: Any) -> Any:
        if op == "eq":
            return lk.Exact(lhs, value)
        if op == "ne":
            return ~Q(lk.Exact(lhs, value))
        order = {
            "gt": lk.GreaterThan,
            "ge": lk.GreaterThanOrEqual,
            "lt": lk.LessThan,
            "le": lk.LessThanOrEqual,
        }
        if op not in order:
            raise Untranslatable(f"Operator {op!r} does not apply to this attribute.")
        return order[op](lhs, value)

    def _column_test(self, t: _Type, test: Cmp | Assigned | Present, depth: int) -> Q:
        target = test.target
        assert isinstance(target, Column)
        lhs, field, _nullable = self._column(t, target, depth)
        text = field.get_internal_type() in _TEXT_FIELDS
        guard = Q(lk.IsNull(lhs, False))
        if text:
            guard &= ~Q(lk.Exact(lhs, ""))
        elif depth == 0 and field.has_default() and not field.null:
            # The field holds the default it got for an unassigned attribute (_visible).
            unset = self._value.objects.using(self.using).filter(
                resource__resource_type=t.name,
                resource__object_pk=OuterRef("_pk_text"),
                key=_UNSET,
                sub=target.field,
                **{_marker_column(field): OuterRef(target.field)},
            )
            guard &= ~Q(Exists(unset))
        if isinstance(test, (Assigned, Present)):
            return guard
        attr = target.attribute
        bound = next((f for f in t.bound.fields if f.field == target.field), None)
        value: Any = test.value
        if bound is not None and bound.to_model is not None:
            value = bound.to_model(value)
        if attr.type in ("string", "reference", "binary") and isinstance(value, str):
            if not text:
                lhs = Cast(lhs, models.TextField())
            exact = attr.case_exact or attr.type == "binary"
            found = guard & Q(self._string_test(lhs, test.op, value, exact))
            if depth == 0 and test.op == "eq" and isinstance(test.value, str):
                found &= self._unique_probe(t, target.field, test.value)
            return found
        if attr.type == "boolean" and not isinstance(value, bool):
            return Q(pk__in=[])
        try:
            value = field.to_python(value)
        except (ValidationError, TypeError, ValueError):
            return Q(pk__in=[])
        return guard & Q(self._plain_test(lhs, test.op, value))

    def _unique_probe(self, t: _Type, field: str, value: str) -> Q:
        """For ``eq`` on a unique attribute's field: the rows whose value the unique
        index holds (one index probe; a caseExact=false comparison on the app's column
        cannot use the column's index). The column's own test still decides; the index is
        kept by every SCIM write and by the app's saves (``post_save``)."""
        unique = next((u for u in t.uniques if u.field == field), None)
        if unique is None or t.model._meta.pk.get_internal_type() not in _INTEGER_PKS:
            return Q()
        key = value if unique.ref.target.case_exact else value.lower()
        probe = (
            self._unique.objects.using(self.using)
            .filter(resource_type=t.name, attribute=unique.label, value=key[:255])
            .annotate(_pk=Cast("resource__object_pk", models.BigIntegerField()))
            .values("_pk")
        )
        return Q(pk__in=Subquery(probe))

    def _leaf_test(self, attr: Attribute, test: Cmp | Assigned | Present) -> Q:
        """The test on one row of the value index."""
        if isinstance(test, Assigned):
            return Q()
        if isinstance(test, Present):
            return ~Q(text="") | Q(text__isnull=True)
        value = test.value
        t = attr.type
        if t == "boolean":
            if not isinstance(value, bool):
                return Q(pk__in=[])
            return Q(flag=value) if test.op == "eq" else Q(flag=(not value))
        if t in ("integer", "decimal"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return Q(pk__in=[])
            return Q(number__isnull=False) & Q(self._plain_test(F("number"), test.op, value))
        if not isinstance(value, str):
            return Q(pk__in=[])
        exact = attr.case_exact or t in ("binary", "dateTime")
        column = "text" if exact else "folded"
        lit = value if exact else value.lower()
        return Q(**{f"{column}__isnull": False}) & Q(
            self._string_test(F(column), test.op, lit, True)
        )

    def _meta_test(self, t: _Type, test: Cmp | Assigned | Present, depth: int) -> Q:
        target = test.target
        assert isinstance(target, MetaValue)
        columns = {"id": "scim_id", "created": "created", "lastModified": "last_modified"}
        if target.name not in columns:
            raise Untranslatable(f"This backend cannot filter on meta.{target.name}.")
        if isinstance(test, (Assigned, Present)):
            return Q(pk__isnull=False)
        if not isinstance(test.value, str):
            return Q(pk__in=[])
        rows = self._resource.objects.using(self.using).filter(
            Q(resource_type=t.name, object_pk=OuterRef("_pk_text"), deleted=False)
            & Q(self._string_test(F(columns[target.name]), test.op, test.value, True))
        )
        return Q(Exists(rows))

    # A dispatch over every node kind of scim2_core.mapping's expressions, one branch each,
    # as the SQLAlchemy compiler has: the list of kinds is the reason for its length.
    def _q(self, t: _Type, expr: Expr, depth: int, key: str = "") -> Q:  # noqa: C901
        """Compile an expression of :mod:`scim2_core.mapping` into a ``Q``.

        Every leaf is two-valued (guards against NULL, or ``EXISTS``), so SQL's ``NOT``
        agrees with the filter's ``not``.
        """
        if isinstance(expr, Const):
            return Q(pk__isnull=False) if expr.value else Q(pk__in=[])
        if isinstance(expr, AllOf):
            out = Q()
            for item in expr.items:
                out &= self._q(t, item, depth, key)
            return out
        if isinstance(expr, AnyOf):
            out = Q(pk__in=[])
            for item in expr.items:
                out |= self._q(t, item, depth, key)
            return out
        if isinstance(expr, Negate):
            return ~self._q(t, expr.item, depth, key)
        if isinstance(expr, AnyElement):
            groups = t.bound.groups_of(*_split_key(t, expr.key))
            rows = self._value.objects.using(self.using).filter(
                resource__resource_type=t.name,
                resource__object_pk=OuterRef("_pk_text"),
                resource__deleted=False,
                key=expr.key,
                sub=ELEMENT,
            )
            outer = {f"_o_{f.field}": OuterRef(f.field) for g in groups for f in g.fields}
            if outer:
                rows = rows.annotate(**outer)
            return Q(Exists(rows.filter(self._q(t, expr.inner, 1, expr.key))))
        if isinstance(expr, AnyMember):
            rel = t.relation
            assert rel is not None
            links = (
                rel.through.objects.using(self.using)
                .filter(**{rel.group_col: OuterRef("pk")})
                .annotate(_m=Cast(rel.member_col, models.CharField()))
            )
            return Q(Exists(links.filter(self._q(t, expr.inner, 1))))
        target = expr.target
        if isinstance(target, Column):
            return self._column_test(t, expr, depth)
        if isinstance(target, MetaValue):
            return self._meta_test(t, expr, depth)
        if isinstance(target, LeafValue):
            rows = self._value.objects.using(self.using).filter(
                resource__resource_type=t.name,
                resource__object_pk=OuterRef("_pk_text"),
                resource__deleted=False,
                key=target.key,
            )
            if target.sub == "*":
                rows = rows.exclude(sub=ELEMENT).exclude(sub="")
            else:
                rows = rows.filter(sub=target.sub)
            return Q(Exists(rows.filter(self._leaf_test(target.attribute, expr))))
        if isinstance(target, ElementSub):
            rows = self._value.objects.using(self.using).filter(
                resource_id=OuterRef("resource_id"),
                index=OuterRef("index"),
                key=key,
                sub=target.sub,
            )
            return Q(Exists(rows.filter(self._leaf_test(target.attribute, expr))))
        assert isinstance(target, MemberValue)
        rel = t.relation
        assert rel is not None
        if isinstance(expr, (Assigned, Present)):
            test = Q()
        elif isinstance(expr.value, str):
            exact = target.attribute.case_exact
            test = Q(self._string_test(F("scim_id"), expr.op, expr.value, exact))
        else:
            return Q(pk__in=[])
        ids = self._resource.objects.using(self.using).filter(
            resource_type=rel.member_type, object_pk=OuterRef("_m"), deleted=False
        )
        return Q(Exists(ids.filter(test)))

    def _sort_expr(self, t: _Type, target: Any) -> Any:
        """The ``ORDER BY`` value of ``sortBy`` (RFC 7644 §3.4.2.3): strings folded unless
        caseExact, in code point order; NULL where the resource has no value."""
        if isinstance(target, MetaValue):
            columns = {"id": "scim_id", "created": "created", "lastModified": "last_modified"}
            if target.name not in columns:
                raise Untranslatable(f"This backend cannot sort by meta.{target.name}.")
            live = self._resource.objects.using(self.using).filter(
                resource_type=t.name, object_pk=OuterRef("_pk_text"), deleted=False
            )
            return self._collate(Subquery(live.values(columns[target.name])[:1]))
        if isinstance(target, Column):
            value = self._column_sort(t, target, F(target.field))
            field = t.fields[target.field]
            if field.get_internal_type() not in _TEXT_FIELDS and field.has_default():
                # A field holding the default it got for an unassigned attribute sorts as
                # a missing value.
                unset = self._value.objects.using(self.using).filter(
                    resource__resource_type=t.name,
                    resource__object_pk=OuterRef("_pk_text"),
                    key=_UNSET,
                    sub=target.field,
                    **{_marker_column(field): OuterRef(target.field)},
                )
                value = models.Case(
                    models.When(Exists(unset), then=Value(None)),
                    default=value,
                    output_field=field.__class__(),
                )
            return value
        if isinstance(target, LeafValue):
            rows = self._value.objects.using(self.using).filter(
                resource__resource_type=t.name,
                resource__object_pk=OuterRef("_pk_text"),
                resource__deleted=False,
                key=target.key,
                sub=target.sub,
            )
            column = _leaf_sort_column(target.attribute)
            return self._collate(Subquery(rows.order_by("index").values(column)[:1]))
        assert isinstance(target, ElementSort)
        column = _leaf_sort_column(target.attribute)
        # The primary element, else the first: its own value, or the field's for the
        # element a field holds.
        elements = self._value.objects.using(self.using).filter(
            resource__resource_type=t.name,
            resource__object_pk=OuterRef("_pk_text"),
            resource__deleted=False,
            key=target.key,
            sub=ELEMENT,
        )
        own = self._value.objects.using(self.using).filter(
            resource_id=OuterRef("resource_id"),
            index=OuterRef("index"),
            key=target.key,
            sub=target.sub,
        )
        primary = self._value.objects.using(self.using).filter(
            resource_id=OuterRef("resource_id"),
            index=OuterRef("index"),
            key=target.key,
            sub="primary",
            flag=True,
        )
        candidates: list[Any] = [Subquery(own.values(column)[:1])]
        for group, col in target.fields:
            where = self._q(t, element_where(group), 1, target.key)
            outer = OuterRef(col.field)
            elements = elements.annotate(**{f"_o_{col.field}": outer})
            value = self._column_sort(t, col, F(f"_o_{col.field}"))
            candidates.append(
                models.Case(
                    models.When(where, then=value),
                    default=Value(None),
                    output_field=_sort_output(target.attribute),
                )
            )
        out_field = _sort_output(target.attribute)
        chosen = elements.annotate(
            _v=Coalesce(*candidates, output_field=out_field)
            if len(candidates) > 1
            else candidates[0],
            _p=Exists(primary),
        ).order_by("-_p", "index")
        value = Subquery(chosen.values("_v")[:1])
        fallbacks = [self._column_sort(t, col, F(col.field)) for _, col in target.fields]
        if fallbacks:
            value = Coalesce(value, *fallbacks, output_field=out_field)
        return self._collate(value)

    def _column_sort(self, t: _Type, target: Column, ref: Any) -> Any:
        field = t.fields[target.field]
        attr = target.attribute
        if field.get_internal_type() in _TEXT_FIELDS:
            folded = ref if attr.case_exact else Lower(ref)
            return NullIf(folded, Value(""))
        return ref


def _sort_output(attr: Attribute) -> Any:
    if attr.type == "boolean":
        return models.BooleanField()
    if attr.type in ("integer", "decimal"):
        return models.FloatField()
    return models.TextField()


def _leaf_sort_column(attr: Attribute) -> str:
    if attr.type == "boolean":
        return "flag"
    if attr.type in ("integer", "decimal"):
        return "number"
    return "text" if attr.case_exact or attr.type in ("binary", "dateTime") else "folded"
