"""Durable change events: the transactional outbox, its delivery, and its consumers.

Every change a backend commits (create, replace, patch, delete, and the resources a
membership change touches) is stored as a :class:`ChangeEvent` in the same transaction or
under the same lock, in an :class:`EventStore`; a worker of its own delivers the events
after the commit, at least once and in order, to in-process handlers and webhooks. See
docs/events.md.
"""

from ._audit import EXCHANGE_LIMIT, AuditEntry, AuditQuery, AuditStore, MemoryAuditStore
from ._context import WriteContext, current_write, writing
from ._model import MEMBERS_INLINE, ChangeEvent, EventKind, new_event_id, redact
from ._store import Counts, EventStore, FailedEvent, MemoryEventStore
from ._webhook import SET_MEDIA_TYPE, Webhook, event_uri, load_signing_key, security_event_token
from ._worker import Consumer, Delivery, Handler, HandlerConsumer, RetryPolicy

__all__ = [
    "EXCHANGE_LIMIT",
    "MEMBERS_INLINE",
    "SET_MEDIA_TYPE",
    "AuditEntry",
    "AuditQuery",
    "AuditStore",
    "ChangeEvent",
    "Consumer",
    "Counts",
    "Delivery",
    "EventKind",
    "EventStore",
    "FailedEvent",
    "Handler",
    "HandlerConsumer",
    "MemoryAuditStore",
    "MemoryEventStore",
    "RetryPolicy",
    "Webhook",
    "WriteContext",
    "current_write",
    "event_uri",
    "load_signing_key",
    "new_event_id",
    "redact",
    "security_event_token",
    "writing",
]
