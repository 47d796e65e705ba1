"""scim2-core: a SCIM 2.0 service provider (RFC 7643, RFC 7644, RFC 9865) over plain dicts.

No web framework is imported anywhere below this package; serve it with
:mod:`scim2_core.asgi`, :mod:`scim2_core.wsgi`, or the adapters.
"""

from ._auth import Principal, bearer_tokens
from ._engine import ChangeEvent, Engine, verify_password
from ._errors import (
    ConfigurationError,
    ConflictError,
    ExpiredCursorError,
    ForbiddenError,
    InternalError,
    InvalidCountError,
    InvalidCursorError,
    InvalidFilterError,
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    InvalidVersionError,
    MethodNotAllowedError,
    MutabilityError,
    NoTargetError,
    NotFoundError,
    NotImplementedScimError,
    PayloadTooLargeError,
    PreconditionFailedError,
    ScimError,
    SensitiveError,
    TooManyError,
    UnauthorizedError,
    UniquenessError,
    UnsupportedMediaTypeError,
)
from ._options import Options
from ._schema import Attribute, AttrRef, ResourceType, Schema
from ._types import Request, Response

__all__ = [
    "AttrRef",
    "Attribute",
    "ChangeEvent",
    "ConfigurationError",
    "ConflictError",
    "Engine",
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
    "Options",
    "PayloadTooLargeError",
    "PreconditionFailedError",
    "Principal",
    "Request",
    "ResourceType",
    "Response",
    "Schema",
    "ScimError",
    "SensitiveError",
    "TooManyError",
    "UnauthorizedError",
    "UniquenessError",
    "UnsupportedMediaTypeError",
    "bearer_tokens",
    "verify_password",
]
