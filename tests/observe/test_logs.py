"""One log line per request, text or JSON, with no token, password or attribute value in it:
Hypothesis makes the secrets, the test greps every line logged under ``scim2_core``."""

from __future__ import annotations

import json
import logging
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim2_core import Engine
from scim2_core.observe import Observability, RequestLog

from .conftest import ALICE, BOB, call, make_engine, user


class Lines(logging.Handler):
    """Every record logged under ``scim2_core``, formatted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger("scim2_core")
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_a_json_line_has_the_fields_of_the_request(lines: Lines) -> None:
    engine = make_engine()
    Observability(engine, log_format="json", metrics=False)
    created = call(engine, "POST", "/Users", body=user("bjensen"), headers={"X-Request-Id": "r-1"})
    rid = (
        created["headers"]["Location"].rsplit("/", 1)[1] if "Location" in created["headers"] else ""
    )
    call(engine, "GET", f"/Users/{rid}", token=BOB)  # another tenant: 404
    call(engine, "GET", "/Users", query={"filter": "userName eq"})  # 400 invalidFilter
    call(engine, "GET", "/Users", token=None)  # 401
    logged = [json.loads(line) for line in lines.lines]
    assert [(x["method"], x["path"], x["status"], x["scimType"]) for x in logged] == [
        ("POST", "/Users", 201, None),
        ("GET", "/Users/{id}", 404, None),
        ("GET", "/Users", 400, "invalidFilter"),
        ("GET", "/Users", 401, None),
    ]
    assert [(x["principal"], x["tenant"]) for x in logged] == [
        ("alice-idp", "acme"),
        ("bob-idp", "globex"),
        ("alice-idp", "acme"),
        (None, None),
    ]
    assert logged[0]["requestId"] == "r-1"
    assert all(x["durationMs"] >= 0 and x["time"].endswith("Z") for x in logged)
    assert rid and rid not in "".join(lines.lines)


def test_a_text_line_reads_left_to_right(lines: Lines) -> None:
    engine = make_engine()
    Observability(engine, log_format="text", metrics=False)
    call(engine, "GET", "/Users/nope", headers={"X-Request-Id": "r-2"})
    [line] = lines.lines
    assert line.startswith(
        '"GET /Users/{id}" 404 scimType=- requestId=r-2 principal=alice-idp tenant=acme '
    )
    assert line.endswith("ms")


def test_text_values_that_need_it_are_quoted() -> None:
    log = RequestLog("text")
    line = log.line(
        {
            "method": "GET",
            "path": "/Users",
            "status": 200,
            "scimType": None,
            "requestId": "r",
            "principal": 'Ops "team" one',
            "tenant": "a=b",
            "durationMs": 1.0,
            "client": "[::1]:5",
        }
    )
    assert (
        line
        == '[::1]:5 "GET /Users" 200 scimType=- requestId=r principal="Ops \\"team\\" one" tenant="a=b" 1.0ms'
    )


def test_no_line_when_the_logger_is_off(lines: Lines) -> None:
    engine = make_engine()
    Observability(engine, log_format="json", metrics=False)
    logging.getLogger("scim2_core").setLevel(logging.WARNING)
    call(engine, "GET", "/Users")
    assert lines.lines == []


SECRET = st.text(alphabet=string.ascii_letters + string.digits, min_size=10, max_size=24).map(
    lambda s: "Zq" + s  # never a word the log could hold by itself
)


@given(
    user_name=SECRET,
    given_name=SECRET,
    email=SECRET,
    password=SECRET,
    token=SECRET,
    extra=st.dictionaries(
        st.sampled_from(["title", "nickName", "displayName", "locale", "profileUrl"]), SECRET
    ),
    log_format=st.sampled_from(["text", "json"]),
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_secret_or_attribute_value_reaches_any_log_line(
    lines: Lines,
    user_name: str,
    given_name: str,
    email: str,
    password: str,
    token: str,
    extra: dict[str, str],
    log_format: str,
) -> None:
    lines.lines.clear()
    engine: Engine = make_engine()
    engine.audit.enable(retention=None)
    Observability(engine, log_format=log_format)
    body: dict[str, Any] = user(
        user_name,
        password=password,
        name={"givenName": given_name},
        emails=[{"value": f"{email}@example.com", "type": "work"}],
        **extra,
    )
    try:
        created = call(engine, "POST", "/Users", body=body)
        rid = json.loads(created["body"]).get("id", "none")
        call(engine, "POST", "/Users", body=body)  # 409 uniqueness: its detail names the value
        call(engine, "GET", "/Users", query={"filter": f'userName eq "{user_name}"'})
        call(
            engine,
            "POST",
            "/Users/.search",
            body={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": f'emails.value co "{email}"',
            },
        )
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "name.givenName", "value": given_name + "x"}],
        }
        call(engine, "PATCH", f"/Users/{rid}", body=patch)
        call(engine, "PUT", f"/Users/{rid}", body={**body, "password": password + "2"})
        call(engine, "GET", f"/Users/{user_name}")  # a value where an id goes: 404
        call(engine, "GET", "/Users", token=token)  # a wrong token: 401
        call(
            engine, "GET", "/Users", token=ALICE, query={"filter": f'userName eq "{user_name}'}
        )  # 400
        engine.audit.flush()
    finally:
        engine.audit.stop()
    logged = "\n".join(lines.lines)
    assert len([line for line in lines.lines if "scimType" in line]) == 9
    for secret in (user_name, given_name, email, password, token, ALICE, *extra.values()):
        assert secret not in logged


def test_behind_the_asgi_middleware_one_line_per_request_with_the_client(lines: Lines) -> None:
    import asyncio

    import httpx

    from scim2_core.asgi import ASGIApp, PrefixMount
    from scim2_core.observe import RequestLogMiddleware

    engine = make_engine()
    observed = Observability(engine, log_format="json", metrics=False)
    assert observed.log is not None
    app = RequestLogMiddleware(PrefixMount(ASGIApp(engine)), observed.log, "/scim/v2")

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.8", 4242))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            auth = {"Authorization": f"Bearer {ALICE}"}
            return [
                await c.get("/scim/v2/Users/abc", headers={**auth, "X-Request-Id": "r-7"}),
                await c.get("/elsewhere", headers=auth),
            ]

    inside, outside = asyncio.run(go())
    assert (inside.status_code, outside.status_code) == (404, 404)
    first, second = (json.loads(line) for line in lines.lines)
    assert first["path"] == "/scim/v2/Users/{id}" and first["requestId"] == "r-7"
    assert first["client"] == "192.0.2.8:4242" and first["principal"] == "alice-idp"
    assert (second["path"], second["status"], second["requestId"]) == ("-", 404, None)
    assert second["method"] == "GET" and second["client"] == "192.0.2.8:4242"
