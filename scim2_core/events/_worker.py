"""Delivering the outbox: one thread per consumer, after the commit, never on a request's
thread nor on an event loop.

Each consumer's thread takes the consumer's lease (:meth:`EventStore.claim`), reads the
events after its position in ``seq`` order and hands them over one at a time. A failure
is retried with exponential back-off; after the last attempt the event is parked as
failed (:meth:`EventStore.park`, visible in :meth:`Delivery.counts` and
:meth:`Delivery.failed`) and delivery goes on. The position moves forward after each
delivered or parked event, so a process killed at any point delivers again, after a
restart, at most the events it had not yet recorded as done, with the same ``event_id``
(at least once).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ._model import ChangeEvent
from ._store import Counts, EventStore, FailedEvent

__all__ = ["Consumer", "Delivery", "Handler", "HandlerConsumer", "RetryPolicy"]

logger = logging.getLogger("scim2_core.events")

#: Seconds between two records of a consumer's position while it delivers a batch.
ADVANCE_EVERY = 0.25

#: A handler: a plain function, or an ``async def`` one (run on the consumer's own loop);
#: what it returns is ignored (an awaitable is awaited first).
Handler = Callable[[ChangeEvent], object]


class Consumer(Protocol):
    """Something events are delivered to: ``deliver`` returns when the event is handled
    and raises to ask for a retry. ``name`` identifies its position in the outbox, so it
    must stay the same across restarts."""

    name: str

    def deliver(self, event: ChangeEvent) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a failing delivery is retried before it is parked.

    Attempt ``n`` (from 1) waits ``min(first_delay * 2 ** (n - 1), max_delay)`` seconds
    after failing. ``max_attempts`` None retries for ever (a webhook receiver that is down
    for an hour gets every event when it comes back).
    """

    max_attempts: int | None = 8
    first_delay: float = 0.5
    max_delay: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt``."""
        return float(min(self.first_delay * 2 ** min(attempt - 1, 30), self.max_delay))


class HandlerConsumer:
    """A :data:`Handler` as a :class:`Consumer`; an ``async def`` handler runs on an event
    loop owned by the consumer's thread (never the server's)."""

    def __init__(self, handler: Handler, name: str | None = None) -> None:
        self.handler = handler
        self.name = name or f"handler:{_qualified(handler)}"
        self._loop: asyncio.AbstractEventLoop | None = None

    def deliver(self, event: ChangeEvent) -> None:
        result = self.handler(event)
        if inspect.isawaitable(result):
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(_awaited(result))

    def close(self) -> None:
        """Close the consumer's event loop, if it made one."""
        if self._loop is not None:
            self._loop.close()
            self._loop = None


async def _awaited(result: Awaitable[object]) -> None:
    await result


def _qualified(handler: Any) -> str:
    module = getattr(handler, "__module__", None) or "?"
    name = getattr(handler, "__qualname__", None) or type(handler).__qualname__
    return f"{module}.{name}"


@dataclass(slots=True)
class _Progress:
    """Where one consumer's thread stands."""

    #: The seq of the last event done (None: claim first).
    position: int | None = None
    #: Events handed to the consumer so far (whether the last read found any).
    handed: int = 0
    #: The last event done whose position is not yet stored.
    done: int | None = None
    recorded: float = 0.0
    renew_at: float = 0.0


