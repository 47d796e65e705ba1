"""Serve an :class:`~scim2_core.Engine` as a raw WSGI application (standard library only).

::

    from scim2_core.wsgi import WSGIApp
    app = WSGIApp(engine)       # gunicorn module:app, or mounted under a SCRIPT_NAME

The mount point is honoured: PEP 3333 splits the request path into ``SCRIPT_NAME`` ("the
initial portion of the request URL's path that corresponds to the application object")
and ``PATH_INFO`` ("the remainder of the request URL's path"); the engine gets
``PATH_INFO`` and ``base_url`` is ``scheme://host`` + ``SCRIPT_NAME``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any, Protocol

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

__all__ = ["WSGIApp", "read_body", "wsgi_str"]

Environ = Mapping[str, Any]


class StartResponse(Protocol):
    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = ..., /
    ) -> Callable[[bytes], object]: ...


def wsgi_str(value: str) -> str:
    """Undo PEP 3333's "bytes as latin-1" for a path: WSGI strings hold the raw bytes."""
    return value.encode("latin-1").decode("utf-8", "replace")


def read_body(environ: Environ, limit: int) -> bytes | None:
    """The request body, or ``None`` when it exceeds ``limit`` bytes.

    A ``CONTENT_LENGTH`` above the limit is refused before reading anything; otherwise at
    most ``limit + 1`` bytes are read. PEP 3333: "the application [...] should not attempt
    to read more data than is specified by the CONTENT_LENGTH variable"; without one,
    the input is read only when the server marks it terminated (``wsgi.input_terminated``).
    """
    declared = content_length(environ.get("CONTENT_LENGTH"))
    if declared is not None and declared > limit:
        return None
    stream = environ.get("wsgi.input")
    if stream is None or (declared is None and not environ.get("wsgi.input_terminated")):
        return b""
    wanted = declared if declared is not None else limit + 1
    chunks: list[bytes] = []
    size = 0
    while size < wanted:
        chunk: bytes = stream.read(min(65536, wanted - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > limit else b"".join(chunks)


class WSGIApp:
    """A WSGI application answering every request with ``engine.handle``.

    ``trust_proxy`` makes ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` decide the scheme
    and host of ``base_url``. ``context(environ)`` builds the request ``context`` handed to
    the authentication hook (default ``{"environ": environ}``).
    """

    def __init__(
        self,
        engine: EngineLike,
        *,
        trust_proxy: bool = False,
        context: Callable[[Environ], Mapping[str, Any]] | None = None,
    ) -> None:
        self.engine = engine
        self.trust_proxy = trust_proxy
        self.context = context

    def request(self, environ: Environ, body: bytes) -> Request:
        """Translate a WSGI ``environ`` and its body into the engine's request dict."""
        headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers[key[5:].replace("_", "-").lower()] = value
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = environ[key]
        scheme: str = environ.get("wsgi.url_scheme", "http")
        host = headers.get("host") or host_from_server(
            scheme, (environ.get("SERVER_NAME", "localhost"), int(environ.get("SERVER_PORT", 80)))
        )
        if self.trust_proxy:
            scheme = forwarded(headers.get("x-forwarded-proto")) or scheme
            host = forwarded(headers.get("x-forwarded-host")) or host
        context = self.context(environ) if self.context else {"environ": environ}
        return {
            "method": environ["REQUEST_METHOD"],
            "path": wsgi_str(environ.get("PATH_INFO", "")) or "/",
            "query": query_params(environ.get("QUERY_STRING", "")),
            "headers": headers,
            "body": body,
            "base_url": base_url(scheme, host, wsgi_str(environ.get("SCRIPT_NAME", ""))),
            "context": context,
        }

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        limit = self.engine.options.max_body_bytes
        body = read_body(environ, limit)
        response: Response = (
            payload_too_large(limit)
            if body is None
            else self.engine.handle(self.request(environ, body))
        )
        status = response["status"]
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        start_response(f"{status} {reason}", outgoing_headers(response))
        # RFC 9110 §9.3.2: the server MUST NOT send content in the response to HEAD.
        return [b"" if environ["REQUEST_METHOD"] == "HEAD" else response["body"]]
