"""The app's models as this backend sees them: table, primary key, mapped columns, relation.

Everything is looked up through SQLAlchemy's inspection API at construction, so that a
mapping naming a column or relationship the model does not have fails at start-up with its
name (:class:`~scim2_core.ConfigurationError`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import NoInspectionAvailable

from scim2_core import ConfigurationError
from scim2_core.mapping import BoundMapping, ResourceMapping
from scim2_core.schema import AttrRef


@dataclass(frozen=True, slots=True)
class Relation:
    """A many-to-many relationship holding a group's members, as rows of its table."""

    table: sa.Table
    group_col: sa.Column[Any]  # the association table's column pointing at the group
    member_col: sa.Column[Any]  # ... and at the member
    member_type: str


@dataclass(frozen=True, slots=True)
class Unique:
    """A ``uniqueness: server|global`` attribute: where its values are in a resource."""

    label: str
    ref: AttrRef
    field: str | None  # the mapped column holding it, if any

    def keys(self, resource: Mapping[str, Any]) -> set[str]:
        container: Any = resource if self.ref.urn is None else resource.get(self.ref.urn)
        value = container.get(self.ref.attribute.name) if isinstance(container, dict) else None
        if self.ref.sub is not None:
            items = value if isinstance(value, list) else [value]
            values = [i.get(self.ref.sub.name) for i in items if isinstance(i, dict)]
        else:
            values = value if isinstance(value, list) else [value]
        exact = self.ref.target.case_exact
        return {v if exact else v.lower() for v in values if isinstance(v, str)}


class ModelType:
    """One mapped resource type: its model's table, columns, relation and unique attributes."""

    def __init__(self, mapping: ResourceMapping, model: Any) -> None:
        self.mapping = mapping
        self.model = model
        try:
            mapper = sa.inspect(model)
        except NoInspectionAvailable:
            raise ConfigurationError(
                f"SCIM mapping of {mapping.resource_type}: {model!r} is not a mapped "
                f"SQLAlchemy model."
            ) from None
        self.mapper = mapper
        #: The model's name, for messages.
        self.model_name: str = getattr(model, "__name__", str(model))
        table = mapper.local_table
        if not isinstance(table, sa.Table):
            raise ConfigurationError(
                f"SCIM mapping of {mapping.resource_type}: {self.model_name} is not mapped to "
                f"one table."
            )
        self.table: sa.Table = table
        pks = list(table.primary_key.columns)
        if len(pks) != 1:
            raise ConfigurationError(
                f"SCIM mapping of {mapping.resource_type}: {self.model_name} needs a primary key "
                f"of one column."
            )
        self.pk: sa.Column[Any] = pks[0]
        try:
            python_type = self.pk.type.python_type
        except NotImplementedError:
            python_type = str
        self.int_pk = python_type is int
        self._pk_python: Callable[[str], Any] = python_type if python_type is not str else str
        self.columns: dict[str, sa.Column[Any]] = {}
        for f in mapping.fields:
            attr = mapper.column_attrs.get(f.field)
            if attr is None or len(attr.columns) != 1 or attr.columns[0].table is not table:
                raise ConfigurationError(
                    f"SCIM mapping of {mapping.resource_type}: {self.model_name} has no column "
                    f"{f.field!r} (for {f.attribute!r})."
                )
            self.columns[f.field] = attr.columns[0]
        #: The mapped fields in the order their values are hashed (to notice the app's
        #: changes to its rows).
        self.hash_fields = tuple(sorted(self.columns))
        self.bm: BoundMapping | None = None
        self.relation: Relation | None = None
        self.uniques: tuple[Unique, ...] = ()
        #: When the full check for rows the app wrote without the ORM last ran.
        self.checked = float("-inf")

    @property
    def name(self) -> str:
        return self.mapping.resource_type

    @property
    def bound(self) -> BoundMapping:
        if self.bm is None:
            raise ConfigurationError(f"The backend was not bound to {self.name}.")
        return self.bm

    def pk_text(self, pk: Any) -> str:
        return str(pk)

    def pk_value(self, text: str) -> Any:
        try:
            return self._pk_python(text)
        except (TypeError, ValueError):
            return text

    def check_insertable(self) -> None:
        """Every column a SCIM create leaves out must have a default."""
        for col in self.table.columns:
            if col is self.pk or col.nullable or col in self.columns.values():
                continue
            if col.default is not None or col.server_default is not None:
                continue
            if col.primary_key and col.autoincrement in (True, "auto"):
                continue
            raise ConfigurationError(
                f"SCIM mapping of {self.name}: column {self.table.name}.{col.name} is NOT NULL "
                f"without a default and no SCIM attribute is mapped to it; map one or give "
                f"the column a default."
            )


def find_model(name: str | type, models: Iterable[Any]) -> Any:
    """The model ``name`` is (a class), or the one among ``models`` whose class name (or
    ``module.Class``) is ``name``."""
    if isinstance(name, type):
        return name
    for m in models:
        if name in (m.__name__, f"{m.__module__}.{m.__qualname__}"):
            return m
    return None


def find_relation(t: ModelType, name: str, member_type: str, member: ModelType) -> Relation:
    """The many-to-many relationship ``name`` of the group model, to the member model."""
    rel = t.mapper.relationships.get(name)
    if rel is None:
        raise ConfigurationError(
            f"SCIM mapping of {t.name}: {t.model_name} has no relationship {name!r}."
        )
    secondary = rel.secondary
    if not isinstance(secondary, sa.Table):
        raise ConfigurationError(
            f"SCIM mapping of {t.name}: {t.model_name}.{name} must be a many-to-many "
            f"relationship with an association table (secondary=...)."
        )
    if rel.mapper.class_ is not member.model:
        raise ConfigurationError(
            f"SCIM mapping of {t.name}: {t.model_name}.{name} relates "
            f"{rel.mapper.class_.__name__}, not the model of {member_type}."
        )
    group_pairs = [theirs for ours, theirs in rel.synchronize_pairs if ours is t.pk]
    member_pairs = [
        theirs for ours, theirs in rel.secondary_synchronize_pairs or () if ours is member.pk
    ]
    if len(group_pairs) != 1 or len(member_pairs) != 1:
        raise ConfigurationError(
            f"SCIM mapping of {t.name}: {t.model_name}.{name} must join the two primary "
            f"keys through one column each."
        )
    return Relation(secondary, group_pairs[0], member_pairs[0], member_type)
