"""Mapping SCIM resources onto an application's own models, independently of any ORM.

An application that adds SCIM already has its users and groups (Django's ``auth.User`` and
``auth.Group``, a ``Team`` with a many-to-many to users, SQLAlchemy models). A mapping says,
as data, where each SCIM attribute lives; an ORM backend (``scim2_core_django.backend``)
reads and writes the app's rows through it and keeps scim2-core's own bookkeeping beside
them, joined by primary key, never inside the app's models.

The design, in three layers:

1. **Vocabulary** (:mod:`._nodes`): :class:`ResourceMapping` names the model, its
   :class:`Field` entries map SCIM paths to field names (``"userName"``,
   ``"name.givenName"``, ``'emails[type eq "work"].value'``, an extension's attribute by URN),
   with optional converters; :class:`Members` names the relation holding a group's members.
   Small frozen dataclasses: a mapping is data, comparable and printable.
2. **Binding** (:func:`bind_mapping` → :class:`BoundMapping`): every path is resolved
   against the :class:`~scim2_core.ResourceType` at start-up; a path that names nothing, a
   multi-valued attribute mapped as a whole, a complex attribute, or an attribute the engine
   owns (``id``, ``meta``, ``groups``...) raises :class:`~scim2_core.ConfigurationError`
   naming it. The bound mapping splits a resource into *field values* and *extras* (what no
   field holds: kept as JSON beside the row so GET and PUT round-trip what an IdP sent, or
   dropped, or rejected, as :data:`Unmapped` says) and joins them back
   (:meth:`BoundMapping.write`, :meth:`BoundMapping.read`); :meth:`BoundMapping.leaves`
   lists the scalars of the extras for a value index, so that filters on attributes without
   a field run in the database too.
3. **Expressions** (:func:`translate`, :func:`sort_target`): a bound filter becomes a tree of
   ORM-neutral nodes saying where each tested value lives (a field, the value index, the
   bookkeeping, the members relation) and what is tested. All SCIM filter semantics (``ne``
   and unassigned values, ``eq null``, ``pr``, value paths over one element, the element a
   field holds) are decided there, once; an ORM only compiles the nodes into its own
   expressions (Django: ``Q``, ``Exists``; SQLAlchemy: ``and_``, ``exists()``).

Nothing here imports an ORM or a web framework.
"""

from ._bound import ELEMENT, BoundField, BoundMapping, ElementGroup, Leaf, attr_key, bind_mapping
from ._expr import (
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
    SortTarget,
    element_where,
    sort_target,
    translate,
)
from ._nodes import Field, Members, OnDelete, ResourceMapping, Unmapped

__all__ = [
    "ELEMENT",
    "AllOf",
    "AnyElement",
    "AnyMember",
    "AnyOf",
    "Assigned",
    "BoundField",
    "BoundMapping",
    "Cmp",
    "Column",
    "Const",
    "ElementGroup",
    "ElementSort",
    "ElementSub",
    "Expr",
    "Field",
    "Leaf",
    "LeafValue",
    "MemberValue",
    "Members",
    "MetaValue",
    "Negate",
    "OnDelete",
    "Present",
    "ResourceMapping",
    "SortTarget",
    "Unmapped",
    "attr_key",
    "bind_mapping",
    "element_where",
    "sort_target",
    "translate",
]
