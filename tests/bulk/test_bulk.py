"""RFC 7644 §3.7 Bulk over a small dict-based fake of the engine's dispatch."""

from __future__ import annotations

import json
from typing import Any

import pytest
from scim2_models import BulkResponse, Context, Group, User

from scim2_core import InvalidSyntaxError, InvalidValueError, PayloadTooLargeError
from scim2_core._types import Request, Response
from scim2_core.engine._bulk import BULK_REQUEST_URN, BULK_RESPONSE_URN, run_bulk

BASE = "https://example.com/v2"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"


class FakeService:
    """A tiny SCIM service: POST/PUT/PATCH/DELETE on /Users and /Groups, kept in a dict.

    Group members must name existing resources (so an unresolved ``bulkId:`` fails),
    ``If-Match`` is checked against a counter version, and every request is logged.
    """

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[Request] = []
        self.counter = 0

    def _reply(self, status: int, body: dict[str, Any] | None, **headers: str) -> Response:
        return {
            "status": status,
            "headers": {"Content-Type": "application/scim+json", **headers},
            "body": json.dumps(body).encode() if body is not None else b"",
        }

    def _error(self, status: int, detail: str, scim_type: str | None = None) -> Response:
        body: dict[str, Any] = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": str(status),
            "detail": detail,
        }
        if scim_type:
            body["scimType"] = scim_type
        return self._reply(status, body)

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        parts = [p for p in request["path"].split("/") if p]
        method = request["method"]
        body = request.get("body")
        if not parts or parts[0] not in ("Users", "Groups"):
            return self._error(404, "no such endpoint")
        endpoint = parts[0]
        if method == "POST":
            assert isinstance(body, dict)
            if endpoint == "Users" and any(
                r.get("userName") == body.get("userName")
                for (e, _), r in self.store.items()
                if e == "Users"
            ):
                return self._error(409, "userName taken", "uniqueness")
            for member in body.get("members", []):
                if ("Users", member["value"]) not in self.store and (
                    "Groups",
                    member["value"],
                ) not in self.store:
                    return self._error(400, f"no member {member['value']}", "invalidValue")
            self.counter += 1
            rid = f"{endpoint[0].lower()}{self.counter}"
            location = f"{request.get('base_url', '')}/{endpoint}/{rid}"
            resource = {
                **body,
                "id": rid,
                "meta": {"version": 'W/"1"', "location": location},
            }
            self.store[(endpoint, rid)] = resource
            return self._reply(201, resource, Location=location, ETag='W/"1"')
        if len(parts) != 2 or (endpoint, parts[1]) not in self.store:
            return self._error(404, "Resource not found.")
        key = (endpoint, parts[1])
        resource = self.store[key]
        if_match = (request.get("headers") or {}).get("If-Match")
        if if_match is not None and if_match != resource["meta"]["version"]:
            return self._error(412, "The resource has changed on the server.")
        if method == "DELETE":
            del self.store[key]
            return self._reply(204, None)
        version = f'W/"{int(resource["meta"]["version"][3:-1]) + 1}"'
        assert isinstance(body, dict)
        if method == "PUT":
            new = {**body, "id": parts[1], "meta": {**resource["meta"], "version": version}}
        else:
            new = {**resource, "meta": {**resource["meta"], "version": version}}
            for op in body["Operations"]:
                if op.get("path") == "members":
                    new["members"] = [*new.get("members", []), *op["value"]]
        self.store[key] = new
        return self._reply(200, new, ETag=version)


def bulk(
    fake: FakeService,
    *operations: dict[str, Any],
    fail_on_errors: int | None = None,
    max_operations: int = 1000,
    max_payload_bytes: int = 1_048_576,
    payload_size: int = 100,
) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [BULK_REQUEST_URN], "Operations": list(operations)}
    if fail_on_errors is not None:
        body["failOnErrors"] = fail_on_errors
    status, result = run_bulk(
        body,
        fake,
        max_operations=max_operations,
        max_payload_bytes=max_payload_bytes,
        payload_size=payload_size,
        base_url=BASE,
    )
    assert status == 200
    assert result["schemas"] == [BULK_RESPONSE_URN]
    return result


def post_user(bulk_id: str, user_name: str) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/Users",
        "bulkId": bulk_id,
        "data": {"schemas": [USER_URN], "userName": user_name},
    }


def post_group(bulk_id: str, *member_refs: str) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/Groups",
        "bulkId": bulk_id,
        "data": {
            "schemas": [GROUP_URN],
            "displayName": bulk_id,
            "members": [{"type": "User", "value": ref} for ref in member_refs],
        },
    }


def statuses(result: dict[str, Any]) -> list[str]:
    return [op["status"] for op in result["Operations"]]


