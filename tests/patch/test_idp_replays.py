"""Real identity-provider request sequences replayed end to end through ``Engine.handle``.

Every request body below is the one the identity provider's own documentation shows (ids
replaced by the ids this server assigned):

- ENTRA_LEARN: Microsoft Learn, "Tutorial: Develop and plan provisioning for a SCIM
  endpoint in Microsoft Entra ID" (use-scim-to-provision-users-and-groups), sections
  "SCIM protocol requests and responses" and "Handling provisioning and deprovisioning
  of users", examples 1-6.
- ENTRA_COMPAT: Microsoft Learn, "Known issues and resolutions with SCIM 2.0 protocol
  compliance of the Microsoft Entra user provisioning service"
  (application-provisioning-config-problem-scim-compatibility): the requests sent with and
  without the ``aadOptscim062020`` flag.
- OKTA: Okta developer docs, "Okta and SCIM Version 2.0" (reference/scim/scim-20).
- Issue trackers of other SCIM servers, where the request is quoted as Entra ID sent it
  (named at each test).

After each write the test reads the resource back (by id and by the IdP's own filter) and
checks that the stored result is what the IdP meant, that ``meta.version`` and the ETag
moved only when something changed, and the status codes the IdPs expect.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from patch_helpers import GROUPS, group

from scim2_core import Engine
from scim2_core.patch import PatchOptions, apply_patch, parse_patch_request, patch_member_values
from tests.helpers import (
    ENTERPRISE,
    GROUP,
    LIST,
    PATCH_OP,
    USER,
    Result,
    assert_error,
    call,
    create_user,
    make_engine,
)

ENTRA_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


def patch(
    engine: Engine, path: str, *ops: dict[str, Any], headers: dict[str, str] | None = None
) -> Result:
    return call(
        engine, "PATCH", path, {"schemas": [PATCH_OP], "Operations": list(ops)}, headers=headers
    )


def get(engine: Engine, path: str, **query: str) -> dict[str, Any]:
    result = call(engine, "GET", path, query=query or None)
    assert result.status == 200, result
    return result.json  # type: ignore[no-any-return]


def find(engine: Engine, endpoint: str, flt: str, **query: str) -> list[dict[str, Any]]:
    body = get(engine, endpoint, filter=flt, **query)
    assert body["schemas"] == [LIST]
    assert body["totalResults"] == len(body["Resources"])
    return body["Resources"]  # type: ignore[no-any-return]


def changed(before: dict[str, Any], result: Result) -> dict[str, Any]:
    """A 200 PATCH/PUT response that bumped the version; its ETag is the new version."""
    assert result.status == 200, result
    assert result.json["meta"]["version"] != before["meta"]["version"]
    assert result.headers["ETag"] == result.json["meta"]["version"]
    return result.json  # type: ignore[no-any-return]


# --- Microsoft Entra ID -----------------------------------------------------------------------


def test_entra_user_lifecycle_from_learn_examples() -> None:
    """ENTRA_LEARN: Create User, Get User, Get User by query (1 and 0 results), Update
    User [Multi-valued properties], Update User [Single-valued properties], Disable User,
    Delete User, in the order the provisioning service sends them."""
    engine = make_engine()
    # "Test Connection queries the SCIM endpoint for a user that doesn't exist, using a
    # random GUID [...] The expected correct response is HTTP 200 OK with an empty SCIM
    # ListResponse message."
    assert find(engine, "/Users", f'userName eq "{uuid.uuid4()}"') == []
    created = call(
        engine,
        "POST",
        "/Users",
        {
            "schemas": [USER, ENTERPRISE],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
            "active": True,
            "emails": [
                {
                    "primary": True,
                    "type": "work",
                    "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com",
                }
            ],
            "meta": {"resourceType": "User"},
            "name": {
                "formatted": "givenName familyName",
                "familyName": "familyName",
                "givenName": "givenName",
            },
            "roles": [],
        },
    )
    assert created.status == 201, created
    user = created.json
    uid = user["id"]
    assert created.headers["Location"] == user["meta"]["location"]
    assert created.headers["ETag"] == user["meta"]["version"]
    assert get(engine, f"/Users/{uid}") == user
    hits = find(engine, "/Users", 'userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"')
    assert [h["id"] for h in hits] == [uid]
    assert find(engine, "/Users", 'userName eq "non-existent user"') == []
    # Update User [Multi-valued properties]
    result = patch(
        engine,
        f"/Users/{uid}",
        {
            "op": "Replace",
            "path": 'emails[type eq "work"].value',
            "value": "updatedEmail@microsoft.com",
        },
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    )
    user = changed(user, result)
    stored = get(engine, f"/Users/{uid}")
    assert stored == user
    assert stored["emails"] == [
        {"value": "updatedEmail@microsoft.com", "type": "work", "primary": True}
    ]
    assert stored["name"] == {
        "formatted": "givenName familyName",
        "familyName": "updatedFamilyName",
        "givenName": "givenName",
    }
    # Entra matches users on emails[type eq "work"] too ("Any attributes that are
    # considered for user uniqueness must be usable as part of a filtered query").
    hits = find(engine, "/Users", 'emails[type eq "work"].value eq "updatedEmail@microsoft.com"')
    assert [h["id"] for h in hits] == [uid]
    # Update User [Single-valued properties]
    result = patch(
        engine,
        f"/Users/{uid}",
        {
            "op": "Replace",
            "path": "userName",
            "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com",
        },
    )
    user = changed(user, result)
    assert (
        find(engine, "/Users", 'userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"') == []
    )
    hits = find(engine, "/Users", 'userName eq "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"')
    assert [h["id"] for h in hits] == [uid]
    # Disable User
    result = patch(engine, f"/Users/{uid}", {"op": "Replace", "path": "active", "value": False})
    user = changed(user, result)
    assert get(engine, f"/Users/{uid}")["active"] is False
    assert [h["id"] for h in find(engine, "/Users", "active eq false")] == [uid]
    # Delete User
    deleted = call(engine, "DELETE", f"/Users/{uid}")
    assert deleted.status == 204
    assert deleted.raw == b""
    assert_error(call(engine, "GET", f"/Users/{uid}"), 404)
    assert (
        find(engine, "/Users", 'userName eq "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"')
        == []
    )


def test_entra_group_lifecycle_from_learn_examples() -> None:
    """ENTRA_LEARN: Create Group (with Entra's own schema URN), Get Group and Get Group by
    displayName with ``excludedAttributes=members``, Update Group [Non-member attributes],
    [Add Members], [Remove Members], Delete Group; Entra asks for 204 on group PATCH."""
    engine = make_engine(patch_returns_no_content=True)
    member = create_user(engine, "f648f8d5ea4e4cd38e9c@testuser.com")["id"]
    created = call(
        engine,
        "POST",
        "/Groups",
        {
            "schemas": [GROUP, ENTRA_GROUP_SCHEMA],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": {"resourceType": "Group"},
        },
    )
    assert created.status == 201, created
    group = created.json
    gid = group["id"]
    assert group["schemas"] == [GROUP]
    assert "members" not in get(engine, f"/Groups/{gid}", excludedAttributes="members")
    hits = find(engine, "/Groups", 'displayName eq "displayName"', excludedAttributes="members")
    assert [h["id"] for h in hits] == [gid]
    version = group["meta"]["version"]

    def no_content(result: Result) -> str:
        nonlocal version
        assert result.status == 204, result
        assert result.raw == b""
        assert result.headers["ETag"] != version
        version = result.headers["ETag"]
        assert get(engine, f"/Groups/{gid}")["meta"]["version"] == version
        return version

    # Update Group [Non-member attributes]
    no_content(
        patch(
            engine,
            f"/Groups/{gid}",
            {
                "op": "Replace",
                "path": "displayName",
                "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName",
            },
        )
    )
    assert find(engine, "/Groups", 'displayName eq "displayName"') == []
    assert get(engine, f"/Groups/{gid}")["displayName"] == (
        "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    )
    # Update Group [Add Members]
    no_content(
        patch(
            engine,
            f"/Groups/{gid}",
            {"op": "Add", "path": "members", "value": [{"$ref": None, "value": member}]},
        )
    )
    stored = get(engine, f"/Groups/{gid}")
    assert [(m["value"], m["type"]) for m in stored["members"]] == [(member, "User")]
    assert [g["value"] for g in get(engine, f"/Users/{member}")["groups"]] == [gid]
    # Entra checks membership with a filter on members before changing it.
    hits = find(
        engine,
        "/Groups",
        f'id eq "{gid}" and members[value eq "{member}"]',
        excludedAttributes="members",
    )
    assert [h["id"] for h in hits] == [gid]
    # The same add again changes nothing: no new version (RFC 7644 §3.5.2.1).
    again = patch(
        engine,
        f"/Groups/{gid}",
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": member}]},
    )
    assert again.status == 204
    assert again.headers["ETag"] == version
    # Update Group [Remove Members]: the value-array form Entra sends without the flag.
    no_content(
        patch(
            engine,
            f"/Groups/{gid}",
            {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": member}]},
        )
    )
    assert "members" not in get(engine, f"/Groups/{gid}")
    assert "groups" not in get(engine, f"/Users/{member}")
    # Delete Group
    assert call(engine, "DELETE", f"/Groups/{gid}").status == 204
    assert_error(call(engine, "GET", f"/Groups/{gid}"), 404)


def test_entra_compat_requests_with_and_without_the_scim_flag() -> None:
    """ENTRA_COMPAT: each pair of requests (legacy, then ``aadOptscim062020``) must leave
    the same stored result."""
    engine = make_engine()
    user = create_user(
        engine,
        "pvlo@test.microsoft.com",
        emails=[{"value": "old@test.microsoft.com", "type": "work", "primary": True}],
    )
    uid = user["id"]
    # Requests made to disable users.
    user = changed(
        user, patch(engine, f"/Users/{uid}", {"op": "Replace", "path": "active", "value": "False"})
    )
    assert user["active"] is False
    user = changed(
        user, patch(engine, f"/Users/{uid}", {"op": "replace", "path": "active", "value": True})
    )
    same = patch(engine, f"/Users/{uid}", {"op": "replace", "path": "active", "value": True})
    assert same.status == 200
    assert same.json["meta"]["version"] == user["meta"]["version"]
    # Requests to add a single-value string attribute.
    user = changed(
        user, patch(engine, f"/Users/{uid}", {"op": "Add", "path": "nickName", "value": "Babs"})
    )
    assert get(engine, f"/Users/{uid}")["nickName"] == "Babs"
    # Requests to replace multiple attributes: the legacy form ...
    user = changed(
        user,
        patch(
            engine,
            f"/Users/{uid}",
            {"op": "Replace", "path": "displayName", "value": "Pvlo"},
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "TestBcwqnm@test.microsoft.com",
            },
            {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
            {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
            {"op": "Replace", "path": "externalId", "value": "Eqpj"},
            {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "Eqpj"},
        ),
    )
    stored = get(engine, f"/Users/{uid}")
    assert stored["displayName"] == "Pvlo"
    assert stored["emails"] == [
        {"value": "TestBcwqnm@test.microsoft.com", "type": "work", "primary": True}
    ]
    assert stored["name"] == {"givenName": "Gtfd", "familyName": "Pkqf"}
    assert stored["externalId"] == "Eqpj"
    assert stored[ENTERPRISE] == {"employeeNumber": "Eqpj"}
    assert ENTERPRISE in stored["schemas"]
    assert [h["id"] for h in find(engine, "/Users", 'externalId eq "Eqpj"')] == [uid]
    # ... and the flag's form: one no-path replace with dotted and URN-qualified keys.
    user = changed(
        user,
        patch(
            engine,
            f"/Users/{uid}",
            {
                "op": "replace",
                "path": 'emails[type eq "work"].value',
                "value": "TestMhvaes@test.microsoft.com",
            },
            {
                "op": "replace",
                "value": {
                    "displayName": "Bjfe",
                    "name.givenName": "Kkom",
                    "name.familyName": "Unua",
                    f"{ENTERPRISE}:employeeNumber": "Aklq",
                },
            },
        ),
    )
    stored = get(engine, f"/Users/{uid}")
    assert stored == user
    assert stored["displayName"] == "Bjfe"
    assert stored["name"] == {"givenName": "Kkom", "familyName": "Unua"}
    assert stored[ENTERPRISE] == {"employeeNumber": "Aklq"}
    assert stored["emails"] == [
        {"value": "TestMhvaes@test.microsoft.com", "type": "work", "primary": True}
    ]
    # Requests made to remove a group member: legacy value array, then the RFC filter.
    others = [create_user(engine, f"u{i}")["id"] for i in range(3)]
    group = call(
        engine,
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "G", "members": [{"value": v} for v in others]},
    ).json
    gid = group["id"]
    group = changed(
        group,
        patch(
            engine,
            f"/Groups/{gid}",
            {"op": "Remove", "path": "members", "value": [{"value": others[0]}]},
        ),
    )
    group = changed(
        group,
        patch(
            engine, f"/Groups/{gid}", {"op": "remove", "path": f'members[value eq "{others[1]}"]'}
        ),
    )
    assert [m["value"] for m in get(engine, f"/Groups/{gid}")["members"]] == [others[2]]
    # Removing a member that is already gone (IdPs retry) succeeds and changes nothing.
    retry = patch(
        engine, f"/Groups/{gid}", {"op": "remove", "path": f'members[value eq "{others[1]}"]'}
    )
    assert retry.status == 200
    assert retry.json["meta"]["version"] == group["meta"]["version"]


def test_entra_provision_user_with_nulls_and_manager_examples() -> None:
    """ENTRA_LEARN, "Handling provisioning and deprovisioning of users": example 2's create
    (null attributes, enterprise attributes at the top level, a misspelt extension URN),
    example 3's read, example 5's ``"op": "Add", "path": "manager"`` with a one-item
    array, example 6's delete."""
    engine = make_engine()
    manager = create_user(engine, "boss@contoso.com")["id"]
    assert find(engine, "/Users", 'externalId eq "jyoung"') == []
    created = call(
        engine,
        "POST",
        "/Users",
        {
            "schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
            "externalId": "jyoung",
            "userName": "jyoung@testuser.com",
            "active": True,
            "addresses": None,
            "displayName": "Joy Young",
            "emails": [{"type": "work", "value": "jyoung@Contoso.com", "primary": True}],
            "meta": {"resourceType": "User"},
            "name": {"familyName": "Young", "givenName": "Joy"},
            "phoneNumbers": None,
            "preferredLanguage": None,
            "title": None,
            "department": None,
            "manager": None,
        },
    )
    assert created.status == 201, created
    user = created.json
    uid = user["id"]
    for absent in ("addresses", "phoneNumbers", "title", "department", "manager", ENTERPRISE):
        assert absent not in user
    assert [h["id"] for h in find(engine, "/Users", 'externalId eq "jyoung"')] == [uid]
    user = changed(
        user,
        patch(
            engine,
            f"/Users/{uid}",
            {
                "op": "Add",
                "path": "manager",
                "value": [{"$ref": f"http://example.com/scim/Users/{manager}", "value": manager}],
            },
        ),
    )
    stored = get(engine, f"/Users/{uid}")
    assert stored[ENTERPRISE]["manager"]["value"] == manager
    assert ENTERPRISE in stored["schemas"]
    # Example 4: Entra checks the manager with a filter before updating it.
    hits = find(engine, "/Users", f'id eq "{uid}" and {ENTERPRISE}:manager.value eq "{manager}"')
    assert [h["id"] for h in hits] == [uid]
    assert call(engine, "DELETE", f"/Users/{uid}").status == 204
    assert_error(call(engine, "GET", f"/Users/{uid}"), 404)


def test_entra_manager_forms() -> None:
    """The manager forms Entra ID sends, as reported on issue trackers: a bare id with the
    URN path (imulab/go-scim#75), a ``{"value": id}`` object, a bare id under a URN key of
    a no-path value, removal with a ``value`` and removal with a filter on the single-valued
    manager (thomaspoignant/scim-patch#453)."""
    engine = make_engine()
    bosses = [create_user(engine, f"boss{i}")["id"] for i in range(3)]
    user = create_user(engine, "emp", schemas=[USER, ENTERPRISE])
    uid = user["id"]
    path = f"{ENTERPRISE}:manager"

    def manager() -> Any:
        """The stored manager's id (the server adds its ``$ref``)."""
        found = get(engine, f"/Users/{uid}").get(ENTERPRISE, {}).get("manager")
        return None if found is None else found["value"]

    user = changed(
        user, patch(engine, f"/Users/{uid}", {"op": "Add", "path": path, "value": bosses[0]})
    )
    assert manager() == bosses[0]
    user = changed(
        user,
        patch(
            engine, f"/Users/{uid}", {"op": "Replace", "path": path, "value": {"value": bosses[1]}}
        ),
    )
    assert manager() == bosses[1]
    user = changed(
        user, patch(engine, f"/Users/{uid}", {"op": "Replace", "value": {path: bosses[2]}})
    )
    assert manager() == bosses[2]
    # A filter naming another manager removes nothing.
    same = patch(
        engine, f"/Users/{uid}", {"op": "remove", "path": f'{path}[value eq "{bosses[0]}"]'}
    )
    assert same.status == 200
    assert same.json["meta"]["version"] == user["meta"]["version"]
    assert manager() == bosses[2]
    user = changed(
        user,
        patch(engine, f"/Users/{uid}", {"op": "remove", "path": f'{path}[value eq "{bosses[2]}"]'}),
    )
    assert manager() is None
    user = changed(
        user, patch(engine, f"/Users/{uid}", {"op": "Add", "path": path, "value": bosses[0]})
    )
    user = changed(
        user, patch(engine, f"/Users/{uid}", {"op": "Remove", "path": path, "value": bosses[0]})
    )
    stored = get(engine, f"/Users/{uid}")
    assert ENTERPRISE not in stored
    assert ENTERPRISE not in stored["schemas"]


def test_entra_filtered_paths_create_the_value_they_name() -> None:
    """Entra ID replaces/adds ``emails[type eq "work"].value``,
    ``addresses[type eq "work"].formatted`` and ``phoneNumbers[type eq "mobile"].value`` on
    users that have no such value yet (thomaspoignant/scim-patch#176, Learn Q&A "Entra ID
    patch sending Add instead of Replace"); the value is created with its type."""
    engine = make_engine()
    user = create_user(
        engine, "joe", emails=[{"value": "home@joe.com", "type": "home", "primary": True}]
    )
    uid = user["id"]
    user = changed(
        user,
        patch(
            engine,
            f"/Users/{uid}",
            {"op": "Replace", "path": "title", "value": "tester"},
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "joe@work.com"},
            {"op": "Replace", "path": 'addresses[type eq "work"].formatted', "value": "1 Main St"},
            {"op": "Replace", "path": 'addresses[type eq "work"].locality', "value": "Redmond"},
            {"op": "Replace", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555"},
        ),
    )
    stored = get(engine, f"/Users/{uid}")
    assert stored["title"] == "tester"
    assert stored["emails"] == [
        {"value": "home@joe.com", "type": "home", "primary": True},
        {"type": "work", "value": "joe@work.com"},
    ]
    assert stored["addresses"] == [
        {"type": "work", "formatted": "1 Main St", "locality": "Redmond"}
    ]
    assert stored["phoneNumbers"] == [{"type": "mobile", "value": "+1 555"}]
    # The next sync sends the same values: nothing changes, the version stays.
    again = patch(
        engine,
        f"/Users/{uid}",
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "joe@work.com"},
        {"op": "Replace", "path": 'addresses[type eq "work"].formatted', "value": "1 Main St"},
    )
    assert again.status == 200
    assert again.json["meta"]["version"] == user["meta"]["version"]
    # A filtered key inside a no-path value object reads as that path.
    user = changed(
        user,
        patch(
            engine,
            f"/Users/{uid}",
            {"op": "replace", "value": {'emails[type eq "work"].value': "joe2@work.com"}},
        ),
    )
    assert [e["value"] for e in get(engine, f"/Users/{uid}")["emails"]] == [
        "home@joe.com",
        "joe2@work.com",
    ]


