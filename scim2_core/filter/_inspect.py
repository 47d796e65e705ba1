"""Questions about a filter tree that callers ask before evaluating it.

The engine splits a query into what a backend can answer and what it must compute itself
(the derived ``User.groups``, RFC 7643 §4.1.2); PATCH and the memory backend take a fast
path for the ``value eq "id"`` filters identity providers send one member at a time
(RFC 7644 §3.5.2.2 ``members[value eq "2819c223..."]``). These helpers answer those
questions once, for any tree, without recursion (a tree is as deep as the parser allows).
"""

from __future__ import annotations

from ._ast import And, AttrPath, Compare, Filter, Not, Or

__all__ = ["conjuncts", "mentions", "simple_eq"]


def conjuncts(node: Filter) -> list[Filter]:
    """The operands of a chain of ``and``, left to right; ``[node]`` if it is not an ``and``.

    RFC 7644 §3.4.2.2: "and: The filter is only a match if both expressions evaluate to
    true", so every operand returned must hold for the whole filter to hold.
    """
    out: list[Filter] = []
    todo: list[Filter] = [node]
    while todo:
        item = todo.pop()
        if isinstance(item, And):
            todo.append(item.right)
            todo.append(item.left)
        else:
            out.append(item)
    return out


def mentions(node: Filter, name: str, *, urn: str | None = None) -> bool:
    """True if the filter names the attribute ``name`` anywhere (under ``and``, ``or``,
    ``not``, or as the attribute of a value path ``name[...]``).

    Names are compared as they are in the tree: pass a bound tree (see
    :func:`~scim2_core.filter.bind`), where core attributes have ``urn`` None and names
    their canonical spelling. Paths inside a value path's brackets are relative to that
    attribute and are not attributes of the resource, so they do not count.
    """
    todo: list[Filter] = [node]
    while todo:
        item = todo.pop()
        if isinstance(item, (And, Or)):
            todo.append(item.left)
            todo.append(item.right)
        elif isinstance(item, Not):
            todo.append(item.operand)
        elif item.path.urn == urn and item.path.name == name:
            return True
    return False


def simple_eq(node: Filter) -> tuple[AttrPath, str] | None:
    """``(path, text)`` if ``node`` is exactly ``path eq "text"``; None for any other shape
    (another operator, a non-string value, a combination, a value path).

    The shape an index or a column scan answers directly. Whether ``eq`` is exact or
    case-insensitive there is the caller's question (RFC 7643 §2.2 "caseExact").
    """
    if isinstance(node, Compare) and node.op == "eq" and isinstance(node.value, str):
        return node.path, node.value
    return None
