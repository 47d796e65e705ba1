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
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from scim2_core._errors import (
    ConfigurationError,
    InvalidValueError,
    NotFoundError,
    NotImplementedScimError,
    UniquenessError,
)
from scim2_core._json import copy_json
from scim2_core.backends import (
    Change,
    Page,
    SearchQuery,
    check_tenant,
    check_version,
    missing_members_error,
)
from scim2_core.events import AuditStore, EventStore
from scim2_core.mapping import ResourceMapping, bind_mapping, sort_target, translate
from scim2_core.schema import AttrRef, ResourceType, now, version_number

from ._backend_events import Events
from ._backend_expressions import UNSET, Compiler, is_text, marker_column
from ._backend_reads import GroupsOfPlan, Prepared, ReadPlan
from ._backend_tables import LAYOUT_VERSION, REPLACED_INDEXES, make_tables
from ._models import ModelType, Unique, find_model, find_relation

__all__ = ["SQLAlchemyBackend"]

#: Larger offsets and counts than any table holds, and than LIMIT/OFFSET can carry
#: (64-bit signed on SQLite and PostgreSQL) once added together.
_MAX_WINDOW: Final = 2**62

_CHUNK = 500

#: How often (seconds) the full check for rows the app wrote without the ORM runs.
_FULL_CHECK_SECONDS = 1.0


#: The bookkeeping columns an update writes.
_SAVED: Final = ("version", "last_modified", "created", "extras", "content_hash")


def _hash(values: Mapping[str, Any], fields: Iterable[str]) -> str:
    """A digest of the mapped columns' values, to notice the app's changes."""
    data = repr([values.get(f) for f in (fields if isinstance(fields, tuple) else sorted(fields))])
    return hashlib.blake2b(data.encode(), digest_size=16).hexdigest()


def _dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


def _version(number: int) -> str:
    return f'W/"{number}"'


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


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


