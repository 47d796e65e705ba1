"""The SCIM filter language (RFC 7644 §3.4.2.2): AST, parser, compiler, pushdown visitor.

* :func:`parse_filter` / :func:`parse_path` turn text into a frozen AST
  (:mod:`scim2_core.filter._ast`), raising only ``InvalidFilterError`` / ``InvalidPathError``.
* :func:`bind` / :func:`bind_path` resolve it against a resource type (canonical names).
* :func:`compile_filter` / :func:`compile_value_filter` build fast predicates over dicts;
  :func:`sort_key` sorts dicts per RFC 7644 §3.4.2.3.
* :class:`FilterVisitor` lets a backend translate a bound tree (e.g. into SQL).
* :func:`conjuncts`, :func:`mentions` and :func:`simple_eq` inspect a tree's shape.

See docs/filters.md.
"""

from ._ast import (
    COMPARE_OPS,
    And,
    AttrPath,
    Compare,
    CompareOp,
    Filter,
    Not,
    Or,
    PatchPath,
    Present,
    Value,
    ValuePath,
)
from ._bind import SCHEMAS_ATTRIBUTE, bind, bind_path
from ._compile import Predicate, compile_filter, compile_value_filter, sort_key
from ._inspect import conjuncts, mentions, simple_eq
from ._parser import HARD_MAX_DEPTH, parse_filter, parse_path
from ._visitor import FilterVisitor, Untranslatable

__all__ = [
    "COMPARE_OPS",
    "HARD_MAX_DEPTH",
    "SCHEMAS_ATTRIBUTE",
    "And",
    "AttrPath",
    "Compare",
    "CompareOp",
    "Filter",
    "FilterVisitor",
    "Not",
    "Or",
    "PatchPath",
    "Predicate",
    "Present",
    "Untranslatable",
    "Value",
    "ValuePath",
    "bind",
    "bind_path",
    "compile_filter",
    "compile_value_filter",
    "conjuncts",
    "mentions",
    "parse_filter",
    "parse_path",
    "simple_eq",
    "sort_key",
]
