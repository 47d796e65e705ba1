"""The ASGI pieces ``scim2-core serve`` puts in front of the SCIM app: the request log, with
the client's address, and ``/metrics``. Raw ASGI, no framework."""

from __future__ import annotations

import hmac
import ipaddress
import time
from datetime import UTC, datetime
from typing import Any

from ..asgi import Receive, Scope, Send
from ._hub import HANDOFF
from ._log import RequestLog
from ._metrics import Metrics

__all__ = ["MetricsEndpoint", "RequestLogMiddleware"]

_PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None


class RequestLogMiddleware:
    """One line per HTTP request through ``app``: the engine's fields (request id,
    route template, ``scimType``, principal, tenant) when the engine answered, handed over
    by :class:`~scim2_core.observe.Observability` through the scope, plus the client's
    address; for an answer given before the engine (a path outside the mount, a body
    too large or too slow) the method, the status and ``path`` ``"-"``.

    ``mount`` prefixes the route templates (``/scim/v2/Users/{id}``).
    """

    def __init__(self, app: Any, log: RequestLog, mount: str = "") -> None:
        self.app = app
        self.log = log
        self.mount = mount.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = time.time()
        started = time.perf_counter()
        status = 0
        fields: dict[str, Any] = {}
        scope[HANDOFF] = fields

        async def watched_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            if "path" in fields:
                fields["path"] = self.mount + fields["path"]
            else:
                method = str(scope.get("method", "-"))
                fields.update(
                    time=datetime.fromtimestamp(arrived, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    requestId=None,
                    method=method if method.isalpha() and len(method) <= 16 else "OTHER",
                    path="-",
                    scimType=None,
                    principal=None,
                    tenant=None,
                )
            fields["status"] = status
            fields["durationMs"] = round((time.perf_counter() - started) * 1000, 3)
            fields["client"] = _client(scope)
            self.log.write(fields)


def _loopback(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0]).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class MetricsEndpoint:
    """``GET /metrics`` in the Prometheus text format, everything else to ``app``.

    With a ``token``, a scraper must send ``Authorization: Bearer <token>``; without one,
    only loopback clients (127.0.0.0/8, ::1) are answered; the rest get 403. Metrics are
    not secrets, but they say which tenants exist and how busy each is.
    """

    def __init__(
        self, app: Any, metrics: Metrics, *, token: str | None = None, path: str = "/metrics"
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.token = token
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await _plain(send, 405, b"Use GET.\n", [(b"allow", b"GET, HEAD")])
            return
        if not self._allowed(scope):
            await _plain(send, 403, b"Forbidden.\n", [])
            return
        body = self.metrics.exposition().encode("utf-8")
        await _plain(
            send, 200, b"" if scope["method"] == "HEAD" else body, [], _PROMETHEUS_TEXT, len(body)
        )

    def _allowed(self, scope: Scope) -> bool:
        if self.token is None:
            return _loopback(scope)
        expected = f"Bearer {self.token}".encode()
        for name, value in scope.get("headers", ()):
            if name.lower() == b"authorization":
                return hmac.compare_digest(value, expected)
        return False


async def _plain(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    content_type: bytes = b"text/plain; charset=utf-8",
    length: int | None = None,
) -> None:
    size = len(body) if length is None else length
    head = [(b"content-type", content_type), (b"content-length", str(size).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
