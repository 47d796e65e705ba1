"""The audit log: one entry per SCIM request that reached the engine, kept with the data.

:class:`AuditEntry` is what is stored; :class:`AuditStore` is where (a backend's optional
``enable_audit`` capability returns one: in memory for MemoryBackend, table ``scim_audit``
for SQLBackend); :class:`MemoryAuditStore` the in-memory one.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Protocol, runtime_checkable

__all__ = ["EXCHANGE_LIMIT", "AuditEntry", "AuditQuery", "AuditStore", "MemoryAuditStore"]

#: The most characters of a request or an answer body kept in an entry's ``exchange``.
EXCHANGE_LIMIT = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One request and its answer.

    ``time`` is when it arrived (RFC 3339, UTC); ``duration_ms`` how long the engine took;
    ``scim_type`` the error's ``scimType`` (RFC 7644 §3.12), if any; ``change``, for a
    write, what it changed: ``{"set": {attr: value}, "removed": [attr], "membersAdded":
    [...], "membersRemoved": [...]}`` (a create sets everything; a delete has none).
    Secrets (``returned: never``, such as ``password``) are never included: a changed
    password shows as ``"password": "(redacted)"``.

    ``exchange``, for an answer with an error status (400 and above), is what was asked
    and answered, so the operator page can show the offending request beside the error:
    ``{"query": {...}, "request": "<body>", "answer": "<SCIM Error body>", "userAgent":
    "..."}``. Secret values (``password``, anything named like a secret or token) are
    replaced by ``"(redacted)"``, headers other than ``User-Agent`` are never kept (no
    ``Authorization``), and each text is cut at :data:`EXCHANGE_LIMIT` characters.
    """

    time: str
    principal: str | None
    tenant: str | None
    method: str
    path: str
    resource_type: str | None
    resource_id: str | None
    status: int
    scim_type: str | None
    request_id: str | None
    duration_ms: float
    change: dict[str, Any] | None = None
    exchange: dict[str, Any] | None = None
    seq: int = 0

    @classmethod
    def of(
        cls,
        time: str,
        principal: str | None,
        tenant: str | None,
        method: str,
        path: str,
        resource_type: str | None,
        resource_id: str | None,
        status: int,
        scim_type: str | None,
        request_id: str | None,
        duration_ms: float,
        change: dict[str, Any] | None,
        exchange: dict[str, Any] | None,
    ) -> AuditEntry:
        """The entry of these values, in the order of the fields, made as the engine makes
        one for every request: equal to ``AuditEntry(time=..., ...)``, in a third of the
        time (the frozen class's own ``__init__`` sets each field through
        ``object.__setattr__``; this sets the slots directly)."""
        entry = _new(cls)
        (
            set_time,
            set_principal,
            set_tenant,
            set_method,
            set_path,
            set_resource_type,
            set_resource_id,
            set_status,
            set_scim_type,
            set_request_id,
            set_duration_ms,
            set_change,
            set_exchange,
            set_seq,
        ) = _PUT
        set_time(entry, time)
        set_principal(entry, principal)
        set_tenant(entry, tenant)
        set_method(entry, method)
        set_path(entry, path)
        set_resource_type(entry, resource_type)
        set_resource_id(entry, resource_id)
        set_status(entry, status)
        set_scim_type(entry, scim_type)
        set_request_id(entry, request_id)
        set_duration_ms(entry, duration_ms)
        set_change(entry, change)
        set_exchange(entry, exchange)
        set_seq(entry, 0)
        return entry

    def to_dict(self) -> dict[str, Any]:
        """The entry as a JSON-ready dict (camelCase keys, as exported)."""
        data = asdict(self)
        return {
            "seq": data["seq"],
            "time": data["time"],
            "principal": data["principal"],
            "tenant": data["tenant"],
            "method": data["method"],
            "path": data["path"],
            "resourceType": data["resource_type"],
            "resourceId": data["resource_id"],
            "status": data["status"],
            "scimType": data["scim_type"],
            "requestId": data["request_id"],
            "durationMs": round(data["duration_ms"], 3),
            "change": data["change"],
            "exchange": data["exchange"],
        }

    def to_json(self) -> str:
        """One JSON line (``scim2-core audit`` prints these)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)


_new = object.__new__
#: Each field's slot setter, in the order of the fields (see :meth:`AuditEntry.of`).
_PUT = tuple(getattr(AuditEntry, f.name).__set__ for f in fields(AuditEntry))


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditQuery:
    """Which entries to read: every field given must match; ``since`` inclusive,
    ``until`` exclusive (RFC 3339 strings, compared as UTC timestamps); oldest first, or
    newest first with ``newest_first`` (then ``limit`` keeps the latest entries)."""

    resource_id: str | None = None
    resource_type: str | None = None
    principal: str | None = None
    status: int | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 1000
    newest_first: bool = False

    def matches(self, entry: AuditEntry) -> bool:
        """Whether ``entry`` is one this query asks for."""
        return (
            (self.resource_id is None or entry.resource_id == self.resource_id)
            and (self.resource_type is None or entry.resource_type == self.resource_type)
            and (self.principal is None or entry.principal == self.principal)
            and (self.status is None or entry.status == self.status)
            and (self.since is None or entry.time >= self.since)
            and (self.until is None or entry.time < self.until)
        )


@runtime_checkable
class AuditStore(Protocol):
    """Where audit entries are kept."""

    def append(self, entries: Sequence[AuditEntry]) -> None:
        """Store ``entries`` (one transaction)."""
        ...

    def query(self, query: AuditQuery) -> list[AuditEntry]:
        """The entries ``query`` asks for, oldest first."""
        ...

    def prune(self, before: str) -> int:
        """Delete the entries older than ``before`` (RFC 3339); how many."""
        ...


class MemoryAuditStore:
    """An :class:`AuditStore` in memory, holding at most ``limit`` entries (the oldest go
    first)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[AuditEntry] = deque(maxlen=limit)
        self._seq = 0

    def append(self, entries: Sequence[AuditEntry]) -> None:
        with self._lock:
            for entry in entries:
                self._seq += 1
                self._entries.append(replace(entry, seq=self._seq))

    def query(self, query: AuditQuery) -> list[AuditEntry]:
        with self._lock:
            entries = reversed(self._entries) if query.newest_first else iter(self._entries)
            out = [e for e in entries if query.matches(e)]
        return out[: query.limit]

    def prune(self, before: str) -> int:
        with self._lock:
            n = 0
            while self._entries and self._entries[0].time < before:
                self._entries.popleft()
                n += 1
            return n
