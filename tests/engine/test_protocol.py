"""Routing, discovery, errors and authentication (RFC 7644 §3.1, §3.2, §3.12, §4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from scim2_models import EnterpriseUser, Group, User

from scim2_core import ConfigurationError, Engine, Options, Principal, bearer_tokens
from scim2_core.schema import Attribute, ResourceType, Schema
from tests.helpers import (
    GROUP,
    PATCH_OP,
    USER,
    assert_error,
    call,
    create_user,
    make_backend,
    make_engine,
    user_body,
)


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("POST", "/", 405, "GET, HEAD"),
        ("GET", "/Nope", 404, None),
        ("GET", "/Users/a/b", 404, None),
        ("DELETE", "/Users", 405, "GET, HEAD, POST"),
        ("POST", "/Users/abc", 405, "GET, HEAD, PUT, PATCH, DELETE"),
        ("GET", "/Users/.search", 405, "POST"),
        ("GET", "/.search", 405, "POST"),
        ("POST", "/ServiceProviderConfig", 405, "GET, HEAD"),
        ("GET", "/Bulk", 405, "POST"),
    ],
)
def test_routing_errors(method: str, path: str, status: int, allow: str | None) -> None:
    result = call(make_engine(), method, path)
    assert_error(result, status)
    assert result.headers.get("Allow") == allow


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("delete", "/Users/{id}"),
        ("get", "/Users/{id}"),
        ("Patch", "/Users/{id}"),
        ("FOO", "/Users"),
    ],
)
def test_methods_are_case_sensitive(method: str, path: str) -> None:
    # RFC 9110 §9.1: "The method token is case-sensitive"; an unrecognized method is 501
    # and is never executed as the upper-case one.
    engine = make_engine()
    rid = create_user(engine, "bjensen")["id"]
    result = call(engine, method, path.format(id=rid), {"schemas": [PATCH_OP], "Operations": []})
    assert_error(result, 501)
    assert method in result.json["detail"]
    assert call(engine, "GET", f"/Users/{rid}").json["userName"] == "bjensen"


@pytest.mark.parametrize("path", ["/users", "/USERS", "/Users/", "/groups"])
def test_resource_endpoints_match_case_insensitively(path: str) -> None:
    assert call(make_engine(), "GET", path).status == 200


def test_service_provider_config_reflects_options() -> None:
    engine = make_engine(max_results=77, bulk_max_operations=9)
    spc = call(engine, "GET", "/ServiceProviderConfig").json
    assert spc["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert spc["patch"] == {"supported": True}
    assert spc["filter"] == {"supported": True, "maxResults": 77}
    assert spc["bulk"]["supported"] is True
    assert spc["bulk"]["maxOperations"] == 9
    assert spc["etag"]["supported"] and spc["sort"]["supported"]
    assert spc["changePassword"]["supported"]
    assert spc["pagination"]["cursor"] and spc["pagination"]["index"]
    assert spc["authenticationSchemes"][0]["type"] == "oauthbearertoken"


def test_resource_types_and_schemas() -> None:
    engine = make_engine()
    rts = call(engine, "GET", "/ResourceTypes").json
    assert {r["name"] for r in rts["Resources"]} == {"User", "Group"}
    user_rt = call(engine, "GET", "/ResourceTypes/User").json
    assert user_rt["endpoint"] == "/Users"
    assert user_rt["schemaExtensions"] == [
        {"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "required": False}
    ]
    schemas = call(engine, "GET", "/Schemas").json
    ids = {s["id"] for s in schemas["Resources"]}
    assert {USER, GROUP, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"} <= ids
    user_schema = call(engine, "GET", f"/Schemas/{USER}").json
    user_name = next(a for a in user_schema["attributes"] if a["name"] == "userName")
    assert user_name["uniqueness"] == "server" and user_name["required"] is True
    assert_error(call(engine, "GET", "/Schemas/urn:nope"), 404)
    assert_error(call(engine, "GET", "/ResourceTypes/Nope"), 404)


def test_custom_resource_type_is_served_and_discovered() -> None:
    device_schema = Schema(
        id="urn:example:schemas:Device",
        name="Device",
        attributes=(
            Attribute(name="serial", required=True, uniqueness="server", case_exact=True),
            Attribute(name="owner"),
        ),
    )
    device = ResourceType(name="Device", endpoint="/Devices", schema=device_schema)
    engine = Engine(make_backend(), resource_types=[User[EnterpriseUser], Group, device])
    rts = call(engine, "GET", "/ResourceTypes").json
    assert "Device" in {r["name"] for r in rts["Resources"]}
    assert call(engine, "GET", "/Schemas/urn:example:schemas:Device").status == 200
    body = {"schemas": ["urn:example:schemas:Device"], "serial": "SN1", "owner": "x"}
    created = call(engine, "POST", "/Devices", body)
    assert created.status == 201, created
    assert created.json["meta"]["resourceType"] == "Device"
    assert_error(call(engine, "POST", "/Devices", body), 409, "uniqueness")
    found = call(engine, "GET", "/Devices", query={"filter": 'serial eq "SN1"'})
    assert found.json["totalResults"] == 1


def test_misconfiguration_raises_at_construction() -> None:
    with pytest.raises(ConfigurationError):
        Engine(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Options(max_results=0)
    with pytest.raises(ConfigurationError):
        Engine(make_backend(), resource_types=[User, User])


@pytest.mark.parametrize(
    ("body", "content_type", "status", "scim_type"),
    [
        (b"{not json", "application/scim+json", 400, "invalidSyntax"),
        (b"[1, 2]", "application/scim+json", 400, "invalidSyntax"),
        (b"", "application/scim+json", 400, "invalidSyntax"),
        (b"\xff\xfe", "application/scim+json", 400, "invalidSyntax"),
        (b"[" * 100000, "application/scim+json", 400, "invalidSyntax"),
        (
            b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "\\ud800"}',
            "application/scim+json",
            400,
            "invalidSyntax",
        ),
        (b"userName=x", "application/x-www-form-urlencoded", 415, None),
        (b"<x/>", "text/xml", 415, None),
    ],
)
def test_bad_bodies(body: bytes, content_type: str, status: int, scim_type: str | None) -> None:
    engine = make_engine()
    result = call(engine, "POST", "/Users", body, headers={"Content-Type": content_type})
    assert_error(result, status, scim_type)


def test_application_json_and_charset_are_accepted() -> None:
    engine = make_engine()
    for ctype in ("application/json", "application/scim+json; charset=utf-8"):
        result = call(
            engine, "POST", "/Users", user_body(f"u-{len(ctype)}"), headers={"Content-Type": ctype}
        )
        assert result.status == 201


def test_oversized_body_is_413() -> None:
    engine = make_engine(max_body_bytes=200)
    body = user_body("x", displayName="y" * 500)
    assert_error(call(engine, "POST", "/Users", body), 413)


def test_body_may_be_str_or_parsed_dict() -> None:
    engine = make_engine()
    as_str = engine.handle({"method": "POST", "path": "/Users", "body": json.dumps(user_body("s"))})
    assert as_str["status"] == 201
    as_dict = engine.handle({"method": "POST", "path": "/Users", "body": user_body("d")})
    assert as_dict["status"] == 201


@pytest.mark.parametrize(
    "request_",
    [
        {},
        {"method": "GET"},
        {"path": "/Users"},
        {"method": 1, "path": "/Users"},
        {"method": "GET", "path": "/Users", "query": "filter=x"},
        {"method": "GET", "path": "/Users", "headers": None, "query": None, "base_url": 5},
    ],
)
def test_malformed_request_dicts_get_errors_not_exceptions(request_: dict[str, Any]) -> None:
    response = make_engine().handle(request_)  # type: ignore[arg-type]
    assert response["status"] in (200, 400)
    json.loads(response["body"])


def test_authentication_hook() -> None:
    engine = Engine(make_backend(), authenticate=bearer_tokens({"s3cret": None}))
    denied = call(engine, "GET", "/Users")
    assert_error(denied, 401)
    assert denied.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = call(engine, "GET", "/Users", headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 401)
    ok = call(engine, "GET", "/Users", headers={"Authorization": "Bearer s3cret"})
    assert ok.status == 200
    # discovery is open by default, closed on request
    assert call(engine, "GET", "/ServiceProviderConfig").status == 200
    closed = Engine(
        make_backend(),
        authenticate=bearer_tokens({"s3cret": None}),
        options=Options(discovery_requires_auth=True),
    )
    assert_error(call(closed, "GET", "/Schemas"), 401)


def test_tenants_are_isolated() -> None:
    hook = bearer_tokens(
        {"a": Principal(name="a", tenant="acme"), "b": Principal(name="b", tenant="globex")}
    )
    engine = Engine(make_backend(), authenticate=hook)
    as_a = {"Authorization": "Bearer a"}
    as_b = {"Authorization": "Bearer b"}
    created = call(engine, "POST", "/Users", user_body("bjensen"), headers=as_a)
    assert created.status == 201
    # the same userName is free in another tenant, and A's user is invisible to B
    assert call(engine, "POST", "/Users", user_body("bjensen"), headers=as_b).status == 201
    assert_error(call(engine, "GET", f"/Users/{created.json['id']}", headers=as_b), 404)
    assert call(engine, "GET", "/Users", headers=as_b).json["totalResults"] == 1


def test_me_without_a_subject_is_501() -> None:
    assert_error(call(make_engine(), "GET", "/Me"), 501)


def test_me_serves_the_principals_user() -> None:
    engine = make_engine()
    user = create_user(engine, "me")

    class Subject:
        tenant = None
        resource_id = user["id"]

    engine.authenticate = lambda request: Subject()
    got = call(engine, "GET", "/Me")
    assert got.status == 200
    assert got.json["userName"] == "me"


def test_unexpected_errors_become_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine()

    def broken(request: Any) -> Any:
        raise RuntimeError("boom")

    engine.authenticate = broken
    result = call(engine, "GET", "/Users")
    assert_error(result, 500)
    assert "boom" not in result.json["detail"]
    assert "boom" in caplog.text


def test_head_answers_as_get_would() -> None:
    # RFC 9110 §9.3.2: HEAD is GET without the content; the transport drops the body.
    engine = make_engine()
    created = call(
        engine,
        "POST",
        "/Users",
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "h"},
    )
    path = "/Users/" + created.json["id"]
    head, get = call(engine, "HEAD", path), call(engine, "GET", path)
    assert (head.status, head.headers["ETag"]) == (200, get.headers["ETag"])
    assert call(engine, "HEAD", "/Users/nope").status == 404
    assert call(engine, "HEAD", "/Bulk").headers["Allow"] == "POST"
