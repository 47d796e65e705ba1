"""Create, read, replace and delete through ``Engine.handle`` (RFC 7644 §3.3–§3.6)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

import pytest

from scim2_core import Engine, verify_password
from scim2_core.backends import Backend
from scim2_core.schema import ResourceType
from tests.helpers import (
    BASE,
    ENTERPRISE,
    GROUP,
    PATCH_OP,
    USER,
    ForwardingBackend,
    Result,
    assert_error,
    call,
    create_group,
    create_user,
    make_backend,
    make_engine,
    user_body,
)


def test_create_returns_201_with_location_etag_and_meta() -> None:
    engine = make_engine()
    result = call(engine, "POST", "/Users", user_body("bjensen", name={"givenName": "Barbara"}))
    assert result.status == 201
    body = result.json
    assert body["schemas"] == [USER]
    assert body["userName"] == "bjensen"
    assert body["name"] == {"givenName": "Barbara"}
    rid = body["id"]
    assert result.headers["Location"] == f"{BASE}/Users/{rid}"
    meta = body["meta"]
    assert meta["resourceType"] == "User"
    assert meta["location"] == f"{BASE}/Users/{rid}"
    assert meta["created"] == meta["lastModified"]
    assert result.headers["ETag"] == meta["version"]
    assert result.headers["Content-Type"] == "application/scim+json"


def test_read_only_attributes_in_a_create_are_ignored() -> None:
    engine = make_engine()
    body = user_body(
        "bjensen",
        id="client-chosen",
        meta={"version": 'W/"99"', "resourceType": "Group"},
        groups=[{"value": "g1"}],
    )
    created = call(engine, "POST", "/Users", body).json
    assert created["id"] != "client-chosen"
    assert created["meta"]["resourceType"] == "User"
    assert created["meta"]["version"] != 'W/"99"'
    assert "groups" not in created


def test_attribute_names_are_case_insensitive_and_stored_canonically() -> None:
    engine = make_engine()
    created = call(
        engine, "POST", "/Users", {"schemas": [USER], "USERNAME": "x", "Name": {"GivenName": "G"}}
    ).json
    assert created["userName"] == "x"
    assert created["name"] == {"givenName": "G"}


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"schemas": [USER]}, "invalidValue"),  # userName is required
        ({"userName": "x"}, "invalidSyntax"),  # schemas is required (RFC 7643 §3)
        ({"schemas": [USER], "userName": ""}, "invalidValue"),
        ({"schemas": [USER], "userName": 42.5, "active": "maybe"}, "invalidValue"),
        ({"schemas": [GROUP], "userName": "x"}, "invalidValue"),  # wrong core schema
        ({"schemas": "nope", "userName": "x"}, "invalidSyntax"),
        ({"schemas": [USER], "userName": "x", "emails": "not-a-list-of-objects"}, "invalidValue"),
        ({"schemas": [USER], "userName": "x", "name": "flat"}, "invalidValue"),
    ],
)
def test_invalid_create_bodies_are_400(body: dict[str, object], scim_type: str) -> None:
    engine = make_engine()
    assert_error(call(engine, "POST", "/Users", body), 400, scim_type)
    # and nothing was stored
    listed = call(engine, "GET", "/Users").json
    assert listed["totalResults"] == 0


def test_unknown_attributes_are_dropped_by_default_and_rejected_in_strict_mode() -> None:
    lenient = make_engine()
    body = user_body("bjensen", favouriteColour="green")
    body["schemas"] = [USER, "urn:ietf:params:scim:schemas:extension:CustomExtension"]
    created = call(lenient, "POST", "/Users", body)
    assert created.status == 201
    assert "favouriteColour" not in created.json
    stored = call(lenient, "GET", f"/Users/{created.json['id']}").json
    assert "favouriteColour" not in stored

    strict = make_engine(reject_unknown_attributes=True)
    result = call(strict, "POST", "/Users", user_body("bjensen", favouriteColour="green"))
    assert_error(result, 400, "invalidSyntax")
    assert "favouriteColour" in result.json["detail"]


def test_username_uniqueness_is_case_insensitive() -> None:
    engine = make_engine()
    create_user(engine, "bjensen")
    assert_error(call(engine, "POST", "/Users", user_body("BJensen")), 409, "uniqueness")


def test_password_is_never_returned_and_is_stored_hashed() -> None:
    events: list[object] = []
    engine = make_engine()
    engine.subscribe(events.append)
    created = call(engine, "POST", "/Users", user_body("bjensen", password="t1meMa$heen"))
    assert created.status == 201
    assert "password" not in created.json
    assert b"t1meMa$heen" not in created.raw
    got = call(engine, "GET", f"/Users/{created.json['id']}", query={"attributes": "password"})
    assert "password" not in got.json
    assert engine.events.wait_idle()
    # RFC 7643 §4.1.1 password is returned "never": not in a change event either.
    assert "password" not in events[0].after  # type: ignore[attr-defined]
    stored = engine.backend.get(None, engine.resource_types[0], created.json["id"])
    assert stored is not None
    assert stored["password"] != "t1meMa$heen"
    assert verify_password(stored["password"], "t1meMa$heen")
    assert not verify_password(stored["password"], "wrong")


def test_enterprise_extension_round_trips_and_schemas_lists_it() -> None:
    engine = make_engine()
    body = user_body("bjensen")
    body["schemas"].append(ENTERPRISE)
    body[ENTERPRISE] = {"employeeNumber": "701984", "manager": {"value": "mgr"}}
    created = call(engine, "POST", "/Users", body).json
    assert created["schemas"] == [USER, ENTERPRISE]
    assert created[ENTERPRISE] == {"employeeNumber": "701984", "manager": {"value": "mgr"}}


def test_get_unknown_id_is_404() -> None:
    engine = make_engine()
    assert_error(call(engine, "GET", "/Users/nope"), 404)


def test_if_none_match_gives_304() -> None:
    engine = make_engine()
    user = create_user(engine, "bjensen")
    etag = user["meta"]["version"]
    result = call(engine, "GET", f"/Users/{user['id']}", headers={"If-None-Match": etag})
    assert result.status == 304
    assert result.raw == b""
    assert result.headers["ETag"] == etag
    other = call(engine, "GET", f"/Users/{user['id']}", headers={"If-None-Match": 'W/"other"'})
    assert other.status == 200


def test_joining_a_group_changes_the_users_etag() -> None:
    # RFC 7644 §3.14: the version changes with the representation, and User.groups
    # (RFC 7643 §4.1.2, derived from memberships) is part of it.
    engine = make_engine()
    user = create_user(engine, "bjensen")
    group = create_group(engine, "Admins")
    first = call(engine, "GET", f"/Users/{user['id']}")
    etag = first.headers["ETag"]
    assert "groups" not in first.json
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}],
    }
    assert call(engine, "PATCH", f"/Groups/{group['id']}", patch).status in (200, 204)
    again = call(engine, "GET", f"/Users/{user['id']}", headers={"If-None-Match": etag})
    assert again.status == 200
    assert [g["value"] for g in again.json["groups"]] == [group["id"]]
    assert again.headers["ETag"] == again.json["meta"]["version"] != etag
    stale = call(
        engine,
        "PUT",
        f"/Users/{user['id']}",
        user_body("bjensen", title="x"),
        headers={"If-Match": etag},
    )
    assert_error(stale, 412)
    assert call(engine, "GET", f"/Users/{user['id']}").json.get("title") is None


def test_put_replaces_and_bumps_the_version() -> None:
    engine = make_engine()
    user = create_user(engine, "bjensen", displayName="Babs", title="Tour Guide")
    result = call(
        engine,
        "PUT",
        f"/Users/{user['id']}",
        user_body("bjensen", displayName="Barbara", active=False),
    )
    assert result.status == 200
    body = result.json
    assert body["displayName"] == "Barbara"
    assert body["active"] is False
    assert "title" not in body  # omitted readWrite attributes are cleared
    assert body["meta"]["version"] != user["meta"]["version"]
    assert body["meta"]["created"] == user["meta"]["created"]
    assert result.headers["ETag"] == body["meta"]["version"]


def test_put_with_the_same_content_keeps_the_version() -> None:
    engine = make_engine()
    user = create_user(engine, "bjensen", displayName="Babs")
    again = call(engine, "PUT", f"/Users/{user['id']}", user_body("bjensen", displayName="Babs"))
    assert again.status == 200
    assert again.json["meta"]["version"] == user["meta"]["version"]


def test_put_keeps_the_password_when_omitted() -> None:
    engine = make_engine()
    user = create_user(engine, "bjensen", password="secret-1")
    call(engine, "PUT", f"/Users/{user['id']}", user_body("bjensen", active=False))
    after = engine.backend.get(None, engine.resource_types[0], user["id"])
    assert after is not None
    assert verify_password(after["password"], "secret-1")


def test_put_cannot_take_another_users_username() -> None:
    engine = make_engine()
    create_user(engine, "alice")
    bob = create_user(engine, "bob")
    assert_error(call(engine, "PUT", f"/Users/{bob['id']}", user_body("ALICE")), 409, "uniqueness")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_if_match_mismatch_is_412_and_changes_nothing(method: str) -> None:
    engine = make_engine()
    user = create_user(engine, "bjensen")
    body = None
    if method == "PUT":
        body = user_body("other")
    elif method == "PATCH":
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "userName", "value": "other"}],
        }
    result = call(engine, method, f"/Users/{user['id']}", body, headers={"If-Match": 'W/"999"'})
    assert_error(result, 412)
    assert call(engine, "GET", f"/Users/{user['id']}").json["userName"] == "bjensen"


def test_if_match_current_version_and_star_succeed() -> None:
    engine = make_engine()
    user = create_user(engine, "bjensen")
    ok = call(
        engine,
        "PUT",
        f"/Users/{user['id']}",
        user_body("bjensen2"),
        headers={"If-Match": user["meta"]["version"]},
    )
    assert ok.status == 200
    star = call(engine, "PUT", f"/Users/{user['id']}", user_body("b3"), headers={"If-Match": "*"})
    assert star.status == 200


def test_delete_is_204_then_404() -> None:
    engine = make_engine()
    user = create_user(engine, "bjensen")
    deleted = call(engine, "DELETE", f"/Users/{user['id']}")
    assert deleted.status == 204
    assert deleted.raw == b""
    assert_error(call(engine, "GET", f"/Users/{user['id']}"), 404)
    assert_error(call(engine, "DELETE", f"/Users/{user['id']}"), 404)


def test_group_members_get_ref_and_type_and_users_get_groups() -> None:
    engine = make_engine()
    alice = create_user(engine, "alice")
    group = create_group(engine, "Admins", [alice["id"]])
    member = group["members"][0]
    assert member["value"] == alice["id"]
    assert member["type"] == "User"
    assert member["$ref"] == f"{BASE}/Users/{alice['id']}"
    reread = call(engine, "GET", f"/Users/{alice['id']}").json
    assert reread["groups"] == [
        {
            "value": group["id"],
            "display": "Admins",
            "$ref": f"{BASE}/Groups/{group['id']}",
            "type": "direct",
        }
    ]


def test_group_member_must_exist() -> None:
    engine = make_engine()
    body = {"schemas": [GROUP], "displayName": "G", "members": [{"value": "ghost"}]}
    result = call(engine, "POST", "/Groups", body)
    assert_error(result, 400, "invalidValue")
    assert "ghost" in result.json["detail"]


BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


class _DeletesAfterCheck(ForwardingBackend):
    """A backend whose ``existing()`` answers, then lets a concurrent DELETE of ``victim`` in.

    Wraps the test's real backend (``make_backend()``) and forwards everything else to it.
    """

    victim: str | None = None

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.types: dict[str, ResourceType] = {}

    def bind(self, resource_types: Sequence[ResourceType]) -> None:
        self.inner.bind(resource_types)
        self.types = {rt.name: rt for rt in resource_types}

    def existing(self, tenant: str | None, ids: Iterable[str]) -> Mapping[str, str]:
        found = self.inner.existing(tenant, ids)
        victim, self.victim = self.victim, None
        if victim is not None and victim in found:
            self.inner.delete(tenant, self.types[found[victim]], victim)
        return found


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "Bulk"])
def test_member_deleted_between_check_and_write_is_refused(method: str) -> None:
    # RFC 7643 §4.2: a member deleted after the engine checked it must not be stored
    # dangling; the engine passes the ids it checked to the backend's write (members=).
    backend = _DeletesAfterCheck(make_backend())
    engine = Engine(backend)
    alice = create_user(engine, "alice")["id"]
    bob = create_user(engine, "bob")["id"]
    group = create_group(engine, "Team", [alice])
    members = [{"value": alice}, {"value": bob}]
    backend.victim = bob
    if method == "POST":
        body = {"schemas": [GROUP], "displayName": "New", "members": members}
        result = call(engine, "POST", "/Groups", body)
    elif method == "PUT":
        body = {"schemas": [GROUP], "displayName": "Team", "members": members}
        result = call(engine, "PUT", f"/Groups/{group['id']}", body)
    elif method == "PATCH":
        ops = [{"op": "add", "path": "members", "value": [{"value": bob}]}]
        result = call(
            engine, "PATCH", f"/Groups/{group['id']}", {"schemas": [PATCH_OP], "Operations": ops}
        )
    else:
        data = {"schemas": [GROUP], "displayName": "New", "members": members}
        op = {"method": "POST", "path": "/Groups", "bulkId": "b1", "data": data}
        bulk = {"schemas": [BULK_REQUEST], "Operations": [op]}
        outcome = call(engine, "POST", "/Bulk", bulk).json["Operations"][0]
        result = Result(
            {
                "status": int(outcome["status"]),
                "headers": {"Content-Type": "application/scim+json"},
                "body": json.dumps(outcome["response"]).encode(),
            }
        )
    assert_error(result, 400, "invalidValue")
    assert bob in result.json["detail"]
    groups = call(engine, "GET", "/Groups").json["Resources"]
    assert [(g["displayName"], [m["value"] for m in g["members"]]) for g in groups] == [
        ("Team", [alice])
    ]


def test_nested_group_member_is_typed_group() -> None:
    engine = make_engine()
    inner = create_group(engine, "Inner")
    outer = create_group(engine, "Outer", [inner["id"]])
    assert outer["members"][0]["type"] == "Group"
    assert outer["members"][0]["$ref"] == f"{BASE}/Groups/{inner['id']}"


def test_deleting_a_user_removes_it_from_its_groups() -> None:
    engine = make_engine()
    alice = create_user(engine, "alice")
    bob = create_user(engine, "bob")
    group = create_group(engine, "Team", [alice["id"], bob["id"]])
    assert call(engine, "DELETE", f"/Users/{alice['id']}").status == 204
    after = call(engine, "GET", f"/Groups/{group['id']}").json
    assert [m["value"] for m in after["members"]] == [bob["id"]]
    assert after["meta"]["version"] != group["meta"]["version"]


def test_user_groups_is_read_only_on_put() -> None:
    engine = make_engine()
    alice = create_user(engine, "alice")
    group = create_group(engine, "Team")
    body = user_body("alice", groups=[{"value": group["id"]}])
    result = call(engine, "PUT", f"/Users/{alice['id']}", body)
    assert result.status == 200
    assert "groups" not in result.json
    assert "members" not in call(engine, "GET", f"/Groups/{group['id']}").json


def test_change_events_are_emitted_once_per_committed_change() -> None:
    events: list[object] = []
    engine = make_engine()
    engine.subscribe(events.append)
    user = create_user(engine, "alice")
    call(engine, "PUT", f"/Users/{user['id']}", user_body("alice", title="x"))
    call(engine, "PUT", f"/Users/{user['id']}", user_body("alice", title="x"))  # no change
    call(engine, "DELETE", f"/Users/{user['id']}")
    assert engine.events.wait_idle()
    kinds = [e.kind for e in events]  # type: ignore[attr-defined]
    assert kinds == ["created", "replaced", "deleted"]
    assert "title" not in events[1].before  # type: ignore[attr-defined]
    assert events[1].after["title"] == "x"  # type: ignore[attr-defined]
    assert events[2].after is None  # type: ignore[attr-defined]
