"""``SQLAlchemyBackend``: SCIM Users and Groups in the app's own SQLAlchemy models.

The mapping (:mod:`scim2_core.mapping`) says which model and column hold which attribute.
The app's tables are not changed: scim2-core's bookkeeping lives in tables of its own
(:mod:`._backend_tables`), created on the app's database, joined by primary key. The database's
global settings (SQLite's journal mode and the like) are left as the app set them.

How the protocol's promises are kept:

* **Filters, sorting and paging run in the database**, as Core expressions: the expression
  tree of :func:`scim2_core.mapping.translate` is compiled by :mod:`._backend_expressions`, with
  ``EXISTS`` subqueries on the value index and on the association table, and
  ``ORDER BY``/``LIMIT``. Nothing is filtered in Python.
* **Uniqueness is the database's**: the normalised values of ``uniqueness: server``
  attributes go into ``<prefix>unique`` under a unique constraint, in the write's
  transaction. The app's own unique constraints answer 409 too.
* **If-Match is a compare-and-set**: every write is one transaction of the backend's own
  connection. On PostgreSQL it locks the bookkeeping row and the app's row
  (``SELECT ... FOR UPDATE``); on SQLite its first statement is a write to the backend's
  own table, which takes the database's write lock before anything is read (and writes of
  one process are serialised by a lock as well).
* **Members are rows** of the relationship's association table: adding a member inserts
  one row, removing one deletes one. Deleting a user deletes its memberships in the same
  transaction. ``User.groups`` is read from the association table.
* **The app and SCIM share the data**: rows the app inserts get an id and a version the
  next time a SCIM search or member read runs over their model; a read that finds the
  mapped columns changed by the app moves the version (and ``lastModified``) first.
* **The app's transactions are its own**: each call uses a connection of its own from the
  app's engine and commits only that; no session of the app is used or committed. Inside
  :meth:`SQLAlchemyBackend.request_scope` (which the engine enters around each request),
  the calls of one request share that connection. On PostgreSQL reads run without a
  transaction (no ``BEGIN``/``COMMIT`` round trips; a read that adopts rows or moves a
  version opens one for those writes); each write is a transaction of its own.

One tenant only (the app's tables have no tenant column): any other tenant gets 501.

The class is assembled from one mixin per concern, each in a module of its own:
connections, transactions and the request scope (:mod:`._backend_connections`), writes of
rows (:mod:`._backend_writes`), adoption of the app's own writes (:mod:`._backend_adopt`),
reads of rows and pages (:mod:`._backend_rows`); the state they share is declared in
:mod:`._backend_state`. This module holds the protocol's methods.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Final

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.exc import IntegrityError

from scim2_core import (
    ConfigurationError,
    NotImplementedScimError,
    UniquenessError,
)
from scim2_core.backends import (
    Change,
    Page,
    SearchQuery,
    check_tenant,
    check_version,
)
from scim2_core.events import AuditStore, EventStore
from scim2_core.mapping import ResourceMapping, bind_mapping, sort_target, translate
from scim2_core.schema import AttrRef, ResourceType, now, version_number

from ._backend_events import Events
from ._backend_expressions import Compiler
from ._backend_kept import KeptReads, may_keep
from ._backend_reads import GroupsOfPlan, Prepared, ReadPlan, group_entries, largest_keys
from ._backend_rows import _MAX_WINDOW, Rows
from ._backend_state import _chunks, _hash, copy_json
from ._backend_tables import LAYOUT_VERSION, MEMBER_INDEX, REPLACED_INDEXES, make_tables
from ._backend_writes import _PREPARED_IDS, _displays, _member_ids, _split, _strip_meta
from ._models import ModelType, Unique, find_model, find_relation

__all__ = ["SQLAlchemyBackend"]


#: The bookkeeping columns an update writes.
_SAVED: Final = ("version", "last_modified", "created", "extras", "content_hash")


def _engine_of(bind: Any) -> sa.Engine:
    if isinstance(bind, sa.Engine):
        return bind
    kw = getattr(bind, "kw", None)  # a sessionmaker
    if isinstance(kw, dict) and isinstance(kw.get("bind"), sa.Engine):
        engine: sa.Engine = kw["bind"]
        return engine
    raise ConfigurationError(
        "SQLAlchemyBackend needs the app's sqlalchemy Engine, or a sessionmaker bound to one."
    )


def _members_first(sql: str, table: str, index: str) -> str:
    """SQLite: the read of a group's members from its association rows first, each
    member's bookkeeping row probed by key (``CROSS JOIN`` keeps that order, ``INDEXED
    BY`` the probe, on :data:`~._backend_tables.MEMBER_INDEX`, which covers the read):
    the planner otherwise prefers walking the covering page index over every bookkeeping
    row of the member type (the whole directory, for a group of ten) and probing the
    association table. ``sql`` unchanged if it is not the expected join."""
    plain = f" JOIN {table} ON "
    if sql.count(plain) != 1:
        return sql  # pragma: no cover - a name SQLAlchemy quotes
    return sql.replace(plain, f" CROSS JOIN {table} INDEXED BY {index} ON ")


class SQLAlchemyBackend(Rows):
    """Store SCIM resources in the app's own SQLAlchemy models; see the module docstring.

    ``bind`` is the app's :class:`sqlalchemy.Engine` (or a ``sessionmaker`` bound to one;
    with Flask-SQLAlchemy, ``db.engine`` inside an app context). ``mappings`` say where each
    attribute lives; each mapping's ``model`` is the mapped class itself (plain declarative
    or Flask-SQLAlchemy's ``db.Model``), or names one of ``models`` by class name.
    Construction checks every model, column and relationship and raises
    :class:`~scim2_core.ConfigurationError` naming what does not exist; binding (the
    Engine's constructor) checks every SCIM attribute and creates scim2-core's tables
    (named ``table_prefix...``) if missing.

    ``own_read_connections`` (default True): outside a request scope's connection, the
    reads that write nothing (a ``GET`` by id, a ``userName eq``) run on a connection the
    backend keeps per thread, from a pool of its own made from the app's engine
    (:meth:`sqlalchemy.pool.Pool.recreate`: same database, same pool events), instead of
    checking one out of the app's pool for each: one more connection per thread that
    reads, at most the app's ``pool_size`` of them. Never for an in-memory SQLite
    database or a ``StaticPool``/``SingletonThreadPool`` engine (a new pool would not
    reach the same database). False: every read uses the app's pool.
    """

    never_blocks = False

    def __init__(
        self,
        bind: Any,
        mappings: Sequence[ResourceMapping],
        *,
        models: Iterable[Any] = (),
        table_prefix: str = "scim2_core_",
        own_read_connections: bool = True,
    ) -> None:
        self.engine = _engine_of(bind)
        self._tables = make_tables(table_prefix)
        self._prefix = table_prefix
        self._compiler = Compiler(self._tables, self.engine.dialect.name)
        self._sqlite = self.engine.dialect.name == "sqlite"
        known = list(models)
        sqlalchemy.orm.configure_mappers()
        self._types: dict[str, ModelType] = {}
        self._plans: dict[str, ReadPlan] = {}
        #: Per member type, the groups-of plan of each group type holding it.
        self._groups_plans: dict[str, list[GroupsOfPlan]] = {}
        #: Per group type (with an integer key), the read of one group's members
        #: (``_members_of``'s rows), compiled once and run on the cursor.
        self._member_reads: dict[str, Prepared] = {}
        self._member_id_reads: dict[str, Prepared] = {}
        #: Per group type (with an integer key), its read by id with what its members'
        #: read needs to know first (``_prepare_member_reads``).
        self._group_reads: dict[str, Prepared] = {}
        self._statements: dict[tuple[Any, ...], Prepared] = {}
        for m in mappings:
            if m.resource_type in self._types:
                raise ConfigurationError(f"Two SCIM mappings for {m.resource_type!r}.")
            model = find_model(m.model, known)
            if model is None:
                raise ConfigurationError(
                    f"SCIM mapping of {m.resource_type}: no model {m.model!r} among the "
                    f"models given ({', '.join(sorted(k.__name__ for k in known))})."
                )
            self._types[m.resource_type] = ModelType(m, model)
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
            t.relation = find_relation(t, members.relation, members.member_type, member)
        #: SQLite serialises writers per file; writes of this process also take this lock.
        self._write_lock = threading.RLock()
        self._listening = False
        #: The outbox and audit log (:mod:`._backend_events`), once enabled.
        self._events = Events(self.engine, self._tables, self._types, self._write_lock)
        #: The request scope (:meth:`request_scope`) the current thread is in, if any, and
        #: the read it runs (``reading``).
        self._local = threading.local()
        #: PostgreSQL: reads run without a transaction (no ``BEGIN``/``COMMIT`` round
        #: trips); a read that writes opens one first (:meth:`_wrote`).
        self._reads = (
            self.engine
            if self._sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        #: The read connections of the backend's own, one kept per thread, for the reads
        #: that write nothing (:mod:`._backend_kept`), when asked and when a pool of its
        #: own reaches the app's database.
        self._kept: KeptReads | None = (
            KeptReads(self.engine) if own_read_connections and may_keep(self.engine) else None
        )

    # -- the protocol ----------------------------------------------------------------------

    def bind(self, resource_types: Sequence[ResourceType]) -> None:
        by_name = {rt.name: rt for rt in resource_types}
        for rt in resource_types:
            t = self._types.get(rt.name)
            if t is None:
                raise ConfigurationError(
                    f"SQLAlchemyBackend has no mapping for the resource type {rt.name!r}."
                )
            t.bm = bind_mapping(t.mapping, rt)
            t.check_insertable()
            self._plans[t.name] = ReadPlan(t, self._tables, self._compiler, self.engine.dialect)
            uniques = []
            for urn, attr in rt.iter_attributes():
                if urn is None and attr.name == "id":
                    continue
                for sub in attr.sub_attributes if attr.is_complex else (None,):
                    target = sub or attr
                    if target.uniqueness == "none" or target.is_complex:
                        continue
                    ref = AttrRef(urn, attr, sub)
                    field = t.bm.single(ref)
                    uniques.append(Unique(str(ref), ref, field.field if field else None))
            t.uniques = tuple(uniques)
        for name, t in self._types.items():
            if (
                name in by_name
                and t.mapping.members
                and t.mapping.members.member_type not in by_name
            ):
                raise ConfigurationError(
                    f"SCIM mapping of {name}: the member type "
                    f"{t.mapping.members.member_type!r} is not served by the engine."
                )
        self._groups_plans = {}
        for g in self._types.values():
            if g.relation is not None and g.bm is not None:
                member = self._types[g.relation.member_type]
                self._groups_plans.setdefault(member.name, []).append(
                    GroupsOfPlan(g, member, self._tables, self._compiler, self.engine.dialect)
                )
                if g.int_pk:
                    self._prepare_member_reads(g, member)
        for name, member_plans in self._groups_plans.items():
            self._plans[name].read_groups(member_plans)
        self._migrate()
        if not self._listening:
            self._listening = True
            self._listen()

    def _prepare_member_reads(self, g: ModelType, member: ModelType) -> None:
        """The reads of one group's members (a group type with an integer key), in the
        order of their bookkeeping rows (the order SCIM created or adopted them): with
        the order keys (``_members_of``) or without them (``_member_lists``: the ids
        alone); and the group's read by id that a read of its members follows
        (``_group_reads``), with the member type's largest keys and whether the group has
        members' displays after its columns, so that the members' read is one statement
        where it was three (the adoption check, the members, their displays): one row
        carries them, not each member's."""
        r = self._tables.resource
        rel = g.relation
        assert rel is not None
        plan = self._plans[g.name]
        d = self._tables.display
        self._group_reads[g.name] = Prepared(
            plan.by_id.add_columns(
                *largest_keys(member, r.alias("kept")),
                sa.exists().where(d.c.resource_id == plan.r.c.id),
            ),
            self.engine.dialect,
        )
        for columns, reads in (
            ((r.c.id, r.c.scim_id), self._member_reads),
            ((r.c.scim_id,), self._member_id_reads),
        ):
            read = Prepared(
                sa.select(*columns)
                .select_from(rel.table.join(r, self._compiler.owner(member, r, rel.member_col)))
                .where(rel.group_col == sa.bindparam("gpk"), r.c.deleted == sa.false())
                .order_by(r.c.id),
                self.engine.dialect,
            )
            if self._sqlite and member.int_pk:
                read.sql = _members_first(read.sql, r.name, f"{self._prefix}{MEMBER_INDEX}")
            reads[g.name] = read

    def enable_outbox(self) -> EventStore:
        """Store a :class:`~scim2_core.ChangeEvent` for every change from now on, in the
        same transaction as the change (table ``scim_outbox`` on the app's database,
        created if missing), and return the store the delivery worker reads."""
        return self._events.enable_outbox()

    def enable_audit(self) -> AuditStore:
        """The audit log's store: table ``scim_audit`` on the app's database."""
        return self._events.enable_audit()

    def close(self) -> None:
        """Stop following the app's ORM writes and close the connections the outbox and
        audit log opened and the read connections the backend kept (the engine stays the
        app's to dispose); reads after this use the app's pool."""
        self._events.close()
        if self._kept is not None:
            kept, self._kept = self._kept, None
            kept.close()
        if self._listening:
            self._listening = False
            for t in self._types.values():
                for name, handler in (
                    ("after_insert", self._on_app_insert),
                    ("after_update", self._on_app_update),
                    ("after_delete", self._on_app_delete),
                ):
                    sa.event.remove(t.model, name, handler)

    def _migrate(self) -> None:
        """Create scim2-core's tables on the app's database (only those; idempotent)."""
        tb = self._tables
        with self._write_lock, self.engine.begin() as conn:
            tb.metadata.create_all(conn, checkfirst=True)
            for index in tb.resource.indexes:  # indexes added since the table was made
                index.create(conn, checkfirst=True)
            present = {i["name"] for i in sa.inspect(conn).get_indexes(tb.resource.name)}
            for name in REPLACED_INDEXES:
                if f"{self._prefix}{name}" in present:
                    sa.Index(f"{self._prefix}{name}", tb.resource.c.id).drop(conn)
            version = conn.execute(sa.select(tb.schema.c.version)).scalar()
            if version is None:
                conn.execute(sa.insert(tb.schema).values(version=LAYOUT_VERSION))
            elif version > LAYOUT_VERSION:
                raise ConfigurationError(
                    f"scim2-core's tables on this database have layout {version}, newer than "
                    f"this version of scim2-core knows ({LAYOUT_VERSION})."
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
        tb = self._tables
        with self._write() as conn:
            values, extras = _split(t, resource)
            member_pks: dict[str, Any] = {}
            if t.relation is not None:
                member_pks = self._member_pks(conn, t, _member_ids(resource))
            unset: dict[str, Any] = {}
            row = self._assign(t, None, values, unset=unset)
            self._check_columns_unique(conn, t, resource, None)
            pk = self._insert(conn, t, row)
            meta = resource.get("meta") or {}
            digest = self._row_hash(conn, t, pk)
            try:
                rid = conn.execute(
                    sa.insert(tb.resource).values(
                        scim_id=resource["id"],
                        resource_type=t.name,
                        object_pk=t.pk_text(pk),
                        object_int=pk if t.int_pk else None,
                        version=version_number(meta.get("version")) or 1,
                        created=meta.get("created") or now(),
                        last_modified=meta.get("lastModified") or meta.get("created") or now(),
                        content_hash=digest,
                        extras=_strip_meta(extras, unset),
                        deleted=False,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            except IntegrityError:
                # RFC 7643 §3.1: "This identifier MUST be unique across the SCIM service
                # provider's entire set of resources."
                raise UniquenessError("The id is already in use.") from None
            self._write_uniques(conn, t, rid, resource)
            self._write_values(conn, t, rid, _strip_meta(extras, unset))
            if t.relation is not None and member_pks:
                self._add_members(conn, t, pk, list(member_pks.values()))
                self._write_displays(conn, rid, {}, _displays(resource))
                last = meta.get("lastModified") or now()
                self._touch(conn, t.relation.member_type, list(member_pks.values()), last)
            created = self._read_rows(conn, t, [pk], refresh=False)[0]
            if self._events.outbox_on:
                self._events.record(conn, t, "created", None, created, list(member_pks.values()))
            return created

    def get(self, tenant: str | None, rt: ResourceType, id: str) -> dict[str, Any] | None:
        found = self._get(tenant, rt, id, members=True)
        return None if found is None else found[0]

    def get_with_groups(
        self, tenant: str | None, rt: ResourceType, id: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """:meth:`get` and what :meth:`groups_of` gives for that one resource, read in ONE
        statement (the groups as a JSON aggregate per group type, a scalar subquery of the
        read by id); ``None`` when there is no such resource. What a GET of a User renders
        (RFC 7643 §4.1.2: ``groups`` is derived from the groups' ``members``)."""
        found = self._get(tenant, rt, id, members=True, groups=True)
        if found is None:
            return None
        resource, groups = found
        if groups is None:  # no statement reads both: the two reads
            groups = self.groups_of(tenant, [id]).get(id, [])
        return resource, groups

    def _get(
        self, tenant: str | None, rt: ResourceType, id: str, *, members: bool, groups: bool = False
    ) -> tuple[dict[str, Any], list[dict[str, Any]] | None] | None:
        """The resource ``id`` and, with ``groups`` when the type's read by id can read
        them too (:meth:`ReadPlan.read_groups`), its groups (else None)."""
        t = self._type(tenant, rt)
        plan = self._plans[t.name]
        prepared = plan.prepared_by_id_groups if groups else None
        if (self._sqlite or self._kept is not None) and (t.relation is None or not members):
            fast = self._get_plain(t, plan, prepared is not None, id)
            if fast is not None:
                resource, group_cells = fast
                if resource is None:
                    return None
                return resource, group_entries(group_cells) if prepared else None
        with self._read() as link:
            # One statement, built at binding: the bookkeeping row and the app's row,
            # joined by primary key (and the groups holding it).
            group = self._group_reads.get(t.name) if members and prepared is None else None
            found = (prepared or group or plan.prepared_by_id).first(link, scim_id=id)
            if found is None:
                return None
            bk, row = plan.split(found)
            pk = row["_pk"]
            read = self._read_rows(
                link,
                t,
                [pk],
                bks={bk["object_pk"]: bk},
                rows={pk: row},
                members=None if members else {},
                owned=True,
                checks=found[len(plan.columns) :] if group is not None else None,
            )
            if not read:
                return None
            entries = group_entries(found[len(plan.columns) :]) if prepared else None
            return read[0], entries

    def search(self, tenant: str | None, rt: ResourceType, query: SearchQuery) -> Page:
        t = self._type(tenant, rt)
        if (
            (self._sqlite or self._kept is not None)
            and t.relation is None
            and query.filter is not None
            and query.sort is None
        ):
            plain = self._unique_eq_plain(t, self._plans[t.name], query)
            if plain is not None:
                return plain
        with self._read() as link:
            plan = self._plans[t.name]
            if query.filter is not None and query.sort is None:
                by_key = self._unique_eq_page(link, t, plan, query)
                if by_key is not None:
                    return by_key
            self._adopt(link, t)
            by_index = self._index_page(link, t, plan, query)
            if by_index is not None:
                return by_index
            conn = link.conn
            r, joined = plan.r, plan.joined
            where: list[Any] = [plan.live]
            params: dict[str, Any] = {}
            if query.filter is not None:
                expr = translate(query.filter, t.bound)
                unique_eq = self._compiler.unique_eq(t, r, expr)
                if unique_eq is not None:
                    _, condition, params, _ = unique_eq
                    where.append(condition())
                else:
                    where.append(self._compiler.cond(t, r, expr))

            def count() -> int:
                if query.filter is None:
                    counted = plan.prepared_count.first(conn)
                    assert counted is not None
                    return int(counted[0])
                found: int = conn.execute(
                    sa.select(sa.func.count()).select_from(joined).where(*where), params
                ).scalar_one()
                return found

            # RFC 7644 §3.4.2.4: an offset past the results is an empty page, a count past
            # them gives them all; neither may reach the database as a number it cannot hold.
            if query.count <= 0 or query.offset >= _MAX_WINDOW:
                return Page(total=count())
            if query.sort is not None:
                key = self._compiler.sort_expr(t, r, sort_target(query.sort.path, t.bound))
                first = (
                    key.desc().nulls_first() if query.sort.descending else key.asc().nulls_last()
                )
                order = (first, self._compiler.collate(r.c.scim_id))
            else:
                order = (r.c.created, self._compiler.collate(r.c.scim_id))
            # The window's rows (the app's and the bookkeeping's) in one statement; with a
            # filter (few matches, typically) the total too, as a window count computed
            # before LIMIT. Without one, counting apart lets the page walk the index.
            total: int | None = None if query.filter is not None else count()
            if total is not None and query.offset >= total:
                return Page(total=total)
            params["page_offset"] = max(query.offset, 0)
            params["page_limit"] = min(query.count, _MAX_WINDOW)
            page = plan.window(where, order, total=total is None)
            found: Sequence[Any] = conn.execute(page, params).all()
            if not found:
                return Page(total=count())
            return self._page(conn, t, plan, found, found[0][-1] if total is None else total)

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
        t = self._type(tenant, rt)
        with self._write() as conn:
            return self._change(conn, t, id, change, if_match, None)

    def get_without_members(
        self, tenant: str | None, rt: ResourceType, id: str
    ) -> dict[str, Any] | None:
        """:meth:`get` without ``members``, reading no row of the association table
        (the :class:`~scim2_core.backends.MemberRows` capability)."""
        found = self._get(tenant, rt, id, members=False)
        return None if found is None else found[0]

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
        """:meth:`update` with ``change`` seeing only the stored members named in
        ``values``, and the result without ``members`` (the
        :class:`~scim2_core.backends.MemberRows` capability): one association row read per
        value, one inserted or deleted per member added or removed, whatever the size of
        the group (RFC 7644 §3.5.2: the PATCH names the members it changes)."""
        t = self._type(tenant, rt)
        if t.relation is None:
            return self.update(tenant, rt, id, change, if_match=if_match, members=members)
        with self._write() as conn:
            return self._change(conn, t, id, change, if_match, list(values))

    def _change(
        self,
        conn: sa.Connection,
        t: ModelType,
        id: str,
        change: Change,
        if_match: Collection[str] | None,
        only: list[str] | None,
    ) -> dict[str, Any]:
        """One write of :meth:`update` (``only`` None: the whole resource) or
        :meth:`update_members` (``only``: the member ids ``change`` sees)."""
        tb = self._tables
        bk, pk, stored = self._lock(conn, t, id)
        listed, named = self._stored_members(conn, t, pk, only)
        current = self._read_rows(
            conn, t, [pk], bks={bk["object_pk"]: bk}, rows={pk: dict(stored)}, members=listed
        )[0]
        check_version(current, if_match)
        new = change(copy_json(current))
        if new is None:
            if only is not None:
                current.pop("members", None)
            return current
        new["id"] = id
        values, extras = _split(t, new)
        old_members = set(_member_ids(current))
        new_members = _member_ids(new)
        added_pks: dict[str, Any] = {}
        removed_pks: list[Any] = []
        if t.relation is not None:
            added = [m for m in new_members if m not in old_members]
            gone = old_members - set(new_members)
            if named is not None and all(m in named for m in added):
                # Every member named was read above, with its key: nothing to look up.
                added_pks = {m: named[m][1] for m in added}
                removed_pks = [named[m][1] for m in gone if m in named]
            else:
                added_pks = self._member_pks(conn, t, added)
                removed_pks = list(self._member_pks(conn, t, gone, strict=False).values())
        unset: dict[str, Any] = {}
        row = self._assign(t, stored, values, unset=unset)
        self._check_columns_unique(conn, t, new, pk)
        if row:
            self._update_row(conn, t, pk, row)
            fresh = self._stored_row(conn, t, pk)  # as the database holds it now
        else:
            fresh = stored
        meta = new.get("meta") or {}
        stripped = _strip_meta(extras, unset)
        last = meta.get("lastModified") or now()
        saved = {
            **bk,
            "version": version_number(meta.get("version")) or bk["version"],
            "last_modified": last,
            "created": meta.get("created") or bk["created"],
            "extras": stripped,
            "content_hash": _hash(fresh, t.hash_fields),
        }
        r = tb.resource
        self._prepared(
            ("save",),
            lambda: (
                sa.update(r)
                .where(r.c.id == sa.bindparam("rid"))
                .values({k: sa.bindparam(f"v_{k}", type_=r.c[k].type) for k in _SAVED})
            ),
        ).run(conn, rid=bk["id"], **{f"v_{k}": saved[k] for k in _SAVED})
        if t.uniques:
            self._write_uniques(conn, t, bk["id"], new, replace=True)
        if stripped != bk["extras"]:
            self._write_values(conn, t, bk["id"], stripped, replace=True)
        if t.relation is not None:
            if added_pks:
                self._add_members(conn, t, pk, list(added_pks.values()))
            if removed_pks:
                self._remove_members(conn, t, pk, removed_pks)
            self._write_displays(conn, bk["id"], _displays(current), _displays(new))
            touched = [*added_pks.values(), *removed_pks]
            if touched:
                self._touch(conn, t.relation.member_type, touched, last)
                if t.relation.member_type == t.name and pk in touched:
                    # The group touched itself (a member of its own type): read it back.
                    return self._read_rows(conn, t, [pk], members=listed, refresh=False)[0]
            if only is not None:
                listed = {}  # the result leaves the members out
            else:
                # The stored members, without reading a large group again: the kept ones
                # and the added ones, in the order a read gives.
                gone_ids = old_members - set(new_members)
                kept = [e for e in listed.get(pk, []) if e[1]["value"] not in gone_ids]
                listed = {pk: sorted([*kept, *self._entries(conn, t, list(added_pks))])}
        # What was just written, without reading it back.
        result = self._read_rows(
            conn,
            t,
            [pk],
            bks={bk["object_pk"]: saved},
            rows={pk: dict(fresh)},
            members=listed,
            refresh=False,
        )[0]
        if self._events.outbox_on:  # with ``only``: the members named, not the group's
            after = result if only is None else {**result, "members": new.get("members", [])}
            members = [*added_pks.values(), *removed_pks]
            self._events.record(
                conn, t, None, current, after, members, some_members=only is not None
            )
        return result

    def delete(
        self,
        tenant: str | None,
        rt: ResourceType,
        id: str,
        *,
        if_match: Collection[str] | None = None,
    ) -> dict[str, Any]:
        t = self._type(tenant, rt)
        tb = self._tables
        with self._write() as conn:
            bk, pk, _ = self._lock(conn, t, id)
            current = self._read_rows(conn, t, [pk], bks={bk["object_pk"]: bk})[0]
            check_version(current, if_match)
            when = now()
            mpks: list[Any] = []
            left: list[tuple[str, list[Any]]] = []  # for the outbox
            if t.relation is not None:
                rel = t.relation
                mpks = list(
                    conn.execute(sa.select(rel.member_col).where(rel.group_col == pk)).scalars()
                )
                self._touch(conn, rel.member_type, mpks, when)
                conn.execute(sa.delete(rel.table).where(rel.group_col == pk))
            # RFC 7644 §3.6: the deleted resource leaves every group; each group so changed
            # gets a new version (its representation changed).
            for group in self._groups_holding(t):
                grel = group.relation
                assert grel is not None
                gpks = list(
                    conn.execute(sa.select(grel.group_col).where(grel.member_col == pk)).scalars()
                )
                self._touch(conn, group.name, gpks, when)
                left.append((group.name, gpks))
                conn.execute(sa.delete(grel.table).where(grel.member_col == pk))
                conn.execute(sa.delete(tb.display).where(tb.display.c.member_id == id))
            conn.execute(sa.delete(tb.unique).where(tb.unique.c.resource_id == bk["id"]))
            conn.execute(sa.delete(tb.display).where(tb.display.c.resource_id == bk["id"]))
            if t.mapping.on_delete == "deactivate":
                active = next(
                    f.field
                    for f in t.bound.singles
                    if f.ref.urn is None and f.ref.attribute.name == "active"
                )
                self._update_row(conn, t, pk, {t.columns[active].key: False})
                conn.execute(
                    sa.update(tb.resource).where(tb.resource.c.id == bk["id"]).values(deleted=True)
                )
            else:
                conn.execute(sa.delete(tb.value).where(tb.value.c.resource_id == bk["id"]))
                conn.execute(sa.delete(tb.resource).where(tb.resource.c.id == bk["id"]))
                try:
                    conn.execute(sa.delete(t.table).where(t.pk == pk))
                except IntegrityError:
                    raise UniquenessError(
                        f"The app's data still refers to this {t.name} ({t.model_name}); "
                        f"it cannot be deleted."
                    ) from None
            if self._events.outbox_on:
                self._events.record(conn, t, "deleted", current, None, mpks, left)
            return current

    def groups_of(
        self, tenant: str | None, member_ids: Iterable[str]
    ) -> Mapping[str, list[dict[str, Any]]]:
        self._tenant(tenant)
        ids = list(dict.fromkeys(member_ids))
        out: dict[str, list[dict[str, Any]]] = {}
        if not ids:
            return out
        plans = [p for member_plans in self._groups_plans.values() for p in member_plans]
        if not plans:
            return out
        with self._read() as conn:  # prepared statements only: no SQLAlchemy connection
            # One statement per group type (built at binding): the members' bookkeeping,
            # the association rows, the groups and their bookkeeping, joined.
            for plan in plans:
                if len(ids) == 1:
                    rows = plan.one.rows(conn, scim_id=ids[0])
                else:
                    rows = [row for chunk in _chunks(ids) for row in plan.many(conn, chunk)]
                for row in rows:
                    out.setdefault(row[0], []).append(plan.entry(row))
        for entries_list in out.values():
            entries_list.sort(key=lambda e: str(e["value"]))
        return out

    def existing(self, tenant: str | None, ids: Iterable[str]) -> Mapping[str, str]:
        """The resource type of each of ``ids`` that is a live resource: its bookkeeping
        row and the app's row both there (one statement, a branch per type, each joining
        the app's table by primary key; what a PATCH of a few members asks is compiled
        once per number of ids)."""
        self._tenant(tenant)
        wanted = list(dict.fromkeys(ids))
        found: dict[str, str] = {}
        if not wanted:
            return found
        r = self._tables.resource

        def live(named: Any) -> Any:
            return sa.union_all(
                *(
                    sa.select(r.c.scim_id, r.c.resource_type)
                    .select_from(r.join(t.table, self._compiler.owner(t, r, t.pk)))
                    .where(r.c.scim_id.in_(named), r.c.deleted == sa.false())
                    for t in self._types.values()
                )
            )

        with self._read() as conn:
            if len(wanted) <= _PREPARED_IDS:  # what a PATCH of a few members asks
                n = len(wanted)
                rows: Iterable[Sequence[Any]] = self._prepared(
                    ("existing", n),
                    lambda: live([sa.bindparam(f"id{i}", type_=sa.String()) for i in range(n)]),
                ).rows(conn, **{f"id{i}": v for i, v in enumerate(wanted)})
            else:
                rows = [row for chunk in _chunks(wanted) for row in conn.conn.execute(live(chunk))]
            for scim_id, resource_type in rows:
                found[scim_id] = resource_type
        return found

    # -- internals: tenants, types, locks ----------------------------------------------------

    def _tenant(self, tenant: str | None) -> None:
        check_tenant(tenant)
        if tenant is not None:
            raise NotImplementedScimError(
                "This server stores SCIM resources in the application's own tables, "
                "which have no tenants."
            )

    def _type(self, tenant: str | None, rt: ResourceType) -> ModelType:
        self._tenant(tenant)
        t = self._types.get(rt.name)
        if t is None or t.bm is None:
            raise ConfigurationError(f"SQLAlchemyBackend has no mapping for {rt.name!r}.")
        return t
