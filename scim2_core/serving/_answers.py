"""The SCIM Error answers an adapter or server sends before (or instead of) the engine."""

from __future__ import annotations

from .._errors import NotFoundError, PayloadTooLargeError, RequestTimeoutError, ScimError
from .._responses import error_response
from .._types import Response

__all__ = [
    "bad_target",
    "error_response",
    "framing_conflict",
    "not_mounted",
    "payload_too_large",
    "request_timeout",
]


def payload_too_large(limit: int) -> Response:
    """The 413 SCIM Error for a body larger than ``limit`` bytes (RFC 7644 Table 8),
    for adapters that refuse the body before the engine sees it."""
    return error_response(PayloadTooLargeError(f"The request body exceeds {int(limit)} bytes."))


def framing_conflict(content_length: str | None, transfer_encoding: str | None) -> Response | None:
    """The 400 SCIM Error for a request framed both ways, or ``None`` when it is not.

    RFC 9112 §6.1: "A server MAY reject a request that contains both Content-Length and
    Transfer-Encoding [...]. Regardless, the server MUST close the connection after
    responding to such a request to avoid the potential attacks" (request smuggling
    through a proxy that frames by the other header). The caller closes the connection.
    """
    if content_length is None or transfer_encoding is None:
        return None
    return error_response(
        ScimError("The request has both Content-Length and Transfer-Encoding; send one.")
    )


def bad_target() -> Response:
    """The 400 SCIM Error for a request target that is not a path (``*``, ``host:port``)."""
    return error_response(ScimError("The request target must be a path, such as /Users."))


def not_mounted(prefix: str) -> Response:
    """The 404 SCIM Error for a path outside the mount ``prefix`` (RFC 7644 Table 8:
    "Specified resource (e.g., User) or endpoint does not exist")."""
    return error_response(NotFoundError(f"Not found. The SCIM service is at {prefix}/"))


def request_timeout(seconds: float, part: str = "body") -> Response:
    """The 408 SCIM Error for a request ``part`` (body, head) not received within
    ``seconds``; the caller closes the connection (RFC 9110 §15.5.9: "the server [...]
    SHOULD send a "close" connection option")."""
    return error_response(
        RequestTimeoutError(f"The request {part} was not received within {seconds:g} seconds.")
    )
