"""Where the ASGI app runs the (synchronous) engine: two bounded pools of worker threads.

Reads (GET, HEAD, ``POST .../.search``) and writes run in pools of their own, so the largest
writes a client may send (a Bulk of a thousand creates whose passwords are hashed, a 1 MiB
PATCH) can occupy every write worker without an identity provider's ``GET`` waiting behind
them for a thread. Each pool is bounded, so a burst queues instead of starting a thread per
request. Password hashing (scrypt) releases the GIL, so a read competes only with the Python
work of the writes that run beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .._errors import ConfigurationError
from .._types import Request

__all__ = ["Workers"]

_T = TypeVar("_T")

# One job: the caller's context, the call, and where its outcome goes.
_Job = tuple[
    contextvars.Context,
    Callable[[Request], Any],
    Request,
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """On the event loop: hand the outcome to the waiting request (unless it went away)."""
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _work(jobs: queue.SimpleQueue[_Job | None]) -> None:
    """A worker thread: run jobs until told to stop (``None``)."""
    while (job := jobs.get()) is not None:
        context, call, request, loop, future = job
        result: Any = None
        error: BaseException | None = None
        try:
            result = context.run(call, request)
        except BaseException as exc:  # handed to the awaiting coroutine, which re-raises it
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, future, result, error)
        del job, context, call, request, loop, future, result, error


class _Pool:
    """``size`` threads taking jobs from one queue (a C ``SimpleQueue``).

    Leaner than ``ThreadPoolExecutor`` + ``run_in_executor`` for a call of some tens of
    microseconds: no ``concurrent.futures.Future`` chained to an asyncio one, one wake-up
    of the event loop per call.
    """

    def __init__(self, size: int, name: str) -> None:
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.threads = [
            threading.Thread(target=_work, args=(self.jobs,), name=f"{name}-{n}", daemon=True)
            for n in range(size)
        ]
        for thread in self.threads:
            thread.start()

    def shutdown(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)


class Workers:
    """The read pool and the write pool of one ASGI app (created on first use)."""

    __slots__ = ("_pools", "reads", "writes")

    def __init__(self, reads: int = 4, writes: int = 4) -> None:
        for name, value in (("read_threads", reads), ("write_threads", writes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(f"{name} must be a positive integer, not {value!r}")
        self.reads = reads
        self.writes = writes
        self._pools: dict[bool, _Pool] = {}

    @staticmethod
    def is_read(request: Request) -> bool:
        """True for what only reads: GET and HEAD, and the RFC 7644 §3.4.3 ``.search``."""
        method = request.get("method", "")
        return method in ("GET", "HEAD") or (
            method == "POST" and request.get("path", "").rstrip("/").endswith("/.search")
        )

    async def run(self, handle: Callable[[Request], _T], request: Request) -> _T:
        """``handle(request)`` on a worker of the request's pool (context variables kept)."""
        read = self.is_read(request)
        pool = self._pools.get(read)
        if pool is None:
            size, prefix = (self.reads, "scim-read") if read else (self.writes, "scim-write")
            pool = self._pools[read] = _Pool(size, prefix)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        pool.jobs.put((contextvars.copy_context(), handle, request, loop, future))
        return await future

    def shutdown(self) -> None:
        """Stop the workers once their current requests end (at lifespan shutdown)."""
        for pool in self._pools.values():
            pool.shutdown()
        self._pools.clear()
