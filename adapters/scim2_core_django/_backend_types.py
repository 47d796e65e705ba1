"""The pieces of :class:`~scim2_core_django.backend.DjangoModelBackend` that hold no
state: a mapped type, its relation and unique attributes, and the small helpers on rows,
resources and values that the reads and writes share.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from django.core.exceptions import (  # type: ignore[import-untyped]
    FieldDoesNotExist,
)

from scim2_core import ConfigurationError
from scim2_core.mapping import BoundMapping, ResourceMapping
from scim2_core.schema import AttrRef

#: The largest window one search reads (the engine caps ``count`` far below).
_MAX_WINDOW = 1 << 30


#: Fields whose cleaned value is the value the database gives back (no re-read to hash).
_EXACT_TYPES = frozenset(
    (
        "CharField",
        "TextField",
        "EmailField",
        "SlugField",
        "URLField",
        "BooleanField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
    )
)


#: Adopting this many rows at once refreshes the planner's statistics (see ``_analyze``).
_ANALYZE_AFTER = 1000


_INTEGER_PKS = frozenset(("AutoField", "BigAutoField", "SmallAutoField"))


_TEXT_FIELDS = frozenset(("CharField", "TextField", "EmailField", "SlugField", "URLField"))


@dataclass(frozen=True, slots=True)
class _Relation:
    """A many-to-many relation holding a group's members, as rows of its through model."""

    through: Any
    group_col: str  # the through model's attname pointing at the group
    group_field: str  # ... and the name of that foreign key
    member_col: str  # ... and at the member
    member_type: str


@dataclass(frozen=True, slots=True)
class _Unique:
    """A ``uniqueness: server|global`` attribute: where its values are in a resource."""

    label: str
    ref: AttrRef
    field: str | None  # the model field holding it, if any

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


class _Type:
    """One mapped resource type: its model, fields, relation and unique attributes."""

    def __init__(self, mapping: ResourceMapping, model: Any) -> None:
        self.mapping = mapping
        self.model = model
        self.bm: BoundMapping | None = None
        self.fields: dict[str, Any] = {}
        for f in mapping.fields:
            try:
                self.fields[f.field] = model._meta.get_field(f.field)
            except FieldDoesNotExist:
                raise ConfigurationError(
                    f"SCIM mapping of {mapping.resource_type}: {mapping.model} has no field "
                    f"{f.field!r} (for {f.attribute!r})."
                ) from None
        self.relation: _Relation | None = None
        self.uniques: tuple[_Unique, ...] = ()
        self.int_pk = model._meta.pk.get_internal_type() in _INTEGER_PKS

    @property
    def name(self) -> str:
        return self.mapping.resource_type

    @property
    def bound(self) -> BoundMapping:
        if self.bm is None:
            raise ConfigurationError(f"The backend was not bound to {self.name}.")
        return self.bm


class _ReadBk:
    """A bookkeeping row read by a fixed statement for a read alone: its columns as
    attributes, as a :class:`~scim2_core_django.models.ScimResource` has them, without
    building a model instance per row (a page reads a hundred); :meth:`row` makes the
    model instance when a write needs one (see ``_app_changed``)."""

    id: int
    scim_id: str
    resource_type: str
    object_pk: str
    version: int
    created: str
    last_modified: str
    content_hash: str
    extras: dict[str, Any]
    deleted: bool

    def __init__(self, names: Sequence[str], values: Sequence[Any]) -> None:
        self.__dict__.update(zip(names, values, strict=True))

    @property
    def pk(self) -> Any:
        return self.__dict__["id"]  # ScimResource's primary key

    def row(self, model: Any, using: str) -> Any:
        """The model instance of this row, as ``model.from_db`` makes it."""
        names = list(self.__dict__)
        return model.from_db(using, names, [self.__dict__[n] for n in names])


#: ``{app pk: groups_of's entries, or None to ask}``, or None when not read (``_fetch``).
_Groups = Mapping[Any, list[dict[str, Any]] | None] | None


#: ``_adopt``'s ``top`` when its caller has not read ``MAX(pk)``.
_UNREAD = object()


def _attname_field(opts: Any, attname: str) -> str:
    return str(next(f.name for f in opts.concrete_fields if f.attname == attname))


def _plain(t: _Type, connection: Any) -> bool:
    """Whether the fixed statements may read ``t``'s model: SQLite or PostgreSQL, an
    integer primary key, no inherited table, a default manager that filters no rows."""
    model = t.model
    return bool(
        connection.vendor in ("sqlite", "postgresql")
        and model._meta.pk.get_internal_type() in _INTEGER_PKS
        and not model._meta.parents
        and all(getattr(f, "concrete", False) and f.model is model for f in t.fields.values())
        and not model.objects.all().query.where
    )


