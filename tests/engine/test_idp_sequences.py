"""Real identity-provider conversations replayed through ``Engine.handle``.

The request bodies are those Microsoft Entra ID and Okta send during provisioning (as their
published SCIM guides show them): existence checks with ``userName eq``, creates, PATCHes
with capitalised ops and string booleans, membership changes, deactivation, deletion.
"""

from __future__ import annotations

from scim2_core import Engine
from tests.helpers import ENTERPRISE, GROUP, PATCH_OP, USER, call, make_engine

ENTRA_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


def patch(engine: Engine, path: str, *ops: dict[str, object], **query: str) -> object:
    return call(
        engine, "PATCH", path, {"schemas": [PATCH_OP], "Operations": list(ops)}, query=query
    )


def test_entra_id_user_and_group_lifecycle() -> None:
    engine = make_engine()
    # 1. Entra checks whether the user exists before creating it.
    probe = call(
        engine, "GET", "/Users", query={"filter": 'userName eq "Test_User_ab6490ee@contoso.com"'}
    )
    assert probe.status == 200
    assert probe.json["totalResults"] == 0
    assert probe.json["Resources"] == []
    # 2. Create, as Entra sends it.
    created = call(
        engine,
        "POST",
        "/Users",
        {
            "schemas": [USER, ENTERPRISE],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee@contoso.com",
            "active": True,
            "emails": [
                {"primary": True, "type": "work", "value": "Test_User_fd0ea19b@contoso.com"}
            ],
            "meta": {"resourceType": "User"},
            "name": {"familyName": "familyName", "givenName": "givenName"},
            "roles": [],
            ENTERPRISE: {"department": "Sales", "manager": "mgr-id"},
        },
    )
    assert created.status == 201, created
    uid = created.json["id"]
    assert created.json[ENTERPRISE]["manager"]["value"] == "mgr-id"
    # 3. The same userName, differently cased, is a conflict.
    dup = call(
        engine, "POST", "/Users", {"schemas": [USER], "userName": "test_user_AB6490EE@contoso.com"}
    )
    assert dup.status == 409
    # 4. Entra's PATCH: capitalised ops, string booleans, URN paths, filtered paths.
    changed = patch(
        engine,
        f"/Users/{uid}",
        {"op": "Replace", "path": "displayName", "value": "Ryan Leenay"},
        {
            "op": "Add",
            "path": 'emails[type eq "work"].value',
            "value": "updatedEmail@microsoft.com",
        },
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Marketing"},
        {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": "other-mgr"},
    )
    assert changed.status == 200, changed
    body = changed.json
    assert body["displayName"] == "Ryan Leenay"
    assert body["name"]["familyName"] == "updatedFamilyName"
    assert [e["value"] for e in body["emails"] if e.get("type") == "work"] == [
        "updatedEmail@microsoft.com"
    ]
    assert body[ENTERPRISE]["department"] == "Marketing"
    assert body[ENTERPRISE]["manager"]["value"] == "other-mgr"
    assert changed.headers["ETag"] == body["meta"]["version"] != created.json["meta"]["version"]
    # 5. Group: create with Entra's own schema URN beside the core one, then memberships.
    probe = call(
        engine,
        "GET",
        "/Groups",
        query={"filter": 'displayName eq "Group1DisplayName"', "excludedAttributes": "members"},
    )
    assert probe.json["totalResults"] == 0
    group = call(
        engine,
        "POST",
        "/Groups",
        {
            "schemas": [GROUP, ENTRA_GROUP_SCHEMA],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "Group1DisplayName",
            "meta": {"resourceType": "Group"},
        },
    )
    assert group.status == 201, group
    gid = group.json["id"]
    added = patch(
        engine,
        f"/Groups/{gid}",
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": uid}]},
        excludedAttributes="members",
    )
    assert added.status == 200, added
    assert "members" not in added.json
    members = call(engine, "GET", f"/Groups/{gid}").json["members"]
    assert [m["value"] for m in members] == [uid]
    assert call(engine, "GET", f"/Users/{uid}").json["groups"][0]["value"] == gid
    removed = patch(
        engine,
        f"/Groups/{gid}",
        {"op": "Remove", "path": "members", "value": [{"value": uid}]},
    )
    assert removed.status == 200, removed
    assert "members" not in call(engine, "GET", f"/Groups/{gid}").json
    # 6. Deactivate with a string boolean, then delete.
    off = patch(engine, f"/Users/{uid}", {"op": "Replace", "path": "active", "value": "False"})
    assert off.status == 200
    assert off.json["active"] is False
    assert call(engine, "DELETE", f"/Users/{uid}").status == 204
    assert call(engine, "GET", f"/Users/{uid}").status == 404


def test_okta_user_and_group_lifecycle() -> None:
    engine = make_engine()
    probe = call(
        engine,
        "GET",
        "/Users",
        query={"filter": 'userName eq "test.user@okta.local"', "startIndex": "1", "count": "100"},
    )
    assert probe.json["totalResults"] == 0
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
    assert "password" not in created.json
    uid = created.json["id"]
    # Okta deactivates with PATCH replace of a no-path value object...
    off = patch(engine, f"/Users/{uid}", {"op": "replace", "value": {"active": False}})
    assert off.status == 200
    assert off.json["active"] is False
    # ... and updates profiles with PUT.
    put = call(
        engine,
        "PUT",
        f"/Users/{uid}",
        {
            "schemas": [USER],
            "id": uid,
            "userName": "test.user@okta.local",
            "name": {"givenName": "Another", "familyName": "User"},
            "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
            "active": True,
            "meta": {"resourceType": "User"},
        },
    )
    assert put.status == 200, put
    assert put.json["name"]["givenName"] == "Another"
    group = call(
        engine, "POST", "/Groups", {"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []}
    )
    assert group.status == 201
    gid = group.json["id"]
    # Okta's group rename: a no-path replace whose value carries the readOnly id.
    renamed = patch(
        engine, f"/Groups/{gid}", {"op": "replace", "value": {"id": gid, "displayName": "Renamed"}}
    )
    assert renamed.status == 200, renamed
    assert renamed.json["displayName"] == "Renamed"
    added = patch(
        engine,
        f"/Groups/{gid}",
        {
            "op": "add",
            "path": "members",
            "value": [{"value": uid, "display": "test.user@okta.local"}],
        },
    )
    assert added.status == 200, added
    removed = patch(
        engine, f"/Groups/{gid}", {"op": "remove", "path": f'members[value eq "{uid}"]'}
    )
    assert removed.status == 200, removed
    assert "members" not in removed.json
    assert call(engine, "DELETE", f"/Groups/{gid}").status == 204


def test_patch_that_fails_changes_nothing() -> None:
    engine = make_engine()
    user = call(engine, "POST", "/Users", {"schemas": [USER], "userName": "a", "title": "t"}).json
    failed = patch(
        engine,
        f"/Users/{user['id']}",
        {"op": "replace", "path": "title", "value": "changed"},
        {"op": "replace", "path": "nosuchattribute", "value": "x"},
    )
    assert failed.status == 400
    assert failed.json["scimType"] == "invalidPath"
    after = call(engine, "GET", f"/Users/{user['id']}").json
    assert after["title"] == "t"
    assert after["meta"]["version"] == user["meta"]["version"]


def test_patch_adding_a_missing_member_is_400() -> None:
    engine = make_engine()
    group = call(engine, "POST", "/Groups", {"schemas": [GROUP], "displayName": "G"}).json
    result = patch(
        engine,
        f"/Groups/{group['id']}",
        {"op": "add", "path": "members", "value": [{"value": "ghost"}]},
    )
    assert result.status == 400
    assert result.json["scimType"] == "invalidValue"


def test_patch_can_return_204() -> None:
    engine = make_engine(patch_returns_no_content=True)
    user = call(engine, "POST", "/Users", {"schemas": [USER], "userName": "a"}).json
    result = patch(engine, f"/Users/{user['id']}", {"op": "replace", "path": "title", "value": "x"})
    assert result.status == 204
    assert result.raw == b""
    assert result.headers["ETag"] != user["meta"]["version"]


def test_noop_patch_keeps_version() -> None:
    engine = make_engine()
    user = call(engine, "POST", "/Users", {"schemas": [USER], "userName": "a", "title": "x"}).json
    same = patch(engine, f"/Users/{user['id']}", {"op": "replace", "path": "title", "value": "x"})
    assert same.status == 200
    assert same.json["meta"]["version"] == user["meta"]["version"]
    assert same.json["meta"]["lastModified"] == user["meta"]["lastModified"]


ONELOGIN_CORE = "urn:scim:schemas:core:2.0"
ONELOGIN_ENTERPRISE = "urn:scim:schemas:extension:enterprise:2.0"


def _onelogin_user(user_name: str) -> dict[str, object]:
    return {
        "schemas": [ONELOGIN_CORE, ONELOGIN_ENTERPRISE],
        "userName": user_name,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        ONELOGIN_ENTERPRISE: {"department": "Tour Operations"},
    }


def test_onelogin_pre_rfc_urns_are_read_as_the_endpoints_schemas() -> None:
    engine = make_engine()
    created = call(engine, "POST", "/Users", _onelogin_user("bjensen@example.com"))
    assert created.status == 201, created
    rid = created.json["id"]
    body = _onelogin_user("bjensen@example.com")
    body[ONELOGIN_ENTERPRISE] = {"department": "Finance"}
    replaced = call(engine, "PUT", f"/Users/{rid}", body)
    assert replaced.status == 200, replaced
    stored = call(engine, "GET", f"/Users/{rid}").json
    assert stored["schemas"] == [USER, ENTERPRISE]
    assert stored[ENTERPRISE] == {"department": "Finance"}
    assert stored["name"]["givenName"] == "Barbara"
    assert ONELOGIN_ENTERPRISE not in stored


def test_onelogin_pre_rfc_core_urn_on_groups() -> None:
    engine = make_engine()
    created = call(engine, "POST", "/Groups", {"schemas": [ONELOGIN_CORE], "displayName": "Ops"})
    assert created.status == 201, created
    assert created.json["schemas"] == [GROUP]


def test_strict_mode_refuses_the_pre_rfc_urns() -> None:
    engine = make_engine(strict=True)
    result = call(engine, "POST", "/Users", _onelogin_user("bjensen@example.com"))
    assert result.status == 400
    assert result.json["scimType"] == "invalidValue"
