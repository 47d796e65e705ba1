"""The declarative vocabulary: which model and field hold which SCIM attribute.

Plain frozen data, no ORM in sight; :func:`scim2_core.mapping.bind_mapping` checks it
against a :class:`~scim2_core.ResourceType`, and an ORM backend checks the model and field
names against its models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = ["Field", "Members", "OnDelete", "ResourceMapping", "Unmapped"]

#: What happens to attributes of a written resource that no :class:`Field` maps:
#: ``"keep"`` stores them beside the row (GET and PUT round-trip them), ``"drop"`` forgets
#: them, ``"reject"`` answers 400 ``invalidValue`` naming them.
Unmapped: TypeAlias = Literal["keep", "drop", "reject"]

#: What a SCIM DELETE does to the app's row: delete it, or keep it and set the field
#: mapped to ``active`` to false (the resource is gone for SCIM either way).
OnDelete: TypeAlias = Literal["delete", "deactivate"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """One SCIM attribute stored in one model field.

    ``attribute`` is a SCIM path as a PATCH ``path`` spells it (RFC 7644 §3.5.2):
    ``"userName"``, ``"name.givenName"``, an extension attribute by its URN
    (``"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"``), or
    one value of a multi-valued attribute chosen by equality tests on its sub-attributes,
    ``'emails[type eq "work"].value'``. ``field`` is the model field's name.

    ``to_scim(field value) -> SCIM value`` and ``to_model(SCIM value) -> field value``
    convert where the two differ; both default to the identity. ``None`` is "unassigned"
    on both sides, and so is an empty string read from a field (a ``CharField`` that is
    ``NOT NULL``, such as ``auth.User.email``, stores "no value" as ``""``).
    """

    attribute: str
    field: str
    to_scim: Callable[[Any], Any] | None = None
    to_model: Callable[[Any], Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Members:
    """The relation that holds a group's members.

    ``relation`` is the name, on the group's model, of a many-to-many relation to the
    model of ``member_type`` (``"user_set"`` for ``auth.Group``, ``"members"`` for a
    ``Team`` with ``members = ManyToManyField(User)``). Adding a member inserts one row of
    the relation and removing one deletes one; the group's other rows are not rewritten.
    """

    relation: str
    member_type: str = "User"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceMapping:
    """How the resources of one SCIM resource type live in one model.

    ``resource_type`` names the :class:`~scim2_core.ResourceType` (``"User"``); ``model``
    is the model class itself, or a name the ORM backend looks up (``"auth.User"`` in
    Django: ``app_label.ModelName``; a class name among the SQLAlchemy backend's
    ``models``).
    ``fields`` map attributes to fields; ``members`` names the membership relation of a
    group type. Everything else a client sends is handled as ``unmapped`` says, and
    ``externalId``, when no field holds it, is always kept beside the row.
    """

    resource_type: str
    model: str | type
    fields: tuple[Field, ...] = ()
    members: Members | None = None
    unmapped: Unmapped = "keep"
    on_delete: OnDelete = "delete"
