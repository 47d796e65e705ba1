"""RFC 7644 §3.7 Bulk examples replayed end to end through ``Engine.handle``.

Each request is the RFC's example (§3.7.1 request, §3.7.2 bulkId references including the
circular one, §3.7.3 response and failOnErrors, §3.7.4 limits) with its ids replaced by the
ones this server assigned; after the Bulk request the resources are read back one by one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from scim2_core import Engine
from tests.helpers import (
    BASE,
    ERROR,
    GROUP,
    PATCH_OP,
    USER,
    call,
    create_user,
    make_engine,
)

pytestmark = pytest.mark.usefixtures("each_backend")

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"


def bulk(engine: Engine, *ops: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    result = call(
        engine, "POST", "/Bulk", {"schemas": [BULK_REQUEST], "Operations": list(ops), **extra}
    )
    assert result.status == 200, result
    assert result.json["schemas"] == [BULK_RESPONSE]
    return result.json["Operations"]  # type: ignore[no-any-return]


def read(engine: Engine, location: str) -> dict[str, Any]:
    result = call(engine, "GET", location.removeprefix(BASE))
    assert result.status == 200, result
    return result.json  # type: ignore[no-any-return]


def test_rfc_3_7_1_example_with_versions() -> None:
    """§3.7.1: POST a user, PUT one, PATCH one, DELETE one; ``version`` on PUT, PATCH and
    DELETE is a precondition, and each result carries the new version."""
    engine = make_engine()
    bob = create_user(engine, "Bob")
    jim = create_user(engine, "Jim")
    dave = create_user(engine, "Dave")
    results = bulk(
        engine,
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "qwerty",
            "data": {"schemas": [USER], "userName": "Alice"},
        },
        {
            "method": "PUT",
            "path": f"/Users/{bob['id']}",
            "version": bob["meta"]["version"],
            "data": {
                "schemas": [USER],
                "id": bob["id"],
                "userName": "Bob",
                "emails": [{"type": "work", "value": "bob@example.com"}],
            },
        },
        {
            "method": "PATCH",
            "path": f"/Users/{jim['id']}",
            "version": jim["meta"]["version"],
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [
                    {
                        "op": "add",
                        "path": "nickName",
                        "value": "Jim",
                    }
                ],
            },
        },
        {"method": "DELETE", "path": f"/Users/{dave['id']}", "version": dave["meta"]["version"]},
        failOnErrors=1,
    )
    assert [(r["method"], r["status"]) for r in results] == [
        ("POST", "201"),
        ("PUT", "200"),
        ("PATCH", "200"),
        ("DELETE", "204"),
    ]
    alice = read(engine, results[0]["location"])
    assert results[0]["bulkId"] == "qwerty"
    assert alice["userName"] == "Alice"
    assert results[0]["version"] == alice["meta"]["version"]
    stored_bob = read(engine, results[1]["location"])
    assert stored_bob["emails"] == [{"type": "work", "value": "bob@example.com"}]
    assert results[1]["version"] == stored_bob["meta"]["version"] != bob["meta"]["version"]
    stored_jim = read(engine, results[2]["location"])
    assert stored_jim["nickName"] == "Jim"
    assert results[2]["version"] == stored_jim["meta"]["version"] != jim["meta"]["version"]
    assert call(engine, "GET", f"/Users/{dave['id']}").status == 404
    # The same request again: every version is stale now, so each write fails 412 alone.
    results = bulk(
        engine,
        {
            "method": "PATCH",
            "path": f"/Users/{jim['id']}",
            "version": jim["meta"]["version"],
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "nickName", "value": "James"}],
            },
        },
        {"method": "DELETE", "path": f"/Users/{bob['id']}", "version": bob["meta"]["version"]},
    )
    assert [r["status"] for r in results] == ["412", "412"]
    for r in results:
        assert r["response"]["schemas"] == [ERROR]
        assert r["response"]["status"] == "412"
        assert r["location"].startswith(BASE)
    assert read(engine, f"{BASE}/Users/{jim['id']}") == stored_jim
    assert read(engine, f"{BASE}/Users/{bob['id']}") == stored_bob


def test_rfc_3_7_2_bulk_ids_in_data_and_paths() -> None:
    """§3.7.2: a group whose member is a user created in the same request (forward
    reference), then PATCH and DELETE addressed by ``bulkId:`` paths."""
    engine = make_engine()
    results = bulk(
        engine,
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "ytrewq",
            "data": {
                "schemas": [GROUP],
                "displayName": "Tour Guides",
                "members": [{"type": "User", "value": "bulkId:qwerty"}],
            },
        },
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "qwerty",
            "data": {"schemas": [USER], "userName": "Alice"},
        },
        {
            "method": "PATCH",
            "path": "/Groups/bulkId:ytrewq",
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Guides"}],
            },
        },
        {
            "method": "PATCH",
            "path": "/Users/bulkId:qwerty",
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "value": {"active": False}}],
            },
        },
    )
    assert [r["status"] for r in results] == ["201", "201", "200", "200"]
    group = read(engine, results[0]["location"])
    user = read(engine, results[1]["location"])
    assert [m["value"] for m in group["members"]] == [user["id"]]
    assert group["displayName"] == "Guides"
    assert results[2]["location"] == group["meta"]["location"]
    assert results[2]["version"] == group["meta"]["version"]
    assert user["active"] is False
    assert [g["value"] for g in user["groups"]] == [group["id"]]
    results = bulk(
        engine,
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "x",
            "data": {"schemas": [USER], "userName": "Bob"},
        },
        {
            "method": "PATCH",
            "path": f"/Groups/{group['id']}",
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": "bulkId:x"}]},
                    {"op": "remove", "path": f'members[value eq "{user["id"]}"]'},
                ],
            },
        },
        {"method": "DELETE", "path": "/Users/bulkId:x"},
    )
    assert [r["status"] for r in results] == ["201", "200", "204"]
    assert "members" not in read(engine, results[1]["location"])


def test_rfc_3_7_2_circular_reference_is_409_for_each_operation() -> None:
    """§3.7.2: "The service provider MUST try to resolve circular cross-references [...]
    but MAY stop after a failed attempt and instead return HTTP status code 409
    (Conflict)." The RFC's two groups that contain each other: each fails with 409, and
    nothing is created; the operations after them still run."""
    engine = make_engine()
    results = bulk(
        engine,
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "qwerty",
            "data": {
                "schemas": [GROUP],
                "displayName": "Group A",
                "members": [{"type": "Group", "value": "bulkId:ytrewq"}],
            },
        },
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "ytrewq",
            "data": {
                "schemas": [GROUP],
                "displayName": "Group B",
                "members": [{"type": "Group", "value": "bulkId:qwerty"}],
            },
        },
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "alone",
            "data": {"schemas": [USER], "userName": "Alice"},
        },
    )
    assert [(r.get("bulkId"), r["status"]) for r in results] == [
        ("qwerty", "409"),
        ("ytrewq", "409"),
        ("alone", "201"),
    ]
    for r in results[:2]:
        assert (
            "location" not in r
        )  # "REQUIRED in a response, except in the event of a POST failure"
        assert r["response"]["schemas"] == [ERROR]
        assert r["response"]["status"] == "409"
        assert "bulkId:" in r["response"]["detail"]
    assert call(engine, "GET", "/Groups").json["totalResults"] == 0


def test_rfc_3_7_3_fail_on_errors_counts_errors_then_stops() -> None:
    """§3.7.3: "failOnErrors: An integer specifying the number of errors that the service
    provider will accept before the operation is terminated"; what ran stays done."""
    engine = make_engine()
    create_user(engine, "taken")
    ops = [
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "a",
            "data": {"schemas": [USER], "userName": "taken"},
        },
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "b",
            "data": {"schemas": [USER], "userName": "new1"},
        },
        {"method": "DELETE", "path": "/Users/missing"},
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "c",
            "data": {"schemas": [USER], "userName": "new2"},
        },
    ]
    results = bulk(engine, *ops, failOnErrors=2)
    assert [r["status"] for r in results] == ["409", "201", "404"]
    names = {u["userName"] for u in call(engine, "GET", "/Users").json["Resources"]}
    assert names == {"taken", "new1"}
    # Without failOnErrors every operation runs.
    results = bulk(engine, *ops)
    assert [r["status"] for r in results] == ["409", "409", "404", "201"]