def test_entra_no_path_add_with_dotted_name_keys() -> None:
    """pond/scimitar#123, thomaspoignant/scim-patch#132: Entra ID's no-path ``add`` with
    ``name.*`` keys sets the sub-attributes of ``name``, never keys named ``name.givenName``."""
    engine = make_engine()
    user = create_user(engine, "foo")
    uid = user["id"]
    changed(
        user,
        patch(
            engine,
            f"/Users/{uid}",
            {
                "op": "add",
                "value": {
                    "displayName": "Foo Bar",
                    "title": "Bar Foo",
                    "name.givenName": "Foo",
                    "name.familyName": "Bar",
                    "name.formatted": "Foo Bar",
                },
            },
        ),
    )
    stored = get(engine, f"/Users/{uid}")
    assert stored["name"] == {"givenName": "Foo", "familyName": "Bar", "formatted": "Foo Bar"}
    assert (stored["displayName"], stored["title"]) == ("Foo Bar", "Bar Foo")
    assert not [k for k in stored if "." in k]


# --- Okta -------------------------------------------------------------------------------------


def test_okta_user_lifecycle() -> None:
    """OKTA: existence check with ``startIndex``/``count``, create (with a password and
    ``groups: []``), read, PUT profile update, PATCH deactivation, reactivation."""
    engine = make_engine()
    body = get(
        engine, "/Users", filter='userName eq "test.user@okta.local"', startIndex="1", count="100"
    )
    assert (body["totalResults"], body["Resources"], body["startIndex"]) == (0, [], 1)
    created = call(
        engine,
        "POST",
        "/Users",
        {
            "schemas": [USER],
            "userName": "test.user@okta.local",
            "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
            "displayName": "Test User",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": True,
        },
    )
    assert created.status == 201, created
    user = created.json
    uid = user["id"]
    assert "password" not in user
    body = get(
        engine, "/Users", filter='userName eq "test.user@okta.local"', startIndex="1", count="100"
    )
    assert [r["id"] for r in body["Resources"]] == [uid]
    assert isinstance(body["totalResults"], int)
    # Okta reads the user, changes the profile and PUTs it back whole.
    current = get(engine, f"/Users/{uid}")
    put = call(
        engine,
        "PUT",
        f"/Users/{uid}",
        {
            "schemas": [USER],
            "id": uid,
            "userName": "test.user@okta.local",
            "name": {"givenName": "Another", "middleName": "Excited", "familyName": "User"},
            "emails": [
                {
                    "primary": True,
                    "value": "test.user@okta.local",
                    "type": "work",
                    "display": "test.user@okta.local",
                }
            ],
            "active": True,
            "groups": [],
            "meta": {"resourceType": "User"},
        },
    )
    user = changed(current, put)
    stored = get(engine, f"/Users/{uid}")
    assert stored["name"] == {"givenName": "Another", "middleName": "Excited", "familyName": "User"}
    assert stored["emails"][0]["display"] == "test.user@okta.local"
    # Deactivate: PATCH replace with a no-path value object.
    user = changed(
        user,
        patch(engine, f"/Users/{uid}", {"op": "replace", "value": {"active": False}}),
    )
    assert get(engine, f"/Users/{uid}")["active"] is False
    assert get(engine, f"/Users/{uid}")["name"]["givenName"] == "Another"
    changed(user, patch(engine, f"/Users/{uid}", {"op": "replace", "value": {"active": True}}))
    assert get(engine, f"/Users/{uid}")["active"] is True