class Delivery:
    """The delivery worker of one :class:`EventStore`: a thread per consumer.

    ``lease_seconds``: how long a consumer stays claimed by this process without news
    (another process on the same database takes over after it); ``poll_interval``: how
    often an idle thread looks for events written by other processes (this process's own
    writes wake it, :meth:`wake`), and how often a thread whose consumer another process
    holds asks for the lease (wakes do not make it ask); ``gather``: how long a woken
    thread waits for more writes before it reads, so that events are read in batches under
    load. While writes keep coming, the wait doubles after each read that found events, up to
    ``gather_max``; a read that finds none brings it back to ``gather``. So the first
    event after a quiet moment is read ``gather`` after its commit, and under a steady
    stream of writes one read (and its wake-ups) serves ``gather_max`` worth of events,
    each delivered at most that much later.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        retry: RetryPolicy | None = None,
        lease_seconds: float = 30.0,
        poll_interval: float = 0.5,
        batch: int = 200,
        gather: float = 0.01,
        gather_max: float = 0.1,
    ) -> None:
        self.store = store
        self.gather = gather
        self.gather_max = gather_max
        self.retry = retry or RetryPolicy()
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.batch = batch
        self._host = socket.gethostname()
        # host:pid:random[:start]; the start time tells a later process with the same pid
        # (a container restarted after kill -9 gets its pid again) from this one.
        pid = os.getpid()
        started = _process(pid)
        self._owner = f"{self._host}:{pid}:{uuid.uuid4().hex[:8]}"
        if started is not None:
            self._owner += f":{started[1]}"
        self._consumers: dict[str, Consumer] = {}
        self._retry: dict[str, RetryPolicy] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._stop = threading.Event()
        self._wakers: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._last_prune = 0.0
        self._started = False

    def add(self, consumer: Consumer, *, retry: RetryPolicy | None = None) -> None:
        """Deliver every event to ``consumer`` from its stored position on (registering
        it if new: it then gets every event still in the outbox), retrying as ``retry``
        says (default: the worker's policy)."""
        with self._lock:
            if consumer.name in self._consumers:
                raise ValueError(f"a consumer named {consumer.name!r} is already added")
            self.store.register(consumer.name)
            self._consumers[consumer.name] = consumer
            self._retry[consumer.name] = retry or self.retry
            self._wakers[consumer.name] = threading.Event()
            if self._started:
                self._spawn(consumer)

    @property
    def consumers(self) -> list[str]:
        """The names of the consumers added, in order."""
        return list(self._consumers)

    def start(self) -> None:
        """Start a thread per consumer (idempotent)."""
        with self._lock:
            if self._started:
                return
            self._started = True
            self._stop.clear()
            for consumer in self._consumers.values():
                self._spawn(consumer)

    def _spawn(self, consumer: Consumer) -> None:
        thread = threading.Thread(
            target=self._run,
            args=(consumer,),
            name=f"scim2-core events {consumer.name}",
            daemon=True,
        )
        self._threads[consumer.name] = thread
        thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads (each finishes the event in hand) and release the leases."""
        with self._lock:
            self._started = False
            self._stop.set()
            threads = list(self._threads.values())
            self._threads.clear()
        for waker in self._wakers.values():
            waker.set()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for consumer in self._consumers.values():
            try:
                self.store.release(consumer.name, self._owner)
            except Exception:  # the store is down: the lease runs out by itself
                logger.exception("Could not release the lease of %s", consumer.name)
            close = getattr(consumer, "close", None)
            if callable(close):
                close()

    def wake(self) -> None:
        """Tell the threads new events are stored (called after each write commits)."""
        for waker in self._wakers.values():
            waker.set()

    def counts(self) -> dict[str, Counts]:
        """Pending and failed counts of every consumer added here."""
        return self.store.counts(self._consumers)

    def failed(self, consumer: str | None = None, limit: int = 100) -> list[FailedEvent]:
        """The events parked as failed (of one consumer, or all)."""
        return self.store.failed(consumer, limit)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no consumer added here has pending events; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if all(c.pending == 0 for c in self.counts().values()):
                return True
            if time.monotonic() >= deadline:
                return False
            self.wake()
            time.sleep(0.01)

    # -- one consumer's thread ------------------------------------------------------------

    def _run(self, consumer: Consumer) -> None:
        waker = self._wakers[consumer.name]
        state = _Progress()
        gather = self.gather
        try:
            while not self._stop.is_set():
                # Cleared before looking, so that a wake during the round is not lost.
                waker.clear()
                handed = state.handed
                try:
                    busy = self._round(consumer, state)
                except Exception:
                    # The store itself failed (database down): log and try again later.
                    logger.exception("Event delivery to %s failed; retrying", consumer.name)
                    state.position = None
                    busy = False
                # Writes keep coming: gather longer (fewer reads); quiet: back to short.
                if state.handed > handed:
                    gather = min(max(gather * 2, self.gather), self.gather_max)
                else:
                    gather = self.gather
                if not busy and state.position is None:
                    # Another process holds the lease (or the store is down): the wakes of
                    # this process's writes are for the holder to answer, not a reason to
                    # ask the store again (a claim and a look at the holder per write
                    # under load). Asked again a poll interval later: that is how soon a
                    # dead holder is taken over from.
                    self._stop.wait(self.poll_interval)
                elif not busy:
                    pending = state.done is not None
                    woken = waker.wait(
                        min(self.poll_interval, ADVANCE_EVERY) if pending else self.poll_interval
                    )
                    if woken and gather:
                        # Let the writes of the next few milliseconds join this one's
                        # event: one read for several events under load.
                        self._stop.wait(gather)
        finally:
            try:
                self._record(consumer.name, state)
            except Exception:
                logger.exception("Could not record the position of %s", consumer.name)

    def _record(self, name: str, state: _Progress) -> bool:
        """Store the position reached (if it moved); False if the lease was lost."""
        state.recorded = time.monotonic()
        if state.done is None:
            return True
        seq, state.done = state.done, None
        if self.store.advance(name, self._owner, seq, self.lease_seconds):
            state.renew_at = state.recorded + self.lease_seconds / 3
            return True
        state.position = None
        return False

    def _round(self, consumer: Consumer, state: _Progress) -> bool:
        """Deliver one batch; True if there may be more to deliver at once (a full one).

        The lease is taken or renewed only every third of its length (and whenever the
        position is recorded), and the position is recorded every ``ADVANCE_EVERY``
        seconds and before waiting to retry, not after every event (a commit each): a
        crash delivers again at most what was delivered since the last record, with the
        same event ids.
        """
        name = consumer.name
        now = time.monotonic()
        if state.position is None or now >= state.renew_at:
            claimed = self.store.claim(name, self._owner, self.lease_seconds)
            if claimed is None and self._holder_is_dead(name):
                claimed = self.store.claim(name, self._owner, self.lease_seconds)
            if claimed is None:
                state.position = state.done = None
                return False  # another process delivers for this consumer
            # Delivered but not yet recorded: already done, whatever the store says.
            state.position = max(claimed, state.done or 0)
            state.renew_at = now + self.lease_seconds / 3
        events = self.store.fetch(state.position, self.batch)
        if not events:
            if now - state.recorded >= ADVANCE_EVERY:
                self._record(name, state)
            self._maybe_prune()
            return False

        def record() -> bool:
            return self._record(name, state)

        for event in events:
            if not self._deliver(consumer, event, record):
                return True
            state.position = state.done = event.seq
            state.handed += 1
            if self._stop.is_set():
                break
            if time.monotonic() - state.recorded >= ADVANCE_EVERY and not record():
                return True  # the lease was lost: claim again
        # A short batch was all there was: wait for the next write's wake (at once if one
        # came meanwhile) rather than ask the store again for nothing.
        return len(events) >= self.batch

    def _deliver(self, consumer: Consumer, event: ChangeEvent, record: Callable[[], bool]) -> bool:
        """Deliver ``event`` (retrying, then parking it); False to stop now (shutting
        down, or the lease lost while waiting to retry). ``record`` stores the position
        reached before a wait."""
        attempt = 0
        retry = self._retry[consumer.name]
        while True:
            attempt += 1
            try:
                consumer.deliver(event)
                return True
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                limit = retry.max_attempts
                if limit is not None and attempt >= limit:
                    logger.error(
                        "Event %s to %s parked after %d attempts: %s",
                        event.event_id,
                        consumer.name,
                        attempt,
                        error,
                    )
                    self.store.park(consumer.name, event, attempt, error)
                    return True
                logger.warning(
                    "Event %s to %s failed (attempt %d): %s",
                    event.event_id,
                    consumer.name,
                    attempt,
                    error,
                )
            if not record() or self._stop.wait(retry.delay(attempt)):
                return False
            claimed = self.store.claim(consumer.name, self._owner, self.lease_seconds)
            if claimed is None or claimed >= event.seq:
                return False

    def _holder_is_dead(self, consumer: str) -> bool:
        """If the lease on ``consumer`` is held by a process of this host that no longer
        runs (killed), release it now rather than wait for it to run out (a restart after
        ``kill -9`` resumes at once). True if it was released."""
        holder = self.store.holder(consumer)
        if holder is None or holder == self._owner:
            return False
        host, _, rest = holder.partition(":")
        pid_text, _, rest = rest.partition(":")
        started = rest.partition(":")[2] or None  # absent in an owner of an older version
        if host != self._host or not pid_text.isdigit():
            return False
        if not _gone(int(pid_text), started):
            return False
        self.store.release(consumer, holder)
        return True

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < 5.0:
            return
        self._last_prune = now
        self.store.prune()


#: Whether this system describes its processes in ``/proc/<pid>/stat`` (Linux).
_PROC = os.path.exists(f"/proc/{os.getpid()}/stat")


def _process(pid: int) -> tuple[str, str] | None:
    """The state and start time of process ``pid`` (``/proc/<pid>/stat``, fields 3 and
    22: "starttime", in clock ticks after boot); None if there is no such process or no
    ``/proc``."""
    if not _PROC:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # After the command name, which is in parentheses and may hold anything.
            fields = f.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return fields[0].decode(), fields[19].decode()


def _gone(pid: int, started: str | None) -> bool:
    """Whether the process ``pid`` of this host that took a lease (at ``started``, if
    its owner says) is gone: no such process; a zombie (killed, and not yet reaped by its
    parent: it holds nothing any more); or another process that got the pid since (it
    started at another time: after a restart, possibly this very process)."""
    found = _process(pid)
    if found is not None:
        state, start = found
        # proc(5): Z zombie, X (x) dead.
        return state in ("Z", "X", "x") or (started is not None and start != started)
    # No /proc, or it hides the process (``hidepid``): whether the pid is taken at all.
    if pid == os.getpid():  # another consumer thread of this process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it runs, under another user
        return False
    return False
