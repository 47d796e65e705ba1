"""RFC 7643/7644 requirements a client can observe, one case per requirement.

Each test names the section it checks; they were written while auditing the engine against
the RFCs clause by clause (the cases other test modules already cover are not repeated).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from scim2_models import EnterpriseUser, Group, User

from scim2_core import Engine
from scim2_core.schema import Attribute, ResourceType, Schema
from tests.helpers import (
    BASE,
    ENTERPRISE,
    LIST,
    SEARCH,
    USER,
    assert_error,
    call,
    create_group,
    create_user,
    make_backend,
    make_engine,
)


def ids(result: Any) -> list[str]:
    assert result.status == 200, result
    return [r["id"] for r in result.json["Resources"]]


# -- RFC 7644 §4: discovery ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/Schemas", "/ResourceTypes", "/ServiceProviderConfig"])
def test_filter_on_a_discovery_endpoint_is_403(path: str) -> None:
    """§4: "If a "filter" is provided, the service provider SHOULD respond with HTTP
    status code 403 (Forbidden)"."""
    result = call(make_engine(), "GET", path, query={"filter": 'id eq "x"'})
    assert_error(result, 403)


def test_discovery_ignores_paging_and_sorting() -> None:
    """§4: "Query parameters [...] such as filtering, sorting, and pagination, SHALL be
    ignored" (filtering aside, which is the 403 above)."""
    result = call(make_engine(), "GET", "/Schemas", query={"count": "1", "startIndex": "2"})
    assert result.status == 200
    assert result.json["totalResults"] == 3 == len(result.json["Resources"])


def test_resource_type_description_is_readable() -> None:
    """RFC 7643 §6 "description": "The resource type's human-readable description"."""
    engine = make_engine()
    rt = call(engine, "GET", "/ResourceTypes/User").json
    schema = call(engine, "GET", f"/Schemas/{USER}").json
    assert rt["description"] == schema["description"] == "User"


# -- RFC 7644 §3.4.2.1 / §3.4.3: the server root -----------------------------------------


def test_get_on_the_server_root_queries_every_resource_type() -> None:
    """§3.2: "/" accepts GET (§3.4.2); §3.4.2.1: "A query against a server root indicates
    that all resources within the server SHALL be included, subject to filtering"."""
    engine = make_engine()
    user = create_user(engine, "alice")
    group = create_group(engine, "admins")
    result = call(engine, "GET", "/")
    assert result.json["schemas"] == [LIST]
    assert set(ids(result)) == {user["id"], group["id"]}
    only_groups = call(engine, "GET", "/", query={"filter": 'meta.resourceType eq "Group"'})
    assert ids(only_groups) == [group["id"]]
    assert_error(call(engine, "DELETE", "/"), 405)


def test_root_search_sorts_across_resource_types() -> None:
    """§3.4.2.3: sortBy orders the whole result, not each resource type separately."""
    engine = make_engine()
    user_b = create_user(engine, "bob", displayName="b")
    group_a = create_group(engine, "a")
    user_c = create_user(engine, "carol", displayName="c")
    body = {"schemas": [SEARCH], "sortBy": "displayName"}
    assert ids(call(engine, "POST", "/.search", body)) == [
        group_a["id"],
        user_b["id"],
        user_c["id"],
    ]
    body["sortOrder"] = "descending"
    assert ids(call(engine, "POST", "/.search", body)) == [
        user_c["id"],
        user_b["id"],
        group_a["id"],
    ]
    page = call(engine, "POST", "/.search", {**body, "startIndex": 2, "count": 1})
    assert ids(page) == [user_b["id"]]
    assert page.json["totalResults"] == 3


# -- RFC 7644 §3.4.2.3: sorting ------------------------------------------------------------


def test_sort_by_a_complex_attribute_needs_a_sub_attribute() -> None:
    """§3.4.2.3: "If the attribute is complex, the attribute name must be a path to a
    sub-attribute in standard attribute notation (Section 3.10), e.g., "sortBy=name.givenName"."
    """
    engine = make_engine()
    create_user(engine, "alice", name={"givenName": "A"})
    assert_error(call(engine, "GET", "/Users", query={"sortBy": "name"}), 400, "invalidValue")
    assert call(engine, "GET", "/Users", query={"sortBy": "name.givenName"}).status == 200
    # Multi-valued complex attributes sort by their primary (or first) value.
    assert call(engine, "GET", "/Users", query={"sortBy": "emails"}).status == 200