def test_okta_group_push_lifecycle() -> None:
    """OKTA: create a pushed group, list and read it, the rename PATCH (no path, ``id``
    echoed), a membership PATCH (remove by filter + add), a full membership push with
    ``replace``, delete."""
    engine = make_engine()
    alice = create_user(engine, "test.user@okta.local")["id"]
    bob = create_user(engine, "other.user@okta.local")["id"]
    created = call(
        engine,
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []},
    )
    assert created.status == 201, created
    group = created.json
    gid = group["id"]
    body = get(engine, "/Groups", startIndex="1", count="100")
    assert [r["id"] for r in body["Resources"]] == [gid]
    # Rename; Okta sends it again with every membership update.
    rename = {"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv20"}}
    group = changed(group, patch(engine, f"/Groups/{gid}", rename))
    assert get(engine, f"/Groups/{gid}")["displayName"] == "Test SCIMv20"
    assert get(engine, f"/Groups/{gid}")["id"] == gid
    again = patch(engine, f"/Groups/{gid}", rename)
    assert again.status == 200
    assert again.json["meta"]["version"] == group["meta"]["version"]
    # Membership update: remove someone who is not a member, add alice.
    group = changed(
        group,
        patch(
            engine,
            f"/Groups/{gid}",
            {"op": "remove", "path": f'members[value eq "{bob}"]'},
            {
                "op": "add",
                "path": "members",
                "value": [{"value": alice, "display": "test.user@okta.local"}],
            },
        ),
    )
    stored = get(engine, f"/Groups/{gid}")
    assert [(m["value"], m.get("display")) for m in stored["members"]] == [
        (alice, "test.user@okta.local")
    ]
    # Full push of the membership.
    group = changed(
        group,
        patch(
            engine,
            f"/Groups/{gid}",
            {
                "op": "replace",
                "path": "members",
                "value": [
                    {"value": alice, "display": "test.user@okta.local"},
                    {"value": bob, "display": "other.user@okta.local"},
                ],
            },
        ),
    )
    assert [m["value"] for m in get(engine, f"/Groups/{gid}")["members"]] == [alice, bob]
    assert [g["value"] for g in get(engine, f"/Users/{bob}")["groups"]] == [gid]
    group = changed(
        group,
        patch(engine, f"/Groups/{gid}", {"op": "remove", "path": f'members[value eq "{alice}"]'}),
    )
    assert [m["value"] for m in get(engine, f"/Groups/{gid}")["members"]] == [bob]
    assert call(engine, "DELETE", f"/Groups/{gid}").status == 204
    assert "groups" not in get(engine, f"/Users/{bob}")