class SQLAlchemyBackend:
    """Store SCIM resources in the app's own SQLAlchemy models; see the module docstring.

    ``bind`` is the app's :class:`sqlalchemy.Engine` (or a ``sessionmaker`` bound to one;
    with Flask-SQLAlchemy, ``db.engine`` inside an app context). ``mappings`` say where each
    attribute lives; each mapping's ``model`` is the mapped class itself (plain declarative
    or Flask-SQLAlchemy's ``db.Model``), or names one of ``models`` by class name.
    Construction checks every model, column and relationship and raises
    :class:`~scim2_core.ConfigurationError` naming what does not exist; binding (the
    Engine's constructor) checks every SCIM attribute and creates scim2-core's tables
    (named ``table_prefix...``) if missing.
    """

    never_blocks = False

    def __init__(
        self,
        bind: Any,
        mappings: Sequence[ResourceMapping],
        *,
        models: Iterable[Any] = (),
        table_prefix: str = "scim2_core_",
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
                    r = self._tables.resource
                    rel = g.relation
                    self._member_reads[g.name] = Prepared(
                        sa.select(r.c.id, r.c.scim_id)
                        .select_from(
                            rel.table.join(r, self._compiler.owner(member, r, rel.member_col))
                        )
                        .where(rel.group_col == sa.bindparam("gpk"), r.c.deleted == sa.false())
                        .order_by(r.c.id),
                        self.engine.dialect,
                    )
        self._migrate()
        if not self._listening:
            self._listening = True
            self._listen()

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
        audit log opened (the engine stays the app's to dispose)."""
        self._events.close()
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
        return self._get(tenant, rt, id, members=True)

    def _get(
        self, tenant: str | None, rt: ResourceType, id: str, *, members: bool
    ) -> dict[str, Any] | None:
        t = self._type(tenant, rt)
        plan = self._plans[t.name]
        with self._read() as conn:
            # One statement, built at binding: the bookkeeping row and the app's row,
            # joined by primary key.
            found = plan.prepared_by_id.first(conn, scim_id=id)
            if found is None:
                return None
            bk, row = plan.split(found)
            pk = row["_pk"]
            read = self._read_rows(
                conn,
                t,
                [pk],
                bks={bk["object_pk"]: bk},
                rows={pk: row},
                members=None if members else {},
                owned=True,
            )
            return read[0] if read else None

    def search(self, tenant: str | None, rt: ResourceType, query: SearchQuery) -> Page:
        t = self._type(tenant, rt)
        with self._read() as conn:
            plan = self._plans[t.name]
            if query.filter is not None and query.sort is None:
                by_key = self._unique_eq_page(conn, t, plan, query)
                if by_key is not None:
                    return by_key
            self._adopt(conn, t)
            by_index = self._index_page(conn, t, plan, query)
            if by_index is not None:
                return by_index
            r, joined = plan.r, plan.joined
            where: list[Any] = [plan.live]
            params: dict[str, Any] = {}
            if query.filter is not None:
                expr = translate(query.filter, t.bound)
                unique_eq = self._compiler.unique_eq(t, r, expr)
                if unique_eq is not None:
                    _, condition, params = unique_eq
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

    def _unique_eq_page(
        self, conn: sa.Connection, t: ModelType, plan: ReadPlan, query: SearchQuery
    ) -> Page | None:
        """The page of a ``userName eq`` (an ``eq`` on a unique column, default order): one
        statement, compiled once per field, run on the cursor; None for any other search.

        A row found is live and adopted (the statement joins the bookkeeping), so the
        check for rows the app inserted (:meth:`_adopt`) runs only when nothing is found,
        and the statement again after it. (An empty page past the first leaves the count
        to the general path.)"""
        assert query.filter is not None
        if query.count <= 0 or query.offset >= _MAX_WINDOW:
            return None
        unique_eq = self._compiler.unique_eq(t, plan.r, translate(query.filter, t.bound))
        if unique_eq is None:
            return None
        fast, condition, params = unique_eq
        prepared = plan.unique_eq_pages.get(fast)
        if prepared is None:
            order = (plan.r.c.created, self._compiler.collate(plan.r.c.scim_id))
            window = plan.window([plan.live, condition()], order, total=True)
            prepared = Prepared(window, plan.dialect)
            plan.unique_eq_pages[fast] = prepared
        params["page_offset"] = offset = max(query.offset, 0)
        params["page_limit"] = min(query.count, _MAX_WINDOW)
        found = prepared.rows(conn, **params)
        if not found:
            if offset > 0:
                return None
            self._adopt(conn, t)
            found = prepared.rows(conn, **params)
            if not found:
                return Page(total=0)
        return self._page(conn, t, plan, found, found[0][-1])

    def _page(
        self,
        conn: sa.Connection,
        t: ModelType,
        plan: ReadPlan,
        found: Sequence[Sequence[Any]],
        total: int,
    ) -> Page:
        """The page of the rows ``found`` (of :attr:`ReadPlan.columns`)."""
        pks = []
        rows: dict[Any, dict[str, Any]] = {}
        bks: dict[str, Mapping[str, Any]] = {}
        for values in found:
            bk, row = plan.split(values)
            pks.append(row["_pk"])
            rows[row["_pk"]] = row
            bks[bk["object_pk"]] = bk
        return Page(
            total=total, resources=self._read_rows(conn, t, pks, bks=bks, rows=rows, owned=True)
        )

    def _index_page(
        self, conn: sa.Connection, t: ModelType, plan: ReadPlan, query: SearchQuery
    ) -> Page | None:
        """A page without filter or sort, cut on the bookkeeping's index and joined with
        the app's rows of the page only; None when the bookkeeping may hold rows the app
        deleted (the join of every row then decides, and the total stays exact).

        The bookkeeping is trusted when it has as many rows of the type as the app's table
        (the test :meth:`_adopt` makes too: a row the app deleted beside one it inserted
        below the largest key, both with raw SQL, is missed by both), and the page is
        checked: a row of the window whose app row is gone sends the search to the join.
        """
        if query.filter is not None or query.sort is not None:
            return None
        counts = plan.prepared_sync.first(conn)
        assert counts is not None
        app_rows, total, deactivated = counts
        if app_rows != total + deactivated:
            return None
        # RFC 7644 §3.4.2.4: an offset past the results is an empty page.
        if query.count <= 0 or query.offset >= total:
            return Page(total=total)
        found = plan.prepared_index_page.rows(
            conn, page_offset=max(query.offset, 0), page_limit=min(query.count, total)
        )
        if len(found) != min(query.count, total - max(query.offset, 0)):
            return None
        return self._page(conn, t, plan, found, total)

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
        return self._get(tenant, rt, id, members=False)

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
        conn.execute(
            sa.update(tb.resource)
            .where(tb.resource.c.id == bk["id"])
            .values({k: saved[k] for k in _SAVED})
        )
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
        with self._read() as conn:
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
        self._tenant(tenant)
        wanted = list(dict.fromkeys(ids))
        found: dict[str, str] = {}
        if not wanted:
            return found
        r = self._tables.resource
        with self._read() as conn:
            by_type: dict[str, dict[str, str]] = {}
            for chunk in _chunks(wanted):
                for row in conn.execute(
                    sa.select(r.c.scim_id, r.c.resource_type, r.c.object_pk).where(
                        r.c.scim_id.in_(chunk), r.c.deleted == sa.false()
                    )
                ):
                    by_type.setdefault(row.resource_type, {})[row.object_pk] = row.scim_id
            for name, texts in by_type.items():
                t = self._types.get(name)
                if t is None:
                    continue
                pks = [t.pk_value(p) for p in texts]
                for pk in conn.execute(sa.select(t.pk).where(t.pk.in_(pks))).scalars():
                    found[texts[t.pk_text(pk)]] = name
        return found

    @contextmanager
    def request_scope(self) -> Iterator[None]:
        """Serve every call made inside this block (one request: a read, then the
        ``groups_of`` of what it read, or a write) on one connection of the app's engine,
        checked out at the first call and returned at the end (the ``request_scope``
        capability of :mod:`scim2_core.backends`; :meth:`scim2_core.Engine.handle` enters
        it around each request).

        What a read writes (rows of the app adopted, versions moved) is committed when
        that read ends (on PostgreSQL reads otherwise run without a transaction; on SQLite
        they take none until they write); each write still commits its own transaction,
        with its compare-and-set inside it (RFC 7644 §3.14).
        On SQLite the block holds the process's write lock from its first call to its end,
        as each call otherwise takes it in turn. Nested blocks of one thread are one.
        """
        local = self._local
        if getattr(local, "scope", None) is not None:
            yield
            return
        scope = _Scope()
        local.scope = scope
        try:
            yield
        except BaseException:
            scope.close(commit=False)
            raise
        else:
            scope.close(commit=True)
        finally:
            local.scope = None
            if scope.locked:
                self._write_lock.release()

    # -- internals: connections, types, rows ----------------------------------------------

    def _scoped(self) -> sa.Connection | None:
        """The connection of the thread's request scope (checked out now if not yet), or
        None outside one."""
        scope: _Scope | None = getattr(self._local, "scope", None)
        if scope is None:
            return None
        if scope.conn is None:
            if self._sqlite:
                self._write_lock.acquire()
                scope.locked = True
            scope.conn = self._reads.connect()
        return scope.conn

    def _wrote(self, conn: sa.Connection) -> None:
        """A read is about to write on ``conn`` (adopt rows, move a version): on
        PostgreSQL, open the transaction its writes share (the read ran without one); in a
        request scope on SQLite, commit when the read ends rather than with the request."""
        reading: _Reading | None = getattr(self._local, "reading", None)
        if reading is None or reading.conn is not conn:
            return  # a write's own transaction, or the app's (its ORM events)
        if self._sqlite:
            scope: _Scope | None = getattr(self._local, "scope", None)
            if scope is not None:
                scope.dirty = True
        elif not reading.began:
            reading.began = True
            conn.exec_driver_sql("BEGIN")

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """One read, on the request scope's connection or on one of its own (one
        generator, not nested context managers: a ``GET`` runs two reads)."""
        scoped = self._scoped()
        if scoped is not None:
            reading = self._start_reading(scoped)
            try:
                yield scoped
            except BaseException:
                self._abort_reading(reading)
                raise
            self._finish_reading(reading)
            if reading.began or reading.dirty():
                scoped.commit()
            return
        # On SQLite a read may write (adopting rows, moving versions): it takes the write
        # lock too, so that it never waits on a writer while holding a read lock.
        lock = self._write_lock if self._sqlite else None
        if lock is not None:
            lock.acquire()
        try:
            with self._reads.connect() as conn:
                reading = self._start_reading(conn)
                try:
                    yield conn
                except BaseException:
                    self._abort_reading(reading)
                    raise
                self._finish_reading(reading)
                conn.commit()  # a read may adopt the app's new rows or move versions
        finally:
            if lock is not None:
                lock.release()

    def _start_reading(self, conn: sa.Connection) -> _Reading:
        """One read begins on ``conn``: what it writes is committed at its end (on
        PostgreSQL with the ``COMMIT`` of the transaction :meth:`_wrote` opened), or rolled
        back (:meth:`_abort_reading`)."""
        local = self._local
        reading = _Reading(conn, getattr(local, "scope", None))
        local.reading = reading
        return reading

    def _finish_reading(self, reading: _Reading) -> None:
        self._local.reading = None
        if reading.began:
            reading.conn.exec_driver_sql("COMMIT")

    def _abort_reading(self, reading: _Reading) -> None:
        self._local.reading = None
        if reading.scope is not None:
            reading.scope.dirty = False
        if reading.began:
            reading.conn.exec_driver_sql("ROLLBACK")
        reading.conn.rollback()

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        scoped = self._scoped()
        if scoped is not None:
            # The scope's reads end first (their transaction holds no lock a write waits
            # for); the write is a transaction of its own on the same connection.
            if scoped.in_transaction():
                scoped.commit()
            if not self._sqlite:
                # The scope's connection reads without a transaction: the write opens one.
                with self._write_lock:
                    scoped.exec_driver_sql("BEGIN")
                    try:
                        yield scoped
                    except BaseException:
                        scoped.exec_driver_sql("ROLLBACK")
                        raise
                    scoped.exec_driver_sql("COMMIT")
                return
            with self._write_lock, scoped.begin():
                self._lock_sqlite(scoped)
                yield scoped
            return
        with self._write_lock, self.engine.begin() as conn:
            self._lock_sqlite(conn)
            yield conn

    def _lock_sqlite(self, conn: sa.Connection) -> None:
        if self._sqlite:
            # A deferred SQLite transaction reads before it locks: write first (to the
            # backend's own table), so the whole read-then-write holds the write lock.
            s = self._tables.schema
            conn.execute(sa.update(s).values(version=s.c.version))

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

    def _groups_holding(self, member: ModelType) -> list[ModelType]:
        return [
            g
            for g in self._types.values()
            if g.relation is not None and g.relation.member_type == member.name
        ]

    def _lock(
        self, conn: sa.Connection, t: ModelType, id: str
    ) -> tuple[Mapping[str, Any], Any, dict[str, Any]]:
        """The bookkeeping row, the primary key and the app's row of ``id`` (one
        statement, joined), both rows locked for the write; 404 if either is gone (the
        bookkeeping of a row the app deleted goes in :meth:`_adopt`)."""
        plan = self._plans[t.name]
        found = plan.prepared_lock.first(conn, scim_id=id)
        if found is None:
            raise NotFoundError(f"{t.name} {id!r} not found.")
        bk, row = plan.split(found)
        return bk, row["_pk"], row

    def _select_fields(self, t: ModelType) -> list[Any]:
        return [t.pk.label("_pk"), *(col.label(name) for name, col in t.columns.items())]

    def _stored_row(self, conn: sa.Connection, t: ModelType, pk: Any) -> dict[str, Any]:
        row = conn.execute(sa.select(*self._select_fields(t)).where(t.pk == pk)).first()
        return dict(row._mapping) if row is not None else {}

    def _row_hash(self, conn: sa.Connection, t: ModelType, pk: Any) -> str:
        return _hash(self._stored_row(conn, t, pk), t.hash_fields)

    def _adopt(self, conn: sa.Connection, t: ModelType) -> None:
        """Give the app's rows without bookkeeping (inserted by the app) an id and version;
        forget the bookkeeping of rows the app deleted.

        With an integer primary key, each call compares the largest key of the app's table
        with the largest adopted one (two index probes) and adopts the rows above it; the
        full check (counting both sides, anti-joins only when the counts differ) runs at
        most once a second per type, for rows written below that key or deleted.
        """
        tb = self._tables
        r = tb.resource
        if t.int_pk:
            moment = time.monotonic()
            if moment - t.checked < _FULL_CHECK_SECONDS:
                largest = self._plans[t.name].prepared_largest_keys.first(conn)
                assert largest is not None
                app_max, kept_max = largest
                if app_max is None or (kept_max is not None and app_max <= kept_max):
                    return
                k = r.alias()
                above = sa.select(*self._select_fields(t)).where(
                    ~sa.exists(sa.select(sa.literal(1)).where(self._compiler.owner(t, k, t.pk)))
                )
                if kept_max is not None:
                    above = above.where(t.pk > kept_max)
                self._adopt_rows(conn, t, [dict(row._mapping) for row in conn.execute(above)])
                return
            t.checked = moment
        rows, kept = conn.execute(self._plans[t.name].counts).one()
        if rows == kept:
            return
        if kept > rows:
            gone = sa.select(r.c.id).where(
                r.c.resource_type == t.name,
                ~sa.exists(sa.select(sa.literal(1)).where(self._compiler.owner(t, r, t.pk))),
            )
            ids = list(conn.execute(gone).scalars())
            if ids:
                self._wrote(conn)
            for chunk in _chunks(ids):
                conn.execute(sa.delete(tb.value).where(tb.value.c.resource_id.in_(chunk)))
                conn.execute(sa.delete(tb.unique).where(tb.unique.c.resource_id.in_(chunk)))
                conn.execute(sa.delete(tb.display).where(tb.display.c.resource_id.in_(chunk)))
                conn.execute(sa.delete(r).where(r.c.id.in_(chunk)))
        k = r.alias()
        missing = [
            dict(row._mapping)
            for row in conn.execute(
                sa.select(*self._select_fields(t)).where(
                    ~sa.exists(sa.select(sa.literal(1)).where(self._compiler.owner(t, k, t.pk)))
                )
            )
        ]
        self._adopt_rows(conn, t, missing)

    def _adopt_rows(
        self, conn: sa.Connection, t: ModelType, missing: Sequence[Mapping[str, Any]]
    ) -> None:
        """Bookkeeping for app rows (``_select_fields`` rows) that have none."""
        if not missing:
            return
        self._wrote(conn)
        r = self._tables.resource
        when = now()
        for chunk in _chunks(missing):
            conn.execute(
                sa.insert(r),
                [
                    {
                        "scim_id": str(uuid.uuid4()),
                        "resource_type": t.name,
                        "object_pk": t.pk_text(row["_pk"]),
                        "object_int": row["_pk"] if t.int_pk else None,
                        "version": 1,
                        "created": when,
                        "last_modified": when,
                        "content_hash": _hash(row, t.hash_fields),
                        "extras": {},
                        "deleted": False,
                    }
                    for row in chunk
                ],
            )
        if t.uniques:
            for row in missing:
                rid = conn.execute(
                    sa.select(r.c.id).where(
                        r.c.resource_type == t.name, r.c.object_pk == t.pk_text(row["_pk"])
                    )
                ).scalar_one()
                self._write_uniques(conn, t, rid, t.bound.read(row, {}), strict=False)

    # -- the app's changes through its ORM session -------------------------------------------

    def _listen(self) -> None:
        """Follow the app's ORM writes of mapped models, in the app's own transaction: an
        inserted row gets its id at once, an updated one a new version, a deleted one
        leaves SCIM. (Writes that bypass the ORM's unit of work, such as bulk
        ``update()`` statements or raw SQL, are found by the next read instead.)"""
        for t in self._types.values():
            for name, handler in (
                ("after_insert", self._on_app_insert),
                ("after_update", self._on_app_update),
                ("after_delete", self._on_app_delete),
            ):
                sa.event.listen(t.model, name, handler, propagate=True)

    def _app_type(self, mapper: Any) -> ModelType | None:
        for t in self._types.values():
            if t.bm is not None and mapper.local_table is t.table:
                return t
        return None

    def _on_app_insert(self, mapper: Any, conn: sa.Connection, target: Any) -> None:
        t = self._app_type(mapper)
        if t is None:
            return
        pk = mapper.primary_key_from_instance(target)[0]
        r = self._tables.resource
        known = conn.execute(
            sa.select(r.c.id).where(r.c.resource_type == t.name, r.c.object_pk == t.pk_text(pk))
        ).first()
        if known is None:
            self._adopt_rows(conn, t, [self._stored_row(conn, t, pk)])

    def _on_app_update(self, mapper: Any, conn: sa.Connection, target: Any) -> None:
        t = self._app_type(mapper)
        if t is None:
            return
        pk = mapper.primary_key_from_instance(target)[0]
        r = self._tables.resource
        found = conn.execute(
            sa.select(r).where(r.c.resource_type == t.name, r.c.object_pk == t.pk_text(pk))
        ).first()
        row = self._stored_row(conn, t, pk)
        if found is None:
            self._adopt_rows(conn, t, [row])
            return
        bk = _dict(found)
        digest = _hash(row, t.hash_fields)
        if digest != bk["content_hash"]:
            self._app_changed(conn, t, bk, row, digest)

    def _on_app_delete(self, mapper: Any, conn: sa.Connection, target: Any) -> None:
        t = self._app_type(mapper)
        if t is None:
            return
        pk = mapper.primary_key_from_instance(target)[0]
        tb = self._tables
        r = tb.resource
        ids = list(
            conn.execute(
                sa.select(r.c.id).where(r.c.resource_type == t.name, r.c.object_pk == t.pk_text(pk))
            ).scalars()
        )
        for child in (tb.value, tb.unique, tb.display):
            conn.execute(sa.delete(child).where(child.c.resource_id.in_(ids)))
        conn.execute(sa.delete(r).where(r.c.id.in_(ids)))

    # One pass that joins a page's app rows, bookkeeping and members, each part read only
    # when the caller does not already hold it (the optional arguments): the branches are
    # those parts. Splitting it is on the list with the read-path speed work.
    def _read_rows(  # noqa: C901
        self,
        conn: sa.Connection,
        t: ModelType,
        pks: Sequence[Any],
        *,
        bks: Mapping[str, Mapping[str, Any]] | None = None,
        rows: dict[Any, dict[str, Any]] | None = None,
        members: dict[Any, list[tuple[int, dict[str, Any]]]] | None = None,
        refresh: bool = True,
        owned: bool = False,
    ) -> list[dict[str, Any]]:
        """The resources of the app's rows ``pks`` (in that order; missing ones skipped).
        With ``owned``, the rows and bookkeeping given are the caller's to give away (just
        read): their extras become the resources instead of being copied.

        With ``refresh``, a row whose mapped columns no longer have the hash SCIM last saw
        was changed by the app: its version and lastModified move first (RFC 7644 §3.14).
        """
        if not pks:
            return []
        r = self._tables.resource
        if rows is None:
            rows = self._rows(conn, t, pks)
        if bks is None:
            found: dict[str, Mapping[str, Any]] = {}
            for chunk in _chunks([t.pk_text(pk) for pk in rows]):
                for kept in conn.execute(
                    sa.select(r).where(
                        r.c.resource_type == t.name,
                        r.c.object_pk.in_(chunk),
                        r.c.deleted == sa.false(),
                    )
                ):
                    found[kept.object_pk] = _dict(kept)
            bks = found
        displays: dict[tuple[Any, str], str] = {}
        fresh_members = members is None  # read here: their dicts are ours to give
        if t.relation is not None:
            if members is None:
                members = self._members_of(conn, t, list(rows))
            if members:
                d = self._tables.display
                rids = [bk["id"] for bk in bks.values()]
                for chunk in _chunks(rids):
                    for rid, member_id, display in conn.execute(
                        sa.select(d.c.resource_id, d.c.member_id, d.c.display).where(
                            d.c.resource_id.in_(chunk)
                        )
                    ).all():
                        displays[(rid, member_id)] = display
        out = []
        for pk in pks:
            values = rows.get(pk)
            bk = bks.get(t.pk_text(pk)) if values is not None else None
            if values is None or bk is None:
                continue
            row = values
            if refresh:
                digest = _hash(row, t.hash_fields)
                if digest != bk["content_hash"]:
                    bk = self._app_changed(conn, t, bk, row, digest)
            meta = dict(bk["extras"].get("meta") or {})
            resource = t.bound.read(*_visible(row, bk["extras"]), owned=owned)
            resource["id"] = bk["scim_id"]
            if t.relation is not None and members and members.get(pk):
                listed = [m for _, m in members[pk]]
                resource["members"] = listed if fresh_members else [dict(m) for m in listed]
                if displays:
                    rid = bk["id"]
                    for m in resource["members"]:
                        display = displays.get((rid, m["value"]))
                        if display is not None:
                            m["display"] = display
            meta.setdefault("resourceType", t.name)
            meta["created"] = bk["created"]
            meta["lastModified"] = bk["last_modified"]
            meta["version"] = _version(bk["version"])
            resource["meta"] = meta
            out.append(resource)
        return out

    def _rows(
        self, conn: sa.Connection, t: ModelType, pks: Sequence[Any]
    ) -> dict[Any, dict[str, Any]]:
        """``{pk: {"_pk": pk, field: value...}}`` of the app's rows ``pks``."""
        out: dict[Any, dict[str, Any]] = {}
        fields = self._select_fields(t)
        for chunk in _chunks(list(pks)):
            result = conn.execute(sa.select(*fields).where(t.pk.in_(chunk)))
            keys = list(result.keys())
            for values in result:
                row = dict(zip(keys, values, strict=True))
                out[row["_pk"]] = row
        return out

    def _app_changed(
        self,
        conn: sa.Connection,
        t: ModelType,
        bk: Mapping[str, Any],
        row: Mapping[str, Any],
        digest: str,
    ) -> Mapping[str, Any]:
        self._wrote(conn)
        r = self._tables.resource
        when = now()
        done = conn.execute(
            sa.update(r)
            .where(r.c.id == bk["id"], r.c.content_hash == bk["content_hash"])
            .values(version=r.c.version + 1, last_modified=when, content_hash=digest)
        ).rowcount
        if done and t.uniques:
            resource = t.bound.read(*_visible(row, bk["extras"]))
            self._write_uniques(conn, t, bk["id"], resource, replace=True, strict=False)
        fresh = conn.execute(sa.select(r).where(r.c.id == bk["id"])).first()
        out: Mapping[str, Any] = _dict(fresh) if fresh is not None else bk
        return out

    def _members_of(
        self,
        conn: sa.Connection,
        t: ModelType,
        group_pks: list[Any],
        *,
        only: list[str] | None = None,
    ) -> dict[Any, list[tuple[int, dict[str, Any]]]]:
        """``{group pk: [(order, {"value": id, "type": member type}), ...]}``, ordered by
        the members' bookkeeping rows (``order``); with ``only``, just the members whose
        SCIM id is one of those (an index probe each, not the whole group)."""
        rel = t.relation
        assert rel is not None
        member_t = self._types[rel.member_type]
        r = self._tables.resource
        out: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
        if not group_pks:
            return out
        if only is not None and len(only) > _CHUNK:
            # Many ids named: read the group, keep theirs.
            named = set(only)
            return {
                gpk: [e for e in entries if e[1]["value"] in named]
                for gpk, entries in self._members_of(conn, t, group_pks).items()
            }
        if only is None:
            self._adopt(conn, member_t)
            one = self._member_reads.get(t.name)
            if one is not None and len(group_pks) == 1:  # a read of one group
                gpk = group_pks[0]
                kind = rel.member_type
                rows = one.rows(conn, gpk=gpk)
                if rows:
                    out[gpk] = [(rid, {"value": sid, "type": kind}) for rid, sid in rows]
                return out
        elif not only:
            return out
        for chunk in _chunks(group_pks):
            q = (
                sa.select(rel.group_col, r.c.id, r.c.scim_id)
                .select_from(rel.table.join(r, self._compiler.owner(member_t, r, rel.member_col)))
                .where(rel.group_col.in_(chunk), r.c.deleted == sa.false())
                .order_by(r.c.id)
            )
            if only is not None:
                q = q.where(r.c.scim_id.in_(only))
            kind = rel.member_type
            for gpk, rid, scim_id in conn.execute(q).all():  # one fetch, not one per row
                out.setdefault(gpk, []).append((rid, {"value": scim_id, "type": kind}))
        return out

    def _entries(
        self, conn: sa.Connection, t: ModelType, ids: list[str]
    ) -> list[tuple[int, dict[str, Any]]]:
        """``_members_of``'s entries of the members ``ids``."""
        rel = t.relation
        assert rel is not None
        r = self._tables.resource
        out = []
        for chunk in _chunks(ids):
            q = sa.select(r.c.id, r.c.scim_id).where(
                r.c.scim_id.in_(chunk), r.c.resource_type == rel.member_type
            )
            for rid, scim_id in conn.execute(q):
                out.append((rid, {"value": scim_id, "type": rel.member_type}))
        return out

    def _stored_members(
        self, conn: sa.Connection, t: ModelType, pk: Any, only: list[str] | None
    ) -> tuple[
        dict[Any, list[tuple[int, dict[str, Any]]]], dict[str, tuple[int, Any, bool]] | None
    ]:
        """The members ``change`` sees (``_members_of``'s shape: all, or those of ``only``)
        and, when ``only`` names few, :meth:`_named_members` of them (else None)."""
        rel = t.relation
        if rel is None:
            return {}, None
        if only is None or len(only) > _CHUNK:
            return self._members_of(conn, t, [pk], only=only), None
        named = self._named_members(conn, t, pk, only)
        inside = sorted(
            (rid, {"value": mid, "type": rel.member_type})
            for mid, (rid, _, held) in named.items()
            if held
        )
        return ({pk: inside} if inside else {}), named

    def _named_members(
        self, conn: sa.Connection, t: ModelType, group_pk: Any, ids: Sequence[str]
    ) -> dict[str, tuple[int, Any, bool]]:
        """``{member id: (bookkeeping row id, app pk, in the group)}`` of the live
        resources of the member type among ``ids`` (at most ``_CHUNK``): one statement,
        an index probe per id, whatever the size of the group."""
        rel = t.relation
        assert rel is not None
        if not ids:
            return {}
        member_t = self._types[rel.member_type]
        r = self._tables.resource
        held = rel.table.alias("held")
        on_member = held.c[rel.member_col.key] == member_t.pk
        q = (
            sa.select(r.c.scim_id, r.c.id, member_t.pk, held.c[rel.group_col.key])
            .select_from(
                r.join(member_t.table, self._compiler.owner(member_t, r, member_t.pk)).outerjoin(
                    held, sa.and_(on_member, held.c[rel.group_col.key] == group_pk)
                )
            )
            .where(r.c.scim_id.in_(list(ids)), r.c.deleted == sa.false())
        )
        return {
            scim_id: (rid, pk, in_group is not None)
            for scim_id, rid, pk, in_group in conn.execute(q)
        }

    def _member_pks(
        self, conn: sa.Connection, t: ModelType, ids: Iterable[str], *, strict: bool = True
    ) -> dict[str, Any]:
        """``{member id: app pk}``; with ``strict``, 400 ``invalidValue`` for ids that are
        not live resources of the member type (RFC 7643 §4.2: "Identifier of the member")."""
        rel = t.relation
        assert rel is not None
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        member_t = self._types[rel.member_type]
        r = self._tables.resource
        pks: dict[str, Any] = {}
        for chunk in _chunks(ids):
            q = (
                sa.select(r.c.scim_id, member_t.pk)
                .select_from(r.join(member_t.table, self._compiler.owner(member_t, r, member_t.pk)))
                .where(r.c.scim_id.in_(chunk), r.c.deleted == sa.false())
            )
            pks.update((scim_id, pk) for scim_id, pk in conn.execute(q))
        missing = [id for id in ids if id not in pks]
        if missing and strict:
            shown = ", ".join(sorted(missing)[:5]) + (" ..." if len(missing) > 5 else "")
            other = conn.execute(
                sa.select(sa.func.count())
                .select_from(r)
                .where(r.c.scim_id.in_(missing[:_CHUNK]), r.c.resource_type != rel.member_type)
            ).scalar_one()
            if other:
                raise InvalidValueError(
                    f"Members of this group must be {rel.member_type} resources "
                    f"(the relation holds only those): {shown}."
                )
            raise missing_members_error(missing)
        return pks

    def _write_displays(
        self, conn: sa.Connection, rid: Any, old: Mapping[str, str], new: Mapping[str, str]
    ) -> None:
        """Write only the members' ``display`` values that changed."""
        d = self._tables.display
        gone = [m for m, text in old.items() if new.get(m) != text]
        for chunk in _chunks(gone):
            conn.execute(sa.delete(d).where(d.c.resource_id == rid, d.c.member_id.in_(chunk)))
        fresh = [
            {"resource_id": rid, "member_id": m, "display": text}
            for m, text in new.items()
            if old.get(m) != text
        ]
        if fresh:
            conn.execute(sa.insert(d), fresh)

    def _add_members(
        self, conn: sa.Connection, t: ModelType, group_pk: Any, member_pks: list[Any]
    ) -> None:
        """Insert the association rows of ``member_pks``, members the caller read to be
        outside the group (in its write's transaction)."""
        rel = t.relation
        assert rel is not None
        rows = [
            {rel.group_col.key: group_pk, rel.member_col.key: pk}
            for pk in dict.fromkeys(member_pks)
        ]
        if rows:
            conn.execute(sa.insert(rel.table), rows)

    def _remove_members(
        self, conn: sa.Connection, t: ModelType, group_pk: Any, member_pks: list[Any]
    ) -> None:
        rel = t.relation
        assert rel is not None
        for chunk in _chunks(member_pks):
            conn.execute(
                sa.delete(rel.table).where(rel.group_col == group_pk, rel.member_col.in_(chunk))
            )

    def _touch(self, conn: sa.Connection, type_name: str, pks: list[Any], when: str) -> None:
        """A membership changed: the member (or group) gets a new version and lastModified
        (RFC 7644 §3.14: ``groups`` is part of a User's representation)."""
        t = self._types.get(type_name)
        if t is None or not pks or t.bm is None:
            return
        if t.bm.rt.schema.attribute("groups") is None and t.relation is None:
            return
        r = self._tables.resource
        for chunk in _chunks([t.pk_text(pk) for pk in pks]):
            conn.execute(
                sa.update(r)
                .where(
                    r.c.resource_type == type_name,
                    r.c.object_pk.in_(chunk),
                    r.c.deleted == sa.false(),
                )
                .values(version=r.c.version + 1, last_modified=when)
            )

    # -- internals: writing the app's row ------------------------------------------------

    def _assign(
        self,
        t: ModelType,
        stored: Mapping[str, Any] | None,
        values: Mapping[str, Any],
        *,
        unset: dict[str, Any],
    ) -> dict[str, Any]:
        """The column values to write (all on create, the changed ones on update); 400
        ``invalidValue`` naming the SCIM attribute for a value the column cannot hold.

        A column that cannot hold "no value" (a ``NOT NULL`` boolean with a default) gets
        its default; ``unset`` records it, so that reading gives the attribute back
        unassigned while the app sees the column as written (RFC 7643 §2.5).
        """
        out: dict[str, Any] = {}
        by_field = {f.field: f for f in t.bound.fields}
        for name, value in values.items():
            col = t.columns[name]
            label = by_field[name].label
            if value is None:
                if col.nullable:
                    value = None
                elif is_text(col):
                    value = ""
                elif col.default is not None and getattr(col.default, "is_scalar", False):
                    value = col.default.arg  # type: ignore[attr-defined]
                    unset[name] = value
                else:
                    raise InvalidValueError(f"A value of {label!r} is required here.")
            else:
                value = _fit(col, value, label)
            if stored is None or stored.get(name) != value:
                out[col.key] = value
        return out

    def _insert(self, conn: sa.Connection, t: ModelType, row: dict[str, Any]) -> Any:
        try:
            result = conn.execute(sa.insert(t.table).values(**row))
        except IntegrityError:
            # The app's own unique constraints hold too.
            raise UniquenessError(
                f"A value of this {t.name} is already in use ({t.model_name})."
            ) from None
        except (DBAPIError, StatementError):
            raise InvalidValueError(f"A value of this {t.name} does not fit its table.") from None
        pk = result.inserted_primary_key
        assert pk is not None
        return pk[0]

    def _update_row(self, conn: sa.Connection, t: ModelType, pk: Any, row: dict[str, Any]) -> None:
        try:
            conn.execute(sa.update(t.table).where(t.pk == pk).values(**row))
        except IntegrityError:
            raise UniquenessError(
                f"A value of this {t.name} is already in use ({t.model_name})."
            ) from None
        except (DBAPIError, StatementError):
            raise InvalidValueError(f"A value of this {t.name} does not fit its table.") from None

    def _check_columns_unique(
        self, conn: sa.Connection, t: ModelType, resource: Mapping[str, Any], exclude_pk: Any
    ) -> None:
        """Unique attributes held by columns: also compare with the app's own rows (which
        may predate the bookkeeping), case-insensitively unless caseExact."""
        for u in t.uniques:
            if u.field is None:
                continue
            col = t.columns[u.field]
            for key in u.keys(resource):
                lhs: Any = col if u.ref.target.case_exact else sa.func.lower(col)
                q = sa.select(t.pk).where(lhs == key)
                if exclude_pk is not None:
                    q = q.where(t.pk != exclude_pk)
                # rows hidden from SCIM (deleted, deactivated) still hold their values
                if conn.execute(q.limit(1)).first() is not None:
                    raise UniquenessError(f"The value of {u.label!r} is already in use.")

    def _write_uniques(
        self,
        conn: sa.Connection,
        t: ModelType,
        rid: Any,
        resource: Mapping[str, Any],
        *,
        replace: bool = False,
        strict: bool = True,
    ) -> None:
        """RFC 7643 §7 "uniqueness": "server" — "The value SHOULD be unique within the
        context of the current SCIM endpoint"; the unique constraint decides races."""
        u_t = self._tables.unique
        if replace:
            conn.execute(sa.delete(u_t).where(u_t.c.resource_id == rid))
        rows = [
            {"resource_id": rid, "resource_type": t.name, "attribute": u.label, "value": k[:255]}
            for u in t.uniques
            for k in u.keys(resource)
        ]
        if not rows:
            return
        if not strict:
            for row in rows:
                taken = conn.execute(
                    sa.select(u_t.c.id).where(
                        u_t.c.resource_type == row["resource_type"],
                        u_t.c.attribute == row["attribute"],
                        u_t.c.value == row["value"],
                    )
                ).first()
                if taken is None:
                    conn.execute(sa.insert(u_t).values(**row))
            return
        try:
            conn.execute(sa.insert(u_t), rows)
        except IntegrityError:
            label = t.uniques[0].label if len(t.uniques) == 1 else "a unique attribute"
            raise UniquenessError(f"The value of {label!r} is already in use.") from None

    def _write_values(
        self,
        conn: sa.Connection,
        t: ModelType,
        rid: Any,
        extras: Mapping[str, Any],
        *,
        replace: bool = False,
    ) -> None:
        v_t = self._tables.value
        if replace:
            conn.execute(sa.delete(v_t).where(v_t.c.resource_id == rid))
        blank = {"position": 0, "text": None, "folded": None, "number": None, "flag": None}
        rows: list[dict[str, Any]] = [
            {
                **blank,
                "resource_id": rid,
                "key": UNSET,
                "sub": name,
                marker_column(t.columns[name]): value,
            }
            for name, value in (extras.get(UNSET) or {}).items()
            if name in t.columns
        ]
        for leaf in t.bound.leaves({k: v for k, v in extras.items() if k != UNSET}):
            v = leaf.value
            text = v if isinstance(v, str) else None
            rows.append(
                {
                    "resource_id": rid,
                    "key": leaf.key[:255],
                    "sub": leaf.sub,
                    "position": leaf.index,
                    "text": text,
                    "folded": text.lower() if text is not None else None,
                    "number": float(v)
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                    else None,
                    "flag": v if isinstance(v, bool) else None,
                }
            )
        if rows:
            conn.execute(sa.insert(v_t), rows)


class _Reading:
    """One read of the backend (:meth:`SQLAlchemyBackend._reading`)."""

    __slots__ = ("began", "conn", "scope")

    def __init__(self, conn: sa.Connection, scope: _Scope | None) -> None:
        self.conn = conn
        self.scope = scope
        self.began = False  # PostgreSQL: the read opened a transaction to write

    def dirty(self) -> bool:
        """SQLite in a request scope: the read wrote (commit it when it ends)."""
        scope = self.scope
        if scope is None or not scope.dirty:
            return False
        scope.dirty = False
        return True


class _Scope:
    """One request's connection (:meth:`SQLAlchemyBackend.request_scope`)."""

    __slots__ = ("conn", "dirty", "locked")

    def __init__(self) -> None:
        self.conn: sa.Connection | None = None
        self.dirty = False  # a read wrote: commit when it ends
        self.locked = False  # holds the backend's write lock (SQLite)

    def close(self, *, commit: bool) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            if conn.in_transaction():
                if commit:
                    conn.commit()
                else:
                    conn.rollback()
        finally:
            conn.close()


def _split(t: ModelType, resource: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``t.bound.write(resource)`` (a converter refusing a value is 400 ``invalidValue``
    naming its attribute there)."""
    return t.bound.write(resource)


def _fit(col: sa.Column[Any], value: Any, label: str) -> Any:
    """``value`` checked against the column's type: 400 ``invalidValue`` naming the
    attribute if it cannot be stored (RFC 7644 §3.12 Table 9: "The attribute value [...] is
    incompatible with the [...] schema")."""
    kind = col.type
    bad = InvalidValueError(f"The value of {label!r} is not valid here.")
    if isinstance(kind, sa.Boolean):
        if not isinstance(value, bool):
            raise bad
    elif isinstance(kind, sa.Integer):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        bits = (
            16
            if isinstance(kind, sa.SmallInteger)
            else 64
            if isinstance(kind, sa.BigInteger)
            else 32
        )
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise InvalidValueError(f"The value of {label!r} is out of range here.")
    elif isinstance(kind, (sa.Float, sa.Numeric)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
    elif isinstance(kind, sa.String):
        if not isinstance(value, str):
            raise bad
        if kind.length is not None and len(value) > kind.length:
            raise InvalidValueError(
                f"The value of {label!r} is too long here (at most {kind.length} characters)."
            )
        if "\x00" in value:
            raise bad
    return value


def _member_ids(resource: Mapping[str, Any]) -> list[str]:
    members = resource.get("members")
    if not isinstance(members, list):
        return []
    out = [m["value"] for m in members if isinstance(m, dict) and isinstance(m.get("value"), str)]
    return list(dict.fromkeys(out))


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


def _visible(
    row: Mapping[str, Any], extras: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(column values, extras)`` to read: a column still holding the default it got for
    an unassigned attribute reads as unassigned."""
    values = dict(row)
    rest = dict(extras)
    unset = rest.pop(UNSET, None)
    if isinstance(unset, dict):
        for name, default in unset.items():
            if values.get(name) == default:
                values[name] = None
    return values, rest


def _strip_meta(extras: Mapping[str, Any], unset: Mapping[str, Any]) -> dict[str, Any]:
    """The extras to store: ``meta`` without what the bookkeeping columns hold, and the
    defaults given to unassigned attributes (see :func:`_visible`)."""
    out = dict(extras)
    kept_unset = {k: v for k, v in unset.items() if isinstance(v, (bool, int, float, str))}
    if kept_unset:
        out[UNSET] = kept_unset
    meta = out.get("meta")
    if isinstance(meta, dict):
        kept = {k: v for k, v in meta.items() if k not in ("version", "created", "lastModified")}
        if kept:
            out["meta"] = kept
        else:
            del out["meta"]
    return out
