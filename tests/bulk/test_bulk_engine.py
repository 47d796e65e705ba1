"""Bulk and PATCH through ``Engine.handle`` on the MemoryBackend (the plain-dict contract)."""

from __future__ import annotations

import json
from typing import Any

from scim2_core import Engine
from scim2_core.backends import MemoryBackend

BASE = "https://example.com/v2"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def call(engine: Engine, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request: dict[str, Any] = {"method": method, "path": path, "base_url": BASE}
    if body is not None:
        request["body"] = json.dumps(body).encode()
    response = engine.handle(request)  # type: ignore[arg-type]
    return response["status"], json.loads(response["body"]) if response["body"] else None


def test_rfc_forward_reference_example() -> None:
    # RFC 7644 §3.7.2: the group refers to a user created later in the same request.
    engine = Engine(MemoryBackend())
    status, result = call(
        engine,
        "POST",
        "/Bulk",
        {
            "schemas": [BULK],
            "Operations": [
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
            ],
        },
    )
    assert status == 200
    group_op, user_op = result["Operations"]
    assert (group_op["status"], user_op["status"]) == ("201", "201")
    user_id = user_op["location"].rsplit("/", 1)[1]
    status, stored = call(engine, "GET", group_op["location"].removeprefix(BASE))
    assert [m["value"] for m in stored["members"]] == [user_id]


def test_circular_reference_and_then_patch_with_version() -> None:
    engine = Engine(MemoryBackend())
    ops = [
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": name,
            "data": {
                "schemas": [GROUP],
                "displayName": name,
                "members": [{"value": f"bulkId:{other}"}],
            },
        }
        for name, other in (("a", "b"), ("b", "a"))
    ]
    ops.append(
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "u",
            "data": {"schemas": [USER], "userName": "bob"},
        }
    )
    ops.append(
        {
            "method": "PATCH",
            "path": "/Users/bulkId:u",
            "version": 'W/"1"',
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
            },
        }
    )
    ops.append(
        {
            "method": "PATCH",
            "path": "/Users/bulkId:u",
            "version": 'W/"1"',  # stale now: 412
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "title", "value": "x"}],
            },
        }
    )
    status, result = call(engine, "POST", "/Bulk", {"schemas": [BULK], "Operations": ops})
    assert status == 200
    assert [op["status"] for op in result["Operations"]] == ["409", "409", "201", "200", "412"]
    assert result["Operations"][3]["version"] == 'W/"2"'
    _, stored = call(engine, "GET", result["Operations"][2]["location"].removeprefix(BASE))
    assert stored["active"] is False
    assert "title" not in stored


def test_too_many_operations_is_413() -> None:
    from scim2_core import Options

    engine = Engine(MemoryBackend(), options=Options(bulk_max_operations=1))
    op = {"method": "DELETE", "path": "/Users/x"}
    status, error = call(engine, "POST", "/Bulk", {"schemas": [BULK], "Operations": [op, op]})
    assert status == 413
    assert error["status"] == "413"
    assert "maxOperations (1)" in error["detail"]
