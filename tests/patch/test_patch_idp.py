"""PATCH bodies real identity providers send (Microsoft Entra ID, Okta).

Each tolerance is documented in docs/idp-notes.md. Each case runs tolerant (the default:
accepted with the intended result) and strict (rejected with the given error).
"""

from __future__ import annotations

from typing import Any

import pytest
from patch_helpers import ENT, GROUPS, USER_URN, USERS, group, patch, user

from scim2_core import (
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    MutabilityError,
    NoTargetError,
    ScimError,
)
from scim2_core.schema import ResourceType

MEMBERS = group()["members"]
EMAILS = user()["emails"]

# (id, resource type, resource, operations, tolerant result, strict error or None when the
# strict mode gives the same result)
CASES: list[
    tuple[str, ResourceType, dict[str, Any], list[dict[str, Any]], Any, type[ScimError] | None]
] = [
    (
        "entra-capitalised-replace",
        USERS,
        user(),
        [{"op": "Replace", "path": "displayName", "value": "Barbara Jensen"}],
        user(displayName="Barbara Jensen"),
        InvalidSyntaxError,
    ),
    (
        "entra-boolean-as-string",
        USERS,
        user(),
        [{"op": "Replace", "path": "active", "value": "False"}],
        user(active=False),
        InvalidSyntaxError,
    ),
    (
        "entra-boolean-as-string-lowercase-op",
        USERS,
        user(),
        [{"op": "replace", "path": "active", "value": "False"}],
        user(active=False),
        InvalidValueError,
    ),
    (
        "entra-add-members",
        GROUPS,
        group(),
        [{"op": "Add", "path": "members", "value": [{"value": "5a3b6c8d"}]}],
        group(members=[*MEMBERS, {"value": "5a3b6c8d"}]),
        InvalidSyntaxError,
    ),
    (
        "entra-remove-members-with-value-array",
        GROUPS,
        group(),
        [{"op": "Remove", "path": "members", "value": [{"value": "2819c223"}]}],
        group(members=[MEMBERS[1]]),
        InvalidSyntaxError,
    ),
    (
        "entra-remove-members-with-value-array-lowercase-op",
        GROUPS,
        group(),
        [{"op": "remove", "path": "members", "value": [{"value": "2819c223"}]}],
        group(members=[MEMBERS[1]]),
        InvalidValueError,
    ),
    (
        "entra-manager-bare-string-no-path",
        USERS,
        user(),
        [{"op": "replace", "value": {f"{ENT}:manager": "mgr-id"}}],
        user(**{ENT: {"employeeNumber": "701984", "manager": {"value": "mgr-id"}}}),
        InvalidValueError,
    ),
    (
        "entra-manager-bare-string-path",
        USERS,
        user(),
        [{"op": "Add", "path": f"{ENT}:manager", "value": "mgr-id"}],
        user(**{ENT: {"employeeNumber": "701984", "manager": {"value": "mgr-id"}}}),
        InvalidSyntaxError,
    ),
    (
        "entra-dotted-keys-in-value",
        USERS,
        user(),
        [
            {
                "op": "replace",
                "value": {"name.givenName": "Babs", "name.familyName": "J", "active": True},
            }
        ],
        user(name={"givenName": "Babs", "familyName": "J"}),
        None,
    ),
    (
        "entra-replace-work-email-creates-it",
        USERS,
        user(emails=[EMAILS[1]]),
        [{"op": "Replace", "path": 'emails[type eq "work"].value', "value": "b@work.example"}],
        user(emails=[EMAILS[1], {"type": "work", "value": "b@work.example"}]),
        InvalidSyntaxError,
    ),
    (
        "entra-replace-work-email-creates-it-lowercase-op",
        USERS,
        user(emails=None),
        [{"op": "replace", "path": 'emails[type eq "work"].value', "value": "b@work.example"}],
        user(emails=[{"type": "work", "value": "b@work.example"}]),
        NoTargetError,
    ),
    (
        "entra-add-address-sub-attribute-by-filter",
        USERS,
        user(),
        [
            {
                "op": "Add",
                "path": 'addresses[type eq "work"].streetAddress',
                "value": "1 Main St",
            }
        ],
        user(addresses=[{"type": "work", "streetAddress": "1 Main St"}]),
        InvalidSyntaxError,
    ),
    (
        "entra-remove-manager",
        USERS,
        user(),
        [{"op": "Remove", "path": f"{ENT}:manager"}],
        user(**{ENT: {"employeeNumber": "701984"}}),
        InvalidSyntaxError,
    ),
    (
        "okta-rename-with-id-in-value",
        GROUPS,
        group(),
        [{"op": "replace", "value": {"id": "e9e30dba", "displayName": "New"}}],
        group(displayName="New"),
        MutabilityError,
    ),
    (
        "okta-remove-member-by-filter",
        GROUPS,
        group(),
        [{"op": "remove", "path": 'members[value eq "902c246b"]'}],
        group(members=[MEMBERS[0]]),
        None,
    ),
    (
        "okta-deactivate",
        USERS,
        user(),
        [{"op": "replace", "value": {"active": False}}],
        user(active=False),
        None,
    ),
    (
        "okta-primary-filter-with-string-boolean",
        USERS,
        user(),
        [{"op": "replace", "path": 'emails[primary eq "True"].type', "value": "other"}],
        user(emails=[{**EMAILS[0], "type": "other"}, EMAILS[1]]),
        None,
    ),
    (
        "schemas-and-meta-in-no-path-value-ignored",
        USERS,
        user(),
        [
            {
                "op": "replace",
                "value": {
                    "schemas": [USER_URN],
                    "meta": {"version": 'W/"9"'},
                    "nickName": "Babs",
                },
            }
        ],
        user(nickName="Babs"),
        MutabilityError,
    ),
    (
        "ref-null-on-added-member-dropped",
        GROUPS,
        group(),
        [{"op": "add", "path": "members", "value": [{"value": "77", "$ref": None}]}],
        group(members=[*MEMBERS, {"value": "77"}]),
        None,
    ),
    (
        "unknown-key-in-no-path-value-ignored",
        USERS,
        user(),
        [{"op": "add", "value": {"favouriteColour": "blue", "title": "Guide"}}],
        user(title="Guide"),
        InvalidPathError,
    ),
    (
        "attribute-names-in-any-case",
        USERS,
        user(),
        [{"op": "replace", "value": {"DISPLAYNAME": "B", "Name": {"GivenName": "X"}}}],
        user(displayName="B", name={"givenName": "X", "familyName": "Jensen"}),
        None,
    ),
    (
        "operations-key-and-op-keys-in-any-case",
        USERS,
        user(),
        [{"OP": "replace", "Path": "title", "Value": "T"}],
        user(title="T"),
        InvalidSyntaxError,
    ),
    (
        "empty-path-is-no-path",
        USERS,
        user(),
        [{"op": "replace", "path": "", "value": {"title": "T"}}],
        user(title="T"),
        InvalidPathError,
    ),
    (
        "null-path-is-no-path",
        USERS,
        user(),
        [{"op": "add", "path": None, "value": {"title": "T"}}],
        user(title="T"),
        InvalidPathError,
    ),
    (
        "read-only-sub-attribute-in-value-ignored",
        USERS,
        user(),
        [{"op": "add", "path": f"{ENT}:manager", "value": {"value": "m", "displayName": "B"}}],
        user(**{ENT: {"employeeNumber": "701984", "manager": {"value": "m"}}}),
        MutabilityError,
    ),
    (
        "remove-every-member-by-value-array",
        GROUPS,
        group(),
        [{"op": "remove", "path": "members", "value": [{"value": m["value"]} for m in MEMBERS]}],
        group(members=None),
        InvalidValueError,
    ),
    (
        "remove-by-value-array-without-value-sub-attribute",
        USERS,
        user(addresses=[{"type": "work", "locality": "A"}, {"type": "home"}]),
        [{"op": "remove", "path": "addresses", "value": [{"type": "home"}]}],
        user(addresses=[{"type": "work", "locality": "A"}]),
        InvalidValueError,
    ),
    (
        "lone-object-for-multi-valued",
        GROUPS,
        group(),
        [{"op": "add", "path": "members", "value": {"value": "77"}}],
        group(members=[*MEMBERS, {"value": "77"}]),
        InvalidValueError,
    ),
    (
        "unknown-key-in-extension-object-ignored",
        USERS,
        user(),
        [{"op": "add", "value": {ENT: {"favouriteColour": "blue", "costCenter": "9"}}}],
        user(**{ENT: {**user()[ENT], "costCenter": "9"}}),
        InvalidPathError,
    ),
]


@pytest.mark.parametrize(
    ("rt", "resource", "operations", "expected", "strict_error"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_idp_patch(
    rt: ResourceType,
    resource: dict[str, Any],
    operations: list[dict[str, Any]],
    expected: dict[str, Any] | None,
    strict_error: type[ScimError] | None,
) -> None:
    assert patch(rt, resource, *operations) == expected
    if strict_error is None:
        assert patch(rt, resource, *operations, strict=True) == expected
    else:
        with pytest.raises(strict_error):
            patch(rt, resource, *operations, strict=True)


def test_operations_key_in_any_case() -> None:
    from scim2_core.patch import PATCH_OP_URN, parse_patch_request

    message = {"schemas": [PATCH_OP_URN], "operations": [{"op": "Add", "value": {"title": "x"}}]}
    assert parse_patch_request(message, strict=False)[0].op == "add"
    with pytest.raises(InvalidSyntaxError):
        parse_patch_request(message, strict=True)


def test_replace_creates_missing_can_be_turned_off() -> None:
    with pytest.raises(NoTargetError):
        patch(
            USERS,
            user(emails=None),
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "a@b"},
            replace_creates_missing=False,
        )
