"""The audit log keeps what the operator console shows beside an error: the offending
request and the answer, secrets redacted, bounded in size; and it reads newest first."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scim2_core import Engine
from scim2_core.backends import Backend, MemoryBackend, SQLBackend
from scim2_core.engine._audit import exchange_of
from scim2_core.events import EXCHANGE_LIMIT
from tests.helpers import PATCH_OP, call, create_user, user_body

SECRET = "Hunter2-very-secret"


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine keeping its audit log, on each backend (PostgreSQL: a schema of its own)."""
    schema = f"scim_test_{uuid.uuid4().hex[:16]}"
    if request.param == "memory":
        backend: Backend = MemoryBackend()
    elif request.param == "sqlite":
        backend = SQLBackend(f"sqlite:///{tmp_path / 'a.db'}")
    else:
        backend = SQLBackend(request.getfixturevalue("postgres_url"), schema=schema)
    eng = Engine(backend)
    eng.audit.enable()
    yield eng
    eng.audit.stop()
    if request.param == "postgresql":
        import psycopg

        getattr(backend, "close", lambda: None)()
        with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_an_error_keeps_the_request_and_the_answer_without_secrets(engine: Engine) -> None:
    create_user(engine, "bjensen")
    body = user_body("BJENSEN", password=SECRET, name={"givenName": "Barbara"})
    refused = call(
        engine,
        "POST",
        "/Users",
        body,
        query={"access_token": SECRET, "attributes": "userName"},
        headers={"Authorization": f"Bearer {SECRET}", "User-Agent": "Azure AD SCIM Provisioning"},
    )
    assert refused.status == 409
    entry = engine.audit.query(status=409)[0]
    exchange = entry.exchange
    assert exchange is not None
    assert json.loads(exchange["request"])["userName"] == "BJENSEN"
    assert json.loads(exchange["request"])["password"] == "(redacted)"
    assert json.loads(exchange["answer"])["scimType"] == "uniqueness"
    assert exchange["query"] == {"access_token": "(redacted)", "attributes": "userName"}
    assert exchange["userAgent"] == "Azure AD SCIM Provisioning"
    assert SECRET not in entry.to_json()


def test_a_success_keeps_no_exchange(engine: Engine) -> None:
    create_user(engine, "bjensen", password=SECRET)
    (entry,) = engine.audit.query()
    assert entry.status == 201 and entry.exchange is None


def test_a_patch_of_a_secret_path_is_redacted(engine: Engine) -> None:
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "replace", "path": "password", "value": SECRET},
            {"op": "replace", "path": "nosuchattr", "value": "x"},
        ],
    }
    assert call(engine, "PATCH", "/Users/nobody", patch).status == 404
    (entry,) = engine.audit.query()
    assert entry.exchange is not None
    assert SECRET not in json.dumps(entry.exchange)
    assert '"nosuchattr"' in entry.exchange["request"]


def test_a_body_that_is_not_json_is_scrubbed_or_withheld(engine: Engine) -> None:
    call(engine, "POST", "/Users", b'{"userName": "x", "password": "' + SECRET.encode() + b'", ')
    call(engine, "POST", "/Users", b'{"userName": "y", "pass' + SECRET.encode())
    first, second = engine.audit.query()
    assert first.status == second.status == 400
    assert first.exchange and '"password": "(redacted)"' in first.exchange["request"]
    assert second.exchange and second.exchange["request"].startswith("(withheld")
    assert SECRET not in first.to_json() + second.to_json()


def test_the_exchange_is_bounded(engine: Engine) -> None:
    body = user_body("bjensen", displayName="x" * 100_000, nickName=1)  # wrong type: 400
    assert call(engine, "POST", "/Users", body).status == 400
    (entry,) = engine.audit.query()
    assert entry.exchange is not None
    assert len(entry.exchange["request"]) <= EXCHANGE_LIMIT + 10


def test_the_log_reads_newest_first(engine: Engine) -> None:
    for name in ("a", "b", "c"):
        create_user(engine, name)
    newest = engine.audit.query(newest_first=True, limit=2)
    assert [e.change["set"]["userName"] for e in newest if e.change] == ["c", "b"]


_KEYS = st.sampled_from(["password", "userPassword", "clientSecret", "apiKey", "token", "pwd"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(doc=_JSON, key=_KEYS, raw=st.booleans())
def test_no_secret_survives_anywhere_in_a_body(doc: object, key: str, raw: bool) -> None:
    body = {"wrapper": [doc, {key: SECRET}], "Operations": [{"path": key, "value": SECRET}]}
    text = json.dumps(body)
    exchange = exchange_of(
        {"method": "POST", "path": "/Users", "body": text[:-1] if raw else text},
        {"status": 400, "headers": {}, "body": b'{"detail": "bad"}'},
    )
    assert exchange is not None
    assert SECRET not in json.dumps(exchange)
