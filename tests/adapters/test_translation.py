"""What each adapter hands the engine: path, base_url, query, headers, body, context.

A fake engine records the request it receives and answers with a fixed response, so the
translation is visible on its own. The same cases run through every adapter.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any
from urllib.parse import parse_qsl

import pytest
from adapter_clients import ADAPTERS, HOST, PREFIX
from hypothesis import given, settings
from hypothesis import strategies as st

from scim2_core import Options, Request, Response
from scim2_core.asgi import ASGIApp
from scim2_core.serving import query_params
from scim2_core.wsgi import WSGIApp


class EchoEngine:
    """A fake engine: records what it was asked, answers 200 with a fixed body."""

    def __init__(self, *, never_blocks: bool = False, limit: int = 1024) -> None:
        self.options = Options(max_body_bytes=limit)
        self.never_blocks = never_blocks
        self.requests: list[Request] = []

    def handle(self, request: Request) -> Response:
        self.requests.append(request)
        return {
            "status": 200,
            "headers": {"Content-Type": "application/scim+json", "ETag": 'W/"1"'},
            "body": b'{"ok":true}',
        }


#: (target, expected engine path, expected query)
TARGETS = [
    ("/Users", "/Users", {}),
    ("/Users/", "/Users/", {}),
    ("/Users/2819c223-7f76", "/Users/2819c223-7f76", {}),
    ("/Users/caf%C3%A9", "/Users/café", {}),
    ("/", "/", {}),
    ("/Users?a=1&a=2&b=", "/Users", {"a": "1", "b": ""}),
    ("/Users?filter=userName%20eq%20%22j%C3%B8rn%22", "/Users", {"filter": 'userName eq "jørn"'}),
    ("/Groups?excludedAttributes=members", "/Groups", {"excludedAttributes": "members"}),
]


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize(("target", "path", "query"), TARGETS)
def test_path_and_query(adapter: str, target: str, path: str, query: dict[str, str]) -> None:
    engine = EchoEngine()
    reply = ADAPTERS[adapter](engine)("GET", PREFIX + target, {}, b"")
    assert (reply.status, reply.body, reply.headers["etag"]) == (200, b'{"ok":true}', 'W/"1"')
    [seen] = engine.requests
    assert (seen["method"], seen["path"], dict(seen["query"])) == ("GET", path, query)
    assert seen["base_url"] == f"http://{HOST}{PREFIX}"


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_encoded_slash_and_question_mark_stay_in_their_segment(adapter: str) -> None:
    """Routing splits the raw path, then decodes each segment once: ``%2F`` and ``%3F``
    reach the engine still encoded, never as a separator or the start of a query.
    Django's test client (like runserver and Django under ASGI) passes no raw path
    (``RAW_URI`` / ``REQUEST_URI``): there the decoded path is all there is."""
    engine = EchoEngine()
    ADAPTERS[adapter](engine)("GET", PREFIX + "/Users%2Fabc/x%3Fy%25?q=1", {}, b"")
    [seen] = engine.requests
    expected = "/Users/abc/x?y%" if adapter == "django" else "/Users%2Fabc/x%3Fy%25"
    assert (seen["path"], seen["query"]) == (expected, {"q": "1"})


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "TRACE", "PATCH", "DELETE"])
def test_every_method_reaches_the_engine(adapter: str, method: str) -> None:
    engine = EchoEngine()
    reply = ADAPTERS[adapter](engine)(method, PREFIX + "/Users", {}, b"")
    assert ([r["method"] for r in engine.requests], reply.status) == ([method], 200)
    # RFC 9110 §9.3.2: no content in the response to HEAD.
    assert reply.body == (b"" if method == "HEAD" else b'{"ok":true}')


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_headers_and_body(adapter: str) -> None:
    engine = EchoEngine()
    body = '{"userName": "jørn"}'.encode()
    headers = {"Content-Type": "application/scim+json", "If-Match": 'W/"3"', "X-Custom": "a"}
    ADAPTERS[adapter](engine)("PUT", PREFIX + "/Users/1", headers, body)
    [seen] = engine.requests
    got = {k.lower(): v for k, v in seen["headers"].items()}
    assert got["content-type"] == "application/scim+json"
    assert got["if-match"] == 'W/"3"'
    assert got["x-custom"] == "a"
    assert got["content-length"] == str(len(body))
    assert seen["body"] == body


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize(("size", "status"), [(0, 200), (1024, 200), (1025, 413), (5000, 413)])
def test_body_limit(adapter: str, size: int, status: int) -> None:
    engine = EchoEngine(limit=1024)
    headers = {"Content-Type": "application/scim+json"}
    reply = ADAPTERS[adapter](engine)("POST", PREFIX + "/Users", headers, b"x" * size)
    assert reply.status == status
    if status == 413:
        assert engine.requests == []
        assert reply.json() == {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": "413",
            "detail": "The request body exceeds 1024 bytes.",
        }
    else:
        assert engine.requests[0]["body"] == b"x" * size


# --- raw ASGI specifics ----------------------------------------------------------------


def http_scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/scim/v2/Users",
        "raw_path": b"/scim/v2/Users",
        "root_path": "/scim/v2",
        "query_string": b"",
        "headers": [(b"host", b"example.com")],
        "server": ("example.com", 80),
    }
    scope.update(overrides)
    return scope


def run_asgi(
    app: ASGIApp, scope: dict[str, Any], incoming: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], int]:
    """Run one ASGI call; returns the messages sent and how many were received."""
    sent: list[dict[str, Any]] = []
    queue = list(incoming)
    received = 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: Any) -> None:
        sent.append(dict(message))

    asyncio.run(asyncio.wait_for(app(scope, receive, send), 5))
    return sent, received


FORWARDED = [(b"host", b"internal:8080"), (b"x-forwarded-proto", b"https"),
             (b"x-forwarded-host", b"scim.example.com, proxy")]  # fmt: skip


@pytest.mark.parametrize(
    ("scope", "trust_proxy", "base_url"),
    [
        (http_scope(), False, "http://example.com/scim/v2"),
        (http_scope(headers=[]), False, "http://example.com/scim/v2"),
        (http_scope(headers=[], server=("10.0.0.1", 8000)), False, "http://10.0.0.1:8000/scim/v2"),
        (http_scope(headers=[], scheme="https", server=("h", 443)), False, "https://h/scim/v2"),
        (http_scope(headers=FORWARDED), False, "http://internal:8080/scim/v2"),
        (http_scope(headers=FORWARDED), True, "https://scim.example.com/scim/v2"),
        (http_scope(root_path="", path="/Users"), False, "http://example.com"),
        (
            http_scope(root_path="/t/ä b", path="/t/ä b/Users"),
            False,
            "http://example.com/t/%C3%A4%20b",
        ),
    ],
)
def test_asgi_base_url(scope: dict[str, Any], trust_proxy: bool, base_url: str) -> None:
    engine = EchoEngine()
    app = ASGIApp(engine, trust_proxy=trust_proxy)
    run_asgi(app, scope, [{"type": "http.request"}])
    [seen] = engine.requests
    assert (seen["path"], seen["base_url"]) == ("/Users", base_url)
    assert seen["context"] == {"scope": scope}
    assert app.request(scope, b"") == seen  # the public translation is the served one


@pytest.mark.parametrize("never_blocks", [True, False])
def test_asgi_streamed_body_and_thread(never_blocks: bool) -> None:
    engine = EchoEngine(never_blocks=never_blocks)
    threads: list[bool] = []
    handle = engine.handle

    def recording(request: Request) -> Response:
        try:
            asyncio.get_running_loop()
            threads.append(False)  # on the event loop
        except RuntimeError:
            threads.append(True)  # in a worker thread
        return handle(request)

    engine.handle = recording  # type: ignore[method-assign]
    chunks = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": False},
    ]
    sent, _ = run_asgi(ASGIApp(engine), http_scope(method="POST"), chunks)
    assert engine.requests[0]["body"] == b"abcd"
    assert threads == [not never_blocks]
    start, body = sent
    assert start["status"] == 200
    assert (b"content-length", b"11") in start["headers"]
    assert (b"etag", b'W/"1"') in start["headers"]
    assert body == {"type": "http.response.body", "body": b'{"ok":true}'}


def test_asgi_blocking_engine_leaves_the_event_loop_free() -> None:
    """While a blocking backend holds one request, the event loop keeps serving others."""
    engine = EchoEngine(never_blocks=False)
    released = threading.Event()
    entered: list[str] = []
    handle = engine.handle

    def blocking(request: Request) -> Response:
        entered.append(request["path"])
        if request["path"] == "/slow":
            # Only the event loop can set the event: this waits 5 s if the loop is blocked.
            assert released.wait(5), "the event loop was blocked by the engine"
        return handle(request)

    engine.handle = blocking  # type: ignore[method-assign]
    app = ASGIApp(engine)

    async def call(path: str) -> int:
        sent: list[Any] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request"}

        async def send(message: Any) -> None:
            sent.append(message)

        await app(http_scope(path="/scim/v2" + path), receive, send)
        return int(sent[0]["status"])

    async def both() -> list[int]:
        slow = asyncio.ensure_future(call("/slow"))
        while not entered and not slow.done():
            await asyncio.sleep(0.01)  # until /slow is inside the engine
        fast = await call("/fast")  # answered while /slow is still blocked in its thread
        released.set()
        return [fast, await slow]

    assert asyncio.run(asyncio.wait_for(both(), 10)) == [200, 200]
    assert [r["path"] for r in engine.requests] == ["/fast", "/slow"]


def test_asgi_head_sends_no_content() -> None:
    engine = EchoEngine()
    sent, _ = run_asgi(ASGIApp(engine), http_scope(method="HEAD"), [{"type": "http.request"}])
    assert engine.requests[0]["method"] == "HEAD"
    assert sent[0]["status"] == 200
    assert (b"content-length", b"11") in sent[0]["headers"]  # what GET would send
    assert sent[1] == {"type": "http.response.body", "body": b""}


def test_asgi_stops_reading_once_over_the_limit() -> None:
    engine = EchoEngine(limit=10)
    chunks = [{"type": "http.request", "body": b"x" * 8, "more_body": True}] * 5
    sent, received = run_asgi(ASGIApp(engine), http_scope(method="POST"), chunks)
    assert received == 2
    assert sent[0]["status"] == 413
    assert engine.requests == []


def test_asgi_refuses_a_declared_oversized_body_without_reading() -> None:
    engine = EchoEngine(limit=10)
    scope = http_scope(method="POST", headers=[(b"content-length", b"1000000000")])
    sent, received = run_asgi(ASGIApp(engine), scope, [])
    assert (received, sent[0]["status"], engine.requests) == (0, 413, [])


class Unreadable:
    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body must not be read")


def test_wsgi_refuses_a_declared_oversized_body_without_reading() -> None:
    engine = EchoEngine(limit=10)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/Users",
        "CONTENT_LENGTH": "1000000000",
        "HTTP_HOST": "h",
        "wsgi.input": Unreadable(),
    }
    statuses: list[str] = []
    body = WSGIApp(engine)(environ, lambda status, headers, exc_info=None: statuses.append(status))
    # The reason phrase is Python's: "Request Entity Too Large", or RFC 9110's "Content Too
    # Large" from Python 3.13 on.
    assert ([s[:4] for s in statuses], engine.requests) == (["413 "], [])
    assert b'"status":"413"' in b"".join(body)


def test_asgi_client_gone_before_body() -> None:
    engine = EchoEngine()
    sent, _ = run_asgi(ASGIApp(engine), http_scope(method="POST"), [{"type": "http.disconnect"}])
    assert (sent, engine.requests) == ([], [])


def test_asgi_lifespan_and_websocket() -> None:
    app = ASGIApp(EchoEngine())
    sent, _ = run_asgi(
        app,
        {"type": "lifespan", "asgi": {"version": "3.0"}},
        [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}],
    )
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    sent, _ = run_asgi(app, {"type": "websocket", "path": "/"}, [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.close", "code": 1008}]
    with pytest.raises(ValueError, match="cannot serve 'telepathy'"):
        run_asgi(app, {"type": "telepathy"}, [])


# --- raw WSGI specifics ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "trust_proxy", "path", "base_url"),
    [
        ({}, False, "/Users", "http://example.com/scim/v2"),
        ({"HTTP_HOST": ""}, False, "/Users", "http://srv:8080/scim/v2"),
        (
            {"wsgi.url_scheme": "https", "HTTP_HOST": ""},
            False,
            "/Users",
            "https://srv:8080/scim/v2",
        ),
        ({"HTTP_X_FORWARDED_PROTO": "https"}, False, "/Users", "http://example.com/scim/v2"),
        ({"HTTP_X_FORWARDED_PROTO": "https"}, True, "/Users", "https://example.com/scim/v2"),
        ({"HTTP_X_FORWARDED_HOST": "a.example"}, True, "/Users", "http://a.example/scim/v2"),
        ({"SCRIPT_NAME": ""}, False, "/Users", "http://example.com"),
        ({"PATH_INFO": "/Users/caf\xc3\xa9"}, False, "/Users/café", "http://example.com/scim/v2"),
        ({"PATH_INFO": ""}, False, "/", "http://example.com/scim/v2"),
    ],
)
def test_wsgi_mount_and_proxy(
    environ: dict[str, Any], trust_proxy: bool, path: str, base_url: str
) -> None:
    import io

    engine = EchoEngine()
    full = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "/scim/v2",
        "PATH_INFO": "/Users",
        "QUERY_STRING": "",
        "SERVER_NAME": "srv",
        "SERVER_PORT": "8080",
        "HTTP_HOST": "example.com",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        **environ,
    }
    statuses: list[str] = []
    result = WSGIApp(engine, trust_proxy=trust_proxy)(
        full, lambda status, headers, exc_info=None: statuses.append(status)
    )
    assert (statuses, list(result)) == (["200 OK"], [b'{"ok":true}'])
    [seen] = engine.requests
    assert (seen["path"], seen["base_url"]) == (path, base_url)
    assert seen["context"] == {"environ": full}


# --- Flask and Django: the app's own code may read the body too ---------------------------

BODY = b'{"userName": "shared"}'


def test_flask_body_read_by_a_hook_first() -> None:
    from flask import Flask, request

    from scim2_core_flask import scim_blueprint

    engine = EchoEngine()
    app = Flask("hook_reads_body")
    app.register_blueprint(scim_blueprint(engine), url_prefix=PREFIX)
    logged: list[bytes] = []
    app.before_request(lambda: logged.append(request.get_data()) and None)
    r = app.test_client().post(
        PREFIX + "/Users", data=BODY, headers={"Content-Type": "application/scim+json"}
    )
    assert (r.status_code, logged, engine.requests[0]["body"]) == (200, [BODY], BODY)


LOGGED: list[bytes] = []


def body_logging_middleware(get_response: Any) -> Any:
    """Reads ``request.body`` after the view, as audit-logging middleware does."""

    def middleware(request: Any) -> Any:
        response = get_response(request)
        LOGGED.append(request.body)
        return response

    return middleware


@pytest.mark.parametrize(("upload_max", "status"), [(None, 200), (2_621_440, 200), (10, 413)])
def test_django_body_read_by_middleware_and_upload_limit(
    upload_max: int | None, status: int
) -> None:
    from adapter_clients import configure_django, django_urlconf
    from django.test import Client
    from django.test.utils import override_settings

    configure_django()
    engine = EchoEngine()
    urlconf = django_urlconf(engine)
    LOGGED.clear()
    with override_settings(
        ROOT_URLCONF=urlconf.__name__,
        # Past Django's limit, the middleware's own read of request.body fails (400).
        MIDDLEWARE=[f"{__name__}.body_logging_middleware"] if status == 200 else [],
        DATA_UPLOAD_MAX_MEMORY_SIZE=upload_max,
    ):
        r = Client().post(PREFIX + "/Users", data=BODY, content_type="application/scim+json")
    assert r.status_code == status
    if status == 200:
        assert (LOGGED, engine.requests[0]["body"]) == ([BODY], BODY)
    else:  # Django's own limit is the smaller one: a SCIM 413 that says so
        assert json.loads(r.content)["detail"] == "The request body exceeds 10 bytes."


@settings(max_examples=300, deadline=None)
@given(
    query=st.lists(
        st.sampled_from([*"ab=&+%;~ é\u00ff", "%20", "%2", "%C3%A9", "%ff", "%zz"]), max_size=25
    ).map("".join)
)
def test_query_parameters_read_as_the_form_encoding_does(query: str) -> None:
    """Every transport decodes the query string as ``parse_qsl`` does (``+`` a space, ``%XX``
    a UTF-8 byte, U+FFFD for an invalid one), keeping the first value of a repeated name."""
    expected: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        expected.setdefault(name, value)
    assert query_params(query) == expected


def test_query_parameters_of_a_query_asked_again_are_a_dict_of_their_own() -> None:
    first = query_params("filter=userName%20eq%20%22bjensen%22&count=1")
    first["count"] = "999"
    first["extra"] = "x"
    again = query_params("filter=userName%20eq%20%22bjensen%22&count=1")
    assert again == {"filter": 'userName eq "bjensen"', "count": "1"}
