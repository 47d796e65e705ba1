"""RFC 7644 §3.5.2 PATCH: add / remove / replace, as tables of (resource, operations, result)."""

from __future__ import annotations

from typing import Any

import pytest
from patch_helpers import ENT, GROUP_URN, GROUPS, USER_URN, USERS, group, patch, user

from scim2_core import (
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    MutabilityError,
    NoTargetError,
    ScimError,
)
from scim2_core.patch import PATCH_OP_URN, PatchOptions, apply_patch, parse_patch_request
from scim2_core.schema import ResourceType
from tests.helpers import assert_error, call, create_user, make_engine

EMAILS = user()["emails"]
MEMBERS = group()["members"]

# (id, resource type, resource, operations, strict, expected result; None = unchanged)
SUCCESS: list[tuple[str, ResourceType, dict[str, Any], list[dict[str, Any]], bool, Any]] = [
    # §3.5.2.1 Add
    (
        "add-member-rfc-example",
        GROUPS,
        group(),
        [
            {
                "op": "add",
                "path": "members",
                "value": [
                    {
                        "display": "Babs Jensen",
                        "$ref": "https://example.com/v2/Users/2819c224",
                        "value": "2819c224",
                    }
                ],
            }
        ],
        True,
        group(
            members=[
                *MEMBERS,
                {
                    "display": "Babs Jensen",
                    "$ref": "https://example.com/v2/Users/2819c224",
                    "value": "2819c224",
                },
            ]
        ),
    ),
    (
        "add-existing-member-is-no-change",
        GROUPS,
        group(),
        [{"op": "add", "path": "members", "value": [{"value": "902c246b"}]}],
        True,
        None,
    ),
    (
        "add-members-to-group-with-none",
        GROUPS,
        group(members=None),
        [{"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "a"}]}],
        True,
        group(members=[{"value": "a"}]),
    ),
    (
        "add-many-members-deduplicates",
        GROUPS,
        group(),
        [
            {
                "op": "add",
                "path": "members",
                "value": [{"value": v} for v in ("a", "902c246b", "b", "a", "c", "d", "b")],
            }
        ],
        True,
        group(members=[*MEMBERS, *({"value": v} for v in ("a", "b", "c", "d"))]),
    ),
    (
        "add-no-path-rfc-example",
        USERS,
        user(emails=None, nickName=None),
        [
            {
                "op": "add",
                "value": {
                    "emails": [{"value": "babs@jensen.org", "type": "home"}],
                    "nickName": "Babs",
                },
            }
        ],
        True,
        user(emails=[{"value": "babs@jensen.org", "type": "home"}], nickName="Babs"),
    ),
    (
        "add-single-valued-replaces",
        USERS,
        user(),
        [{"op": "add", "path": "displayName", "value": "Barbara J."}],
        True,
        user(displayName="Barbara J."),
    ),
    (
        "add-same-value-is-no-change",
        USERS,
        user(),
        [{"op": "add", "path": "displayName", "value": "Babs Jensen"}],
        True,
        None,
    ),
    (
        "add-complex-merges-sub-attributes",
        USERS,
        user(),
        [{"op": "add", "path": "name", "value": {"middleName": "Jane"}}],
        True,
        user(name={"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"}),
    ),
    (
        "add-sub-attribute",
        USERS,
        user(),
        [{"op": "add", "path": "name.honorificPrefix", "value": "Ms."}],
        True,
        user(name={"givenName": "Barbara", "familyName": "Jensen", "honorificPrefix": "Ms."}),
    ),
    (
        "add-primary-email-clears-old-primary",
        USERS,
        user(),
        [
            {
                "op": "add",
                "path": "emails",
                "value": [{"value": "b@new.org", "type": "other", "primary": True}],
            }
        ],
        True,
        user(
            emails=[
                {"value": "bjensen@example.com", "type": "work", "primary": False},
                EMAILS[1],
                {"value": "b@new.org", "type": "other", "primary": True},
            ]
        ),
    ),
    (
        "add-filtered-sub-attribute-creates-value",
        USERS,
        user(),
        [{"op": "add", "path": 'addresses[type eq "work"].locality', "value": "Hollywood"}],
        True,
        user(addresses=[{"type": "work", "locality": "Hollywood"}]),
    ),
    (
        "add-extension-attribute-by-urn-path",
        USERS,
        user(),
        [{"op": "add", "path": f"{ENT}:department", "value": "Tour Operations"}],
        True,
        user(**{ENT: {**user()[ENT], "department": "Tour Operations"}}),
    ),
    (
        "add-extension-object-by-bare-urn-path",
        USERS,
        user(schemas=[USER_URN], **{ENT: None}),
        [{"op": "add", "path": ENT, "value": {"costCenter": "4130"}}],
        True,
        user(**{ENT: {"costCenter": "4130"}}),
    ),
    (
        "add-no-path-urn-key-holding-object",
        USERS,
        user(),
        [{"op": "add", "value": {ENT: {"division": "Theme Park"}}}],
        True,
        user(**{ENT: {**user()[ENT], "division": "Theme Park"}}),
    ),
    (
        "add-no-path-urn-qualified-and-dotted-keys",
        USERS,
        user(),
        [
            {
                "op": "add",
                "value": {f"{ENT}:employeeNumber": "42", "name.givenName": "Babs"},
            }
        ],
        True,
        user(
            name={"givenName": "Babs", "familyName": "Jensen"},
            **{ENT: {**user()[ENT], "employeeNumber": "42"}},
        ),
    ),
    (
        "add-no-path-core-urn-qualified-key",
        USERS,
        user(),
        [{"op": "add", "value": {f"{USER_URN}:title": "Tour Guide"}}],
        True,
        user(title="Tour Guide"),
    ),
    # §3.5.2.2 Remove
    (
        "remove-member-rfc-example",
        GROUPS,
        group(),
        [{"op": "remove", "path": 'members[value eq "2819c223"]'}],
        True,
        group(members=[MEMBERS[1]]),
    ),
    (
        "remove-all-members-rfc-example",
        GROUPS,
        group(),
        [{"op": "remove", "path": "members"}],
        True,
        group(members=None),
    ),
    (
        "remove-last-member-unassigns",
        GROUPS,
        group(members=[MEMBERS[0]]),
        [{"op": "remove", "path": 'members[value eq "2819c223"]'}],
        True,
        group(members=None),
    ),
    (
        "remove-missing-member-is-no-change",
        GROUPS,
        group(),
        [{"op": "remove", "path": 'members[value eq "nobody"]'}],
        True,
        None,
    ),
    (
        "remove-then-add-rfc-example",
        GROUPS,
        group(),
        [
            {"op": "remove", "path": "members"},
            {"op": "add", "path": "members", "value": [{"value": "2819c223"}]},
        ],
        True,
        group(members=[{"value": "2819c223"}]),
    ),
    (
        "remove-filtered-sub-attribute",
        USERS,
        user(),
        [{"op": "remove", "path": 'emails[type eq "work"].primary'}],
        True,
        user(emails=[{"value": "bjensen@example.com", "type": "work"}, EMAILS[1]]),
    ),
    (
        "remove-single-valued",
        USERS,
        user(),
        [{"op": "remove", "path": "displayName"}],
        True,
        user(displayName=None),
    ),
    (
        "remove-unassigned-is-no-change",
        USERS,
        user(),
        [{"op": "remove", "path": "title"}],
        True,
        None,
    ),
    (
        "remove-extension-attribute",
        USERS,
        user(),
        [{"op": "remove", "path": f"{ENT}:manager"}],
        True,
        user(**{ENT: {"employeeNumber": "701984"}}),
    ),
    (
        "remove-extension-object-drops-schema",
        USERS,
        user(),
        [{"op": "remove", "path": ENT}],
        True,
        user(schemas=[USER_URN], **{ENT: None}),
    ),
    (
        "remove-last-extension-attribute-drops-schema",
        USERS,
        user(**{ENT: {"employeeNumber": "1"}}),
        [{"op": "remove", "path": f"{ENT}:employeeNumber"}],
        True,
        user(schemas=[USER_URN], **{ENT: None}),
    ),
    (
        "remove-whole-member-is-allowed-although-sub-attributes-are-immutable",
        GROUPS,
        group(),
        [{"op": "remove", "path": 'members[value eq "902c246b"]'}],
        True,
        group(members=[MEMBERS[0]]),
    ),
    # §3.5.2.3 Replace
    (
        "replace-members-rfc-example",
        GROUPS,
        group(),
        [
            {
                "op": "replace",
                "path": "members",
                "value": [{"display": "Babs Jensen", "value": "2819c224"}],
            }
        ],
        True,
        group(members=[{"display": "Babs Jensen", "value": "2819c224"}]),
    ),
    (
        "replace-filtered-record-rfc-example",
        USERS,
        user(addresses=[{"type": "work", "locality": "Hollywood"}]),
        [
            {
                "op": "replace",
                "path": 'addresses[type eq "work"]',
                "value": {"type": "work", "streetAddress": "911 Universal City Plaza"},
            }
        ],
        True,
        user(
            addresses=[
                {
                    "type": "work",
                    "locality": "Hollywood",
                    "streetAddress": "911 Universal City Plaza",
                }
            ]
        ),
    ),
    (
        "replace-filtered-sub-attribute-rfc-example",
        USERS,
        user(),
        [
            {
                "op": "replace",
                "path": 'emails[type eq "work"].value',
                "value": "bjensen@work.example.com",
            }
        ],
        True,
        user(
            emails=[
                {"value": "bjensen@work.example.com", "type": "work", "primary": True},
                EMAILS[1],
            ]
        ),
    ),
    (
        "replace-no-path-rfc-example",
        USERS,
        user(),
        [
            {
                "op": "replace",
                "value": {
                    "emails": [{"value": "bjensen@example.com", "type": "work"}],
                    "nickName": "Babs",
                },
            }
        ],
        True,
        user(emails=[{"value": "bjensen@example.com", "type": "work"}], nickName="Babs"),
    ),
    (
        "replace-complex-leaves-other-sub-attributes",
        USERS,
        user(),
        [{"op": "replace", "path": "name", "value": {"givenName": "Babs"}}],
        True,
        user(name={"givenName": "Babs", "familyName": "Jensen"}),
    ),
    (
        "replace-missing-attribute-adds-it",
        USERS,
        user(),
        [{"op": "replace", "path": "title", "value": "Guide"}],
        True,
        user(title="Guide"),
    ),
    (
        "replace-with-null-unassigns",
        USERS,
        user(),
        [{"op": "replace", "path": "displayName", "value": None}],
        True,
        user(displayName=None),
    ),
    (
        "replace-member-display-is-allowed",
        GROUPS,
        group(),
        [{"op": "replace", "path": 'members[value eq "902c246b"].display', "value": "Joe"}],
        True,
        group(members=[MEMBERS[0], {**MEMBERS[1], "display": "Joe"}]),
    ),
    (
        "replace-primary-moves-it",
        USERS,
        user(),
        [{"op": "replace", "path": 'emails[type eq "home"].primary', "value": True}],
        True,
        user(
            emails=[
                {**EMAILS[0], "primary": False},
                {**EMAILS[1], "primary": True},
            ]
        ),
    ),
    (
        "names-are-case-insensitive",
        USERS,
        user(),
        [{"op": "replace", "path": "NAME.GIVENNAME", "value": "B"}],
        True,
        user(name={"givenName": "B", "familyName": "Jensen"}),
    ),
    (
        "filter-on-and-of-two-comparisons",
        USERS,
        user(),
        [
            {
                "op": "replace",
                "path": 'emails[type eq "work" and value ew "example.com"].display',
                "value": "Work",
            }
        ],
        True,
        user(emails=[{**EMAILS[0], "display": "Work"}, EMAILS[1]]),
    ),
    (
        "no-path-replace-extension-with-null-removes-it",
        USERS,
        user(),
        [{"op": "replace", "value": {ENT: None}}],
        True,
        user(schemas=[USER_URN], **{ENT: None}),
    ),
    (
        "replace-extension-path-with-null-removes-it",
        USERS,
        user(),
        [{"op": "replace", "path": ENT, "value": None}],
        True,
        user(schemas=[USER_URN], **{ENT: None}),
    ),
    (
        "sub-attribute-of-every-value-without-filter",
        USERS,
        user(),
        [{"op": "replace", "path": "emails.display", "value": "E"}],
        True,
        user(emails=[{**EMAILS[0], "display": "E"}, {**EMAILS[1], "display": "E"}]),
    ),
    (
        "remove-sub-attribute-of-every-value-without-filter",
        USERS,
        user(),
        [{"op": "remove", "path": "emails.type"}],
        True,
        user(
            emails=[
                {"value": "bjensen@example.com", "primary": True},
                {"value": "babs@jensen.org"},
            ]
        ),
    ),
    (
        "sub-attribute-without-filter-on-empty-attribute-creates-value",
        USERS,
        user(emails=None),
        [{"op": "add", "path": "emails.value", "value": "x@y.org"}],
        True,
        user(emails=[{"value": "x@y.org"}]),
    ),
    (
        "add-existing-member-with-new-display-merges",
        GROUPS,
        group(),
        [{"op": "add", "path": "members", "value": [{"value": "902c246b", "display": "Joe"}]}],
        True,
        group(members=[MEMBERS[0], {**MEMBERS[1], "display": "Joe"}]),
    ),
    (
        "add-email-differing-in-case-only-is-the-same-value",
        USERS,
        user(),
        [{"op": "add", "path": "emails", "value": [{"value": "BJENSEN@example.com"}]}],
        True,
        None,
    ),
    (
        "replace-filter-with-and-of-eq",
        USERS,
        user(),
        [
            {
                "op": "add",
                "path": 'phoneNumbers[type eq "mobile" and display eq "Cell"].value',
                "value": "555-1",
            }
        ],
        True,
        user(
            phoneNumbers=[
                *user()["phoneNumbers"],
                {"type": "mobile", "display": "Cell", "value": "555-1"},
            ]
        ),
    ),
    (
        "operations-apply-in-sequence",
        USERS,
        user(),
        [
            {"op": "replace", "path": "title", "value": "A"},
            {"op": "replace", "path": "title", "value": "B"},
            {"op": "remove", "path": "nickName"},
        ],
        True,
        user(title="B"),
    ),
    (
        "operations-that-cancel-out-are-no-change",
        USERS,
        user(),
        [
            {"op": "replace", "path": "title", "value": "A"},
            {"op": "remove", "path": "title"},
        ],
        True,
        None,
    ),
]


@pytest.mark.parametrize(
    ("rt", "resource", "operations", "strict", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in SUCCESS],
)
def test_patch_success(
    rt: ResourceType,
    resource: dict[str, Any],
    operations: list[dict[str, Any]],
    strict: bool,
    expected: dict[str, Any] | None,
) -> None:
    assert patch(rt, resource, *operations, strict=strict) == expected
    if strict:  # everything the RFC allows, the tolerant mode allows the same way
        assert patch(rt, resource, *operations, strict=False) == expected


# (id, resource type, resource, operations, strict, error class, scimType)
FAILURES: list[tuple[str, ResourceType, dict[str, Any], list[dict[str, Any]], bool, type]] = [
    (
        "replace-filter-matches-nothing-strict",
        USERS,
        user(),
        [{"op": "replace", "path": 'emails[type eq "other"].value', "value": "x@y"}],
        True,
        NoTargetError,
    ),
    (
        "replace-filter-not-derivable-matches-nothing",
        USERS,
        user(),
        [{"op": "replace", "path": 'emails[type ne "work" and type ne "home"]', "value": {}}],
        False,
        NoTargetError,
    ),
    (
        "remove-required",
        USERS,
        user(),
        [{"op": "remove", "path": "userName"}],
        False,
        MutabilityError,
    ),
    (
        "replace-required-with-null",
        GROUPS,
        group(),
        [{"op": "replace", "value": {"displayName": None}}],
        False,
        MutabilityError,
    ),
    (
        "remove-read-only",
        USERS,
        user(),
        [{"op": "remove", "path": "id"}],
        False,
        MutabilityError,
    ),
    (
        "replace-read-only-strict",
        USERS,
        user(),
        [{"op": "replace", "path": "id", "value": "other"}],
        True,
        MutabilityError,
    ),
    (
        "no-path-read-only-strict",
        GROUPS,
        group(),
        [{"op": "replace", "value": {"id": "e9e30dba", "displayName": "New"}}],
        True,
        MutabilityError,
    ),
    (
        "replace-immutable-member-value",
        GROUPS,
        group(),
        [{"op": "replace", "path": 'members[value eq "902c246b"].value', "value": "other"}],
        False,
        MutabilityError,
    ),
    (
        "add-member-changing-immutable-type",
        GROUPS,
        group(),
        [{"op": "add", "path": "members", "value": [{"value": "902c246b", "type": "Group"}]}],
        False,
        MutabilityError,
    ),
    (
        "unknown-attribute-path",
        USERS,
        user(),
        [{"op": "replace", "path": "favouriteColour", "value": "blue"}],
        False,
        InvalidPathError,
    ),
    (
        "unknown-sub-attribute-path",
        USERS,
        user(),
        [{"op": "add", "path": "name.nickname", "value": "x"}],
        False,
        InvalidPathError,
    ),
    (
        "unknown-sub-attribute-after-filter",
        USERS,
        user(),
        [{"op": "replace", "path": 'emails[type eq "work"].colour', "value": "x"}],
        False,
        InvalidPathError,
    ),
    (
        "unknown-attribute-in-filter",
        USERS,
        user(),
        [{"op": "remove", "path": 'emails[colour eq "red"]'}],
        False,
        InvalidPathError,
    ),
    (
        "filter-on-single-valued",
        USERS,
        user(),
        [{"op": "remove", "path": 'name[givenName eq "Barbara"]'}],
        True,  # tolerant: selects the one value (docs/idp-notes.md, test_patch_idp.py)
        InvalidPathError,
    ),
    (
        "unknown-extension-path",
        USERS,
        user(),
        [{"op": "add", "path": "urn:example:ext:1.0:User:x", "value": "y"}],
        False,
        InvalidPathError,
    ),
    (
        "unknown-key-in-no-path-value-strict",
        USERS,
        user(),
        [{"op": "add", "value": {"favouriteColour": "blue"}}],
        True,
        InvalidPathError,
    ),
    (
        "remove-read-only-record-by-filter",
        USERS,
        user(groups=[{"value": "g1", "display": "G"}]),
        [{"op": "remove", "path": 'groups[value eq "g1"]'}],
        False,
        MutabilityError,
    ),
    (
        "manager-display-name-is-read-only-strict",
        USERS,
        user(),
        [{"op": "add", "path": f"{ENT}:manager", "value": {"value": "m", "displayName": "B"}}],
        True,
        MutabilityError,
    ),
    (
        "unknown-key-in-extension-object-strict",
        USERS,
        user(),
        [{"op": "add", "value": {ENT: {"favouriteColour": "blue"}}}],
        True,
        InvalidPathError,
    ),
    (
        "wrong-type",
        USERS,
        user(),
        [{"op": "replace", "path": "active", "value": "maybe"}],
        False,
        InvalidValueError,
    ),
    (
        "boolean-as-string-strict",
        USERS,
        user(),
        [{"op": "replace", "path": "active", "value": "False"}],
        True,
        InvalidValueError,
    ),
    (
        "list-for-single-valued",
        USERS,
        user(),
        [{"op": "replace", "path": "title", "value": ["a", "b"]}],
        False,
        InvalidValueError,
    ),
    (
        "two-primaries-in-one-value",
        USERS,
        user(),
        [
            {
                "op": "replace",
                "path": "emails",
                "value": [{"value": "a@b", "primary": True}, {"value": "c@d", "primary": True}],
            }
        ],
        False,
        InvalidValueError,
    ),
    (
        "extension-not-an-object",
        USERS,
        user(),
        [{"op": "add", "value": {ENT: "x"}}],
        False,
        InvalidValueError,
    ),
    (
        "remove-with-value-array-strict",
        GROUPS,
        group(),
        [{"op": "remove", "path": "members", "value": [{"value": "902c246b"}]}],
        True,
        InvalidValueError,
    ),
    (
        "second-operation-fails-whole-patch-fails",
        USERS,
        user(),
        [
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "remove", "path": "userName"},
        ],
        False,
        MutabilityError,
    ),
]


@pytest.mark.parametrize(
    ("rt", "resource", "operations", "strict", "error"),
    [pytest.param(*case[1:], id=case[0]) for case in FAILURES],
)
def test_patch_failure(
    rt: ResourceType,
    resource: dict[str, Any],
    operations: list[dict[str, Any]],
    strict: bool,
    error: type[ScimError],
) -> None:
    # patch() also asserts the input resource is unchanged after the failure.
    with pytest.raises(error) as info:
        patch(rt, resource, *operations, strict=strict)
    assert info.value.status == 400
    assert info.value.scim_type == error.scim_type


# PatchOp message validation: (id, body, strict, error)
# RFC 7644 §3.5.2: "a client MUST NOT modify an attribute that has mutability "readOnly"
# [...] An operation that is not compatible with an attribute's mutability or schema SHALL
# return the appropriate HTTP response status code" (400 mutability). No identity
# provider is documented to send these, so both modes refuse them.
READ_ONLY_PATHS: list[tuple[str, ResourceType, dict[str, Any]]] = [
    ("id", USERS, {"op": "replace", "path": "id", "value": "other"}),
    ("id-unchanged", USERS, {"op": "replace", "path": "id", "value": "2819c223"}),
    ("id-any-case", USERS, {"op": "add", "path": "ID", "value": "other"}),
    ("id-null", USERS, {"op": "replace", "path": "id", "value": None}),
    ("id-urn", USERS, {"op": "replace", "path": f"{USER_URN}:id", "value": "other"}),
    ("group-id", GROUPS, {"op": "replace", "path": "id", "value": "other"}),
    ("meta", USERS, {"op": "replace", "path": "meta", "value": {"version": 'W/"9"'}}),
    ("meta-sub", USERS, {"op": "replace", "path": "meta.version", "value": 'W/"99"'}),
    ("groups", USERS, {"op": "add", "path": "groups", "value": [{"value": "g"}]}),
    (
        "groups-filter",
        USERS,
        {"op": "add", "path": 'groups[value eq "g"].display', "value": "x"},
    ),
    ("read-only-sub", USERS, {"op": "replace", "path": f"{ENT}:manager.displayName", "value": "x"}),
    (
        "read-only-sub-filter",
        USERS,
        {"op": "add", "path": f'{ENT}:manager[value eq "26118915"].displayName', "value": "x"},
    ),
]


@pytest.mark.parametrize(
    ("rt", "operation"), [pytest.param(*case[1:], id=case[0]) for case in READ_ONLY_PATHS]
)
@pytest.mark.parametrize("strict", [False, True])
def test_read_only_path_is_400_mutability_in_both_modes(
    rt: ResourceType, operation: dict[str, Any], strict: bool
) -> None:
    resource = user() if rt is USERS else group()
    with pytest.raises(MutabilityError, match="readOnly"):
        patch(
            rt,
            resource,
            {"op": "replace", "path": "displayName", "value": "x"},
            operation,
            strict=strict,
        )


@pytest.mark.parametrize("strict", [False, True])
def test_engine_answers_400_mutability_and_keeps_the_user(strict: bool) -> None:
    engine = make_engine(strict=strict)
    created = create_user(engine, "bjensen")
    location = f"/Users/{created['id']}"
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [
            {"op": "replace", "path": "displayName", "value": "Babs"},
            {"op": "replace", "path": "id", "value": "mine-now"},
        ],
    }
    assert_error(call(engine, "PATCH", location, body), 400, "mutability")
    assert call(engine, "GET", location).json == created