def test_sort_by_multi_valued_uses_the_primary_value_and_missing_values_go_last() -> None:
    """§3.4.2.3: "if it's a multi-valued attribute, resources are sorted by the value of
    the primary attribute [...], if any, or else the first value in the list [...] if
    there is no data for the specified "sortBy" value, they are [...] ordered last if
    ascending and first if descending"."""
    engine = make_engine()
    alice = create_user(
        engine,
        "alice",
        emails=[{"value": "z@x.org"}, {"value": "b@x.org", "primary": True}],
    )
    bob = create_user(engine, "bob", emails=[{"value": "a@x.org"}])
    carol = create_user(engine, "carol")
    dave = create_user(engine, "dave", emails=[{"value": "c@x.org"}, {"value": "0@x.org"}])
    ascending = ids(call(engine, "GET", "/Users", query={"sortBy": "emails.value"}))
    assert ascending == [bob["id"], alice["id"], dave["id"], carol["id"]]
    descending = ids(
        call(engine, "GET", "/Users", query={"sortBy": "emails", "sortOrder": "descending"})
    )
    assert descending == [carol["id"], dave["id"], alice["id"], bob["id"]]


def test_sort_by_meta_created() -> None:
    engine = make_engine()
    first = create_user(engine, "zed")
    time.sleep(0.002)
    second = create_user(engine, "amy")
    query = {"sortBy": "meta.created", "sortOrder": "descending"}
    assert ids(call(engine, "GET", "/Users", query=query)) == [second["id"], first["id"]]


# -- RFC 7643 §4.1.2: User.groups is derived, and behaves like any attribute ---------------


def test_users_can_be_filtered_and_sorted_by_their_groups() -> None:
    """RFC 7643 §4.1.2 "groups": "A list of groups to which the user belongs"; RFC 7644
    §3.4.2.2: any attribute may be filtered on. The derived attribute must not silently
    match nothing."""
    engine = make_engine()
    alice = create_user(engine, "alice")
    bob = create_user(engine, "bob")
    carol = create_user(engine, "carol")
    admins = create_group(engine, "admins", [alice["id"]])
    create_group(engine, "staff", [alice["id"], bob["id"]])
    by_value = call(engine, "GET", "/Users", query={"filter": f'groups.value eq "{admins["id"]}"'})
    assert ids(by_value) == [alice["id"]]
    by_display = call(engine, "GET", "/Users", query={"filter": 'groups[display eq "staff"]'})
    assert sorted(ids(by_display)) == sorted([alice["id"], bob["id"]])
    without = call(engine, "GET", "/Users", query={"filter": "not (groups pr)"})
    assert ids(without) == [carol["id"]]
    combined = call(
        engine,
        "GET",
        "/Users",
        query={
            "filter": 'groups.display eq "staff" and userName ne "alice"',
            "attributes": "userName",
        },
    )
    assert combined.json["totalResults"] == 1
    assert combined.json["Resources"] == [{"schemas": [USER], "id": bob["id"], "userName": "bob"}]
    paged = call(
        engine,
        "GET",
        "/Users",
        query={
            "filter": "groups pr",
            "sortBy": "userName",
            "sortOrder": "descending",
            "count": "1",
        },
    )
    assert ids(paged) == [bob["id"]]
    assert paged.json["totalResults"] == 2
    dave = create_user(engine, "dave")
    create_group(engine, "0-first", [dave["id"]])
    sorted_by_group = ids(call(engine, "GET", "/Users", query={"sortBy": "groups.display"}))
    # dave's only group sorts before any of alice's and bob's; carol has none: last.
    assert sorted_by_group[0] == dave["id"]
    assert sorted_by_group[-1] == carol["id"]


