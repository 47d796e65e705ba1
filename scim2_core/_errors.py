"""The one error root of scim2-core and its RFC 7644 §3.12 subclasses.

Every mistake a client can make is raised as a :class:`ScimError` subclass and turned into
a SCIM Error response in exactly one place (``Engine.handle``). Any other exception
escaping the engine's internals is a bug, logged and answered with a 500 SCIM Error.

RFC 7644 §3.12 (https://www.rfc-editor.org/rfc/rfc7644#section-3.12):

    When returning HTTP error status codes, the server SHOULD return a SCIM error
    response [...] "status": The HTTP status code [...] "scimType": A SCIM detail error
    keyword. [...] "detail": A detailed human-readable message.
"""

from __future__ import annotations

from typing import ClassVar

from ._urns import ERROR_URN

__all__ = [
    "ConfigurationError",
    "ConflictError",
    "ExpiredCursorError",
    "ForbiddenError",
    "InternalError",
    "InvalidCountError",
    "InvalidCursorError",
    "InvalidFilterError",
    "InvalidPathError",
    "InvalidSyntaxError",
    "InvalidValueError",
    "InvalidVersionError",
    "MethodNotAllowedError",
    "MutabilityError",
    "NoTargetError",
    "NotFoundError",
    "NotImplementedScimError",
    "PayloadTooLargeError",
    "PreconditionFailedError",
    "RequestTimeoutError",
    "ScimError",
    "SensitiveError",
    "ServiceUnavailableError",
    "TooManyError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UniquenessError",
    "UnsupportedMediaTypeError",
]


#: RFC 7644 §3.12: the schema of every error body.
ERROR_SCHEMA_URN = ERROR_URN


class ScimError(Exception):
    """The root of every error a client request can cause.

    ``status`` is the HTTP status the error maps to, ``scim_type`` the RFC 7644 Table 9
    keyword (``None`` where the RFC defines none for the status).
    """

    status: ClassVar[int] = 400
    scim_type: ClassVar[str | None] = None
    default_detail: ClassVar[str] = "Bad request."

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        self.detail = detail or self.default_detail
        #: Extra response headers (``Allow`` for 405, ``WWW-Authenticate`` for 401).
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.detail)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"

    def to_dict(self) -> dict[str, object]:
        """The SCIM Error body (RFC 7644 §3.12): the Error schema, ``status`` as a string,
        ``scimType`` where Table 9 defines one, and ``detail``."""
        body: dict[str, object] = {"schemas": [ERROR_SCHEMA_URN], "status": str(self.status)}
        if self.scim_type:
            body["scimType"] = self.scim_type
        body["detail"] = self.detail
        return body


class InvalidFilterError(ScimError):
    """RFC 7644 Table 9: ``invalidFilter`` (400) — "The specified filter syntax was
    invalid (does not comply with Figure 1), or the specified attribute and filter
    comparison combination is not supported."
    """

    scim_type = "invalidFilter"
    default_detail = "The filter is invalid."


class TooManyError(ScimError):
    """RFC 7644 Table 9: ``tooMany`` (400) — "The specified filter yields many more
    results than the server is willing to calculate or process."
    """

    scim_type = "tooMany"
    default_detail = "Too many results."


class UniquenessError(ScimError):
    """RFC 7644 Table 9: ``uniqueness`` (409) — "One or more of the attribute values are
    already in use or are reserved."
    """

    status = 409
    scim_type = "uniqueness"
    default_detail = "An attribute value is already in use."


class MutabilityError(ScimError):
    """RFC 7644 Table 9: ``mutability`` (400) — "The attempted modification is not
    compatible with the target attribute's mutability or current state (e.g.,
    modification of an "immutable" attribute with an existing value)."
    """

    scim_type = "mutability"
    default_detail = "The attribute cannot be modified."


class InvalidSyntaxError(ScimError):
    """RFC 7644 Table 9: ``invalidSyntax`` (400) — "The request body message structure
    was invalid or did not conform to the request schema."
    """

    scim_type = "invalidSyntax"
    default_detail = "The request body is invalid."


class InvalidPathError(ScimError):
    """RFC 7644 Table 9: ``invalidPath`` (400) — "The "path" attribute was invalid or
    malformed (see Figure 7)."
    """

    scim_type = "invalidPath"
    default_detail = "The path is invalid."


class NoTargetError(ScimError):
    """RFC 7644 Table 9: ``noTarget`` (400) — "The specified "path" did not yield an
    attribute or attribute value that could be operated on."
    """

    scim_type = "noTarget"
    default_detail = "The path matched no attribute value."


class InvalidValueError(ScimError):
    """RFC 7644 Table 9: ``invalidValue`` (400) — "A required value was missing, or the
    value specified was not compatible with the operation or attribute type, or resource
    schema."
    """

    scim_type = "invalidValue"
    default_detail = "A value is invalid."


class InvalidVersionError(ScimError):
    """RFC 7644 Table 9: ``invalidVers`` (400) — "The specified SCIM protocol version is
    not supported."
    """

    scim_type = "invalidVers"
    default_detail = "The SCIM protocol version is not supported."


class SensitiveError(ScimError):
    """RFC 7644 Table 9: ``sensitive`` (400) — "The specified request cannot be completed,
    due to the passing of sensitive (e.g., personal) information in a request URI."
    """

    scim_type = "sensitive"
    default_detail = "Sensitive information must not be passed in the URI."


class InvalidCursorError(ScimError):
    """RFC 9865 §4: ``invalidCursor`` (400) — "Cursor value is invalid. Cursor value
    should not be empty." Also used for cursors that are forged, expired, or belong to
    another query.
    """

    scim_type = "invalidCursor"
    default_detail = "The cursor is invalid or expired."


