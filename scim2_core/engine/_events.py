"""The engine's one event system: the outbox of its backend and the worker that delivers it.

A backend with the optional ``enable_outbox`` capability (MemoryBackend, SQLBackend, and
the ORM backends DjangoModelBackend and SQLAlchemyBackend) stores each change's
:class:`~scim2_core.events.ChangeEvent` in the same transaction or under the same lock as
the change; for a backend without it, the engine stores the events in memory
right after the commit (delivered the same way, but lost if the process dies between the
commit and the store: use a backend with an outbox when that matters). Nothing is stored
until the first consumer is added: an engine nobody listens to pays nothing.

:meth:`Events.subscribe` (and ``Engine.subscribe``) is a thin layer over this: it adds the
listener as a handler consumer and starts delivery. The listener runs on the delivery
thread after the commit, never inside the request.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..backends import Backend, change_events
from ..events import (
    ChangeEvent,
    Consumer,
    Counts,
    Delivery,
    EventKind,
    EventStore,
    FailedEvent,
    Handler,
    HandlerConsumer,
    MemoryEventStore,
    RetryPolicy,
    WriteContext,
)
from ..schema import ResourceType

__all__ = ["ChangeEvent", "Events", "Listener", "principal_name"]

#: What ``Engine.subscribe`` takes: a function of one event (sync or ``async def``).
Listener = Callable[[ChangeEvent], Any]

_subscribers = itertools.count(1)


def principal_name(principal: Any) -> str | None:
    """The name stored in events and audit entries for ``principal``: its ``name``
    attribute if it is a string, else ``str(principal)``; None for no principal."""
    if principal is None:
        return None
    name = getattr(principal, "name", None)
    return name if isinstance(name, str) else str(principal)


class Events:
    """The event system of one engine (``engine.events``).

    Add consumers (:meth:`add_handler`, :meth:`add_webhook`, :meth:`add_consumer`), then
    :meth:`start` the delivery threads; :meth:`counts` and :meth:`failed` tell how they
    stand, :meth:`wait_idle` waits until everything is delivered, :meth:`stop` stops.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._delivery: Delivery | None = None
        #: The engine's own store, for a backend without an outbox.
        self._fallback: MemoryEventStore | None = None
        #: Passed to every consumer added without a policy of its own.
        self.retry = RetryPolicy()
        self.poll_interval = 0.5
        self.lease_seconds = 30.0

    # -- configuration -------------------------------------------------------------------

    @property
    def store(self) -> EventStore | None:
        """The outbox, once a consumer was added (None before)."""
        return self._delivery.store if self._delivery is not None else None

    def _ensure(self) -> Delivery:
        with self._lock:
            if self._delivery is None:
                enable = getattr(self._backend, "enable_outbox", None)
                store: EventStore
                if callable(enable):
                    store = enable()
                else:
                    store = self._fallback = MemoryEventStore()
                self._delivery = Delivery(
                    store,
                    retry=self.retry,
                    lease_seconds=self.lease_seconds,
                    poll_interval=self.poll_interval,
                )
            return self._delivery

    def add_consumer(self, consumer: Consumer, *, retry: RetryPolicy | None = None) -> None:
        """Deliver every event to ``consumer`` (see :class:`~scim2_core.events.Consumer`)."""
        self._ensure().add(consumer, retry=retry)

    def add_handler(
        self, handler: Handler, *, name: str | None = None, retry: RetryPolicy | None = None
    ) -> None:
        """Call ``handler(event)`` (a function or an ``async def``) for every committed
        change, on the delivery thread; an exception retries it with back-off, then parks
        the event as failed. ``name`` keeps its position in a durable outbox across
        restarts (default: the handler's qualified name)."""
        self.add_consumer(HandlerConsumer(handler, name), retry=retry)

    def add_webhook(
        self,
        url: str,
        *,
        key: Any,
        issuer: str = "scim2-core",
        audience: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        """POST every event to ``url`` as an RFC 9967 Security Event Token signed with
        ``key`` (see :class:`scim2_core.events.Webhook`); retried for ever by default, so a
        receiver that is down gets every event when it comes back."""
        from ..events import Webhook

        hook = Webhook(url, key=key, issuer=issuer, audience=audience, timeout=timeout)
        self.add_consumer(hook, retry=retry or RetryPolicy(max_attempts=None, max_delay=30.0))

    def subscribe(self, listener: Listener) -> None:
        """Add ``listener`` as a handler and start delivery (``Engine.subscribe``)."""
        name = f"subscriber:{next(_subscribers)}:{getattr(listener, '__qualname__', '')}"
        self.add_handler(listener, name=name)
        self.start()

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering (one thread per consumer); nothing to do without consumers."""
        if self._delivery is not None:
            self._delivery.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop delivering; events not yet delivered stay in the outbox."""
        if self._delivery is not None:
            self._delivery.stop(timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every consumer has every committed event (delivered or parked);
        False on timeout. For tests and orderly shutdowns."""
        return self._delivery.wait_idle(timeout) if self._delivery is not None else True

    def counts(self) -> Mapping[str, Counts]:
        """``{consumer: Counts(pending, failed)}`` for every consumer added."""
        return self._delivery.counts() if self._delivery is not None else {}

    def failed(self, consumer: str | None = None, limit: int = 100) -> list[FailedEvent]:
        """The events parked as failed, oldest first."""
        return self._delivery.failed(consumer, limit) if self._delivery is not None else []

    # -- the engine's side ---------------------------------------------------------------

    @property
    def captures(self) -> bool:
        """True if the engine must build the events itself (a backend without an outbox
        and someone listening): writers then keep a copy of ``before``."""
        return self._fallback is not None

    def committed(
        self,
        tenant: str | None,
        rt: ResourceType,
        kind: EventKind,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        """A write committed: store its event if the backend did not, and wake delivery."""
        if self._fallback is not None:
            self._fallback.append(change_events(tenant, rt, kind, before, after))
        if self._delivery is not None:
            self._delivery.wake()


def write_context(ctx: Any, kind: EventKind = "replaced") -> WriteContext:
    """The :class:`~scim2_core.events.WriteContext` of the request ``ctx``."""
    return WriteContext(
        kind="patched" if kind == "patched" else "replaced",
        principal=principal_name(ctx.principal),
        request_id=ctx.request_id,
    )
