"""uvicorn's HTTP/1.1 protocols (httptools, h11) with the defences ``scim2-core serve`` adds.

uvicorn answers a request it cannot parse itself, before any application runs, with a
plain-text "Invalid HTTP request received." (and requests beyond its concurrency limit with
a plain-text 503); and it never times out a connection whose request head is still arriving
(any byte restarts its keep-alive timer). The protocols made by :func:`protocol_class`
answer the first with a 400 SCIM Error, requests beyond ``limit`` with a 503 SCIM Error,
and close a connection whose request head is not complete ``header_timeout`` seconds after
it opened (or after the previous response) with a 408 SCIM Error.

The fast parser (httptools, the C parser of Node's llhttp) is used when it is installed
(``scim2-core[serve]`` installs it), h11 otherwise. On httptools the protocol also refuses
what h11 refused for us: an HTTP/1.1 request without exactly one ``Host`` (RFC 9112 §3.2).
uvicorn, httptools and h11 are imported only here, when ``serve`` runs.
"""

from __future__ import annotations

import asyncio
import importlib.util
from http import HTTPStatus
from typing import Any, Literal, cast

from .._errors import ScimError, ServiceUnavailableError
from ._answers import error_response, request_timeout

__all__ = ["fastest_http", "fastest_loop", "protocol_class"]

Parser = Literal["httptools", "h11"]

_ANSWER_BODY = {"type": "http.response.body", "more_body": False}


def fastest_http() -> Parser:
    """``"httptools"`` when it is installed (a C parser), else ``"h11"`` (pure Python)."""
    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def fastest_loop() -> Literal["uvloop", "asyncio"]:
    """``"uvloop"`` when it is installed (libuv), else the standard ``asyncio`` loop."""
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


async def _busy(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI app answering requests beyond the concurrency limit (connection closed)."""
    answer = error_response(ServiceUnavailableError())
    headers = [(b"content-type", b"application/scim+json"), (b"connection", b"close")]
    headers.append((b"content-length", str(len(answer["body"])).encode("ascii")))
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({**_ANSWER_BODY, "body": answer["body"]})


def _raw_answer(status: int, body: bytes) -> bytes:
    """A complete HTTP/1.1 response closing the connection (written past the parser's
    state, which no longer matters: the connection closes right after)."""
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "content-type: application/scim+json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _Guard:
    """The defences, over either uvicorn protocol (a mixin placed before it).

    The protocol tells the guard when a request head is complete (:meth:`_head_done`);
    :meth:`_serving` says whether a request is being served (never interrupted).
    """

    header_timeout: float = 10.0
    limit: int | None = None
    _head_timer: asyncio.TimerHandle | None = None
    _scim_app: Any = None
    # Provided by uvicorn's protocol:
    app: Any
    loop: asyncio.AbstractEventLoop
    transport: Any
    connections: set[Any]
    tasks: set[Any]

    def _serving(self) -> bool:
        raise NotImplementedError

    def connection_made(self, transport: Any) -> None:
        cast(Any, super()).connection_made(transport)
        self._scim_app = self.app
        self._arm()

    def data_received(self, data: bytes) -> None:
        # uvicorn's own test (limit_concurrency), with a SCIM Error for an answer: the app
        # that serves the requests the data being received completes.
        busy = self.limit is not None and (
            len(self.connections) > self.limit or len(self.tasks) >= self.limit
        )
        self.app = _busy if busy else self._scim_app
        cast(Any, super()).data_received(data)

    def on_response_complete(self) -> None:
        cast(Any, super()).on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's head has the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        cast(Any, super()).connection_lost(exc)

    def _head_done(self) -> None:
        self._disarm()

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        # RFC 9110 §15.5.9: 408, and the server "SHOULD send a "close" connection option";
        # a request already being served is never interrupted.
        self._head_timer = None
        if not self._serving() and not self.transport.is_closing():
            body = request_timeout(self.header_timeout, "head")["body"]
            self.transport.write(_raw_answer(408, body))
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():
            answer = error_response(ScimError("The request is not valid HTTP/1.1."))
            self.transport.write(_raw_answer(400, answer["body"]))
            self.transport.close()


def _httptools_class() -> type[asyncio.Protocol]:
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class ScimHttpToolsProtocol(_Guard, HttpToolsProtocol):
        def on_headers_complete(self) -> None:
            self._head_done()
            # RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to
            # any HTTP/1.1 request message that lacks a Host header field and to any that
            # contains more than one Host header field line" (h11 refuses it; llhttp does
            # not). Raised inside the parser's callback: uvicorn answers our 400.
            hosts = sum(1 for name, _ in self.headers if name == b"host")
            if hosts != 1 and self.parser.get_http_version() == "1.1":
                raise httptools.HttpParserError("exactly one Host header is required")
            super().on_headers_complete()

        def _serving(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

    return ScimHttpToolsProtocol


def _h11_class() -> type[asyncio.Protocol]:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class ScimH11Protocol(_Guard, H11Protocol):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the whole head has arrived
                self._head_done()

        def _serving(self) -> bool:
            return self.conn.their_state is not h11.IDLE

    return ScimH11Protocol


def protocol_class(
    header_timeout: float, limit: int | None = None, http: Parser | None = None
) -> type[asyncio.Protocol]:
    """uvicorn's protocol for ``http`` (default: :func:`fastest_http`), answering unparseable
    requests, slow request heads and (with ``limit``) requests beyond ``limit`` connections
    or requests at once with SCIM Errors. Pass it as ``uvicorn.Config(http=...)``, with
    uvicorn's own ``limit_concurrency`` unset.
    """
    base = _httptools_class() if (http or fastest_http()) == "httptools" else _h11_class()
    settings: dict[str, Any] = {"header_timeout": header_timeout, "limit": limit}
    return type(base.__name__, (base,), settings)
