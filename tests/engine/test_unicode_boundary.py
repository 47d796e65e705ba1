"""Lone surrogates are not Unicode scalar values: every entry point refuses them with a 400 before
anything reaches storage (SQLite and PostgreSQL cannot encode them and would answer 500)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from scim2_core import Engine
from scim2_core.backends import SQLBackend
from tests.helpers import ERROR, GROUP, PATCH_OP, USER, call, make_backend

CESU8 = b"\xed\xa0\x80"  # U+D800 encoded as if it were a scalar value
ESCAPED = b"\\ud800"


@pytest.fixture(params=["default", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, each_backend: str) -> Iterator[Engine]:
    """MemoryBackend and SQLite in turn (tests/engine/conftest.py), and PostgreSQL once."""
    if request.param == "default":
        yield Engine(make_backend())
        return
    if each_backend != "memory":
        pytest.skip("PostgreSQL runs once, beside the memory run")
    backend = SQLBackend(request.getfixturevalue("postgres_database"))
    yield Engine(backend)
    backend.close()


def _user(name: bytes) -> bytes:
    return b'{"schemas": ["' + USER.encode() + b'"], "userName": "' + name + b'"}'


@pytest.mark.parametrize("bad", [CESU8, ESCAPED, b"ok" + CESU8 + b"ok"])
def test_a_body_with_a_lone_surrogate_is_refused_everywhere(engine: Engine, bad: bytes) -> None:
    created = call(engine, "POST", "/Users", _user(b"alice"))
    assert created.status == 201, created
    uid = created.json["id"]
    group = call(engine, "POST", "/Groups", {"schemas": [GROUP], "displayName": "g"})
    gid = group.json["id"]
    attempts = [
        ("POST", "/Users", _user(bad)),
        ("PUT", f"/Users/{uid}", _user(bad)),
        (
            "PATCH",
            f"/Users/{uid}",
            b'{"schemas": ["' + PATCH_OP.encode() + b'"], "Operations": '
            b'[{"op": "replace", "path": "displayName", "value": "' + bad + b'"}]}',
        ),
        (
            "PATCH",
            f"/Groups/{gid}",
            b'{"schemas": ["' + PATCH_OP.encode() + b'"], "Operations": '
            b'[{"op": "replace", "value": {"displayName": "' + bad + b'"}}]}',
        ),
        ("POST", "/Users/.search", b'{"filter": "userName eq \\"' + bad + b'\\""}'),
        (
            "POST",
            "/Bulk",
            b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": '
            b'[{"method": "POST", "path": "/Users", "bulkId": "b", "data": ' + _user(bad) + b"}]}",
        ),
    ]
    for method, path, body in attempts:
        answer = call(engine, method, path, body)
        assert answer.status == 400, (method, path, answer)
        assert answer.json["schemas"] == [ERROR]
        assert answer.json["scimType"] in {"invalidSyntax", "invalidValue", "invalidFilter"}
    # nothing changed
    users = call(engine, "GET", "/Users").json
    assert [u["userName"] for u in users["Resources"]] == ["alice"]
    assert call(engine, "GET", f"/Groups/{gid}").json["displayName"] == "g"


def test_a_valid_astral_character_is_stored_and_returned(engine: Engine) -> None:
    # A surrogate pair escape is a valid scalar value (U+1F600) and must round-trip.
    created = call(engine, "POST", "/Users", _user(b"\\ud83d\\ude00-" + "ß".encode()))
    assert created.status == 201, created
    assert created.json["userName"] == "\U0001f600-ß"
    found = call(engine, "GET", "/Users", query={"filter": 'userName eq "\U0001f600-SS"'})
    assert found.status == 200
    raw = call(engine, "GET", f"/Users/{created.json['id']}").raw
    assert json.loads(raw)["userName"] == "\U0001f600-ß"
