"""The outbox in SQL: tables, writing a write's events in its transaction, and the
:class:`~scim2_core.events.EventStore` the delivery worker reads.

Numbering (``seq``): on SQLite, from the one row of ``scim_outbox_head``, incremented last
in the transaction (SQLite admits one writer at a time anyway, so ``seq`` order is commit
order). On PostgreSQL, from the sequence ``scim_outbox_seq`` (schema version 8), so that
concurrent writers never queue on one row: a number is drawn last in the transaction,
while the transaction holds the row locks of every resource its events name, so the
events of one resource still get increasing numbers in the order they commit. What a
sequence does not give is "every number below a committed one is committed": a
transaction that drew 5 may commit after the one that drew 6, and one may roll back and
leave 5 unused for ever. The reader (:class:`SQLEventStore`) therefore hands out events
only up to a *safe horizon* (see :class:`_Horizon`), never skipping a number that may
still commit.

Another backend (an ORM's) writes the same rows in its own transaction with
:func:`write_events`, given any connection whose ``execute(sql, params)`` takes ``?``
placeholders (or ``%s`` with ``paramstyle="format"``), after creating the tables with
:data:`OUTBOX_DDL` (and :data:`OUTBOX_SEQUENCE_DDL` on PostgreSQL).
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ...events import AuditEntry, AuditQuery, ChangeEvent, Counts, FailedEvent
from ...events._model import stored_event
from .._outbox import touched_event
from ._dialect import Connection, Dialect
from ._rows import chunks

__all__ = [
    "AUDIT_DDL",
    "AUDIT_EXCHANGE_DDL",
    "AUDIT_TABLES",
    "OUTBOX_DDL",
    "OUTBOX_SEQUENCE_DDL",
    "OUTBOX_TABLES",
    "SQLAuditStore",
    "SQLEventStore",
    "missing_tables",
    "versions_of",
    "write_change",
    "write_events",
]

#: Schema version 4 (see :mod:`._migrations`): the outbox, each consumer's position and
#: lease, and the events a consumer parked as failed.
OUTBOX_DDL: Final = (
    """CREATE TABLE scim_outbox (
        seq BIGINT PRIMARY KEY,
        event_id TEXT NOT NULL,
        tenant TEXT NOT NULL,
        type TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        event TEXT NOT NULL
    )""",
    "CREATE TABLE scim_outbox_head (one INTEGER PRIMARY KEY, seq BIGINT NOT NULL)",
    "INSERT INTO scim_outbox_head (one, seq) VALUES (1, 0)",
    """CREATE TABLE scim_outbox_consumers (
        consumer TEXT PRIMARY KEY,
        position BIGINT NOT NULL,
        owner TEXT,
        lease_until DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE scim_outbox_failed (
        consumer TEXT NOT NULL,
        seq BIGINT NOT NULL,
        attempts INTEGER NOT NULL,
        error TEXT NOT NULL,
        failed_at DOUBLE PRECISION NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (consumer, seq)
    )""",
)


#: Schema version 5: the audit log. ``time`` is RFC 3339 UTC with microseconds, so that
#: it sorts and compares as text.
AUDIT_DDL: Final = (
    """CREATE TABLE scim_audit (
        seq BIGINT PRIMARY KEY,
        time TEXT NOT NULL,
        principal TEXT,
        tenant TEXT,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        resource_type TEXT,
        resource_id TEXT,
        status INTEGER NOT NULL,
        scim_type TEXT,
        request_id TEXT,
        duration_ms DOUBLE PRECISION NOT NULL,
        change TEXT
    )""",
    "CREATE INDEX scim_audit_time ON scim_audit (time)",
    "CREATE INDEX scim_audit_resource ON scim_audit (resource_id, time)",
    "CREATE INDEX scim_audit_principal ON scim_audit (principal, time)",
    "CREATE TABLE scim_audit_head (one INTEGER PRIMARY KEY, seq BIGINT NOT NULL)",
    "INSERT INTO scim_audit_head (one, seq) VALUES (1, 0)",
)

#: Schema version 7: a refused request's query, body and answer (redacted, bounded; see
#: :class:`~scim2_core.events.AuditEntry`), as JSON.
AUDIT_EXCHANGE_DDL: Final = ("ALTER TABLE scim_audit ADD COLUMN exchange TEXT",)


def _sql(text: str, paramstyle: str) -> str:
    return text.replace("?", "%s") if paramstyle == "format" else text


#: Schema version 8, PostgreSQL only: the sequence events are numbered from, starting
#: after the last number the counter row gave.
OUTBOX_SEQUENCE_DDL: Final = (
    "CREATE SEQUENCE scim_outbox_seq AS BIGINT",
    "SELECT setval('scim_outbox_seq', GREATEST(seq, 1), seq > 0) FROM scim_outbox_head",
)

_INSERT: Final = (
    "INSERT INTO scim_outbox (seq, event_id, tenant, type, resource_id, kind, event) "
    "VALUES ({seq}, ?, ?, ?, ?, ?, ?)"
)
_HEAD: Final = "UPDATE scim_outbox_head SET seq = seq + ? WHERE one = 1 RETURNING seq"


@functools.cache
def _statements(paramstyle: str, sequence: bool) -> tuple[str, str]:
    """The INSERT and the counter row's UPDATE of :func:`write_events` (built once each)."""
    seq = "nextval('scim_outbox_seq')" if sequence else "?"
    return _sql(_INSERT.format(seq=seq), paramstyle), _sql(_HEAD, paramstyle)


def write_events(
    conn: Any,
    events: Sequence[ChangeEvent],
    *,
    paramstyle: str = "qmark",
    sequence: bool | None = None,
) -> None:
    """Store ``events`` in the transaction open on ``conn``: call it last, just before
    COMMIT, after the write's own changes (which lock the rows of every resource the
    events name; see the module docstring).

    ``sequence``: number them from ``scim_outbox_seq`` (PostgreSQL, schema version 8)
    rather than the counter row (SQLite); None (the default) means True exactly when
    ``paramstyle`` is ``"format"``, psycopg's: on PostgreSQL.
    """
    if not events:
        return
    if sequence is None:
        sequence = paramstyle == "format"
    insert, head = _statements(paramstyle, sequence)
    rows: list[tuple[Any, ...]]
    if sequence:
        rows = [
            (e.event_id, e.tenant or "", e.resource_type, e.id, e.kind, e.to_json()) for e in events
        ]
    else:
        first = int(conn.execute(head, (len(events),)).fetchone()[0]) - len(events) + 1
        rows = [
            (first + n, e.event_id, e.tenant or "", e.resource_type, e.id, e.kind, e.to_json())
            for n, e in enumerate(events)
        ]
    if len(rows) == 1:
        conn.execute(insert, rows[0])
    elif hasattr(conn, "executemany"):  # sqlite3
        conn.executemany(insert, rows)
    else:  # psycopg and other DB-API drivers: a cursor's
        with conn.cursor() as cur:
            cur.executemany(insert, rows)


#: A write's ``touched`` events are built and stored this many at a time, so that a PUT
#: of a 10,000-member group never holds them all at once.
TOUCHED_BATCH: Final = 1000


def write_change(
    d: Dialect,
    conn: Connection,
    own: Sequence[ChangeEvent],
    touched: Sequence[tuple[str, str, str | None]],
) -> None:
    """Store a write's ``own`` events (:func:`~scim2_core.backends.change_events` with
    nothing touched), then one ``touched`` event per ``(type, id, version)`` of
    ``touched``, :data:`TOUCHED_BATCH` at a time; call it last in the transaction."""
    paramstyle = "format" if d.name == "postgresql" else "qmark"
    write_events(conn, own, paramstyle=paramstyle)
    for start in range(0, len(touched), TOUCHED_BATCH):
        batch = touched[start : start + TOUCHED_BATCH]
        write_events(conn, [touched_event(own[0], *t) for t in batch], paramstyle=paramstyle)


def versions_of(
    d: Dialect,
    conn: Connection,
    tenant: str,
    ids: Iterable[str],
    kinds: Sequence[str] | None,
) -> list[tuple[str, str, str | None]]:
    """``(type, id, version)`` of each existing resource of ``ids`` (of ``kinds`` only,
    unless None), by id: the resources a write touched, read back in its transaction."""
    wanted = sorted(set(ids))
    if not wanted or kinds == []:
        return []
    out: list[tuple[str, str, str | None]] = []
    for chunk, marks in chunks(wanted):
        # The version a touch gave (schema version 10, ``scim_versions``) over the row's.
        sql = (
            "SELECT r.type, r.id, COALESCE(v.version, r.version) FROM scim_resources r "
            "LEFT JOIN scim_versions v ON v.tenant = r.tenant AND v.id = r.id "
            f"WHERE r.tenant = ? AND r.id IN ({marks})"
        )
        params: list[Any] = [tenant, *chunk]
        if kinds is not None:
            sql += f" AND r.type IN ({', '.join('?' * len(kinds))})"
            params.extend(kinds)
        out.extend(conn.execute(d.sql(sql + " ORDER BY r.id"), params).fetchall())
    return out


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What ``pg_current_snapshot()`` says: transactions with an id below ``xmin`` have
    ended; of those from ``xmin`` to below ``xmax``, the ``running`` ones are in progress;
    one at ``xmax`` or above may be in progress too, unlisted (``xmax`` is the last
    completed id + 1, not the next id to be given).

    ``elsewhere``: ids that ``pg_stat_activity`` shows as the transaction of a session
    connected to ANOTHER database of the server. A sequence belongs to one database, so
    such a transaction holds none of its numbers, whatever it runs: a long import in
    another application's database does not hold delivery back. A session the reader may
    not see (or a prepared transaction, which has none) is not listed, so it counts as
    a possible writer: the filter only ever drops a transaction known to be elsewhere."""

    xmin: int
    xmax: int
    running: frozenset[int]
    elsewhere: frozenset[int] = frozenset()

    @classmethod
    def now(cls, conn: Connection) -> _Snapshot:
        row = conn.execute(
            "SELECT CAST(pg_current_snapshot() AS text), ARRAY("
            "SELECT CAST(backend_xid AS text) FROM pg_stat_activity "
            "WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database())"
        ).fetchone()
        xmin, xmax, xip = str(row[0]).split(":")
        running = frozenset(int(x) for x in xip.split(",")) if xip else frozenset()
        elsewhere = frozenset(int(x) for x in row[1] or ())
        return cls(int(xmin), int(xmax), running, elsewhere)


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A number ``last`` that becomes safe once every transaction that may hold a number
    up to it has ended: those ``running`` when it was read, and any whose id lies from
    ``unlisted_from`` up to (not including) ``below``."""

    last: int
    running: frozenset[int]
    unlisted_from: int
    below: int

    def settled(self, now: _Snapshot) -> bool:
        if now.xmax < self.below:  # ids below ``below`` might run unlisted
            return False
        return not any(
            x in self.running or self.unlisted_from <= x < self.below
            for x in now.running - now.elsewhere
        )


class _Horizon:
    """The *safe horizon* of PostgreSQL's outbox: a number ``h`` such that every event
    numbered ``<= h`` has committed or never will (its transaction rolled back).

    A writer draws its numbers last, after its first write gave it a transaction id. So
    after reading the sequence's last value ``L``, the reader takes a transaction id
    ``N`` of its own (``pg_current_xact_id()``): any transaction holding a number
    ``<= L`` got its id before, so below ``N``. A snapshot then lists the ones still in
    progress, except those at or above its ``xmax`` (see :class:`_Snapshot`); once none
    of these is in progress any more (seen from a later transaction), ``L`` is safe.
    Only a gap in the numbers (a writer still running, or one that rolled back) makes
    the reader ask; behind the gap it waits for the transactions that were in progress
    when it looked, which a commit ends in milliseconds (a write transaction left open
    on the server for long delays delivery behind such a gap, never a write).
    Thread-safe: the consumer threads of one store share it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._safe = 0
        self._candidate: _Candidate | None = None

    def current(self, conn: Connection) -> int:
        """The highest number known safe, learning what it can from ``conn`` (in
        autocommit: each statement sees what committed before it, and the transaction id
        it takes ends with its statement)."""
        with self._lock:
            candidate = self._candidate
            if candidate is not None and candidate.settled(_Snapshot.now(conn)):
                self._safe = max(self._safe, candidate.last)
                self._candidate = candidate = None
            if candidate is None:
                row = conn.execute("SELECT last_value, is_called FROM scim_outbox_seq").fetchone()
                last = int(row[0]) if row[1] else int(row[0]) - 1
                # In this order: see above. The candidate settles in a later transaction.
                mine = int(conn.execute("SELECT CAST(pg_current_xact_id() AS text)").fetchone()[0])
                seen = _Snapshot.now(conn)
                self._candidate = _Candidate(last, seen.running - {mine}, seen.xmax, mine)
            return self._safe


#: How long a PostgreSQL reader waits, at most, for the writers running behind a gap in
#: the numbers before it returns the events before the gap.
GAP_WAIT: Final = 0.05


def _without_gaps(rows: Sequence[Any], after: int, horizon: int) -> list[Any]:
    """The first ``rows`` (each with its ``seq`` first, in ``seq`` order) that can be
    handed out: each numbered one more than the one before (starting after ``after``), or
    at most ``horizon``."""
    out: list[Any] = []
    last = after
    for row in rows:
        seq = int(row[0])
        if seq != last + 1 and seq > horizon:
            break
        out.append(row)
        last = seq
    return out


#: What the delivery thread reads of an event: the columns, and the JSON decoded only if
#: a consumer reads the fields the columns do not hold (:func:`stored_event`).
_FETCH: Final = (
    "SELECT seq, event_id, type, resource_id, kind, event FROM scim_outbox "
    "WHERE seq > ? ORDER BY seq LIMIT ?"
)


def _events(rows: Sequence[Any]) -> list[ChangeEvent]:
    return [
        stored_event(int(seq), event_id, type_, rid, kind, text)
        for seq, event_id, type_, rid, kind, text in rows
    ]


@contextlib.contextmanager
def _bookkeeping(d: Dialect) -> Iterator[Connection]:
    """A write transaction of the outbox's and the audit log's own records (a consumer's
    position and lease, a batch of audit entries, pruning), which a create never waits
    for: on SQLite with ``synchronous=FULL`` (or ``EXTRA``) it commits as ``NORMAL``, so
    it holds SQLite's one writer without an fsync while creates wait.

    Nothing the guarantees rest on is weakened: in WAL mode commits are kept in order, so a
    power loss can only take the last few, and the next create's own (fsynced) commit
    makes these durable with it. What a power loss may take is what the guarantees
    already allow: a position (those events are delivered again, with the same ids) or
    the audit log's last entries (see docs/events.md). The connection is set back before
    anything else uses it (a handler writing on the delivery thread commits as
    configured)."""
    level = getattr(d, "synchronous", "NORMAL")
    if d.name != "sqlite" or d.shared or level in ("NORMAL", "OFF"):
        with d.transaction(write=True) as conn:
            yield conn
        return
    d.connection().execute("PRAGMA synchronous = NORMAL")
    try:
        with d.transaction(write=True) as conn:
            yield conn
    finally:
        try:
            d.connection().execute(f"PRAGMA synchronous = {level}")
        except Exception:
            d.forget()  # the next use opens a connection as configured


class SQLEventStore:
    """The :class:`~scim2_core.events.EventStore` over the outbox tables of one database.

    Leases use each process's clock (``time.time()``): processes sharing a database are
    assumed to keep their clocks in step within a fraction of the lease.
    """

    def __init__(self, dialect: Dialect) -> None:
        self._d = dialect
        self._horizon = _Horizon() if dialect.name == "postgresql" else None

    def register(self, consumer: str) -> None:
        d = self._d
        with d.transaction(write=True) as conn:
            conn.execute(
                d.sql(
                    "INSERT INTO scim_outbox_consumers (consumer, position, owner, lease_until) "
                    "VALUES (?, 0, NULL, 0) ON CONFLICT DO NOTHING"
                ),
                (consumer,),
            )

    def claim(self, consumer: str, owner: str, lease_seconds: float) -> int | None:
        d = self._d
        now = time.time()
        with _bookkeeping(d) as conn:
            cur = conn.execute(
                d.sql(
                    "UPDATE scim_outbox_consumers SET owner = ?, lease_until = ? "
                    "WHERE consumer = ? AND (owner IS NULL OR owner = ? OR lease_until < ?) "
                    "RETURNING position"
                ),
                (owner, now + lease_seconds, consumer, owner, now),
            )
            row = cur.fetchone()
        return None if row is None else int(row[0])

    def holder(self, consumer: str) -> str | None:
        d = self._d
        with d.transaction(write=False) as conn:
            row = conn.execute(
                d.sql("SELECT owner FROM scim_outbox_consumers WHERE consumer = ?"), (consumer,)
            ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def release(self, consumer: str, owner: str) -> None:
        d = self._d
        with d.transaction(write=True) as conn:
            conn.execute(
                d.sql(
                    "UPDATE scim_outbox_consumers SET owner = NULL, lease_until = 0 "
                    "WHERE consumer = ? AND owner = ?"
                ),
                (consumer, owner),
            )

    def fetch(self, after: int, limit: int) -> list[ChangeEvent]:
        d = self._d
        if self._horizon is not None:
            return self._fetch_safe(after, limit)
        # One statement, its own snapshot: no BEGIN and COMMIT around it (SQLite numbers
        # events in commit order, so what it sees has no gap that may still fill).
        with d.reading() as conn:
            rows = conn.execute(_FETCH, (after, limit)).fetchall()
        return _events(rows)

    def _fetch_safe(self, after: int, limit: int) -> list[ChangeEvent]:
        """PostgreSQL: the events after ``after`` that no uncommitted number precedes:
        those numbered without a gap from ``after`` on, and any up to the safe horizon
        (see :class:`_Horizon`). Behind a gap, waits up to :data:`GAP_WAIT` for the
        writers in progress to finish."""
        assert self._horizon is not None
        d = self._d
        sql = d.sql(_FETCH)
        deadline = time.monotonic() + GAP_WAIT
        delay = 0.002
        while True:
            # Each statement on its own (the connection is in autocommit): it sees what
            # committed before it, one round trip, and the horizon is learned before the
            # rows are read again, so every row it covers is visible to that read.
            conn = d.connection()
            try:
                rows = conn.execute(sql, (after, limit)).fetchall()
                out = _without_gaps(rows, after, 0)
                if len(out) < len(rows):
                    horizon = self._horizon.current(conn)
                    reached = int(out[-1][0]) if out else after
                    if horizon > reached:
                        rows = conn.execute(sql, (after, limit)).fetchall()
                        out = _without_gaps(rows, after, horizon)
            except Exception:
                d.forget()  # a connection an error broke is not used again
                raise
            if len(out) == len(rows) or out or time.monotonic() >= deadline:
                return _events(out)
            time.sleep(delay)
            delay *= 2

    def advance(self, consumer: str, owner: str, seq: int, lease_seconds: float) -> bool:
        d = self._d
        with _bookkeeping(d) as conn:
            cur = conn.execute(
                d.sql(
                    "UPDATE scim_outbox_consumers SET position = ?, lease_until = ? "
                    "WHERE consumer = ? AND owner = ? AND position <= ?"
                ),
                (seq, time.time() + lease_seconds, consumer, owner, seq),
            )
            return bool(cur.rowcount == 1)

    def park(self, consumer: str, event: ChangeEvent, attempts: int, error: str) -> None:
        d = self._d
        with d.transaction(write=True) as conn:
            conn.execute(
                d.sql(
                    "INSERT INTO scim_outbox_failed "
                    "(consumer, seq, attempts, error, failed_at, event) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
                ),
                (consumer, event.seq, attempts, error[:2000], time.time(), event.to_json()),
            )

    def counts(self, consumers: Iterable[str] | None = None) -> dict[str, Counts]:
        d = self._d
        with d.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT c.consumer, "
                "(SELECT count(*) FROM scim_outbox o WHERE o.seq > c.position), "
                "(SELECT count(*) FROM scim_outbox_failed f WHERE f.consumer = c.consumer) "
                "FROM scim_outbox_consumers c ORDER BY c.consumer"
            ).fetchall()
        found = {name: Counts(int(p), int(f)) for name, p, f in rows}
        if consumers is None:
            return found
        return {name: found.get(name, Counts(0, 0)) for name in consumers}

    def failed(self, consumer: str | None = None, limit: int = 100) -> list[FailedEvent]:
        d = self._d
        sql = "SELECT consumer, seq, attempts, error, failed_at, event FROM scim_outbox_failed"
        params: list[Any] = []
        if consumer is not None:
            sql += " WHERE consumer = ?"
            params.append(consumer)
        with d.transaction(write=False) as conn:
            rows = conn.execute(
                d.sql(sql + " ORDER BY failed_at, seq LIMIT ?"), [*params, limit]
            ).fetchall()
        return [
            FailedEvent(name, ChangeEvent.from_json(text, seq=int(seq)), int(n), err, float(at))
            for name, seq, n, err, at, text in rows
        ]

    def prune(self) -> int:
        d = self._d
        with _bookkeeping(d) as conn:
            cur = conn.execute(
                "DELETE FROM scim_outbox WHERE seq <= "
                "(SELECT MIN(position) FROM scim_outbox_consumers)"
            )
            return int(cur.rowcount or 0)


_AUDIT_COLUMNS: Final = (
    "seq, time, principal, tenant, method, path, resource_type, resource_id, status, "
    "scim_type, request_id, duration_ms, change, exchange"
)


#: How an entry's ``change`` and ``exchange`` are stored (one encoder for all).
_ENCODE: Final = json.JSONEncoder(separators=(",", ":")).encode


class SQLAuditStore:
    """The :class:`~scim2_core.events.AuditStore` over ``scim_audit``."""

    def __init__(self, dialect: Dialect) -> None:
        self._d = dialect

    def append(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        d = self._d
        # Encoded before the transaction, so that it holds SQLite's one writer only for
        # the statements (a create waiting for it waits less).
        rows = [
            (
                e.time,
                e.principal,
                e.tenant,
                e.method,
                e.path,
                e.resource_type,
                e.resource_id,
                e.status,
                e.scim_type,
                e.request_id,
                e.duration_ms,
                None if e.change is None else _ENCODE(e.change),
                None if e.exchange is None else _ENCODE(e.exchange),
            )
            for e in entries
        ]
        marks = ", ".join("?" * 14)
        with _bookkeeping(d) as conn:
            row = conn.execute(
                d.sql("UPDATE scim_audit_head SET seq = seq + ? WHERE one = 1 RETURNING seq"),
                (len(rows),),
            ).fetchone()
            first = int(row[0]) - len(rows) + 1
            d.executemany(
                conn,
                f"INSERT INTO scim_audit ({_AUDIT_COLUMNS}) VALUES ({marks})",
                [(first + n, *r) for n, r in enumerate(rows)],
            )

    def query(self, query: AuditQuery) -> list[AuditEntry]:
        d = self._d
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("resource_id", query.resource_id),
            ("resource_type", query.resource_type),
            ("principal", query.principal),
            ("status", query.status),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.since is not None:
            where.append("time >= ?")
            params.append(query.since)
        if query.until is not None:
            where.append("time < ?")
            params.append(query.until)
        sql = f"SELECT {_AUDIT_COLUMNS} FROM scim_audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        order = " ORDER BY time DESC, seq DESC" if query.newest_first else " ORDER BY time, seq"
        with d.transaction(write=False) as conn:
            rows = conn.execute(
                d.sql(sql + order + " LIMIT ?"),
                [*params, query.limit],
            ).fetchall()
        return [
            AuditEntry(
                seq=int(r[0]),
                time=r[1],
                principal=r[2],
                tenant=r[3],
                method=r[4],
                path=r[5],
                resource_type=r[6],
                resource_id=r[7],
                status=int(r[8]),
                scim_type=r[9],
                request_id=r[10],
                duration_ms=float(r[11]),
                change=None if r[12] is None else json.loads(r[12]),
                exchange=None if r[13] is None else json.loads(r[13]),
            )
            for r in rows
        ]

    def prune(self, before: str) -> int:
        d = self._d
        with _bookkeeping(d) as conn:
            cur = conn.execute(d.sql("DELETE FROM scim_audit WHERE time < ?"), (before,))
            return int(cur.rowcount or 0)


#: The tables :class:`SQLEventStore` reads its counts and failed events from.
OUTBOX_TABLES: Final = ("scim_outbox", "scim_outbox_consumers", "scim_outbox_failed")
#: The table :class:`SQLAuditStore` reads.
AUDIT_TABLES: Final = ("scim_audit",)


def missing_tables(dialect: Dialect, tables: Iterable[str]) -> list[str]:
    """Which of ``tables`` the database ``dialect`` opens does not have (in the order
    given): a reader checks before it reads, to say what is missing rather than fail on
    its first query."""
    with dialect.reading() as conn:
        return [name for name in tables if not dialect.table_exists(conn, name)]
