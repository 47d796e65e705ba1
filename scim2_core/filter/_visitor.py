"""The pushdown hook for backends: walk a bound filter and translate it.

A backend that can evaluate filters natively (SQL, an ORM, a directory) subclasses
:class:`FilterVisitor` and overrides the ``visit_*`` methods it can translate; anything it
does not override raises :class:`Untranslatable`, a 400 ``invalidFilter`` — the client gets a
clear error rather than a silent scan of every resource (docs/filters.md). A backend may also catch
:class:`Untranslatable` and fall back to :func:`~scim2_core.filter.compile_filter` itself.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from .._errors import InvalidFilterError
from ..schema import AttrRef, ResourceType
from ._ast import And, AttrPath, Compare, Filter, Not, Or, Present, ValuePath
from ._bind import resolve_bound

__all__ = ["FilterVisitor", "Untranslatable"]

T = TypeVar("T")


class Untranslatable(InvalidFilterError):
    """A backend cannot translate this part of a filter: 400 ``invalidFilter``.

    RFC 7644 Table 9, ``invalidFilter``: "[...] or the specified attribute and filter
    comparison combination is not supported."
    """

    default_detail = "This filter is not supported by the storage backend."


class FilterVisitor(Generic[T]):
    """Dispatch over a *bound* filter tree (see :func:`~scim2_core.filter.bind`).

    ``visit(node)`` calls ``visit_compare``, ``visit_present``, ``visit_and``,
    ``visit_or``, ``visit_not`` or ``visit_value_path``; each default raises
    :class:`Untranslatable` naming the node. Subclasses recurse by calling
    :meth:`visit` on children. Trees from :func:`~scim2_core.filter.parse_filter` are at
    most ``max_depth`` (<= 200) deep, so recursion is safe.

    Inside ``visit_value_path``, the filter's paths are relative to the multi-valued
    attribute: resolve them with ``self.resolve(path, parent=self.resolve(node.path))``.
    """

    def __init__(self, rt: ResourceType) -> None:
        self.rt = rt

    def visit(self, node: Filter) -> T:
        if isinstance(node, Compare):
            return self.visit_compare(node)
        if isinstance(node, Present):
            return self.visit_present(node)
        if isinstance(node, And):
            return self.visit_and(node)
        if isinstance(node, Or):
            return self.visit_or(node)
        if isinstance(node, Not):
            return self.visit_not(node)
        if isinstance(node, ValuePath):
            return self.visit_value_path(node)
        raise Untranslatable(f"Not a filter node: {node!r}.")

    def resolve(self, path: AttrPath, parent: AttrRef | None = None) -> AttrRef:
        """The :class:`AttrRef` a bound path names.

        With ``parent`` (the resolved attribute of an enclosing value path), ``path`` is
        relative to it and the result is ``parent``'s attribute with ``sub`` set. Raises
        :class:`Untranslatable` if the path names nothing (an unbound tree).
        """
        if parent is not None:
            sub = parent.attribute.sub(path.name) if path.urn is None and not path.sub else None
            if sub is None:
                raise Untranslatable(f"Unknown attribute {str(path)!r} inside {str(parent)!r}.")
            return AttrRef(parent.urn, parent.attribute, sub)
        ref = resolve_bound(path, self.rt)
        if ref is None:
            raise Untranslatable(f"Unknown attribute {str(path)!r} for {self.rt.name}.")
        return ref

    def _untranslatable(self, node: Filter) -> Untranslatable:
        return Untranslatable(f"This backend cannot evaluate the filter part {str(node)!r}.")

    def visit_compare(self, node: Compare) -> T:
        raise self._untranslatable(node)

    def visit_present(self, node: Present) -> T:
        raise self._untranslatable(node)

    def visit_and(self, node: And) -> T:
        raise self._untranslatable(node)

    def visit_or(self, node: Or) -> T:
        raise self._untranslatable(node)

    def visit_not(self, node: Not) -> T:
        raise self._untranslatable(node)

    def visit_value_path(self, node: ValuePath) -> T:
        raise self._untranslatable(node)