# -- RFC 7643 §2.4: at most one primary value ------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_two_primary_values_are_400(method: str) -> None:
    """RFC 7643 §2.4: "The primary attribute value "true" MUST appear no more than once"."""
    engine = make_engine()
    user = create_user(engine, "alice")
    body = {
        "schemas": [USER],
        "userName": "alice" if method == "PUT" else "bob",
        "emails": [{"value": "a@x.org", "primary": True}, {"value": "b@x.org", "primary": True}],
    }
    path = f"/Users/{user['id']}" if method == "PUT" else "/Users"
    assert_error(call(engine, method, path, body), 400, "invalidValue")


# -- RFC 7643 §2.2: required, at every level ----------------------------------------------------

LAPTOP = "urn:example:schemas:Laptop"
LAPTOP_EXTRA = "urn:example:schemas:extension:Asset"


def _laptop_engine() -> Engine:
    """A type whose required attributes sit at the top, inside a complex value, inside
    each value of a multi-valued complex one, and in a required extension."""
    port = Attribute(
        name="ports",
        type="complex",
        multi_valued=True,
        sub_attributes=(
            Attribute(name="kind", required=True),
            Attribute(name="primary", type="boolean"),
            Attribute(name="$ref", type="reference", required=True),
        ),
    )
    schema = Schema(
        id=LAPTOP,
        name="Laptop",
        attributes=(
            Attribute(name="serial", required=True),
            Attribute(
                name="owner",
                type="complex",
                sub_attributes=(Attribute(name="name", required=True), Attribute(name="email")),
            ),
            port,
            Attribute(name="stamp", required=True, mutability="readOnly"),
        ),
    )
    extra = Schema(
        id=LAPTOP_EXTRA,
        name="Asset",
        attributes=(Attribute(name="tag", required=True), Attribute(name="note")),
    )
    laptop = ResourceType(
        name="Laptop", endpoint="/Laptops", schema=schema, extensions=((extra, True),)
    )
    return Engine(make_backend(), resource_types=[User, laptop])


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"serial": None}, "serial"),
        ({"serial": ""}, "serial"),
        ({"owner": {"email": "ann@example.org"}}, "owner.'name'"),
        ({"ports": [{"kind": "usb"}, {"primary": True}]}, "ports.'kind'"),
        ({LAPTOP_EXTRA: {"note": "n"}}, f"{LAPTOP_EXTRA}:'tag'"),
        ({LAPTOP_EXTRA: None}, LAPTOP_EXTRA),
        (
            {"ports": [{"kind": "usb", "primary": True}, {"kind": "hdmi", "primary": True}]},
            "primary",
        ),
    ],
)
def test_a_missing_required_value_or_a_second_primary_is_400_naming_it(
    change: dict[str, Any], named: str
) -> None:
    """RFC 7643 §2.2 "required" (readOnly ones are the server's, and ``$ref`` is derived,
    so neither is demanded) and §2.4 one primary, at every level of the body."""
    engine = _laptop_engine()
    body: dict[str, Any] = {
        "schemas": [LAPTOP, LAPTOP_EXTRA],
        "serial": "SN1",
        "owner": {"name": "Ann"},
        "ports": [{"kind": "usb", "primary": True}, {"kind": "hdmi"}],
        LAPTOP_EXTRA: {"tag": "T1"},
    }
    assert call(engine, "POST", "/Laptops", body).status == 201
    body.update(change)
    body["serial"] = body["serial"] if "serial" in change else "SN2"
    body = {k: v for k, v in body.items() if v is not None}
    answer = call(engine, "POST", "/Laptops", body)
    assert_error(answer, 400, "invalidValue")
    assert named in answer.json["detail"]


# -- RFC 7643 §4.3: enterprise manager ---------------------------------------------------------


