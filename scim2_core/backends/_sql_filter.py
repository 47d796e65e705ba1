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

import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from .._schema import Attribute, AttrRef, ResourceType
from ..filter import (
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
from ._base import SortSpec

if TYPE_CHECKING:
    from ._sql_dialect import Dialect

__all__ = ["Translator", "fold"]


def fold(value: str) -> str:
    """How a caseExact=false string is compared: lowercased, as the evaluator does."""
    return value.lower()


_SQL_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_STRINGISH = ("string", "reference", "binary", "dateTime")


#: Some leaf of a JSON value is a boolean, a number or a non-empty string (``pr``). A
#: parameter, because a jsonpath filter is spelled with ``?``.
_PG_PRESENT = (
    'strict $.** ? (@.type() == "boolean" || @.type() == "number" '
    '|| (@.type() == "string" && @ != ""))'
)
_PG_ASSIGNED = (
    'strict $.** ? (@.type() == "boolean" || @.type() == "number" || @.type() == "string")'
)
#: ``some_value`` tests: "assigned" (RFC 7643 §2.5) and "not null" (one scalar).
_ASSIGNED = "assigned"
_NOT_NULL = "not null"
_Test = Compare | Present | str


def _folds(attr: Attribute) -> bool:
    return not attr.case_exact and attr.type in ("string", "reference")


def _like_escape(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


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
        self.pg = dialect.name == "postgresql"
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

    def _path(self, keys: tuple[str, ...]) -> Any:
        return self.d.json_path(keys)

    def _base(self, ctx: _Ctx) -> str:
        if ctx.alias is None:
            return "r.fdoc"
        return f"{ctx.alias}.v" if self.pg else f"{ctx.alias}.value"

    def scalar_text(self, ctx: _Ctx, keys: tuple[str, ...]) -> str:
        """SQL for the scalar at ``ctx`` + ``keys`` as a SQL value (SQLite: its native
        value; PostgreSQL: its text); appends the path parameter."""
        full = ctx.prefix + keys
        if self.pg:
            if not full:
                return f"({self._base(ctx)} #>> '{{}}')"
            self.params.append(self._path(full))
            return f"({self._base(ctx)} #>> CAST(? AS text[]))"
        if ctx.alias is not None and not full:
            return f"{ctx.alias}.atom"
        self.params.append(self._path(full))
        return f"json_extract({self._base(ctx)}, ?)"

    def scalar_json(self, ctx: _Ctx, keys: tuple[str, ...]) -> str:
        """PostgreSQL: the jsonb at ``ctx`` + ``keys``. SQLite: its JSON type name."""
        full = ctx.prefix + keys
        if self.pg:
            if not full:
                return self._base(ctx)
            self.params.append(self._path(full))
            return f"({self._base(ctx)} #> CAST(? AS text[]))"
        if ctx.alias is not None and not full:
            return f"{ctx.alias}.type"
        self.params.append(self._path(full))
        return f"json_type({self._base(ctx)}, ?)"

    def elements(self, ctx: _Ctx, keys: tuple[str, ...], alias: str) -> str:
        """A FROM item iterating the array at ``ctx`` + ``keys`` as ``alias``."""
        full = ctx.prefix + keys
        if self.pg:
            self.params.append(self._path(full))
            return (
                f"jsonb_path_query({self._base(ctx)} #> CAST(? AS text[]), 'strict $[*]', "
                f"'{{}}', true) AS {alias}(v)"
            )
        self.params.append(self._path(full))
        return f"json_each({self._base(ctx)}, ?) AS {alias}"

    def is_object(self, alias: str) -> str:
        return f"jsonb_typeof({alias}.v) = 'object'" if self.pg else f"{alias}.type = 'object'"

    def present_tree(self, ctx: _Ctx, keys: tuple[str, ...], assigned: bool = False) -> str:
        """RFC 7644 Table 3 ``pr`` for any value (scalar, object or array): some leaf
        beneath it is neither null nor the empty string. With ``assigned``: some leaf is
        not null (RFC 7643 §2.5 "assigned"; ``""`` counts), for ``eq null``/``ne null``."""
        full = ctx.prefix + keys
        if self.pg:
            self.params.extend((self._path(full), _PG_ASSIGNED if assigned else _PG_PRESENT))
            return (
                f"COALESCE(jsonb_path_exists({self._base(ctx)} #> CAST(? AS text[]), "
                "CAST(? AS jsonpath), '{}', true), FALSE)"
            )
        alias = ctx.alias if ctx.alias is not None and not full else self._alias()
        leaf = (
            f"{alias}.type IN ('true', 'false', 'integer', 'real', 'text')"
            if assigned
            else f"({alias}.type IN ('true', 'false', 'integer', 'real') OR "
            f"({alias}.type = 'text' AND {alias}.atom <> ''))"
        )
        if ctx.alias is not None and not full:
            return f"({leaf})"  # one scalar element of an array of scalars
        self.params.append(self._path(full))
        return f"EXISTS (SELECT 1 FROM json_tree({self._base(ctx)}, ?) AS {alias} WHERE {leaf})"

    # --- leaves -----------------------------------------------------------------------
    def leaf(self, ctx: _Ctx, keys: tuple[str, ...], attr: Attribute, node: Compare) -> str:
        """Some-value test of the scalar at ``ctx`` + ``keys`` against ``node``."""
        op, lit = node.op, node.value
        t = attr.type
        if t == "boolean":
            want = "true" if (lit is True) == (op == "eq") else "false"
            if self.pg:
                expr = self.scalar_json(ctx, keys)
                self.params.append(want)
                return f"COALESCE({expr} = CAST(? AS jsonb), FALSE)"
            expr = self.scalar_json(ctx, keys)
            self.params.append(want)
            return f"COALESCE({expr} = ?, FALSE)"
        if t in ("integer", "decimal"):
            if isinstance(lit, bool) or not isinstance(lit, (int, float)) or op not in _SQL_OPS:
                raise Untranslatable(f"Cannot compare number attribute with {node}.")
            text = self.scalar_text(ctx, keys)
            if self.pg:
                self.params.append(json.dumps(lit))
                return f"COALESCE(CAST({text} AS numeric) {_SQL_OPS[op]} CAST(? AS numeric), FALSE)"
            self.params.append(lit)
            return f"COALESCE({text} {_SQL_OPS[op]} ?, FALSE)"
        if t not in _STRINGISH or not isinstance(lit, str):
            raise Untranslatable(f"Cannot translate {node}.")
        if _folds(attr):
            lit = fold(lit)
        text = self.scalar_text(ctx, keys)
        if self.pg:
            text = f'{text} COLLATE "C"'
            if op in _SQL_OPS:
                self.params.append(lit)
                return f"COALESCE({text} {_SQL_OPS[op]} ?, FALSE)"
            pattern = _like_escape(lit)
            pattern = {"co": f"%{pattern}%", "sw": f"{pattern}%", "ew": f"%{pattern}"}[op]
            self.params.append(pattern)
            return f"COALESCE({text} LIKE ? ESCAPE '!', FALSE)"
        if op in _SQL_OPS:
            self.params.append(lit)
            return f"COALESCE({text} {_SQL_OPS[op]} ?, FALSE)"
        # SQLite: instr/substr count characters (code points) like Python's str, and do not
        # fold case (SQLite's LIKE folds ASCII case), so no pattern escaping is needed.
        if op == "co":
            self.params.append(lit)
            return f"COALESCE(instr({text}, ?) > 0, FALSE)"
        if not lit:
            return f"COALESCE(typeof({text}) = 'text', FALSE)"
        if op == "sw":
            self.params.extend((len(lit), lit))
            return f"COALESCE(substr({text}, 1, ?) = ?, FALSE)"
        self.params.extend((-len(lit), lit))
        return f"COALESCE(substr({text}, ?) = ?, FALSE)"

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
        if self.pg and isinstance(node.value, str) and "\x00" in node.value:
            raise Untranslatable("PostgreSQL cannot compare strings containing U+0000.")
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
            kind = self.scalar_json(saved, keys)
            self.ctx = _Ctx(keys)
            inner = self.visit(node.filter)
            if self.pg:
                kind = f"jsonb_typeof({kind})"
            return f"(COALESCE({kind} = 'object', FALSE) AND {inner})"
        finally:
            self.ctx = saved
            self.parent = None


class Translator:
    """Builds WHERE and ORDER BY clauses for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect

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
        ref = sort.path
        attr = ref.attribute
        sub = ref.sub
        if sub is None and attr.is_complex:
            sub = attr.sub("value")
        target = sub if sub is not None else attr
        pg = self.d.name == "postgresql"
        params: list[Any] = []
        head = (ref.urn,) if ref.urn is not None else ()
        if target.is_complex:
            expr = "NULL"
        elif not attr.multi_valued:
            keys = (*head, attr.name) + ((sub.name,) if sub is not None else ())
            params.append(self.d.json_path(keys))
            expr = "(r.fdoc #>> CAST(? AS text[]))" if pg else "json_extract(r.fdoc, ?)"
            expr = self._typed(expr, target)
        else:
            path = self.d.json_path((*head, attr.name))
            if pg:
                value = "(e.v ->> ?)" if sub is not None else "(e.v #>> '{}')"
                if sub is not None:
                    params.append(sub.name)
                params.extend((path, "primary"))
                expr = (
                    f"(SELECT {self._typed(value, target)} FROM jsonb_path_query("
                    "r.fdoc #> CAST(? AS text[]), 'strict $[*]', '{}', true) "
                    "WITH ORDINALITY AS e(v, n) ORDER BY COALESCE(jsonb_typeof(e.v) = 'object' "
                    "AND (e.v -> ?) = 'true'::jsonb, FALSE) DESC, e.n LIMIT 1)"
                )
            else:
                if sub is not None:
                    value = "CASE WHEN e.type = 'object' THEN json_extract(e.value, ?) END"
                    params.append(self.d.json_path((sub.name,)))
                else:
                    value = "e.atom"
                params.extend((path, self.d.json_path(("primary",))))
                expr = (
                    f"(SELECT {value} FROM json_each(r.fdoc, ?) AS e ORDER BY "
                    "COALESCE(CASE WHEN e.type = 'object' THEN json_type(e.value, ?) END "
                    "= 'true', 0) DESC, e.key LIMIT 1)"
                )
        direction = "DESC NULLS FIRST" if sort.descending else "ASC NULLS LAST"
        return f"{expr} {direction}, r.id ASC", params

    def _typed(self, expr: str, attr: Attribute) -> str:
        if self.d.name != "postgresql":
            return expr
        if attr.type in ("integer", "decimal"):
            return f"CAST({expr} AS numeric)"
        if attr.type == "boolean":
            return f"CAST({expr} AS boolean)"
        return f'{expr} COLLATE "C"'
