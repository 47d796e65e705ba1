"""A scim2-core backend storing SCIM Users and Groups in the app's own Django models.

::

    from scim2_core import Engine
    from scim2_core_django.backend import DjangoModelBackend

    engine = Engine(DjangoModelBackend())      # auth.User and auth.Group

The mapping (:mod:`scim2_core.mapping`; ready ones in :mod:`scim2_core_django.mapping`)
says which model and field hold which attribute. The app's models are not changed:
scim2-core's bookkeeping lives in the ``scim2_core_django`` app's tables
(:mod:`scim2_core_django.models`), joined by primary key.

How the protocol's promises are kept:

* **Filters, sorting and paging run in the database**, as ``Q`` objects, ``Exists``
  subqueries on the value index and on the members relation, and ``ORDER BY``/``LIMIT``:
  the expression tree of :func:`scim2_core.mapping.translate` is compiled here and nothing
  is filtered in Python. Strings honour ``caseExact`` (``lower()`` on both sides of a
  caseExact=false comparison on a field; the value index stores Python-lowercased text) and
  order by code point (``COLLATE "C"`` on PostgreSQL).
* **Uniqueness is the database's**: the lowercased values of ``uniqueness: server``
  attributes go into :class:`~scim2_core_django.models.ScimUnique` under a unique constraint,
  in the write's transaction; of two concurrent creates of one ``userName`` one commits and
  the other gets 409 ``uniqueness``. The app's own unique constraints answer 409 too.
* **If-Match is a compare-and-set**: every write runs in ``transaction.atomic()`` and locks
  the bookkeeping row and the app's row (``select_for_update``: row locks on PostgreSQL);
  on SQLite, whose writers are serialised by the database file, writes of one process are
  also serialised by a lock, so a read-then-write never interleaves.
* **Members are rows**: adding a member inserts one row of the relation, removing one
  deletes one; a group with 10k members is never rewritten. Deleting a user deletes its
  memberships in the same transaction. ``User.groups`` is read from the relation.
* **The app and SCIM share the data**: a row the app creates (admin, ``createsuperuser``)
  gets an id and version the first time a SCIM search runs over its model. The version is
  the engine's counter, plus a hash of the mapped fields as SCIM last saw them: a read that
  finds the fields changed by the app bumps the version (and ``lastModified``) before
  answering, so ``If-None-Match`` never answers 304 for data the app changed, and an
  ``If-Match`` with the old version fails. Membership changes the app makes through the
  relation's manager (``user.groups.add(g)``) touch both sides through ``m2m_changed``.

One tenant only (the app's tables have no tenant column): any other tenant gets 501.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from django.apps import apps  # type: ignore[import-untyped]
from django.core.exceptions import (  # type: ignore[import-untyped]
    FieldDoesNotExist,
    ValidationError,
)
from django.db import IntegrityError, connections, models, transaction  # type: ignore[import-untyped]
from django.db.models import Exists, F, Max, OuterRef, Q, Subquery, Value  # type: ignore[import-untyped]
from django.db.models import lookups as lk
from django.db.models.functions import (  # type: ignore[import-untyped]
    Cast,
    Coalesce,
    Collate,
    Left,
    Length,
    Lower,
    NullIf,
    Right,
    StrIndex,
)
from django.db.models.signals import (  # type: ignore[import-untyped]
    m2m_changed,
    post_delete,
    post_save,
)

from scim2_core import (
    ConfigurationError,
    InvalidValueError,
    NotFoundError,
    NotImplementedScimError,
    ResourceType,
    UniquenessError,
)
from scim2_core.backends import (
    Change,
    Page,
    SearchQuery,
    check_tenant,
    check_version,
    missing_members_error,
)
from scim2_core.events import AuditStore, EventStore
from scim2_core.filter import Untranslatable
from scim2_core.mapping import (
    ELEMENT,
    AllOf,
    AnyElement,
    AnyMember,
    AnyOf,
    Assigned,
    BoundMapping,
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
    ResourceMapping,
    bind_mapping,
    element_where,
    sort_target,
    translate,
)
from scim2_core.schema import Attribute, AttrRef, now, version_number

from ._backend_events import DjangoEvents, sqlite_write_lock
from .mapping import AUTH_GROUP, AUTH_USER

__all__ = ["DjangoModelBackend"]

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


class _Statements:
    """The fixed statements of one mapped type, written once per database connection and
    run on its DB-API cursor with their parameters (as the SQLAlchemy backend runs its
    compiled reads): building and compiling a queryset costs several times what running
    one of these small statements does.

    Each reads the bookkeeping row and the app's row together, joined by primary key:
    ``a.pk = CAST(b.object_pk AS <pk type>)``, so the join probes the app's primary key
    index. Only for a plain model (see :meth:`DjangoModelBackend._statements`); any other
    model takes the ORM's path.
    """

    def __init__(self, backend: DjangoModelBackend, t: _Type, connection: Any) -> None:
        q = connection.ops.quote_name
        self.connection = connection
        model, bk_model, unique_model = t.model, backend._resource, backend._unique
        pk = model._meta.pk
        bk_fields = list(bk_model._meta.concrete_fields)
        mapped = [pk, *t.fields.values()]
        everything = list(model._meta.concrete_fields)
        self.width = len(bk_fields)
        self.bk_names = [f.attname for f in bk_fields]
        self.row_names = ["pk", *t.fields]
        self.all_names = [f.attname for f in everything]
        self.read_conv = _converters([*bk_fields, *mapped], connection)
        self.lock_conv = _converters([*bk_fields, *everything], connection)
        bk_cols = ", ".join(f"b.{q(f.column)}" for f in bk_fields)
        row_cols = ", ".join(f"a.{q(f.column)}" for f in mapped)
        all_cols = ", ".join(f"a.{q(f.column)}" for f in everything)
        bk_table, table = q(bk_model._meta.db_table), q(model._meta.db_table)
        to_row = (
            f"INNER JOIN {table} a "
            f"ON a.{q(pk.column)} = CAST(b.{q('object_pk')} AS {pk.cast_db_type(connection)})"
        )
        join = f"{bk_table} b {to_row}"
        #: The groups holding each row, as a JSON array of ``[group id, displayName]`` per
        #: group type (``groups_of`` then answers without a statement); params first.
        self.groups, self.gparams = _groups_columns(backend, t, connection)
        gcols = "".join(f", {c}" for c in self.groups)
        live = f"b.{q('resource_type')} = %s AND b.{q('deleted')} = %s"
        order = f"ORDER BY b.{q('created')} ASC, b.{q('scim_id')} ASC"
        by_id = f"WHERE b.{q('scim_id')} = %s AND {live}"
        #: params: id, type, False
        self.by_id = f"SELECT {bk_cols}, {row_cols}{gcols} FROM {join} {by_id}"
        locks = connection.features.has_select_for_update
        for_update = " " + connection.ops.for_update_sql() if locks else ""
        #: params: id, type, False; every column of the app's row (to make the instance)
        self.lock = f"SELECT {bk_cols}, {all_cols}{gcols} FROM {join} {by_id}{for_update}"
        self.top = f"SELECT MAX({q(pk.column)}) FROM {table}"
        count = f"SELECT COUNT(*) FROM {bk_table} b WHERE {live}"
        #: params: type, False: the listing's total, and MAX(pk) (see ``_adopt``)
        self.count_top = f"SELECT ({count}), ({self.top})"
        #: params: type, False, gparams, type, False; ``{}``: LIMIT/OFFSET. The listing's
        #: total, MAX(pk), and the window: its bookkeeping rows from the listing index (a
        #: subquery, so that PostgreSQL probes the app's rows by primary key instead of
        #: hashing the whole table), their app rows and their groups, in one statement.
        self.window = (
            f"SELECT ({count}), ({self.top}), {bk_cols}, {row_cols}{gcols} "
            f"FROM (SELECT * FROM {bk_table} b WHERE {live} {order} {{}}) b {to_row} {order}"
        )
        #: ``{}``: ``column = %s, ...``; params: their values, the bookkeeping row's pk
        self.save_bk = f"UPDATE {bk_table} SET {{}} WHERE {q(bk_model._meta.pk.column)} = %s"
        #: ``{field: statement}``: ``eq`` on a unique attribute's text field, through the
        #: unique index (params: type, attribute, key, type, False, value)
        self.probe: dict[str, str] = {}
        for u in t.uniques:
            if u.field is None or t.fields[u.field].get_internal_type() not in _TEXT_FIELDS:
                continue
            column = f"a.{q(t.fields[u.field].column)}"
            test = f"{column} = %s" if u.ref.target.case_exact else f"LOWER({column}) = %s"
            u_table = q(unique_model._meta.db_table)
            self.probe[u.field] = (
                f"SELECT {bk_cols}, {row_cols}{gcols} FROM {u_table} u INNER JOIN {bk_table} b "
                f"ON b.{q(bk_model._meta.pk.column)} = u.{q('resource_id')} {to_row} "
                f"WHERE u.{q('resource_type')} = %s AND u.{q('attribute')} = %s "
                f"AND u.{q('value')} = %s AND {live} "
                f"AND {column} IS NOT NULL AND {column} <> '' AND {test} {order}"
            )
        #: ``{}``: the ids' placeholders; params: ids, type, False: ``(id, app pk)`` of the
        #: live resources among ids whose app row exists (one statement, not two)
        self.pks_of = (
            f"SELECT b.{q('scim_id')}, a.{q(pk.column)} FROM {join} "
            f"WHERE b.{q('scim_id')} IN ({{}}) AND {live}"
        )
        #: a group type whose members' model is plain: its members with their ids and
        #: displays (``members_of``), and some named members (``some_members``)
        self.members_of: str | None = None
        self.some_members: str | None = None
        rel = t.relation
        if rel is not None and _plain(backend._types[rel.member_type], connection):
            through = rel.through._meta
            member_model = backend._types[rel.member_type].model
            r_member = q(through.get_field(_attname_field(through, rel.member_col)).column)
            r_group = q(through.get_field(_attname_field(through, rel.group_col)).column)
            r_pk = q(through.pk.column)
            r_table = q(through.db_table)
            char = connection.ops.cast_char_field_without_max_length
            d_table = q(backend._display._meta.db_table)
            #: params: member type, False, type, False, the groups' pks (``{}``)
            self.members_of = (
                f"SELECT r.{r_group}, m.{q('scim_id')}, d.{q('display')} FROM {r_table} r "
                f"LEFT OUTER JOIN {bk_table} m ON m.{q('resource_type')} = %s "
                f"AND m.{q('object_pk')} = CAST(r.{r_member} AS {char}) AND m.{q('deleted')} = %s "
                f"LEFT OUTER JOIN {bk_table} b ON b.{q('resource_type')} = %s "
                f"AND b.{q('object_pk')} = CAST(r.{r_group} AS {char}) AND b.{q('deleted')} = %s "
                f"LEFT OUTER JOIN {d_table} d ON d.{q('resource_id')} = b.{q('id')} "
                f"AND d.{q('member_id')} = m.{q('scim_id')} "
                f"WHERE r.{r_group} IN ({{}}) ORDER BY r.{r_pk}"
            )
            m_pk = member_model._meta.pk
            #: params: group pk, group's bookkeeping pk, ids (``{}``), member type, False:
            #: ``(id, app pk, relation row or NULL, display)`` of each live member named
            self.some_members = (
                f"SELECT m.{q('scim_id')}, a.{q(m_pk.column)}, r.{r_pk}, d.{q('display')} "
                f"FROM {bk_table} m INNER JOIN {q(member_model._meta.db_table)} a "
                f"ON a.{q(m_pk.column)} = CAST(m.{q('object_pk')} AS "
                f"{m_pk.cast_db_type(connection)}) "
                f"LEFT OUTER JOIN {r_table} r ON r.{r_member} = a.{q(m_pk.column)} "
                f"AND r.{r_group} = %s "
                f"LEFT OUTER JOIN {d_table} d ON d.{q('resource_id')} = %s "
                f"AND d.{q('member_id')} = m.{q('scim_id')} "
                f"WHERE m.{q('scim_id')} IN ({{}}) AND m.{q('resource_type')} = %s "
                f"AND m.{q('deleted')} = %s ORDER BY r.{r_pk}"
            )
        #: a group type: ``(statement, converters)`` of its memberships, for ``groups``
        self.memberships: tuple[str, list[tuple[int, list[Any], Any]]] | None = None
        display = t.bm.single(t.bm.rt.resolve_path("displayName")) if t.bm else None
        rel = t.relation
        member_pk = backend._types[rel.member_type].model._meta.pk if rel is not None else None
        if (
            rel is not None
            and display is not None
            and member_pk is not None
            and member_pk.get_internal_type() in _INTEGER_PKS
        ):
            through = rel.through._meta
            member_f = through.get_field(_attname_field(through, rel.member_col))
            group_f = through.get_field(_attname_field(through, rel.group_col))
            shown = t.fields[display.field]
            char = connection.ops.cast_char_field_without_max_length
            self.memberships = (
                f"SELECT r.{q(member_f.column)}, b.{q('scim_id')}, g.{q(shown.column)} "
                f"FROM {q(through.db_table)} r INNER JOIN {table} g "
                f"ON g.{q(pk.column)} = r.{q(group_f.column)} "
                f"LEFT OUTER JOIN {bk_table} b ON b.{q('resource_type')} = %s "
                f"AND b.{q('object_pk')} = CAST(r.{q(group_f.column)} AS {char}) "
                f"AND b.{q('deleted')} = %s "
                f"WHERE r.{q(member_f.column)} IN ({{}})",
                _converters([member_f, None, shown], connection),
            )


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


def _groups_columns(
    backend: DjangoModelBackend, t: _Type, connection: Any
) -> tuple[list[str], list[Any]]:
    """``([column, ...], params)``: for each group type whose members are ``t``'s rows, a
    subquery giving the groups holding the row ``a`` as a JSON array of ``[group id,
    displayName]`` (RFC 7643 §4.1.2 ``groups``); none at all unless every such group type
    can be read so."""
    q = connection.ops.quote_name
    char = connection.ops.cast_char_field_without_max_length
    pg = connection.vendor == "postgresql"
    columns: list[str] = []
    params: list[Any] = []
    for g in backend._groups_holding(t):
        rel = g.relation
        if g.bm is None or rel is None:
            continue  # not served: groups_of skips it too
        display = g.bm.single(g.bm.rt.resolve_path("displayName"))
        if display is None or not _plain(g, connection):
            return [], []
        through = rel.through._meta
        member_f = through.get_field(_attname_field(through, rel.member_col))
        group_f = through.get_field(_attname_field(through, rel.group_col))
        shown = f"g.{q(g.fields[display.field].column)}"
        pair = (
            f"json_build_array(gb.{q('scim_id')}, {shown})"
            if pg
            else (f"json_array(gb.{q('scim_id')}, {shown})")
        )
        agg = f"json_agg({pair})::text" if pg else f"json_group_array({pair})"
        columns.append(
            f"(SELECT {agg} FROM {q(through.db_table)} r "
            f"INNER JOIN {q(g.model._meta.db_table)} g "
            f"ON g.{q(g.model._meta.pk.column)} = r.{q(group_f.column)} "
            f"LEFT OUTER JOIN {q(backend._resource._meta.db_table)} gb "
            f"ON gb.{q('resource_type')} = %s "
            f"AND gb.{q('object_pk')} = CAST(r.{q(group_f.column)} AS {char}) "
            f"AND gb.{q('deleted')} = %s "
            f"WHERE r.{q(member_f.column)} = a.{q(t.model._meta.pk.column)})"
        )
        params.extend([g.name, False])
    return columns, params


def _groups_read(values: Sequence[Any]) -> list[dict[str, Any]] | None:
    """The entries of ``groups_of`` from the JSON arrays of ``_groups_columns`` (None
    when a group has no bookkeeping yet: ``groups_of`` then adopts it)."""
    out: list[dict[str, Any]] = []
    for value in values:
        for gid, name in json.loads(value) if value else ():
            if gid is None:
                return None
            entry: dict[str, Any] = {"value": gid}
            if isinstance(name, str) and name:
                entry["display"] = name
            out.append(entry)
    out.sort(key=lambda e: str(e["value"]))
    return out


def _chunks(values: Sequence[Any], size: int = 5000) -> Iterator[Sequence[Any]]:
    """``values`` in slices an IN list can hold (SQLite's limit of parameters)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _converters(fields: Sequence[Any], connection: Any) -> list[tuple[int, list[Any], Any]]:
    """``[(position, converters, column)]``: what Django applies to each value read, as
    its compiler does (the backend's own, then the field's ``from_db_value``)."""
    out = []
    for i, f in enumerate(fields):
        if f is None:
            continue
        col = f.get_col(f.model._meta.db_table)
        funcs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
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


def _hash(values: Mapping[str, Any], fields: Iterable[str]) -> str:
    data = json.dumps([values.get(f) for f in sorted(fields)], default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:32]


def _version(number: int) -> str:
    return f'W/"{number}"'


class DjangoModelBackend:
    """Store SCIM resources in the app's own Django models; see the module docstring.

    ``mappings`` default to ``auth.User`` and ``auth.Group``
    (:data:`scim2_core_django.mapping.AUTH_USER`, :data:`~scim2_core_django.mapping.AUTH_GROUP`).
    Construction checks every model, field and relation and raises
    :class:`~scim2_core.ConfigurationError` naming what does not exist; binding (the
    Engine's constructor) checks every SCIM attribute. Needs the ``scim2_core_django`` app
    in ``INSTALLED_APPS`` and its migrations applied. ``using`` names the database.
    """

    never_blocks = False

    def __init__(
        self,
        mappings: Sequence[ResourceMapping] = (AUTH_USER, AUTH_GROUP),
        *,
        using: str = "default",
    ) -> None:
        from .models import ScimMemberDisplay, ScimResource, ScimUnique, ScimValue

        self._resource = ScimResource
        self._value = ScimValue
        self._unique = ScimUnique
        self._display = ScimMemberDisplay
        self.using = using
        self._types: dict[str, _Type] = {}
        for m in mappings:
            if m.resource_type in self._types:
                raise ConfigurationError(f"Two SCIM mappings for {m.resource_type!r}.")
            try:
                model = apps.get_model(m.model)
            except (LookupError, ValueError):
                raise ConfigurationError(
                    f"SCIM mapping of {m.resource_type}: no model {m.model!r} "
                    f"(expected 'app_label.ModelName' of an installed app)."
                ) from None
            self._types[m.resource_type] = _Type(m, model)
        for t in self._types.values():
            members = t.mapping.members
            if members is None:
                continue
            member = self._types.get(members.member_type)
            if member is None:
                raise ConfigurationError(
                    f"SCIM mapping of {t.name}: members of type {members.member_type!r} "
                    f"have no mapping."
                )
            t.relation = _relation(t, members.relation, members.member_type, member.model)
            m2m_changed.connect(self._on_m2m_changed, sender=t.relation.through)
        for t in self._types.values():
            post_delete.connect(self._on_post_delete, sender=t.model)
            post_save.connect(self._on_post_save, sender=t.model)
        #: SQLite serialises writers per file, but a deferred transaction reads before it
        #: locks: writes of this process take this lock so a read-then-write is atomic.
        self._sqlite_lock = sqlite_write_lock(using)  # shared with its other users
        #: ``seen``: ``{id: (type, app pk as text)}`` of the rows this thread read last.
        self._local = threading.local()
        #: ``{type: pk}``: every row of the type's model up to this (integer) primary key
        #: has its bookkeeping (see :meth:`_adopt`).
        self._adopted_upto: dict[str, int] = {}
        #: Moves whenever a membership may have changed (``_touch``, the app's signals):
        #: groups read with a row are kept for ``groups_of`` only if it has not moved.
        self._epoch = 0
        #: The outbox and audit log (``enable_outbox``, ``enable_audit``): see ``_backend_events``.
        self._events = DjangoEvents(using, self._sqlite_lock, self._types)

    # -- the protocol ----------------------------------------------------------------------

    def enable_outbox(self) -> EventStore:
        """Store a :class:`~scim2_core.ChangeEvent` for every change from now on, in the
        change's own ``transaction.atomic()`` (table ``scim_outbox`` of migration 0002),
        and return the store the delivery worker reads. SQLite or PostgreSQL (psycopg 3);
        another database raises :class:`~scim2_core.ConfigurationError`."""
        return self._events.enable_outbox()

    def enable_audit(self) -> AuditStore:
        """The audit log's store: table ``scim_audit`` in the same database."""
        return self._events.enable_audit()

    def close(self) -> None:
        """Close the connections the outbox and audit stores opened (the data's are
        Django's)."""
        self._events.close()

    def bind(self, resource_types: Sequence[ResourceType]) -> None:
        by_name = {rt.name: rt for rt in resource_types}
        for rt in resource_types:
            t = self._types.get(rt.name)
            if t is None:
                raise ConfigurationError(
                    f"DjangoModelBackend has no mapping for the resource type {rt.name!r}."
                )
            t.bm = bind_mapping(t.mapping, rt)
            uniques = []
            for urn, attr in rt.iter_attributes():
                if urn is None and attr.name == "id":
                    continue
                subs = attr.sub_attributes if attr.is_complex else (None,)
                for sub in subs:
                    target = sub or attr
                    if target.uniqueness == "none" or target.is_complex:
                        continue
                    ref = AttrRef(urn, attr, sub)
                    field = t.bm.single(ref)
                    uniques.append(_Unique(str(ref), ref, field.field if field else None))
            t.uniques = tuple(uniques)
        for name, t in self._types.items():
            if name not in by_name:
                continue
            if t.mapping.members and t.mapping.members.member_type not in by_name:
                raise ConfigurationError(
                    f"SCIM mapping of {name}: the member type "
                    f"{t.mapping.members.member_type!r} is not served by the engine."
                )

    def create(
        self,
        tenant: str | None,
        rt: ResourceType,
        resource: dict[str, Any],
        *,
        members: Collection[str] = (),
    ) -> dict[str, Any]:
        t = self._type(tenant, rt)
        with self._write():
            values, extras = t.bound.write(resource)
            member_pks: dict[str, Any] = {}
            if t.relation is not None:
                member_pks = self._member_pks(t.relation, _member_ids(resource))
            instance = t.model()
            unset: dict[str, Any] = {}
            self._assign(t, instance, values, creating=True, unset=unset)
            self._check_columns_unique(t, resource, None)
            self._save(t, instance, None)
            meta = resource.get("meta") or {}
            bk = self._resource(
                scim_id=resource["id"],
                resource_type=t.name,
                object_pk=self._pk_text(t, instance.pk),
                version=version_number(meta.get("version")) or 1,
                created=meta.get("created") or now(),
                last_modified=meta.get("lastModified") or meta.get("created") or now(),
                extras=_strip_meta(extras, unset),
            )
            row = self._stored_row(t, instance.pk)
            bk.content_hash = _hash(row, t.fields)
            try:
                with transaction.atomic(using=self.using):
                    bk.save(using=self.using)
            except IntegrityError:
                # RFC 7643 §3.1: "This identifier MUST be unique across the SCIM service
                # provider's entire set of resources."
                raise UniquenessError("The id is already in use.") from None
            self._write_uniques(t, bk, resource)
            self._write_values(t, bk, extras)
            if t.relation is not None and member_pks:
                self._add_members(t.relation, instance.pk, member_pks.values())
                self._write_displays(bk, {}, _displays(resource))
                self._touch(t.relation.member_type, member_pks.values(), bk.last_modified)
            stored = self._read_rows(t, rows=[row], bks={bk.object_pk: bk}, refresh=False)[0]
            if self._events.on:
                self._events.record(rt, "created", None, stored)
            return stored

    def get(self, tenant: str | None, rt: ResourceType, id: str) -> dict[str, Any] | None:
        t = self._type(tenant, rt)
        sql = self._statements(t)
        if sql is not None:  # one statement: the bookkeeping and the app's row together
            bks, rows, groups = self._fetch(sql, sql.by_id, [id, t.name, False])
            found = self._read_rows(t, rows=rows, bks=bks, groups=groups) if rows else []
            return found[0] if found else None
        bk = self._bk(t, id)
        if bk is None:
            return None
        found = self._read_rows(t, [self._pk_value(t, bk.object_pk)], bks={bk.object_pk: bk})
        return found[0] if found else None

    def search(self, tenant: str | None, rt: ResourceType, query: SearchQuery) -> Page:
        t = self._type(tenant, rt)
        if query.filter is None and query.sort is None:
            return self._default_page(t, query)  # adopts app-made rows itself
        if query.sort is None:
            page = self._probe_search(t, query)  # adopts them itself when none matches
            if page is not None:
                return page
        self._adopt(t)
        qs = self._base(t)
        if query.filter is not None:
            qs = qs.filter(self._q(t, translate(query.filter, t.bound), 0))
        qs = qs.filter(_scim_id__isnull=False)  # after the filter: cheap tests first
        if query.sort is not None:
            key = self._sort_expr(t, sort_target(query.sort.path, t.bound))
            qs = qs.annotate(_sort=key)
            first = (
                F("_sort").desc(nulls_first=True)
                if query.sort.descending
                else F("_sort").asc(nulls_last=True)
            )
            qs = qs.order_by(first, "_scim_id")
        else:
            qs = qs.order_by("_created", "_scim_id")
        start = max(query.offset, 0)
        total: int | None = None
        if query.count <= 0 or start >= _MAX_WINDOW:
            total = qs.count()
            if query.count <= 0 or start >= total:
                return Page(total=total)
        # RFC 7644 §3.4.2.4: a count past the results gives them all; never a LIMIT or
        # OFFSET the database cannot hold.
        stop = start + min(query.count, _MAX_WINDOW)
        rows = list(qs.values("pk", *t.fields)[start:stop])
        if total is None:
            if (rows and len(rows) < stop - start) or (not rows and start == 0):
                total = start + len(rows)  # the window holds the last result: no COUNT
            else:
                total = qs.count()
        return Page(total=total, resources=self._read_rows(t, rows=rows))

    def update(
        self,
        tenant: str | None,
        rt: ResourceType,
        id: str,
        change: Change,
        *,
        if_match: Collection[str] | None = None,
        members: Collection[str] = (),
    ) -> dict[str, Any]:
        return self._update(self._type(tenant, rt), id, change, if_match, None)

    def get_without_members(
        self, tenant: str | None, rt: ResourceType, id: str
    ) -> dict[str, Any] | None:
        """:meth:`get` without ``members``: reads no row of the relation (RFC 7644 §3.9
        ``excludedAttributes=members``; see :class:`~scim2_core.backends.MemberRows`)."""
        t = self._type(tenant, rt)
        bk = self._bk(t, id)
        if bk is None:
            return None
        pk = self._pk_value(t, bk.object_pk)
        found = self._read_rows(t, [pk], bks={bk.object_pk: bk}, members=False)
        return found[0] if found else None

    def update_members(
        self,
        tenant: str | None,
        rt: ResourceType,
        id: str,
        values: Collection[str],
        change: Change,
        *,
        if_match: Collection[str] | None = None,
        members: Collection[str] = (),
    ) -> dict[str, Any]:
        """:meth:`update` on the group holding only the members ``values`` (see
        :class:`~scim2_core.backends.MemberRows`): adding a member to a group of any size
        reads the rows of that member and inserts one relation row."""
        return self._update(self._type(tenant, rt), id, change, if_match, set(values))

    def _update(
        self,
        t: _Type,
        id: str,
        change: Change,
        if_match: Collection[str] | None,
        only: set[str] | None,
    ) -> dict[str, Any]:
        """The write of :meth:`update`; with ``only``, of :meth:`update_members`: the
        resource ``change`` sees holds only those stored members, and the result none."""
        with self._write():
            epoch = self._epoch
            bk, instance, groups = self._lock(t, id)
            bks = {bk.object_pk: bk}
            row = [_row_of(t, instance)]
            current = self._read_rows(t, rows=row, bks=bks, members=only is None, groups=groups)[0]
            known: dict[str, Any] | None = None
            if only is not None and t.relation is not None:
                named, known = self._some_members(t, t.relation, bk, instance.pk, only)
                _put_members(current, named)
            check_version(current, if_match)
            new = change(_copy(current))
            if new is None:
                if only is not None:
                    current.pop("members", None)
                return current
            new["id"] = id
            stored = self._write_changed(t, bk, instance, current, new, known)
            if groups is not None and self._epoch == epoch:
                # the groups read with the lock still hold (no membership moved since)
                self._remember_groups({id: groups[instance.pk]})
            if self._events.on:  # with ``only``: the members named, not the group's
                some = only is not None
                self._events.record(t.bound.rt, None, current, stored, some_members=some)
            if only is not None:
                stored.pop("members", None)
            return stored

    def _write_changed(
        self,
        t: _Type,
        bk: Any,
        instance: Any,
        current: dict[str, Any],
        new: dict[str, Any],
        known: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write ``new`` over ``current`` (its members: all of them, or those
        :meth:`update_members` named): the fields that changed, the bookkeeping, and one
        relation row per member added or removed."""
        values, extras = t.bound.write(new)
        added_pks: dict[str, Any] = {}
        removed_pks: list[Any] = []
        if t.relation is not None:
            added, gone = _member_changes(current, new)
            added_pks = self._member_pks(t.relation, added, known=known)
            if gone:
                found = self._member_pks(t.relation, gone, strict=False, known=known)
                removed_pks = list(found.values())
        unset: dict[str, Any] = {}
        changed = self._assign(t, instance, values, creating=False, unset=unset)
        keys_changed = any(u.keys(new) != u.keys(current) for u in t.uniques)
        if keys_changed:
            self._check_columns_unique(t, new, instance.pk)
        row = _row_of(t, instance)
        if changed:
            self._save(t, instance, changed)
            if any(t.fields[f].get_internal_type() not in _EXACT_TYPES for f in changed):
                row = self._stored_row(t, instance.pk)  # as the database keeps it
            bk.content_hash = _hash(row, t.fields)
        meta = new.get("meta") or {}
        bk.version = version_number(meta.get("version")) or bk.version
        bk.last_modified = meta.get("lastModified") or now()
        bk.created = meta.get("created") or bk.created
        old_extras, old_created = bk.extras, bk.created
        bk.extras = _strip_meta(extras, unset)
        written = ["version", "last_modified", "content_hash"]
        written += [
            n
            for n, old in (("created", old_created), ("extras", old_extras))
            if getattr(bk, n) != old
        ]
        self._save_bk(t, bk, written)
        if keys_changed:
            self._write_uniques(t, bk, new, replace=True)
        if bk.extras != old_extras:
            self._write_values(t, bk, extras, replace=True)
        bks = {bk.object_pk: bk}
        if t.relation is None:
            return self._read_rows(t, rows=[row], bks=bks, refresh=False)[0]
        if added_pks:
            self._add_members(t.relation, instance.pk, added_pks.values())
        if removed_pks:
            self._remove_members(t.relation, instance.pk, removed_pks)
        self._write_displays(bk, _displays(current), _displays(new))
        touched = [*added_pks.values(), *removed_pks]
        if touched:
            self._touch(t.relation.member_type, touched, bk.last_modified)
        # The members are the ones just written: not read back (a large group).
        stored = self._read_rows(t, rows=[row], bks=bks, refresh=False, members=False)[0]
        _put_members(stored, _member_entries(new, t.relation.member_type))
        return stored

    def delete(
        self,
        tenant: str | None,
        rt: ResourceType,
        id: str,
        *,
        if_match: Collection[str] | None = None,
    ) -> dict[str, Any]:
        t = self._type(tenant, rt)
        with self._write():
            bk, instance, _ = self._lock(t, id)
            current = self._read_rows(t, rows=[_row_of(t, instance)], bks={bk.object_pk: bk})[0]
            check_version(current, if_match)
            when = now()
            left: list[str] = []  # the groups it leaves, for their events
            if t.relation is not None:
                rel = t.relation
                pks = list(
                    rel.through.objects.using(self.using)
                    .filter(**{rel.group_col: instance.pk})
                    .values_list(rel.member_col, flat=True)
                )
                self._touch(rel.member_type, pks, when)
                rel.through.objects.using(self.using).filter(
                    **{rel.group_col: instance.pk}
                ).delete()
            # RFC 7644 §3.6: the deleted resource leaves every group; each group so changed
            # gets a new version (its representation changed).
            for group in self._groups_holding(t):
                rel = cast(_Relation, group.relation)
                gpks = list(
                    rel.through.objects.using(self.using)
                    .filter(**{rel.member_col: instance.pk})
                    .values_list(rel.group_col, flat=True)
                )
                self._touch(group.name, gpks, when)
                if self._events.on:
                    left.extend(self._scim_ids(group, gpks).values())
                self._display.objects.using(self.using).filter(member_id=bk.scim_id).delete()
                rel.through.objects.using(self.using).filter(
                    **{rel.member_col: instance.pk}
                ).delete()
            if t.mapping.on_delete == "deactivate":
                active = next(
                    f.field
                    for f in t.bound.singles
                    if f.ref.urn is None and f.ref.attribute.name == "active"
                )
                setattr(instance, active, False)
                with _own_save():
                    instance.save(using=self.using, update_fields=[active])
                bk.deleted = True
                bk.save(using=self.using, update_fields=["deleted"])
                self._unique.objects.using(self.using).filter(resource=bk).delete()
            else:
                instance.delete(using=self.using)
                bk.delete(using=self.using)
            if self._events.on:
                self._events.record(rt, "deleted", current, None, left=left)
            return current

    def groups_of(
        self, tenant: str | None, member_ids: Iterable[str]
    ) -> Mapping[str, list[dict[str, Any]]]:
        self._tenant(tenant)
        ids = list(dict.fromkeys(member_ids))
        out: dict[str, list[dict[str, Any]]] = {}
        if not ids:
            return out
        # the groups read with these rows by the statement that read them (one use)
        cached: dict[str, Any] | None = self._local.__dict__.pop("groups", None)
        if cached is not None and all(id in cached for id in ids):
            return {id: [dict(e) for e in cached[id]] for id in ids if cached[id]}
        by_type = self._rows_of(ids)
        for group in self._types.values():
            rel = group.relation
            if rel is None or rel.member_type not in by_type or group.bm is None:
                continue
            member_t = self._types[rel.member_type]
            scim_of = by_type[rel.member_type]
            pks = [self._pk_value(member_t, p) for p in scim_of]
            for mpk, entry in self._memberships(group, rel, pks):
                member_id = scim_of.get(self._pk_text(member_t, mpk))
                if member_id is not None:
                    out.setdefault(member_id, []).append(entry)
        for entries_list in out.values():
            entries_list.sort(key=lambda e: str(e["value"]))
        return out

    def _rows_of(self, ids: list[str]) -> dict[str, dict[str, str]]:
        """``{type: {app pk as text: id}}`` of the live resources ``ids``: from the rows
        this thread read last (the engine asks right after reading them), else queried."""
        seen: dict[str, tuple[str, str]] = getattr(self._local, "seen", {})
        by_type: dict[str, dict[str, str]] = {}
        if all(id in seen for id in ids):
            for id in ids:
                name, pk_text = seen[id]
                by_type.setdefault(name, {})[pk_text] = id
            return by_type
        rows = self._resource.objects.using(self.using).filter(scim_id__in=ids, deleted=False)
        for scim_id, name, pk_text in rows.values_list("scim_id", "resource_type", "object_pk"):
            by_type.setdefault(name, {})[pk_text] = scim_id
        return by_type

    def _memberships(
        self, group: _Type, rel: _Relation, member_pks: list[Any]
    ) -> list[tuple[Any, dict[str, Any]]]:
        """``[(member pk, {"value": group id, "display": displayName})]``: one query joining
        the relation, the group's row and its bookkeeping (RFC 7643 §4.1.2 ``groups``)."""
        sql = self._statements(group)
        if sql is not None and sql.memberships is not None:
            statement, converters = sql.memberships
            with sql.connection.cursor() as cursor:
                marks = ", ".join(["%s"] * len(member_pks))
                cursor.execute(statement.format(marks), [group.name, False, *member_pks])
                raw = cursor.fetchall()
            rows = [cast(Any, _convert(r, converters, sql.connection)) for r in raw]
        else:
            found = self._orm_memberships(group, rel, member_pks)
            if found is None:
                return self._links_memberships(group, rel, member_pks)
            rows = found
        if any(gid is None for _, gid, _ in rows):  # groups the app made, not adopted yet
            self._adopt(group)
            return self._memberships(group, rel, member_pks)
        out = []
        for mpk, gid, name in rows:
            entry: dict[str, Any] = {"value": gid}
            if isinstance(name, str) and name:
                entry["display"] = name
            out.append((mpk, entry))
        return out

    def _links_memberships(
        self, group: _Type, rel: _Relation, member_pks: list[Any]
    ) -> list[tuple[Any, dict[str, Any]]]:
        """:meth:`_memberships` of a group type whose displayName is kept beside the row."""
        links = list(
            rel.through.objects.using(self.using)
            .filter(**{f"{rel.member_col}__in": member_pks})
            .values_list(rel.member_col, rel.group_col)
        )
        entries = self._group_entries(group, {g for _, g in links}) if links else {}
        return [(m, dict(entries[g])) for m, g in links if g in entries]

    def _orm_memberships(
        self, group: _Type, rel: _Relation, member_pks: list[Any]
    ) -> list[tuple[Any, Any, Any]] | None:
        """``[(member pk, group id, displayName)]`` through the ORM (None: the
        displayName is not a field)."""
        display = group.bound.single(group.bound.rt.resolve_path("displayName"))
        if display is None:  # displayName kept beside the row: read with the bookkeeping
            return None
        scim_id = self._resource.objects.using(self.using).filter(
            resource_type=group.name,
            object_pk=Cast(OuterRef(rel.group_col), models.CharField()),
            deleted=False,
        )
        return list(
            rel.through.objects.using(self.using)
            .filter(**{f"{rel.member_col}__in": member_pks})
            .annotate(_gid=Subquery(scim_id.values("scim_id")[:1]))
            .values_list(rel.member_col, "_gid", f"{rel.group_field}__{display.field}")
        )

    def existing(self, tenant: str | None, ids: Iterable[str]) -> Mapping[str, str]:
        self._tenant(tenant)
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        found: dict[str, str] = {}
        statement = self._existing_statement()
        if statement is not None:  # one statement: the bookkeeping and the app's rows
            sql, params = statement
            with connections[self.using].cursor() as cursor:
                for chunk in _chunks(wanted):
                    marks = ", ".join(["%s"] * len(chunk))
                    cursor.execute(sql.format(marks), [*chunk, False, *params])
                    found.update(cursor.fetchall())
            return found
        rows = self._resource.objects.using(self.using).filter(scim_id__in=wanted, deleted=False)
        by_type: dict[str, dict[str, str]] = {}
        for bk in rows.only("scim_id", "resource_type", "object_pk"):
            by_type.setdefault(bk.resource_type, {})[bk.object_pk] = bk.scim_id
        for name, pks in by_type.items():
            t = self._types.get(name)
            if t is None:
                continue
            alive = t.model.objects.using(self.using).filter(
                pk__in=[self._pk_value(t, p) for p in pks]
            )
            for pk in alive.values_list("pk", flat=True):
                found[pks[self._pk_text(t, pk)]] = name
        return found

    # -- the app's changes -----------------------------------------------------------------

    def _on_m2m_changed(
        self, sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kw: Any
    ) -> None:
        """The app changed a membership through a relation's manager: touch both sides."""
        if action not in ("post_add", "post_remove", "pre_clear"):
            return
        for group in self._types.values():
            rel = group.relation
            if rel is None or rel.through is not sender:
                continue
            member_t = self._types[rel.member_type]
            side_is_group = isinstance(instance, group.model) and not (
                group.model is member_t.model and reverse
            )
            own_type, other_type = (
                (group.name, rel.member_type) if side_is_group else (rel.member_type, group.name)
            )
            others = list(pk_set or ())
            if action == "pre_clear":
                mine, theirs = (
                    (rel.group_col, rel.member_col)
                    if side_is_group
                    else (rel.member_col, rel.group_col)
                )
                others = list(
                    rel.through.objects.using(self.using)
                    .filter(**{mine: instance.pk})
                    .values_list(theirs, flat=True)
                )
            when = now()
            self._touch(own_type, [instance.pk], when)
            self._touch(other_type, others, when)

    # -- internals: types, rows, bookkeeping -----------------------------------------------

    def _tenant(self, tenant: str | None) -> None:
        check_tenant(tenant)
        if tenant is not None:
            raise NotImplementedScimError(
                "This server stores SCIM resources in the application's own tables, "
                "which have no tenants."
            )

    def _type(self, tenant: str | None, rt: ResourceType) -> _Type:
        self._tenant(tenant)
        t = self._types.get(rt.name)
        if t is None or t.bm is None:
            raise ConfigurationError(f"DjangoModelBackend has no mapping for {rt.name!r}.")
        return t

    def _groups_holding(self, member: _Type) -> list[_Type]:
        return [
            g
            for g in self._types.values()
            if g.relation is not None and g.relation.member_type == member.name
        ]

    @contextmanager
    def _write(self) -> Iterator[None]:
        if connections[self.using].vendor == "sqlite":
            with self._sqlite_lock, transaction.atomic(using=self.using):
                yield
        else:
            with transaction.atomic(using=self.using):
                yield

    def _pk_text(self, t: _Type, pk: Any) -> str:
        """The primary key as the database's text of it (what ``CAST(pk AS text)`` gives)."""
        if type(pk) is int:
            return str(pk)
        prepared = t.model._meta.pk.get_db_prep_value(pk, connections[self.using])
        return str(prepared)

    def _pk_value(self, t: _Type, text: str) -> Any:
        if t.int_pk:
            return int(text)
        return t.model._meta.pk.to_python(text)

    def _statements(self, t: _Type) -> _Statements | None:
        """The type's fixed statements for this thread's connection, or None where the
        ORM's path is kept: a database other than SQLite and PostgreSQL, a primary key
        that is not an integer, a model inheriting another's table, or a default manager
        that filters rows."""
        cache: dict[str, _Statements | None] | None = getattr(self._local, "statements", None)
        if cache is None:
            cache = self._local.statements = {}
        connection = connections[self.using]
        if t.name in cache:
            found = cache[t.name]
            if found is None or found.connection is connection:
                return found
        made = _Statements(self, t, connection) if _plain(t, connection) else None
        cache[t.name] = made
        return made

    def _existing_statement(self) -> tuple[str, list[Any]] | None:
        """``(statement, params)`` of :meth:`existing` for this thread's connection, when
        every mapped model is plain (see ``_plain``): ``{}`` takes the ids' placeholders,
        then params: the ids, False, ``params``."""
        connection = connections[self.using]
        cached = getattr(self._local, "existing", None)
        if cached is not None and cached[0] is connection:
            return cast(tuple[str, list[Any]] | None, cached[1])
        made: tuple[str, list[Any]] | None = None
        if all(_plain(t, connection) for t in self._types.values()):
            q = connection.ops.quote_name
            tests = []
            for t in self._types.values():
                pk = t.model._meta.pk
                tests.append(
                    f"EXISTS (SELECT 1 FROM {q(t.model._meta.db_table)} a "
                    f"WHERE b.{q('resource_type')} = %s AND a.{q(pk.column)} = "
                    f"CAST(b.{q('object_pk')} AS {pk.cast_db_type(connection)}))"
                )
            made = (
                f"SELECT b.{q('scim_id')}, b.{q('resource_type')} "
                f"FROM {q(self._resource._meta.db_table)} b "
                f"WHERE b.{q('scim_id')} IN ({{}}) AND b.{q('deleted')} = %s "
                f"AND ({' OR '.join(tests)})",
                list(self._types),
            )
        self._local.existing = (connection, made)
        return made

    def _fetch(
        self, sql: _Statements, statement: str, params: Sequence[Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]], _Groups]:
        """Run a read of bookkeeping and app rows: ``({object_pk: bookkeeping}, rows,
        groups)``, the rows as ``values("pk", *fields)`` gives them, in the statement's
        order; ``groups``: ``{pk: groups_of's entries}`` (see ``_groups_columns``)."""
        connection = sql.connection
        with connection.cursor() as cursor:
            cursor.execute(statement, [*sql.gparams, *params])
            raw = cursor.fetchall()
        bks: dict[str, Any] = {}
        rows: list[dict[str, Any]] = []
        groups: dict[Any, list[dict[str, Any]] | None] = {}
        width, names = sql.width, sql.row_names
        end = width + len(names)
        for r in raw:
            values = _convert(r, sql.read_conv, connection)
            bk = self._resource.from_db(self.using, sql.bk_names, values[:width])
            bks[bk.object_pk] = bk
            row = dict(zip(names, values[width:end], strict=True))
            rows.append(row)
            groups[row["pk"]] = _groups_read(values[end:])
        return bks, rows, (groups if sql.groups else None)

    def _probe_search(self, t: _Type, query: SearchQuery) -> Page | None:
        """``attribute eq "value"`` on a unique attribute held by a text field (an IdP's
        ``userName eq`` before each create): one statement through the unique index, the
        field's own test deciding (RFC 7643 §2.1 caseExact); None for any other filter."""
        sql = self._statements(t)
        if sql is None or not sql.probe or query.filter is None:
            return None
        expr = translate(query.filter, t.bound)
        if not isinstance(expr, Cmp) or expr.op != "eq" or not isinstance(expr.value, str):
            return None
        target = expr.target
        if not isinstance(target, Column) or target.field not in sql.probe:
            return None
        bound = next((f for f in t.bound.fields if f.field == target.field), None)
        unique = next((u for u in t.uniques if u.field == target.field), None)
        attr = target.attribute
        if bound is None or bound.to_model is not None or unique is None or attr.type != "string":
            return None
        if attr.case_exact != unique.ref.target.case_exact:
            return None
        value = expr.value if attr.case_exact else expr.value.lower()
        params = [t.name, unique.label, value[:255], t.name, False, value]
        bks, rows, groups = self._fetch(sql, sql.probe[target.field], params)
        if not rows and self._adopt(t):  # perhaps a row the app made without signals
            bks, rows, groups = self._fetch(sql, sql.probe[target.field], params)
        total = len(rows)
        start = max(query.offset, 0)
        if query.count <= 0 or start >= total:
            return Page(total=total)
        window = rows[start : start + query.count]
        return Page(total=total, resources=self._read_rows(t, rows=window, bks=bks, groups=groups))

    def _save_bk(self, t: _Type, bk: Any, names: Sequence[str]) -> None:
        """Write the bookkeeping row's columns ``names`` (one UPDATE, no queryset built)."""
        sql = self._statements(t)
        if sql is None:
            bk.save(using=self.using, update_fields=names)
            return
        opts = self._resource._meta
        connection = sql.connection
        q = connection.ops.quote_name
        params = [
            opts.get_field(name).get_db_prep_save(getattr(bk, name), connection) for name in names
        ]
        assignments = ", ".join(f"{q(opts.get_field(n).column)} = %s" for n in names)
        with connection.cursor() as cursor:
            cursor.execute(sql.save_bk.format(assignments), [*params, bk.pk])

    def _bk(self, t: _Type, id: str) -> Any:
        found = self._resource.objects.using(self.using).filter(
            scim_id=id, resource_type=t.name, deleted=False
        )
        return next(iter(found[:1]), None)  # scim_id is unique: no ORDER BY

    def _lock(self, t: _Type, id: str) -> tuple[Any, Any, _Groups]:
        """The bookkeeping row and the app's instance of ``id``, locked for the write
        (row locks on PostgreSQL; on SQLite the write holds the database), and the
        groups holding it when the statement read them (see ``_groups_columns``)."""
        sql = self._statements(t)
        if sql is not None:  # both rows in one statement
            with sql.connection.cursor() as cursor:
                cursor.execute(sql.lock, [*sql.gparams, id, t.name, False])
                raw = cursor.fetchone()
            if raw is not None:
                values = _convert(raw, sql.lock_conv, sql.connection)
                bk = self._resource.from_db(self.using, sql.bk_names, values[: sql.width])
                end = sql.width + len(sql.all_names)
                instance = t.model.from_db(self.using, sql.all_names, values[sql.width : end])
                groups = {instance.pk: _groups_read(values[end:])} if sql.groups else None
                return bk, instance, groups
            # not found, or the app deleted its row: the ORM's path below tells which
        bk = (
            self._resource.objects.using(self.using)
            .select_for_update()
            .filter(scim_id=id, resource_type=t.name, deleted=False)
            .first()
        )
        if bk is None:
            raise NotFoundError(f"{t.name} {id!r} not found.")
        instance = (
            t.model.objects.using(self.using)
            .select_for_update()
            .filter(pk=self._pk_value(t, bk.object_pk))
            .first()
        )
        if instance is None:  # the app deleted the row
            bk.delete(using=self.using)
            raise NotFoundError(f"{t.name} {id!r} not found.")
        return bk, instance, None

    def _base(self, t: _Type) -> Any:
        """The app's rows that are SCIM resources, with their id and created time."""
        live = self._resource.objects.using(self.using).filter(
            resource_type=t.name, object_pk=OuterRef("_pk_text"), deleted=False
        )
        return (
            t.model.objects.using(self.using)
            .annotate(_pk_text=Cast("pk", models.CharField()))
            .annotate(
                _scim_id=Subquery(live.values("scim_id")[:1]),
                _created=Subquery(live.values("created")[:1]),
            )
        )

    def _default_page(self, t: _Type, query: SearchQuery) -> Page:
        """No filter, no sort: the window in (meta.created, id) order, from the
        bookkeeping's index alone (an IdP's full sync pages through everything)."""
        sql = self._statements(t)
        if sql is not None:
            return self._window(t, sql, query)
        self._adopt(t)
        live = self._resource.objects.using(self.using).filter(resource_type=t.name, deleted=False)
        total = live.count()
        if query.count <= 0 or query.offset >= total:
            return Page(total=total)
        start = max(query.offset, 0)
        window = live.order_by("created", "scim_id").values_list("object_pk", flat=True)
        stop = start + min(query.count, total - start)  # no LIMIT past what exists
        pks = [self._pk_value(t, p) for p in window[start:stop]]
        return Page(total=total, resources=self._read_rows(t, pks))

    def _window(self, t: _Type, sql: _Statements, query: SearchQuery) -> Page:
        """:meth:`_default_page` in one statement (two when the window is empty): the
        total, ``MAX(pk)`` for the adoption check (see :meth:`_adopt`), the rows and their
        groups."""
        start = max(query.offset, 0)
        connection = sql.connection
        if query.count > 0 and start < _MAX_WINDOW:
            limit = connection.ops.limit_offset_sql(start, start + min(query.count, _MAX_WINDOW))
            params = [t.name, False, *sql.gparams, t.name, False]
            with connection.cursor() as cursor:
                cursor.execute(sql.window.format(limit), params)
                raw = cursor.fetchall()
            if raw:
                total, top = raw[0][0], raw[0][1]
                if self._adopt(t, top):  # app rows made without signals: read again
                    return self._window(t, sql, query)
                bks: dict[str, Any] = {}
                rows: list[dict[str, Any]] = []
                groups: dict[Any, list[dict[str, Any]] | None] = {}
                width, names = sql.width, sql.row_names
                end = width + len(names)
                for r in raw:
                    values = _convert(r[2:], sql.read_conv, connection)
                    bk = self._resource.from_db(self.using, sql.bk_names, values[:width])
                    bks[bk.object_pk] = bk
                    row = dict(zip(names, values[width:end], strict=True))
                    rows.append(row)
                    groups[row["pk"]] = _groups_read(values[end:])
                found = self._read_rows(
                    t, rows=rows, bks=bks, groups=groups if sql.groups else None
                )
                return Page(total=total, resources=found)
        with connection.cursor() as cursor:
            cursor.execute(sql.count_top, [t.name, False])
            total, top = cursor.fetchone()
        if self._adopt(t, top):
            return self._window(t, sql, query)
        # RFC 7644 §3.4.2.4: past the last result, or count=0: the total alone (a window
        # that came back empty otherwise holds only rows the app deleted behind Django)
        return Page(total=total)

    def _on_post_save(
        self,
        sender: Any,
        instance: Any,
        created: bool,
        using: str | None = None,
        update_fields: Any = None,
        **kw: Any,
    ) -> None:
        """The app saved a row: a new one gets its SCIM id and version at once (in the
        app's transaction); a change to a mapped field moves the version (RFC 7644 §3.14)
        and the values the uniqueness and ``userName eq`` lookups read."""
        if using != self.using or getattr(_OWN_SAVE, "active", False):
            return
        self._epoch += 1  # e.g. a group renamed: its display in groups changes
        for t in self._types.values():
            if t.model is not sender or t.bm is None:
                continue
            one = t.model.objects.using(self.using).filter(pk=instance.pk)
            if created:
                self._adopt_rows(t, one)
                continue
            if update_fields is not None and not set(update_fields) & set(t.fields):
                return  # e.g. last_login at each login
            row = next(iter(one.values("pk", *t.fields)), None)
            bk = self._resource.objects.using(self.using).filter(
                resource_type=t.name, object_pk=self._pk_text(t, instance.pk), deleted=False
            )
            found = next(iter(bk[:1]), None)
            if row is not None and found is not None:
                digest = _hash(row, t.fields)
                if digest != found.content_hash:
                    self._app_changed(t, found, row, digest)

    def _on_post_delete(self, sender: Any, instance: Any, **kw: Any) -> None:
        """The app deleted a row: its SCIM resource is gone (bookkeeping, cascade)."""
        self._epoch += 1
        for t in self._types.values():
            if t.model is sender:
                self._resource.objects.using(self.using).filter(
                    resource_type=t.name, object_pk=self._pk_text(t, instance.pk)
                ).delete()

    def _stored_row(self, t: _Type, pk: Any) -> dict[str, Any]:
        """The mapped fields of the app's row ``pk`` as the database gives them back."""
        found = t.model.objects.using(self.using).filter(pk=pk).values("pk", *t.fields)
        return next(iter(found), {"pk": pk})

    def _adopt(self, t: _Type, top: Any = _UNREAD) -> bool:
        """Give every app row without bookkeeping an id and version; True if it may have
        given some (a search already run should then run again).

        Rows the app saves get theirs at once (``post_save``); this catches the rows made
        without signals (``bulk_create``, fixtures, SQL). With an integer primary key, one
        ``MAX(pk)`` (``top``, when the caller read it with its own statement) tells whether
        rows were added since the last look, and only those are examined; otherwise two
        counts tell whether there is anything to do (the app's deletes remove the
        bookkeeping through ``post_delete``).
        """
        upto = self._adopted_upto.get(t.name)
        incremental = t.model._meta.pk.get_internal_type() in _INTEGER_PKS
        if incremental and upto is not None:
            sql = self._statements(t)
            if top is not _UNREAD:
                pass
            elif sql is not None:  # MAX(pk) on the primary key's index, no queryset built
                with sql.connection.cursor() as cursor:
                    cursor.execute(sql.top)
                    top = cursor.fetchone()[0]
            else:
                top = t.model.objects.using(self.using).aggregate(top=Max("pk"))["top"]
            if top is None or top <= upto:
                return False
            self._adopt_rows(t, t.model.objects.using(self.using).filter(pk__gt=upto))
            self._adopted_upto[t.name] = top
            return True
        top = None
        if incremental:  # PostgreSQL has no MAX() of a uuid
            top = t.model.objects.using(self.using).aggregate(top=Max("pk"))["top"]
        rows = self._resource.objects.using(self.using).filter(resource_type=t.name)
        have, want = rows.count(), t.model.objects.using(self.using).count()
        if have > want:  # rows deleted behind Django's back (raw SQL): forget them
            alive = (
                t.model.objects.using(self.using)
                .annotate(_pk_text=Cast("pk", models.CharField()))
                .filter(_pk_text=OuterRef("object_pk"))
            )
            rows.filter(~Exists(alive)).delete()
        if have != want:
            self._adopt_rows(t, t.model.objects.using(self.using))
        if incremental and top is not None:
            self._adopted_upto[t.name] = top
        return bool(have != want)

    def _adopt_rows(self, t: _Type, candidates: Any) -> None:
        """Bookkeeping for the rows of ``candidates`` that have none."""
        known = self._resource.objects.using(self.using).filter(
            resource_type=t.name, object_pk=OuterRef("_pk_text")
        )
        missing = list(
            candidates.annotate(_pk_text=Cast("pk", models.CharField()))
            .filter(~Exists(known))
            .values("pk", *t.fields)
        )
        for start in range(0, len(missing), 5000):  # SQLite's limit of parameters
            self._adopt_chunk(t, missing[start : start + 5000])
        if len(missing) >= _ANALYZE_AFTER:
            self._analyze()

    def _analyze(self) -> None:
        """Fresh planner statistics for the bookkeeping tables after many rows arrived at
        once: without them PostgreSQL may probe a row's bookkeeping through the listing
        index instead of the (type, primary key) one, a scan per row."""
        connection = connections[self.using]
        with connection.cursor() as cursor:
            for model in (self._resource, self._unique):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")

    def _adopt_chunk(self, t: _Type, missing: list[dict[str, Any]]) -> None:
        """Bookkeeping for app rows: the extras and value index a SCIM write of the row as
        read would store (so the first PATCH of an app-made row rewrites no index)."""
        if not missing:
            return
        when = now()
        fresh = []
        resources: dict[str, dict[str, Any]] = {}
        for row in missing:
            resource = t.bound.read(row, {})
            resource["meta"] = {"resourceType": t.name}  # as _read_rows gives it
            try:
                extras = _strip_meta(t.bound.write(resource)[1], {})
            except Exception:  # e.g. a to_model refusing a value the app stored
                extras = {}  # written by the row's first SCIM write instead
            bk = self._resource(
                scim_id=str(uuid.uuid4()),
                resource_type=t.name,
                object_pk=self._pk_text(t, row["pk"]),
                version=1,
                created=when,
                last_modified=when,
                content_hash=_hash(row, t.fields),
                extras=extras,
            )
            fresh.append(bk)
            resources[bk.scim_id] = resource
        self._resource.objects.using(self.using).bulk_create(fresh, ignore_conflicts=True)
        # the rows made here (not those another writer adopted at the same time)
        made = list(self._resource.objects.using(self.using).filter(scim_id__in=list(resources)))
        values = [v for bk in made for v in self._value_rows(t, bk, bk.extras)]
        if values:
            self._value.objects.using(self.using).bulk_create(values)
        if t.uniques:
            uniques = [
                self._unique(resource=bk, resource_type=t.name, attribute=u.label, value=key[:255])
                for bk in made
                for u in t.uniques
                for key in u.keys(resources[bk.scim_id])
            ]
            self._unique.objects.using(self.using).bulk_create(uniques, ignore_conflicts=True)

    def _read_rows(
        self,
        t: _Type,
        pks: Sequence[Any] = (),
        *,
        rows: Sequence[dict[str, Any]] | None = None,
        bks: Mapping[str, Any] | None = None,
        refresh: bool = True,
        members: bool = True,
        groups: _Groups = None,
    ) -> list[dict[str, Any]]:
        """The resources of the app's rows ``pks`` (in that order; missing ones skipped),
        or of ``rows`` already read (``values("pk", *fields)``). ``groups``: the groups
        holding each row, read with it; kept for the ``groups_of`` that follows.

        With ``refresh``, a row whose mapped fields no longer have the hash SCIM last saw
        was changed by the app: its version and lastModified move first (RFC 7644 §3.14).
        """
        if rows is None:
            if not pks:
                return []
            rows = t.model.objects.using(self.using).filter(pk__in=pks).values("pk", *t.fields)
        by_pk = {r["pk"]: r for r in rows}
        order = list(pks) or list(by_pk)
        if not order:
            return []
        if bks is None:
            bks = {
                bk.object_pk: bk
                for bk in self._resource.objects.using(self.using).filter(
                    resource_type=t.name,
                    object_pk__in=[self._pk_text(t, pk) for pk in by_pk],
                    deleted=False,
                )
            }
        listed: dict[Any, list[dict[str, Any]]] = {}
        displays: dict[tuple[int, str], str] = {}
        if t.relation is not None and members:
            found = self._members_read(t, list(by_pk))
            listed = found if found is not None else self._members_of(t.relation, list(by_pk))
            if listed and found is None:
                displays = {
                    (r, m): d
                    for r, m, d in self._display.objects.using(self.using)
                    .filter(resource_id__in=[bk.pk for bk in bks.values()])
                    .values_list("resource_id", "member_id", "display")
                }
        out = []
        seen: dict[str, tuple[str, str]] = {}
        held: dict[str, list[dict[str, Any]]] = {}
        for pk in order:
            row = by_pk.get(pk)
            bk = bks.get(self._pk_text(t, pk)) if row is not None else None
            if row is None or bk is None:
                continue
            if refresh:
                digest = _hash(row, t.fields)
                if digest != bk.content_hash:
                    self._app_changed(t, bk, row, digest)
            resource = t.bound.read(*_visible(row, bk.extras))
            resource["id"] = bk.scim_id
            if t.relation is not None and listed.get(pk):
                resource["members"] = [dict(m) for m in listed[pk]]
                for m in resource["members"]:
                    display = displays.get((bk.pk, m["value"]))
                    if display is not None:
                        m["display"] = display
            meta = dict(bk.extras.get("meta") or {})
            meta.setdefault("resourceType", t.name)
            meta["created"] = bk.created
            meta["lastModified"] = bk.last_modified
            meta["version"] = _version(bk.version)
            resource["meta"] = meta
            out.append(resource)
            seen[bk.scim_id] = (t.name, bk.object_pk)
            mine = groups.get(pk) if groups is not None else None
            if mine is not None:
                held[bk.scim_id] = mine
        self._local.seen = seen
        self._remember_groups(held if groups is not None else None)
        return out

    def _remember_groups(self, groups: Mapping[str, Any] | None) -> None:
        """Keep ``{id: groups_of's entries}`` for the next ``groups_of`` of this thread."""
        if groups is None:
            self._local.__dict__.pop("groups", None)
        else:
            self._local.groups = dict(groups)

    def _app_changed(self, t: _Type, bk: Any, row: Mapping[str, Any], digest: str) -> None:
        when = now()
        done = (
            self._resource.objects.using(self.using)
            .filter(pk=bk.pk, content_hash=bk.content_hash)
            .update(version=F("version") + 1, last_modified=when, content_hash=digest)
        )
        if done:
            bk.version += 1
            bk.last_modified = when
            bk.content_hash = digest
            if t.uniques:
                resource = t.bound.read(*_visible(row, bk.extras))
                self._write_uniques(t, bk, resource, replace=True, strict=False)
        else:
            bk.refresh_from_db(using=self.using)

    def _members_read(
        self, t: _Type, group_pks: list[Any]
    ) -> dict[Any, list[dict[str, Any]]] | None:
        """:meth:`_members_of` with the members' displays, in one statement joining the
        relation and the bookkeeping (None: not for this model, or a member has no
        bookkeeping yet, which :meth:`_members_of` adopts)."""
        sql = self._statements(t)
        rel = t.relation
        if sql is None or sql.members_of is None or rel is None or not group_pks:
            return None
        out: dict[Any, list[dict[str, Any]]] = {}
        with sql.connection.cursor() as cursor:
            for chunk in _chunks(group_pks):
                marks = ", ".join(["%s"] * len(chunk))
                params = [rel.member_type, False, t.name, False, *chunk]
                cursor.execute(sql.members_of.format(marks), params)
                for gpk, id, display in cursor.fetchall():
                    if id is None:
                        return None
                    entry: dict[str, Any] = {"value": id, "type": rel.member_type}
                    if display is not None:
                        entry["display"] = display
                    out.setdefault(gpk, []).append(entry)
        return out

    def _members_of(self, rel: _Relation, group_pks: list[Any]) -> dict[Any, list[dict[str, Any]]]:
        """``{group pk: [{"value": id, "type": member type}, ...]}`` in joining order."""
        member_t = self._types[rel.member_type]
        links = list(
            rel.through.objects.using(self.using)
            .filter(**{f"{rel.group_col}__in": group_pks})
            .order_by("pk")
            .values_list(rel.group_col, rel.member_col)
        )
        if not links:
            return {}
        ids = self._scim_ids(member_t, {m for _, m in links})
        out: dict[Any, list[dict[str, Any]]] = {}
        for gpk, mpk in links:
            id = ids.get(mpk)
            if id is not None:
                out.setdefault(gpk, []).append({"value": id, "type": rel.member_type})
        return out

    def _scim_ids(self, t: _Type, pks: Iterable[Any]) -> dict[Any, str]:
        """SCIM ids of the app's rows ``pks`` (rows without bookkeeping are adopted)."""
        pks = list(pks)
        texts = {self._pk_text(t, pk): pk for pk in pks}
        found = dict(
            self._resource.objects.using(self.using)
            .filter(resource_type=t.name, object_pk__in=list(texts), deleted=False)
            .values_list("object_pk", "scim_id")
        )
        if len(found) < len(texts):
            self._adopt(t)
            found = dict(
                self._resource.objects.using(self.using)
                .filter(resource_type=t.name, object_pk__in=list(texts), deleted=False)
                .values_list("object_pk", "scim_id")
            )
        return {texts[k]: v for k, v in found.items()}

    def _group_entries(self, group: _Type, gpks: Iterable[Any]) -> dict[Any, dict[str, Any]]:
        """``{group pk: {"value": id, "display": displayName}}``."""
        gpks = list(gpks)
        ids = self._scim_ids(group, gpks)
        display_field = group.bound.single(group.bound.rt.resolve_path("displayName"))
        names: dict[Any, Any] = {}
        if display_field is not None:
            names = dict(
                group.model.objects.using(self.using)
                .filter(pk__in=gpks)
                .values_list("pk", display_field.field)
            )
        else:
            for bk in self._resource.objects.using(self.using).filter(
                resource_type=group.name, object_pk__in=[self._pk_text(group, p) for p in gpks]
            ):
                names[self._pk_value(group, bk.object_pk)] = bk.extras.get("displayName")
        out = {}
        for gpk, id in ids.items():
            entry: dict[str, Any] = {"value": id}
            name = names.get(gpk)
            if isinstance(name, str) and name:
                entry["display"] = name
            out[gpk] = entry
        return out

    def _member_pks(
        self,
        rel: _Relation,
        ids: Iterable[str],
        *,
        strict: bool = True,
        known: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``{member id: app pk}``; with ``strict``, 400 ``invalidValue`` for ids that are
        not live resources of the member type (RFC 7643 §4.2: "Identifier of the member").
        ``known``: pks this write's transaction already read (see :meth:`_some_members`)."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        if known is not None and all(id in known for id in ids):
            return {id: known[id] for id in ids}
        member_t = self._types[rel.member_type]
        sql = self._statements(member_t)
        if sql is not None:  # one statement: the bookkeeping joined to the app's rows
            found: dict[str, Any] = {}
            with sql.connection.cursor() as cursor:
                for chunk in _chunks(ids):
                    marks = ", ".join(["%s"] * len(chunk))
                    cursor.execute(sql.pks_of.format(marks), [*chunk, rel.member_type, False])
                    found.update(cursor.fetchall())
            if all(id in found for id in ids) or not strict:
                return {id: found[id] for id in ids if id in found}
        rows = dict(
            self._resource.objects.using(self.using)
            .filter(scim_id__in=ids, resource_type=rel.member_type, deleted=False)
            .values_list("scim_id", "object_pk")
        )
        pks = {id: self._pk_value(member_t, text) for id, text in rows.items()}
        if pks:
            alive = set(
                member_t.model.objects.using(self.using)
                .filter(pk__in=list(pks.values()))
                .values_list("pk", flat=True)
            )
            # in the order asked (a group's members keep the order they were given in)
            pks = {id: pks[id] for id in ids if id in pks and pks[id] in alive}
        missing = [id for id in ids if id not in pks]
        if missing and strict:
            error: InvalidValueError = missing_members_error(missing)
            other = self._resource.objects.using(self.using).filter(scim_id__in=missing)
            if other.exclude(resource_type=rel.member_type).exists():
                error = InvalidValueError(
                    f"Members of this group must be {rel.member_type} resources "
                    f"(the relation holds only those): {', '.join(sorted(missing)[:5])}."
                )
            raise error
        return pks

    def _some_members(
        self, t: _Type, rel: _Relation, bk: Any, group_pk: Any, values: Collection[str]
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """The stored members of the group whose ``value`` is in ``values``, in stored
        order, each read by its id (one index probe each, whatever the group's size);
        and, when one statement read them, ``{id: app pk}`` of the live ones (members or
        not), for the write's :meth:`_member_pks`."""
        if not values:
            return [], None
        sql = self._statements(t)
        if sql is not None and sql.some_members is not None:
            links: list[tuple[Any, str, Any]] = []
            alive: dict[str, Any] = {}
            with sql.connection.cursor() as cursor:
                for chunk in _chunks(list(values)):
                    marks = ", ".join(["%s"] * len(chunk))
                    params = [group_pk, bk.pk, *chunk, rel.member_type, False]
                    cursor.execute(sql.some_members.format(marks), params)
                    for id, pk, link, display in cursor.fetchall():
                        alive[id] = pk
                        if link is not None:
                            links.append((link, id, display))
            entries = []
            for _, id, display in sorted(links):
                entry: dict[str, Any] = {"value": id, "type": rel.member_type}
                if display is not None:
                    entry["display"] = display
                entries.append(entry)
            return entries, alive
        return self._orm_some_members(rel, bk, group_pk, values), None

    def _orm_some_members(
        self, rel: _Relation, bk: Any, group_pk: Any, values: Collection[str]
    ) -> list[dict[str, Any]]:
        """:meth:`_some_members` through the ORM."""
        member_t = self._types[rel.member_type]
        rows = dict(
            self._resource.objects.using(self.using)
            .filter(scim_id__in=list(values), resource_type=rel.member_type, deleted=False)
            .values_list("object_pk", "scim_id")
        )
        if not rows:
            return []
        pks = {self._pk_value(member_t, text): id for text, id in rows.items()}
        links = (
            rel.through.objects.using(self.using)
            .filter(**{rel.group_col: group_pk, f"{rel.member_col}__in": list(pks)})
            .order_by("pk")
            .values_list(rel.member_col, flat=True)
        )
        displays = dict(
            self._display.objects.using(self.using)
            .filter(resource=bk, member_id__in=list(rows.values()))
            .values_list("member_id", "display")
        )
        out = []
        for mpk in links:
            entry: dict[str, Any] = {"value": pks[mpk], "type": rel.member_type}
            if pks[mpk] in displays:
                entry["display"] = displays[pks[mpk]]
            out.append(entry)
        return out

    def _write_displays(self, bk: Any, old: Mapping[str, str], new: Mapping[str, str]) -> None:
        """Write only the members' ``display`` values that changed."""
        gone = [m for m, d in old.items() if new.get(m) != d]
        if gone:
            self._display.objects.using(self.using).filter(resource=bk, member_id__in=gone).delete()
        fresh = [
            self._display(resource=bk, member_id=m, display=d)
            for m, d in new.items()
            if old.get(m) != d
        ]
        if fresh:
            self._display.objects.using(self.using).bulk_create(fresh)

    def _add_members(self, rel: _Relation, group_pk: Any, member_pks: Iterable[Any]) -> None:
        rows = [rel.through(**{rel.group_col: group_pk, rel.member_col: pk}) for pk in member_pks]
        rel.through.objects.using(self.using).bulk_create(rows, ignore_conflicts=True)

    def _remove_members(self, rel: _Relation, group_pk: Any, member_pks: Iterable[Any]) -> None:
        rel.through.objects.using(self.using).filter(
            **{rel.group_col: group_pk, f"{rel.member_col}__in": list(member_pks)}
        ).delete()

    def _touch(self, type_name: str, pks: Iterable[Any], when: str) -> None:
        """A membership changed: the member (or group) gets a new version and lastModified
        (RFC 7644 §3.14: ``groups`` is part of a User's representation)."""
        self._epoch += 1
        self._local.__dict__.pop("groups", None)
        t = self._types.get(type_name)
        pks = list(pks)
        if t is None or not pks or t.bm is None:
            return
        if t.bm.rt.schema.attribute("groups") is None and t.relation is None:
            return
        self._resource.objects.using(self.using).filter(
            resource_type=type_name,
            object_pk__in=[self._pk_text(t, pk) for pk in pks],
            deleted=False,
        ).update(version=F("version") + 1, last_modified=when)

    def _assign(
        self,
        t: _Type,
        instance: Any,
        values: Mapping[str, Any],
        *,
        creating: bool,
        unset: dict[str, Any] | None = None,
    ) -> list[str]:
        """Set the mapped fields; 400 ``invalidValue`` naming the SCIM attribute for a value
        the field refuses (too long, malformed email, a string for an integer...).

        A field that cannot hold "no value" (a ``BooleanField`` with a default) gets its
        default; ``unset`` records it, so that reading gives the attribute back unassigned
        while the app leaves the field as written (RFC 7643 §2.5).
        """
        changed = []
        by_field = {f.field: f for f in t.bound.fields}
        for name, value in values.items():
            field = t.fields[name]
            if value is None:
                if field.null:
                    stored = None
                elif field.get_internal_type() in _TEXT_FIELDS:
                    stored = ""
                elif field.has_default():
                    stored = field.get_default()
                    if unset is not None:
                        unset[name] = stored
                else:
                    stored = None
            else:
                stored = value
            if stored is not None:
                try:
                    stored = field.clean(stored, instance)
                except ValidationError as exc:
                    label = by_field[name].label
                    detail = "; ".join(str(m) for m in exc.messages)
                    raise InvalidValueError(
                        f"The value of {label!r} is not valid here: {detail}"
                    ) from None
                except (TypeError, ValueError):
                    raise InvalidValueError(
                        f"The value of {by_field[name].label!r} is not valid here."
                    ) from None
            if creating or getattr(instance, field.attname) != stored:
                setattr(instance, field.attname, stored)
                changed.append(name)
        if creating and hasattr(instance, "set_unusable_password"):
            instance.set_unusable_password()
        return changed

    def _save(self, t: _Type, instance: Any, fields: list[str] | None) -> None:
        # No savepoint: every caller runs in the write's transaction (``_write``) and lets
        # the error end it, so the whole write is rolled back.
        try:
            with _own_save():
                instance.save(using=self.using, update_fields=fields)
        except IntegrityError:
            # The app's own unique constraints (e.g. auth.User.username) hold too.
            raise UniquenessError(
                f"A value of this {t.name} is already in use ({t.mapping.model})."
            ) from None

    def _check_columns_unique(self, t: _Type, resource: Mapping[str, Any], exclude_pk: Any) -> None:
        """Unique attributes held by fields: also compare with the app's own rows (which
        may predate the bookkeeping), case-insensitively unless caseExact."""
        for u in t.uniques:
            if u.field is None:
                continue
            for key in u.keys(resource):
                qs = t.model.objects.using(self.using)
                if u.ref.target.case_exact:
                    qs = qs.filter(**{u.field: key})
                else:
                    qs = qs.annotate(_u=Lower(u.field)).filter(_u=key)
                if exclude_pk is not None:
                    qs = qs.exclude(pk=exclude_pk)
                # rows hidden from SCIM (deleted, deactivated) still hold their values
                if qs.exists():
                    raise UniquenessError(f"The value of {u.label!r} is already in use.")

    def _write_uniques(
        self,
        t: _Type,
        bk: Any,
        resource: Mapping[str, Any],
        *,
        replace: bool = False,
        strict: bool = True,
    ) -> None:
        """RFC 7643 §7 "uniqueness": "server" — "The value SHOULD be unique within the
        context of the current SCIM endpoint"; the unique constraint decides races."""
        if replace:
            self._unique.objects.using(self.using).filter(resource=bk).delete()
        rows = [
            self._unique(resource=bk, resource_type=t.name, attribute=u.label, value=key[:255])
            for u in t.uniques
            for key in u.keys(resource)
        ]
        if not rows:
            return
        if not strict:
            self._unique.objects.using(self.using).bulk_create(rows, ignore_conflicts=True)
            return
        try:
            with transaction.atomic(using=self.using):
                self._unique.objects.using(self.using).bulk_create(rows)
        except IntegrityError:
            label = next(iter(t.uniques)).label if len(t.uniques) == 1 else "a unique attribute"
            raise UniquenessError(f"The value of {label!r} is already in use.") from None

    def _write_values(
        self, t: _Type, bk: Any, extras: Mapping[str, Any], *, replace: bool = False
    ) -> None:
        if replace:
            self._value.objects.using(self.using).filter(resource=bk).delete()
        rows = self._value_rows(t, bk, extras)
        if rows:
            self._value.objects.using(self.using).bulk_create(rows)

    def _value_rows(self, t: _Type, bk: Any, extras: Mapping[str, Any]) -> list[Any]:
        """The value index's rows of ``extras`` (and of the fields left unassigned)."""
        rows = [
            self._value(
                resource=bk, key=_UNSET, sub=name, **{_marker_column(t.fields[name]): value}
            )
            for name, value in (bk.extras.get(_UNSET) or {}).items()
            if name in t.fields
        ]
        for leaf in t.bound.leaves(extras):
            v = leaf.value
            text = v if isinstance(v, str) else None
            rows.append(
                self._value(
                    resource=bk,
                    key=leaf.key[:255],
                    sub=leaf.sub,
                    index=leaf.index,
                    text=text,
                    folded=text.lower() if text is not None else None,
                    number=float(v)
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                    else None,
                    flag=v if isinstance(v, bool) else None,
                )
            )
        return rows

    # -- internals: compiling expressions ----------------------------------------------------

    def _collate(self, expr: Any) -> Any:
        # Code point order, as Python orders strings (RFC 7644 §3.4.2.2 "lexicographical").
        if connections[self.using].vendor == "postgresql":
            return Collate(expr, "C")
        return expr

    def _column(self, t: _Type, target: Column, depth: int) -> tuple[Any, Any, bool]:
        """``(expression, field, nullable)`` of a mapped field at ``depth`` (0: the app's
        row; 1: inside a subquery on the value index or the relation)."""
        field = t.fields[target.field]
        name = target.field if depth == 0 else f"_o_{target.field}"
        return F(name), field, field.null

    def _string_test(self, lhs: Any, op: str, value: str, exact: bool) -> Any:
        """A comparison of text ``lhs`` with ``value``, honouring caseExact (RFC 7643 §2.1:
        "caseExact" decides whether "string comparisons [are] case sensitive")."""
        if not exact:
            lhs, value = Lower(lhs), value.lower()
        lit = Value(value, output_field=models.TextField())
        if op == "eq":
            return lk.Exact(lhs, lit)
        if op == "ne":
            return ~Q(lk.Exact(lhs, lit))
        if op in ("co", "sw", "ew") and not value:
            return lk.IsNull(lhs, False)  # every string has the empty string in it
        if op == "co":
            return lk.GreaterThan(StrIndex(lhs, lit), 0)
        if op == "sw":
            return lk.Exact(Left(lhs, len(value)), lit)
        if op == "ew":
            return Q(lk.Exact(Right(lhs, len(value)), lit)) & Q(
                lk.GreaterThanOrEqual(Length(lhs), len(value))
            )
        order = {"gt": lk.GreaterThan, "ge": lk.GreaterThanOrEqual, "lt": lk.LessThan}
        cls = order.get(op, lk.LessThanOrEqual)
        return cls(self._collate(lhs), self._collate(lit))

    def _plain_test(self, lhs: Any, op: str, value: Any) -> Any:
        if op == "eq":
            return lk.Exact(lhs, value)
        if op == "ne":
            return ~Q(lk.Exact(lhs, value))
        order = {
            "gt": lk.GreaterThan,
            "ge": lk.GreaterThanOrEqual,
            "lt": lk.LessThan,
            "le": lk.LessThanOrEqual,
        }
        if op not in order:
            raise Untranslatable(f"Operator {op!r} does not apply to this attribute.")
        return order[op](lhs, value)

    def _column_test(self, t: _Type, test: Cmp | Assigned | Present, depth: int) -> Q:
        target = test.target
        assert isinstance(target, Column)
        lhs, field, _nullable = self._column(t, target, depth)
        text = field.get_internal_type() in _TEXT_FIELDS
        guard = Q(lk.IsNull(lhs, False))
        if text:
            guard &= ~Q(lk.Exact(lhs, ""))
        elif depth == 0 and field.has_default() and not field.null:
            # The field holds the default it got for an unassigned attribute (_visible).
            unset = self._value.objects.using(self.using).filter(
                resource__resource_type=t.name,
                resource__object_pk=OuterRef("_pk_text"),
                key=_UNSET,
                sub=target.field,
                **{_marker_column(field): OuterRef(target.field)},
            )
            guard &= ~Q(Exists(unset))
        if isinstance(test, (Assigned, Present)):
            return guard
        attr = target.attribute
        bound = next((f for f in t.bound.fields if f.field == target.field), None)
        value: Any = test.value
        if bound is not None and bound.to_model is not None:
            value = bound.to_model(value)
        if attr.type in ("string", "reference", "binary") and isinstance(value, str):
            if not text:
                lhs = Cast(lhs, models.TextField())
            exact = attr.case_exact or attr.type == "binary"
            found = guard & Q(self._string_test(lhs, test.op, value, exact))
            if depth == 0 and test.op == "eq" and isinstance(test.value, str):
                found &= self._unique_probe(t, target.field, test.value)
            return found
        if attr.type == "boolean" and not isinstance(value, bool):
            return Q(pk__in=[])
        try:
            value = field.to_python(value)
        except (ValidationError, TypeError, ValueError):
            return Q(pk__in=[])
        return guard & Q(self._plain_test(lhs, test.op, value))

    def _unique_probe(self, t: _Type, field: str, value: str) -> Q:
        """For ``eq`` on a unique attribute's field: the rows whose value the unique
        index holds (one index probe; a caseExact=false comparison on the app's column
        cannot use the column's index). The column's own test still decides; the index is
        kept by every SCIM write and by the app's saves (``post_save``)."""
        unique = next((u for u in t.uniques if u.field == field), None)
        if unique is None or t.model._meta.pk.get_internal_type() not in _INTEGER_PKS:
            return Q()
        key = value if unique.ref.target.case_exact else value.lower()
        probe = (
            self._unique.objects.using(self.using)
            .filter(resource_type=t.name, attribute=unique.label, value=key[:255])
            .annotate(_pk=Cast("resource__object_pk", models.BigIntegerField()))
            .values("_pk")
        )
        return Q(pk__in=Subquery(probe))

    def _leaf_test(self, attr: Attribute, test: Cmp | Assigned | Present) -> Q:
        """The test on one row of the value index."""
        if isinstance(test, Assigned):
            return Q()
        if isinstance(test, Present):
            return ~Q(text="") | Q(text__isnull=True)
        value = test.value
        t = attr.type
        if t == "boolean":
            if not isinstance(value, bool):
                return Q(pk__in=[])
            return Q(flag=value) if test.op == "eq" else Q(flag=(not value))
        if t in ("integer", "decimal"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return Q(pk__in=[])
            return Q(number__isnull=False) & Q(self._plain_test(F("number"), test.op, value))
        if not isinstance(value, str):
            return Q(pk__in=[])
        exact = attr.case_exact or t in ("binary", "dateTime")
        column = "text" if exact else "folded"
        lit = value if exact else value.lower()
        return Q(**{f"{column}__isnull": False}) & Q(
            self._string_test(F(column), test.op, lit, True)
        )

    def _meta_test(self, t: _Type, test: Cmp | Assigned | Present, depth: int) -> Q:
        target = test.target
        assert isinstance(target, MetaValue)
        columns = {"id": "scim_id", "created": "created", "lastModified": "last_modified"}
        if target.name not in columns:
            raise Untranslatable(f"This backend cannot filter on meta.{target.name}.")
        if isinstance(test, (Assigned, Present)):
            return Q(pk__isnull=False)
        if not isinstance(test.value, str):
            return Q(pk__in=[])
        rows = self._resource.objects.using(self.using).filter(
            Q(resource_type=t.name, object_pk=OuterRef("_pk_text"), deleted=False)
            & Q(self._string_test(F(columns[target.name]), test.op, test.value, True))
        )
        return Q(Exists(rows))

    # A dispatch over every node kind of scim2_core.mapping's expressions, one branch each,
    # as the SQLAlchemy compiler has: the list of kinds is the reason for its length.
    def _q(self, t: _Type, expr: Expr, depth: int, key: str = "") -> Q:  # noqa: C901
        """Compile an expression of :mod:`scim2_core.mapping` into a ``Q``.

        Every leaf is two-valued (guards against NULL, or ``EXISTS``), so SQL's ``NOT``
        agrees with the filter's ``not``.
        """
        if isinstance(expr, Const):
            return Q(pk__isnull=False) if expr.value else Q(pk__in=[])
        if isinstance(expr, AllOf):
            out = Q()
            for item in expr.items:
                out &= self._q(t, item, depth, key)
            return out
        if isinstance(expr, AnyOf):
            out = Q(pk__in=[])
            for item in expr.items:
                out |= self._q(t, item, depth, key)
            return out
        if isinstance(expr, Negate):
            return ~self._q(t, expr.item, depth, key)
        if isinstance(expr, AnyElement):
            groups = t.bound.groups_of(*_split_key(t, expr.key))
            rows = self._value.objects.using(self.using).filter(
                resource__resource_type=t.name,
                resource__object_pk=OuterRef("_pk_text"),
                resource__deleted=False,
                key=expr.key,
                sub=ELEMENT,
            )
            outer = {f"_o_{f.field}": OuterRef(f.field) for g in groups for f in g.fields}
            if outer:
                rows = rows.annotate(**outer)
            return Q(Exists(rows.filter(self._q(t, expr.inner, 1, expr.key))))
        if isinstance(expr, AnyMember):
            rel = t.relation
            assert rel is not None
            links = (
                rel.through.objects.using(self.using)
                .filter(**{rel.group_col: OuterRef("pk")})
                .annotate(_m=Cast(rel.member_col, models.CharField()))
            )
            return Q(Exists(links.filter(self._q(t, expr.inner, 1))))
        target = expr.target
        if isinstance(target, Column):
            return self._column_test(t, expr, depth)
        if isinstance(target, MetaValue):
            return self._meta_test(t, expr, depth)
        if isinstance(target, LeafValue):
            rows = self._value.objects.using(self.using).filter(
                resource__resource_type=t.name,
                resource__object_pk=OuterRef("_pk_text"),
                resource__deleted=False,
                key=target.key,
            )
            if target.sub == "*":
                rows = rows.exclude(sub=ELEMENT).exclude(sub="")
            else:
                rows = rows.filter(sub=target.sub)
            return Q(Exists(rows.filter(self._leaf_test(target.attribute, expr))))
        if isinstance(target, ElementSub):
            rows = self._value.objects.using(self.using).filter(
                resource_id=OuterRef("resource_id"),
                index=OuterRef("index"),
                key=key,
                sub=target.sub,
            )
            return Q(Exists(rows.filter(self._leaf_test(target.attribute, expr))))
        assert isinstance(target, MemberValue)
        rel = t.relation
        assert rel is not None
        if isinstance(expr, (Assigned, Present)):
            test = Q()
        elif isinstance(expr.value, str):
            exact = target.attribute.case_exact
            test = Q(self._string_test(F("scim_id"), expr.op, expr.value, exact))
        else:
            return Q(pk__in=[])
        ids = self._resource.objects.using(self.using).filter(
            resource_type=rel.member_type, object_pk=OuterRef("_m"), deleted=False
        )
        return Q(Exists(ids.filter(test)))

    def _sort_expr(self, t: _Type, target: Any) -> Any:
        """The ``ORDER BY`` value of ``sortBy`` (RFC 7644 §3.4.2.3): strings folded unless
        caseExact, in code point order; NULL where the resource has no value."""
        if isinstance(target, MetaValue):
            columns = {"id": "scim_id", "created": "created", "lastModified": "last_modified"}
            if target.name not in columns:
                raise Untranslatable(f"This backend cannot sort by meta.{target.name}.")
            live = self._resource.objects.using(self.using).filter(
                resource_type=t.name, object_pk=OuterRef("_pk_text"), deleted=False
            )
            return self._collate(Subquery(live.values(columns[target.name])[:1]))
        if isinstance(target, Column):
            value = self._column_sort(t, target, F(target.field))
            field = t.fields[target.field]
            if field.get_internal_type() not in _TEXT_FIELDS and field.has_default():
                # A field holding the default it got for an unassigned attribute sorts as
                # a missing value.
                unset = self._value.objects.using(self.using).filter(
                    resource__resource_type=t.name,
                    resource__object_pk=OuterRef("_pk_text"),
                    key=_UNSET,
                    sub=target.field,
                    **{_marker_column(field): OuterRef(target.field)},
                )
                value = models.Case(
                    models.When(Exists(unset), then=Value(None)),
                    default=value,
                    output_field=field.__class__(),
                )
            return value
        if isinstance(target, LeafValue):
            rows = self._value.objects.using(self.using).filter(
                resource__resource_type=t.name,
                resource__object_pk=OuterRef("_pk_text"),
                resource__deleted=False,
                key=target.key,
                sub=target.sub,
            )
            column = _leaf_sort_column(target.attribute)
            return self._collate(Subquery(rows.order_by("index").values(column)[:1]))
        assert isinstance(target, ElementSort)
        column = _leaf_sort_column(target.attribute)
        # The primary element, else the first: its own value, or the field's for the
        # element a field holds.
        elements = self._value.objects.using(self.using).filter(
            resource__resource_type=t.name,
            resource__object_pk=OuterRef("_pk_text"),
            resource__deleted=False,
            key=target.key,
            sub=ELEMENT,
        )
        own = self._value.objects.using(self.using).filter(
            resource_id=OuterRef("resource_id"),
            index=OuterRef("index"),
            key=target.key,
            sub=target.sub,
        )
        primary = self._value.objects.using(self.using).filter(
            resource_id=OuterRef("resource_id"),
            index=OuterRef("index"),
            key=target.key,
            sub="primary",
            flag=True,
        )
        candidates: list[Any] = [Subquery(own.values(column)[:1])]
        for group, col in target.fields:
            where = self._q(t, element_where(group), 1, target.key)
            outer = OuterRef(col.field)
            elements = elements.annotate(**{f"_o_{col.field}": outer})
            value = self._column_sort(t, col, F(f"_o_{col.field}"))
            candidates.append(
                models.Case(
                    models.When(where, then=value),
                    default=Value(None),
                    output_field=_sort_output(target.attribute),
                )
            )
        out_field = _sort_output(target.attribute)
        chosen = elements.annotate(
            _v=Coalesce(*candidates, output_field=out_field)
            if len(candidates) > 1
            else candidates[0],
            _p=Exists(primary),
        ).order_by("-_p", "index")
        value = Subquery(chosen.values("_v")[:1])
        fallbacks = [self._column_sort(t, col, F(col.field)) for _, col in target.fields]
        if fallbacks:
            value = Coalesce(value, *fallbacks, output_field=out_field)
        return self._collate(value)

    def _column_sort(self, t: _Type, target: Column, ref: Any) -> Any:
        field = t.fields[target.field]
        attr = target.attribute
        if field.get_internal_type() in _TEXT_FIELDS:
            folded = ref if attr.case_exact else Lower(ref)
            return NullIf(folded, Value(""))
        return ref


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


def _sort_output(attr: Attribute) -> Any:
    if attr.type == "boolean":
        return models.BooleanField()
    if attr.type in ("integer", "decimal"):
        return models.FloatField()
    return models.TextField()


def _marker_column(field: Any) -> str:
    """The value index's column that holds a default of ``field`` (see ``_UNSET``)."""
    kind = field.get_internal_type()
    if kind in ("BooleanField", "NullBooleanField"):
        return "flag"
    if kind in _TEXT_FIELDS:
        return "text"
    return "number"


def _leaf_sort_column(attr: Attribute) -> str:
    if attr.type == "boolean":
        return "flag"
    if attr.type in ("integer", "decimal"):
        return "number"
    return "text" if attr.case_exact or attr.type in ("binary", "dateTime") else "folded"


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
    row: Mapping[str, Any], extras: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(field values, extras)`` to read: a field still holding the default it got for an
    unassigned attribute reads as unassigned."""
    values = dict(row)
    rest = dict(extras)
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
    return cast(dict[str, Any], json.loads(json.dumps(resource)))