def test_manager_ref_is_filled_from_its_value() -> None:
    """RFC 7643 §4.3 manager "$ref: The URI of the SCIM resource representing the User's
    manager. REQUIRED." Clients send only ``value``; the server derives ``$ref``."""
    engine = make_engine()
    boss = create_user(engine, "boss")
    user = create_user(engine, "alice", **{ENTERPRISE: {"manager": {"value": boss["id"]}}})
    manager = user[ENTERPRISE]["manager"]
    assert manager == {"value": boss["id"], "$ref": f"{BASE}/Users/{boss['id']}"}
    fetched = call(engine, "GET", f"/Users/{user['id']}").json
    assert fetched[ENTERPRISE]["manager"]["$ref"] == f"{BASE}/Users/{boss['id']}"
    # An id naming no User gets no URI pointing nowhere.
    dangling = create_user(engine, "carol", **{ENTERPRISE: {"manager": {"value": "nobody"}}})
    assert dangling[ENTERPRISE]["manager"] == {"value": "nobody"}


def test_manager_without_an_id_is_accepted_as_okta_sends_it() -> None:
    """RFC 7643 §4.3 calls ``manager.value`` RECOMMENDED and §8.7.1's schema says
    ``"required": false`` (for ``$ref`` too). Okta's PUT after a manager is removed carries
    ``"manager": {"value": null}``, which clears it; a manager given by name only is
    accepted, not refused with 400."""
    engine = make_engine()
    boss = create_user(engine, "boss")
    user = create_user(engine, "alice", **{ENTERPRISE: {"manager": {"value": boss["id"]}}})
    body = {k: v for k, v in user.items() if k != "meta"}
    body[ENTERPRISE] = {"manager": {"value": None}, "department": "Sales"}
    replaced = call(engine, "PUT", f"/Users/{user['id']}", body)
    assert replaced.status == 200, replaced.json
    assert replaced.json[ENTERPRISE] == {"department": "Sales"}
    assert "manager" not in call(engine, "GET", f"/Users/{user['id']}").json[ENTERPRISE]
    named = call(
        engine,
        "POST",
        "/Users",
        {
            "schemas": [USER, ENTERPRISE],
            "userName": "bob",
            ENTERPRISE: {"manager": {"displayName": "Boss"}, "department": "R&D"},
        },
    )
    assert named.status == 201, named.json
    schema = call(engine, "GET", f"/Schemas/{ENTERPRISE}").json
    [manager] = [a for a in schema["attributes"] if a["name"] == "manager"]
    assert {s["name"]: s["required"] for s in manager["subAttributes"]} == {
        "value": False,
        "$ref": False,
        "displayName": False,
    }


# -- RFC 7644 §3.14 / RFC 7232: conditional GET -------------------------------------------------


def test_get_with_a_stale_if_match_is_412() -> None:
    """RFC 7232 §3.1: "If-Match [...] the origin server MUST NOT perform the requested
    method if [none of the tags match]" and answers 412; RFC 7644 §3.14 uses RFC 7232."""
    engine = make_engine()
    user = create_user(engine, "alice")
    stale = call(engine, "GET", f"/Users/{user['id']}", headers={"If-Match": 'W/"99"'})
    assert_error(stale, 412)
    fresh = call(
        engine,
        "GET",
        f"/Users/{user['id']}",
        headers={"If-Match": f'W/"7", {user["meta"]["version"]}'},
    )
    assert fresh.status == 200


# -- Message schemas: URNs and attribute names are case-insensitive -----------------------------


def test_search_request_urn_and_keys_are_case_insensitive() -> None:
    """RFC 7643 §2.1: "Attribute names are case insensitive"; schema URNs are compared
    case-insensitively here as for resources (§3.3 examples use either)."""
    engine = make_engine()
    create_user(engine, "alice")
    bob = create_user(engine, "bob")
    body = {"schemas": [SEARCH.lower()], "Filter": 'userName eq "bob"', "COUNT": 5}
    result = call(engine, "POST", "/Users/.search", body)
    assert ids(result) == [bob["id"]]


def test_bulk_request_urn_is_case_insensitive() -> None:
    engine = make_engine()
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:bulkrequest"], "Operations": []}
    assert call(engine, "POST", "/Bulk", body).status == 200


# -- RFC 7644 §3.6: deleted resources disappear everywhere ------------------------------------


