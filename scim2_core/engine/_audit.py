"""The engine's audit log: one :class:`~scim2_core.events.AuditEntry` per request that
reached :meth:`Engine.handle`, written to the backend's audit store (``enable_audit``; an
in-memory store for a backend without one) by a writer thread in small batches, so that a
request never waits for the log: an entry is stored within ``flush_interval`` seconds
(entries of the last moment before a ``kill -9`` can be lost; the outbox, not the audit
log, is the durable record of changes).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .._json import copy_json
from ..backends import Backend
from ..events import (
    EXCHANGE_LIMIT,
    AuditEntry,
    AuditQuery,
    AuditStore,
    MemoryAuditStore,
)
from ..events._model import secret_names
from ..schema import ResourceType

__all__ = ["Audit", "change_of", "exchange_of"]

logger = logging.getLogger("scim2_core.audit")

#: Entries waiting for the writer beyond this are dropped (and the drop is logged), so a
#: store that is down cannot grow the process's memory without bound.
_MAX_QUEUED = 100_000
_SKIP = frozenset(("meta", "id", "schemas"))
REDACTED = "(redacted)"
#: A key (or a PATCH ``path``) naming a secret: its value is never kept in ``exchange``.
_SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)|pwd|secret|token|credential|api_?key", re.IGNORECASE
)
#: A secret's ``"key": value`` in a body that is not JSON, value quoted or not.
_SECRET_PAIR = re.compile(
    r'("[^"]*(?:pass(?:word|wd|phrase)|pwd|secret|token|credential|api_?key)[^"]*"\s*:\s*)'
    r'(?:"(?:[^"\\]|\\.)*"?|[^,}\]\s]*)',
    re.IGNORECASE,
)


#: The last second :func:`_stamp` formatted, and its text up to the seconds: requests of
#: one second share it (a tuple, replaced whole, so threads need no lock).
_last_second: tuple[int, str] = (-1, "")


def _stamp(at: float) -> str:
    """``at`` (epoch seconds) as RFC 3339 UTC with microseconds, rounded half to even as
    :meth:`datetime.fromtimestamp` rounds (the form entries are stored and compared in)."""
    global _last_second
    fraction, whole = math.modf(at)
    micro = round(fraction * 1e6)
    second = int(whole)
    if micro < 0:
        micro += 1_000_000
        second -= 1
    if micro >= 1_000_000:
        micro -= 1_000_000
        second += 1
    known, head = _last_second
    if known != second:
        head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last_second = (second, head)
    return f"{head}.{micro:06d}Z"


def change_of(
    rt: ResourceType, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The compact diff of a write for the audit log: top-level attributes set (with
    their new value) or removed, and for ``members`` the ids that joined or left. A
    secret attribute that changed shows as ``"(redacted)"``; a secret inside an extension
    is left out of the extension's value.

    One pass over the attributes, copying only the values it keeps (the caller renders
    ``after`` in place afterwards)."""
    old = before or {}
    new = after or {}
    secret_core, secret_ext = secret_names(rt)
    out: dict[str, Any] = {}
    set_: dict[str, Any] = {}
    removed: list[str] = []
    for key in sorted(old.keys() | new.keys()):
        if key in _SKIP:
            continue
        value = new.get(key)
        if old.get(key) == value:
            continue
        if key == "members":
            was = {m.get("value") for m in old.get(key) or () if isinstance(m, dict)}
            now = {m.get("value") for m in value or () if isinstance(m, dict)}
            if now - was:
                out["membersAdded"] = sorted(str(v) for v in now - was)
            if was - now:
                out["membersRemoved"] = sorted(str(v) for v in was - now)
        elif key not in new:
            removed.append(key)
        elif key in secret_core:
            set_[key] = REDACTED
        elif key in secret_ext and isinstance(value, dict):
            hidden = secret_ext[key]
            set_[key] = copy_json({k: v for k, v in value.items() if k not in hidden})
        else:
            set_[key] = copy_json(value)
    if set_:
        out["set"] = set_
    if removed:
        out["removed"] = removed
    return out


def _redacted(value: Any) -> Any:
    """``value`` (decoded JSON) with every secret's value replaced by ``(redacted)``: an
    object member whose name looks like a secret, and the ``value`` of a PATCH operation
    whose ``path`` does (RFC 7644 §3.5.2: ``{"op": "replace", "path": "password", ...}``)."""
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if not isinstance(value, dict):
        return value
    secret_path = isinstance(value.get("path"), str) and _SECRET_NAME.search(value["path"])
    return {
        k: REDACTED
        if _SECRET_NAME.search(str(k)) or (secret_path and k == "value")
        else _redacted(v)
        for k, v in value.items()
    }


def _redacted_text(body: Any) -> str | None:
    """A request or answer body as redacted text cut at :data:`EXCHANGE_LIMIT`, or None.

    A body that is not JSON has each ``"secret": value`` pair blanked; if a secret's name
    still shows in it (say, cut in the middle), it is withheld whole."""
    if body is None or body in (b"", ""):
        return None
    if isinstance(body, bytes):
        body = body[: EXCHANGE_LIMIT * 4].decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            text = json.dumps(_redacted(json.loads(body)), ensure_ascii=False)
        except ValueError:
            text = _SECRET_PAIR.sub(lambda m: m.group(1) + f'"{REDACTED}"', body)
            if _SECRET_NAME.search(_SECRET_PAIR.sub("", text)):
                return "(withheld: not JSON, and it names a secret)"
    else:
        text = json.dumps(_redacted(body), ensure_ascii=False, default=str)
    if len(text) > EXCHANGE_LIMIT:
        text = text[:EXCHANGE_LIMIT] + " … (cut)"
    return text


