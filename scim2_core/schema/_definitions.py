"""Attribute definitions, schemas and resource types, taken from scim2-models.

scim2-models is the schema authority: this module reads each model's RFC 7643 §7
schema representation once, at engine construction, into small frozen objects that the hot
path (filters, PATCH, projection, validation) consults with plain dict lookups.

Values are checked and brought to canonical form by :mod:`._values`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from .._errors import ConfigurationError, InvalidPathError
from .._urns import ENTERPRISE_USER_URN, RESOURCE_TYPE_URN, SCHEMA_URN

__all__ = [
    "COMMON_ATTRIBUTES",
    "AttrRef",
    "Attribute",
    "ResourceType",
    "Schema",
    "iter_schema_ids",
    "resource_type_from_model",
]


AttrType = Literal[
    "string", "boolean", "decimal", "integer", "dateTime", "binary", "reference", "complex"
]
Mutability = Literal["readOnly", "readWrite", "immutable", "writeOnly"]
Returned = Literal["always", "never", "default", "request"]
Uniqueness = Literal["none", "server", "global"]

_TYPES = frozenset(
    ("string", "boolean", "decimal", "integer", "dateTime", "binary", "reference", "complex")
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribute:
    """One attribute definition (RFC 7643 §7, "attributes")."""

    name: str
    type: AttrType = "string"
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: Mutability = "readWrite"
    returned: Returned = "default"
    uniqueness: Uniqueness = "none"
    description: str = ""
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: tuple[Attribute, ...] = ()
    _by_lower: Mapping[str, Attribute] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ConfigurationError(f"attribute {self.name!r}: unknown type {self.type!r}")
        object.__setattr__(self, "_by_lower", {a.name.lower(): a for a in self.sub_attributes})

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute called ``name`` (case-insensitive, RFC 7643 §2.1), or None."""
        return self._by_lower.get(name.lower())

    @property
    def is_complex(self) -> bool:
        return self.type == "complex"

    def to_dict(self) -> dict[str, Any]:
        """The RFC 7643 §7 representation of this attribute."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.canonical_values:
            out["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            out["referenceTypes"] = list(self.reference_types)
        if self.sub_attributes:
            out["subAttributes"] = [a.to_dict() for a in self.sub_attributes]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attribute:
        """Build from an RFC 7643 §7 attribute representation (as scim2-models emits it)."""
        return cls(
            name=data["name"],
            type=data.get("type", "string"),
            multi_valued=bool(data.get("multiValued", False)),
            required=bool(data.get("required", False)),
            case_exact=bool(data.get("caseExact", False)),
            mutability=data.get("mutability", "readWrite"),
            returned=data.get("returned", "default"),
            uniqueness=data.get("uniqueness", "none"),
            description=data.get("description") or "",
            canonical_values=tuple(data.get("canonicalValues") or ()),
            reference_types=tuple(data.get("referenceTypes") or ()),
            sub_attributes=tuple(cls.from_dict(s) for s in data.get("subAttributes") or ()),
        )


# RFC 7643 §3.1 "Common Attributes": "Each SCIM resource (Users, Groups, etc.) includes the
# following common attributes. [...] these attributes are not defined in any particular
# schema". They are not in the schemas scim2-models publishes, so they are defined here.
COMMON_ATTRIBUTES: Final[tuple[Attribute, ...]] = (
    Attribute(
        name="id",
        case_exact=True,
        mutability="readOnly",
        returned="always",
        uniqueness="server",
        description="A unique identifier for a SCIM resource as defined by the service provider.",
    ),
    Attribute(
        name="externalId",
        case_exact=True,
        description="A String that is an identifier for the resource as defined by the "
        "provisioning client.",
    ),
    Attribute(
        name="meta",
        type="complex",
        mutability="readOnly",
        description="A complex attribute containing resource metadata.",
        sub_attributes=(
            Attribute(name="resourceType", case_exact=True, mutability="readOnly"),
            Attribute(name="created", type="dateTime", mutability="readOnly"),
            Attribute(name="lastModified", type="dateTime", mutability="readOnly"),
            Attribute(name="location", type="reference", case_exact=True, mutability="readOnly"),
            Attribute(name="version", case_exact=True, mutability="readOnly"),
        ),
    ),
)
_COMMON_BY_LOWER: Final = {a.name.lower(): a for a in COMMON_ATTRIBUTES}


@dataclass(frozen=True, slots=True, kw_only=True)
class Schema:
    """A schema (RFC 7643 §7): its URN id and its top-level attributes."""

    id: str
    name: str
    description: str = ""
    attributes: tuple[Attribute, ...] = ()
    _by_lower: Mapping[str, Attribute] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_lower", {a.name.lower(): a for a in self.attributes})

    def attribute(self, name: str) -> Attribute | None:
        """The top-level attribute called ``name`` (case-insensitive), or None."""
        return self._by_lower.get(name.lower())

    def to_dict(self, base_url: str = "") -> dict[str, Any]:
        """The RFC 7643 §7 representation served at ``/Schemas/{id}``."""
        return {
            "schemas": [SCHEMA_URN],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_dict() for a in self.attributes],
            "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{self.id}"},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        return cls(
            id=data["id"],
            name=data.get("name") or data["id"].rsplit(":", 1)[-1],
            description=data.get("description") or "",
            attributes=tuple(Attribute.from_dict(a) for a in data.get("attributes") or ()),
        )


@dataclass(frozen=True, slots=True)
class AttrRef:
    """An attribute path resolved against a resource type.

    ``urn`` is the extension schema URN the attribute lives under in the resource dict, or
    None for core and common attributes. ``attribute`` is the top-level attribute and
    ``sub`` the sub-attribute, if the path names one. :attr:`keys` gives the dict keys to
    follow, in canonical spelling.
    """

    urn: str | None
    attribute: Attribute
    sub: Attribute | None = None

    @property
    def target(self) -> Attribute:
        """The attribute the path ends at."""
        return self.sub if self.sub is not None else self.attribute

    @property
    def keys(self) -> tuple[str, ...]:
        head = (self.urn,) if self.urn is not None else ()
        tail = (self.sub.name,) if self.sub is not None else ()
        return (*head, self.attribute.name, *tail)

    def __str__(self) -> str:
        prefix = f"{self.urn}:" if self.urn is not None else ""
        suffix = f".{self.sub.name}" if self.sub is not None else ""
        return f"{prefix}{self.attribute.name}{suffix}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceType:
    """A resource type (RFC 7643 §6): an endpoint, a core schema and its extensions."""

    name: str
    endpoint: str
    schema: Schema
    extensions: tuple[tuple[Schema, bool], ...] = ()
    description: str = ""
    _ext_by_lower: Mapping[str, Schema] = field(default_factory=dict, repr=False, compare=False)
    _urns_longest_first: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.endpoint.startswith("/") or "/" in self.endpoint[1:]:
            raise ConfigurationError(f"resource type {self.name}: bad endpoint {self.endpoint!r}")
        exts = {s.id.lower(): s for s, _ in self.extensions}
        object.__setattr__(self, "_ext_by_lower", exts)
        urns = sorted([self.schema.id.lower(), *exts], key=len, reverse=True)
        object.__setattr__(self, "_urns_longest_first", tuple(urns))

    @property
    def schema_ids(self) -> tuple[str, ...]:
        return (self.schema.id, *(s.id for s, _ in self.extensions))

    def extension(self, urn: str) -> Schema | None:
        """The extension schema with this URN (case-insensitive), or None."""
        return self._ext_by_lower.get(urn.lower())

    def top_level(self, key: str) -> tuple[str | None, Attribute | Schema] | None:
        """What a top-level key of a resource body names, case-insensitively.

        Returns ``(None, attribute)`` for core and common attributes, ``(urn, schema)`` for
        an extension URN key, or None for an unknown key.
        """
        low = key.lower()
        attr = _COMMON_BY_LOWER.get(low) or self.schema.attribute(key)
        if attr is not None:
            return None, attr
        ext = self._ext_by_lower.get(low)
        if ext is not None:
            return ext.id, ext
        return None

    def split_urn(self, path: str) -> tuple[str | None, str]:
        """Split a known schema URN prefix off ``path``: ``(canonical urn or None, rest)``.

        RFC 7644 §3.10: attributes may be named by their fully qualified URN,
        ``urn:...:User:name.familyName``. A URN of the core schema is dropped (core
        attributes live at the top level); a path that *is* an extension URN returns
        ``(urn, "")``. Raises :class:`InvalidPathError` for an unknown ``urn:`` prefix.
        """
        low = path.lower()
        if not low.startswith("urn:"):
            return None, path
        for urn in self._urns_longest_first:
            if low.startswith(urn) and (len(low) == len(urn) or low[len(urn)] == ":"):
                rest = path[len(urn) + 1 :]
                if urn == self.schema.id.lower():
                    return None, rest
                return self._ext_by_lower[urn].id, rest
        raise InvalidPathError(f"Unknown schema in attribute path {path!r}.")

    def resolve(self, urn: str | None, name: str, sub: str | None = None) -> AttrRef | None:
        """Resolve ``[urn:]name[.sub]``; None if no such attribute (caller picks the error).

        ``urn`` may be the core schema URN, an extension URN, or None (core and common
        attributes). Names are case-insensitive (RFC 7643 §2.1).
        """
        ext_urn: str | None = None
        attr: Attribute | None
        if urn is None or urn.lower() == self.schema.id.lower():
            attr = self.schema.attribute(name)
            if attr is None and urn is None:
                attr = _COMMON_BY_LOWER.get(name.lower())
        else:
            ext = self._ext_by_lower.get(urn.lower())
            if ext is None:
                return None
            ext_urn = ext.id
            attr = ext.attribute(name)
        if attr is None:
            return None
        if sub is None:
            return AttrRef(ext_urn, attr)
        sub_attr = attr.sub(sub)
        if sub_attr is None:
            return None
        return AttrRef(ext_urn, attr, sub_attr)

    def resolve_path(self, path: str) -> AttrRef:
        """Resolve a textual attribute path (``name``, ``name.sub``, ``urn:...:name.sub``).

        Raises :class:`InvalidPathError` naming the path if it resolves to nothing.
        """
        urn, rest = self.split_urn(path)
        name, _, sub = rest.partition(".")
        ref = self.resolve(urn, name, sub or None) if name else None
        if ref is None:
            raise InvalidPathError(f"Unknown attribute {path!r} for resource type {self.name}.")
        return ref

    def iter_attributes(self) -> Iterator[tuple[str | None, Attribute]]:
        """Every top-level attribute with the URN it lives under (None for core/common)."""
        for attr in COMMON_ATTRIBUTES:
            yield None, attr
        for attr in self.schema.attributes:
            yield None, attr
        for ext, _ in self.extensions:
            for attr in ext.attributes:
                yield ext.id, attr

    def to_dict(self, base_url: str = "") -> dict[str, Any]:
        """The RFC 7643 §6 representation served at ``/ResourceTypes/{name}``."""
        out: dict[str, Any] = {
            "schemas": [RESOURCE_TYPE_URN],
            "id": self.name,
            "name": self.name,
            "description": self.description or self.name,
            "endpoint": self.endpoint,
            "schema": self.schema.id,
            "meta": {
                "resourceType": "ResourceType",
                "location": f"{base_url}/ResourceTypes/{self.name}",
            },
        }
        if self.extensions:
            out["schemaExtensions"] = [
                {"schema": s.id, "required": required} for s, required in self.extensions
            ]
        return out


def resource_type_from_model(
    model: Any, *, name: str | None = None, endpoint: str | None = None
) -> ResourceType:
    """Build a :class:`ResourceType` from a scim2-models ``Resource`` class.

    Extensions come from the model's parameters: ``User[EnterpriseUser]`` yields the User
    resource type with the enterprise extension (not required).
    """
    try:
        core = Schema.from_dict(model.to_schema().model_dump(mode="json", exclude_none=True))
        exts: list[tuple[Schema, bool]] = []
        for urn, ext_model in (model.get_extension_models() or {}).items():
            ext = Schema.from_dict(ext_model.to_schema().model_dump(mode="json", exclude_none=True))
            if urn == ENTERPRISE_USER_URN:
                ext = _optional_manager(ext)
            exts.append(
                (
                    Schema(
                        id=urn,
                        name=ext.name,
                        description=ext.description,
                        attributes=ext.attributes,
                    ),
                    False,
                )
            )
    except AttributeError as exc:  # pragma: no cover - guard for misuse
        raise ConfigurationError(f"{model!r} is not a scim2-models Resource class") from exc
    rt_name = name or core.name
    return ResourceType(
        name=rt_name,
        endpoint=endpoint or f"/{rt_name}s",
        schema=core,
        extensions=tuple(exts),
        # RFC 7643 §6 "description": "The resource type's human-readable description";
        # the core schema's description (not the Python class name).
        description=core.description or rt_name,
    )


def _optional_manager(schema: Schema) -> Schema:
    """The enterprise extension with ``manager.value`` and ``manager.$ref`` optional.

    RFC 7643 §4.3 calls ``value`` RECOMMENDED, and §8.7.1's schema has ``"required":
    false`` for both (its descriptions' "REQUIRED" is an erratum); scim2-models marks them
    required. Okta sends ``"manager": {"value": null}`` once a manager is removed and
    ``{"displayName": ...}`` alone where no id is mapped: neither may be refused.
    """

    def optional(a: Attribute) -> Attribute:
        return replace(a, required=False) if a.name in ("value", "$ref") else a

    attributes = tuple(
        replace(a, sub_attributes=tuple(optional(s) for s in a.sub_attributes))
        if a.name == "manager"
        else a
        for a in schema.attributes
    )
    return replace(schema, attributes=attributes)


def iter_schema_ids(types: Iterable[ResourceType]) -> list[str]:
    """Every schema URN the given resource types use, in order, without duplicates."""
    seen: dict[str, None] = {}
    for rt in types:
        for sid in rt.schema_ids:
            seen.setdefault(sid, None)
    return list(seen)