def test_rfc_example_operations_in_order() -> None:
    fake = FakeService()
    fake.store[("Users", "b7c14771")] = {"id": "b7c14771", "meta": {"version": 'W/"3"'}}
    fake.store[("Users", "5d8d29d3")] = {"id": "5d8d29d3", "meta": {"version": 'W/"2"'}}
    result = bulk(
        fake,
        post_user("qwerty", "Alice"),
        {
            "method": "PUT",
            "path": "/Users/b7c14771",
            "version": 'W/"3"',
            "data": {"schemas": [USER_URN], "userName": "Bob"},
        },
        {"method": "DELETE", "path": "/Users/5d8d29d3", "version": 'W/"2"'},
    )
    assert result["Operations"] == [
        {
            "method": "POST",
            "bulkId": "qwerty",
            "location": f"{BASE}/Users/u1",
            "version": 'W/"1"',
            "status": "201",
        },
        {
            "method": "PUT",
            "location": f"{BASE}/Users/b7c14771",
            "version": 'W/"4"',
            "status": "200",
        },
        {"method": "DELETE", "location": f"{BASE}/Users/5d8d29d3", "status": "204"},
    ]
    # "version" travelled as If-Match.
    assert fake.requests[1]["headers"]["If-Match"] == 'W/"3"'
    assert fake.requests[2]["headers"]["If-Match"] == 'W/"2"'


def test_response_validates_with_scim2_models() -> None:
    fake = FakeService()
    result = bulk(
        fake,
        post_user("a", "alice"),
        post_user("b", "alice"),  # 409 uniqueness
        {"method": "DELETE", "path": "/Users/missing"},
    )
    parsed = BulkResponse[User | Group].model_validate(result, scim_ctx=Context.BULK_RESPONSE)
    assert parsed.operations is not None
    assert [op.status for op in parsed.operations] == [201, 409, 404]
    assert parsed.operations[1].response is not None


def test_bulk_id_reference_in_data_is_resolved() -> None:
    fake = FakeService()
    result = bulk(fake, post_user("u1", "alice"), post_group("g1", "bulkId:u1"))
    assert statuses(result) == ["201", "201"]
    assert fake.store[("Groups", "g2")]["members"] == [{"type": "User", "value": "u1"}]


def test_forward_reference_runs_after_what_it_references() -> None:
    fake = FakeService()
    result = bulk(
        fake, post_group("g1", "bulkId:u1", "bulkId:u2"), post_user("u1", "a"), post_user("u2", "b")
    )
    # Results stay in request order; the group was created last, with real ids.
    assert [op["bulkId"] for op in result["Operations"]] == ["g1", "u1", "u2"]
    assert statuses(result) == ["201", "201", "201"]
    assert [r["path"] for r in fake.requests] == ["/Users", "/Users", "/Groups"]
    assert fake.store[("Groups", "g3")]["members"] == [
        {"type": "User", "value": "u1"},
        {"type": "User", "value": "u2"},
    ]


def test_bulk_id_reference_in_path_is_resolved() -> None:
    fake = FakeService()
    result = bulk(
        fake,
        post_group(
            "g",
        ),
        post_user("u", "alice"),
        {
            "method": "PATCH",
            "path": "/Groups/bulkId:g",
            "data": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": "bulkId:u"}]}],
            },
        },
    )
    assert statuses(result) == ["201", "201", "200"]
    assert result["Operations"][2]["location"] == f"{BASE}/Groups/g1"
    assert fake.store[("Groups", "g1")]["members"] == [{"value": "u2"}]


def test_circular_references_are_409_per_operation() -> None:
    fake = FakeService()
    result = bulk(
        fake,
        post_group("a", "bulkId:b"),
        post_group("b", "bulkId:a"),
        post_user("c", "carol"),
    )
    ops = result["Operations"]
    assert statuses(result) == ["409", "409", "201"]
    assert "Circular bulkId reference" in ops[0]["response"]["detail"]
    assert "bulkId:b" in ops[0]["response"]["detail"]
    assert ("Groups", "g1") not in fake.store


def test_self_reference_is_circular() -> None:
    result = bulk(FakeService(), post_group("a", "bulkId:a"))
    assert statuses(result) == ["409"]


def test_reference_to_failed_post_fails() -> None:
    fake = FakeService()
    fake.store[("Users", "x")] = {"id": "x", "userName": "taken", "meta": {"version": 'W/"1"'}}
    result = bulk(fake, post_user("u", "taken"), post_group("g", "bulkId:u"))
    assert statuses(result) == ["409", "409"]
    assert "bulkId:u" in result["Operations"][1]["response"]["detail"]


def test_reference_to_unknown_bulk_id_is_400() -> None:
    result = bulk(FakeService(), post_group("g", "bulkId:nobody"))
    assert statuses(result) == ["400"]
    assert result["Operations"][0]["response"]["scimType"] == "invalidValue"


