"""Serve an :class:`~scim2_core.Engine` as a raw WSGI application (standard library only).

::

    from scim2_core.wsgi import WSGIApp
    app = WSGIApp(engine)       # gunicorn module:app, or mounted under a SCRIPT_NAME

The mount point is honoured: PEP 3333 splits the request path into ``SCRIPT_NAME`` ("the
initial portion of the request URL's path that corresponds to the application object")
and ``PATH_INFO`` ("the remainder of the request URL's path"); the engine gets
``PATH_INFO`` and ``base_url`` is ``scheme://host`` + ``SCRIPT_NAME`` (or the pinned
``base_url``). Where the server passes the target as received (gunicorn's ``RAW_URI``,
``REQUEST_URI``), routing uses it, so a ``%2F`` inside a resource id never routes as ``/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote

from ._types import Request, Response
from .engine._request import LowerCaseHeaders
from .serving import (
    EngineLike,
    base_url,
    checked_base_url,
    content_length,
    engine_path,
    forwarded,
    framing_conflict,
    host_from_server,
    not_mounted,
    outgoing_headers,
    payload_too_large,
    query_params,
    split_target,
)

__all__ = ["PrefixMount", "WSGIApp", "mounted_path", "read_body", "wsgi_str"]

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


def _raw_path(environ: Environ) -> str | None:
    """The percent-encoded path as received, when the server passed it on (gunicorn's
    ``RAW_URI``, ``REQUEST_URI``) and it still agrees with ``SCRIPT_NAME`` + ``PATH_INFO``
    (no middleware rewrote the path since)."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not isinstance(target, str):
        return None
    _, raw = split_target(target.split("?", 1)[0])
    decoded = wsgi_str(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
    return raw if raw is not None and unquote(raw) == decoded else None


def mounted_path(environ: Environ, prefix: str) -> str | None:
    """The engine path from the raw path the server passed on, under the (decoded) mount
    ``prefix``; ``None`` when there is none (or it disagrees with ``PATH_INFO``) or the
    request is outside ``prefix``. Adapters fall back to their routed, decoded path."""
    raw = _raw_path(environ)
    return None if raw is None else engine_path(raw, prefix)


def _path(environ: Environ, prefix: str) -> str | None:
    """The engine path under the mount ``prefix`` (decoded), or ``None`` outside it."""
    raw = _raw_path(environ)
    if raw is not None:
        return engine_path(raw, prefix)
    path = wsgi_str(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
    prefix = prefix.rstrip("/")
    if path != prefix and not path.startswith(prefix + "/"):
        return None
    return path[len(prefix) :] or "/"


class WSGIApp:
    """A WSGI application answering every request with ``engine.handle``.

    ``trust_proxy`` makes ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` decide the scheme
    and host of ``base_url``. ``context(environ)`` builds the request ``context`` handed to
    the authentication hook (default ``{"environ": environ}``). ``base_url``
    (``https://scim.example.com/scim/v2``) pins the SCIM base URL of ``Location`` and
    ``meta.location``, whatever ``Host`` the client sent.
    """

    def __init__(
        self,
        engine: EngineLike,
        *,
        trust_proxy: bool = False,
        context: Callable[[Environ], Mapping[str, Any]] | None = None,
        base_url: str | None = None,
    ) -> None:
        self.engine = engine
        self.trust_proxy = trust_proxy
        self.context = context
        self.base_url = None if base_url is None else checked_base_url(base_url)

    def request(self, environ: Environ, body: bytes) -> Request:
        """Translate a WSGI ``environ`` and its body into the engine's request dict."""
        headers = LowerCaseHeaders()
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
        script_name = wsgi_str(environ.get("SCRIPT_NAME", ""))
        return {
            "method": environ["REQUEST_METHOD"],
            "path": _path(environ, script_name) or wsgi_str(environ.get("PATH_INFO", "")) or "/",
            "query": query_params(environ.get("QUERY_STRING", "")),
            "headers": headers,
            "body": body,
            "base_url": self.base_url or base_url(scheme, host, script_name),
            "context": context,
        }

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        limit = self.engine.options.max_body_bytes
        # RFC 9112 §6.1; PEP 3333 forbids the app hop-by-hop headers (Connection): the
        # server decides whether to close.
        response = framing_conflict(
            environ.get("CONTENT_LENGTH") or None, environ.get("HTTP_TRANSFER_ENCODING")
        )
        if response is None:
            body = read_body(environ, limit)
            response = (
                payload_too_large(limit)
                if body is None
                else self.engine.handle(self.request(environ, body))
            )
        return _respond(environ, start_response, response)


#: PEP 3333 status lines ("200 OK") of every status the standard library names.
_STATUS_LINES = {int(s): f"{int(s)} {s.phrase}" for s in HTTPStatus}


def _respond(environ: Environ, start_response: StartResponse, response: Response) -> list[bytes]:
    status = response["status"]
    line = _STATUS_LINES.get(status) or f"{status} Unknown"
    start_response(line, outgoing_headers(response))
    # RFC 9110 §9.3.2: the server MUST NOT send content in the response to HEAD.
    return [b"" if environ["REQUEST_METHOD"] == "HEAD" else response["body"]]


class PrefixMount:
    """A WSGI app serving ``app`` under ``prefix`` and a 404 SCIM Error everywhere else.

    ``gunicorn scim_app:app`` with ``app = PrefixMount(WSGIApp(engine))`` serves SCIM at
    ``/scim/v2``; the prefix moves from ``PATH_INFO`` to ``SCRIPT_NAME`` (PEP 3333).
    """

    def __init__(self, app: WSGIApp, prefix: str = "/scim/v2") -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        script_name = wsgi_str(environ.get("SCRIPT_NAME", ""))
        if _path(environ, script_name + self.prefix) is None:
            return _respond(environ, start_response, not_mounted(self.prefix))
        native_prefix = _native(self.prefix)  # PATH_INFO starts with it: checked just above
        inner = {
            **environ,
            "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + native_prefix,
            "PATH_INFO": environ.get("PATH_INFO", "")[len(native_prefix) :],
        }
        return self.app(inner, start_response)


def _native(text: str) -> str:
    """PEP 3333 "native string": the UTF-8 bytes of ``text`` as latin-1."""
    return text.encode("utf-8").decode("latin-1")
