"""Compiling :mod:`scim2_core.mapping` expressions into SQLAlchemy Core.

The SCIM semantics (``ne`` and unassigned values, ``pr``, value paths, the element a column
holds) were decided by :func:`scim2_core.mapping.translate`; here every node becomes a
two-valued SQL condition (leaves are guarded against NULL or are ``EXISTS``), so that SQL's
``NOT`` agrees with the filter's ``not``. Strings honour ``caseExact`` in the database
(``lower()`` on both sides otherwise; the value index stores Python-lowercased text) and
order by code point (``COLLATE "C"`` on PostgreSQL; SQLite's BINARY already does).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any, Final

import sqlalchemy as sa

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
from scim2_core.schema import Attribute, parse_datetime

from ._backend_tables import Tables
from ._models import ModelType, Unique

#: The extras' key recording columns given their default for an unassigned attribute.
UNSET: Final = "$unset"

_META_COLUMNS: Final = {"id": "scim_id", "created": "created", "lastModified": "last_modified"}

Cond = sa.ColumnElement[bool]


def is_text(col: sa.Column[Any]) -> bool:
    return isinstance(col.type, sa.String)


def marker_column(col: sa.Column[Any]) -> str:
    """The value index's column that holds a default of ``col`` (see ``UNSET``)."""
    if isinstance(col.type, sa.Boolean):
        return "flag"
    if is_text(col):
        return "text"
    return "number"


def leaf_sort_column(attr: Attribute) -> str:
    if attr.type == "boolean":
        return "flag"
    if attr.type in ("integer", "decimal"):
        return "number"
    return "text" if attr.case_exact or attr.type in ("binary", "dateTime") else "folded"


