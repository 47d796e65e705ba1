"""The Django backend's transactional outbox and audit log, in the app's own database.

Writing: with the outbox on, every write of :class:`~scim2_core_django.backend.DjangoModelBackend`
stores its :class:`~scim2_core.ChangeEvent` objects last in its own
``transaction.atomic()`` (:meth:`DjangoEvents.record`), built by
:func:`scim2_core.backends.change_events` and written by scim2-core's SQL writer
(``write_change``/``write_events``) on the raw DB-API connection under Django's
transaction: an event commits or rolls back with its change.

Reading: the delivery worker and the audit writer use scim2-core's own SQL stores
(``SQLEventStore``, ``SQLAuditStore``) over :class:`_DjangoDialect`, connections of their
own opened with Django's parameters for the alias (``get_connection_params``: the same
file or server, user, password, ``OPTIONS``), not Django's per-thread connections:

* the stores run on threads of their own, where a Django connection would never be
  closed (Django closes connections at the end of a request); these are kept in one place
  and closed by :meth:`DjangoEvents.close`;
* on SQLite, the backend's writes take an in-process lock before their (deferred)
  transaction reads, so that no other writer of the process commits between its read and
  its write (SQLite would refuse the write: "database is locked"). The stores' writes
  (a consumer's position, audit entries) take the same lock, and begin ``IMMEDIATE``;
* they are the stores :class:`~scim2_core.backends.SQLBackend` uses, tested by its
  suites, so the PostgreSQL reader's safe horizon, leases and pruning are the same code.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from django.db import connections  # type: ignore[import-untyped]

from scim2_core import ConfigurationError, ResourceType
from scim2_core.backends import change_events, member_ids
from scim2_core.backends.sql import Connection, Dialect, SQLAuditStore, SQLEventStore, write_change
from scim2_core.events import AuditStore, EventKind, EventStore

__all__ = ["DjangoEvents", "sqlite_write_lock"]

#: ``scim_id IN (...)`` lists are read this many at a time (SQLite's parameter limit).
_CHUNK = 1000

_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def sqlite_write_lock(alias: str) -> threading.RLock:
    """The lock every scim2-core write to the SQLite database ``alias`` takes in this
    process (each backend over it, and the stores of their outboxes and audit logs)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(alias, threading.RLock())


class _DjangoDialect(Dialect):
    """scim2-core's SQL connections (one per thread, closed by :meth:`close`) to the
    database of a Django alias, opened with Django's own connection parameters."""

    def __init__(self, alias: str, write_lock: Any) -> None:
        super().__init__()
        wrapper = connections[alias]
        if wrapper.vendor == "postgresql":
            from django.db.backends.postgresql.psycopg_any import (  # type: ignore[import-untyped]
                is_psycopg3,
            )

            if not is_psycopg3:
                raise ConfigurationError(
                    f"The outbox and audit log of database {alias!r} need psycopg 3 "
                    "(pip install 'psycopg[binary]'); Django is using psycopg2."
                )
            self.name = "postgresql"
            self.begin_read = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        elif wrapper.vendor == "sqlite":
            self.name = "sqlite"
            self.begin_write = "BEGIN IMMEDIATE"
        else:
            raise ConfigurationError(
                f"The outbox and audit log of DjangoModelBackend need SQLite or PostgreSQL; "
                f"database {alias!r} is {wrapper.vendor}."
            )
        self._alias = alias
        self._write_lock = write_lock

    def connect(self) -> Connection:
        wrapper = connections[self._alias]  # this thread's: only its parameters are used
        conn = wrapper.get_new_connection(wrapper.get_connection_params())
        if self.name == "sqlite":
            conn.isolation_level = None  # BEGIN and COMMIT are explicit
        else:
            conn.autocommit = True
        return conn  # type: ignore[no-any-return]

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.name == "postgresql" else text

    def executemany(self, conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.name == "sqlite":
            super().executemany(conn, sql, rows)
            return
        with conn.cursor() as cur:  # type: ignore[attr-defined]
            cur.executemany(self.sql(sql), rows)

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]:
        lock = self._write_lock if write and self.name == "sqlite" else contextlib.nullcontext()
        with lock, super().transaction(write=write) as conn:
            yield conn


class DjangoEvents:
    """The outbox and audit log of one :class:`~scim2_core_django.backend.DjangoModelBackend`.

    ``types`` is the backend's ``{resource type name: mapped type}`` (read at each write,
    after ``bind``); ``write_lock`` the lock its SQLite writes take.
    """

    def __init__(self, alias: str, write_lock: Any, types: Mapping[str, Any]) -> None:
        self._alias = alias
        self._write_lock = write_lock
        self._types = types
        self._dialect: _DjangoDialect | None = None
        self._guard = threading.Lock()
        #: True once :meth:`enable_outbox` was called: writes then store their events.
        self.on = False

    def _reader(self) -> _DjangoDialect:
        with self._guard:
            if self._dialect is None:
                self._dialect = _DjangoDialect(self._alias, self._write_lock)
            return self._dialect

    def enable_outbox(self) -> EventStore:
        """Store events from now on; the store the delivery worker reads."""
        store = SQLEventStore(self._reader())
        self.on = True
        return store

    def enable_audit(self) -> AuditStore:
        """The audit log's store: table ``scim_audit`` in the app's database."""
        return SQLAuditStore(self._reader())

    def close(self) -> None:
        """Close the connections the stores opened (a later use opens new ones)."""
        if self._dialect is not None:
            self._dialect.close()

    def record(
        self,
        rt: ResourceType,
        kind: EventKind | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        *,
        left: Sequence[str] = (),
        some_members: bool = False,
    ) -> None:
        """Store the events of a write, last in its ``transaction.atomic()``: the
        resource's own (:func:`~scim2_core.backends.change_events`), then one ``touched``
        event per member it added or removed whose type derives ``groups``, and per group
        it ``left`` (a delete), with the versions the write gave them."""
        rid = str((after or before or {}).get("id"))
        changed = member_ids(before or {}) ^ member_ids(after or {})
        changed.discard(rid)
        kinds = [
            name
            for name, t in self._types.items()
            if t.bm is not None
            and (t.relation is not None or t.bm.rt.schema.attribute("groups") is not None)
        ]
        touched = self._versions(changed, kinds) + self._versions(left, None)
        own = change_events(None, rt, kind, before, after, some_members=some_members)
        wrapper = connections[self._alias]
        wrapper.ensure_connection()
        # The raw DB-API connection, inside the write's transaction (Django's atomic).
        write_change(self._reader(), wrapper.connection, own, touched)

    def _versions(
        self, ids: Sequence[str] | set[str], kinds: Sequence[str] | None
    ) -> list[tuple[str, str, str | None]]:
        """``(type, id, version)`` of the live resources ``ids`` (of ``kinds`` only,
        unless None), by id, as this transaction sees them."""
        wanted = sorted(set(ids))
        if not wanted or kinds == []:
            return []
        from .models import ScimResource

        out: list[tuple[str, str, str | None]] = []
        for start in range(0, len(wanted), _CHUNK):
            rows = ScimResource.objects.using(self._alias).filter(
                scim_id__in=wanted[start : start + _CHUNK], deleted=False
            )
            if kinds is not None:
                rows = rows.filter(resource_type__in=kinds)
            out.extend(
                (kind, sid, f'W/"{version}"')
                for kind, sid, version in rows.order_by("scim_id").values_list(
                    "resource_type", "scim_id", "version"
                )
            )
        return out
