"""Request targets and paths as received: absolute-form, raw segments, pinned base URLs."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from .._errors import ConfigurationError
from .._types import Response
from .._urns import SCIM_MEDIA_TYPE
from ..engine._request import LowerCaseHeaders, QueryParams

__all__ = [
    "asgi_headers",
    "asgi_response_headers",
    "asgi_target",
    "checked_base_url",
    "engine_path",
    "query_params",
    "split_target",
]


def split_target(target: str) -> tuple[str | None, str | None]:
    """Split a raw request target (as received, query removed) into (authority, path).

    origin-form ``/Users`` gives ``(None, "/Users")``; absolute-form
    ``http://host/Users`` gives ``("host", "/Users")`` (RFC 9112 §3.2.2: "A server MUST
    accept the absolute-form in requests", and the origin server "MUST ignore the received
    Host header field (if any) and instead use the host information of the request-target");
    any other form (``*``, ``host:443`` of CONNECT) has no path: ``(None, None)``.
    """
    if target.startswith("/"):
        return None, target
    scheme, sep, rest = target.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        authority, slash, path = rest.partition("/")
        if authority and "@" not in authority:
            return authority, slash + path or "/"
    return None, None


def _segment(raw: str) -> str:
    """One path segment decoded once; a decoded ``/``, ``?`` or ``%`` stays encoded so that
    the engine, which splits its path on ``/`` and ``?``, never takes it as a separator."""
    text = unquote_to_bytes(raw).decode("utf-8", "replace")
    return text.replace("%", "%25").replace("/", "%2F").replace("?", "%3F")


@lru_cache(maxsize=64)
def _mount_path(prefix: str) -> str:
    """The mount ``prefix`` as a raw path: its non-empty segments, each after a ``/``."""
    return "".join("/" + part for part in prefix.split("/") if part)


def engine_path(raw_path: str, prefix: str) -> str | None:
    """The engine's path for a raw (percent-encoded) request path under the decoded mount
    ``prefix``, or ``None`` when ``raw_path`` is not under ``prefix``.

    Routing uses the raw path, split on its own ``/`` before any decoding, and decodes each
    segment once: ``/Users/a%2Fb`` names the User ``a/b`` (never ``/Users/a/b``), and
    ``/scim%2Fv2/Users`` is not under the mount ``/scim/v2``.
    """
    if "%" not in raw_path:
        # Nothing to decode: under the mount when the raw path is the mount's own path or
        # continues it with a "/" (what the segment comparison below decides, in one test).
        base = _mount_path(prefix)
        if base and raw_path.startswith(base):
            rest = raw_path[len(base) :]
            if not rest:
                return "/"
            if rest[0] == "/":
                return rest
    wanted = [part for part in prefix.split("/") if part]
    raw_segments = raw_path.split("/")[1:]
    if "%" not in raw_path:  # nothing to decode: each segment is itself (the common case)
        if raw_segments[: len(wanted)] != wanted:
            return None
        return "/" + "/".join(raw_segments[len(wanted) :])
    if len(raw_segments) < len(wanted):
        return None
    for raw, want in zip(raw_segments, wanted, strict=False):
        if unquote_to_bytes(raw).decode("utf-8", "replace") != want:
            return None
    return "/" + "/".join(_segment(raw) for raw in raw_segments[len(wanted) :])


def checked_base_url(url: str) -> str:
    """``url`` as a pinned SCIM base URL (``https://host[:port][/path]``, no trailing ``/``).

    A deployment that pins its base URL never builds ``Location`` or ``meta.location`` from
    the client's ``Host`` header. Raises :class:`ConfigurationError` for anything else.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ConfigurationError(f"base URL {url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"base URL {url!r} must be http(s)://host[:port][/path]")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigurationError(
            f"base URL {url!r} must have no user, query or fragment: http(s)://host[/path]"
        )
    return url.rstrip("/")


#: Header names as servers send them (lower case, as uvicorn, h11 and hypercorn do), each
#: decoded once: the ones clients of a SCIM service send on every request.
_KNOWN_NAMES = {
    name.encode("latin-1"): name
    for name in (
        "accept",
        "accept-encoding",
        "authorization",
        "connection",
        "content-length",
        "content-type",
        "host",
        "if-match",
        "if-none-match",
        "transfer-encoding",
        "user-agent",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-request-id",
    )
}


def asgi_headers(scope: Mapping[str, Any]) -> tuple[dict[str, str], str | None, str | None]:
    """One pass over an ASGI scope's request headers: all of them by lower-case name (repeated ones
    joined with ``", "``, RFC 9110 §5.3), and the first ``Content-Length`` and
    ``Transfer-Encoding`` values as received (``None`` when absent)."""
    headers = LowerCaseHeaders()
    known = _KNOWN_NAMES
    for raw_name, raw_value in scope.get("headers", ()):
        name = known.get(raw_name)
        if name is None:
            name = raw_name.decode("latin-1").lower()
        if name in headers:
            return _joined_headers(scope)  # a repeated field (rare): the longer way
        headers[name] = raw_value.decode("latin-1")
    return headers, headers.get("content-length"), headers.get("transfer-encoding")


