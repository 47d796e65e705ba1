"""X-Request-Id: the client's when short and safe, else a new one; in every answer, through
every adapter, and in the audit log."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scim2_core import Engine
from scim2_core.backends import MemoryBackend

from .conftest import ALICE, call, user

NEW_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    "given_id",
    [
        "abc",
        "7f0c5a4e-1b2d-4c8e-9a3f-2d1e0c9b8a7f",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "a" * 128,
        "tenant:acme/req+1=x@y.z_-",
    ],
)
def test_a_safe_client_request_id_is_echoed(engine: Engine, given_id: str) -> None:
    response = call(engine, "GET", "/Users", headers={"X-Request-Id": given_id})
    assert response["status"] == 200
    assert response["headers"]["X-Request-Id"] == given_id


@pytest.mark.parametrize(
    "given_id",
    [
        "",
        "a" * 129,
        "two words",
        'quo"te',
        "new\r\nSet-Cookie: x=1",
        "caf\u00e9",
        "tab\there",
        "<script>",
    ],
)
def test_an_unsafe_client_request_id_is_replaced(engine: Engine, given_id: str) -> None:
    response = call(engine, "GET", "/Users", headers={"X-Request-Id": given_id})
    assert NEW_ID.fullmatch(response["headers"]["X-Request-Id"])


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_whatever_the_client_sends_the_answer_carries_a_safe_id(given_id: str) -> None:
    engine = Engine(MemoryBackend())
    response = engine.handle(
        {"method": "GET", "path": "/Users", "headers": {"X-Request-Id": given_id}}
    )
    rid = response["headers"]["X-Request-Id"]
    assert re.fullmatch(r"[A-Za-z0-9._:@/+=-]{1,128}", rid)
    assert rid == given_id or NEW_ID.fullmatch(rid)


def test_every_answer_has_a_fresh_id_errors_too(engine: Engine) -> None:
    answers = [
        call(engine, "GET", "/Users"),
        call(engine, "GET", "/Users", token=None),  # 401
        call(engine, "GET", "/Nowhere"),  # 404
        call(engine, "POST", "/Users", body=b"{not json"),  # 400
        call(engine, "DELETE", "/Users"),  # 405
        engine.handle({"method": 1, "path": None}),  # type: ignore[typeddict-item]  # not even a request
        engine.handle("not a mapping"),  # type: ignore[arg-type]
    ]
    ids = [a["headers"]["X-Request-Id"] for a in answers]
    assert [a["status"] for a in answers] == [200, 401, 404, 400, 405, 400, 400]
    assert all(NEW_ID.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_the_audit_log_and_the_events_carry_the_same_id(engine: Engine) -> None:
    engine.audit.enable(retention=None)
    try:
        created = call(
            engine, "POST", "/Users", body=user("bjensen"), headers={"X-Request-Id": "req-42"}
        )
        refused = call(engine, "GET", "/Users", token="wrong-token-0123456789")
        engine.audit.flush()
        entries = engine.audit.query()
    finally:
        engine.audit.stop()
    assert created["headers"]["X-Request-Id"] == "req-42"
    by_status = {e.status: e.request_id for e in entries}
    assert by_status == {201: "req-42", 401: refused["headers"]["X-Request-Id"]}


@pytest.mark.parametrize("adapter", ["asgi", "wsgi", "starlette", "fastapi", "flask", "django"])
def test_every_adapter_returns_the_id(adapter: str) -> None:
    from adapter_clients import ADAPTERS, PREFIX

    from .conftest import make_engine

    send = ADAPTERS[adapter](make_engine())
    auth = {"Authorization": f"Bearer {ALICE}"}
    echoed = send("GET", PREFIX + "/Users", {**auth, "X-Request-Id": "from-the-idp-1"}, b"")
    made = send("GET", PREFIX + "/Users/missing", auth, b"")
    assert (echoed.status, echoed.headers["x-request-id"]) == (200, "from-the-idp-1")
    assert made.status == 404 and NEW_ID.fullmatch(made.headers["x-request-id"])
