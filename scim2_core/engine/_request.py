"""One request: decoding the plain request dict, authentication, reading the JSON body,
and the response helpers every handler shares.

The engine never raises out of :meth:`~scim2_core.Engine.handle`: the helpers here raise
:class:`~scim2_core.ScimError` subclasses, turned into SCIM Error responses by
:func:`scim2_core._responses.error_response` (RFC 7644 §3.12), the one place that does so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import (
    InvalidSyntaxError,
    NotImplementedScimError,
    PayloadTooLargeError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from .._options import Options
from .._responses import error_response, json_response
from .._types import Request
from .._urns import ACCEPTED_MEDIA_TYPES
from ..schema import parse_etags

__all__ = [
    "DISCOVERY_ENDPOINTS",
    "Authenticate",
    "Ctx",
    "LowerCaseHeaders",
    "QueryParams",
    "authenticate",
    "check_method",
    "decode",
    "error_response",
    "has_urn",
    "if_match",
    "json_response",
    "read_body",
]

Authenticate = Callable[[Request], Any]

_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")

#: RFC 9110 §9 methods, spelled as registered: "The method token is case-sensitive".
_HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"))

#: The first path segment of each discovery endpoint (RFC 7644 §4), lower-cased.
DISCOVERY_ENDPOINTS = frozenset(("serviceproviderconfig", "resourcetypes", "schemas"))


@dataclass(slots=True)
class Ctx:
    """One request, decoded once: what every handler reads."""

    method: str
    segments: list[str]
    query: Mapping[str, str]
    #: Header names lower-cased.
    headers: dict[str, str]
    body: bytes | str | dict[str, Any] | None
    #: Without a trailing slash; prefixes ``meta.location`` and ``Location``.
    base_url: str
    principal: Any = None
    #: Scopes every backend call (the principal's ``tenant`` attribute).
    tenant: str | None = None
    parsed: dict[str, Any] | None = field(default=None)
    #: The request's ``X-Request-Id`` (or one the engine made up): in events and the audit log.
    request_id: str | None = None
    #: Set by a write for the audit log: the resource written, and its change.
    written_id: str | None = None
    change: dict[str, Any] | None = None


class LowerCaseHeaders(dict[str, str]):
    """Request headers already as :class:`Ctx` keeps them: names lower case, values
    strings (repeated fields joined). The transports of :mod:`scim2_core.serving` build
    them so; :func:`decode` takes them as they are instead of copying them."""

    __slots__ = ()


class QueryParams(dict[str, str]):
    """Query parameters already as :class:`Ctx` keeps them: names and values decoded
    strings, the first value of a repeated name. :func:`scim2_core.serving.query_params`
    builds them so; :func:`decode` takes them as they are instead of copying them."""

    __slots__ = ()


def _header_map(headers: Any) -> dict[str, str]:
    if type(headers) is LowerCaseHeaders:
        return headers
    if not headers:
        return {}
    items = headers.items() if type(headers) is dict or isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for key, value in items:
        out[str(key).lower()] = value if isinstance(value, str) else str(value)
    return out


def decode(request: Any) -> Ctx:
    """Check the shape of a plain request dict and decode it once."""
    # ``type(x) is dict`` first: what every transport passes, decided without the
    # (slower) abstract-class check.
    if type(request) is not dict and not isinstance(request, Mapping):
        raise InvalidSyntaxError("The request must be a mapping.")
    get = request.get
    method = get("method")
    path = get("path")
    if not isinstance(method, str) or not isinstance(path, str):
        raise InvalidSyntaxError("The request needs a method and a path.")
    query_in = get("query")
    query: Mapping[str, str]
    if not query_in:
        query = {}
    elif type(query_in) is QueryParams:
        query = query_in
    elif type(query_in) is dict or isinstance(query_in, Mapping):
        query = {str(k): v if isinstance(v, str) else str(v) for k, v in query_in.items()}
    else:
        raise InvalidSyntaxError("The query must be a mapping.")
    base_url = get("base_url") or ""
    if type(base_url) is not str:
        base_url = base_url if isinstance(base_url, str) else ""
    if "?" in path:
        path = path.split("?", 1)[0]
    headers = get("headers")
    return Ctx(
        method,
        list(filter(None, path.split("/"))),
        query,
        headers if type(headers) is LowerCaseHeaders else _header_map(headers),
        get("body"),
        base_url.rstrip("/") if base_url.endswith("/") else base_url,
    )


def check_method(ctx: Ctx) -> None:
    """RFC 9110 §9.1: "The method token is case-sensitive [...] An origin server that
    receives a request method that is unrecognized or not implemented SHOULD respond with
    the 501 (Not Implemented) status code." ``delete`` is not DELETE: it is refused, never
    executed. A known method an endpoint does not take is 405 (see the routes)."""
    if ctx.method not in _HTTP_METHODS:
        raise NotImplementedScimError(
            f"Method {ctx.method!r} is not implemented (methods are case-sensitive)."
        )


def authenticate(ctx: Ctx, request: Request, hook: Authenticate | None, options: Options) -> None:
    """Run the ``authenticate`` hook: None is 401 (RFC 7644 §2), except on discovery
    endpoints when ``options.discovery_requires_auth`` is off; the principal's ``tenant``
    scopes the request."""
    if hook is None:
        return
    principal = hook(request)
    if principal is None:
        discovery = bool(ctx.segments) and ctx.segments[0].lower() in DISCOVERY_ENDPOINTS
        if discovery and not options.discovery_requires_auth:
            return
        raise UnauthorizedError()
    ctx.principal = principal
    tenant = getattr(principal, "tenant", None)
    ctx.tenant = tenant if isinstance(tenant, str) else None


def read_body(ctx: Ctx, options: Options) -> dict[str, Any]:
    """The JSON object of a POST/PUT/PATCH body (RFC 7644 §3.1, §3.12 invalidSyntax)."""
    if ctx.parsed is not None:
        return ctx.parsed
    ctype = ctx.headers.get("content-type")
    if ctype is not None and ctype.strip():
        media = ctype.split(";", 1)[0].strip().lower()
        # RFC 7644 §3.1: clients use application/scim+json; "Service providers SHOULD
        # accept "application/json"".
        if media not in ACCEPTED_MEDIA_TYPES:
            raise UnsupportedMediaTypeError(
                f"Content-Type {media!r} is not supported; use application/scim+json."
            )
    body = ctx.body
    if isinstance(body, dict):
        ctx.parsed = body
        return body
    if body is None or body == b"" or body == "":
        raise InvalidSyntaxError("The request body is empty.")
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise InvalidSyntaxError("The request body must be JSON.")
    raw = bytes(body)
    if len(raw) > options.max_body_bytes:
        raise PayloadTooLargeError(f"The request body exceeds {options.max_body_bytes} bytes.")
    try:
        # RFC 8259 §8.1: "JSON text exchanged between systems [...] MUST be encoded using
        # UTF-8". Decoded strictly: json.loads(bytes) would let CESU-8 surrogates (ED A0 80)
        # through as lone surrogates, which no database can store (UnicodeDecodeError is a
        # ValueError: 400 invalidSyntax below).
        parsed = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise InvalidSyntaxError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidSyntaxError("The request body must be a JSON object.")
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidSyntaxError("The request body holds an unpaired surrogate.") from None
    ctx.parsed = parsed
    return parsed


def if_match(ctx: Ctx) -> list[str] | None:
    """The entity tags of the request's ``If-Match`` header (RFC 7644 §3.14), or None.

    Checked by the backend atomically with the write, and by a GET.
    """
    header = ctx.headers.get("if-match")
    if header is None:
        return None
    return parse_etags(header)


def has_urn(schemas: Any, urn: str) -> bool:
    """True if ``schemas`` is a list naming ``urn`` (compared case-insensitively)."""
    if not isinstance(schemas, list):
        return False
    low = urn.lower()
    return any(isinstance(s, str) and s.lower() == low for s in schemas)
