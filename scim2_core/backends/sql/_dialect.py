"""The two SQL dialects :class:`~scim2_core.backends.SQLBackend` speaks, over their drivers.

SQLite goes through the standard library's :mod:`sqlite3`; PostgreSQL through psycopg 3,
imported only when a ``postgresql://`` URL is opened (it is the ``postgres`` extra). A
dialect owns: connecting, the DDL of each schema version, the placeholder style, and the
few spellings that differ (JSON access, row locking, string collation).

All SQL is written with ``?`` placeholders; the PostgreSQL dialect rewrites them to ``%s``.
No SQL text contains a literal ``?`` or ``%`` for that reason: every value is a parameter.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar, cast
from urllib.parse import unquote

from ..._errors import ConfigurationError, InvalidValueError

__all__ = [
    "Connection",
    "Dialect",
    "PostgresDialect",
    "SQLiteDialect",
    "open_dialect",
    "open_reader",
]

_T = TypeVar("_T")

#: Attempts of a write transaction the database aborted to break a deadlock.
_ATTEMPTS: Final = 5


class Connection(Protocol):
    """The slice of a DB-API connection the backend uses (sqlite3 and psycopg both fit)."""

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def close(self) -> None: ...


def _close_all(opened: list[Connection], lock: threading.RLock) -> None:
    """Close every connection on ``opened`` and empty it (the list object stays)."""
    with lock:
        conns = opened[:]
        opened.clear()
    for conn in conns:
        with contextlib.suppress(Exception):
            conn.close()


class _ThreadConnection:
    """Held in a thread's slot beside its connection; closes that connection when the slot
    is dropped: when the thread ends (``threading.local`` drops a finished thread's
    values), or by :meth:`Dialect.forget`."""

    __slots__ = ("conn", "lock", "opened")

    def __init__(self, conn: Connection, opened: list[Connection], lock: threading.RLock):
        self.conn, self.opened, self.lock = conn, opened, lock

    def close(self) -> None:
        """Take the connection off the dialect's list and close it (again: a no-op)."""
        # No module global here: this runs from __del__, maybe while the interpreter shuts
        # down.
        try:
            with self.lock:
                if self.conn in self.opened:
                    self.opened.remove(self.conn)
            self.conn.close()
        except Exception:  # pragma: no cover - a connection broken beyond closing
            pass

    __del__ = close


