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

import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, cast

from django.apps import apps  # type: ignore[import-untyped]
from django.db import IntegrityError, connections, transaction  # type: ignore[import-untyped]
from django.db.models import F  # type: ignore[import-untyped]
from django.db.models.signals import (  # type: ignore[import-untyped]
    m2m_changed,
    post_delete,
    post_save,
)

from scim2_core import ConfigurationError, ResourceType, UniquenessError
from scim2_core.backends import Change, Page, SearchQuery, check_version
from scim2_core.events import AuditStore, EventStore
from scim2_core.mapping import ResourceMapping, bind_mapping, sort_target, translate
from scim2_core.schema import AttrRef, now, version_number

from ._backend_events import DjangoEvents, sqlite_write_lock
from ._backend_reads import _Reads
from ._backend_types import (
    _EXACT_TYPES,
    _MAX_WINDOW,
    _chunks,
    _copy,
    _displays,
    _hash,
    _member_changes,
    _member_entries,
    _member_ids,
    _own_save,
    _put_members,
    _Relation,
    _relation,
    _row_of,
    _strip_meta,
    _Type,
    _Unique,
)
from .mapping import AUTH_GROUP, AUTH_USER

__all__ = ["DjangoModelBackend"]


class DjangoModelBackend(_Reads):
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
        #: ``{type: total}`` of the last listing: a window past its middle is read from
        #: the index's end (a hint only: the statement counts again).
        self._totals: dict[str, int] = {}
        self._probe_shapes: dict[tuple[str, Any], tuple[str, bool, str]] = {}
        #: Moves whenever a membership may have changed (``_touch``, the app's signals):
        #: groups read with a row are kept for ``groups_of`` only if it has not moved.
        self._epoch = 0
        #: The outbox and audit log (``enable_outbox``, ``enable_audit``): see ``_backend_events``.
        self._events = DjangoEvents(using, self._sqlite_lock, self._types)

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
            found = (
                self._read_rows(t, rows=rows, bks=bks, groups=groups, owned=True) if rows else []
            )
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
        # fields whose cleaned value is what the database keeps: hashed without reading back
        exact = all(t.fields[f].get_internal_type() in _EXACT_TYPES for f in changed)
        if changed and exact:
            bk.content_hash = _hash(row, t.fields)
        meta = new.get("meta") or {}
        old_extras, old_created = bk.extras, bk.created
        bk.version = version_number(meta.get("version")) or bk.version
        bk.last_modified = meta.get("lastModified") or now()
        bk.created = meta.get("created") or bk.created
        bk.extras = _strip_meta(extras, unset)
        written = ["version", "last_modified", "content_hash"]
        written += [
            n
            for n, old in (("created", old_created), ("extras", old_extras))
            if getattr(bk, n) != old
        ]
        rode = False
        if changed:
            # the bookkeeping's UPDATE rides in the round trip of the app row's UPDATE
            # that save() sends, when it is known before it (see ``_Rider``)
            rode = self._save(
                t, instance, changed, self._bk_update(t, bk, written) if exact else None
            )
            if not exact:
                row = self._stored_row(t, instance.pk)  # as the database keeps it
                bk.content_hash = _hash(row, t.fields)
        if not rode:
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
        epoch, cached = self._local.__dict__.pop("groups", (None, None))
        if epoch == self._epoch and cached is not None and all(id in cached for id in ids):
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
