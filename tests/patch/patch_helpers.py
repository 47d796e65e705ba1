"""Shared fixtures for the PATCH tests: resource types, sample resources, a patch() helper."""

from __future__ import annotations

import copy
import json
from typing import Any, Final

from scim2_models import EnterpriseUser, Group, User

from scim2_core.patch import PATCH_OP_URN, PatchOptions, apply_patch, parse_patch_request
from scim2_core.schema import (
    ENTERPRISE_USER_URN,
    GROUP_URN,
    USER_URN,
    ResourceType,
    resource_type_from_model,
)

USERS: Final = resource_type_from_model(User[EnterpriseUser])
GROUPS: Final = resource_type_from_model(Group)
ENT: Final = ENTERPRISE_USER_URN

META: Final = {
    "resourceType": "User",
    "created": "2010-01-23T04:56:22.000Z",
    "lastModified": "2011-05-13T04:42:34.000Z",
    "version": 'W/"3"',
    "location": "https://example.com/v2/Users/2819c223",
}

USER: Final[dict[str, Any]] = {
    "schemas": [USER_URN, ENTERPRISE_USER_URN],
    "id": "2819c223",
    "externalId": "bjensen-ext",
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "displayName": "Babs Jensen",
    "active": True,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
    ENTERPRISE_USER_URN: {"employeeNumber": "701984", "manager": {"value": "26118915"}},
    "meta": META,
}

GROUP: Final[dict[str, Any]] = {
    "schemas": [GROUP_URN],
    "id": "e9e30dba",
    "displayName": "Tour Guides",
    "members": [
        {"value": "2819c223", "display": "Babs Jensen", "type": "User"},
        {"value": "902c246b", "type": "User"},
    ],
    "meta": {**META, "resourceType": "Group"},
}


def user(**changes: Any) -> dict[str, Any]:
    """A deep copy of USER with top-level keys replaced (None removes a key)."""
    out = copy.deepcopy(USER)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def group(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(GROUP)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_URN], "Operations": list(operations)}


def patch(
    rt: ResourceType,
    resource: dict[str, Any],
    *operations: dict[str, Any],
    strict: bool = False,
    replace_creates_missing: bool = True,
) -> dict[str, Any] | None:
    """Parse and apply a PATCH; assert the input resource is left untouched either way."""
    before = json.dumps(resource, sort_keys=True)
    try:
        ops = parse_patch_request(body(*operations), strict=strict)
        return apply_patch(
            rt,
            resource,
            ops,
            options=PatchOptions(strict=strict, replace_creates_missing=replace_creates_missing),
        )
    finally:
        assert json.dumps(resource, sort_keys=True) == before
