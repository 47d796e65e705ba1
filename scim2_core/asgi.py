"""Serve an :class:`~scim2_core.Engine` as a raw ASGI 3 application (standard library only).

::

    from scim2_core.asgi import ASGIApp
    app = ASGIApp(engine)                       # uvicorn module:app
    Mount("/scim/v2", app=ASGIApp(engine))      # Starlette / FastAPI

The mount point is honoured: per the ASGI HTTP spec, ``path`` includes ``root_path``
("root_path [...] the root path this application is mounted at [...] path [...] includes
root_path"), so the engine gets ``path`` with ``root_path`` stripped and ``base_url`` is
``scheme://host`` + ``root_path``, making ``Location`` and ``meta.location`` point back
through the mount (or the pinned ``base_url``).

Routing uses ``raw_path`` (the target as received) when the server provides it, so a
``%2F`` inside a resource id never routes as ``/``. A request framed by both
``Content-Length`` and ``Transfer-Encoding``, a target that is not a path and a body not
received within ``body_timeout`` seconds are answered with a SCIM Error and
``Connection: close``. A ``GET`` or ``HEAD`` whose head announces no body (RFC 9112 §6.3) is
answered without calling ``receive`` at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from ._types import Request, Response
from .serving import (
    EngineLike,
    bad_target,
    base_url,
    checked_base_url,
    content_length,
    engine_path,
    forwarded,
    framing_conflict,
    host_from_server,
    not_mounted,
    payload_too_large,
    query_params,
    request_timeout,
)
from .serving._asgi_io import Disconnected, has_no_body, lifespan, read_body, send_response
from .serving._targets import asgi_headers, asgi_response_headers, asgi_target
from .serving._workers import Workers

__all__ = ["ASGIApp", "PrefixMount", "Receive", "Scope", "Send"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_Target = tuple[str | None, str | None]  # (authority, raw path) of the request target
_READS = frozenset(("GET", "HEAD"))
#: How many distinct request targets a :class:`PrefixMount` keeps resolved.
_KEPT_TARGETS = 256
#: ... each at most this long (raw).
_KEPT_TARGET_BYTES = 512
#: How many base URLs an :class:`ASGIApp` keeps built (one per host a client names).
_KEPT_URLS = 64


def _default_context(scope: Scope) -> Mapping[str, Any]:
    return {"scope": scope}


class ASGIApp:
    """An ASGI 3 application answering every HTTP request with ``engine.handle``.

    ``trust_proxy`` makes ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` decide the scheme
    and host of ``base_url``; leave it off unless a proxy you control sets them.
    ``context(scope)`` builds the request ``context`` handed to the authentication hook
    (default ``{"scope": scope}``). The engine runs in a worker thread unless
    ``engine.never_blocks``; with ``reads_on_loop`` (default: ``engine.reads_never_block``,
    true of ``SQLBackend`` on a SQLite file), reads (GET, HEAD, ``.search``) run on the
    event loop instead (see ``serving/_workers.py``), and so does the ``authenticate``
    hook for them: pass ``reads_on_loop=False`` if yours waits on the network.
    ``base_url`` (``https://scim.example.com/scim/v2``) pins the
    SCIM base URL of ``Location`` and ``meta.location``: the client's ``Host`` (and
    ``X-Forwarded-*``) then count for nothing. ``body_timeout`` is how many seconds a client
    has to send its whole body (``None``: forever); past it the answer is a 408 SCIM Error
    and the connection is closed. Reads and writes run on ``read_threads`` and
    ``write_threads`` workers of their own, so the heaviest writes never keep a ``GET``
    waiting for a thread.
    """

    def __init__(
        self,
        engine: EngineLike,
        *,
        trust_proxy: bool = False,
        context: Callable[[Scope], Mapping[str, Any]] = _default_context,
        base_url: str | None = None,
        body_timeout: float | None = 30.0,
        read_threads: int = 4,
        write_threads: int = 4,
        reads_on_loop: bool | None = None,
    ) -> None:
        self.engine = engine
        self.workers = Workers(read_threads, write_threads)
        if reads_on_loop is None:
            reads_on_loop = bool(getattr(engine, "reads_never_block", False))
        #: Whether reads are answered on the event loop (see the class docstring).
        self.reads_on_loop = reads_on_loop
        self.trust_proxy = trust_proxy
        self.context = context
        self.base_url = None if base_url is None else checked_base_url(base_url)
        self.body_timeout = body_timeout
        #: The base URLs of the last (scheme, host, root path) asked, each built once.
        self._urls: dict[tuple[str, str, str], str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await lifespan(receive, send)
            self.workers.shutdown()
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
        return self._request(scope, body, asgi_headers(scope)[0], asgi_target(scope), None)

    def _request(
        self, scope: Scope, body: bytes, headers: dict[str, str], target: _Target, path: str | None
    ) -> Request:
        root_path: str = scope.get("root_path", "")
        authority, raw = target
        if path is None and raw is not None:
            path = engine_path(raw, root_path)
        if path is None:
            # No raw path from the server (or one that does not match root_path): the
            # decoded path, as the ASGI spec defines it.
            path = scope["path"]
            if root_path and path.startswith(root_path):
                path = path[len(root_path) :]
        url = self.base_url
        if url is None:
            scheme: str = scope.get("scheme", "http")
            host = authority or headers.get("host") or host_from_server(scheme, scope.get("server"))
            if self.trust_proxy:
                scheme = forwarded(headers.get("x-forwarded-proto")) or scheme
                host = forwarded(headers.get("x-forwarded-host")) or host
            urls = self._urls
            key = (scheme, host, root_path)
            kept = urls.get(key)
            if kept is None:
                kept = base_url(scheme, host, root_path)
                if len(urls) >= _KEPT_URLS:
                    urls.clear()  # ever new hosts: start again
                urls[key] = kept
            url = kept
        query_string: bytes = scope.get("query_string", b"")
        context = self.context
        return {
            "method": scope["method"],
            "path": path or "/",
            "query": query_params(query_string.decode("latin-1")) if query_string else {},
            "headers": headers,
            "body": body,
            "base_url": url,
            "context": {"scope": scope} if context is _default_context else context(scope),
        }

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, at: tuple[_Target, str] | None = None
    ) -> None:
        """Answer one request; ``at``: its target and engine path, when the mount found them."""
        headers, length, encoding = asgi_headers(scope)
        method: str = scope["method"]
        if length is not None and encoding is not None:
            framing = framing_conflict(length, encoding)
            if framing is not None:
                await send_response(send, method, framing, close=True)
                return
        target, mounted = at if at is not None else (asgi_target(scope), None)
        if target[1] is None:
            await send_response(send, method, bad_target(), close=True)
            return
        body = b""
        if not has_no_body(scope, length, encoding):
            limit = self.engine.options.max_body_bytes
            try:
                read = await read_body(receive, limit, self.body_timeout, content_length(length))
            except Disconnected:
                return
            except TimeoutError:
                # RFC 9110 §15.5.9: the rest of the body may still arrive; close instead.
                timeout = request_timeout(self.body_timeout or 0)
                await send_response(send, method, timeout, close=True)
                return
            if read is None:
                await send_response(send, method, payload_too_large(limit))
                return
            body = read
        request = self._request(scope, body, headers, target, mounted)
        engine = self.engine
        response: Response
        # A read on the loop (``reads_on_loop``) is spared the hop to a thread and back, and
        # the loop and the workers no longer hand the GIL to each other around every
        # statement, which costs more CPU than the read itself; writes always go to a worker.
        if engine.never_blocks or (
            self.reads_on_loop and (method in _READS or Workers.is_read(request))
        ):
            response = engine.handle(request)
        else:
            response = await self.workers.run(engine.handle, request)
        out = asgi_response_headers(response)
        await send({"type": "http.response.start", "status": response["status"], "headers": out})
        # RFC 9110 §9.3.2: the server MUST NOT send content in the response to HEAD.
        content = b"" if method == "HEAD" else response["body"]
        await send({"type": "http.response.body", "body": content})


class PrefixMount:
    """A raw ASGI app serving ``app`` under ``prefix`` and a 404 SCIM Error everywhere else.

    For servers with no framework: ``uvicorn.run(PrefixMount(ASGIApp(engine)))`` serves
    SCIM at ``/scim/v2``.

    The mounted app sees ``root_path`` extended by ``prefix`` and the full ``path``, as the
    ASGI spec has it ("path [...] includes root_path"). The request's scope is extended in
    place, as Starlette's router does: a middleware around the mount sees the new
    ``root_path`` once the request is served.
    """

    def __init__(self, app: ASGIApp, prefix: str = "/scim/v2") -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")
        #: What the last targets asked gave (see :meth:`_found`).
        self._targets: dict[tuple[Any, Any, str], tuple[_Target, str | None]] = {}

    def _found(self, scope: Scope, mount: str) -> tuple[_Target, str | None]:
        """The request's target (:func:`asgi_target`) and its engine path under ``mount``
        (:func:`engine_path`; None when not under it), as they were the last time the same
        target was asked: clients ask the same paths again and again."""
        raw_path = scope.get("raw_path")
        kept = type(raw_path) is bytes and len(raw_path) <= _KEPT_TARGET_BYTES
        key = (raw_path, scope.get("path"), mount)
        targets = self._targets
        found = targets.get(key) if kept else None
        if found is None:
            target = asgi_target(scope)
            raw = target[1]
            found = (target, None if raw is None else engine_path(raw, mount))
            if kept:
                if len(targets) >= _KEPT_TARGETS:
                    targets.clear()  # a client asking ever new paths: start again
                targets[key] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        root: str = scope.get("root_path", "")
        mount = root + self.prefix if root else self.prefix
        target, path = self._found(scope, mount)
        if target[1] is None and kind == "http":
            # Not a path (``*``, ``host:443``): the mounted app answers it (400, closed).
            await self.app(scope, receive, send)
        elif path is not None:
            # The scope is the request's own (the server makes one per request): extended
            # in place, as Starlette's router does, rather than copied.
            scope["root_path"] = mount
            if kind == "http" and type(self.app) is ASGIApp:
                await self.app._http(scope, receive, send, (target, path))  # found here
            else:
                await self.app(scope, receive, send)
        elif kind == "http":
            await send_response(send, scope["method"], not_mounted(self.prefix))
        else:
            await receive()
            await send({"type": "websocket.close", "code": 1008})