def test_read_only_key_of_a_no_path_value_stays_tolerated() -> None:
    """Okta's documented group rename echoes the readOnly ``id`` in a no-path value."""
    renamed = patch(
        GROUPS, group(), {"op": "replace", "value": {"id": "e9e30dba", "displayName": "N"}}
    )
    assert renamed == group(displayName="N")
    with pytest.raises(MutabilityError):
        patch(GROUPS, group(), {"op": "replace", "value": {"id": "e9e30dba"}}, strict=True)


BAD_MESSAGES: list[tuple[str, Any, bool, type]] = [
    ("not-an-object", ["op"], False, InvalidSyntaxError),
    ("no-schemas", {"Operations": [{"op": "add", "value": {}}]}, False, InvalidSyntaxError),
    (
        "wrong-schema",
        {"schemas": ["urn:x"], "Operations": [{"op": "add", "value": {}}]},
        False,
        InvalidSyntaxError,
    ),
    ("no-operations", {"schemas": [PATCH_OP_URN]}, False, InvalidSyntaxError),
    ("empty-operations", {"schemas": [PATCH_OP_URN], "Operations": []}, False, InvalidSyntaxError),
    (
        "operations-not-a-list",
        {"schemas": [PATCH_OP_URN], "Operations": {"op": "add"}},
        False,
        InvalidSyntaxError,
    ),
    ("op-not-object", {"schemas": [PATCH_OP_URN], "Operations": [1]}, False, InvalidSyntaxError),
    (
        "unknown-op",
        {"schemas": [PATCH_OP_URN], "Operations": [{"op": "move", "path": "x"}]},
        False,
        InvalidSyntaxError,
    ),
    (
        "op-capitalised-strict",
        {"schemas": [PATCH_OP_URN], "Operations": [{"op": "Add", "value": {}}]},
        True,
        InvalidSyntaxError,
    ),
    (
        "operations-key-case-strict",
        {"schemas": [PATCH_OP_URN], "operations": [{"op": "add", "value": {}}]},
        True,
        InvalidSyntaxError,
    ),
    (
        "remove-without-path",
        {"schemas": [PATCH_OP_URN], "Operations": [{"op": "remove"}]},
        False,
        NoTargetError,
    ),
    (
        "add-without-value",
        {"schemas": [PATCH_OP_URN], "Operations": [{"op": "add", "path": "title"}]},
        False,
        InvalidValueError,
    ),
    (
        "replace-without-value",
        {"schemas": [PATCH_OP_URN], "Operations": [{"op": "replace", "path": "title"}]},
        False,
        InvalidValueError,
    ),
    (
        "no-path-value-not-object",
        {"schemas": [PATCH_OP_URN], "Operations": [{"op": "replace", "value": "x"}]},
        False,
        InvalidValueError,
    ),
    (
        "path-not-string",
        {"schemas": [PATCH_OP_URN], "Operations": [{"op": "remove", "path": 3}]},
        False,
        InvalidPathError,
    ),
    (
        "path-malformed",
        {"schemas": [PATCH_OP_URN], "Operations": [{"op": "remove", "path": "emails[type eq"}]},
        False,
        InvalidPathError,
    ),
    (
        "path-with-space",
        {"schemas": [PATCH_OP_URN], "Operations": [{"op": "remove", "path": "display Name"}]},
        False,
        InvalidPathError,
    ),
]


