"""Serve an :class:`~scim2_core.Engine` as a raw ASGI 3 application (standard library only).

::

    from scim2_core.asgi import ASGIApp
    app = ASGIApp(engine)                       # uvicorn module:app
    Mount("/scim/v2", app=ASGIApp(engine))      # Starlette / FastAPI

The mount point is honoured: per the ASGI HTTP spec, ``path`` includes ``root_path``
("root_path [...] the root path this application is mounted at [...] path [...] includes
root_path"), so the engine gets ``path`` with ``root_path`` stripped and ``base_url`` is
``scheme://host`` + ``root_path``, making ``Location`` and ``meta.location`` point back
through the mount.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from ._serving import (
    EngineLike,
    base_url,
    content_length,
    forwarded,
    host_from_server,
    outgoing_headers,
    payload_too_large,
    query_params,
)
from ._types import Request, Response

__all__ = ["ASGIApp", "PrefixMount", "Receive", "Scope", "Send"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _default_context(scope: Scope) -> Mapping[str, Any]:
    return {"scope": scope}


class ASGIApp:
    """An ASGI 3 application answering every HTTP request with ``engine.handle``.

    ``trust_proxy`` makes ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` decide the scheme
    and host of ``base_url``; leave it off unless a proxy you control sets them.
    ``context(scope)`` builds the request ``context`` handed to the authentication hook
    (default ``{"scope": scope}``). The engine runs in a worker thread unless
    ``engine.never_blocks``.
    """

    def __init__(
        self,
        engine: EngineLike,
        *,
        trust_proxy: bool = False,
        context: Callable[[Scope], Mapping[str, Any]] = _default_context,
    ) -> None:
        self.engine = engine
        self.trust_proxy = trust_proxy
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "websocket":
            # ASGI WebSocket spec: sending websocket.close before websocket.accept makes
            # the server reject the handshake (HTTP 403).
            await receive()
            await send({"type": "websocket.close", "code": 1008})
        else:
            # ASGI spec: "Applications should raise an exception when they receive a scope
            # type they do not understand."
            raise ValueError(f"scim2_core.asgi.ASGIApp cannot serve {kind!r} scopes")

    def request(self, scope: Scope, body: bytes) -> Request:
        """Translate an HTTP ``scope`` and its body into the engine's request dict."""
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", ()):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        root_path: str = scope.get("root_path", "")
        path: str = scope["path"]
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        scheme: str = scope.get("scheme", "http")
        host = headers.get("host") or host_from_server(scheme, scope.get("server"))
        if self.trust_proxy:
            scheme = forwarded(headers.get("x-forwarded-proto")) or scheme
            host = forwarded(headers.get("x-forwarded-host")) or host
        return {
            "method": scope["method"],
            "path": path or "/",
            "query": query_params(scope.get("query_string", b"").decode("latin-1")),
            "headers": headers,
            "body": body,
            "base_url": base_url(scheme, host, root_path),
            "context": self.context(scope),
        }

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.engine.options.max_body_bytes
        try:
            body = await _read_body(scope, receive, limit)
        except _Disconnected:
            return
        response: Response
        if body is None:
            response = payload_too_large(limit)
        else:
            request = self.request(scope, body)
            if self.engine.never_blocks:
                response = self.engine.handle(request)
            else:
                response = await asyncio.to_thread(self.engine.handle, request)
        await send(
            {
                "type": "http.response.start",
                "status": response["status"],
                "headers": [
                    (name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in outgoing_headers(response)
                ],
            }
        )
        # RFC 9110 §9.3.2: the server MUST NOT send content in the response to HEAD.
        body = b"" if scope["method"] == "HEAD" else response["body"]
        await send({"type": "http.response.body", "body": body})


class PrefixMount:
    """A raw ASGI app serving ``app`` under ``prefix`` and a plain 404 everywhere else.

    For servers with no framework: ``uvicorn.run(PrefixMount(ASGIApp(engine)))`` serves
    SCIM at ``/scim/v2``.

    The mounted app sees ``root_path`` extended by ``prefix`` and the full ``path``, as the
    ASGI spec has it ("path [...] includes root_path").
    """

    def __init__(self, app: ASGIApp, prefix: str = "/scim/v2") -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        root_path: str = scope.get("root_path", "")
        path: str = scope["path"]
        local = path[len(root_path) :] if path.startswith(root_path) else path
        if local == self.prefix or local.startswith(self.prefix + "/"):
            await self.app({**scope, "root_path": root_path + self.prefix}, receive, send)
        elif scope["type"] == "http":
            body = f"Not found. The SCIM service is at {self.prefix}/\n".encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        else:
            await receive()
            await send({"type": "websocket.close", "code": 1008})


class _Disconnected(Exception):
    """The client went away before sending its whole body."""


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The request body, or ``None`` as soon as it is known to exceed ``limit`` bytes.

    A ``Content-Length`` above the limit is refused before receiving anything; otherwise
    reading stops at the first chunk that takes the total above the limit.
    """
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            declared = content_length(value.decode("latin-1"))
            if declared is not None and declared > limit:
                return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    """Answer the lifespan protocol politely: nothing to start, nothing to stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
