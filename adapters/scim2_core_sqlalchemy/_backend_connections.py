"""Connections, transactions and the request scope of :class:`~._backend.SQLAlchemyBackend`.

Each call uses a connection of its own from the app's engine, or the connection of the
request scope it runs in (:meth:`Connections.request_scope`); reads run without a
transaction on PostgreSQL and open one only when they write (adopting rows, moving a
version); each write is one transaction, which on SQLite takes the database's write lock
first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from ._backend_reads import Prepared
from ._backend_state import State


class Connections(State):
    """Connections and transactions (see the module docstring)."""

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

    def _prepared(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Prepared:
        """The statement ``build()`` makes, compiled once per ``key`` for the app's
        dialect and run on the cursor (:class:`~._backend_reads.Prepared`): the writes of a
        member add, a handful of statements, cost more in SQLAlchemy's per-execution work
        than in the database."""
        found = self._statements.get(key)
        if found is None:
            found = self._statements[key] = Prepared(build(), self.engine.dialect)
        return found

    def _lock_sqlite(self, conn: sa.Connection) -> None:
        if self._sqlite:
            # A deferred SQLite transaction reads before it locks: write first (to the
            # backend's own table), so the whole read-then-write holds the write lock.
            s = self._tables.schema
            self._prepared(("lock",), lambda: sa.update(s).values(version=s.c.version)).run(conn)


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
