"""Discovery documents (RFC 7644 §4), generated from the engine's configuration.

"/ServiceProviderConfig: An HTTP GET to this endpoint will return a JSON structure that
describes the SCIM specification features available on a service provider." "/Schemas" and
"/ResourceTypes" list what the configured resource types really use, so a custom resource
type or extension appears without hand-written JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._errors import ForbiddenError, MethodNotAllowedError, NotFoundError
from .._options import Options
from .._types import Response
from .._urns import LIST_RESPONSE_URN, SERVICE_PROVIDER_CONFIG_URN
from ..schema import ResourceType, Schema
from ._request import DISCOVERY_ENDPOINTS, Ctx, json_response
from ._state import EngineState

__all__ = ["all_schemas", "serve_discovery", "service_provider_config"]


def service_provider_config(
    options: Options, base_url: str, *, bulk: bool, auth_schemes: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """RFC 7643 §5, with RFC 9865 §3 ``pagination``; every flag reflects real support."""
    doc: dict[str, Any] = {
        "schemas": [SERVICE_PROVIDER_CONFIG_URN],
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
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def serve_discovery(state: EngineState, ctx: Ctx) -> Response | None:
    """Answer ``/ServiceProviderConfig``, ``/ResourceTypes[/name]`` and ``/Schemas[/urn]``;
    None when the path is not a discovery endpoint.

    RFC 7644 §4: "Query parameters described in Section 3.4.2, such as filtering,
    sorting, and pagination, SHALL be ignored. If a "filter" is provided, the service
    provider SHOULD respond with HTTP status code 403 (Forbidden) to ensure that
    clients cannot incorrectly assume that any matching conditions specified in a
    filter are true."
    """
    seg = ctx.segments
    head = seg[0].lower()
    if head not in DISCOVERY_ENDPOINTS or len(seg) > (1 if head == "serviceproviderconfig" else 2):
        return None
    if ctx.method != "GET":
        raise MethodNotAllowedError(["GET"])
    if "filter" in ctx.query:
        raise ForbiddenError("Discovery endpoints cannot be filtered (RFC 7644 §4).")
    name = seg[1] if len(seg) == 2 else None
    if head == "serviceproviderconfig":
        return json_response(200, _spc(state, ctx))
    if head == "resourcetypes":
        return _resource_types(state, ctx, name)
    return _schema_docs(state, ctx, name)


def _spc(state: EngineState, ctx: Ctx) -> dict[str, Any]:
    schemes = [
        {
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token (RFC 6750).",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": True,
        }
    ]
    return service_provider_config(state.options, ctx.base_url, bulk=True, auth_schemes=schemes)


def _resource_types(state: EngineState, ctx: Ctx, name: str | None) -> Response:
    if name is None:
        return json_response(200, list_response([rt.to_dict(ctx.base_url) for rt in state.types]))
    for rt in state.types:
        if rt.name.lower() == name.lower():
            return json_response(200, rt.to_dict(ctx.base_url))
    raise NotFoundError(f"No resource type {name!r}.")


def _schema_docs(state: EngineState, ctx: Ctx, urn: str | None) -> Response:
    if urn is None:
        return json_response(200, list_response([s.to_dict(ctx.base_url) for s in state.schemas]))
    schema: Schema | None = state.schemas_by_lower.get(urn.lower())
    if schema is None:
        raise NotFoundError(f"No schema {urn!r}.")
    return json_response(200, schema.to_dict(ctx.base_url))
