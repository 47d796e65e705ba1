"""Every SCIM URN and media type the package speaks, in one place.

RFC 7643 §3 names the schema URNs (``urn:ietf:params:scim:schemas:...``); RFC 7644 §3 names the
protocol messages (``urn:ietf:params:scim:api:messages:2.0:...``) and §3.1 the media type:
"SCIM requests and responses SHALL use the media type 'application/scim+json'".
"""

from __future__ import annotations

from typing import Final

# RFC 7643 §4, §8.7: resource and extension schemas
USER_URN: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN: Final = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_URN: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# Pre-RFC URNs (draft-ietf-scim-core-schema) that OneLogin still sends in POST/PUT bodies
LEGACY_CORE_URN: Final = "urn:scim:schemas:core:2.0"
LEGACY_ENTERPRISE_USER_URN: Final = "urn:scim:schemas:extension:enterprise:2.0"

# RFC 7643 §5-7: discovery schemas
SERVICE_PROVIDER_CONFIG_URN: Final = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_URN: Final = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_URN: Final = "urn:ietf:params:scim:schemas:core:2.0:Schema"

# RFC 7644 §3: protocol messages
LIST_RESPONSE_URN: Final = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST_URN: Final = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
PATCH_OP_URN: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST_URN: Final = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE_URN: Final = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
ERROR_URN: Final = "urn:ietf:params:scim:api:messages:2.0:Error"

# RFC 7644 §3.1: the media type; §3.8: "Service providers SHOULD accept 'application/json'"
SCIM_MEDIA_TYPE: Final = "application/scim+json"
ACCEPTED_MEDIA_TYPES: Final = (SCIM_MEDIA_TYPE, "application/json")