@pytest.mark.parametrize(
    ("message", "strict", "error"), [pytest.param(*c[1:], id=c[0]) for c in BAD_MESSAGES]
)
def test_bad_patch_message(message: Any, strict: bool, error: type[ScimError]) -> None:
    with pytest.raises(error):
        parse_patch_request(message, strict=strict)


def test_paths_are_parsed_once_at_parse_time() -> None:
    ops = parse_patch_request(
        {
            "schemas": [PATCH_OP_URN],
            "Operations": [{"op": "remove", "path": 'members[value eq "2819c223"]'}],
        },
        strict=True,
    )
    assert ops[0].path is not None
    assert ops[0].path.filter is not None


def test_error_names_the_failing_operation() -> None:
    with pytest.raises(MutabilityError, match=r"Operations\[1\]"):
        patch(
            USERS,
            user(),
            {"op": "replace", "path": "title", "value": "x"},
            {"op": "remove", "path": "userName"},
        )


def test_meta_is_not_touched() -> None:
    result = patch(USERS, user(), {"op": "replace", "path": "title", "value": "x"})
    assert result is not None
    assert result["meta"] == user()["meta"]


def test_result_shares_unchanged_containers_with_input() -> None:
    resource = group()
    ops = parse_patch_request(
        {
            "schemas": [PATCH_OP_URN],
            "Operations": [{"op": "replace", "path": "displayName", "value": "X"}],
        },
        strict=False,
    )
    result = apply_patch(GROUPS, resource, ops, options=PatchOptions())
    assert result is not None
    assert result["members"] is resource["members"]
    assert resource["displayName"] == "Tour Guides"


def test_group_schema_untouched_without_extensions() -> None:
    result = patch(GROUPS, group(), {"op": "replace", "path": "displayName", "value": "X"})
    assert result is not None
    assert result["schemas"] == [GROUP_URN]
