"""The Python API (``engine.users``, ``engine.directory(...)``) against the HTTP API.

Each behaviour is checked the way a user sees it: what the API returns or raises is what
``Engine.handle`` answers for the same request, on MemoryBackend and on SQLite.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from scim2_core import (
    ChangeEvent,
    ConfigurationError,
    InvalidFilterError,
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    NotFoundError,
    Options,
    PreconditionFailedError,
    ScimError,
    SearchResult,
    UniquenessError,
    bearer_tokens,
)
from tests.api.conftest import EngineFactory
from tests.helpers import BASE, ENTERPRISE, GROUP, USER, assert_error, call


def test_seed_1000_users_and_read_them_back_as_http_shows_them(make: EngineFactory) -> None:
    engine = make()
    api = engine.directory(base_url=BASE)
    created = [
        api.users.create(
            {
                "userName": f"user{n:04d}",
                "name": {"givenName": "Given", "familyName": f"Family{n}"},
                "emails": [{"value": f"user{n}@example.com", "type": "work", "primary": True}],
                "active": n % 2 == 0,
                # Hashing is slow by design: a few passwords are enough to check them.
                **({"password": "not-returned-1"} if n % 100 == 0 else {}),
                ENTERPRISE: {"employeeNumber": str(n)},
            }
        )
        for n in range(1000)
    ]
    assert len({u["id"] for u in created}) == 1000
    for user in created:
        assert "password" not in user
        assert user["meta"]["location"] == f"{BASE}/Users/{user['id']}"
        # What the API returned at creation is what HTTP reads back, and so does the API.
        http = call(engine, "GET", f"/Users/{user['id']}")
        assert http.status == 200
        assert http.json == user
        assert api.users.get(user["id"]) == user
        assert http.headers["ETag"] == user["meta"]["version"]
    # Listing: the same 1000 resources, in the same order, by both routes.
    everything = api.users.search(count=1000, sort_by="userName")
    listed = call(engine, "GET", "/Users", query={"count": "1000", "sortBy": "userName"})
    assert everything.total == listed.json["totalResults"] == 1000
    assert everything.resources == listed.json["Resources"]
    assert [u["userName"] for u in everything.resources] == sorted(u["userName"] for u in created)
    assert sorted(u["id"] for u in api.users.iterate(page_size=128)) == sorted(
        u["id"] for u in created
    )


def test_schemas_may_be_left_out_and_are_derived_from_the_keys(make: EngineFactory) -> None:
    engine = make()
    plain = engine.users.create({"userName": "a"})
    assert plain["schemas"] == [USER]
    extended = engine.users.create({"userName": "b", ENTERPRISE: {"department": "R&D"}})
    assert extended["schemas"] == [USER, ENTERPRISE]
    group = engine.groups.create({"displayName": "g"})
    assert group["schemas"] == [GROUP]
    # Given schemas are checked as HTTP checks them.
    with pytest.raises(InvalidValueError) as caught:
        engine.users.create({"schemas": [GROUP], "userName": "c"})
    http = call(engine, "POST", "/Users", {"schemas": [GROUP], "userName": "c"})
    assert_error(http, caught.value.status, caught.value.scim_type)


def test_groups_members_and_the_derived_user_groups(make: EngineFactory) -> None:
    engine = make()
    api = engine.directory(base_url=BASE)
    alice = api.users.create({"userName": "alice"})
    bob = api.users.create({"userName": "bob"})
    admins = api.groups.create({"displayName": "admins", "members": [{"value": alice["id"]}]})
    assert admins["members"] == [
        {"value": alice["id"], "type": "User", "$ref": f"{BASE}/Users/{alice['id']}"}
    ]
    patched = api.groups.patch(
        admins["id"], [{"op": "add", "path": "members", "value": [{"value": bob["id"]}]}]
    )
    assert {m["value"] for m in patched["members"]} == {alice["id"], bob["id"]}
    assert call(engine, "GET", f"/Groups/{admins['id']}").json == patched
    # User.groups is derived on every read (RFC 7643 §4.1.2), through the API as over HTTP.
    read = api.users.get(bob["id"])
    assert read["groups"] == [
        {
            "value": admins["id"],
            "display": "admins",
            "$ref": f"{BASE}/Groups/{admins['id']}",
            "type": "direct",
        }
    ]
    assert call(engine, "GET", f"/Users/{bob['id']}").json == read
    found = api.users.search(filter=f'groups.value eq "{admins["id"]}"', sort_by="userName")
    assert [u["userName"] for u in found.resources] == ["alice", "bob"]
    # A member that does not exist is refused, as over HTTP.
    with pytest.raises(InvalidValueError):
        api.groups.create({"displayName": "ghosts", "members": [{"value": "nobody"}]})
    # Deleting a User removes it from its groups.
    api.users.delete(alice["id"])
    assert [m["value"] for m in api.groups.get(admins["id"])["members"]] == [bob["id"]]


@pytest.mark.parametrize(
    ("request_api", "method", "path", "body", "headers", "error"),
    [
        ("get", "GET", "/Users/nope", None, {}, NotFoundError),
        ("delete", "DELETE", "/Users/nope", None, {}, NotFoundError),
        (
            "duplicate",
            "POST",
            "/Users",
            {"schemas": [USER], "userName": "TAKEN"},
            {},
            UniquenessError,
        ),
        ("no_name", "POST", "/Users", {"schemas": [USER]}, {}, InvalidValueError),
        ("bad_filter", "GET", "/Users", None, {}, InvalidFilterError),
        ("bad_path", "PATCH", "/Users/{id}", None, {}, InvalidPathError),
        (
            "stale",
            "PUT",
            "/Users/{id}",
            {"schemas": [USER], "userName": "taken"},
            {"If-Match": 'W/"99"'},
            PreconditionFailedError,
        ),
    ],
)
def test_errors_are_the_scim_errors_http_answers(
    make: EngineFactory,
    request_api: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
    error: type[ScimError],
) -> None:
    engine = make()
    taken = engine.users.create({"userName": "taken"})
    users = engine.users
    calls = {
        "get": lambda: users.get("nope"),
        "delete": lambda: users.delete("nope"),
        "duplicate": lambda: users.create({"userName": "TAKEN"}),
        "no_name": lambda: users.create({}),
        "bad_filter": lambda: users.search(filter="userName eq"),
        "bad_path": lambda: users.patch(
            taken["id"], [{"op": "replace", "path": "nope[", "value": 1}]
        ),
        "stale": lambda: users.replace(taken["id"], {"userName": "taken"}, if_match='W/"99"'),
    }
    with pytest.raises(error) as caught:
        calls[request_api]()
    query = {"filter": "userName eq"} if request_api == "bad_filter" else None
    if request_api == "bad_path":
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "nope[", "value": 1}],
        }
    http = call(
        engine, method, path.replace("{id}", taken["id"]), body, query=query, headers=headers
    )
    assert_error(http, caught.value.status, caught.value.scim_type)
    assert http.json["detail"] == caught.value.detail


def test_if_match_guards_replace_patch_and_delete(make: EngineFactory) -> None:
    engine = make()
    users = engine.users
    user = users.create({"userName": "v"})
    first = user["meta"]["version"]
    second = users.patch(
        user["id"], [{"op": "replace", "path": "title", "value": "x"}], if_match=first
    )
    assert second["meta"]["version"] != first
    for attempt in (
        lambda: users.patch(
            user["id"], [{"op": "replace", "path": "title", "value": "y"}], if_match=first
        ),
        lambda: users.replace(user["id"], {"userName": "v"}, if_match=first),
        lambda: users.delete(user["id"], if_match=first),
    ):
        with pytest.raises(PreconditionFailedError):
            attempt()
    assert users.get(user["id"]) == second
    users.delete(user["id"], if_match=second["meta"]["version"])
    with pytest.raises(NotFoundError):
        users.get(user["id"])


def test_a_patch_with_no_change_keeps_the_version(make: EngineFactory) -> None:
    engine = make()
    user = engine.users.create({"userName": "same", "title": "t"})
    again = engine.users.patch(user["id"], [{"op": "replace", "path": "title", "value": "t"}])
    assert again == user


def test_patch_returns_the_resource_even_when_http_answers_204(make: EngineFactory) -> None:
    engine = make(options=Options(patch_returns_no_content=True))
    user = engine.users.create({"userName": "p"})
    patched = engine.users.patch(user["id"], [{"op": "add", "path": "title", "value": "Dr"}])
    assert patched["title"] == "Dr"
    assert patched == engine.users.get(user["id"])
    op = {"op": "add", "path": "title", "value": "Prof"}
    http = call(
        engine,
        "PATCH",
        f"/Users/{user['id']}",
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]},
    )
    assert http.status == 204


def test_a_whole_patchop_message_is_accepted_too(make: EngineFactory) -> None:
    engine = make()
    user = engine.users.create({"userName": "m"})
    message = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "value": {"active": "False"}}],  # Entra ID's spelling
    }
    assert engine.users.patch(user["id"], message)["active"] is False
    with pytest.raises(TypeError):
        engine.users.patch(user["id"], "replace active")  # type: ignore[arg-type]


def test_listeners_hear_api_changes_with_the_directorys_principal(make: EngineFactory) -> None:
    engine = make()
    heard: list[ChangeEvent] = []
    engine.subscribe(heard.append)
    seeder = engine.directory("acme", principal="seed-script")
    user = seeder.users.create({"userName": "e", "password": "hunter2-hunter2"})
    seeder.users.patch(user["id"], [{"op": "replace", "path": "title", "value": "t"}])
    seeder.users.replace(user["id"], {"userName": "e2"})
    seeder.users.delete(user["id"])
    assert engine.events.wait_idle()  # listeners hear of changes after the request
    assert [(e.kind, e.resource_type, e.id, e.tenant, e.principal) for e in heard] == [
        (kind, "User", user["id"], "acme", "seed-script")
        for kind in ("created", "patched", "replaced", "deleted")
    ]
    assert heard[0].after is not None
    assert "password" not in heard[0].after  # returned: never, so never in an event


def test_tenants_are_isolated_and_match_what_their_tokens_see(make: EngineFactory) -> None:
    engine = make(
        authenticate=bearer_tokens({"token-acme-0123": "acme", "token-init-0123": "initech"})
    )
    acme = engine.directory("acme", base_url=BASE)
    initech = engine.directory("initech", base_url=BASE)
    mine = acme.users.create({"userName": "same-name"})
    theirs = initech.users.create({"userName": "same-name"})  # uniqueness is per tenant
    assert acme.users.search().total == initech.users.search().total == 1
    assert engine.users.search().total == 0
    with pytest.raises(NotFoundError):
        acme.users.get(theirs["id"])
    # The API needs no token (the application's code is trusted); HTTP still does.
    assert call(engine, "GET", f"/Users/{mine['id']}").status == 401
    http = call(
        engine, "GET", f"/Users/{mine['id']}", headers={"Authorization": "Bearer token-acme-0123"}
    )
    assert http.json == mine
    http = call(
        engine, "GET", f"/Users/{mine['id']}", headers={"Authorization": "Bearer token-init-0123"}
    )
    assert http.status == 404


def test_root_search_spans_every_type(make: EngineFactory) -> None:
    engine = make()
    api = engine.directory(base_url=BASE)
    api.users.create({"userName": "zed", "displayName": "shared"})
    api.groups.create({"displayName": "shared"})
    found = api.search(filter='displayName eq "shared"', sort_by="displayName")
    http = call(
        engine, "GET", "/", query={"filter": 'displayName eq "shared"', "sortBy": "displayName"}
    )
    assert found.total == 2
    assert found.resources == http.json["Resources"]


def test_search_paging_by_index_and_by_cursor(make: EngineFactory) -> None:
    engine = make()
    for n in range(7):
        engine.users.create({"userName": f"u{n}"})
    page = engine.users.search(sort_by="userName", start_index=3, count=2)
    assert page == SearchResult(total=7, resources=page.resources, start_index=3)
    assert [u["userName"] for u in page.resources] == ["u2", "u3"]
    names: list[str] = []
    cursor = ""
    while True:
        result = engine.users.search(sort_by="userName", count=3, cursor=cursor)
        assert result.start_index is None
        names += [u["userName"] for u in result.resources]
        if result.next_cursor is None:
            break
        cursor = result.next_cursor
    assert names == [f"u{n}" for n in range(7)]
    assert result.previous_cursor is not None


def test_attributes_and_excluded_attributes(make: EngineFactory) -> None:
    engine = make()
    api = engine.directory(base_url=BASE)
    user = api.users.create({"userName": "sel", "title": "t", "emails": [{"value": "a@b.c"}]})
    for query, kwargs in (
        ({"attributes": "userName,emails.value"}, {"attributes": ["userName", "emails.value"]}),
        ({"attributes": "userName"}, {"attributes": "userName"}),
        ({"excludedAttributes": "title,meta"}, {"excluded_attributes": ["title", "meta"]}),
    ):
        http = call(engine, "GET", f"/Users/{user['id']}", query=query)
        assert api.users.get(user["id"], **kwargs) == http.json
        listed = call(engine, "GET", "/Users", query=query)
        assert api.users.search(**kwargs).resources == listed.json["Resources"]


def test_inputs_and_outputs_are_private_copies(make: EngineFactory) -> None:
    engine = make()
    emails = [{"value": "a@example.com"}]
    body = {"userName": "copy", "emails": emails}
    user = engine.users.create(body)
    emails.append({"value": "b@example.com"})
    body["userName"] = "changed"
    user["emails"].append({"value": "c@example.com"})
    stored = engine.users.get(user["id"])
    assert stored["userName"] == "copy"
    assert stored["emails"] == [{"value": "a@example.com"}]


def test_what_json_cannot_carry_is_refused(make: EngineFactory) -> None:
    engine = make()
    with pytest.raises(TypeError, match="not JSON"):
        engine.users.create({"userName": "t", "title": {1, 2}})
    with pytest.raises(TypeError, match="mapping"):
        engine.users.create([("userName", "t")])  # type: ignore[arg-type]
    # A lone surrogate: the same 400 invalidSyntax HTTP answers for one in a body.
    with pytest.raises(InvalidSyntaxError):
        engine.users.create({"userName": "bad\ud800"})
    raw = json.dumps({"schemas": [USER], "userName": "bad\ud800"}).encode()
    assert_error(call(engine, "POST", "/Users", raw), 400, "invalidSyntax")
    assert engine.users.search().total == 0


def test_directory_is_a_mapping_of_the_engines_types(make: EngineFactory) -> None:
    engine = make()
    directory = engine.directory("acme")
    assert list(directory) == ["User", "Group"]
    assert directory["User"].resource_type.endpoint == "/Users"
    assert "Device" not in directory
    with pytest.raises(KeyError):
        directory["Device"]
    for bad in ("", 7):
        with pytest.raises(ConfigurationError):
            engine.directory(bad)  # type: ignore[arg-type]
    assert engine.users.resource_type.name == "User"
    assert engine.directory() is engine.directory()