def _chunks(values: Sequence[Any], size: int = 5000) -> Iterator[Sequence[Any]]:
    """``values`` in slices an IN list can hold (SQLite's limit of parameters)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _json_loader() -> Callable[[str | bytes], Any]:
    """orjson's ``loads`` when installed (the ``fast-json`` extra: several times the
    standard library's speed on the bookkeeping's extras, a page reads a hundred of
    them), else ``json.loads``. So that the value read is the same, a text orjson refuses
    (``NaN``, a lone surrogate's escape) and a text holding 19 digits in a row (orjson
    reads an integer past 64 bits as a float) are given to ``json.loads``."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is installed where the tests run
        return json.loads
    fast = orjson.loads
    long_number = re.compile(r"\d{19}").search

    def loads(text: str | bytes) -> Any:
        if long_number(text if isinstance(text, str) else text.decode()):
            return json.loads(text)
        try:
            return fast(text)
        except orjson.JSONDecodeError:
            return json.loads(text)

    return loads


_JSON_LOADS = _json_loader()


def _json_from_db(value: Any, expression: Any, connection: Any) -> Any:
    """``JSONField.from_db_value`` of a field without a ``decoder``, with
    :data:`_JSON_LOADS`: None stays None, a text that is not JSON is given back as it is."""
    if value is None:
        return None
    try:
        return _JSON_LOADS(value)
    except json.JSONDecodeError:
        return value


def _converters(fields: Sequence[Any], connection: Any) -> list[tuple[int, list[Any], Any]]:
    """``[(position, converters, column)]``: what Django applies to each value read, as
    its compiler does (the backend's own, then the field's ``from_db_value``; that of a
    plain ``JSONField`` replaced by :func:`_json_from_db`, which reads the same values)."""
    from django.db.models import JSONField  # type: ignore[import-untyped]

    out = []
    for i, f in enumerate(fields):
        if f is None:
            continue
        col = f.get_col(f.model._meta.db_table)
        funcs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if (
            isinstance(f, JSONField)
            and f.decoder is None
            and type(f).from_db_value is JSONField.from_db_value
        ):
            funcs = [_json_from_db if fn == f.from_db_value else fn for fn in funcs]
        if funcs:
            out.append((i, funcs, col))
    return out


def _convert(
    row: Sequence[Any], converters: list[tuple[int, list[Any], Any]], connection: Any
) -> list[Any]:
    values = list(row)
    for i, funcs, col in converters:
        value = values[i]
        for func in funcs:
            value = func(value, col, connection)
        values[i] = value
    return values


def _relation(t: _Type, relation: str, member_type: str, member_model: Any) -> _Relation:
    """Find ``relation`` (a forward or reverse many-to-many) on the group model."""
    model = t.model
    for f in model._meta.get_fields():
        if not f.many_to_many:
            continue
        forward = not f.auto_created or f.concrete
        name = f.name if forward else f.get_accessor_name()
        if name != relation:
            continue
        field = f if forward else f.remote_field
        through = field.remote_field.through
        if forward:
            group_name, member_name = field.m2m_field_name(), field.m2m_reverse_field_name()
        else:
            group_name, member_name = field.m2m_reverse_field_name(), field.m2m_field_name()
        related = f.related_model
        if related is not member_model:
            raise ConfigurationError(
                f"SCIM mapping of {t.name}: {t.mapping.model}.{relation} relates "
                f"{related._meta.label}, not the model of {member_type}."
            )
        return _Relation(
            through=through,
            group_col=through._meta.get_field(group_name).attname,
            group_field=group_name,
            member_col=through._meta.get_field(member_name).attname,
            member_type=member_type,
        )
    raise ConfigurationError(
        f"SCIM mapping of {t.name}: {t.mapping.model} has no many-to-many relation {relation!r}."
    )


#: ``json.dumps(..., default=str)`` without making an encoder per call (the same text).
_HASH_ENCODE = json.JSONEncoder(default=str).encode


def _hash(values: Mapping[str, Any], fields: Iterable[str]) -> str:
    data = _HASH_ENCODE([values.get(f) for f in sorted(fields)])
    return hashlib.sha256(data.encode()).hexdigest()[:32]


def _version(number: int) -> str:
    return f'W/"{number}"'


