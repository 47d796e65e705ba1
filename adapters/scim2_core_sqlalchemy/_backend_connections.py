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

from ._backend_reads import Link, Prepared
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

    def _scoped_link(self) -> Link | None:
        """The :class:`Link` of the thread's request scope (its connection checked out of
        the app's pool now if not yet), or None outside one."""
        scope: _Scope | None = getattr(self._local, "scope", None)
        if scope is None:
            return None
        link = scope.link
        if link is None:
            if self._sqlite:
                self._write_lock.acquire()
                scope.locked = True
            link = scope.link = self._link()
        return link

    def _scoped(self) -> sa.Connection | None:
        """The SQLAlchemy connection of the thread's request scope (checked out now if
        not yet), or None outside one."""
        link = self._scoped_link()
        return None if link is None else link.conn

    def _link(self) -> Link:
        """A connection of the app's pool (:class:`Link`). On PostgreSQL its SQLAlchemy
        ``Connection`` is made at once (it switches the reads to autocommit); on SQLite
        only when a read needs more than the prepared statements (the common reads run
        on the DB-API connection and never build one)."""
        link = Link(self._reads, self._reads.raw_connection())
        if not self._sqlite:
            try:
                link.conn  # noqa: B018 - made now: it sets the connection's autocommit
            except BaseException:
                link.close()
                raise
        return link

    def _wrote(self, conn: sa.Connection) -> None:
        """A read is about to write on ``conn`` (adopt rows, move a version): on
        PostgreSQL, open the transaction its writes share (the read ran without one); in a
        request scope on SQLite, commit when the read ends rather than with the request."""
        reading: _Reading | None = getattr(self._local, "reading", None)
        if reading is None or reading.link.made is not conn:
            return  # a write's own transaction, or the app's (its ORM events)
        if self._sqlite:
            scope: _Scope | None = getattr(self._local, "scope", None)
            if scope is not None:
                scope.dirty = True
        elif not reading.began:
            reading.began = True
            conn.exec_driver_sql("BEGIN")

    @contextmanager
    def _read(self) -> Iterator[Link]:
        """One read, on the request scope's connection or on one of its own (one
        generator, not nested context managers: a ``GET`` runs two reads). What it yields
        runs prepared statements on the DB-API connection; ``.conn`` is the SQLAlchemy
        ``Connection`` for anything else (made at the first use)."""
        scoped = self._scoped_link()
        if scoped is not None:
            reading = self._start_reading(scoped)
            try:
                yield scoped
            except BaseException:
                self._abort_reading(reading)
                raise
            self._finish_reading(reading)
            if reading.began or reading.dirty():
                scoped.conn.commit()
            return
        # On SQLite a read may write (adopting rows, moving versions): it takes the write
        # lock too, so that it never waits on a writer while holding a read lock.
        lock = self._write_lock if self._sqlite else None
        if lock is not None:
            lock.acquire()
        try:
            link = self._link()
            try:
                reading = self._start_reading(link)
                try:
                    yield link
                except BaseException:
                    self._abort_reading(reading)
                    raise
                self._finish_reading(reading)
                made = link.made
                if made is not None:
                    made.commit()  # a read may adopt the app's new rows or move versions
            finally:
                link.close()
        finally:
            if lock is not None:
                lock.release()

    def _start_reading(self, link: Link) -> _Reading:
        """One read begins on ``conn``: what it writes is committed at its end (on
        PostgreSQL with the ``COMMIT`` of the transaction :meth:`_wrote` opened), or rolled
        back (:meth:`_abort_reading`)."""
        local = self._local
        reading = _Reading(link, getattr(local, "scope", None))
        local.reading = reading
        return reading

    def _finish_reading(self, reading: _Reading) -> None:
        self._local.reading = None
        if reading.began:
            reading.link.conn.exec_driver_sql("COMMIT")

    def _abort_reading(self, reading: _Reading) -> None:
        self._local.reading = None
        if reading.scope is not None:
            reading.scope.dirty = False
        made = reading.link.made
        if made is None:
            return  # only prepared reads ran: nothing to undo
        if reading.began:
            made.exec_driver_sql("ROLLBACK")
        made.rollback()

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

    __slots__ = ("began", "link", "scope")

    def __init__(self, link: Link, scope: _Scope | None) -> None:
        self.link = link
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

    __slots__ = ("dirty", "link", "locked")

    def __init__(self) -> None:
        self.link: Link | None = None
        self.dirty = False  # a read wrote: commit when it ends
        self.locked = False  # holds the backend's write lock (SQLite)

    def close(self, *, commit: bool) -> None:
        link = self.link
        if link is None:
            return
        conn = link.made
        try:
            if conn is not None and conn.in_transaction():
                if commit:
                    conn.commit()
                else:
                    conn.rollback()
        finally:
            link.close()
