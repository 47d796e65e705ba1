"""RFC 9865 cursors: opaque, tamper-proof, expiring tokens for cursor-based paging.

RFC 9865 §2: "cursor: [...] A string value that identifies the results page [...] The
cursor value MUST be [...] made of unreserved characters (RFC 3986 §2.3)". A cursor here is
``<payload>.<mac>``, both base64url without padding: the payload holds where the page starts,
the page size, a digest of the query it belongs to and its expiry; the MAC is HMAC-SHA256
under the engine's secret. Where the page starts is a *position* (the sort key and id of the
resource the page follows or precedes, :class:`~scim2_core.backends.Position`) when the backend
pages by keys, else an offset. A forged, altered, foreign or malformed cursor is
``invalidCursor``; an expired one ``expiredCursor`` (RFC 9865 §2.3).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import time
from dataclasses import dataclass

from .._errors import ExpiredCursorError, InvalidCursorError
from ..backends import Position

__all__ = ["CursorCodec", "CursorState"]


@dataclass(frozen=True, slots=True)
class CursorState:
    """What a cursor says: the page size, and where the page starts: right after
    ``position`` (right before it, ``backward``) when set, else at ``offset``."""

    offset: int
    count: int
    position: Position | None = None
    backward: bool = False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Seals and opens cursors for one engine (one secret, one time-to-live)."""

    def __init__(self, secret: bytes | None, ttl_seconds: int) -> None:
        self._key = secret if secret is not None else secrets.token_bytes(32)
        self._ttl = ttl_seconds

    @staticmethod
    def query_digest(*parts: str | None) -> str:
        text = "\x00".join("" if p is None else p for p in parts)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    def seal(self, state: CursorState, query_digest: str, now: float | None = None) -> str:
        # Rounded up: a cursor lives at least its time-to-live, never up to a second less.
        expires = math.ceil((now if now is not None else time.time()) + self._ttl)
        fields: list[object] = [state.offset, state.count, query_digest, expires]
        if state.position is not None:
            fields += [int(state.backward), state.position.key, state.position.id]
        payload = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        return f"{_b64(payload)}.{_b64(mac)}"

    def open(self, cursor: str, query_digest: str, now: float | None = None) -> CursorState:
        try:
            body, _, mac_text = cursor.partition(".")
            payload = _unb64(body)
            mac = _unb64(mac_text)
        except (ValueError, UnicodeError):
            raise InvalidCursorError("The cursor is malformed.") from None
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, expected):
            raise InvalidCursorError("The cursor was not issued by this server.")
        try:
            offset, count, digest, expires, *where = json.loads(payload)
            position = Position(where[1], str(where[2])) if where else None
        except (ValueError, TypeError, IndexError):  # pragma: no cover - payloads are ours
            raise InvalidCursorError("The cursor is malformed.") from None
        if digest != query_digest:
            raise InvalidCursorError("The cursor belongs to another query.")
        if (now if now is not None else time.time()) > expires:
            raise ExpiredCursorError()
        return CursorState(int(offset), int(count), position, bool(where and where[0]))
