"""The plain-dict request and response of ``Engine.handle`` (the public contract)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Required, TypedDict

__all__ = ["Request", "Response"]


class Request(TypedDict, total=False):
    """One SCIM request, as an adapter hands it to ``Engine.handle``.

    ``method`` and ``path`` are required; ``path`` is relative to the SCIM base (adapters
    strip their mount prefix), e.g. ``/Users/2819c223``. ``query`` maps each query
    parameter to its (first) value. Header names are case-insensitive. ``body`` is bytes,
    str, or an already-parsed dict. ``base_url`` (e.g. ``https://example.com/scim/v2``)
    prefixes ``meta.location`` and ``Location``. ``context`` is opaque to the engine and
    handed to the authentication hook: adapters put the framework's own request or user
    there (e.g. ``{"user": request.user}``).
    """

    method: Required[str]
    path: Required[str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes | str | dict[str, Any] | None
    base_url: str
    context: Mapping[str, Any]


class Response(TypedDict):
    """What ``Engine.handle`` returns: status, headers, and the fully encoded body.

    ``body`` is ``b""`` for 204 and 304. Adapters send it as it is, never re-encoding.
    """

    status: int
    headers: dict[str, str]
    body: bytes
