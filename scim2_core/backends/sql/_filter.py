"""Translate a bound filter and a sort into parameterised SQL over ``scim_resources``.

The semantics are those of :func:`scim2_core.filter.compile_filter`, which
``tests/backends/test_sql_differential.py`` checks on random resources and filters:

* an attribute is a set of values; a comparison matches when *some* value satisfies it, so
  every operator but ``ne`` is false on an unassigned attribute; ``ne`` is true there
  (RFC 7643 §2.5: unassigned is null, never identical to a value), and ``not (...)`` is the
  complement. Each leaf below is two-valued (``COALESCE(..., FALSE)`` or ``EXISTS``), so SQL's
  three-valued ``NOT`` never differs from Python's;
* strings honour ``caseExact``: the stored ``fdoc`` already holds every caseExact=false
  string lowercased (by Python's ``str.lower``, exactly as the evaluator folds), and the
  literal is lowercased here, so no SQL ``lower()`` (ASCII-only in SQLite, locale-bound in
  PostgreSQL) is involved. String order is code point order (SQLite ``BINARY``, PostgreSQL
  ``COLLATE "C"``);
* dateTimes are stored as fixed-width UTC text and bound literals are in the same form, so
  text comparison is chronological.

Nothing from the filter text reaches the SQL text: literals are parameters, and JSON paths
(built only from canonical schema names) are parameters too.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Final

from ...filter import (
    And,
    Compare,
    Filter,
    FilterVisitor,
    Not,
    Or,
    Present,
    Untranslatable,
    ValuePath,
)
from ...schema import Attribute, AttrRef, ResourceType
from .._base import SortSpec

if TYPE_CHECKING:
    from ._dialect import Dialect

__all__ = ["Translator", "fold"]


def fold(value: str) -> str:
    """How a caseExact=false string is compared: lowercased, as the evaluator does."""
    return value.lower()


_STRINGISH = ("string", "reference", "binary", "dateTime")
_COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")


#: ``some_value`` tests: "assigned" (RFC 7643 §2.5) and "not null" (one scalar).
_ASSIGNED = "assigned"
_NOT_NULL = "not null"
_Test = Compare | Present | str


#: The ``meta`` sub-attributes a touch keeps apart (schema version 10): a member whose
#: ``groups`` changed gets its new ``meta.version`` and ``meta.lastModified`` in its
#: ``scim_versions`` row (joined as ``v``), its documents untouched (no row, and
#: ``v.modified`` NULL, when ``doc`` is current).
_META_COLUMNS: Final[dict[tuple[str, ...], str]] = {
    ("meta", "lastModified"): "v.modified",
    ("meta", "version"): "v.version",
}


def meta_column(keys: tuple[str, ...], expr: str) -> str:
    """``expr`` (the value at ``keys`` in ``fdoc``) or, for ``meta.lastModified`` and
    ``meta.version`` of a touched row, its column: filters and sorts see what a read
    returns (RFC 7644 §3.4.2.2 filters on ``meta.lastModified``; both are caseExact)."""
    column = _META_COLUMNS.get(keys)
    if column is None:
        return expr
    return f"(CASE WHEN v.modified IS NULL THEN {expr} ELSE {column} END)"


def _folds(attr: Attribute) -> bool:
    return not attr.case_exact and attr.type in ("string", "reference")


class _Ctx:
    """Where relative paths start: the document root (with a key prefix) or one element of
    a multi-valued attribute, bound to a FROM alias."""

    __slots__ = ("alias", "prefix")

    def __init__(self, prefix: tuple[str, ...] = (), alias: str | None = None) -> None:
        self.prefix = prefix
        self.alias = alias


class _Where(FilterVisitor[str]):
    def __init__(
        self,
        rt: ResourceType,
        dialect: Dialect,
        tenant: str,
        indexed: Collection[str],
        has_members: bool,
    ) -> None:
        super().__init__(rt)
        self.d = dialect
        self.tenant = tenant
        self.indexed = indexed
        self.has_members = has_members
        self.params: list[Any] = []
        self.ctx = _Ctx()
        self.parent: AttrRef | None = None
        self._n = 0
        #: Whether an index probe (id, lookup or membership table) was emitted.
        self.probes = False

    # --- helpers ----------------------------------------------------------------------
    def _alias(self) -> str:
        self._n += 1
        return f"e{self._n}"

    def scalar_text(self, ctx: _Ctx, keys: tuple[str, ...]) -> str:
        """SQL for the scalar at ``ctx`` + ``keys`` as a SQL value."""
        expr = self.d.scalar_text(ctx.alias, ctx.prefix + keys, self.params)
        return meta_column(ctx.prefix + keys, expr) if ctx.alias is None else expr

    def elements(self, ctx: _Ctx, keys: tuple[str, ...], alias: str) -> str:
        """A FROM item iterating the array at ``ctx`` + ``keys`` as ``alias``."""
        return self.d.elements(ctx.alias, ctx.prefix + keys, alias, self.params)

    def is_object(self, alias: str) -> str:
        return self.d.element_is_object(alias)

    def present_tree(self, ctx: _Ctx, keys: tuple[str, ...], assigned: bool = False) -> str:
        """RFC 7644 Table 3 ``pr`` for any value (scalar, object or array): some leaf
        beneath it is neither null nor the empty string. With ``assigned``: some leaf is
        not null (RFC 7643 §2.5 "assigned"; ``""`` counts), for ``eq null``/``ne null``."""
        return self.d.present_tree(ctx.alias, ctx.prefix + keys, assigned, self.params, self._alias)

    # --- leaves -----------------------------------------------------------------------
    def leaf(self, ctx: _Ctx, keys: tuple[str, ...], attr: Attribute, node: Compare) -> str:
        """Some-value test of the scalar at ``ctx`` + ``keys`` against ``node``."""
        op, lit = node.op, node.value
        t = attr.type
        if t == "boolean":
            want = (lit is True) == (op == "eq")
            return self.d.boolean_is(ctx.alias, ctx.prefix + keys, want, self.params)
        if t in ("integer", "decimal"):
            if isinstance(lit, bool) or not isinstance(lit, (int, float)):
                raise Untranslatable(f"Cannot compare number attribute with {node}.")
            if op not in _COMPARISONS:
                raise Untranslatable(f"Cannot compare number attribute with {node}.")
            return self.d.compare_number(self.scalar_text(ctx, keys), op, lit, self.params)
        if t not in _STRINGISH or not isinstance(lit, str):
            raise Untranslatable(f"Cannot translate {node}.")
        if _folds(attr):
            lit = fold(lit)
        return self.d.compare_string(self.scalar_text(ctx, keys), op, lit, self.params)

    def present_scalar(
        self, ctx: _Ctx, keys: tuple[str, ...], attr: Attribute, assigned: bool = False
    ) -> str:
        if attr.is_complex or attr.multi_valued:
            return self.present_tree(ctx, keys, assigned)
        text = self.scalar_text(ctx, keys)
        if attr.type in _STRINGISH and not assigned:
            return f"COALESCE({text} <> '', FALSE)"
        return f"({text} IS NOT NULL)"

    def some_value(self, ref: AttrRef, node: _Test) -> str:
        """The test ``node`` over every value ``ref`` reaches, from the current context."""
        ctx = self.ctx
        attr = ref.attribute
        target = ref.target
        if ref.sub is not None and ref.sub.multi_valued:
            raise Untranslatable(
                f"Filtering on the multi-valued sub-attribute {ref} is not supported."
            )
        if ctx.alias is not None or ctx.prefix:
            # Inside a value path: ``ref`` is relative to the element (one level down).
            assert ref.sub is not None
            keys: tuple[str, ...] = (ref.sub.name,)
            return self._test(ctx, keys, target, node)
        head = (ref.urn,) if ref.urn is not None else ()
        if not attr.multi_valued:
            keys = (*head, attr.name) + ((ref.sub.name,) if ref.sub is not None else ())
            return self._test(ctx, keys, target, node)
        if (isinstance(node, Present) or node == _ASSIGNED) and ref.sub is None:
            return self.present_tree(ctx, (*head, attr.name), node == _ASSIGNED)
        alias = self._alias()
        source = self.elements(ctx, (*head, attr.name), alias)
        inner = _Ctx((), alias)
        if ref.sub is None:
            cond = self._test(inner, (), target, node)
        else:
            cond = f"{self.is_object(alias)} AND {self._test(inner, (ref.sub.name,), target, node)}"
        return f"EXISTS (SELECT 1 FROM {source} WHERE {cond})"

    def _test(self, ctx: _Ctx, keys: tuple[str, ...], attr: Attribute, node: _Test) -> str:
        if node == _NOT_NULL:
            return f"({self.scalar_text(ctx, keys)} IS NOT NULL)"
        if node == _ASSIGNED:
            return self.present_scalar(ctx, keys, attr, assigned=True)
        if isinstance(node, Present):
            return self.present_scalar(ctx, keys, attr)
        assert isinstance(node, Compare)
        return self.leaf(ctx, keys, attr, node)

    # --- visitor ----------------------------------------------------------------------
    def visit_compare(self, node: Compare) -> str:
        ref = self.resolve(node.path, self.parent)
        refused = self.d.refuses_literal(node.value)
        if refused is not None:
            raise Untranslatable(refused)
        if node.value is None:
            # RFC 7643 §2.5: "Unassigned attributes, the null value, or empty array [...]
            # SHALL be considered to be equivalent in "state"": ``eq null`` is unassigned,
            # ``ne null`` assigned ("" is assigned, though not ``pr``).
            assigned = self.some_value(ref, _ASSIGNED)
            return assigned if node.op == "ne" else f"NOT ({assigned})"
        if self.parent is None and node.op == "eq" and isinstance(node.value, str):
            fast = self._indexed_eq(ref, node.value)
            if fast is not None:
                return fast
        if node.op == "ne":
            # RFC 7644 Table 3 "ne: The attribute and operator values are not identical";
            # RFC 7643 §2.5: unassigned is null, never identical to a value. So: some value
            # differs, or there is no value at all (compile_filter's rule).
            if ref.attribute.multi_valued and ref.sub is not None and self.parent is None:
                return self._ne_per_element(ref, node)
            some = self.some_value(ref, node)
            return f"({some} OR NOT {self.some_value(ref, _NOT_NULL)})"
        return self.some_value(ref, node)

    def _ne_per_element(self, ref: AttrRef, node: Compare) -> str:
        """``emails.value ne "x"``: some element lacks ``value`` or holds another one, or
        there is no element at all."""
        assert ref.sub is not None
        head = (ref.urn,) if ref.urn is not None else ()
        keys = (*head, ref.attribute.name)
        a1 = self._alias()
        first = self.elements(self.ctx, keys, a1)
        none = f"NOT EXISTS (SELECT 1 FROM {first} WHERE {self.is_object(a1)})"
        a2 = self._alias()
        source = self.elements(self.ctx, keys, a2)
        inner = _Ctx((), a2)
        sub = (ref.sub.name,)
        missing = f"({self.scalar_text(inner, sub)} IS NULL)"
        differs = self.leaf(inner, sub, ref.sub, node)
        return (
            f"({none} OR EXISTS (SELECT 1 FROM {source} WHERE {self.is_object(a2)} "
            f"AND ({missing} OR {differs})))"
        )

    def _indexed_eq(self, ref: AttrRef, value: str) -> str | None:
        key = str(ref)
        if key == "id":
            self.probes = True
            self.params.append(value)
            return "r.id = ?"
        if self.has_members and ref.urn is None and key == "members.value":
            self.probes = True
            self.params.extend((self.tenant, value))
            return (
                "r.id IN (SELECT m.group_id FROM scim_members m "
                "WHERE m.tenant = ? AND m.member_id = ?)"
            )
        if key in self.indexed:
            self.probes = True
            if _folds(ref.target):
                value = fold(value)
            self.params.extend((self.tenant, self.rt.name, key, value))
            return (
                "r.id IN (SELECT l.id FROM scim_lookup l WHERE l.tenant = ? AND l.type = ? "
                "AND l.attr = ? AND l.value = ?)"
            )
        return None

    def visit_present(self, node: Present) -> str:
        return self.some_value(self.resolve(node.path, self.parent), node)

    def visit_and(self, node: And) -> str:
        return f"({self.visit(node.left)} AND {self.visit(node.right)})"

    def visit_or(self, node: Or) -> str:
        return f"({self.visit(node.left)} OR {self.visit(node.right)})"

    def visit_not(self, node: Not) -> str:
        return f"NOT ({self.visit(node.operand)})"

    def visit_value_path(self, node: ValuePath) -> str:
        if self.parent is not None:
            raise Untranslatable("Value filters cannot be nested.")
        ref = self.resolve(node.path)
        head = (ref.urn,) if ref.urn is not None else ()
        keys = (*head, ref.attribute.name)
        saved = self.ctx
        self.parent = ref
        try:
            if ref.attribute.multi_valued:
                # RFC 7644 Table 5: "expressions MUST be applied to the same value of a
                # parent attribute": one EXISTS over the elements, every test on alias.
                alias = self._alias()
                source = self.elements(saved, keys, alias)
                self.ctx = _Ctx((), alias)
                inner = self.visit(node.filter)
                return f"EXISTS (SELECT 1 FROM {source} WHERE {self.is_object(alias)} AND {inner})"
            # A single-valued complex attribute is its own one value.
            kind = self.d.is_object_at(saved.alias, saved.prefix + keys, self.params)
            self.ctx = _Ctx(keys)
            inner = self.visit(node.filter)
            return f"({kind} AND {inner})"
        finally:
            self.ctx = saved
            self.parent = None


class Translator:
    """Builds WHERE and ORDER BY clauses for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect

    def reads_members(self, rt: ResourceType, filter: Filter | None) -> bool:
        """Whether the SQL of ``filter`` reads ``members`` from the folded document: any
        test of members but ``members.value eq "id"``, which probes ``scim_members``
        (members are rows of their own; see :meth:`Dialect.members_fdoc`)."""

        def reads(node: Filter, top: bool) -> bool:
            if isinstance(node, (And, Or)):
                return reads(node.left, top) or reads(node.right, top)
            if isinstance(node, Not):
                return reads(node.operand, top)
            if node.path.name.lower() != "members":
                return False
            if isinstance(node, Compare) and top and node.op == "eq":
                return not (node.path.sub == "value" and isinstance(node.value, str))
            return True

        return filter is not None and reads(filter, True)

    def where(
        self,
        rt: ResourceType,
        filter: Filter | None,
        tenant: str,
        indexed: Collection[str],
        has_members: bool = False,
    ) -> tuple[str, list[Any], bool]:
        """``(sql, params, probes)``: ``probes`` tells that the filter uses an index probe
        (the caller then steers the planner to the primary key rather than a scan)."""
        if filter is None:
            return "", [], False
        visitor = _Where(rt, self.d, tenant, indexed, has_members)
        sql = visitor.visit(filter)
        return sql, visitor.params, visitor.probes

    def order_by(self, rt: ResourceType, sort: SortSpec) -> tuple[str, list[Any]]:
        """RFC 7644 §3.4.2.3 ordering, equal to :func:`scim2_core.filter.sort_key`."""
        expr, params = self.sort_expr(rt, sort)
        direction = "DESC NULLS FIRST" if sort.descending else "ASC NULLS LAST"
        return f"{expr} {direction}, r.id ASC", params

    def sort_expr(self, rt: ResourceType, sort: SortSpec) -> tuple[str, list[Any]]:
        """The value :meth:`order_by` sorts by (NULL: no value), with its parameters."""
        ref = sort.path
        attr = ref.attribute
        sub = ref.sub
        if sub is None and attr.is_complex:
            sub = attr.sub("value")
        target = sub if sub is not None else attr
        params: list[Any] = []
        head = (ref.urn,) if ref.urn is not None else ()
        if target.is_complex:
            expr = "NULL"
        elif not attr.multi_valued:
            keys = (*head, attr.name) + ((sub.name,) if sub is not None else ())
            scalar = meta_column(keys, self.d.sort_scalar(keys, params))
            expr = self.d.sort_typed(scalar, target.type)
        else:
            name = sub.name if sub is not None else None
            expr = self.d.sort_first((*head, attr.name), name, target.type, params)
        return expr, params