# --- Conditional PATCH and failures seen by the IdP ------------------------------------------


def test_patch_with_if_match_uses_the_version_from_the_last_response() -> None:
    engine = make_engine()
    user = create_user(engine, "etag")
    uid = user["id"]
    op = {"op": "replace", "path": "title", "value": "one"}
    first_version = user["meta"]["version"]
    user = changed(user, patch(engine, f"/Users/{uid}", op, headers={"If-Match": first_version}))
    # A client that missed that change still holds the first version: 412, nothing written.
    stale = patch(
        engine,
        f"/Users/{uid}",
        {"op": "replace", "path": "title", "value": "two"},
        headers={"If-Match": first_version},
    )
    assert_error(stale, 412)
    assert get(engine, f"/Users/{uid}") == user
    user = changed(
        user,
        patch(
            engine,
            f"/Users/{uid}",
            {"op": "replace", "path": "title", "value": "two"},
            headers={"If-Match": user["meta"]["version"]},
        ),
    )
    assert get(engine, f"/Users/{uid}")["title"] == "two"


@pytest.mark.parametrize(
    ("ops", "status", "scim_type"),
    [
        ([{"op": "Replace", "path": "nosuch", "value": "x"}], 400, "invalidPath"),
        ([{"op": "Remove"}], 400, "noTarget"),
        ([{"op": "Replace", "path": "active", "value": "maybe"}], 400, "invalidValue"),
        ([{"op": "Remove", "path": "userName"}], 400, "mutability"),
        ([{"op": "Move", "path": "title", "value": "x"}], 400, "invalidSyntax"),
        (
            [
                {
                    "op": "Replace",
                    "path": 'emails[type eq "work" or type eq "home"].value',
                    "value": "x",
                }
            ],
            400,
            "noTarget",
        ),
    ],
)
def test_failed_idp_patch_changes_nothing(
    ops: list[dict[str, Any]], status: int, scim_type: str
) -> None:
    engine = make_engine()
    user = create_user(engine, "atomic", title="t")
    first = {"op": "Replace", "path": "title", "value": "changed"}
    result = patch(engine, f"/Users/{user['id']}", first, *ops)
    assert_error(result, status, scim_type)
    assert get(engine, f"/Users/{user['id']}") == user