def _joined_headers(scope: Mapping[str, Any]) -> tuple[dict[str, str], str | None, str | None]:
    """:func:`asgi_headers` for headers that repeat a field."""
    headers = LowerCaseHeaders()
    length: str | None = None
    encoding: str | None = None
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name in headers:
            headers[name] = f"{headers[name]}, {value}"
            continue
        headers[name] = value
        if name == "content-length":
            length = value
        elif name == "transfer-encoding":
            encoding = value
    return headers, length, encoding


def asgi_target(scope: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(authority, raw path) of an ASGI request's target; (None, None) when it is not a path.

    ``raw_path`` is optional in ASGI ("Some web server implementations may be unable to
    provide this"); without it, or when a middleware rewrote ``path`` since, the decoded
    ``path`` is the target.
    """
    path: str = scope.get("path", "")
    raw = scope.get("raw_path")
    target = ""
    if isinstance(raw, bytes):
        target = raw.decode("latin-1")
        if target == path and path[:1] == "/":
            return None, target  # origin-form, nothing encoded: what clients send
        if "?" in target:  # some servers (httpx's ASGITransport) leave the query in raw_path
            target = target.split("?", 1)[0]
        # Unquoting a target with no "%" gives it back unchanged.
        if target and target != path and ("%" not in target or unquote(target) != path):
            target = ""
    return split_target(target or path)


#: The header names the engine answers with, as ASGI sends them (lower case, bytes).
_NAMES = {
    name: name.lower().encode("latin-1")
    for name in ("Content-Type", "Content-Length", "ETag", "Location", "X-Request-Id")
}
_CONTENT_TYPE = _NAMES["Content-Type"]
#: The media type of every SCIM answer, as the whole header ASGI sends.
_SCIM_TYPE = (_CONTENT_TYPE, SCIM_MEDIA_TYPE.encode("latin-1"))
#: RFC 9110 §8.6: "A server MUST NOT send a Content-Length header field in any response
#: with a status code of 1xx (Informational) or 204 (No Content)" (nor a 304 here).
_NO_LENGTH = frozenset((204, 304))


def asgi_response_headers(response: Response) -> list[tuple[bytes, bytes]]:
    """:func:`~scim2_core.serving.outgoing_headers` as ASGI sends them (names lower case,
    bytes), in one pass: the engine's own names and media type are encoded once."""
    headers: list[tuple[bytes, bytes]] = []
    length = False
    for name, value in response["headers"].items():
        key = _NAMES.get(name)
        if key is None:
            key = name.lower().encode("latin-1")
        if key is _CONTENT_TYPE and value == SCIM_MEDIA_TYPE:
            headers.append(_SCIM_TYPE)
            continue
        if key == b"content-length":
            length = True
        headers.append((key, value.encode("latin-1")))
    status = response["status"]
    if status >= 200 and status not in _NO_LENGTH and not length:
        headers.append((b"content-length", b"%d" % len(response["body"])))
    return headers


#: Query strings up to this long are decoded once and kept (:func:`query_params`).
_KEPT_QUERY = 512


def query_params(query_string: str) -> dict[str, str]:
    """Query parameters as ``str -> str``, keeping the first value of a repeated name.

    What ``urllib.parse.parse_qsl(query_string, keep_blank_values=True)`` gives (the
    HTML form encoding: ``&`` separates, ``+`` is a space, ``%XX`` is a UTF-8 byte, an
    invalid sequence becomes U+FFFD), in one pass with no work for what holds no escape.
    The last 256 short query strings are kept decoded (an identity provider asks the same
    ones again and again); each call returns a dict of its own.
    """
    if not query_string:
        return QueryParams()
    if len(query_string) <= _KEPT_QUERY:
        return QueryParams(_kept_params(query_string))
    return _decode_params(query_string)


@lru_cache(maxsize=256)
def _kept_params(query_string: str) -> QueryParams:
    return _decode_params(query_string)


def _decode_params(query_string: str) -> QueryParams:
    params = QueryParams()
    for part in query_string.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in name or "+" in name:
            name = _unquote(name)
        if "%" in value or "+" in value:
            value = _unquote(value)
        params.setdefault(name, value)
    return params


def _unquote(text: str) -> str:
    """``parse_qsl``'s decoding of one name or value."""
    text = text.replace("+", " ")
    if text.isascii():  # what unquote does with an ASCII string, without its regex split
        return unquote_to_bytes(text).decode("utf-8", "replace")
    return unquote(text)
