"""``scim_router(engine)``: FastAPI's ``include_router`` serves SCIM exactly as the ASGI mount
does, and the app's OpenAPI schema documents every SCIM endpoint with its models."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pytest
from adapter_clients import (
    ENGINE_HEADERS,
    HOST,
    PREFIX,
    Normaliser,
    Reply,
    Send,
    _testclient,
    raw_asgi,
)
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException
from test_adapter_parity import make_engine, play, transcript

from scim2_core import Engine, ResourceType, Schema
from scim2_core.backends import MemoryBackend
from scim2_core_starlette.fastapi import scim_router

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TOKEN = {"Authorization": "Bearer s3cret-token"}
JSON = {"Content-Type": "application/scim+json", **TOKEN}


def router_app(engine: Engine, **kw: Any) -> FastAPI:
    app = FastAPI()
    app.include_router(scim_router(engine, **kw), prefix=PREFIX)
    return app


def fastapi_router(engine: Engine) -> Send:
    return _testclient(router_app(engine))


def test_the_parity_conversation_matches_the_asgi_mount() -> None:
    normalise = Normaliser()
    mine = [(label, *normalise(reply)) for label, reply in play(fastapi_router(make_engine()))]
    assert mine == transcript("asgi")


#: More of RFC 7644 than the parity conversation: PUT, .search, HEAD, If-Match, Bulk,
#: discovery, root search, wrong methods, odd paths. ``{id}`` is the created user.
ROUND_TRIP: list[tuple[str, str, Mapping[str, str], Any]] = [
    (
        "POST",
        "/Users",
        JSON,
        {"schemas": [USER_URN], "userName": "bjensen", ENTERPRISE_URN: {"employeeNumber": "7"}},
    ),
    (
        "POST",
        "/Groups",
        JSON,
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "admins"},
    ),
    ("GET", "/Users/{id}", TOKEN, None),
    ("HEAD", "/Users/{id}", TOKEN, None),
    ("GET", "/Users/{id}", {**TOKEN, "If-None-Match": 'W/"1"'}, None),
    (
        "PATCH",
        "/Users/{id}",
        {**JSON, "If-Match": 'W/"1"'},
        {"schemas": [PATCH_URN], "Operations": [{"op": "Replace", "value": {"active": "False"}}]},
    ),
    (
        "PATCH",
        "/Users/{id}",
        {**JSON, "If-Match": 'W/"1"'},
        {"schemas": [PATCH_URN], "Operations": [{"op": "add", "path": "title", "value": "x"}]},
    ),
    ("PUT", "/Users/{id}", JSON, {"schemas": [USER_URN], "userName": "bjensen", "title": "Dr"}),
    ("GET", "/Users?filter=title%20eq%20%22Dr%22&attributes=userName,title", TOKEN, None),
    (
        "POST",
        "/Users/.search",
        JSON,
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'userName sw "b"',
            "count": 1,
        },
    ),
    (
        "POST",
        "/.search",
        JSON,
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "sortBy": "meta.resourceType",
        },
    ),
    ("GET", "/?count=1&startIndex=2", TOKEN, None),
    (
        "POST",
        "/Bulk",
        JSON,
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": "b1",
                    "data": {"schemas": [USER_URN], "userName": "bulky"},
                }
            ],
        },
    ),
    ("GET", "/Schemas/" + USER_URN, {}, None),
    ("GET", "/ResourceTypes/User", {}, None),
    ("GET", "/ResourceTypes", {}, None),
    ("GET", "/Me", TOKEN, None),
    ("DELETE", "/Users", TOKEN, None),
    ("PUT", "/ServiceProviderConfig", TOKEN, None),
    ("POST", "/Users", JSON, b'{"userName": '),
    ("POST", "/Users", {**TOKEN, "Content-Type": "text/plain"}, b"{}"),
    ("GET", "/Users/{id}/extra", TOKEN, None),
    ("GET", "/Users/", TOKEN, None),
    ("GET", "/Users/a%2Fb", TOKEN, None),
    ("DELETE", "/Users/{id}", TOKEN, None),
    ("DELETE", "/Users/{id}", TOKEN, None),
]


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _converse(send: Send) -> list[tuple[int, dict[str, str], str]]:
    normalise = Normaliser()
    out = []
    rid = ""
    for method, target, headers, body in ROUND_TRIP:
        raw = (
            body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        )
        reply = send(method, PREFIX + target.replace("{id}", rid), headers, raw)
        if method == "POST" and target == "/Users" and reply.status == 201 and not rid:
            rid = reply.json()["id"]
        if method == "HEAD":  # no content to learn ids from
            headers = {
                k: normalise.text(v) for k, v in reply.headers.items() if k in ENGINE_HEADERS
            }
            status, text = reply.status, reply.body.decode()
        else:
            status, headers, text = normalise(reply)
        # Ids seen only inside a value (a Bulk operation's location) are not learnt.
        out.append(
            (
                status,
                {k: _UUID.sub("<uuid>", v) for k, v in headers.items()},
                _UUID.sub("<uuid>", text),
            )
        )
    return out


def test_a_create_get_patch_list_round_trip_behaves_as_the_asgi_mount() -> None:
    mounted = _converse(raw_asgi(make_engine()))
    routed = _converse(fastapi_router(make_engine()))
    assert [r[0] for r in routed] == [
        201,
        201,
        200,
        200,
        304,
        200,
        412,
        200,
        200,
        200,
        200,
        200,
        200,
        200,
        200,
        200,
        501,
        405,
        405,
        400,
        415,
        404,
        200,
        404,
        204,
        404,
    ]
    for step, (got, want) in enumerate(zip(routed, mounted, strict=True)):
        assert got == want, ROUND_TRIP[step]
    assert routed[3][2] == ""  # HEAD: no content


def test_bodies_are_neither_read_nor_validated_by_fastapi() -> None:
    send = fastapi_router(make_engine())
    # A body FastAPI would refuse with 422 reaches the engine, which answers SCIM errors.
    reply = send("POST", f"{PREFIX}/Users", JSON, b'{"schemas": 5}')
    assert reply.status == 400
    assert reply.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert reply.headers["content-type"] == "application/scim+json"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_openapi_lists_every_endpoint_with_scim2_models() -> None:
    doc = router_app(make_engine()).openapi()
    paths = doc["paths"]
    for path, methods in {
        "/Users": {"get", "post"},
        "/Users/{id}": {"get", "put", "patch", "delete"},
        "/Users/.search": {"post"},
        "/Groups": {"get", "post"},
        "/Groups/{id}": {"get", "put", "patch", "delete"},
        "/ServiceProviderConfig": {"get"},
        "/Schemas": {"get"},
        "/ResourceTypes": {"get"},
        "/Bulk": {"post"},
        "/.search": {"post"},
    }.items():
        assert set(paths[PREFIX + path]) == methods, path
    assert not any("{path}" in p for p in paths)  # the catch-all is undocumented
    # Every reference resolves: the request bodies' schemas are inlined, the responses' are
    # components FastAPI generated from the models.
    for ref in _refs(doc):
        _resolve(doc, ref)
    create = paths[f"{PREFIX}/Users"]["post"]
    body = create["requestBody"]["content"]["application/scim+json"]["schema"]
    assert {"userName", "emails", ENTERPRISE_URN} <= set(body["properties"])
    created = create["responses"]["201"]["content"]["application/scim+json"]["schema"]
    user = _resolve(doc, created["$ref"])
    assert {"userName", "groups", "meta", ENTERPRISE_URN} <= set(user["properties"])
    assert "422" not in create["responses"]  # FastAPI validates nothing here
    assert set(create["responses"]) == {"201", "400", "401", "409"}
    error = _resolve(
        doc, create["responses"]["409"]["content"]["application/scim+json"]["schema"]["$ref"]
    )
    assert {"status", "scimType", "detail"} <= set(error["properties"])
    listed = paths[f"{PREFIX}/Users"]["get"]["responses"]["200"]["content"][
        "application/scim+json"
    ]["schema"]
    assert "Resources" in _resolve(doc, listed["$ref"])["properties"]
    patch = paths[f"{PREFIX}/Users/{{id}}"]["patch"]
    assert patch["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    assert (
        "Operations"
        in patch["requestBody"]["content"]["application/scim+json"]["schema"]["properties"]
    )
    assert {"User", "UserListResponse", "Group", "Error", "ServiceProviderConfig"} <= set(
        doc["components"]["schemas"]
    )
    ids = [op["operationId"] for methods in paths.values() for op in methods.values()]
    assert len(ids) == len(set(ids))


def test_custom_resource_types_and_given_models_are_documented() -> None:
    from scim2_models import Group

    device = ResourceType(
        name="Device",
        endpoint="/Devices",
        schema=Schema.from_dict(
            {
                "id": "urn:example:scim:schemas:Device",
                "name": "Device",
                "attributes": [
                    {
                        "name": "serialNumber",
                        "type": "string",
                        "required": True,
                        "uniqueness": "server",
                    },
                    {"name": "rack", "type": "integer"},
                ],
            }
        ),
    )
    engine = Engine(MemoryBackend(), resource_types=[device, Group])

    class MyGroup(Group):
        """The application's own documentation of a Group."""

    app = router_app(engine, models={"Group": MyGroup})
    doc = app.openapi()
    devices = doc["paths"][f"{PREFIX}/Devices"]["post"]
    body = devices["requestBody"]["content"]["application/scim+json"]["schema"]
    assert {"serialNumber", "rack"} <= set(body["properties"])
    created = devices["responses"]["201"]["content"]["application/scim+json"]["schema"]["$ref"]
    assert {"serialNumber", "rack"} <= set(_resolve(doc, created)["properties"])
    group = doc["paths"][f"{PREFIX}/Groups/{{id}}"]["get"]["responses"]["200"]["content"][
        "application/scim+json"
    ]["schema"]["$ref"]
    assert _resolve(doc, group)["description"] == "The application's own documentation of a Group."
    assert f"{PREFIX}/Users" not in doc["paths"]
    send = _testclient(app)
    reply = send(
        "POST",
        f"{PREFIX}/Devices",
        {"Content-Type": "application/scim+json"},
        json.dumps(
            {"schemas": ["urn:example:scim:schemas:Device"], "serialNumber": "X1", "rack": 4}
        ).encode(),
    )
    assert reply.status == 201
    assert reply.json()["meta"]["location"] == f"http://{HOST}{PREFIX}/Devices/{reply.json()['id']}"