def exchange_of(request: Any, response: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the audit log keeps of a refused request: its query, body and ``User-Agent``
    and the answer's body, secrets redacted and each text bounded (see
    :class:`~scim2_core.events.AuditEntry`). No other header is kept: never
    ``Authorization``."""
    if not isinstance(request, Mapping):
        return {"request": "(not a request dict)", "answer": _redacted_text(response["body"])}
    query = request.get("query")
    agent = None
    headers = request.get("headers")
    if isinstance(headers, Mapping):
        agent = next((str(v) for k, v in headers.items() if str(k).lower() == "user-agent"), None)
    out: dict[str, Any] = {
        "query": _redacted(dict(query)) if isinstance(query, Mapping) and query else None,
        "request": _redacted_text(request.get("body")),
        "answer": _redacted_text(response.get("body")),
        "userAgent": agent[:256] if agent else None,
    }
    return {k: v for k, v in out.items() if v is not None}


class Audit:
    """The audit log of one engine (``engine.audit``): :meth:`enable` it, then
    :meth:`query` it; ``retention`` bounds how long entries are kept."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._store: AuditStore | None = None
        self._queue: list[AuditEntry] = []
        self._cond = threading.Condition()
        #: Held from taking a batch off the queue until it is stored, so that a flush
        #: returns only when every entry queued before it is stored.
        self._writing = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._dropped = 0
        self._last_prune = 0.0
        self.flush_interval = 0.2
        #: How long entries are kept (None: for ever). Pruned by the writer thread.
        self.retention: timedelta | None = timedelta(days=90)

    @property
    def active(self) -> bool:
        """True once :meth:`enable` was called."""
        return self._store is not None

    @property
    def store(self) -> AuditStore | None:
        """Where the entries go (None until enabled)."""
        return self._store

    def enable(self, *, retention: timedelta | None = timedelta(days=90)) -> None:
        """Log every request from now on, in the backend's audit store (its
        ``enable_audit``) or, for a backend without one, in memory."""
        with self._cond:
            if self._store is None:
                enable = getattr(self._backend, "enable_audit", None)
                self._store = enable() if callable(enable) else MemoryAuditStore()
            self.retention = retention
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="scim2-core audit", daemon=True
                )
                self._thread.start()

    def record(self, entry: AuditEntry) -> None:
        """Queue ``entry`` for the writer (never blocks on the store)."""
        with self._cond:
            if len(self._queue) >= _MAX_QUEUED:
                self._dropped += 1
                return
            self._queue.append(entry)
            if len(self._queue) >= 500:
                self._cond.notify()

    def flush(self) -> None:
        """Write every queued entry now (on the caller's thread)."""
        with self._writing:
            with self._cond:
                batch, self._queue = self._queue, []
            self._write(batch)

    def query(
        self,
        *,
        resource_id: str | None = None,
        resource_type: str | None = None,
        principal: str | None = None,
        status: int | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[AuditEntry]:
        """The stored entries matching every criterion given, oldest first (newest first
        with ``newest_first``: ``limit`` then keeps the latest); queued ones are flushed
        first. ``since``/``until``: RFC 3339 strings or aware datetimes."""
        if self._store is None:
            return []
        self.flush()
        return self._store.query(
            AuditQuery(
                resource_id=resource_id,
                resource_type=resource_type,
                principal=principal,
                status=status,
                since=_as_stamp(since),
                until=_as_stamp(until),
                limit=limit,
                newest_first=newest_first,
            )
        )

    def stop(self) -> None:
        """Flush and stop the writer thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(10)
        self.flush()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._stopping and len(self._queue) < 500:
                    self._cond.wait(self.flush_interval)
                stopping = self._stopping
                dropped, self._dropped = self._dropped, 0
            if dropped:
                logger.error("%d audit entries dropped: the audit store is behind", dropped)
            self.flush()
            self._maybe_prune()
            if stopping:
                return

    def _write(self, batch: list[AuditEntry]) -> None:
        if not batch or self._store is None:
            return
        try:
            self._store.append(batch)
        except Exception:
            logger.exception("Could not store %d audit entries", len(batch))

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if self.retention is None or self._store is None or now - self._last_prune < 60:
            return
        self._last_prune = now
        try:
            self._store.prune(_stamp(time.time() - self.retention.total_seconds()))
        except Exception:
            logger.exception("Could not prune the audit log")


def _as_stamp(value: str | datetime | None) -> str | None:
    """``value`` in the stored form, so that times compare as text: an RFC 3339 string
    (``Z`` or an offset; a date alone is its midnight UTC) or an aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip())
        value = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return _stamp(value.timestamp())


def entry_time(at: float) -> str:
    """The ``time`` of an entry for a request that arrived at ``at`` (epoch seconds)."""
    return _stamp(at)