@pytest.mark.parametrize(
    ("operation", "status", "scim_type"),
    [
        pytest.param(
            {"method": "POST", "path": "/Users", "data": {"userName": "x"}},
            "400",
            "invalidValue",
            id="post-without-bulkId",
        ),
        pytest.param(
            {"method": "GET", "path": "/Users/x"}, "400", "invalidSyntax", id="unsupported-method"
        ),
        pytest.param({"path": "/Users/x"}, "400", "invalidSyntax", id="no-method"),
        pytest.param({"method": "DELETE"}, "400", "invalidSyntax", id="no-path"),
        pytest.param(
            {"method": "PUT", "path": "/Users/x"}, "400", "invalidSyntax", id="put-without-data"
        ),
        pytest.param("not an object", "400", "invalidSyntax", id="operation-not-object"),
        pytest.param(
            {"method": "DELETE", "path": "/Users/missing"},
            "404",
            None,
            id="engine-error-passed-through",
        ),
    ],
)
def test_invalid_operation_fails_alone(operation: Any, status: str, scim_type: str | None) -> None:
    fake = FakeService()
    result = bulk(fake, operation, post_user("ok", "fine"))
    first, second = result["Operations"]
    assert first["status"] == status
    assert first["response"]["status"] == status
    assert first["response"].get("scimType") == scim_type
    assert second["status"] == "201"


def test_duplicate_bulk_id_fails_second_post() -> None:
    result = bulk(FakeService(), post_user("u", "a"), post_user("u", "b"))
    assert statuses(result) == ["201", "400"]


def test_fail_on_errors_stops_processing() -> None:
    fake = FakeService()
    result = bulk(
        fake,
        post_user("a", "dup"),
        post_user("b", "dup"),
        post_user("c", "dup"),
        post_user("d", "other"),
        fail_on_errors=2,
    )
    # RFC 7644 §3.7.3: after failOnErrors errors the remaining operations are not run.
    assert statuses(result) == ["201", "409", "409"]
    assert len(fake.requests) == 3


def test_fail_on_errors_one_stops_at_first_error() -> None:
    fake = FakeService()
    result = bulk(
        fake, {"method": "DELETE", "path": "/Users/none"}, post_user("a", "x"), fail_on_errors=1
    )
    assert statuses(result) == ["404"]


def test_version_mismatch_is_412_for_that_operation() -> None:
    fake = FakeService()
    fake.store[("Users", "x")] = {"id": "x", "meta": {"version": 'W/"5"'}}
    result = bulk(fake, {"method": "DELETE", "path": "/Users/x", "version": 'W/"4"'})
    assert statuses(result) == ["412"]
    assert result["Operations"][0]["location"] == f"{BASE}/Users/x"


def test_too_many_operations_is_413() -> None:
    with pytest.raises(PayloadTooLargeError, match="maxOperations \\(2\\)"):
        bulk(FakeService(), *[post_user(str(i), str(i)) for i in range(3)], max_operations=2)


def test_payload_too_large_is_413_with_rfc_detail() -> None:
    with pytest.raises(PayloadTooLargeError) as info:
        bulk(FakeService(), post_user("a", "a"), max_payload_bytes=1048576, payload_size=1048577)
    assert info.value.detail == (
        "The size of the bulk operation exceeds the maxPayloadSize (1048576)."
    )
    assert info.value.status == 413


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param({"Operations": []}, InvalidSyntaxError, id="no-schemas"),
        pytest.param({"schemas": [BULK_REQUEST_URN]}, InvalidSyntaxError, id="no-operations"),
        pytest.param(
            {"schemas": [BULK_REQUEST_URN], "Operations": [], "failOnErrors": 0},
            InvalidValueError,
            id="fail-on-errors-zero",
        ),
        pytest.param(
            {"schemas": [BULK_REQUEST_URN], "Operations": [], "failOnErrors": "1"},
            InvalidValueError,
            id="fail-on-errors-string",
        ),
    ],
)
def test_bad_bulk_message(body: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        run_bulk(
            body,
            FakeService(),
            max_operations=10,
            max_payload_bytes=1000,
            payload_size=10,
            base_url=BASE,
        )


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidSyntaxError):
        run_bulk(
            [],  # type: ignore[arg-type]
            FakeService(),
            max_operations=10,
            max_payload_bytes=1000,
            payload_size=10,
            base_url=BASE,
        )


def test_scim_error_raised_by_dispatch_becomes_that_operations_result() -> None:
    def dispatch(request: Request) -> Response:
        raise InvalidValueError("nope")

    status, result = run_bulk(
        {
            "schemas": [BULK_REQUEST_URN],
            "Operations": [{"method": "DELETE", "path": "/Users/x"}],
        },
        dispatch,
        max_operations=10,
        max_payload_bytes=1000,
        payload_size=10,
        base_url=BASE,
    )
    assert status == 200
    assert result["Operations"] == [
        {
            "method": "DELETE",
            "location": f"{BASE}/Users/x",
            "status": "400",
            "response": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "400",
                "scimType": "invalidValue",
                "detail": "nope",
            },
        }
    ]


def test_fail_on_errors_counts_circular_failures() -> None:
    result = bulk(
        FakeService(),
        post_group("a", "bulkId:b"),
        post_group("b", "bulkId:a"),
        fail_on_errors=1,
    )
    assert statuses(result) == ["409"]


def test_version_is_not_sent_for_post() -> None:
    fake = FakeService()
    bulk(fake, {**post_user("a", "a"), "version": 'W/"1"'})
    assert "If-Match" not in fake.requests[0]["headers"]
