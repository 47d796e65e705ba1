"""``SQLBackend``: SCIM resources in SQLite (the embedded default) or PostgreSQL.

One table holds the resources as JSON documents; small index tables beside it let the
database itself enforce uniqueness, answer membership questions in both directions and find
``userName``/``externalId``/``displayName`` values with one index probe. A group's members
are rows of their own (``scim_members``), never part of its document: adding one member to a
100k-member group writes one row. Filters, sorting
and paging are translated to parameterised SQL (:mod:`._filter`) and run in the database.
The rows and index rows are written by :mod:`._rows`, memberships by :mod:`._members`, the
schema by :mod:`._migrations`, and what differs between the databases lives in
:mod:`._dialect`. See docs/backends.md for the layout and the reasons behind it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Final

from ..._errors import ConfigurationError, NotFoundError, ScimError, UniquenessError
from ..._json import copy_json
from ...events import AuditStore, EventKind, EventStore
from ...schema import ResourceType, now
from .._base import Change, Page, Position, SearchQuery, Seek
from .._outbox import change_events
from .._rules import check_tenant, check_version, last_modified
from .._rules import member_ids as listed_members
from ._dialect import Connection, Dialect, SQLiteDialect, open_dialect
from ._filter import Translator
from ._load import load_many, load_new
from ._members import (
    attach_members,
    check_new_members,
    delete_all_members,
    group_ids,
    insert_checked_members,
    insert_members,
    leave_groups,
    lock_rows,
    read_members,
    read_members_text,
    split_members,
    touch_members,
    with_members,
    write_members,
)
from ._migrations import migrate, reindex, schema_version
from ._outbox import SQLAuditStore, SQLEventStore, versions_of, write_change
from ._rows import (
    DEFAULT_INDEXED,
    META_COLUMNS,
    VERSIONS_JOIN,
    TypeInfo,
    add_count,
    check_indexed,
    chunks,
    display,
    dumps,
    fold_document,
    loads,
    merge_meta,
    resource_row,
    type_info,
    write_index_rows,
)
from ._search import position_key, search_sql, seek_sql

__all__ = ["DEFAULT_INDEXED", "SQLBackend"]

#: How often a delete starts over when a group gained the resource as a member between
#: the delete's first look at its groups and its lock on the resource (PostgreSQL).
_DELETE_ATTEMPTS: Final = 8

#: LIMIT and OFFSET are 64-bit signed integers in SQL.
_SQL_INT_MAX: Final = 2**63 - 1


#: Members a group is created with from which its create refreshes planner statistics.
_ANALYZE_AFTER: Final = 1000


class _StartOver(Exception):
    """Roll the transaction back and run it again (see :meth:`SQLBackend.delete`)."""


def _tenant_key(tenant: str | None) -> str:
    # Tenant None (single-tenant) is stored as ''; an empty tenant name is refused
    # (check_tenant), so '' cannot collide with a named tenant.
    check_tenant(tenant)
    return "" if tenant is None else tenant


def _group_entries(pairs: str | None) -> list[dict[str, Any]]:
    """:meth:`SQLBackend.groups_of`'s list for one resource from the ``[id, display]``
    pairs of :meth:`Dialect.groups_array_sql`: by group id (code point order, as Python
    sorts strings), ``display`` where the group has one."""
    found: list[dict[str, Any]] = []
    if pairs and pairs != "[]":
        for gid, name in sorted(json.loads(pairs)):
            entry: dict[str, Any] = {"value": gid}
            if name is not None:
                entry["display"] = name
            found.append(entry)
    return found


class SQLBackend:
    """A :class:`~scim2_core.backends.Backend` over SQLite or PostgreSQL.

    ``url`` is ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``,
    ``sqlite:///:memory:`` (one private in-memory database, for tests) or
    ``postgresql://user@host:port/dbname`` (needs the ``postgres`` extra, psycopg 3).

    Options:

    * ``synchronous`` (SQLite): ``"FULL"`` (default; every acknowledged write survives a
      process kill and a power loss) or ``"NORMAL"`` (survives a process kill only;
      faster commits);
    * ``busy_timeout``: seconds to wait for a lock (SQLite) or a connection (PostgreSQL);
    * ``schema`` (PostgreSQL): the schema to create and use instead of the default
      ``search_path``;
    * ``indexed``: attribute paths given an equality index (default: userName, externalId,
      displayName, emails.value where the type has them, plus every unique attribute).

    Thread-safe: each thread uses its own connection (``:memory:`` uses one connection
    behind a lock). Several processes may share one SQLite file.
    """

    never_blocks = False
    #: :meth:`search` honours :attr:`SearchQuery.seek` (RFC 9865 cursors as positions).
    keyset_paging = True

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 30.0,
        schema: str | None = None,
        indexed: Sequence[str] = DEFAULT_INDEXED,
    ) -> None:
        self.url = url
        if isinstance(indexed, str):
            raise ConfigurationError(f"indexed takes a list of attribute paths, got {indexed!r}")
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)):
            raise ConfigurationError(
                f"busy_timeout must be a number of seconds, got {busy_timeout!r}"
            )
        if busy_timeout < 0:
            raise ConfigurationError(f"busy_timeout must not be negative, got {busy_timeout!r}")
        self._dialect: Dialect = open_dialect(
            url, synchronous=synchronous, busy_timeout=busy_timeout, schema=schema
        )
        self._indexed_names = tuple(indexed)
        #: The default set names what a type *may* have; a set the caller chose must name
        #: what some type has (checked by :meth:`bind`).
        self._indexed_chosen = indexed is not DEFAULT_INDEXED
        self._types: dict[str, TypeInfo] = {}
        self._translator = Translator(self._dialect)
        self._bind_lock = threading.Lock()
        #: Set by :meth:`enable_outbox`: every write then stores its events.
        self._outbox_on = False
        #: The statements of :meth:`_read`, by (members, groups).
        self._reads: dict[tuple[bool, bool], str] = {}

    def change_token(self) -> Hashable | None:
        """The optional ``change_token`` of :class:`~scim2_core.backends.Backend`: on SQLite,
        the file's WAL-index header (or the thread's connection, its ``data_version`` and
        ``total_changes``), equal only if nothing was written since, by this process or
        another; None on PostgreSQL, where learning that would be a round trip of its own."""
        dialect = self._dialect
        if isinstance(dialect, SQLiteDialect):
            return dialect.change_token()
        return None

    @property
    def reads_never_block(self) -> bool:
        """True on a SQLite file: in WAL mode "readers do not block writers and a writer
        does not block readers" (https://www.sqlite.org/wal.html), each thread reads on a
        connection of its own with no lock of this backend's, so a read waits only on the
        local disk (see :class:`~scim2_core.backends.Backend`). False on PostgreSQL (a read
        is a network round trip) and on an in-memory database (one connection, shared
        under a lock with the writers)."""
        return self._dialect.name == "sqlite" and not self._dialect.shared

    # --- lifecycle --------------------------------------------------------------------
    def close(self) -> None:
        """Close every connection this backend opened."""
        self._dialect.close()

    def __enter__(self) -> SQLBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._dialect.name

    def bind(self, resource_types: Sequence[ResourceType]) -> None:
        """Create or migrate the schema, learn the types; see the protocol."""
        with self._bind_lock:
            infos: dict[str, TypeInfo] = {}
            for rt in resource_types:
                infos[rt.name] = type_info(rt, self._indexed_names)
            if self._indexed_chosen:
                check_indexed(self._indexed_names, resource_types)
            migrate(self._dialect)
            self._types.update(infos)
            reindex(self._dialect, self._types)
            self._dialect.analyze()

    def enable_outbox(self) -> EventStore:
        """Store a :class:`~scim2_core.events.ChangeEvent` for every change from now on,
        in the same transaction as the change (table ``scim_outbox``), and return the
        store the delivery worker reads."""
        self._outbox_on = True
        return SQLEventStore(self._dialect)

    def enable_audit(self) -> AuditStore:
        """The audit log's store: table ``scim_audit`` beside the data."""
        return SQLAuditStore(self._dialect)

    def _record(
        self,
        conn: Connection,
        tenant: str | None,
        rt: ResourceType,
        kind: EventKind | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        left: Sequence[str] = (),
        some_members: bool = False,
    ) -> None:
        """Write the events of a write, last in its transaction: the resource's own, and
        one per member touched (those it added or removed whose type derives ``groups``)
        and per group it ``left`` (a delete), with their new versions. ``some_members``:
        see :func:`~scim2_core.backends.change_events`."""
        d = self._dialect
        t = _tenant_key(tenant)
        rid = (after or before or {}).get("id")
        changed = listed_members(before or {}) ^ listed_members(after or {})
        changed.discard(str(rid))
        touched: list[tuple[str, str, str | None]] = []
        if changed:
            kinds = sorted(name for name, info in self._types.items() if info.has_groups)
            touched = versions_of(d, conn, t, changed, kinds)
        if left:
            touched += versions_of(d, conn, t, left, None)
        # No copies: the events are encoded at once and let go (see write_change).
        own = change_events(tenant, rt, kind, before, after, some_members=some_members, copy=False)
        write_change(d, conn, own, touched)

    def _info(self, rt: ResourceType) -> TypeInfo:
        info = self._types.get(rt.name)
        if info is None or info.rt is not rt:
            info = type_info(rt, self._indexed_names)
            self._types[rt.name] = info
        return info

    def schema_version(self) -> int:
        """The schema version stored in the database (0 if it has no schema yet)."""
        return schema_version(self._dialect)

    def _checker(
        self, conn: Connection, tenant: str, members: Collection[str]
    ) -> partial[None] | None:
        """The check of new members a write passes to :func:`write_index_rows` (None when
        the caller named no ``members``: nothing to check)."""
        if not members:
            return None
        return partial(check_new_members, self._dialect, conn, tenant, members)

    def _touch_members(
        self,
        conn: Connection,
        tenant: str,
        group_id: str,
        ids: Collection[str],
        when: str,
        *,
        every: bool = False,
    ) -> None:
        touch_members(
            self._dialect,
            conn,
            self._types,
            self._store,
            tenant,
            group_id,
            ids,
            when,
            every=every,
        )

    # --- Backend ----------------------------------------------------------------------
    def create(
        self,
        tenant: str | None,
        rt: ResourceType,
        resource: dict[str, Any],
        *,
        members: Collection[str] = (),
    ) -> dict[str, Any]:
        info = self._info(rt)
        t = _tenant_key(tenant)
        rid, text, doc, fdoc, entries = self._new_row(info, resource)
        d = self._dialect
        wanted = frozenset(members)

        def attempt() -> dict[str, Any]:
            with self._dialect.transaction(write=True) as conn:
                cur = conn.execute(
                    d.sql(
                        "INSERT INTO scim_resources "
                        "(tenant, id, type, version, created, display, doc, fdoc) "
                        f"VALUES (?, ?, ?, ?, ?, ?, ?, {d.json_param}) ON CONFLICT DO NOTHING"
                    ),
                    resource_row(t, rid, rt, doc, text, fdoc),
                )
                if cur.rowcount != 1:
                    raise UniquenessError(f"A resource with id {rid!r} already exists.")
                write_index_rows(d, conn, info, t, rid, None, (doc, fdoc))
                if entries:
                    ids = [m["value"] for m in entries]
                    if wanted and wanted.issuperset(ids):  # what the engine sends
                        insert_checked_members(d, conn, info, t, rid, entries, wanted)
                    else:
                        check = self._checker(conn, t, wanted)
                        if check is not None:
                            check(sorted(ids))
                        insert_members(d, conn, info, t, rid, entries, 1)
                    self._touch_members(conn, t, rid, ids, last_modified(doc), every=True)
                add_count(d, conn, t, rt.name, 1)
                full = with_members(doc, entries)
                if self._outbox_on:
                    self._record(conn, tenant, rt, "created", None, full)
            return full

        stored = self._dialect.retrying(attempt)
        if len(entries) >= _ANALYZE_AFTER:
            # Until its statistics know of a large group, PostgreSQL's planner may probe
            # one member by scanning the group's rows.
            self._dialect.analyze(tables=("scim_members",))
        return stored

    def create_many(
        self, tenant: str | None, rt: ResourceType, resources: Iterable[dict[str, Any]]
    ) -> int:
        """Store many new resources in ONE transaction (a bulk import): all or nothing.

        Not part of the Backend protocol; the engine never calls it. Each resource must be
        complete as for :meth:`create`. Raises :class:`~scim2_core.UniquenessError` (and
        stores nothing) if an id or a unique value is taken, also within the batch.
        With the outbox on, a ``created`` event per resource is stored in the same
        transaction. Returns the number stored.
        """
        stored = load_many(
            self._dialect,
            self._info(rt),
            tenant,
            _tenant_key(tenant),
            resources,
            self._new_row,
            outbox=self._outbox_on,
        )
        self._dialect.analyze(vacuum=True)
        return stored

    def load_new(
        self, tenant: str | None, rt: ResourceType, resources: Sequence[tuple[int, dict[str, Any]]]
    ) -> tuple[int, dict[int, ScimError]]:
        """Store the new resources ``(n, resource)`` that can be stored, in one transaction,
        and say why the others cannot (``scim2-core import``).

        Not part of the Backend protocol. Each resource is complete as for :meth:`create`
        and lists no members (a group with members goes through :meth:`create`, which
        checks them). Returns the number stored and a
        :class:`~scim2_core.UniquenessError` per ``n`` refused (an id or a unique value
        taken, also by an earlier resource of the batch); nothing else is refused.
        """
        info = self._info(rt)
        return load_new(self._dialect, info, _tenant_key(tenant), resources, self._new_row)

    def get(self, tenant: str | None, rt: ResourceType, id: str) -> dict[str, Any] | None:
        read = self._read(tenant, rt, id, members=True, groups=False)
        return None if read is None else read[0]

    def get_without_members(
        self, tenant: str | None, rt: ResourceType, id: str
    ) -> dict[str, Any] | None:
        """:meth:`get` without ``members``: reads no member row (see the protocol)."""
        read = self._read(tenant, rt, id, members=False, groups=False)
        return None if read is None else read[0]

    def get_with_groups(
        self, tenant: str | None, rt: ResourceType, id: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """:meth:`get` and what :meth:`groups_of` gives for that one resource (its groups,
        by group id), read in ONE statement: one snapshot, one round trip. ``None`` when
        there is no such resource. What a GET of a User by id renders (RFC 7643 §4.1.2:
        ``groups`` is derived from the groups' ``members``)."""
        return self._read(tenant, rt, id, members=True, groups=True)

    def _read(
        self, tenant: str | None, rt: ResourceType, id: str, *, members: bool, groups: bool
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """One resource by id, with its ``members`` (when ``members`` and it lists them)
        and its groups (when ``groups``), all in ONE statement: a single statement is its
        own consistent snapshot, so no transaction is begun (the members and the groups
        are scalar subqueries of the row's SELECT)."""
        d = self._dialect
        t = _tenant_key(tenant)
        listed = members and self._info(rt).has_members
        key = (listed, groups)
        sql = self._reads.get(key)
        if sql is None:
            columns = f"r.doc, {META_COLUMNS}"
            if listed:
                columns += f", ({d.members_array_sql()})"
            if groups:
                columns += f", ({d.groups_array_sql()})"
            sql = self._reads[key] = d.sql(
                f"SELECT {columns} FROM scim_resources r{VERSIONS_JOIN} "
                "WHERE r.tenant = ? AND r.id = ? AND r.type = ?"
            )
        params: list[Any] = [t, id] * (1 + listed + groups)
        params.append(rt.name)
        row = d.fetch_one(sql, params)
        if row is None:
            return None
        doc = merge_meta(loads(row[0]), row[1], row[2])
        if listed:
            doc = with_members(doc, json.loads(row[3]) if row[3] else [])
        return doc, _group_entries(row[-1] if groups else None)

    def search(self, tenant: str | None, rt: ResourceType, query: SearchQuery) -> Page:
        info = self._info(rt)
        d = self._dialect
        if query.seek is not None:
            return self._seek(tenant, info, query, query.seek)
        base, base_params, order, order_params, count_sql, count_params = search_sql(
            d, self._translator, info, _tenant_key(tenant), query
        )
        page = d.sql(f"SELECT r.doc, {META_COLUMNS} {base} ORDER BY {order} LIMIT ? OFFSET ?")
        offset = max(0, query.offset)
        short = self._short_lookup(info, query, base, order, [*base_params, *order_params])
        if short is not None:
            return short
        with self._dialect.transaction(write=False) as conn:
            rows: list[Any] = []
            total: int | None = None
            if offset == 0 and 0 < query.count < _SQL_INT_MAX:
                # The first page first: one shorter than ``count`` is the total (a
                # ``userName eq`` lookup is one statement, not a count and a page). Not
                # past the first page: an offset past the end would scan to it.
                rows = conn.execute(page, [*base_params, *order_params, query.count, 0]).fetchall()
                if len(rows) < query.count:
                    total = len(rows)
            if total is None:
                total = int(conn.execute(d.sql(count_sql), count_params).fetchone()[0])
                if not rows and query.count > 0 and offset < total:
                    # Both numbers fit a 64-bit LIMIT/OFFSET: an offset past the end is
                    # an empty page (above), a count past it the rest of the results.
                    limit = min(query.count, total - offset)
                    rows = conn.execute(
                        page, [*base_params, *order_params, limit, offset]
                    ).fetchall()
            resources = [merge_meta(json.loads(r[0]), r[1], r[2]) for r in rows]
            if resources and info.has_members and not query.without_members:
                resources = attach_members(d, conn, _tenant_key(tenant), resources)
        return Page(total=total, resources=resources)

    def _short_lookup(
        self, info: TypeInfo, query: SearchQuery, base: str, order: str, params: list[Any]
    ) -> Page | None:
        """A filtered first page read in ONE statement and no transaction (a ``userName eq``
        lookup, what every IdP sends before a create), when it is shorter than ``count``: then
        it is its own total, from its own snapshot, and each resource's derived ``groups``
        come with it (a scalar subquery per row: :attr:`Page.groups`). ``None`` when that
        cannot be the answer (a full page needs its count; members need a second statement
        in the same snapshot): the caller reads in a transaction instead."""
        if query.filter is None or query.offset > 0 or not 0 < query.count < _SQL_INT_MAX:
            return None
        if info.has_members and not query.without_members:
            return None
        d = self._dialect
        groups = f", ({d.groups_array_sql('r.tenant', 'r.id')})" if info.has_groups else ""
        page = d.sql(
            f"SELECT r.doc, {META_COLUMNS}{groups} {base} ORDER BY {order} LIMIT ? OFFSET ?"
        )
        rows = d.fetch_all(page, [*params, query.count, 0])
        if len(rows) >= query.count:
            return None
        resources = [merge_meta(json.loads(r[0]), r[1], r[2]) for r in rows]
        if not info.has_groups:
            return Page(total=len(resources), resources=resources)
        found = {res["id"]: _group_entries(r[3]) for res, r in zip(resources, rows, strict=True)}
        return Page(total=len(resources), resources=resources, groups=found)

    def _seek(self, tenant: str | None, info: TypeInfo, query: SearchQuery, seek: Seek) -> Page:
        """:meth:`search` with keyset paging (see :func:`._search.seek_sql`)."""
        d = self._dialect
        t = _tenant_key(tenant)
        count_sql, count_params = search_sql(d, self._translator, info, t, query)[4:]
        with d.transaction(write=False) as conn:
            total = int(conn.execute(d.sql(count_sql), count_params).fetchone()[0])
            if query.count <= 0:
                return Page(total=total)
            sql, params = seek_sql(d, self._translator, info, t, query, seek)
            rows = conn.execute(d.sql(sql), params).fetchall()
            more = len(rows) > query.count
            rows = rows[: query.count]
            if seek.backward:
                rows.reverse()
            resources = [merge_meta(json.loads(r[0]), r[3], r[4]) for r in rows]
            if info.has_members and not query.without_members:
                resources = attach_members(d, conn, t, resources)
        positions = [Position(position_key(r[2]), r[1]) for r in (rows[:1] + rows[-1:])]
        return Page(
            total=total,
            resources=resources,
            first=positions[0] if positions else None,
            last=positions[-1] if positions else None,
            more=more,
        )

    def _new_row(
        self, info: TypeInfo, resource: Mapping[str, Any]
    ) -> tuple[str, str, dict[str, Any], dict[str, Any], list[Any]]:
        """``(id, JSON text, own copy, folded copy, members)`` of a new resource to insert:
        the document without its members, and the members for their rows (their text is
        made, and checked, by :meth:`Dialect.member_pairs`)."""
        rest, entries = split_members(info, dict(resource))
        text = dumps(rest)
        doc = loads(text)
        self._dialect.check_storable(text, doc)  # our own copy, as it will be read back
        rid = doc.get("id")
        if not isinstance(rid, str) or not rid:
            raise ValueError("the engine must assign a string id before create()")
        return rid, text, doc, fold_document(info.rt, doc), copy_json(entries)

    def _load_locked(
        self, conn: Connection, tenant: str, rt: ResourceType, id: str, lock: str
    ) -> tuple[dict[str, Any], dict[str, Any], bool]:
        """The stored document, its folded form (read, not recomputed: folding a
        10k-member group costs more than parsing it) and whether a touch gave it its
        version (a ``scim_versions`` row), its row locked with ``lock`` (the dialect's
        ``for_update`` or ``for_delete``). NotFoundError if absent."""
        d = self._dialect
        where = "WHERE r.tenant = ? AND r.id = ? AND r.type = ?"
        if lock:
            # Locked first, read after (PostgreSQL): a touch holding the lock writes only
            # the row's scim_versions row, which a statement that waited for the lock
            # would read as its own snapshot had it, before the touch's commit.
            locked = conn.execute(
                d.sql(f"SELECT r.id FROM scim_resources r {where}" + lock), (tenant, id, rt.name)
            ).fetchone()
            if locked is None:
                raise NotFoundError(f"{rt.name} {id!r} not found.")
        row = conn.execute(
            d.sql(
                f"SELECT r.doc, r.fdoc, {META_COLUMNS} FROM scim_resources r{VERSIONS_JOIN} {where}"
            ),
            (tenant, id, rt.name),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"{rt.name} {id!r} not found.")
        fdoc = json.loads(row[1]) if isinstance(row[1], str) else row[1]
        # meta.version and meta.lastModified are caseExact: folded as they are.
        doc = merge_meta(loads(row[0]), row[2], row[3])
        return doc, merge_meta(fdoc, row[2], row[3]), row[3] is not None

    def _store(
        self,
        conn: Connection,
        info: TypeInfo,
        tenant: str,
        rid: str,
        old: dict[str, Any],
        new: dict[str, Any],
        members: Collection[str] = (),
        old_fdoc: Mapping[str, Any] | None = None,
        member_lists: tuple[list[Any], list[Any]] | None = None,
        partial: bool = False,
        *,
        touched: bool = True,
    ) -> dict[str, Any]:
        """Write ``new`` over ``old`` (documents without ``members``): the row, its index
        rows and, with ``member_lists`` (``(old, new)`` from :func:`split_members`), the
        member rows that differ (``partial``: see :func:`write_members`). ``touched``:
        ``old`` may have a ``scim_versions`` row, which goes (``new`` holds its meta).
        Returns ``new`` as stored (without members)."""
        d = self._dialect
        text = dumps(new)
        doc = loads(text)
        self._dialect.check_storable(text, doc)  # members: by the statements writing them
        fdoc = fold_document(info.rt, doc)
        if old_fdoc is None:
            old_fdoc = fold_document(info.rt, old)
        meta = doc.get("meta") or {}
        conn.execute(
            d.sql(
                "UPDATE scim_resources SET version = ?, modified = NULL, display = ?, "
                f"doc = ?, fdoc = {d.json_param} WHERE tenant = ? AND id = ?"
            ),
            (str(meta.get("version") or ""), display(doc), text, dumps(fdoc), tenant, rid),
        )
        if touched:
            conn.execute(
                d.sql("DELETE FROM scim_versions WHERE tenant = ? AND id = ?"), (tenant, rid)
            )
        write_index_rows(d, conn, info, tenant, rid, (old, old_fdoc), (doc, fdoc))
        if member_lists is not None:
            check = self._checker(conn, tenant, members)
            changed = write_members(
                d, conn, info, tenant, rid, *member_lists, check, partial=partial, members=members
            )
            if changed:
                self._touch_members(conn, tenant, rid, changed, last_modified(doc))
        return doc

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
        info = self._info(rt)
        t = _tenant_key(tenant)
        wanted = frozenset(members)
        for_update = self._dialect.for_update

        def attempt() -> dict[str, Any]:
            with self._dialect.transaction(write=True) as conn:
                current, current_fdoc, touched = self._load_locked(conn, t, rt, id, for_update)
                check_version(current, if_match)
                if not info.has_members:
                    new = change(copy_json(current))
                    if new is None:
                        return current
                    stored = self._store(
                        conn, info, t, id, current, new, wanted, current_fdoc, touched=touched
                    )
                    if self._outbox_on:
                        self._record(conn, tenant, rt, None, current, stored)
                    return stored
                text = read_members_text(self._dialect, conn, t, id)
                old_members = json.loads(text)
                full = with_members(current, old_members)
                # The change's own copy; its members parsed again (faster than copied).
                new = change(with_members(copy_json(current), json.loads(text)))
                if new is None:
                    return full
                rest, new_members = split_members(info, new)
                stored = self._store(
                    conn,
                    info,
                    t,
                    id,
                    current,
                    rest,
                    wanted,
                    current_fdoc,
                    (old_members, new_members),
                    touched=touched,
                )
                result = with_members(stored, new_members)
                if self._outbox_on:
                    self._record(conn, tenant, rt, None, full, result)
                return result

        return self._dialect.retrying(attempt)

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
        """:meth:`update` seeing only the members named in ``values``; see the protocol.

        Reads the group's row and one membership row per value, writes one row per member
        added or removed: the cost does not depend on the group's size."""
        info = self._info(rt)
        if not info.has_members:
            return self.update(tenant, rt, id, change, if_match=if_match, members=members)
        t = _tenant_key(tenant)
        wanted = frozenset(members)
        d = self._dialect

        def attempt() -> dict[str, Any]:
            with d.transaction(write=True) as conn:
                current, current_fdoc, touched = self._load_locked(conn, t, rt, id, d.for_update)
                check_version(current, if_match)
                old_members = read_members(d, conn, t, id, values)
                new = change(copy_json(with_members(current, old_members)))
                if new is None:
                    return current
                rest, new_members = split_members(info, new)
                stored = self._store(
                    conn,
                    info,
                    t,
                    id,
                    current,
                    rest,
                    wanted,
                    current_fdoc,
                    (old_members, new_members),
                    partial=True,
                    touched=touched,
                )
                if self._outbox_on:  # bounded: the members named, not the group's
                    before = with_members(current, old_members)
                    after = with_members(stored, new_members)
                    self._record(conn, tenant, rt, None, before, after, some_members=True)
                return stored

        return d.retrying(attempt)

    def delete(
        self,
        tenant: str | None,
        rt: ResourceType,
        id: str,
        *,
        if_match: Collection[str] | None = None,
    ) -> dict[str, Any]:
        info = self._info(rt)
        t = _tenant_key(tenant)
        d = self._dialect

        def attempt(last: bool) -> dict[str, Any]:
            with self._dialect.transaction(write=True) as conn:
                # Lock order, as in a group write adding a member: the groups, then the
                # member. (PostgreSQL; SQLite admits one writer at a time anyway.)
                gids = group_ids(d, conn, t, id)
                if d.for_update and gids:
                    lock_rows(d, conn, t, gids)
                current, current_fdoc, touched = self._load_locked(conn, t, rt, id, d.for_delete)
                check_version(current, if_match)
                if d.for_update:
                    # A group that gained this member (and committed) between the first
                    # look and the lock: start over, so that it is locked first too.
                    latest = group_ids(d, conn, t, id)
                    extra = sorted(set(latest) - set(gids))
                    if extra and not last:
                        raise _StartOver
                    if extra:
                        lock_rows(d, conn, t, extra)
                    gids = latest
                conn.execute(
                    d.sql("DELETE FROM scim_resources WHERE tenant = ? AND id = ?"), (t, id)
                )
                if touched:
                    conn.execute(
                        d.sql("DELETE FROM scim_versions WHERE tenant = ? AND id = ?"), (t, id)
                    )
                write_index_rows(d, conn, info, t, id, (current, current_fdoc), None)
                when = now()
                entries: list[Any] = []
                if info.has_members:
                    # Its members leave it (after it is locked: groups, then members by
                    # id), all in one statement per chunk, then their rows in one.
                    entries = read_members(d, conn, t, id)
                    if entries:
                        ids = [m["value"] for m in entries]
                        self._touch_members(conn, t, id, ids, when, every=True)
                        delete_all_members(d, conn, t, id)
                leave_groups(d, conn, self._types, self._store, t, id, gids, when)
                add_count(d, conn, t, rt.name, -1)
                full = with_members(current, entries)
                if self._outbox_on:
                    self._record(conn, tenant, rt, "deleted", full, None, gids)
            return full

        for n in range(1, _DELETE_ATTEMPTS + 1):
            try:
                return self._dialect.retrying(partial(attempt, n == _DELETE_ATTEMPTS))
            except _StartOver:
                continue
        raise AssertionError("unreachable")  # pragma: no cover

    def groups_of(
        self, tenant: str | None, member_ids: Iterable[str]
    ) -> Mapping[str, list[dict[str, Any]]]:
        t = _tenant_key(tenant)
        ids = list(dict.fromkeys(member_ids))
        out: dict[str, list[dict[str, Any]]] = {}
        if not ids:
            return out
        d = self._dialect
        parts = list(chunks(ids))
        # One chunk (a GET, a page) is one statement: no transaction around it.
        with d.reading() if len(parts) == 1 else d.transaction(write=False) as conn:
            for chunk, marks in parts:
                rows = conn.execute(
                    d.sql(
                        "SELECT m.member_id, r.id, r.display FROM scim_members m "
                        "JOIN scim_resources r ON r.tenant = m.tenant AND r.id = m.group_id "
                        f"WHERE m.tenant = ? AND m.member_id IN ({marks}) "
                        f"ORDER BY m.member_id, r.id{d.collate}"
                    ),
                    [t, *chunk],
                ).fetchall()
                for member_id, gid, display in rows:
                    entry: dict[str, Any] = {"value": gid}
                    if display is not None:
                        entry["display"] = display
                    out.setdefault(member_id, []).append(entry)
        return out

    def existing(self, tenant: str | None, ids: Iterable[str]) -> Mapping[str, str]:
        t = _tenant_key(tenant)
        wanted = list(dict.fromkeys(ids))  # deduplicated at C speed (10k members)
        if set(map(type, wanted)) - {str}:
            wanted = [i for i in wanted if isinstance(i, str)]
        out: dict[str, str] = {}
        if not wanted:
            return out
        d = self._dialect
        where, param = d.id_set(wanted)  # one statement, as the backend's own check
        with d.reading() as conn:
            if len(wanted) > 1:
                # Usually every one exists and all are of one type (a group of users):
                # counted per type, no row per member is sent back.
                kinds = conn.execute(
                    d.sql(
                        f"SELECT type, count(*) FROM scim_resources WHERE tenant = ? "
                        f"AND id {where} GROUP BY type"
                    ),
                    [t, param],
                ).fetchall()
                if len(kinds) == 1 and kinds[0][1] == len(wanted):
                    return dict.fromkeys(wanted, str(kinds[0][0]))
            rows = conn.execute(
                d.sql(f"SELECT id, type FROM scim_resources WHERE tenant = ? AND id {where}"),
                [t, param],
            ).fetchall()
        out.update(dict(rows))
        return out