# --- Members added by PATCH must exist: every accepted form is checked ------------------------

MEMBER_FORMS: list[tuple[str, list[dict[str, Any]]]] = [
    ("entra-add", [{"op": "Add", "path": "members", "value": [{"$ref": None, "value": "M"}]}]),
    ("key-case", [{"op": "add", "Path": "members", "Value": [{"value": "M"}]}]),
    ("member-key-case", [{"op": "add", "path": "Members", "value": [{"Value": "M"}]}]),
    ("urn-path", [{"op": "add", "path": f"{GROUP}:members", "value": [{"value": "M"}]}]),
    ("urn-key", [{"op": "add", "value": {f"{GROUP}:members": [{"value": "M"}]}}]),
    ("empty-path", [{"op": "add", "path": "", "value": {"members": [{"value": "M"}]}}]),
    ("lone-object", [{"op": "add", "path": "members", "value": {"value": "M"}}]),
    ("no-path-lone-object", [{"op": "add", "value": {"members": {"value": "M"}}}]),
    ("spaced-op", [{"op": " add ", "path": "members", "value": [{"value": "M"}]}]),
    ("filter-seed", [{"op": "add", "path": 'members[value eq "M"]', "value": {"display": "x"}}]),
    ("replace-all", [{"op": "replace", "path": "members", "value": [{"value": "M"}]}]),
]