def test_a_deleted_resource_is_404_for_every_operation_and_gone_from_queries() -> None:
    """§3.6: "MUST return a 404 (Not Found) error code for all operations associated with
    the previously deleted resource" and "MUST omit the resource from future query
    results"."""
    engine = make_engine()
    user = create_user(engine, "alice")
    group = create_group(engine, "g", [user["id"]])
    assert call(engine, "DELETE", f"/Users/{user['id']}").status == 204
    path = f"/Users/{user['id']}"
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "x"}],
    }
    assert_error(call(engine, "GET", path), 404)
    assert_error(call(engine, "PUT", path, {"schemas": [USER], "userName": "alice"}), 404)
    assert_error(call(engine, "PATCH", path, patch), 404)
    assert_error(call(engine, "DELETE", path), 404)
    assert ids(call(engine, "GET", "/Users")) == []
    assert "members" not in call(engine, "GET", f"/Groups/{group['id']}").json


# -- RFC 7643 §2.2 / §7: characteristics of sub-attributes -------------------------------------

DEVICE = "urn:example:schemas:Device"


def _device_engine() -> Engine:
    schema = Schema(
        id=DEVICE,
        name="Device",
        attributes=(
            Attribute(name="serial", required=True, mutability="immutable"),
            Attribute(name="notes", returned="request"),
            Attribute(
                name="spec",
                type="complex",
                sub_attributes=(
                    Attribute(name="secret", returned="request"),
                    Attribute(name="model"),
                    Attribute(name="id", returned="always"),
                    Attribute(name="board", mutability="immutable"),
                ),
            ),
        ),
    )
    device = ResourceType(name="Device", endpoint="/Devices", schema=schema)
    return Engine(make_backend(), resource_types=[User[EnterpriseUser], Group, device])


def test_returned_request_sub_attributes_only_when_named() -> None:
    """RFC 7643 §7 returned "request": "The attribute is returned in response to any PUT,
    POST, or PATCH operations if specified in the "attributes" parameter" -- for
    sub-attributes as for attributes. "always" ones survive excludedAttributes."""
    engine = _device_engine()
    body = {
        "schemas": [DEVICE],
        "serial": "SN1",
        "notes": "n",
        "spec": {"secret": "s", "model": "m", "id": "i", "board": "b"},
    }
    created = call(engine, "POST", "/Devices", body)
    assert created.status == 201, created
    assert "notes" not in created.json
    assert created.json["spec"] == {"model": "m", "id": "i", "board": "b"}
    path = f"/Devices/{created.json['id']}"
    assert call(engine, "GET", path, query={"attributes": "spec"}).json["spec"] == {
        "model": "m",
        "id": "i",
        "board": "b",
    }
    named = call(engine, "GET", path, query={"attributes": "spec.secret,notes"}).json
    assert named["spec"] == {"secret": "s", "id": "i"}
    assert named["notes"] == "n"
    excluded = call(engine, "GET", path, query={"excludedAttributes": "spec.id,spec.model"}).json
    assert excluded["spec"] == {"id": "i", "board": "b"}


def test_put_cannot_change_an_immutable_sub_attribute() -> None:
    """RFC 7644 §3.5.1 immutable: "If one or more values are already set for the
    attribute, the input value(s) MUST match, or HTTP status code 400 SHOULD be returned
    with a "scimType" error code of "mutability""."""
    engine = _device_engine()
    body = {"schemas": [DEVICE], "serial": "SN1", "spec": {"model": "m", "board": "b"}}
    path = f"/Devices/{call(engine, 'POST', '/Devices', body).json['id']}"
    changed = {"schemas": [DEVICE], "serial": "SN1", "spec": {"board": "other"}}
    assert_error(call(engine, "PUT", path, changed), 400, "mutability")
    same = {"schemas": [DEVICE], "serial": "SN1", "spec": {"model": "n", "board": "b"}}
    assert call(engine, "PUT", path, same).json["spec"] == {"model": "n", "board": "b"}
    omitted = call(engine, "PUT", path, {"schemas": [DEVICE], "serial": "SN1"})
    assert omitted.json["spec"] == {"board": "b"}
    assert_error(
        call(engine, "PUT", path, {"schemas": [DEVICE], "serial": "SN2"}), 400, "mutability"
    )
