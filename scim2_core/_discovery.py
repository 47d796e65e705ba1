"""Discovery documents (RFC 7644 §4), generated from the engine's configuration.

"/ServiceProviderConfig: An HTTP GET to this endpoint will return a JSON structure that
describes the SCIM specification features available on a service provider." "/Schemas" and
"/ResourceTypes" list what the configured resource types really use, so a custom resource
type or extension appears without hand-written JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._options import Options
from ._schema import ResourceType, Schema

__all__ = ["all_schemas", "service_provider_config"]

SPC_URN = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"


def service_provider_config(
    options: Options, base_url: str, *, bulk: bool, auth_schemes: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """RFC 7643 §5, with RFC 9865 §3 ``pagination``; every flag reflects real support."""
    doc: dict[str, Any] = {
        "schemas": [SPC_URN],
        "patch": {"supported": True},
        "bulk": {
            "supported": bulk,
            "maxOperations": options.bulk_max_operations if bulk else 0,
            "maxPayloadSize": options.bulk_max_payload_bytes if bulk else 0,
        },
        "filter": {"supported": True, "maxResults": options.max_results},
        "changePassword": {"supported": True},
        "sort": {"supported": True},
        "etag": {"supported": True},
        # RFC 9865 §3: "pagination: A complex type that specifies pagination options".
        "pagination": {
            "cursor": True,
            "index": True,
            "defaultPaginationMethod": "index",
            "defaultPageSize": options.max_results,
            "maxPageSize": options.max_results,
            "cursorTimeout": options.cursor_ttl_seconds,
        },
        "authenticationSchemes": list(auth_schemes),
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }
    if options.documentation_uri:
        doc["documentationUri"] = options.documentation_uri
    return doc


def all_schemas(types: Sequence[ResourceType]) -> list[Schema]:
    """Every schema the resource types use (core first, then extensions), once each."""
    seen: dict[str, Schema] = {}
    for rt in types:
        seen.setdefault(rt.schema.id, rt.schema)
        for ext, _ in rt.extensions:
            seen.setdefault(ext.id, ext)
    return list(seen.values())


def list_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A ListResponse holding every item (discovery lists are never paged)."""
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
