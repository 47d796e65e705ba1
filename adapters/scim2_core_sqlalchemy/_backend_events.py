"""The outbox and the audit log of :class:`~scim2_core_sqlalchemy.SQLAlchemyBackend`, in the
app's own database (the optional ``enable_outbox`` / ``enable_audit`` capabilities of
:class:`scim2_core.backends.Backend`).

**Writing.** With the outbox on, every write of the backend stores its
:class:`~scim2_core.ChangeEvent` rows in its own transaction, on its own connection, last
(after every row it changed, so that it holds their locks): built by
:func:`scim2_core.backends.change_events` / :func:`~scim2_core.backends.touched_event` as
:class:`~scim2_core.backends.SQLBackend` builds them, inserted with SQLAlchemy Core into
tables of the same names and layout as SQLBackend's (:class:`EventTables`). Numbering is
SQLBackend's too (:func:`scim2_core.backends.sql.write_events`): on SQLite from the one row of
``scim_outbox_head`` (one writer at a time); on PostgreSQL from the sequence
``scim_outbox_seq``, so concurrent writers never queue on one row.

**Reading.** The delivery worker and the audit log read and write those tables through
:class:`~scim2_core.backends.sql.SQLEventStore` and ``SQLAuditStore``, the very
code SQLBackend's outbox runs (leases, parking, and on PostgreSQL the *safe horizon* that
never hands out a number a running transaction may still commit), over :class:`AppDialect`:
DB-API connections taken from the app's own engine (its driver, its connect arguments and
connect listeners), detached from its pool so that delivery threads never hold the app's
pooled connections, and switched to autocommit as those stores expect. Nothing changes a
setting of the database itself (no journal mode switch).

The tables are created the first time a consumer or the audit log is enabled (not at
binding: an engine nobody listens to pays nothing), in one transaction, idempotently, as
the backend creates its bookkeeping tables.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa

from scim2_core import ConfigurationError
from scim2_core.backends import change_events, touched_event
from scim2_core.backends.sql import (
    OUTBOX_SEQUENCE_DDL,
    Connection,
    Dialect,
    SQLAuditStore,
    SQLEventStore,
)
from scim2_core.events import AuditStore, ChangeEvent, EventKind, EventStore

from ._backend_tables import Tables
from ._models import ModelType

__all__ = ["AppDialect", "EventTables", "Events", "make_event_tables"]

#: A write's ``touched`` events are built and stored this many at a time (as SQLBackend's
#: ``TOUCHED_BATCH``), so that a PUT of a 10,000-member group never holds them all.
TOUCHED_BATCH: Final = 1000

_CHUNK: Final = 500

#: SQLBackend's schema lock (a transaction-level advisory lock on PostgreSQL): processes
#: creating the tables at once on one database do it one after the other.
_SCHEMA_LOCK: Final = "SELECT pg_advisory_xact_lock(7236286410385219585)"


@dataclass(frozen=True, slots=True)
class EventTables:
    """The outbox and audit tables, with the names and layout of SQLBackend's
    (``OUTBOX_DDL``, ``AUDIT_DDL`` and ``AUDIT_EXCHANGE_DDL`` of
    :mod:`scim2_core.backends.sql`), so that the same readers work over them."""

    metadata: sa.MetaData
    outbox: sa.Table
    outbox_head: sa.Table
    consumers: sa.Table
    failed: sa.Table
    audit: sa.Table
    audit_head: sa.Table


def make_event_tables() -> EventTables:
    """``scim_outbox``, ``scim_audit`` and their companions, as SQLAlchemy Core tables."""
    md = sa.MetaData()
    text, big, double = sa.Text, sa.BigInteger, sa.Double
    outbox = sa.Table(
        "scim_outbox",
        md,
        sa.Column("seq", big, primary_key=True, autoincrement=False),
        sa.Column("event_id", text, nullable=False),
        sa.Column("tenant", text, nullable=False),
        sa.Column("type", text, nullable=False),
        sa.Column("resource_id", text, nullable=False),
        sa.Column("kind", text, nullable=False),
        sa.Column("event", text, nullable=False),
    )
    outbox_head = sa.Table(
        "scim_outbox_head",
        md,
        sa.Column("one", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", big, nullable=False),
    )
    consumers = sa.Table(
        "scim_outbox_consumers",
        md,
        sa.Column("consumer", text, primary_key=True),
        sa.Column("position", big, nullable=False),
        sa.Column("owner", text, nullable=True),
        sa.Column("lease_until", double, nullable=False),
    )
    failed = sa.Table(
        "scim_outbox_failed",
        md,
        sa.Column("consumer", text, primary_key=True),
        sa.Column("seq", big, primary_key=True, autoincrement=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", text, nullable=False),
        sa.Column("failed_at", double, nullable=False),
        sa.Column("event", text, nullable=False),
    )
    audit = sa.Table(
        "scim_audit",
        md,
        sa.Column("seq", big, primary_key=True, autoincrement=False),
        sa.Column("time", text, nullable=False),
        sa.Column("principal", text),
        sa.Column("tenant", text),
        sa.Column("method", text, nullable=False),
        sa.Column("path", text, nullable=False),
        sa.Column("resource_type", text),
        sa.Column("resource_id", text),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("scim_type", text),
        sa.Column("request_id", text),
        sa.Column("duration_ms", double, nullable=False),
        sa.Column("change", text),
        sa.Column("exchange", text),
        sa.Index("scim_audit_time", "time"),
        sa.Index("scim_audit_resource", "resource_id", "time"),
        sa.Index("scim_audit_principal", "principal", "time"),
    )
    audit_head = sa.Table(
        "scim_audit_head",
        md,
        sa.Column("one", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", big, nullable=False),
    )
    return EventTables(md, outbox, outbox_head, consumers, failed, audit, audit_head)


class _DBAPIConnection:
    """A DB-API connection of the app's engine, in the shape the SQL stores use
    (:class:`~scim2_core.backends.sql.Connection`): ``execute`` returns the
    cursor, whatever the driver (sqlite3, psycopg 3, psycopg2)."""

    def __init__(self, proxied: Any) -> None:
        self._proxied = proxied
        self._dbapi = proxied.dbapi_connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = self._dbapi.cursor()
        if params:
            cur.execute(sql, tuple(params))
        else:
            cur.execute(sql)
        return cur

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        cur = self._dbapi.cursor()
        cur.executemany(sql, [tuple(row) for row in rows])

    def cursor(self) -> Any:
        return self._dbapi.cursor()

    def close(self) -> None:
        self._proxied.close()  # detached from the pool: closes the DB-API connection


class AppDialect(Dialect):
    """The :class:`~scim2_core.backends.sql.Dialect` the SQL stores need, over
    connections of the app's engine: one per thread (as every dialect keeps), each a new
    DB-API connection made by the engine (its URL, driver, connect arguments and the app's
    ``connect`` listeners), detached from its pool and put in autocommit; transactions
    are begun explicitly (``BEGIN IMMEDIATE`` on SQLite, as SQLBackend's writers).

    ``write_lock``: on SQLite, the backend's lock, held by every write transaction here
    too, as by the backend's own reads. A read of the backend may write (adopting the app's
    rows) after it has read; where the app's engine begins its transactions at the first
    statement (SQLAlchemy's recipe for SQLite), under the rollback journal such a read
    meeting a delivery write waiting for it would be a lock cycle, which SQLite breaks with
    "database is locked". One lock also hands the file over at once, where SQLite's busy
    handler polls with sleeps.
    """

    def __init__(self, engine: sa.Engine, write_lock: AbstractContextManager[Any]) -> None:
        super().__init__()
        self._write_lock = write_lock
        kind = engine.dialect.name
        if kind == "sqlite":
            database = engine.url.database
            if not database or database == ":memory:" or database.startswith("file::memory:"):
                raise ConfigurationError(
                    "SQLAlchemyBackend's outbox and audit log need a database every connection "
                    "shares: an in-memory SQLite database is one per connection; use a file."
                )
            self.name = "sqlite"
            self.begin_write = "BEGIN IMMEDIATE"
            self.begin_read = "BEGIN"
        elif kind == "postgresql":
            self.name = "postgresql"
            self.begin_write = "BEGIN"
            self.begin_read = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        else:
            raise ConfigurationError(
                f"SQLAlchemyBackend keeps its outbox and audit log on SQLite or PostgreSQL, "
                f"not {kind}."
            )
        self._engine = engine

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]:
        """One transaction (see :class:`Dialect`); a write one under ``write_lock``."""
        lock = self._write_lock if write else contextlib.nullcontext()
        with lock, super().transaction(write=write) as conn:
            yield conn

    def connect(self) -> Connection:
        proxied = self._engine.raw_connection()
        proxied.detach()
        dbapi = proxied.dbapi_connection
        assert dbapi is not None  # a connection just made
        self._engine.dialect.set_isolation_level(dbapi, "AUTOCOMMIT")
        return _DBAPIConnection(proxied)

    def sql(self, text: str) -> str:
        # The stores write ``?``; the PostgreSQL drivers take ``%s`` (no SQL text of theirs
        # holds a literal ``?`` or ``%``).
        return text.replace("?", "%s") if self.name == "postgresql" else text


def _derives_groups(t: ModelType | None) -> bool:
    """Whether a membership change touches resources of ``t`` (as the backend's
    ``_touch`` decides: a type with ``groups``, or a group type)."""
    if t is None or t.bm is None:
        return False
    return t.bm.rt.schema.attribute("groups") is not None or t.relation is not None


class Events:
    """The outbox and audit log of one backend: creates their tables when first enabled,
    hands out the stores, and :meth:`record`\\ s a write's events in its transaction."""

    def __init__(
        self,
        engine: sa.Engine,
        tables: Tables,
        types: Mapping[str, ModelType],
        write_lock: AbstractContextManager[Any],
    ) -> None:
        self._engine = engine
        #: The backend's lock for writes on SQLite (see :class:`AppDialect`), none else.
        sqlite = engine.dialect.name == "sqlite"
        self._write_lock = write_lock if sqlite else contextlib.nullcontext()
        self._tables = tables
        self._types = types
        self._postgres = engine.dialect.name == "postgresql"
        self.event_tables = make_event_tables()
        et = self.event_tables
        # The write path's statements, built once (only their parameters change).
        if self._postgres:
            # Numbers drawn by the INSERT itself, last in the transaction, while it holds
            # the rows of every resource the events name: one resource's events are
            # numbered in commit order.
            self._insert_events = sa.insert(et.outbox).values(
                seq=sa.func.nextval("scim_outbox_seq")
            )
        else:
            self._insert_events = sa.insert(et.outbox)
        head = et.outbox_head
        self._draw = (
            sa.update(head)
            .where(head.c.one == 1)
            .values(seq=head.c.seq + sa.bindparam("count", type_=sa.BigInteger))
            .returning(head.c.seq)
        )
        self._dialect: AppDialect | None = None
        self._lock = threading.Lock()
        #: Set by :meth:`enable_outbox`: every write then stores its events.
        self.outbox_on = False

    def _reader(self) -> AppDialect:
        with self._lock:
            if self._dialect is None:
                self._dialect = AppDialect(self._engine, self._write_lock)
            return self._dialect

    def close(self) -> None:
        """Close the connections the stores opened."""
        with self._lock:
            if self._dialect is not None:
                self._dialect.close()

    def _create(self, tables: Sequence[sa.Table], heads: Sequence[sa.Table]) -> None:
        """Create ``tables`` if missing, and the one row of each of ``heads`` (and, with
        the outbox on PostgreSQL, the sequence that numbers events): idempotent."""
        with self._write_lock, self._engine.begin() as conn:
            if self._postgres:
                conn.exec_driver_sql(_SCHEMA_LOCK)
            self.event_tables.metadata.create_all(conn, tables=list(tables), checkfirst=True)
            for head in heads:
                if conn.execute(sa.select(head.c.seq)).first() is None:
                    conn.execute(sa.insert(head).values(one=1, seq=0))
            outbox = self.event_tables.outbox
            if (
                self._postgres
                and outbox in tables
                and not sa.inspect(conn).has_sequence("scim_outbox_seq")
            ):
                for statement in OUTBOX_SEQUENCE_DDL:
                    conn.exec_driver_sql(statement)

    def enable_outbox(self) -> EventStore:
        """Create the outbox tables (if missing), store every write's events from now on,
        and return the store the delivery worker reads."""
        et = self.event_tables
        dialect = self._reader()
        self._create((et.outbox, et.outbox_head, et.consumers, et.failed), (et.outbox_head,))
        self.outbox_on = True
        return SQLEventStore(dialect)

    def enable_audit(self) -> AuditStore:
        """Create the audit tables (if missing) and return the audit log's store."""
        et = self.event_tables
        dialect = self._reader()
        self._create((et.audit, et.audit_head), (et.audit_head,))
        return SQLAuditStore(dialect)

    def record(
        self,
        conn: sa.Connection,
        t: ModelType,
        kind: EventKind | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        members: Sequence[Any] = (),
        left: Iterable[tuple[str, Sequence[Any]]] = (),
        *,
        some_members: bool = False,
    ) -> None:
        """Store the events of a write of a ``t`` resource, last in its transaction
        ``conn`` (one tenant: None). First the resource's own (``kind`` None: replaced or
        patched, as the engine says), then one ``touched`` event per resource the write
        touched, with its version as the write left it: the ``members`` (app primary keys
        of ``t``'s member type) that joined or left, then the groups a deleted resource
        ``left`` (``(group type name, app primary keys)``). ``some_members``: see
        :func:`~scim2_core.backends.change_events`."""
        assert t.bm is not None  # bound: the backend writes bound types only
        own = change_events(None, t.bm.rt, kind, before, after, some_members=some_members)
        self._insert(conn, own)
        touched = [(t.relation.member_type, members)] if t.relation is not None else []
        versions = self._versions(conn, [*touched, *left])
        for start in range(0, len(versions), TOUCHED_BATCH):
            batch = versions[start : start + TOUCHED_BATCH]
            self._insert(conn, [touched_event(own[0], *v) for v in batch])

    def _versions(
        self, conn: sa.Connection, touched: Iterable[tuple[str, Sequence[Any]]]
    ) -> list[tuple[str, str, str | None]]:
        """``(type, id, version)`` of each live touched resource, by id within a type."""
        r = self._tables.resource
        out: list[tuple[str, str, str | None]] = []
        for type_name, pks in touched:
            t = self._types.get(type_name)
            if not pks or t is None or not _derives_groups(t):
                continue
            texts = sorted({t.pk_text(pk) for pk in pks})
            found: list[tuple[str, str, str | None]] = []
            for start in range(0, len(texts), _CHUNK):
                q = sa.select(r.c.scim_id, r.c.version).where(
                    r.c.resource_type == type_name,
                    r.c.object_pk.in_(texts[start : start + _CHUNK]),
                    r.c.deleted == sa.false(),
                )
                found.extend((type_name, sid, f'W/"{v}"') for sid, v in conn.execute(q))
            out.extend(sorted(found, key=lambda v: v[1]))
        return out

    def _insert(self, conn: sa.Connection, events: Sequence[ChangeEvent]) -> None:
        """Number ``events`` and insert them (SQLBackend's ``write_events``, in Core)."""
        if not events:
            return
        rows: list[dict[str, Any]] = [
            {
                "event_id": e.event_id,
                "tenant": e.tenant or "",
                "type": e.resource_type,
                "resource_id": e.id,
                "kind": e.kind,
                "event": e.to_json(),
            }
            for e in events
        ]
        if not self._postgres:  # SQLite: from the counter row (one writer at a time)
            last = conn.execute(self._draw, {"count": len(rows)}).scalar_one()
            first = int(last) - len(rows) + 1
            for n, row in enumerate(rows):
                row["seq"] = first + n
        conn.execute(self._insert_events, rows)