class Dialect:
    """What differs between SQLite and PostgreSQL, plus per-thread connections.

    Another backend's subclass, for the outbox and audit stores only, sets :attr:`name`,
    :attr:`begin_write` and :attr:`begin_read` and overrides :meth:`connect` and :meth:`sql`."""

    #: ``"sqlite"`` or ``"postgresql"``.
    name: str = ""
    #: The column type of ``fdoc`` and the placeholder that casts a JSON text parameter to it.
    json_type: str = "TEXT"
    json_param: str = "?"
    #: The statements that begin a write and a read transaction.
    begin_write: str = "BEGIN"
    begin_read: str = "BEGIN"
    #: Appended to the SELECT that loads a row an update is about to change.
    for_update: str = ""
    #: Appended to the SELECT that loads a row a delete is about to remove.
    for_delete: str = ""
    #: Appended to the SELECT that checks that new group members exist: it holds them until
    #: COMMIT, so a concurrent delete of a member either finished before (the member is
    #: gone) or waits for this commit (and then finds and removes the membership).
    key_share: str = ""
    #: Collation giving code point order for strings (Python's ``str`` order).
    collate: str = ""
    #: Whether ``:memory:``-style single shared connection mode is on (then a lock serialises).
    shared: bool = False
    #: How many rows of ``scim_counts`` hold one (tenant, type) count: writers pick one at
    #: random, so concurrent creates do not all wait for one row lock.
    count_slots: int = 1
    #: Run first in every schema-changing transaction, so that several processes starting
    #: at once on one new database create and migrate it one after the other. SQLite needs
    #: none: ``BEGIN IMMEDIATE`` already admits one writer at a time.
    schema_lock: str = ""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.RLock()
        self._shared_conn: Connection | None = None
        # A dialect dropped without close() (its backend never closed) closes what it
        # opened, rather than leave each connection to warn when it is collected.
        weakref.finalize(self, _close_all, self._all, self._lock)

    # --- connections ------------------------------------------------------------------
    def connect(self) -> Connection:  # pragma: no cover - overridden
        """A new connection, in autocommit (:meth:`transaction` begins and commits)."""
        raise NotImplementedError

    def sql(self, text: str) -> str:
        """``text`` (written with ``?`` placeholders) in the driver's parameter style."""
        return text

    def connection(self) -> Connection:
        """This thread's connection (one connection per thread; ``shared``: one in all)."""
        if self.shared:
            if self._shared_conn is None:
                self._shared_conn = self.connect()
                self._all.append(self._shared_conn)
            return self._shared_conn
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.connect()
            self._local.conn = conn
            # Closes it when this thread ends: a server that starts a thread per request
            # or connection would otherwise keep one open connection per thread it ran.
            self._local.closer = _ThreadConnection(conn, self._all, self._lock)
            with self._lock:
                self._all.append(conn)
        return conn

    def forget(self) -> None:
        """Drop this thread's connection (after an error that broke it)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        closer: _ThreadConnection = self._local.closer
        self._local.closer = None
        closer.close()

    def close(self) -> None:
        _close_all(self._all, self._lock)
        self._shared_conn = None
        self._local = threading.local()

    # --- transactions -----------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]:
        """One transaction on this thread's connection, committed when the block ends
        (rolled back if it raises)."""
        if self.shared:
            self._lock.acquire()
        try:
            conn = self.connection()
            try:
                conn.execute(self.begin_write if write else self.begin_read)
            except Exception:
                self.forget()
                if not _broken(conn):
                    raise
                # The server dropped the connection while it was idle (a restart, a
                # failover, an idle timeout): nothing of this transaction was sent yet,
                # so it begins again on a new one instead of failing the request.
                conn = self.connection()
                conn.execute(self.begin_write if write else self.begin_read)
            try:
                yield conn
            except BaseException:
                try:
                    conn.execute("ROLLBACK")
                except Exception:
                    self.forget()
                raise
            # Commit before returning: an acknowledged write is a committed write.
            conn.execute("COMMIT")
        finally:
            if self.shared:
                self._lock.release()

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """This thread's connection for a read that is ONE statement, run without
        ``BEGIN``/``COMMIT``: a single statement is its own consistent snapshot (SQLite;
        PostgreSQL in autocommit), so a transaction around it only adds round trips.
        Reads of several statements use :meth:`transaction` to share one snapshot."""
        if self.shared:
            self._lock.acquire()
        try:
            conn = self.connection()
            try:
                yield conn
            except BaseException:
                if _broken(conn):
                    self.forget()
                raise
        finally:
            if self.shared:
                self._lock.release()

    def fetch_one(self, sql: str, params: Sequence[Any]) -> Any:
        """The first row (or ``None``) of ONE statement run as :meth:`reading` runs it,
        without the generator of a context manager around it: the read of one resource by
        id, the most frequent request."""
        return self._one_read(sql, params, all_rows=False)

    def fetch_all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Every row of ONE statement, run as :meth:`fetch_one` runs it."""
        rows: list[Any] = self._one_read(sql, params, all_rows=True)
        return rows

    def _one_read(self, sql: str, params: Sequence[Any], *, all_rows: bool) -> Any:
        if self.shared:
            with self.reading() as shared:
                cursor = shared.execute(sql, params)
                return cursor.fetchall() if all_rows else cursor.fetchone()
        conn = self.connection()
        try:
            cursor = conn.execute(sql, params)
        except Exception:
            if not _broken(conn):
                raise
            # Dropped by the server while idle: the read runs again on a new connection
            # (one statement that changes nothing; a second failure is the answer).
            self.forget()
            cursor = self.connection().execute(sql, params)
        return cursor.fetchall() if all_rows else cursor.fetchone()

    def executemany(self, conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` once per row of ``rows``."""
        conn.executemany(self.sql(sql), rows)  # type: ignore[attr-defined]

    def copy_rows(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert ``rows`` (values of ``columns``, JSON as text) into ``table`` the fastest
        way the database takes many rows: one prepared INSERT here, COPY on PostgreSQL."""
        if not rows:
            return
        marks = ", ".join("?" * len(columns))
        self.executemany(conn, f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def retrying(self, attempt: Callable[[], _T]) -> _T:
        """Run one write transaction, again if the database aborted it to break a deadlock
        (PostgreSQL detects lock cycles, e.g. two renames swapping two userNames, and
        aborts one of them; run again, it either succeeds or meets a real conflict)."""
        for n in range(1, _ATTEMPTS + 1):
            try:
                return attempt()
            except Exception as exc:
                if n == _ATTEMPTS or not self.is_retryable(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def analyze(self, *, vacuum: bool = False, tables: Sequence[str] = ()) -> None:
        """Refresh planner statistics after a bulk change (see the PostgreSQL override);
        of ``tables`` only, when given."""

    def check_storable(self, text: str, doc: Any) -> None:
        """Raise a :class:`~scim2_core.ScimError` for a document the database cannot hold
        (``text`` is its JSON, ``doc`` the parsed form)."""

    # --- JSON spellings for the filter translator ---------------------------------------
    # ``alias`` None is the document root (``r.fdoc``); otherwise one element of an array
    # iterated by :meth:`elements` under that alias. ``keys`` is the path below it. Each
    # method appends the parameters its SQL uses to ``params``, in order.
    def scalar_text(self, alias: str | None, keys: tuple[str, ...], params: list[Any]) -> str:
        """The scalar at ``keys`` as a SQL value (SQLite: native; PostgreSQL: text)."""
        raise NotImplementedError  # pragma: no cover

    def is_object_at(self, alias: str | None, keys: tuple[str, ...], params: list[Any]) -> str:
        """Whether the value at ``keys`` is a JSON object (two-valued)."""
        raise NotImplementedError  # pragma: no cover

    def elements(
        self, alias: str | None, keys: tuple[str, ...], new_alias: str, params: list[Any]
    ) -> str:
        """A FROM item iterating the array at ``keys`` as ``new_alias``."""
        raise NotImplementedError  # pragma: no cover

    def element_is_object(self, alias: str) -> str:
        """Whether the element ``alias`` is a JSON object."""
        raise NotImplementedError  # pragma: no cover

    def present_tree(
        self,
        alias: str | None,
        keys: tuple[str, ...],
        assigned: bool,
        params: list[Any],
        fresh: Callable[[], str],
    ) -> str:
        """RFC 7644 Table 3 ``pr`` for any value (scalar, object or array) at ``keys``: some
        leaf beneath it is neither null nor the empty string. With ``assigned``: some leaf is
        not null (RFC 7643 §2.5 "assigned"; ``""`` counts). ``fresh()`` names a new alias."""
        raise NotImplementedError  # pragma: no cover

    def boolean_is(
        self, alias: str | None, keys: tuple[str, ...], want: bool, params: list[Any]
    ) -> str:
        """Whether the value at ``keys`` is the JSON boolean ``want`` (two-valued)."""
        raise NotImplementedError  # pragma: no cover

    def compare_number(self, text: str, op: str, literal: float, params: list[Any]) -> str:
        """``text`` (from :meth:`scalar_text`) ``op`` the number ``literal``, numerically."""
        raise NotImplementedError  # pragma: no cover

    def compare_string(self, text: str, op: str, literal: str, params: list[Any]) -> str:
        """``text`` ``op`` ``literal`` in code point order; ``co``/``sw``/``ew`` by substring."""
        raise NotImplementedError  # pragma: no cover

    def refuses_literal(self, value: object) -> str | None:
        """Why a filter literal cannot be compared here (None: it can)."""
        return None

    def sort_scalar(self, keys: tuple[str, ...], params: list[Any]) -> str:
        """The scalar at ``keys`` of the document, for ORDER BY."""
        raise NotImplementedError  # pragma: no cover

    def sort_first(
        self, keys: tuple[str, ...], sub: str | None, type: str, params: list[Any]
    ) -> str:
        """RFC 7644 §3.4.2.3 for a multi-valued attribute: the "primary" element's value,
        else the first element's (``sub`` of it, or the element itself), of ``type``."""
        raise NotImplementedError  # pragma: no cover

    def sort_typed(self, expr: str, type: str) -> str:
        """``expr`` (from the two above) cast so it sorts as a value of ``type``."""
        return expr

    # --- schema -----------------------------------------------------------------------
    def table_exists(self, conn: Connection, table: str) -> bool:  # pragma: no cover
        raise NotImplementedError

    def ddl(self, statement: str) -> str:
        return statement.format(json=self.json_type)

    # --- JSON access (paths are passed as parameters) ---------------------------------
    def json_path(self, keys: Sequence[str]) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def is_integrity_error(self, exc: BaseException) -> bool:  # pragma: no cover
        raise NotImplementedError

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether ``exc`` aborted a transaction that can simply run again."""
        return False

    def plan_statistics(self, conn: Connection) -> None:
        """Give the query planner the shape of the data (see the SQLite override)."""

    def id_set(self, ids: Sequence[str]) -> tuple[str, Any]:
        """``(sql, param)``: ``IN (...)`` over ``ids`` as one parameter, for a set of any
        size in one statement (the chunked ``IN (?, ?, ...)`` lists cost one each)."""
        raise NotImplementedError  # pragma: no cover - overridden

    def members_array_sql(self) -> str:
        """One JSON array text of a group's members in list order; parameters: tenant,
        group id (one parse of one text instead of one per member)."""
        raise NotImplementedError  # pragma: no cover - overridden

    def groups_array_sql(self, tenant: str = "?", member: str = "?") -> str:
        """One JSON array text of ``[group id, display]`` pairs, one per group the resource is
        a member of, in no particular order (``NULL`` or ``[]`` for none), for the
        ``tenant`` and ``member`` id given as SQL (parameters by default, or the columns of
        an outer row). A scalar subquery of a read (``SQLBackend.get_with_groups``)."""
        raise NotImplementedError  # pragma: no cover - overridden

    def insert_members_sql(self, *, checked: bool = False) -> str:
        """``INSERT INTO scim_members`` of a whole list in one statement; parameters:
        tenant, group id, the first position, then :meth:`member_pairs`. ``checked``: only
        the members that are resources of the tenant (one more parameter, the tenant) are
        inserted, their rows locked ``FOR KEY SHARE`` in id order (PostgreSQL), so the
        statement is the check that they exist (its row count says whether all do)."""
        raise NotImplementedError  # pragma: no cover - overridden

    def member_pairs(self, entries: Sequence[Any], folded: Sequence[Any]) -> tuple[Any, ...]:
        """The parameters of :meth:`insert_members_sql` that carry the members and their
        folded forms (element for element); :meth:`check_storable` refuses members the
        database cannot hold."""
        text = json.dumps(list(entries), ensure_ascii=False)
        self.check_storable(text, entries)
        return text, json.dumps(list(folded), ensure_ascii=False)

    def digits_only(self, text: str) -> str:
        """SQL: whether the text ``text`` is one or more ASCII digits."""
        return f"({text} <> '' AND {text} NOT GLOB '*[^0-9]*')"

    def touch_sql(self, where: str) -> str:
        """The statement giving each resource of ``scim_resources r`` that ``where`` (a
        condition on ``r``) selects the next ``meta.version`` and ``meta.lastModified`` =
        the first parameter, in its ``scim_versions`` row (schema version 10; the
        parameters of ``where`` follow). Reads take that row over ``scim_resources``'
        version and ``doc``'s ``meta`` (see :func:`._rows.merge_meta`): neither the
        resource's row nor its documents are rewritten."""
        # version_number/next_version of scim2_core.schema, in SQL: 'W/"n"' -> 'W/"n+1"',
        # anything unparseable counting as 0.
        text = (
            "trim(CASE WHEN substr(version, 1, 2) = 'W/' THEN substr(version, 3) "
            "ELSE version END, '\"')"
        )
        number = f"(CASE WHEN {self.digits_only(text)} THEN CAST({text} AS BIGINT) ELSE 0 END)"
        next_version = f"'W/\"' || CAST({number} + 1 AS TEXT) || '\"'"
        version = self.next_version_sql(next_version)
        # ``WHERE true``: SQLite reads an upsert's SELECT without a WHERE as ambiguous.
        return (
            "INSERT INTO scim_versions (tenant, id, version, modified) "
            f"SELECT t.tenant, t.id, {version}, ? FROM (SELECT r.tenant, r.id, "
            "COALESCE(v.version, r.version) AS version FROM scim_resources r "
            "LEFT JOIN scim_versions v ON v.tenant = r.tenant AND v.id = r.id "
            f"WHERE {where}) AS t WHERE true ON CONFLICT (tenant, id) DO UPDATE SET "
            "version = excluded.version, modified = excluded.modified"
        )

    def next_version_sql(self, general: str) -> str:
        """The SQL expression of :meth:`touch_sql`'s next version, given the ``general``
        one (which reads any version)."""
        return general

    def members_fdoc(self, sql: str) -> str:
        """``sql`` with every ``r.fdoc`` reading a group's folded document *with* its
        members (from ``scim_members``, in list order): for filters and sorts on members
        other than ``members.value eq``, which probe the membership index directly."""
        raise NotImplementedError  # pragma: no cover - overridden


class SQLiteDialect(Dialect):
    name = "sqlite"
    begin_write = "BEGIN IMMEDIATE"
    begin_read = "BEGIN"
    collate = ""

    def __init__(self, path: str, *, synchronous: str, busy_timeout: float) -> None:
        super().__init__()
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ConfigurationError("synchronous must be 'FULL', 'NORMAL' or 'EXTRA'")
        self.path = path
        #: The file as the first connection opens it (the WAL index beside it is read
        #: later, whatever the working directory is by then).
        self.file = os.path.abspath(path) if path not in ("", ":memory:") else ""
        self.synchronous = synchronous.upper()
        self.busy_timeout = busy_timeout
        self.memory = path in ("", ":memory:")
        self.shared = self.memory

    def connect(self) -> Connection:
        conn = sqlite3.connect(
            self.path or ":memory:",
            timeout=self.busy_timeout,
            isolation_level=None,  # autocommit: transactions are begun explicitly
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        if not self.memory:
            # WAL: readers never block the writer; safe for several processes on one file.
            mode = self._switch_to_wal(conn)
            if str(mode).lower() != "wal":  # pragma: no cover - e.g. a network filesystem
                raise ConfigurationError(f"SQLite refused WAL mode for {self.path!r}")
        # FULL: the WAL is fsynced at every commit, so an acknowledged write survives a
        # kill -9 of the process and a power loss; NORMAL survives the former only.
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        return conn

    def change_token(self) -> Hashable:
        """A value equal between two calls on one thread only if nothing was written in
        between, by this process or another.

        On a file, the WAL-index header this thread's connection shares with every other
        connection to the file (:func:`_wal_index_header`): no statement and no system call.
        Otherwise (an in-memory database, a header being rewritten at that moment, a platform
        without the mapping), this thread's connection, its ``PRAGMA data_version``
        ("different if changes were committed to the database by any other connection in the
        interim", https://www.sqlite.org/pragma.html#pragma_data_version: other threads and
        other processes) and its ``total_changes`` (the rows its own statements changed,
        which ``data_version`` leaves out). Either holds the connection itself, not its id,
        so a token never matches one of a connection opened later, and the two kinds never
        match each other."""
        if self.shared:
            with self.reading() as conn:
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                return (conn, version, cast(sqlite3.Connection, conn).total_changes)
        local = self._local
        conn = getattr(local, "conn", None) or self.connection()
        index: _WalIndex | None = getattr(local, "wal_index", None)
        if index is not None and index.conn is conn:
            header = index.header()
            if header is not None:
                return (conn, header)
        cursor = getattr(local, "version_cursor", None)
        if cursor is None or cursor.connection is not conn:
            # One cursor per connection, kept: the pragma is asked on every repeated GET.
            cursor = local.version_cursor = cast(sqlite3.Connection, conn).cursor()
        version = cursor.execute("PRAGMA data_version").fetchone()[0]
        if index is None or index.conn is not conn:
            # After a statement, so that this connection has opened the WAL index itself.
            index = local.wal_index = _WalIndex.open(self.file, conn)
            header = index.header() if index is not None else None
            if header is not None:
                return (conn, header)
        return (conn, version, cast(sqlite3.Connection, conn).total_changes)

    def _switch_to_wal(self, conn: Connection) -> str:
        """``PRAGMA journal_mode = WAL``, waiting up to ``busy_timeout`` for a lock.

        On a new (empty) database file the switch fails at once with "database is locked"
        while another process holds the write lock to create the schema: SQLite does not
        call the busy handler for it. Several servers started together on a new file hit
        exactly that, so the switch is retried here until ``busy_timeout`` has passed, as
        the busy handler would have waited.
        """
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.001
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def table_exists(self, conn: Connection, table: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return row is not None

    def plan_statistics(self, conn: Connection) -> None:
        """Write fixed planner statistics unless the database has real ones.

        Without statistics SQLite guesses, and it guesses that scanning the (tenant, type,
        created) index beats following ids from scim_lookup into the primary key, which
        makes ``userName eq`` linear in the directory size. The statistics below state
        the shape that holds at any size: one tenant and type hold every row, an id or a
        looked-up value names one row ("Manual Control Of Query Plans Using SQLITE_STAT
        Tables", https://sqlite.org/optoverview.html#manctrl). A later ``ANALYZE`` replaces
        them with measured ones, which say the same.
        """
        conn.execute("ANALYZE sqlite_schema")  # creates sqlite_stat1 if missing
        row = conn.execute(
            "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'scim_resources'"
        ).fetchone()
        if row[0]:
            return
        stats = [
            ("scim_resources", "sqlite_autoindex_scim_resources_1", "1000000 1000000 1"),
            ("scim_resources", "scim_resources_order", "1000000 1000000 1000000 2 1"),
            (
                "scim_lookup",
                "sqlite_autoindex_scim_lookup_1",
                "3000000 3000000 3000000 1000000 1 1",
            ),
            ("scim_lookup", "scim_lookup_owner", "3000000 3000000 3"),
            ("scim_unique", "sqlite_autoindex_scim_unique_1", "1000000 1000000 1000000 1000000 1"),
            ("scim_unique", "scim_unique_owner", "1000000 1000000 1"),
            ("scim_members", "sqlite_autoindex_scim_members_1", "1000000 1000000 100 1"),
            ("scim_members", "scim_members_by_member", "1000000 1000000 10 1"),
            ("scim_members", "scim_members_order", "1000000 1000000 100 1"),
        ]
        conn.execute("DELETE FROM sqlite_stat1 WHERE tbl LIKE 'scim_%'")
        insert = "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)"
        conn.executemany(insert, stats)  # type: ignore[attr-defined]
        conn.execute("ANALYZE sqlite_schema")  # reload them

    def id_set(self, ids: Sequence[str]) -> tuple[str, Any]:
        return "IN (SELECT value FROM json_each(?))", json.dumps(list(ids))

    def members_array_sql(self) -> str:
        return (
            "SELECT json_group_array(json(x.entry)) FROM (SELECT entry FROM scim_members "
            "WHERE tenant = ? AND group_id = ? ORDER BY pos) AS x"
        )

    def groups_array_sql(self, tenant: str = "?", member: str = "?") -> str:
        return (
            "SELECT json_group_array(json_array(g.id, g.display)) FROM scim_members m "
            "JOIN scim_resources g ON g.tenant = m.tenant AND g.id = m.group_id "
            f"WHERE m.tenant = {tenant} AND m.member_id = {member}"
        )

    def insert_members_sql(self, *, checked: bool = False) -> str:
        # One array of [member, folded member] pairs (two arrays joined by position would
        # be a nested loop); json_extract gives an object's own text, key order kept.
        sql = (
            "INSERT INTO scim_members (tenant, group_id, member_id, pos, entry, fentry) "
            "SELECT ?, ?, json_extract(e.value, '$[0].value'), ? + e.key, "
            "json_extract(e.value, '$[0]'), json_extract(e.value, '$[1]') FROM json_each(?) AS e"
        )
        if checked:  # one primary-key probe per member (SQLite has one writer: no lock)
            sql += (
                " JOIN scim_resources r ON r.tenant = ? "
                "AND r.id = json_extract(e.value, '$[0].value')"
            )
        return sql

    def member_pairs(self, entries: Sequence[Any], folded: Sequence[Any]) -> tuple[Any, ...]:
        return (json.dumps(list(zip(entries, folded, strict=True)), ensure_ascii=False),)

    def next_version_sql(self, general: str) -> str:
        # The versions the engine writes ('W/"n"') take a shorter expression than the
        # general one (10k touched members cost a fifth less); any other goes that way.
        digits = "substr(version, 4, length(version) - 4)"
        return (
            f"CASE WHEN version GLOB 'W/\"[0-9]*\"' AND {digits} NOT GLOB '*[^0-9]*' "
            f"THEN 'W/\"' || CAST(CAST({digits} AS BIGINT) + 1 AS TEXT) || '\"' "
            f"ELSE {general} END"
        )

    def members_fdoc(self, sql: str) -> str:
        members = (
            "json_set(r.fdoc, '$.members', json((SELECT json_group_array(json(x.fentry)) "
            "FROM (SELECT mm.fentry FROM scim_members mm WHERE mm.tenant = r.tenant "
            "AND mm.group_id = r.id ORDER BY mm.pos) AS x)))"
        )
        return sql.replace("r.fdoc", members)

    # --- JSON spellings (JSON1: json_extract, json_each, json_tree) -------------------
    def _root(self, alias: str | None) -> str:
        return "r.fdoc" if alias is None else f"{alias}.value"

    def scalar_text(self, alias: str | None, keys: tuple[str, ...], params: list[Any]) -> str:
        if alias is not None and not keys:
            return f"{alias}.atom"
        params.append(self.json_path(keys))
        return f"json_extract({self._root(alias)}, ?)"

    def is_object_at(self, alias: str | None, keys: tuple[str, ...], params: list[Any]) -> str:
        if alias is not None and not keys:
            return f"COALESCE({alias}.type = 'object', FALSE)"
        params.append(self.json_path(keys))
        return f"COALESCE(json_type({self._root(alias)}, ?) = 'object', FALSE)"

    def elements(
        self, alias: str | None, keys: tuple[str, ...], new_alias: str, params: list[Any]
    ) -> str:
        params.append(self.json_path(keys))
        return f"json_each({self._root(alias)}, ?) AS {new_alias}"

    def element_is_object(self, alias: str) -> str:
        return f"{alias}.type = 'object'"

    def present_tree(
        self,
        alias: str | None,
        keys: tuple[str, ...],
        assigned: bool,
        params: list[Any],
        fresh: Callable[[], str],
    ) -> str:
        at = alias if alias is not None and not keys else fresh()
        leaf = (
            f"{at}.type IN ('true', 'false', 'integer', 'real', 'text')"
            if assigned
            else f"({at}.type IN ('true', 'false', 'integer', 'real') OR "
            f"({at}.type = 'text' AND {at}.atom <> ''))"
        )
        if alias is not None and not keys:
            return f"({leaf})"  # one scalar element of an array of scalars
        params.append(self.json_path(keys))
        return f"EXISTS (SELECT 1 FROM json_tree({self._root(alias)}, ?) AS {at} WHERE {leaf})"

    def boolean_is(
        self, alias: str | None, keys: tuple[str, ...], want: bool, params: list[Any]
    ) -> str:
        if alias is not None and not keys:
            kind = f"{alias}.type"
        else:
            params.append(self.json_path(keys))
            kind = f"json_type({self._root(alias)}, ?)"
        params.append("true" if want else "false")
        return f"COALESCE({kind} = ?, FALSE)"

    def compare_number(self, text: str, op: str, literal: float, params: list[Any]) -> str:
        params.append(literal)
        return f"COALESCE({text} {SQL_OPS[op]} ?, FALSE)"

    def compare_string(self, text: str, op: str, literal: str, params: list[Any]) -> str:
        if op in SQL_OPS:
            params.append(literal)
            return f"COALESCE({text} {SQL_OPS[op]} ?, FALSE)"
        # instr/substr count characters (code points) like Python's str, and do not fold
        # case (SQLite's LIKE folds ASCII case), so no pattern escaping is needed.
        if op == "co":
            params.append(literal)
            return f"COALESCE(instr({text}, ?) > 0, FALSE)"
        if not literal:
            return f"COALESCE(typeof({text}) = 'text', FALSE)"
        if op == "sw":
            params.extend((len(literal), literal))
            return f"COALESCE(substr({text}, 1, ?) = ?, FALSE)"
        params.extend((-len(literal), literal))
        return f"COALESCE(substr({text}, ?) = ?, FALSE)"

    def sort_scalar(self, keys: tuple[str, ...], params: list[Any]) -> str:
        params.append(self.json_path(keys))
        return "json_extract(r.fdoc, ?)"

    def sort_first(
        self, keys: tuple[str, ...], sub: str | None, type: str, params: list[Any]
    ) -> str:
        if sub is not None:
            value = "CASE WHEN e.type = 'object' THEN json_extract(e.value, ?) END"
            params.append(self.json_path((sub,)))
        else:
            value = "e.atom"
        params.extend((self.json_path(keys), self.json_path(("primary",))))
        return (
            f"(SELECT {value} FROM json_each(r.fdoc, ?) AS e ORDER BY "
            "COALESCE(CASE WHEN e.type = 'object' THEN json_type(e.value, ?) END "
            "= 'true', 0) DESC, e.key LIMIT 1)"
        )

    def json_path(self, keys: Sequence[str]) -> str:
        # SQLite JSON path: $."key"."sub". Keys are canonical schema names; they never
        # contain a double quote (checked when the backend binds the resource types).
        return "$" + "".join(f'."{k}"' for k in keys)

    def is_integrity_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)


#: RFC 7644 Table 3 comparison operators spelled in SQL.
SQL_OPS: Final = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}

#: Some leaf of a JSON value is a boolean, a number or a non-empty string (``pr``). A
#: parameter, because a jsonpath filter is spelled with ``?``.
_PG_PRESENT: Final = (
    'strict $.** ? (@.type() == "boolean" || @.type() == "number" '
    '|| (@.type() == "string" && @ != ""))'
)
_PG_ASSIGNED: Final = (
    'strict $.** ? (@.type() == "boolean" || @.type() == "number" || @.type() == "string")'
)


def _like_escape(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused for a lock another connection holds (SQLITE_BUSY)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF == sqlite3.SQLITE_BUSY
    return "locked" in str(exc)  # pragma: no cover - Python < 3.11


_IDENT: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresDialect(Dialect):
    name = "postgresql"
    json_type = "JSONB"
    json_param = "CAST(? AS JSONB)"
    begin_write = "BEGIN"
    begin_read = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    # Row lock levels ("Row-Level Locks"): FOR NO KEY UPDATE (an update) does not conflict
    # with FOR KEY SHARE (a group adding this resource as a member); FOR UPDATE (a delete)
    # does. SQLite needs none: BEGIN IMMEDIATE admits one writer at a time.
    for_update = " FOR NO KEY UPDATE"
    for_delete = " FOR UPDATE"
    key_share = " FOR KEY SHARE"
    count_slots = 16
    collate = ' COLLATE "C"'
    # A transaction-level advisory lock (released at COMMIT/ROLLBACK); the key is a fixed
    # 64-bit number naming "the scim2-core schema" (hashtext is not stable across versions).
    schema_lock = "SELECT pg_advisory_xact_lock(7236286410385219585)"

    def __init__(self, url: str, *, schema: str | None, connect_timeout: float) -> None:
        super().__init__()
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigurationError(
                "PostgreSQL needs psycopg 3: pip install 'scim2-core[postgres]'"
            ) from exc
        if schema is not None and not _IDENT.match(schema):
            raise ConfigurationError(f"schema must be a plain SQL identifier, got {schema!r}")
        self._psycopg = psycopg
        self.url = url
        self.schema = schema
        self.connect_timeout = connect_timeout
        self._sql_cache: dict[str, str] = {}

    def connect(self) -> Connection:
        conn = self._psycopg.connect(
            self.url, autocommit=True, connect_timeout=max(1, int(self.connect_timeout))
        )
        if self.schema is not None:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            conn.execute(f'SET search_path TO "{self.schema}"')
        return conn

    def sql(self, text: str) -> str:
        out = self._sql_cache.get(text)
        if out is None:
            out = self._sql_cache[text] = text.replace("?", "%s")
        return out

    def table_exists(self, conn: Connection, table: str) -> bool:
        row = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        return row is not None and row[0] is not None

    def json_path(self, keys: Sequence[str]) -> list[str]:
        return list(keys)

    def id_set(self, ids: Sequence[str]) -> tuple[str, Any]:
        return "= ANY(CAST(? AS text[]))", list(ids)

    def members_array_sql(self) -> str:
        return (
            "SELECT CAST(COALESCE(json_agg(CAST(entry AS json) ORDER BY pos), '[]') AS text) "
            "FROM scim_members WHERE tenant = ? AND group_id = ?"
        )

    def groups_array_sql(self, tenant: str = "?", member: str = "?") -> str:
        return (
            "SELECT CAST(json_agg(json_build_array(g.id, g.display)) AS text) "
            "FROM scim_members m JOIN scim_resources g "
            "ON g.tenant = m.tenant AND g.id = m.group_id "
            f"WHERE m.tenant = {tenant} AND m.member_id = {member}"
        )

    def insert_members_sql(self, *, checked: bool = False) -> str:
        # json (not jsonb) elements keep their text as sent: key order and spelling.
        sql = (
            "INSERT INTO scim_members (tenant, group_id, member_id, pos, entry, fentry) "
            "SELECT ?, ?, e.v ->> 'value', CAST(? AS bigint) + e.n - 1, e.v::text, f.v "
            "FROM json_array_elements(CAST(? AS json)) WITH ORDINALITY AS e(v, n) "
            "JOIN jsonb_array_elements(CAST(? AS jsonb)) WITH ORDINALITY AS f(v, n) "
            "ON f.n = e.n"
        )
        if checked:  # the lock order of every write: members by id
            sql += (
                " JOIN scim_resources r ON r.tenant = ? AND r.id = e.v ->> 'value' "
                "ORDER BY r.id FOR KEY SHARE OF r"
            )
        return sql

    def digits_only(self, text: str) -> str:
        return f"({text} ~ '^[0-9]+$')"

    def members_fdoc(self, sql: str) -> str:
        members = (
            "jsonb_set(r.fdoc, '{members}', COALESCE((SELECT jsonb_agg(mm.fentry "
            "ORDER BY mm.pos) FROM scim_members mm WHERE mm.tenant = r.tenant "
            "AND mm.group_id = r.id), '[]'::jsonb))"
        )
        return sql.replace("r.fdoc", members)

    # --- JSON spellings (jsonb operators and SQL/JSON path) ---------------------------
    def _root(self, alias: str | None) -> str:
        return "r.fdoc" if alias is None else f"{alias}.v"

    def _at(self, alias: str | None, keys: tuple[str, ...], params: list[Any]) -> str:
        """The jsonb at ``keys``."""
        if not keys:
            return self._root(alias)
        params.append(self.json_path(keys))
        return f"({self._root(alias)} #> CAST(? AS text[]))"

    def scalar_text(self, alias: str | None, keys: tuple[str, ...], params: list[Any]) -> str:
        if not keys:
            return f"({self._root(alias)} #>> '{{}}')"
        params.append(self.json_path(keys))
        return f"({self._root(alias)} #>> CAST(? AS text[]))"

    def is_object_at(self, alias: str | None, keys: tuple[str, ...], params: list[Any]) -> str:
        return f"COALESCE(jsonb_typeof({self._at(alias, keys, params)}) = 'object', FALSE)"

    def elements(
        self, alias: str | None, keys: tuple[str, ...], new_alias: str, params: list[Any]
    ) -> str:
        params.append(self.json_path(keys))
        return (
            f"jsonb_path_query({self._root(alias)} #> CAST(? AS text[]), 'strict $[*]', "
            f"'{{}}', true) AS {new_alias}(v)"
        )

    def element_is_object(self, alias: str) -> str:
        return f"jsonb_typeof({alias}.v) = 'object'"

    def present_tree(
        self,
        alias: str | None,
        keys: tuple[str, ...],
        assigned: bool,
        params: list[Any],
        fresh: Callable[[], str],
    ) -> str:
        params.extend((self.json_path(keys), _PG_ASSIGNED if assigned else _PG_PRESENT))
        return (
            f"COALESCE(jsonb_path_exists({self._root(alias)} #> CAST(? AS text[]), "
            "CAST(? AS jsonpath), '{}', true), FALSE)"
        )

    def boolean_is(
        self, alias: str | None, keys: tuple[str, ...], want: bool, params: list[Any]
    ) -> str:
        expr = self._at(alias, keys, params)
        params.append("true" if want else "false")
        return f"COALESCE({expr} = CAST(? AS jsonb), FALSE)"

    def compare_number(self, text: str, op: str, literal: float, params: list[Any]) -> str:
        params.append(json.dumps(literal))
        return f"COALESCE(CAST({text} AS numeric) {SQL_OPS[op]} CAST(? AS numeric), FALSE)"

    def compare_string(self, text: str, op: str, literal: str, params: list[Any]) -> str:
        text = f"{text}{self.collate}"
        if op in SQL_OPS:
            params.append(literal)
            return f"COALESCE({text} {SQL_OPS[op]} ?, FALSE)"
        pattern = _like_escape(literal)
        params.append({"co": f"%{pattern}%", "sw": f"{pattern}%", "ew": f"%{pattern}"}[op])
        return f"COALESCE({text} LIKE ? ESCAPE '!', FALSE)"

    def refuses_literal(self, value: object) -> str | None:
        if isinstance(value, str) and "\x00" in value:
            return "PostgreSQL cannot compare strings containing U+0000."
        return None

    def sort_scalar(self, keys: tuple[str, ...], params: list[Any]) -> str:
        params.append(self.json_path(keys))
        return "(r.fdoc #>> CAST(? AS text[]))"

    def sort_first(
        self, keys: tuple[str, ...], sub: str | None, type: str, params: list[Any]
    ) -> str:
        value = "(e.v ->> ?)" if sub is not None else "(e.v #>> '{}')"
        if sub is not None:
            params.append(sub)
        params.extend((self.json_path(keys), "primary"))
        return (
            f"(SELECT {self.sort_typed(value, type)} FROM jsonb_path_query("
            "r.fdoc #> CAST(? AS text[]), 'strict $[*]', '{}', true) "
            "WITH ORDINALITY AS e(v, n) ORDER BY COALESCE(jsonb_typeof(e.v) = 'object' "
            "AND (e.v -> ?) = 'true'::jsonb, FALSE) DESC, e.n LIMIT 1)"
        )

    def sort_typed(self, expr: str, type: str) -> str:
        if type in ("integer", "decimal"):
            return f"CAST({expr} AS numeric)"
        if type == "boolean":
            return f"CAST({expr} AS boolean)"
        return f"{expr}{self.collate}"

    def executemany(self, conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with conn.cursor() as cur:  # type: ignore[attr-defined]
            cur.executemany(self.sql(sql), rows)

    def copy_rows(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if not rows:
            return
        with (
            conn.cursor() as cur,  # type: ignore[attr-defined]
            cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def analyze(self, *, vacuum: bool = False, tables: Sequence[str] = ()) -> None:
        """Refresh planner statistics, so that a freshly loaded table is searched through
        its indexes (before autovacuum gets to it, the planner assumes an empty table and
        scans). ``vacuum`` (after a bulk load) also sets the visibility map, so that
        counting and paging can read the indexes alone."""
        conn = self.connection()
        command = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
        for table in tables or ("scim_resources", "scim_lookup", "scim_members", "scim_unique"):
            conn.execute(f"{command} {table}")

    def check_storable(self, text: str, doc: Any) -> None:
        if "\\u0000" in text and _has_nul(doc):
            # PostgreSQL text and jsonb cannot hold U+0000.
            raise InvalidValueError("Values cannot contain the character U+0000.")

    def is_integrity_error(self, exc: BaseException) -> bool:
        return isinstance(exc, self._psycopg.errors.IntegrityError)

    def is_retryable(self, exc: BaseException) -> bool:
        # 40P01 deadlock_detected, 40001 serialization_failure (Appendix A, error codes).
        return getattr(exc, "sqlstate", None) in ("40P01", "40001")


def open_dialect(
    url: str,
    *,
    synchronous: str = "FULL",
    busy_timeout: float = 30.0,
    schema: str | None = None,
) -> Dialect:
    """The dialect for ``url``: ``sqlite:///relative.db``, ``sqlite:////abs.db``,
    ``sqlite:///:memory:`` or ``postgresql://user@host:port/db``."""
    if not isinstance(url, str):
        raise ConfigurationError(f"the database URL must be a string, got {url!r}")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower().split("+", 1)[0]
    if not sep:
        raise ConfigurationError(f"not a database URL: {url!r}")
    if scheme == "sqlite":
        if schema is not None:
            raise ConfigurationError("the schema option is for PostgreSQL only")
        path = rest[1:] if rest.startswith("/") else rest
        path = unquote(path.split("?", 1)[0])
        return SQLiteDialect(path, synchronous=synchronous, busy_timeout=busy_timeout)
    if scheme in ("postgresql", "postgres"):
        return PostgresDialect("postgresql://" + rest, schema=schema, connect_timeout=busy_timeout)
    raise ConfigurationError(f"unsupported database URL scheme {scheme!r} (sqlite, postgresql)")


class _SQLiteReader(SQLiteDialect):
    """A SQLite dialect that reads a file some other program owns: it never creates the
    file, never writes (``PRAGMA query_only``) and leaves the journal mode and every other
    setting of the database as they are (no switch to WAL, no ``synchronous``)."""

    def connect(self) -> Connection:
        # mode=rw: the file must exist (never created); SQLite opens it read-only when the
        # file is write-protected. Not mode=ro: a read-only connection cannot remove the
        # -wal and -shm files of a WAL database when it closes, and would leave them behind.
        uri = Path(self.path).absolute().as_uri() + "?mode=rw"
        conn = sqlite3.connect(
            uri, uri=True, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA query_only = ON")  # this connection only
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        except BaseException:
            conn.close()
            raise
        return conn


class _PostgresReader(PostgresDialect):
    """A PostgreSQL dialect whose sessions are read-only and create nothing (not even the
    schema :class:`PostgresDialect` creates when it is missing)."""

    def connect(self) -> Connection:
        conn: Connection = self._psycopg.connect(
            self.url, autocommit=True, connect_timeout=max(1, int(self.connect_timeout))
        )
        try:
            conn.execute("SET default_transaction_read_only = on")  # this session only
            if self.schema is not None:
                conn.execute(f'SET search_path TO "{self.schema}"')
        except BaseException:
            conn.close()
            raise
        return conn


def open_reader(url: str, *, schema: str | None = None, busy_timeout: float = 30.0) -> Dialect:
    """A dialect for reading ``url`` (``sqlite:///path`` or ``postgresql://``) without
    changing it: for tools that look at a database an application owns (the
    ``scim2-core events`` and ``audit`` commands over an ORM backend's outbox).

    Unlike :func:`open_dialect` it creates nothing (no SQLite file, no PostgreSQL schema),
    writes nothing, and changes no setting of the database (SQLite's journal mode stays
    what the application chose). A SQLite file that does not exist is a
    :class:`~scim2_core.ConfigurationError` naming it."""
    found = open_dialect(url, busy_timeout=busy_timeout, schema=schema)
    if isinstance(found, SQLiteDialect):
        if found.memory:
            raise ConfigurationError("an in-memory SQLite database has nothing to read")
        if not Path(found.path).is_file():
            raise ConfigurationError(f"no database file {found.path!r}")
        return _SQLiteReader(found.path, synchronous="FULL", busy_timeout=busy_timeout)
    assert isinstance(found, PostgresDialect)
    return _PostgresReader(found.url, schema=schema, connect_timeout=busy_timeout)


def _broken(conn: Connection) -> bool:
    """Whether ``conn`` is a PostgreSQL connection the server (or the network) has closed:
    psycopg marks it ``closed`` once an operation on it failed that way. SQLite's
    connections have no such state."""
    return bool(getattr(conn, "closed", False))


#: The WAL indexes this process mapped, by (device, inode), with their descriptors: never
#: closed. POSIX drops every lock a process holds on a file when it closes ANY descriptor
#: of that file, SQLite's own included: its "DMS" lock on ``<file>-shm`` tells the next
#: process that opens the database that the index is in use. Without it, that process
#: takes itself for the first, truncates and rebuilds the index under this one's open
#: connections (SIGBUS in this one's next transaction, or a wrong read). SQLite keeps its
#: own descriptors of a locked file open for that reason
#: (https://www.sqlite.org/howtocorrupt.html, section 2.2); ``mmap`` holds a duplicate of
#: the descriptor it maps, which it closes with the map, so both are kept.
_SHM_MAPS: dict[tuple[int, int], tuple[int, mmap.mmap]] = {}
_SHM_LOCK = threading.Lock()


def _shm_map(path: str, size: int) -> mmap.mmap:
    """The first ``size`` bytes of ``path`` (a WAL index), mapped read-only, once per file
    and process (see :data:`_SHM_MAPS`)."""
    with _SHM_LOCK:
        st = os.stat(path)
        kept = _SHM_MAPS.get((st.st_dev, st.st_ino))
        if kept is not None:
            return kept[1]
        fd = os.open(path, os.O_RDONLY)  # never closed: see _SHM_MAPS
        st = os.fstat(fd)
        kept = _SHM_MAPS.get((st.st_dev, st.st_ino))
        if kept is None:  # else replaced between the stat and the open: fd stays unused
            kept = _SHM_MAPS[st.st_dev, st.st_ino] = (
                fd,
                mmap.mmap(fd, size, access=mmap.ACCESS_READ),
            )
        return kept[1]


class _WalIndex:
    """The first bytes of a SQLite file's WAL index (``<file>-shm``), mapped read-only.

    https://www.sqlite.org/walformat.html ("the WAL-index header", for the unix and
    windows VFSes): the first 96 bytes are two copies of a 48-byte header that every
    committed write transaction rewrites (``iChange`` is incremented, ``mxFrame``, the
    salts and the checksums move with the log), the second copy first; a reader that
    finds the copies equal has one consistent header (that page's own lock-free read).
    The file exists, and stays the one SQLite uses, as long as a connection of this
    process has the database open in WAL mode: :class:`_WalIndex` is only read beside the
    open connection it was made for (``conn``)."""

    __slots__ = ("_map", "conn")

    _HEADER = 48

    def __init__(self, conn: Connection, mapped: mmap.mmap) -> None:
        self.conn = conn
        self._map = mapped

    @classmethod
    def open(cls, path: str, conn: Connection) -> _WalIndex | None:
        """The index of the database at ``path``, or None (no such file yet, too short,
        or a platform whose VFS keeps it elsewhere)."""
        if os.name != "posix":  # pragma: no cover - the unix VFS's file only
            return None
        try:
            mapped = _shm_map(path + "-shm", 2 * cls._HEADER)
        except (OSError, ValueError):
            return None
        return cls(conn, mapped)

    def header(self) -> bytes | None:
        """One consistent header, or None while a writer is rewriting it (its two copies
        differ) or before SQLite has initialised it (``isInit``, byte 12, is 0)."""
        both = self._map[: 2 * self._HEADER]
        first = both[: self._HEADER]
        if first != both[self._HEADER :] or not first[12]:
            return None
        return first