def test_router_dependencies_guard_every_scim_request() -> None:
    def api_key(x_api_key: str = Header(default="")) -> None:
        if x_api_key != "k":
            raise HTTPException(status_code=403, detail="no key")

    app = FastAPI()
    app.include_router(
        scim_router(Engine(MemoryBackend())), prefix=PREFIX, dependencies=[Depends(api_key)]
    )
    send = _testclient(app)
    assert send("GET", f"{PREFIX}/Users", {}, b"").status == 403
    assert send("GET", f"{PREFIX}/Nothing", {}, b"").status == 403  # the catch-all too
    assert send("GET", f"{PREFIX}/Users", {"X-API-Key": "k"}, b"").status == 200


@pytest.mark.parametrize("root_path", ["", "/api"])
def test_nested_routers_and_root_path_point_locations_through_the_prefixes(root_path: str) -> None:
    outer = APIRouter(prefix="/v1")
    outer.include_router(scim_router(Engine(MemoryBackend())), prefix="/scim")
    app = FastAPI()
    app.include_router(outer)

    async def behind_a_proxy(scope: Any, receive: Any, send: Any) -> None:
        # What a server started with --root-path sends: root_path, and path including it.
        if scope["type"] == "http":
            scope = {**scope, "root_path": root_path, "path": root_path + scope["path"]}
            scope.pop("raw_path", None)
        await app(scope, receive, send)

    send = _testclient(behind_a_proxy)
    body = json.dumps({"schemas": [USER_URN], "userName": "n"}).encode()
    reply: Reply = send("POST", "/v1/scim/Users", {"Content-Type": "application/scim+json"}, body)
    assert reply.status == 201, reply
    location = f"http://{HOST}{root_path}/v1/scim/Users/{reply.json()['id']}"
    assert reply.headers["location"] == reply.json()["meta"]["location"] == location
    again = send("GET", f"/v1/scim/Users/{reply.json()['id']}", {}, b"")
    assert again.json() == reply.json()


def test_without_the_catch_all_other_paths_are_fastapis() -> None:
    app = FastAPI()
    app.include_router(scim_router(Engine(MemoryBackend()), catch_all=False), prefix=PREFIX)

    @app.get(PREFIX + "/health")
    def health() -> dict[str, str]:
        return {"ok": "yes"}

    send = _testclient(app)
    assert send("GET", f"{PREFIX}/health", {}, b"").json() == {"ok": "yes"}
    assert send("GET", f"{PREFIX}/Users", {}, b"").status == 200
