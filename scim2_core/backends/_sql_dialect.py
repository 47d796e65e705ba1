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
import re
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any, Final, Protocol
from urllib.parse import unquote

from .._errors import ConfigurationError

__all__ = [
    "SCHEMA_VERSION",
    "Connection",
    "Dialect",
    "PostgresDialect",
    "SQLiteDialect",
    "open_dialect",
]

#: The schema version this code writes. Each entry of a dialect's ``migrations`` moves a
#: database from version ``n - 1`` to ``n``; a database is migrated forward on first use.
SCHEMA_VERSION: Final = 3


class Connection(Protocol):
    """The slice of a DB-API connection the backend uses (sqlite3 and psycopg both fit)."""

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def close(self) -> None: ...


# Schema version 1: resources, uniqueness and membership.
_V1: Final = (
    # One row per resource. ``tenant`` is '' for the single-tenant deployment (tenant None).
    # ``doc`` is the resource exactly as stored and returned; ``fdoc`` is the same document
    # with every caseExact=false string folded, which filters and sorting read.
    """CREATE TABLE scim_resources (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        type TEXT NOT NULL,
        version TEXT NOT NULL,
        created TEXT NOT NULL,
        display TEXT,
        doc TEXT NOT NULL,
        fdoc {json} NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    "CREATE INDEX scim_resources_order ON scim_resources (tenant, type, created, id)",
    # The database enforces uniqueness: one row per (scope, attribute, normalised value).
    # ``scope`` is 't:' + tenant for uniqueness "server" and 'g' for "global".
    """CREATE TABLE scim_unique (
        scope TEXT NOT NULL,
        type TEXT NOT NULL,
        attr TEXT NOT NULL,
        value TEXT NOT NULL,
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        PRIMARY KEY (scope, type, attr, value)
    )""",
    "CREATE INDEX scim_unique_owner ON scim_unique (tenant, id)",
    # Direct membership, indexed both ways: members.value eq / groups_of.
    """CREATE TABLE scim_members (
        tenant TEXT NOT NULL,
        group_id TEXT NOT NULL,
        member_id TEXT NOT NULL,
        PRIMARY KEY (tenant, group_id, member_id)
    )""",
    "CREATE INDEX scim_members_by_member ON scim_members (tenant, member_id, group_id)",
)

# Schema version 2: an equality index over selected attributes (userName, externalId, ...),
# one row per (folded) string value; rebuilt by the backend when the indexed set changes.
_V2: Final = (
    """CREATE TABLE scim_lookup (
        tenant TEXT NOT NULL,
        type TEXT NOT NULL,
        attr TEXT NOT NULL,
        value TEXT NOT NULL,
        id TEXT NOT NULL,
        PRIMARY KEY (tenant, type, attr, value, id)
    )""",
    "CREATE INDEX scim_lookup_owner ON scim_lookup (tenant, id)",
    "CREATE TABLE scim_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

# Schema version 3: the number of resources per tenant and type, kept by every create and
# delete in the same transaction, so that an unfiltered list (paging through every user,
# what identity providers do) does not count the whole table for ``totalResults``. The
# count is spread over ``count_slots`` rows so that concurrent writers on PostgreSQL do not
# queue on one row; a reader sums them. Filled from the existing rows on upgrade.
_V3: Final = (
    """CREATE TABLE scim_counts (
        tenant TEXT NOT NULL,
        type TEXT NOT NULL,
        slot INTEGER NOT NULL,
        n BIGINT NOT NULL,
        PRIMARY KEY (tenant, type, slot)
    )""",
    "INSERT INTO scim_counts (tenant, type, slot, n) "
    "SELECT tenant, type, 0, count(*) FROM scim_resources GROUP BY tenant, type",
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2, _V3)


class Dialect:
    """What differs between SQLite and PostgreSQL, plus per-thread connections."""

    name: str = ""
    #: The column type of ``fdoc`` and the placeholder that casts a JSON text parameter to it.
    json_type: str = "TEXT"
    json_param: str = "?"
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

    # --- connections ------------------------------------------------------------------
    def connect(self) -> Connection:  # pragma: no cover - overridden
        raise NotImplementedError

    def sql(self, text: str) -> str:
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
            with self._lock:
                self._all.append(conn)
        return conn

    def forget(self) -> None:
        """Drop this thread's connection (after an error that broke it)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)
        with contextlib.suppress(Exception):
            conn.close()

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()
        self._shared_conn = None
        self._local = threading.local()

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
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # pragma: no cover - e.g. a network filesystem
                raise ConfigurationError(f"SQLite refused WAL mode for {self.path!r}")
        # FULL: the WAL is fsynced at every commit, so an acknowledged write survives a
        # kill -9 of the process and a power loss; NORMAL survives the former only.
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        return conn

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
        ]
        conn.execute("DELETE FROM sqlite_stat1 WHERE tbl LIKE 'scim_%'")
        insert = "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)"
        conn.executemany(insert, stats)  # type: ignore[attr-defined]
        conn.execute("ANALYZE sqlite_schema")  # reload them

    def json_path(self, keys: Sequence[str]) -> str:
        # SQLite JSON path: $."key"."sub". Keys are canonical schema names; they never
        # contain a double quote (checked when the backend binds the resource types).
        return "$" + "".join(f'."{k}"' for k in keys)

    def is_integrity_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)


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
