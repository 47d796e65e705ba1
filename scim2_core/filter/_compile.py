"""Compile a bound filter once into a predicate over canonical resource dicts.

Semantics (RFC 7644 §3.4.2.2; decisions documented in docs/filters.md):

* Every attribute is read as a *set of values*: none (missing, null, ``[]``), one
  (single-valued) or many (multi-valued). "If the specified attribute in a filter
  expression is a multi-valued attribute, the filter matches if any of the values of the
  specified attribute match the specified criterion". A comparison matches when some value
  satisfies it, so every operator but ``ne`` is false on an unassigned attribute.
  ``ne`` is also true on an unassigned attribute (RFC 7643 §2.5: unassigned is null, and
  null is "not identical" to any operator value); so on single-valued attributes
  ``a ne "x"`` and ``not (a eq "x")`` agree. In SQL: ``col IS DISTINCT FROM 'x'``.
* ``eq null`` matches an unassigned attribute (missing, null, ``[]``, RFC 7643 §2.5);
  ``ne null`` an assigned one. They differ from ``pr`` only on ``""`` (assigned, yet not
  "a non-empty value").
* Strings compare per the attribute's ``caseExact`` ("When comparing attributes of type
  String, the case sensitivity for String type attributes SHALL be determined by the
  attribute's "caseExact" characteristic"); a caseExact=false comparison lowercases both
  sides (like SQL ``lower()``). Binary values are compared case-exactly.
* dateTimes compare chronologically: stored values and bound literals share the
  fixed-width UTC text of ``format_datetime``, whose text order is instant order; a stored
  value in another xsd:dateTime spelling is parsed.
* A stored value of the wrong JSON type never matches and never raises.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..schema import Attribute, AttrRef, ResourceType, format_datetime, parse_datetime
from ._ast import And, AttrPath, Compare, Filter, Not, Or, Present, ValuePath
from ._bind import bind, bind_value_filter, resolve_bound

__all__ = ["Predicate", "compile_filter", "compile_value_filter", "sort_key"]

Predicate = Callable[[Mapping[str, Any]], bool]
_Test = Callable[[Any], bool]

_EMPTY: Final[Mapping[str, Any]] = {}

_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def _is_present(value: Any) -> bool:
    """RFC 7644 Table 3 ("pr"): "If the attribute has a non-empty value, or if it
    contains a non-empty node for complex attributes, there is a match."
    """
    if value is None or value == "" or value == [] or value == {}:
        return False
    if isinstance(value, dict):
        return any(_is_present(v) for v in value.values())
    if isinstance(value, list):
        return any(_is_present(v) for v in value)
    return True


def _is_assigned(value: Any) -> bool:
    """RFC 7643 §2.5: "Unassigned attributes, the null value, or empty array [...] SHALL
    be considered to be equivalent in "state"." (An empty string is assigned, though not
    "present".)"""
    if value is None:
        return False
    if isinstance(value, list):
        return any(_is_assigned(v) for v in value)
    if isinstance(value, dict):
        return any(_is_assigned(v) for v in value.values())
    return True


def _datetime_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    if len(value) == 24 and value[-1] == "Z" and value[10] == "T" and value[19] == ".":
        return value
    try:
        return format_datetime(parse_datetime(value))
    except (ValueError, TypeError, OverflowError):
        return None


def _string_test(op: str, lit: str, case_exact: bool) -> _Test:
    # RFC 7644 Table 3: "eq: The attribute and operator values must be identical for a
    # match." "co: The entire operator value must be a substring of the attribute value
    # for a match." "sw: [...] a substring of the attribute value, starting at the
    # beginning [...]" "ew: [...] matching at the end of the attribute value."
    # "gt: [...] For string attribute types, this is a lexicographical comparison".
    if case_exact:
        if op == "eq":
            return lambda v: v == lit and isinstance(v, str)
        if op == "ne":
            return lambda v: isinstance(v, str) and v != lit
        if op == "co":
            return lambda v: isinstance(v, str) and lit in v
        if op == "sw":
            return lambda v: isinstance(v, str) and v.startswith(lit)
        if op == "ew":
            return lambda v: isinstance(v, str) and v.endswith(lit)
        cmp = _ORDER[op]
        return lambda v: isinstance(v, str) and cmp(v, lit)
    low = lit.lower()
    if op == "eq":
        return lambda v: isinstance(v, str) and v.lower() == low
    if op == "ne":
        return lambda v: isinstance(v, str) and v.lower() != low
    if op == "co":
        return lambda v: isinstance(v, str) and low in v.lower()
    if op == "sw":
        return lambda v: isinstance(v, str) and v.lower().startswith(low)
    if op == "ew":
        return lambda v: isinstance(v, str) and v.lower().endswith(low)
    cmp = _ORDER[op]
    return lambda v: isinstance(v, str) and cmp(v.lower(), low)


def _value_test(attr: Attribute, op: str, lit: Any) -> _Test:
    """A test of one stored value against a bound (canonical, type-checked) literal."""
    t = attr.type
    if t == "boolean":
        if op == "eq":
            return lambda v: v is lit
        return lambda v: isinstance(v, bool) and v is not lit
    if t in ("integer", "decimal"):
        # RFC 7644 Table 3 ("gt"): "For integer attributes, it is a comparison by numeric
        # value."
        cmp: Callable[[Any, Any], bool] = _ORDER.get(op) or (
            operator.eq if op == "eq" else operator.ne
        )
        return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and cmp(v, lit)
    if t == "dateTime":
        # "for DateTime types, it is a chronological comparison"
        cmp = _ORDER.get(op) or (operator.eq if op == "eq" else operator.ne)

        def dt_test(v: Any) -> bool:
            text = _datetime_text(v)
            return text is not None and cmp(text, lit)

        return dt_test
    return _string_test(op, lit, attr.case_exact or t == "binary")


def _leaf(test: _Test, name: str, sub: str | None, multi: bool) -> Predicate:
    """A predicate over a container dict: some value of ``container[name][.sub]``
    satisfies ``test``."""
    if sub is None:
        if not multi:
            return lambda c: test(c.get(name))

        def multi_simple(c: Mapping[str, Any]) -> bool:
            values = c.get(name)
            if isinstance(values, list):
                for v in values:
                    if test(v):
                        return True
            return False

        return multi_simple
    if not multi:

        def single_sub(c: Mapping[str, Any]) -> bool:
            parent = c.get(name)
            return isinstance(parent, dict) and test(parent.get(sub))

        return single_sub

    def multi_sub(c: Mapping[str, Any]) -> bool:
        values = c.get(name)
        if isinstance(values, list):
            for v in values:
                if isinstance(v, dict) and test(v.get(sub)):
                    return True
        return False

    return multi_sub


def _ne_leaf(test: _Test, name: str, sub: str | None, multi: bool) -> Predicate:
    """``ne``: true when some value differs, or when there is no value at all.

    RFC 7644 Table 3: "ne: The attribute and operator values are not identical." RFC 7643
    §2.5: "Unassigned attributes, the null value, or empty array [...] SHALL be considered
    to be equivalent in "state"" — an unassigned attribute is null, which is not identical
    to any non-null operator value, so ``ne`` matches it (``a ne "x"`` and
    ``not (a eq "x")`` agree on single-valued attributes).
    """
    if sub is not None and multi:
        # Per value of a multi-valued complex attribute: a value without the
        # sub-attribute holds null there, which is "not identical" too.
        def ne_multi_sub(c: Mapping[str, Any]) -> bool:
            values = c.get(name)
            seen = False
            if isinstance(values, list):
                for v in values:
                    if isinstance(v, dict):
                        seen = True
                        x = v.get(sub)
                        if x is None or test(x):
                            return True
            return not seen

        return ne_multi_sub
    some = _leaf(test, name, sub, multi)
    has_value = _leaf(lambda v: v is not None, name, sub, multi)
    return lambda c: some(c) or not has_value(c)


def _in_extension(urn: str, pred: Predicate) -> Predicate:
    def in_ext(r: Mapping[str, Any]) -> bool:
        ext = r.get(urn)
        return pred(ext if isinstance(ext, dict) else _EMPTY)

    return in_ext


def _compare_or_present(node: Compare | Present, ref: AttrRef) -> Predicate:
    target = ref.target
    name, sub = _keys(ref)
    multi = ref.attribute.multi_valued
    if isinstance(node, Present):
        return _leaf(_is_present, name, sub, multi)
    if node.value is None:
        # ``ne null``: the attribute is assigned; ``eq null``: it is unassigned.
        assigned = _leaf(_is_assigned, name, sub, multi)
        if node.op == "ne":
            return assigned
        return lambda c: not assigned(c)
    test = _value_test(target, node.op, node.value)
    if node.op == "ne":
        return _ne_leaf(test, name, sub, multi)
    return _leaf(test, name, sub, multi)


def _keys(ref: AttrRef) -> tuple[str, str | None]:
    return ref.attribute.name, ref.sub.name if ref.sub is not None else None


def _chain(preds: list[Predicate], conj: bool) -> Predicate:
    if conj:
        if len(preds) == 2:
            a, b = preds
            return lambda r: a(r) and b(r)
        if len(preds) == 3:
            a, b, c = preds
            return lambda r: a(r) and b(r) and c(r)
        all_preds = tuple(preds)
        return lambda r: all(p(r) for p in all_preds)
    if len(preds) == 2:
        a, b = preds
        return lambda r: a(r) or b(r)
    if len(preds) == 3:
        a, b, c = preds
        return lambda r: a(r) or b(r) or c(r)
    any_preds = tuple(preds)
    return lambda r: any(p(r) for p in any_preds)


def _flatten(node: And | Or) -> list[Filter]:
    cls = type(node)
    out: list[Filter] = []
    todo: list[Filter] = [node]
    while todo:
        n = todo.pop()
        if type(n) is cls:
            assert isinstance(n, (And, Or))
            todo.append(n.right)
            todo.append(n.left)
        else:
            out.append(n)
    return out


def _compile(node: Filter, resolve: Callable[[AttrPath], AttrRef]) -> Predicate:
    if isinstance(node, (Compare, Present)):
        ref = resolve(node.path)
        pred = _compare_or_present(node, ref)
        return pred if ref.urn is None else _in_extension(ref.urn, pred)
    if isinstance(node, (And, Or)):
        # RFC 7644 Table 4: "and: The filter is only a match if both expressions evaluate
        # to true." "or: The filter is a match if either expression evaluates to true."
        preds = [_compile(child, resolve) for child in _flatten(node)]
        return _chain(preds, isinstance(node, And))
    if isinstance(node, Not):
        # "not: The filter is a match if the expression evaluates to false."
        inner = _compile(node.operand, resolve)
        return lambda r: not inner(r)
    assert isinstance(node, ValuePath)
    # RFC 7644 Table 5: "expressions MUST be applied to the same value of a parent
    # attribute specified immediately before the left square bracket".
    ref = resolve(node.path)
    parent = ref.attribute
    match_one = _compile(node.filter, _relative(parent))
    name = parent.name

    def value_path(c: Mapping[str, Any]) -> bool:
        values = c.get(name)
        if isinstance(values, list):
            for v in values:  # noqa: SIM110 - a plain loop is faster than any() here
                if isinstance(v, dict) and match_one(v):
                    return True
            return False
        return isinstance(values, dict) and match_one(values)

    return value_path if ref.urn is None else _in_extension(ref.urn, value_path)


def _relative(parent: Attribute) -> Callable[[AttrPath], AttrRef]:
    def resolve(path: AttrPath) -> AttrRef:
        sub = parent.sub(path.name)
        assert sub is not None, path  # bound trees only
        return AttrRef(None, sub)

    return resolve


def compile_filter(filter: Filter, rt: ResourceType) -> Predicate:
    """Bind ``filter`` to ``rt`` and compile it once into ``predicate(resource) -> bool``.

    The predicate reads canonical resource dicts (see :mod:`scim2_core._schema`), never
    raises, and never mutates its argument. Raises
    :class:`~scim2_core.InvalidFilterError` at compile time for what :func:`bind` rejects.
    """
    bound = bind(filter, rt)

    def resolve(path: AttrPath) -> AttrRef:
        ref = resolve_bound(path, rt)
        assert ref is not None, path  # bind resolved it
        return ref

    return _compile(bound, resolve)


def compile_value_filter(filter: Filter, attr: Attribute) -> Predicate:
    """Compile a filter over ONE value (a dict) of the complex attribute ``attr``.

    For PATCH paths such as ``members[value eq "2819c223"]``: the PATCH engine selects
    the values to change with it. Paths in ``filter`` are relative to ``attr``. Booleans
    spelled as strings are accepted (Okta sends ``roles[primary eq "True"]``).
    """
    bound = bind_value_filter(filter, attr)
    return _compile(bound, _relative(attr))


# --- Sorting ------------------------------------------------------------------------------


class _Desc:
    """Wraps a key so that it orders in reverse (used for the ``id`` tie-break)."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.key < self.key)

    def __gt__(self, other: _Desc) -> bool:
        return bool(other.key > self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and bool(self.key == other.key)

    def __hash__(self) -> int:
        return hash(self.key)


def _sortable(attr: Attribute, value: Any) -> Any:
    """A value as a key of one type per attribute type, or None if unusable."""
    t = attr.type
    if t == "boolean":
        return int(value) if isinstance(value, bool) else None
    if t in ("integer", "decimal"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return value if ok else None
    if t == "dateTime":
        return _datetime_text(value)
    if t == "complex" or not isinstance(value, str):
        return None
    return value if attr.case_exact or t == "binary" else value.lower()


def sort_key(ref: AttrRef, *, descending: bool = False) -> Callable[[Mapping[str, Any]], Any]:
    """A key function implementing ``sortBy`` (RFC 7644 §3.4.2.3) over resource dicts.

    Use it exactly as ``sorted(resources, key=sort_key(ref, descending=d), reverse=d)``,
    passing the same ``d`` twice. Then:

    * values order by the attribute's type ("Sorting is applied to the attribute's value
      [...]"), strings honouring ``caseExact`` (lowercased when not case-exact), dateTimes
      chronologically, numbers numerically, false before true;
    * a multi-valued attribute sorts by its primary value, else its first ("if it's a
      multi-valued attribute, the primary value [...] or first value"); a multi-valued
      complex attribute named without a sub-attribute sorts by ``value``;
    * resources without a value sort last ascending and first descending ("resources
      with no value for the attribute sort last in ascending order [...]");
    * ties break by ``id`` ascending in both directions (the key carries ``id``, reversed
      when ``descending``), so pages are stable.
    """
    attr = ref.attribute
    sub_attr = ref.sub
    if sub_attr is None and attr.is_complex:
        sub_attr = attr.sub("value")
    target = sub_attr if sub_attr is not None else attr
    name = attr.name
    sub_name = sub_attr.name if sub_attr is not None else None
    urn = ref.urn
    wrap: Callable[[Any], Any] = _Desc if descending else str

    def pick(r: Mapping[str, Any]) -> Any:
        container: Any = r if urn is None else r.get(urn)
        if not isinstance(container, dict):
            return None
        value = container.get(name)
        if isinstance(value, list):
            chosen = None
            for item in value:
                if isinstance(item, dict) and item.get("primary") is True:
                    chosen = item
                    break
            if chosen is None and value:
                chosen = value[0]
            value = chosen
        if sub_name is not None:
            value = value.get(sub_name) if isinstance(value, dict) else None
        return _sortable(target, value)

    def key(r: Mapping[str, Any]) -> Any:
        value = pick(r)
        rid = r.get("id")
        tie = wrap(rid if isinstance(rid, str) else "")
        if value is None:
            return (1, 0, tie)
        return (0, value, tie)

    return key
