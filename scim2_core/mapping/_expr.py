"""Filters and sorts as ORM-neutral expressions over a mapping's storage.

:func:`translate` walks a bound filter (a :class:`~scim2_core.filter.FilterVisitor`) and
returns a small tree of frozen nodes that says *where* each tested value lives — a model
field (:class:`Column`), the value index of the extras (:class:`LeafValue`), the bookkeeping
(:class:`MetaValue`), the members relation (:class:`MemberValue`) — and *what* is tested
(:class:`Cmp`, :class:`Assigned`, :class:`Present`), combined by :class:`AllOf`,
:class:`AnyOf`, :class:`Negate`, :class:`Const`, :class:`AnyElement` and
:class:`AnyMember`. An ORM compiles that tree into its own expressions (Django: ``Q``
objects and ``Exists`` subqueries); the SCIM semantics are decided here, once.

Each test node means "some value at the target passes": :class:`Cmp` with ``ne`` means
"some value is assigned and differs"; the RFC's ``ne`` (also true on an unassigned
attribute, see :mod:`scim2_core.filter`) is built as ``AnyOf(Cmp(ne), Negate(Assigned))``.
Strings compare by the target attribute's ``caseExact``; an ORM must honour it (and the
literal ``%``/``_`` of ``co``/``sw``/``ew``) in the database.

A value of a multi-valued attribute that a field holds (``emails[type eq "work"].value`` in
``email``) is an element of the extras with that sub-attribute taken out (or, for a row the
app created, no element at all): the translation tests the field in its place, so a filter
sees exactly the resource :meth:`~scim2_core.mapping.BoundMapping.read` builds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, TypeAlias

from ..filter import (
    And,
    AttrPath,
    Compare,
    Filter,
    FilterVisitor,
    Not,
    Or,
    Untranslatable,
    Value,
    ValuePath,
    compile_value_filter,
)
from ..filter import (
    Present as PresentNode,
)
from ..schema import Attribute, AttrRef
from ._bound import BoundMapping, ElementGroup, attr_key

__all__ = [
    "AllOf",
    "AnyElement",
    "AnyMember",
    "AnyOf",
    "Assigned",
    "Cmp",
    "Column",
    "Const",
    "ElementSort",
    "ElementSub",
    "Expr",
    "LeafValue",
    "MemberValue",
    "MetaValue",
    "Negate",
    "Present",
    "SortTarget",
    "element_where",
    "sort_target",
    "translate",
]

#: ``Cmp`` operators; ``ne`` is "assigned and different".
CmpOp: TypeAlias = Literal["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
#: Bookkeeping values: the SCIM id and ``meta``'s dates and version.
MetaName: TypeAlias = Literal["id", "created", "lastModified", "version"]


@dataclass(frozen=True, slots=True)
class Column:
    """A model field holding one value of ``attribute``."""

    field: str
    attribute: Attribute


@dataclass(frozen=True, slots=True)
class LeafValue:
    """Values in the extras' index: attribute ``key`` and ``sub`` (``""``: the value
    itself; ``"*"``: any sub-attribute of a single-valued complex attribute)."""

    key: str
    sub: str
    attribute: Attribute


@dataclass(frozen=True, slots=True)
class ElementSub:
    """Inside :class:`AnyElement`: sub-attribute ``sub`` of the element under test."""

    sub: str
    attribute: Attribute


@dataclass(frozen=True, slots=True)
class MetaValue:
    """A bookkeeping value (``id``, ``meta.created``...): kept by the backend."""

    name: MetaName
    attribute: Attribute


@dataclass(frozen=True, slots=True)
class MemberValue:
    """Inside :class:`AnyMember`: the SCIM id of the member under test."""

    attribute: Attribute


Target: TypeAlias = Column | LeafValue | ElementSub | MetaValue | MemberValue


@dataclass(frozen=True, slots=True)
class Cmp:
    """Some value at ``target`` compares ``op`` to ``value`` (a bound, canonical literal)."""

    target: Target
    op: CmpOp
    value: str | int | float | bool


@dataclass(frozen=True, slots=True)
class Assigned:
    """Some value at ``target`` is not null (RFC 7643 §2.5)."""

    target: Target


@dataclass(frozen=True, slots=True)
class Present:
    """Some value at ``target`` is non-empty (RFC 7644 Table 3, ``pr``)."""

    target: Target


@dataclass(frozen=True, slots=True)
class Const:
    value: bool


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Negate:
    item: Expr


@dataclass(frozen=True, slots=True)
class AnyElement:
    """Some element of the multi-valued complex attribute ``key`` in the extras passes
    ``inner`` (whose targets are :class:`ElementSub`, or fields of the row)."""

    key: str
    inner: Expr


@dataclass(frozen=True, slots=True)
class AnyMember:
    """Some member in the members relation passes ``inner`` (targets: :class:`MemberValue`)."""

    inner: Expr


Expr: TypeAlias = Cmp | Assigned | Present | Const | AllOf | AnyOf | Negate | AnyElement | AnyMember
_Test: TypeAlias = Cmp | Assigned | Present

TRUE: Final = Const(True)
FALSE: Final = Const(False)


def _any(*items: Expr) -> Expr:
    flat: list[Expr] = []
    for item in items:
        if item == TRUE:
            return TRUE
        if item != FALSE:
            flat.extend(item.items if isinstance(item, AnyOf) else (item,))
    return FALSE if not flat else flat[0] if len(flat) == 1 else AnyOf(tuple(flat))


def _all(*items: Expr) -> Expr:
    flat: list[Expr] = []
    for item in items:
        if item == FALSE:
            return FALSE
        if item != TRUE:
            flat.extend(item.items if isinstance(item, AllOf) else (item,))
    return TRUE if not flat else flat[0] if len(flat) == 1 else AllOf(tuple(flat))


def _not(item: Expr) -> Expr:
    if isinstance(item, Const):
        return Const(not item.value)
    if isinstance(item, Negate):
        return item.item
    return Negate(item)


def _map_tests(expr: Expr, fn: Callable[[_Test], Expr]) -> Expr:
    """``expr`` with every test on an :class:`ElementSub` or :class:`MemberValue`
    replaced by ``fn(test)`` (tests inside nested quantifiers are left alone)."""
    if isinstance(expr, (Cmp, Assigned, Present)):
        if isinstance(expr.target, (ElementSub, MemberValue)):
            return fn(expr)
        return expr
    if isinstance(expr, AllOf):
        return _all(*(_map_tests(i, fn) for i in expr.items))
    if isinstance(expr, AnyOf):
        return _any(*(_map_tests(i, fn) for i in expr.items))
    if isinstance(expr, Negate):
        return _not(_map_tests(expr.item, fn))
    return expr


def _on_constant(test: _Test, parent: Attribute, value: Any) -> Const:
    """``test`` on a sub-attribute whose value is the constant ``value``."""
    if value is None:
        return FALSE
    if isinstance(test, Assigned):
        return TRUE
    if isinstance(test, Present):
        return Const(value != "")
    assert isinstance(test.target, ElementSub)
    op = "ne" if test.op == "ne" else test.op
    predicate = compile_value_filter(
        Compare(AttrPath(None, test.target.sub), op, test.value), parent
    )
    return Const(predicate({test.target.sub: value}))


def _retarget(test: _Test, target: Target) -> _Test:
    return replace(test, target=target)


class _Translator(FilterVisitor[Expr]):
    def __init__(self, mapping: BoundMapping) -> None:
        super().__init__(mapping.rt)
        self.mapping = mapping

    # -- connectives (RFC 7644 Table 4) -------------------------------------------------

    def visit_and(self, node: And) -> Expr:
        return _all(self.visit(node.left), self.visit(node.right))

    def visit_or(self, node: Or) -> Expr:
        return _any(self.visit(node.left), self.visit(node.right))

    def visit_not(self, node: Not) -> Expr:
        return _not(self.visit(node.operand))

    # -- leaves ---------------------------------------------------------------------------

    def visit_compare(self, node: Compare) -> Expr:
        return self._leaf(node, self.resolve(node.path))

    def visit_present(self, node: PresentNode) -> Expr:
        return self._leaf(node, self.resolve(node.path))

    def visit_value_path(self, node: ValuePath) -> Expr:
        # RFC 7644 Table 5: the expressions in brackets "MUST be applied to the same value
        # of a parent attribute".
        ref = self.resolve(node.path)
        inner = self._relative(node.filter, ref)
        return self._some_element(ref, inner)

    def _relative(self, node: Filter, parent: AttrRef) -> Expr:
        if isinstance(node, And):
            return _all(self._relative(node.left, parent), self._relative(node.right, parent))
        if isinstance(node, Or):
            return _any(self._relative(node.left, parent), self._relative(node.right, parent))
        if isinstance(node, Not):
            return _not(self._relative(node.operand, parent))
        if isinstance(node, (Compare, PresentNode)):
            ref = self.resolve(node.path, parent=parent)
            assert ref.sub is not None
            return _tests(node, ElementSub(ref.sub.name, ref.sub))
        raise Untranslatable(f"Nested value filter {str(node)!r}.")

    # One branch per shape of attribute a filter leaf can name (id, meta, a multi-valued
    # complex attribute or one of its sub-attributes, a single-valued complex one, a simple
    # one): each branch is one SCIM rule, and keeping them side by side shows they cover all.
    def _leaf(self, node: Compare | PresentNode, ref: AttrRef) -> Expr:  # noqa: C901
        attr = ref.attribute
        rt = self.mapping.rt
        if ref.urn is None and attr.name == "id":
            return _tests(node, MetaValue("id", attr))
        if ref.urn is None and attr.name == "meta":
            if ref.sub is None:
                return TRUE if isinstance(node, PresentNode) or node.op == "ne" else FALSE
            name = ref.sub.name
            if name == "resourceType":
                on_type = _tests(node, ElementSub(name, ref.sub))
                return _map_tests(on_type, lambda t: _on_constant(t, attr, rt.name))
            if name in ("created", "lastModified", "version"):
                meta_name: MetaName = name  # type: ignore[assignment]
                return _tests(node, MetaValue(meta_name, ref.sub))
            raise Untranslatable(f"This backend cannot filter on {str(ref)!r}.")
        if attr.multi_valued and attr.is_complex:
            if ref.sub is None:
                subs = attr.sub_attributes
                if isinstance(node, PresentNode):
                    inner = _any(*(Present(ElementSub(s.name, s)) for s in subs))
                    return self._some_element(ref, inner)
                assigned = self._some_element(
                    ref, _any(*(Assigned(ElementSub(s.name, s)) for s in subs))
                )
                if node.value is None:
                    return assigned if node.op == "ne" else _not(assigned)
                raise Untranslatable(f"Compare a sub-attribute of {str(ref)!r}.")
            sub = ElementSub(ref.sub.name, ref.sub)
            if isinstance(node, Compare) and node.op == "ne" and node.value is not None:
                # Per element: its value is null or differs; or there is no element.
                some = self._some_element(
                    ref, _any(_not(Assigned(sub)), Cmp(sub, "ne", node.value))
                )
                return _any(some, _not(self._some_element(ref, TRUE)))
            return self._quantified(node, sub, lambda inner: self._some_element(ref, inner))
        if attr.is_complex and ref.sub is None:
            # A single-valued complex attribute: assigned/present if any sub-attribute is.
            key = attr_key(ref.urn, attr.name)
            probes: list[Expr] = []
            present = isinstance(node, PresentNode)
            for s in attr.sub_attributes:
                f = self.mapping.single(AttrRef(ref.urn, attr, s))
                if f is not None:
                    col = Column(f.field, s)
                    probes.append(Present(col) if present else Assigned(col))
            any_leaf = LeafValue(key, "*", attr)
            probes.append(Present(any_leaf) if present else Assigned(any_leaf))
            found = _any(*probes)
            if present:
                return found
            if isinstance(node, Compare) and node.value is None:
                return found if node.op == "ne" else _not(found)
            raise Untranslatable(f"Compare a sub-attribute of {str(ref)!r}.")
        f = self.mapping.single(ref)
        target: Target
        if f is not None:
            target = Column(f.field, ref.target)
        else:
            sub_name = ref.sub.name if ref.sub is not None else ""
            target = LeafValue(attr_key(ref.urn, attr.name), sub_name, ref.target)
        return _tests(node, target)

    def _quantified(
        self, node: Compare | PresentNode, target: Target, some: Callable[[Expr], Expr]
    ) -> Expr:
        if isinstance(node, Compare) and node.value is None:
            found = some(Assigned(target))
            return found if node.op == "ne" else _not(found)
        return some(_tests(node, target))

    def _some_element(self, ref: AttrRef, inner: Expr) -> Expr:
        """Some value of the multi-valued complex ``ref.attribute`` passes ``inner``."""
        attr = ref.attribute
        if ref.urn is None and attr.name == "members" and self.mapping.has_members:
            return self._some_member(inner)
        key = attr_key(ref.urn, attr.name)
        groups = self.mapping.groups_of(ref.urn, attr.name)
        if not groups:
            return AnyElement(key, inner)

        def in_extras(test: _Test) -> Expr:
            # An element's own value, or — for the element a field holds, which keeps no
            # value of that sub-attribute — the field's.
            assert isinstance(test.target, ElementSub)
            sub = test.target.sub
            alternatives: list[Expr] = [test]
            for g in groups:
                f = g.field_for(sub)
                if f is not None:
                    alternatives.append(
                        _all(
                            element_where(g),
                            _not(Assigned(test.target)),
                            _retarget(test, Column(f.field, test.target.attribute)),
                        )
                    )
            return _any(*alternatives)

        options: list[Expr] = [AnyElement(key, _map_tests(inner, in_extras))]
        for g in groups:
            # A row the app wrote has no element in the extras: the fields make one.

            def virtual(test: _Test, g: ElementGroup = g) -> Expr:
                assert isinstance(test.target, ElementSub)
                sub = test.target.sub
                f = g.field_for(sub)
                if f is not None:
                    return _retarget(test, Column(f.field, test.target.attribute))
                const = dict(g.where).get(sub)
                return _on_constant(test, attr, const)

            exists = _any(*(Assigned(Column(f.field, f.ref.target)) for f in g.fields))
            options.append(
                _all(_not(AnyElement(key, element_where(g))), exists, _map_tests(inner, virtual))
            )
        return _any(*options)

    def _some_member(self, inner: Expr) -> Expr:
        members = self.mapping.rt.schema.attribute("members")
        relation = self.mapping.mapping.members
        assert members is not None  # checked by bind_mapping
        assert relation is not None
        member_type = relation.member_type

        def on_member(test: _Test) -> Expr:
            assert isinstance(test.target, ElementSub)
            sub = test.target.sub
            if sub == "value":
                return _retarget(test, MemberValue(test.target.attribute))
            if sub == "type":
                return _on_constant(test, members, member_type)
            if not isinstance(test, Cmp):
                # ``display`` and ``$ref`` are derived on output, not kept: as an
                # alternative of ``members pr`` they add nothing to ``value``.
                return FALSE
            raise Untranslatable(f"This backend cannot filter on 'members.{sub}'.")

        mapped = _map_tests(inner, on_member)
        if isinstance(mapped, Const):
            # A test that holds whatever the member (``members[type eq "User"]``): some
            # member exists; or one that never holds.
            return AnyMember(TRUE) if mapped.value else FALSE
        return AnyMember(mapped)


def element_where(g: ElementGroup) -> Expr:
    """Inside :class:`AnyElement`: the element passes the equality tests that choose the
    value a field holds (``type eq "work"`` for ``emails[type eq "work"].value``)."""
    tests: list[Expr] = []
    for name, value in g.where:
        sub = g.ref.attribute.sub(name)
        assert sub is not None
        tests.append(Cmp(ElementSub(name, sub), "eq", value))
    return _all(*tests)


def _tests(node: Compare | PresentNode, target: Target) -> Expr:
    """``node`` on one value (or, for a multi-valued target, on some value) at ``target``."""
    if isinstance(node, PresentNode):
        return Present(target)
    value: Value = node.value
    if value is None:
        # RFC 7643 §2.5: "eq null" is unassigned, "ne null" assigned.
        return Assigned(target) if node.op == "ne" else _not(Assigned(target))
    if node.op == "ne":
        # RFC 7644 Table 3 "ne": "not identical"; an unassigned value is null, not
        # identical to any non-null operator value.
        return _any(Cmp(target, "ne", value), _not(Assigned(target)))
    return Cmp(target, node.op, value)


def translate(filter: Filter, mapping: BoundMapping) -> Expr:
    """The ORM-neutral expression of a *bound* filter over ``mapping``'s storage.

    Raises :class:`~scim2_core.filter.Untranslatable` (400 ``invalidFilter``) for a part
    the storage cannot answer (e.g. ``members.display``).
    """
    return _Translator(mapping).visit(filter)


# --- sorting ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ElementSort:
    """Sort by sub ``sub`` of the primary element of ``key``, else the first element
    (RFC 7644 §3.4.2.3); ``fields`` are the groups whose value of ``sub`` a field holds."""

    key: str
    sub: str
    attribute: Attribute
    fields: tuple[tuple[ElementGroup, Column], ...]


SortTarget: TypeAlias = Column | LeafValue | MetaValue | ElementSort


def sort_target(ref: AttrRef, mapping: BoundMapping) -> SortTarget:
    """Where the value ``sortBy`` names lives. Raises :class:`Untranslatable` for what
    cannot be sorted on (``members``, ``groups``)."""
    attr = ref.attribute
    if ref.urn is None and attr.name == "id":
        return MetaValue("id", attr)
    if (
        ref.urn is None
        and attr.name == "meta"
        and ref.sub is not None
        and ref.sub.name in ("created", "lastModified", "version")
    ):
        name: MetaName = ref.sub.name  # type: ignore[assignment]
        return MetaValue(name, ref.sub)
    if (ref.urn is None and attr.name in ("members", "groups", "meta")) or (
        attr.is_complex and not attr.multi_valued and ref.sub is None
    ):
        raise Untranslatable(f"This backend cannot sort by {str(ref)!r}.")
    if attr.multi_valued and attr.is_complex:
        sub = ref.sub or attr.sub("value")
        if sub is None:
            raise Untranslatable(f"This backend cannot sort by {str(ref)!r}.")
        fields = []
        for g in mapping.groups_of(ref.urn, attr.name):
            f = g.field_for(sub.name)
            if f is not None:
                fields.append((g, Column(f.field, sub)))
        return ElementSort(attr_key(ref.urn, attr.name), sub.name, sub, tuple(fields))
    f = mapping.single(ref)
    if f is not None:
        return Column(f.field, ref.target)
    return LeafValue(attr_key(ref.urn, attr.name), ref.sub.name if ref.sub else "", ref.target)
