"""scim2-core: a SCIM 2.0 service provider (RFC 7643, RFC 7644, RFC 9865) over plain dicts.

No web framework is imported anywhere below this package; serve it with
:mod:`scim2_core.asgi`, :mod:`scim2_core.wsgi`, or the adapters.
"""

__version__ = "0.1.0"  # the one place it is written: pyproject.toml reads it (PEP 440)

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
from ._types import Request, Response
from .engine import (
    ChangeEvent,
    Directory,
    Engine,
    Principal,
    ResourceCollection,
    SearchResult,
    bearer_tokens,
    verify_password,
)
from .schema import Attribute, AttrRef, ResourceType, Schema

__all__ = [
    "AttrRef",
    "Attribute",
    "ChangeEvent",
    "ConfigurationError",
    "ConflictError",
    "Directory",
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
    "ResourceCollection",
    "ResourceType",
    "Response",
    "Schema",
    "ScimError",
    "SearchResult",
    "SensitiveError",
    "TooManyError",
    "UnauthorizedError",
    "UniquenessError",
    "UnsupportedMediaTypeError",
    "bearer_tokens",
    "verify_password",
]