class ExpiredCursorError(ScimError):
    """RFC 9865 §2.3: ``expiredCursor`` (400) — the cursor has expired; "Clients waiting too
    long between cursor pagination requests may receive an invalid cursor error response."
    """

    scim_type = "expiredCursor"
    default_detail = "The cursor has expired; restart the query."


class InvalidCountError(ScimError):
    """RFC 9865 §2.4: ``invalidCount`` (400) — the count of a cursor request differs from
    the count of the query that issued the cursor, or is out of range.
    """

    scim_type = "invalidCount"
    default_detail = "The count is invalid for this cursor."


class UnauthorizedError(ScimError):
    """RFC 7644 Table 8: 401 Unauthorized — "Authorization failure. The authorization
    header is invalid or missing."
    """

    status = 401
    default_detail = "Authentication is required."

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(
            detail, headers={"WWW-Authenticate": 'Bearer realm="SCIM"', **(headers or {})}
        )


class ForbiddenError(ScimError):
    """RFC 7644 Table 8: 403 Forbidden — "Operation is not permitted based on the
    supplied authorization."
    """

    status = 403
    default_detail = "The operation is not permitted."


class NotFoundError(ScimError):
    """RFC 7644 Table 8: 404 Not Found — "Specified resource (e.g., User) or endpoint
    does not exist."
    """

    status = 404
    default_detail = "Resource not found."


class MethodNotAllowedError(ScimError):
    """RFC 7231 §6.5.5 405 Method Not Allowed, with the ``Allow`` header it requires.

    RFC 7644 §3.2: "If the service provider does not support a requested operation, the
    service provider SHALL respond with HTTP status code 501 (not implemented)". A method
    that an endpoint never accepts (e.g. DELETE on /Users) is answered 405, as HTTP
    requires; an operation that the configuration turns off is answered 501.
    """

    status = 405
    default_detail = "Method not allowed."

    def __init__(self, allowed: list[str], detail: str | None = None):
        if "GET" in allowed and "HEAD" not in allowed:
            # RFC 9110 §9.3.2: HEAD is served wherever GET is.
            allowed = [
                *allowed[: allowed.index("GET") + 1],
                "HEAD",
                *allowed[allowed.index("GET") + 1 :],
            ]
        super().__init__(detail, headers={"Allow": ", ".join(allowed)})
        self.allowed = allowed


class ConflictError(ScimError):
    """RFC 7644 Table 8: 409 Conflict — "The service provider refused to create a new,
    duplicate resource." Also returned per operation for circular Bulk references
    (RFC 7644 §3.7.1).
    """

    status = 409
    default_detail = "Conflict."


class PreconditionFailedError(ScimError):
    """RFC 7644 Table 8: 412 Precondition Failed — "Failed to update. Resource has
    changed on the server."
    """

    status = 412
    default_detail = "The resource has changed on the server."


class PayloadTooLargeError(ScimError):
    """RFC 7644 Table 8: 413 Payload Too Large — "{"maxOperations": 1000,"maxPayloadSize":
    1048576}"; RFC 7644 §3.7.4: the service provider returns 413 when a request exceeds
    the bulk limits.
    """

    status = 413
    default_detail = "The request payload is too large."


class UnsupportedMediaTypeError(ScimError):
    """RFC 7231 §6.5.13 415 Unsupported Media Type. RFC 7644 §3.1: "[...] the client
    [...] SHALL use the media type "application/scim+json" [...] Service providers SHOULD
    accept "application/json"."
    """

    status = 415
    default_detail = "Unsupported media type; use application/scim+json."


class NotImplementedScimError(ScimError):
    """RFC 7644 Table 8: 501 Not Implemented — "Service provider does not support the
    request operation (e.g., PATCH)."
    """

    status = 501
    default_detail = "Not implemented."


class InternalError(ScimError):
    """RFC 7644 Table 8: 500 Internal Server Error — "An internal error." The detail
    never leaks the exception; the exception is logged.
    """

    status = 500
    default_detail = "Internal server error."


class RequestTimeoutError(ScimError):
    """RFC 9110 §15.5.9: 408 Request Timeout — "the server did not receive a complete
    request message within the time that it was prepared to wait". Answered by the
    servers, before the engine runs."""

    status = 408
    default_detail = "The request was not received in time."


class TooManyRequestsError(ScimError):
    """RFC 6585 §4: 429 Too Many Requests — "the user has sent too many requests in a
    given amount of time ("rate limiting")"; the answer "MAY include a Retry-After header
    indicating how long to wait before making a new request". Answered as every other
    error, a SCIM Error body with the status (RFC 7644 §3.12), by the rate limits of
    :mod:`scim2_core.observe`. ``retry_after`` is in whole seconds (RFC 9110 §10.2.3
    ``delay-seconds``), at least 1.
    """

    status = 429
    default_detail = "Too many requests; retry after the delay in Retry-After."

    def __init__(self, retry_after: int, detail: str | None = None):
        self.retry_after = max(1, int(retry_after))
        super().__init__(detail, headers={"Retry-After": str(self.retry_after)})


class ServiceUnavailableError(ScimError):
    """RFC 9110 §15.6.4: 503 Service Unavailable — "the server is currently unable to
    handle the request due to a temporary overload". Answered by ``scim2-core serve`` above
    its connection limit."""

    status = 503
    default_detail = "The server is busy; try again shortly."


class ConfigurationError(Exception):
    """Raised at construction time when an Engine, backend or adapter is misconfigured.

    Not a :class:`ScimError`: no client request can cause it.
    """
