"""The public kit for server adapters: query parsing, base URLs, error answers, headers out.

Adapters translate and mount, nothing else; these helpers keep the translation identical
everywhere so the adapters cannot drift apart (the parity suite checks they do not). An
adapter that must answer before the engine runs (a body over the limit) asks
:func:`error_response` for the SCIM Error: no adapter encodes JSON or knows SCIM rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Protocol
from urllib.parse import quote

from .._errors import ERROR_SCHEMA_URN
from .._options import Options
from .._types import Request, Response
from ._answers import (
    bad_target,
    error_response,
    framing_conflict,
    not_mounted,
    payload_too_large,
    request_timeout,
)
from ._targets import checked_base_url, engine_path, query_params, split_target

__all__ = [
    "ERROR_SCHEMA",
    "EngineLike",
    "Request",
    "Response",
    "bad_target",
    "base_url",
    "checked_base_url",
    "content_length",
    "engine_path",
    "error_response",
    "forwarded",
    "framing_conflict",
    "host_from_server",
    "not_mounted",
    "outgoing_headers",
    "payload_too_large",
    "query_params",
    "request_timeout",
    "split_mount",
    "split_target",
]

ERROR_SCHEMA = ERROR_SCHEMA_URN


class EngineLike(Protocol):
    """What a server adapter needs from :class:`scim2_core.Engine`."""

    @property
    def options(self) -> Options: ...

    @property
    def never_blocks(self) -> bool: ...

    def handle(self, request: Request) -> Response: ...


_DEFAULT_PORTS = {"http": 80, "https": 443}


def base_url(scheme: str, host: str, prefix: str) -> str:
    """``scheme://host`` followed by the (decoded) mount ``prefix``, re-quoted for a URL."""
    return f"{scheme}://{host}{_quoted_prefix(prefix)}"


@lru_cache(maxsize=64)
def _quoted_prefix(prefix: str) -> str:
    # A mount prefix is the app's, not the client's: few of them, each quoted once.
    return quote(prefix.rstrip("/"), safe="/:@!$&()*+,;=~")


def host_from_server(scheme: str, server: tuple[str, int | None] | None) -> str:
    """The authority to use when a request carries no ``Host`` header."""
    if not server:
        return "localhost"
    name, port = server
    if port is None or _DEFAULT_PORTS.get(scheme) == port:
        return name
    return f"{name}:{port}"


def forwarded(value: str | None) -> str | None:
    """The first (client-side) value of an ``X-Forwarded-*`` header, or ``None``."""
    if not value:
        return None
    first = value.split(",", 1)[0].strip()
    return first or None


def split_mount(full_path: str, rest: str) -> tuple[str, str]:
    """Split a decoded request path into (mount prefix, engine path) given the routed rest.

    ``split_mount("/scim/v2/Users", "Users")`` is ``("/scim/v2", "/Users")``.
    """
    rest = rest.lstrip("/")
    prefix = full_path[: len(full_path) - len(rest)] if rest else full_path
    return prefix.rstrip("/"), "/" + rest


def content_length(value: str | None) -> int | None:
    """The declared body length, or ``None`` when absent or not a plain decimal number."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None


def outgoing_headers(response: Response) -> list[tuple[str, str]]:
    """The engine's headers plus ``Content-Length`` where HTTP allows one.

    RFC 9110 §8.6: "A server MUST NOT send a Content-Length header field in any response
    with a status code of 1xx (Informational) or 204 (No Content)."
    """
    headers: Mapping[str, str] = response["headers"]
    pairs = list(headers.items())
    status = response["status"]
    if status >= 200 and status not in (204, 304):
        for name in headers:
            if name.lower() == "content-length":
                break
        else:
            pairs.append(("Content-Length", str(len(response["body"]))))
    return pairs