class Compiler:
    """Compiles expressions over one backend's tables for one dialect."""

    def __init__(self, tables: Tables, dialect: str) -> None:
        self.t = tables
        self.pg = dialect == "postgresql"

    # -- plumbing --------------------------------------------------------------------------

    def owner(self, mt: ModelType, r: Any, pk: Any) -> Cond:
        """Bookkeeping row ``r`` belongs to the app row whose primary key is ``pk``."""
        on = r.c.resource_type == mt.name
        if mt.int_pk:
            return sa.and_(on, r.c.object_int == pk)
        return sa.and_(on, r.c.object_pk == sa.cast(pk, sa.String))

    def collate(self, expr: Any) -> Any:
        # Code point order, as Python orders strings (RFC 7644 §3.4.2.2 "lexicographical").
        return sa.collate(expr, "C") if self.pg else expr

    def string_test(self, lhs: Any, op: str, value: str, exact: bool) -> Cond:
        """A comparison of text ``lhs`` with ``value``, honouring caseExact (RFC 7643 §2.1:
        "caseExact" decides whether "string comparisons [are] case sensitive")."""
        if not exact:
            lhs, value = sa.func.lower(lhs), value.lower()
        lit = sa.literal(value, sa.Text())
        if op == "eq":
            return lhs == lit  # type: ignore[no-any-return]
        if op == "ne":
            return lhs != lit  # type: ignore[no-any-return]
        if op in ("co", "sw", "ew") and not value:
            return lhs.isnot(None)  # type: ignore[no-any-return]
        n = len(value)
        if op == "co":
            # instr/strpos, not LIKE: SQLite's LIKE ignores ASCII case.
            pos = sa.func.strpos(lhs, lit) if self.pg else sa.func.instr(lhs, lit)
            return pos > 0
        if op == "sw":
            return sa.func.substr(lhs, 1, n) == lit
        if op == "ew":
            length = sa.func.length(lhs)
            return sa.and_(length >= n, sa.func.substr(lhs, length - n + 1) == lit)
        left, right = self.collate(lhs), self.collate(lit)
        return _order(left, op, right)

    # -- leaves ----------------------------------------------------------------------------

    def column_test(self, mt: ModelType, r: Any, test: Cmp | Assigned | Present) -> Cond:
        target = test.target
        assert isinstance(target, Column)
        col = mt.columns[target.field]
        text = is_text(col)
        guard: Cond = col.isnot(None)
        if text:
            guard = sa.and_(guard, col != "")
        elif not col.nullable and col.default is not None:
            # The column holds the default it got for an unassigned attribute.
            v = self.t.value.alias()
            unset = sa.select(sa.literal(1)).where(
                v.c.resource_id == r.c.id,
                v.c.key == UNSET,
                v.c.sub == target.field,
                v.c[marker_column(col)] == col,
            )
            guard = sa.and_(guard, ~sa.exists(unset))
        if isinstance(test, (Assigned, Present)):
            return guard
        attr = target.attribute
        bound = next((f for f in mt.bound.fields if f.field == target.field), None)
        value: Any = test.value
        if bound is not None and bound.to_model is not None:
            try:
                value = bound.to_model(value)
            except Exception:  # a value the converter refuses is in no row
                return sa.false()
        if attr.type in ("string", "reference", "binary") and isinstance(value, str):
            lhs: Any = col if text else sa.cast(col, sa.Text)
            exact = attr.case_exact or attr.type == "binary"
            return sa.and_(guard, self.string_test(lhs, test.op, value, exact))
        if attr.type == "boolean" and not isinstance(value, bool):
            return sa.false()
        python = _python_value(col, value)
        if python is None:
            return sa.false()
        if test.op in ("co", "sw", "ew"):
            raise Untranslatable(f"Operator {test.op!r} does not apply to this attribute.")
        return sa.and_(guard, _order(col, test.op, sa.literal(python, col.type)))

    def _probe_unique(self, mt: ModelType, test: Cmp | Assigned | Present) -> Unique | None:
        """The unique attribute of an ``eq`` that :meth:`unique_probe` can answer with an
        index probe (a string value a unique column holds without converter), else None.
        Builds no statement: :meth:`unique_eq` asks it on every ``userName eq``."""
        if not isinstance(test, Cmp) or test.op != "eq" or not isinstance(test.value, str):
            return None
        assert isinstance(test.target, Column)
        field = test.target.field
        u = next((u for u in mt.uniques if u.field == field), None)
        if u is None or len(test.value) > 255:
            return None
        bound = next((f for f in mt.bound.fields if f.field == field), None)
        if bound is None or bound.to_model is not None:
            return None
        return u

    def unique_probe(self, mt: ModelType, r: Any, test: Cmp | Assigned | Present) -> Any:
        """For ``eq`` on a unique attribute a column holds (``userName``): the rows whose
        value is in the unique index, one index probe instead of a scan of the app's table
        (the column is tested as well). None where it does not apply."""
        u = self._probe_unique(mt, test)
        if u is None:
            return None
        assert isinstance(test, Cmp)
        assert isinstance(test.value, str)
        key = test.value if u.ref.target.case_exact else test.value.lower()
        ut = self.t.unique
        ids = sa.select(ut.c.resource_id).where(
            ut.c.resource_type == mt.name, ut.c.attribute == u.label, ut.c.value == key
        )
        # At most one row (a unique constraint): a rowid probe, not a scan.
        return r.c.id == ids.scalar_subquery()

    def unique_eq(
        self, mt: ModelType, r: Any, expr: Expr
    ) -> tuple[str, Callable[[], Cond], dict[str, Any], tuple[bool, bool]] | None:
        """A filter that is only ``eq`` on a unique text column without converter (an
        IdP's ``userName eq "..."``) as ``(field, condition, parameters, exact)``:
        ``condition()`` builds what :meth:`cond` builds for it (the unique probe, the
        guard, the comparison) with the value as the bind parameters ``key`` and
        ``value``, the same for every value, so that its statement is built and compiled
        once per field; ``exact`` says whether each of the two is the value as given
        (else lowercased: RFC 7643 §2.2 ``caseExact`` false). None for any other filter."""
        if not isinstance(expr, Cmp) or not isinstance(expr.target, Column):
            return None
        u = self._probe_unique(mt, expr)
        if u is None:
            return None
        field = expr.target.field
        col = mt.columns[field]
        attr = expr.target.attribute
        if not is_text(col) or attr.type not in ("string", "reference"):
            return None
        value = expr.value
        assert isinstance(value, str)
        exact = attr.case_exact
        params = {
            "key": value if u.ref.target.case_exact else value.lower(),
            "value": value if exact else value.lower(),
        }

        def condition() -> Cond:
            ut = self.t.unique
            ids = sa.select(ut.c.resource_id).where(
                ut.c.resource_type == mt.name,
                ut.c.attribute == u.label,
                ut.c.value == sa.bindparam("key", type_=sa.Text()),
            )
            lhs = col if exact else sa.func.lower(col)
            return sa.and_(
                r.c.id == ids.scalar_subquery(),
                col.isnot(None),
                col != "",
                lhs == sa.bindparam("value", type_=sa.Text()),
            )

        return field, condition, params, (u.ref.target.case_exact, exact)

    def leaf_test(self, v: Any, attr: Attribute, test: Cmp | Assigned | Present) -> Cond:
        """The test on one row ``v`` of the value index."""
        if isinstance(test, Assigned):
            return sa.true()
        if isinstance(test, Present):
            return sa.or_(v.c.text != "", v.c.text.is_(None))
        value = test.value
        kind = attr.type
        if kind == "boolean":
            if not isinstance(value, bool):
                return sa.false()
            want = value if test.op == "eq" else not value
            return v.c.flag == want  # type: ignore[no-any-return]
        if kind in ("integer", "decimal"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return sa.false()
            number = v.c.number
            return sa.and_(number.isnot(None), _order(number, test.op, float(value)))
        if not isinstance(value, str):
            return sa.false()
        exact = attr.case_exact or kind in ("binary", "dateTime")
        column = v.c.text if exact else v.c.folded
        lit = value if exact else value.lower()
        return sa.and_(column.isnot(None), self.string_test(column, test.op, lit, True))

    def meta_test(self, r: Any, test: Cmp | Assigned | Present) -> Cond:
        target = test.target
        assert isinstance(target, MetaValue)
        if target.name not in _META_COLUMNS:
            raise Untranslatable(f"This backend cannot filter on meta.{target.name}.")
        if isinstance(test, (Assigned, Present)):
            return sa.true()
        if not isinstance(test.value, str):
            return sa.false()
        return self.string_test(r.c[_META_COLUMNS[target.name]], test.op, test.value, True)

    # -- the tree --------------------------------------------------------------------------

    def cond(
        self, mt: ModelType, r: Any, expr: Expr, element: Any = None, link: Any = None
    ) -> Cond:
        """``expr`` as a condition on the app's row (``mt.table``) and its bookkeeping row
        ``r``; inside :class:`AnyElement`, ``element`` is the element's row of the value
        index, inside :class:`AnyMember` ``link`` the association table's row."""
        if isinstance(expr, Const):
            return sa.true() if expr.value else sa.false()
        if isinstance(expr, AllOf):
            return sa.and_(*(self.cond(mt, r, i, element, link) for i in expr.items))
        if isinstance(expr, AnyOf):
            return sa.or_(*(self.cond(mt, r, i, element, link) for i in expr.items))
        if isinstance(expr, Negate):
            return sa.not_(self.cond(mt, r, expr.item, element, link))
        if isinstance(expr, AnyElement):
            e = self.t.value.alias()
            rows = sa.select(sa.literal(1)).where(
                e.c.resource_id == r.c.id,
                e.c.key == expr.key,
                e.c.sub == ELEMENT,
                self.cond(mt, r, expr.inner, e, link),
            )
            return sa.exists(rows)
        if isinstance(expr, AnyMember):
            rel = mt.relation
            assert rel is not None
            a = rel.table.alias()
            rows = sa.select(sa.literal(1)).where(
                a.c[rel.group_col.key] == mt.pk, self.cond(mt, r, expr.inner, element, a)
            )
            return sa.exists(rows)
        target = expr.target
        if isinstance(target, Column):
            found = self.column_test(mt, r, expr)
            probe = self.unique_probe(mt, r, expr)
            return found if probe is None else sa.and_(probe, found)
        if isinstance(target, MetaValue):
            return self.meta_test(r, expr)
        if isinstance(target, LeafValue):
            v = self.t.value.alias()
            where = [v.c.resource_id == r.c.id, v.c.key == target.key]
            if target.sub == "*":
                where += [v.c.sub != ELEMENT, v.c.sub != ""]
            else:
                where.append(v.c.sub == target.sub)
            rows = sa.select(sa.literal(1)).where(*where, self.leaf_test(v, target.attribute, expr))
            return sa.exists(rows)
        if isinstance(target, ElementSub):
            assert element is not None
            v = self.t.value.alias()
            rows = sa.select(sa.literal(1)).where(
                v.c.resource_id == element.c.resource_id,
                v.c.position == element.c.position,
                v.c.key == element.c.key,
                v.c.sub == target.sub,
                self.leaf_test(v, target.attribute, expr),
            )
            return sa.exists(rows)
        assert isinstance(target, MemberValue)
        rel = mt.relation
        assert rel is not None
        assert link is not None
        m = self.t.resource.alias()
        if isinstance(expr, (Assigned, Present)):
            test: Cond = sa.true()
        elif isinstance(expr.value, str):
            exact = target.attribute.case_exact
            test = self.string_test(m.c.scim_id, expr.op, expr.value, exact)
        else:
            return sa.false()
        member_key = link.c[rel.member_col.key]
        on = m.c.resource_type == rel.member_type
        if isinstance(rel.member_col.type, sa.Integer):
            on = sa.and_(on, m.c.object_int == member_key)
        else:
            on = sa.and_(on, m.c.object_pk == sa.cast(member_key, sa.String))
        rows = sa.select(sa.literal(1)).where(on, m.c.deleted == sa.false(), test)
        return sa.exists(rows)

    # -- sorting ---------------------------------------------------------------------------

    def sort_expr(self, mt: ModelType, r: Any, target: Any) -> Any:
        """The ``ORDER BY`` value of ``sortBy`` (RFC 7644 §3.4.2.3): strings folded unless
        caseExact, in code point order; NULL where the resource has no value."""
        if isinstance(target, MetaValue):
            if target.name not in _META_COLUMNS:
                raise Untranslatable(f"This backend cannot sort by meta.{target.name}.")
            return self.collate(r.c[_META_COLUMNS[target.name]])
        if isinstance(target, Column):
            value = self.column_sort(mt, target, mt.columns[target.field])
            col = mt.columns[target.field]
            if not is_text(col) and not col.nullable and col.default is not None:
                v = self.t.value.alias()
                unset = sa.select(sa.literal(1)).where(
                    v.c.resource_id == r.c.id,
                    v.c.key == UNSET,
                    v.c.sub == target.field,
                    v.c[marker_column(col)] == col,
                )
                value = sa.case((sa.exists(unset), sa.null()), else_=value)
            return value
        if isinstance(target, LeafValue):
            v = self.t.value.alias()
            column = leaf_sort_column(target.attribute)
            first = (
                sa.select(v.c[column])
                .where(v.c.resource_id == r.c.id, v.c.key == target.key, v.c.sub == target.sub)
                .order_by(v.c.position)
                .limit(1)
                .scalar_subquery()
            )
            return self.collate(first)
        assert isinstance(target, ElementSort)
        column = leaf_sort_column(target.attribute)
        # The primary element, else the first: its own value, or the column's for the
        # element a column holds.
        e = self.t.value.alias()
        own_v = self.t.value.alias()
        own = (
            sa.select(own_v.c[column])
            .where(
                own_v.c.resource_id == e.c.resource_id,
                own_v.c.position == e.c.position,
                own_v.c.key == target.key,
                own_v.c.sub == target.sub,
            )
            .limit(1)
            .scalar_subquery()
        )
        p = self.t.value.alias()
        primary = sa.exists(
            sa.select(sa.literal(1)).where(
                p.c.resource_id == e.c.resource_id,
                p.c.position == e.c.position,
                p.c.key == target.key,
                p.c.sub == "primary",
                p.c.flag == sa.true(),
            )
        )
        candidates: list[Any] = [own]
        for group, held in target.fields:
            where = self.cond(mt, r, element_where(group), e)
            value = self.column_sort(mt, held, mt.columns[held.field])
            candidates.append(sa.case((where, value), else_=sa.null()))
        chosen_value = sa.func.coalesce(*candidates) if len(candidates) > 1 else candidates[0]
        chosen = (
            sa.select(chosen_value)
            .where(e.c.resource_id == r.c.id, e.c.key == target.key, e.c.sub == ELEMENT)
            .order_by(sa.case((primary, 0), else_=1), e.c.position)
            .limit(1)
            .scalar_subquery()
        )
        fallbacks = [self.column_sort(mt, col, mt.columns[col.field]) for _, col in target.fields]
        out: Any = sa.func.coalesce(chosen, *fallbacks) if fallbacks else chosen
        return self.collate(out)

    def column_sort(self, mt: ModelType, target: Column, col: Any) -> Any:
        if is_text(mt.columns[target.field]):
            folded = col if target.attribute.case_exact else sa.func.lower(col)
            return self.collate(sa.func.nullif(folded, ""))
        return col


def _order(lhs: Any, op: str, rhs: Any) -> Cond:
    if op == "eq":
        return lhs == rhs  # type: ignore[no-any-return]
    if op == "ne":
        return lhs != rhs  # type: ignore[no-any-return]
    if op == "gt":
        return lhs > rhs  # type: ignore[no-any-return]
    if op == "ge":
        return lhs >= rhs  # type: ignore[no-any-return]
    if op == "lt":
        return lhs < rhs  # type: ignore[no-any-return]
    if op == "le":
        return lhs <= rhs  # type: ignore[no-any-return]
    raise Untranslatable(f"Operator {op!r} does not apply to this attribute.")


def _python_value(col: sa.Column[Any], value: Any) -> Any:
    """``value`` as the column's Python type, or None if it cannot be one."""
    kind = col.type
    if isinstance(kind, sa.Boolean):
        return value if isinstance(value, bool) else None
    if isinstance(kind, sa.Integer):
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return None
    if isinstance(kind, (sa.Float, sa.Numeric)):
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if isinstance(kind, sa.DateTime):
        if isinstance(value, _dt.datetime):
            return value
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value)
            except ValueError:
                return None
            return parsed if kind.timezone else parsed.replace(tzinfo=None)
        return None
    if isinstance(kind, sa.String):
        return value if isinstance(value, str) else None
    return value