def test_rfc_3_7_4_limits_are_413_with_the_rfc_error() -> None:
    """§3.7.4: "If either limit is exceeded, the service provider MUST return HTTP response
    code 413 (Payload Too Large)", with a SCIM error naming the limit."""
    engine = make_engine(bulk_max_operations=2, bulk_max_payload_bytes=1000)
    op = {
        "method": "POST",
        "path": "/Users",
        "bulkId": "q",
        "data": {"schemas": [USER], "userName": "a"},
    }
    three = {
        "schemas": [BULK_REQUEST],
        "Operations": [op, {**op, "bulkId": "r"}, {**op, "bulkId": "s"}],
    }
    result = call(engine, "POST", "/Bulk", three)
    assert result.status == 413
    assert result.json["schemas"] == [ERROR]
    assert result.json["status"] == "413"
    assert "maxOperations (2)" in result.json["detail"]
    big = {
        "schemas": [BULK_REQUEST],
        "Operations": [{**op, "data": {"schemas": [USER], "userName": "a" * 1200}}],
    }
    for body in (json.dumps(big).encode(), big):  # bytes, and an already-parsed dict
        response = engine.handle({"method": "POST", "path": "/Bulk", "body": body})  # type: ignore[typeddict-item]
        assert response["status"] == 413
        error = json.loads(response["body"])
        assert error["schemas"] == [ERROR]
        assert error["status"] == "413"
        assert "maxPayloadSize" in error["detail"]
    assert call(engine, "GET", "/Users").json["totalResults"] == 0
    # The limits are advertised where clients read them (RFC 7643 §5).
    config = call(engine, "GET", "/ServiceProviderConfig").json
    assert config["bulk"] == {"supported": True, "maxOperations": 2, "maxPayloadSize": 1000}
