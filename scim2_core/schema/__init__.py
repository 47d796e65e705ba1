"""SCIM schemas and values (RFC 7643): attribute definitions, resource types, value normalisation
and the ``meta`` bookkeeping every backend applies.

This package knows nothing of HTTP or storage; the engine, PATCH and the backends build on it.
"""

from .._urns import ENTERPRISE_USER_URN, GROUP_URN, USER_URN
from ._definitions import (
    COMMON_ATTRIBUTES,
    Attribute,
    AttrRef,
    ResourceType,
    Schema,
    iter_schema_ids,
    resource_type_from_model,
)
from ._meta import first_version, next_version, now, parse_etags, touch, version_number
from ._values import (
    format_datetime,
    normalize_attributes,
    normalize_value,
    parse_datetime,
)

__all__ = [
    "COMMON_ATTRIBUTES",
    "ENTERPRISE_USER_URN",
    "GROUP_URN",
    "USER_URN",
    "AttrRef",
    "Attribute",
    "ResourceType",
    "Schema",
    "first_version",
    "format_datetime",
    "iter_schema_ids",
    "next_version",
    "normalize_attributes",
    "normalize_value",
    "now",
    "parse_datetime",
    "parse_etags",
    "resource_type_from_model",
    "touch",
    "version_number",
]