#: Set while the backend saves an app row itself (its ``post_save`` has nothing to do).
_OWN_SAVE = threading.local()


@contextmanager
def _own_save() -> Iterator[None]:
    _OWN_SAVE.active = True
    try:
        yield
    finally:
        _OWN_SAVE.active = False


def _row_of(t: _Type, instance: Any) -> dict[str, Any]:
    """The mapped fields of an instance loaded from the database, as ``values()`` gives
    them (no second read of a row just locked)."""
    row = {name: getattr(instance, field.attname) for name, field in t.fields.items()}
    row["pk"] = instance.pk
    return row


def _marker_column(field: Any) -> str:
    """The value index's column that holds a default of ``field`` (see ``_UNSET``)."""
    kind = field.get_internal_type()
    if kind in ("BooleanField", "NullBooleanField"):
        return "flag"
    if kind in _TEXT_FIELDS:
        return "text"
    return "number"


def _split_key(t: _Type, key: str) -> tuple[str | None, str]:
    urn, _, name = key.rpartition(":")
    return (urn or None), name


def _member_ids(resource: Mapping[str, Any]) -> list[str]:
    members = resource.get("members")
    if not isinstance(members, list):
        return []
    out = [m["value"] for m in members if isinstance(m, dict) and isinstance(m.get("value"), str)]
    return list(dict.fromkeys(out))


#: The extras' key recording fields given their default for an unassigned attribute.
_UNSET = "$unset"


def _visible(
    row: Mapping[str, Any], extras: Mapping[str, Any], *, owned: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(field values, extras)`` to read: a field still holding the default it got for an
    unassigned attribute reads as unassigned. With ``owned``, ``extras`` (a dict nobody
    else holds) is changed and given back instead of copied."""
    values = dict(row)
    rest = extras if owned and type(extras) is dict else dict(extras)
    unset = rest.pop(_UNSET, None)
    if isinstance(unset, dict):
        for name, default in unset.items():
            if values.get(name) == default:
                values[name] = None
    return values, rest


def _member_entries(resource: Mapping[str, Any], member_type: str) -> list[dict[str, Any]]:
    """The members of ``resource`` as this backend stores them (``$ref`` is derived)."""
    displays = _displays(resource)
    out = []
    for id in _member_ids(resource):
        entry: dict[str, Any] = {"value": id, "type": member_type}
        if id in displays:
            entry["display"] = displays[id]
        out.append(entry)
    return out


def _member_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[list[str], set[str]]:
    """``(ids added in order, ids removed)`` between two versions of a group."""
    before = set(_member_ids(old))
    after = _member_ids(new)
    return [m for m in after if m not in before], before - set(after)


def _put_members(resource: dict[str, Any], members: list[dict[str, Any]]) -> None:
    """Set ``members`` (none when the list is empty: RFC 7643 §2.5, an empty multi-valued
    attribute is unassigned), before ``meta`` as a read gives them."""
    resource.pop("members", None)
    if members:
        meta = resource.pop("meta", None)
        resource["members"] = members
        if meta is not None:
            resource["meta"] = meta


def _displays(resource: Mapping[str, Any]) -> dict[str, str]:
    """``{member id: display}`` of the members that have a ``display``."""
    members = resource.get("members")
    out: dict[str, str] = {}
    if isinstance(members, list):
        for m in members:
            if isinstance(m, dict) and isinstance(m.get("value"), str):
                display = m.get("display")
                if isinstance(display, str):
                    out[m["value"]] = display
    return out


def _strip_meta(extras: Mapping[str, Any], unset: Mapping[str, Any]) -> dict[str, Any]:
    """The extras to store: ``meta`` without what the bookkeeping columns hold, and the
    defaults given to unassigned attributes (see :func:`_visible`)."""
    out = dict(extras)
    kept_unset = {k: v for k, v in unset.items() if isinstance(v, (bool, int, float, str))}
    if kept_unset:
        out[_UNSET] = kept_unset
    meta = out.get("meta")
    if isinstance(meta, dict):
        kept = {k: v for k, v in meta.items() if k not in ("version", "created", "lastModified")}
        if kept:
            out["meta"] = kept
        else:
            del out["meta"]
    return out


def _copy(resource: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON object (dicts, lists and scalars), without a trip through
    JSON text."""
    return cast(dict[str, Any], _copy_value(resource))


def _copy_value(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {k: _copy_value(v) for k, v in value.items()}
    if kind is list or kind is tuple:  # a tuple becomes a list, as through JSON
        return [_copy_value(v) for v in value]
    return value  # str, int, float, bool, None: immutable