def _with_member(value: Any, uid: str) -> Any:
    """``value`` with the member id ``M`` (also inside filter strings) replaced by ``uid``."""
    if isinstance(value, str):
        return uid if value == "M" else value.replace('"M"', f'"{uid}"')
    if isinstance(value, dict):
        return {k: _with_member(v, uid) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_member(v, uid) for v in value]
    return value


@pytest.mark.parametrize(("name", "ops"), MEMBER_FORMS, ids=[n for n, _ in MEMBER_FORMS])
def test_patch_member_values_names_every_member_an_accepted_form_adds(
    name: str, ops: list[dict[str, Any]]
) -> None:
    parsed = parse_patch_request({"schemas": [PATCH_OP], "Operations": ops}, strict=False)
    result = apply_patch(GROUPS, group(), parsed, options=PatchOptions())
    assert result is not None
    assert "M" in [m["value"] for m in result["members"]]
    assert "M" in patch_member_values(GROUPS, parsed, strict=False)


@pytest.mark.parametrize(
    ("name", "ops"),
    [pytest.param(n, o, id=n) for n, o in MEMBER_FORMS],
)
def test_engine_accepts_every_member_form_for_an_existing_user(
    name: str, ops: list[dict[str, Any]]
) -> None:
    engine = make_engine()
    uid = create_user(engine, "member")["id"]
    gid = call(engine, "POST", "/Groups", {"schemas": [GROUP], "displayName": "G"}).json["id"]
    result = patch(engine, f"/Groups/{gid}", *_with_member(ops, uid))
    assert result.status == 200, result
    assert [m["value"] for m in get(engine, f"/Groups/{gid}")["members"]] == [uid]


@pytest.mark.parametrize(("name", "ops"), MEMBER_FORMS, ids=[n for n, _ in MEMBER_FORMS])
def test_engine_refuses_every_member_form_for_a_missing_member(
    name: str, ops: list[dict[str, Any]]
) -> None:
    engine = make_engine()
    group = call(engine, "POST", "/Groups", {"schemas": [GROUP], "displayName": "G"}).json
    result = patch(engine, f"/Groups/{group['id']}", *ops)
    assert_error(result, 400, "invalidValue")
    assert get(engine, f"/Groups/{group['id']}") == group
