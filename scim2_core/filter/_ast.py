"""The filter AST (RFC 7644 §3.4.2.2): small frozen nodes, rendered back by ``str()``.

The parser builds these; the evaluator compiles them into predicates over resource dicts;
backends receive them to push filtering down (see :mod:`scim2_core.filter._visitor`).

Names in a freshly parsed tree are spelled as the client wrote them. :func:`bind` (in the
compiler) returns a tree whose paths carry canonical spellings, so a backend can index
stored dicts and columns directly.

``str(node)`` renders a filter that parses back to an equal tree:
``parse(str(parse(f))) == parse(f)``. The parser returns trees in a normal form: chains of
one operator are balanced (see :func:`balanced`) however they were grouped, and
``not (not (x))`` is ``x``. So ``parse(str(t)) == t`` for any tree ``t`` in that form, and
``parse(str(t))`` is the normal form of any other tree (both checked by hypothesis tests).
Chains render without parentheses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

__all__ = [
    "COMPARE_OPS",
    "And",
    "AttrPath",
    "Compare",
    "CompareOp",
    "Filter",
    "Not",
    "Or",
    "PatchPath",
    "Present",
    "Value",
    "ValuePath",
]

CompareOp: TypeAlias = Literal["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
COMPARE_OPS: Final[frozenset[str]] = frozenset(
    ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
)

#: A comparison value: RFC 7644 §3.4.2.2 "compValue = false / null / true / number / string".
Value: TypeAlias = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class AttrPath:
    """``[urn ":"] name ["." sub]`` (RFC 7644 Figure 1, ``attrPath``).

    Inside a value path's brackets, paths are relative to the multi-valued attribute, so
    ``emails[type eq "work"]`` holds ``AttrPath(None, "type")``.
    """

    urn: str | None
    name: str
    sub: str | None = None

    def __str__(self) -> str:
        prefix = f"{self.urn}:" if self.urn else ""
        suffix = f".{self.sub}" if self.sub else ""
        return f"{prefix}{self.name}{suffix}"


def _render_value(value: Value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value)


@dataclass(frozen=True, slots=True)
class Compare:
    """``attrPath SP compareOp SP compValue``."""

    path: AttrPath
    op: CompareOp
    value: Value

    def __str__(self) -> str:
        return f"{self.path} {self.op} {_render_value(self.value)}"


@dataclass(frozen=True, slots=True)
class Present:
    """``attrPath SP "pr"``: the attribute has a non-empty, non-null value."""

    path: AttrPath

    def __str__(self) -> str:
        return f"{self.path} pr"


@dataclass(frozen=True, slots=True)
class And:
    left: Filter
    right: Filter

    def __str__(self) -> str:
        return _render_chain(self, " and ")


@dataclass(frozen=True, slots=True)
class Or:
    left: Filter
    right: Filter

    def __str__(self) -> str:
        return _render_chain(self, " or ")


@dataclass(frozen=True, slots=True)
class Not:
    """``"not" "(" valFilter ")"``."""

    operand: Filter

    def __str__(self) -> str:
        return f"not ({self.operand})"


@dataclass(frozen=True, slots=True)
class ValuePath:
    """``attrPath "[" valFilter "]"``: some value of a multi-valued complex attribute
    satisfies ``filter`` (whose paths are relative to that attribute).
    """

    path: AttrPath
    filter: Filter

    def __str__(self) -> str:
        return f"{self.path}[{self.filter}]"


Filter: TypeAlias = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True, slots=True)
class PatchPath:
    """A PATCH ``path`` (RFC 7644 §3.5.2 Figure 7): ``attrPath / valuePath [subAttr]``.

    ``members[value eq "x"]`` is ``PatchPath(AttrPath(None, "members"), <filter>)``;
    ``emails[type eq "work"].value`` also has ``sub="value"``; ``name.givenName`` is
    ``PatchPath(AttrPath(None, "name", "givenName"))``.
    """

    attr: AttrPath
    filter: Filter | None = None
    sub: str | None = None

    def __str__(self) -> str:
        text = str(self.attr)
        if self.filter is not None:
            text = f"{text}[{self.filter}]"
        if self.sub is not None:
            text = f"{text}.{self.sub}"
        return text


def balanced(items: Sequence[Filter], cls: type[And] | type[Or]) -> Filter:
    """The tree the parser builds for the chain ``items[0] <op> items[1] <op> ...``.

    Balanced, so that depth grows with the logarithm of the chain length; left-associative
    up to three operands (``a and b and c`` is ``And(And(a, b), c)``).
    """
    if len(items) == 1:
        return items[0]
    mid = (len(items) + 1) // 2
    return cls(balanced(items[:mid], cls), balanced(items[mid:], cls))


def _chain_items(node: And | Or) -> list[Filter]:
    cls = type(node)
    out: list[Filter] = []
    todo: list[Filter] = [node]
    while todo:
        item = todo.pop()
        if isinstance(item, cls):
            todo.append(item.right)
            todo.append(item.left)
        else:
            out.append(item)
    return out


def _render_chain(node: And | Or, word: str) -> str:
    # The parser reads a chain of one operator as the balanced tree of its operands,
    # however it is grouped, so a chain renders without parentheses.
    return word.join(_wrap(part) for part in _chain_items(node))


def _wrap(node: Filter) -> str:
    # "and" binds tighter than "or" (RFC 7644 Table 4, "Precedence"): an "or" inside an
    # "and" needs parentheses, an "and" inside an "or" does not. (A chain's operands are
    # never of the chain's own operator.)
    if isinstance(node, Or):
        return f"({node})"
    return str(node)
