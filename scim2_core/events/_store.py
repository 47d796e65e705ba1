"""The outbox as its consumers see it: :class:`EventStore`, and the in-memory one."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from ._model import ChangeEvent

__all__ = ["Counts", "EventStore", "FailedEvent", "MemoryEventStore"]


@dataclass(frozen=True, slots=True)
class Counts:
    """How one consumer stands: events not yet delivered, and events parked as failed."""

    pending: int
    failed: int


@dataclass(frozen=True, slots=True)
class FailedEvent:
    """An event a consumer gave up on after its last attempt, with the error."""

    consumer: str
    event: ChangeEvent
    attempts: int
    error: str
    failed_at: float


@runtime_checkable
class EventStore(Protocol):
    """A durable, ordered outbox shared by every consumer of one store.

    Events get increasing ``seq`` numbers in commit order. Each consumer (a name such as
    ``"webhook:https://..."``) has a position: the ``seq`` of the last event it is done
    with. Delivery is one consumer, one owner at a time: :meth:`claim` takes a lease on
    the consumer for an owner (one worker thread of one process), so several processes on
    one database do not deliver an event twice while their leases hold; a crashed owner's
    lease runs out and another takes over from the position it left, delivering again
    at most the events it had not acknowledged (the same ``event_id``).
    """

    def register(self, consumer: str) -> None:
        """Make ``consumer`` known (position 0 if new: every stored event); idempotent."""
        ...

    def claim(self, consumer: str, owner: str, lease_seconds: float) -> int | None:
        """Take or renew the lease on ``consumer`` for ``owner``: its position, or None
        if another owner holds an unexpired lease."""
        ...

    def holder(self, consumer: str) -> str | None:
        """The owner holding ``consumer``'s lease now (expired or not), if any."""
        ...

    def release(self, consumer: str, owner: str) -> None:
        """Give up ``owner``'s lease on ``consumer`` (an orderly stop), so that another
        process need not wait for it to run out."""
        ...

    def fetch(self, after: int, limit: int) -> list[ChangeEvent]:
        """Up to ``limit`` events with ``seq > after``, in ``seq`` order."""
        ...

    def advance(self, consumer: str, owner: str, seq: int, lease_seconds: float) -> bool:
        """Move the consumer's position to ``seq`` and renew the lease; False (and no
        change) if ``owner`` no longer holds it."""
        ...

    def park(self, consumer: str, event: ChangeEvent, attempts: int, error: str) -> None:
        """Record that ``consumer`` gave up on ``event`` (visible in :meth:`failed`)."""
        ...

    def counts(self, consumers: Iterable[str] | None = None) -> dict[str, Counts]:
        """Pending and failed counts of each consumer (every registered one by default)."""
        ...

    def failed(self, consumer: str | None = None, limit: int = 100) -> list[FailedEvent]:
        """The parked events, oldest first."""
        ...

    def prune(self) -> int:
        """Forget the events every registered consumer is done with; how many."""
        ...


@dataclass(slots=True)
class _Consumer:
    position: int = 0
    owner: str | None = None
    lease_until: float = 0.0


class MemoryEventStore:
    """An :class:`EventStore` in memory: :class:`~scim2_core.backends.MemoryBackend`'s
    outbox (appended under the backend's lock, in the same critical section as the
    change), and the engine's for a backend without one (appended after the commit: lost
    if the process dies; see docs/events.md)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: deque[ChangeEvent] = deque()
        self._seq = 0
        self._consumers: dict[str, _Consumer] = {}
        self._failed: list[FailedEvent] = []

    def append(self, events: Sequence[ChangeEvent]) -> None:
        """Store ``events`` in order, numbering them."""
        if not events:
            return
        with self._lock:
            for event in events:
                self._seq += 1
                self._events.append(_with_seq(event, self._seq))

    @property
    def enabled(self) -> bool:
        """True once a consumer is registered: before that, nothing is stored."""
        return bool(self._consumers)

    def register(self, consumer: str) -> None:
        with self._lock:
            self._consumers.setdefault(consumer, _Consumer())

    def claim(self, consumer: str, owner: str, lease_seconds: float) -> int | None:
        with self._lock:
            c = self._consumers.setdefault(consumer, _Consumer())
            now = time.monotonic()
            if c.owner not in (None, owner) and c.lease_until > now:
                return None
            c.owner, c.lease_until = owner, now + lease_seconds
            return c.position

    def holder(self, consumer: str) -> str | None:
        with self._lock:
            c = self._consumers.get(consumer)
            return c.owner if c is not None else None

    def release(self, consumer: str, owner: str) -> None:
        with self._lock:
            c = self._consumers.get(consumer)
            if c is not None and c.owner == owner:
                c.owner, c.lease_until = None, 0.0

    def fetch(self, after: int, limit: int) -> list[ChangeEvent]:
        with self._lock:
            out: list[ChangeEvent] = []
            for event in self._events:
                if event.seq > after:
                    out.append(event)
                    if len(out) >= limit:
                        break
            return out

    def advance(self, consumer: str, owner: str, seq: int, lease_seconds: float) -> bool:
        with self._lock:
            c = self._consumers.get(consumer)
            if c is None or c.owner != owner:
                return False
            c.position = max(c.position, seq)
            c.lease_until = time.monotonic() + lease_seconds
            return True

    def park(self, consumer: str, event: ChangeEvent, attempts: int, error: str) -> None:
        with self._lock:
            self._failed.append(FailedEvent(consumer, event, attempts, error, time.time()))

    def counts(self, consumers: Iterable[str] | None = None) -> dict[str, Counts]:
        with self._lock:
            names = list(self._consumers) if consumers is None else list(consumers)
            out = {}
            for name in names:
                c = self._consumers.get(name, _Consumer())
                pending = sum(1 for e in self._events if e.seq > c.position)
                failed = sum(1 for f in self._failed if f.consumer == name)
                out[name] = Counts(pending, failed)
            return out

    def failed(self, consumer: str | None = None, limit: int = 100) -> list[FailedEvent]:
        with self._lock:
            return [f for f in self._failed if consumer in (None, f.consumer)][:limit]

    def prune(self) -> int:
        with self._lock:
            if not self._consumers:
                return 0
            done = min(c.position for c in self._consumers.values())
            n = 0
            while self._events and self._events[0].seq <= done:
                self._events.popleft()
                n += 1
            return n


def _with_seq(event: ChangeEvent, seq: int) -> ChangeEvent:
    return replace(event, seq=seq)
