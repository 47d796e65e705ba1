"""Answers to repeated reads, kept while the store has not changed.

An identity provider asks the same things again and again: Okta and Entra ID look a user up
by ``userName eq`` before every change they make, and poll the same resources on every sync
cycle. When the backend can say cheaply whether anything was written since (its optional
``change_token()``, see :class:`~scim2_core.backends.Backend`; ``SQLBackend`` on SQLite has
one), the engine keeps the answer of a successful ``GET`` with the token it read *before*
the read, and answers the same request again from it for as long as the token is the same.

Why the order matters: a write committed between the token and the read makes the read
newer than its token; the next request reads a different token and misses, so an answer is
never older than the token it is kept under. Authentication, the rate gate, the request id,
the observers and the audit log still run for every request: only the routing and the
backend's read are skipped.

Not kept: conditional requests (``If-None-Match``), RFC 9865 cursor pages (a cursor
expires, so every page mints a fresh one), ``/Me`` (it depends on the principal, not only
on the tenant), anything but ``200``, answers larger than :data:`LARGEST` and requests whose
query is longer than :data:`LONGEST_QUERY`. What is kept is bounded in bytes
(``Options.read_cache_bytes``): the oldest answers go first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from .._types import Response
from ._request import Ctx

__all__ = ["LARGEST", "LONGEST_QUERY", "AnswerCache"]

#: Answers larger than this many bytes are not kept (a large group's members).
LARGEST = 65_536
#: Requests whose query (names and values) is longer than this are not kept: the filter
#: cache's limit, so that ever-changing long queries cannot fill the budget with keys.
LONGEST_QUERY = 1024
#: What an entry costs beside its body and its key's text: the tuples, dicts and headers.
_OVERHEAD = 400

_Key = tuple[str | None, str, tuple[str, ...], tuple[tuple[str, str], ...]]


def _key(ctx: Ctx) -> _Key | None:
    """What a read's answer depends on, or None when it is not to be kept."""
    if "if-none-match" in ctx.headers:
        return None  # RFC 9110 §13.1.2: answered (200 or 304) against the version of now
    query = ctx.query
    if query:
        size = 0
        for name, value in query.items():
            if name.lower() == "cursor":
                return None  # RFC 9865 §2: each page carries a cursor that expires
            size += len(name) + len(value)
        if size > LONGEST_QUERY:
            return None
    segments = ctx.segments
    if segments and len(segments[0]) == 2 and segments[0].lower() == "me":
        return None  # RFC 7644 §3.11: /Me is the principal's own resource
    return (ctx.tenant, ctx.base_url, tuple(segments), tuple(query.items()) if query else ())


def _cost(key: _Key, body: bytes) -> int:
    """About how many bytes an entry holds."""
    text = sum(map(len, key[2])) + sum(len(name) + len(value) for name, value in key[3])
    return len(body) + len(key[1]) + text + _OVERHEAD


class AnswerCache:
    """The last answers of distinct reads, each with its change token, up to ``budget``
    bytes in all."""

    __slots__ = ("_entries", "_lock", "_token", "budget", "kept")

    def __init__(self, token: Callable[[], Hashable | None], budget: int) -> None:
        self._token = token
        self.budget = budget
        #: About how many bytes the kept answers hold now.
        self.kept = 0
        self._entries: dict[_Key, tuple[Hashable, dict[str, str], bytes, int]] = {}
        self._lock = threading.Lock()

    def answer(self, ctx: Ctx, route: Callable[[Ctx], Response]) -> Response:
        """``route(ctx)``'s answer to a ``GET``, or the same answer kept from before."""
        key = _key(ctx)
        if key is None:
            return route(ctx)
        token = self._token()  # before the read: see the module's docstring
        if token is None:
            return route(ctx)
        entry = self._entries.get(key)
        if entry is not None and entry[0] == token:
            return {"status": 200, "headers": dict(entry[1]), "body": entry[2]}
        response = route(ctx)
        body = response["body"]
        if response["status"] == 200 and isinstance(body, bytes) and len(body) <= LARGEST:
            cost = _cost(key, body)
            with self._lock:
                entries = self._entries
                old = entries.pop(key, None)
                if old is not None:
                    self.kept -= old[3]
                # A copy of its own size: an encoder's output may hold a larger buffer
                # (orjson's is at least 4 KiB whatever the length).
                compact = bytes(memoryview(body))
                entries[key] = (token, dict(response["headers"]), compact, cost)
                self.kept += cost
                while self.kept > self.budget and entries:
                    self.kept -= entries.pop(next(iter(entries)))[3]  # the oldest kept
        return response
