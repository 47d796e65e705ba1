"""Read connections of the backend's own: one kept per thread, outside the app's pool.

The backend promises to hold no connection *of the app's pool* beyond a request. A read
by id that writes nothing (the most frequent request) otherwise pays a checkout and a
return of the app's pool for one short statement: on SQLite that costs about as much as
the statement. :class:`KeptReads` keeps one connection per thread instead, from a pool of
the backend's own made from the app's engine by :meth:`sqlalchemy.pool.Pool.recreate`
(same creator, so the same database and driver arguments; the same pool events, so the
app's ``connect`` listeners, its ``PRAGMA``\\ s for instance, run on these connections too).

Only the reads that write nothing run there (:class:`~._backend_reads.Prepared`
statements on the DB-API connection), and none leaves a transaction open: on SQLite a
lone ``SELECT`` outside a transaction is its own snapshot, ended when its cursor is closed
(and a transaction the driver opened anyway is rolled back after the read); on PostgreSQL
the connection is in autocommit, so each statement sees what was committed before it.

Not for a database that a new pool would not reach: an in-memory SQLite database, or an
engine whose pool hands out one connection per thread or one for all
(``SingletonThreadPool``, ``StaticPool``) — there the app's pool is used as before. At most
as many connections are kept as the app's pool holds (its ``pool_size``; 5 if it has no
size); the threads beyond read through the app's pool. A thread that ends gives its
connection back to the backend's pool (where the next thread that reads takes it);
:meth:`close` closes them all.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.pool import AssertionPool, SingletonThreadPool, StaticPool

from ._backend_reads import Link

__all__ = ["KeptReads", "may_keep"]

#: How many connections are kept when the app's pool has no size (``NullPool``).
_DEFAULT_LIMIT: Final = 5

#: The drivers whose transaction state the kept connections are known to handle.
_DRIVERS: Final = {("sqlite", "pysqlite"), ("postgresql", "psycopg"), ("postgresql", "psycopg2")}


def may_keep(engine: sa.Engine) -> bool:
    """Whether a pool of the backend's own reaches the app's database (see the module
    docstring): a file SQLite database or a server database, with a pool that opens
    connections of its own, on a driver :class:`KeptReads` knows."""
    dialect = engine.dialect
    if (dialect.name, dialect.driver) not in _DRIVERS:
        return False
    if isinstance(engine.pool, SingletonThreadPool | StaticPool | AssertionPool):
        return False
    if dialect.name == "sqlite":
        url = engine.url
        database = url.database or ""
        if database in ("", ":memory:") or url.query.get("mode") == "memory":
            return False
        if "mode=memory" in database:  # a URI filename: file:name?mode=memory&...
            return False
    return True


class _Held:
    """What a thread's local keeps: its :class:`Link` (the connection is given back when
    this object goes, with the thread)."""

    __slots__ = ("__weakref__", "link", "token")

    def __init__(self, link: Link, token: int) -> None:
        self.link = link
        self.token = token


class KeptReads:
    """One connection per thread from a pool of the backend's own (see the module
    docstring); :meth:`link` gives the calling thread's."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        size = getattr(engine.pool, "size", None)
        #: At most this many connections kept at once.
        self.limit: int = size() if callable(size) else _DEFAULT_LIMIT
        self._lock = threading.Lock()
        self._local = threading.local()
        #: Made at the first read (so that the app's pool listeners added after the
        #: backend was made are copied too).
        self.pool: sa.pool.Pool | None = None
        #: The kept connections' pool proxies, by token.
        self._kept: dict[int, Any] = {}
        self._tokens = 0
        self._closed = False
        own = weakref.ref(self)

        def forget() -> None:  # pragma: no cover - runs in a forked child
            kept = own()
            if kept is not None:
                kept._forget()

        # A child process must not use its parent's connections (nor close them).
        os.register_at_fork(after_in_child=forget)

    def link(self) -> Link | None:
        """The calling thread's kept connection (checked out of the backend's pool at its
        first read), or None when no more may be kept (or after :meth:`close`)."""
        if self._closed:
            return None
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None:
            return held.link
        return self._keep()

    def _keep(self) -> Link | None:
        with self._lock:
            if self._closed or len(self._kept) >= self.limit:
                return None
            pool = self.pool
            if pool is None:
                pool = self.pool = self._engine.pool.recreate()
            self._tokens += 1
            token = self._tokens
            self._kept[token] = None  # counted now, filled below
        try:
            fairy = pool.connect()
        except BaseException:
            with self._lock:
                self._kept.pop(token, None)
            raise
        try:
            if not self._sqlite:
                # Each statement its own transaction: what was committed before it is
                # seen, and nothing stays open between two reads.
                fairy.dbapi_connection.autocommit = True  # type: ignore[union-attr]
        except BaseException:
            fairy.close()
            with self._lock:
                self._kept.pop(token, None)
            raise
        with self._lock:
            if token not in self._kept:  # closed meanwhile
                fairy.close()
                return None
            self._kept[token] = fairy
        held = _Held(Link(self._engine, fairy, kept=True), token)
        weakref.finalize(held, self._release, token)
        self._local.held = held
        return held.link

    def done(self, link: Link) -> None:
        """After a read on ``link``: no transaction may stay open (a driver set to open
        one before the first statement: it is rolled back, ending the read's snapshot)."""
        dbapi = link.dbapi
        if self._sqlite and dbapi.in_transaction:
            dbapi.rollback()

    def discard(self) -> None:
        """Drop the calling thread's connection (it failed): closed, not given back."""
        held: _Held | None = getattr(self._local, "held", None)
        if held is None:
            return
        self._local.held = None
        with self._lock:
            fairy = self._kept.pop(held.token, None)
        if fairy is not None:
            fairy.invalidate()
            fairy.close()

    def _release(self, token: int) -> None:
        """Give a kept connection back to the backend's pool (its thread ended)."""
        with self._lock:
            fairy = self._kept.pop(token, None)
        if fairy is not None:
            fairy.close()

    def close(self) -> None:
        """Give back every kept connection and close the backend's pool; later reads use
        the app's pool."""
        with self._lock:
            self._closed = True
            kept = list(self._kept.values())
            self._kept.clear()
            pool = self.pool
        for fairy in kept:
            if fairy is not None:
                fairy.close()
        if pool is not None:
            pool.dispose()

    def _forget(self) -> None:  # pragma: no cover - runs in a forked child
        self._local = threading.local()
        self._kept = {}
        self._lock = threading.Lock()
        self.pool = None
