"""The raw ASGI app's short ways through a request give what the long ways gave.

A ``GET`` or ``HEAD`` whose head announces no body is answered without waiting on
``receive`` (RFC 9112 §6.3: no Content-Length and no Transfer-Encoding is a body of length
zero); the mount's prefix is matched on the raw path without splitting it when it holds no
``%``; the header names clients send on every request are decoded once.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scim2_core import Engine, bearer_tokens
from scim2_core.asgi import ASGIApp, PrefixMount
from scim2_core.backends import MemoryBackend
from scim2_core.serving import engine_path
from scim2_core.serving._targets import asgi_headers

TOKEN = "fast-path-token-0123456789"
AUTH = (b"authorization", f"Bearer {TOKEN}".encode())
USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "fast"}


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]], version: str) -> Any:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": version,
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"example.com"), AUTH, *headers],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }


def _call(
    app: Any,
    method: str,
    path: str,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    version: str = "1.1",
) -> tuple[int, dict[bytes, bytes], bytes, int]:
    """One request: (status, headers, body, how many times the app called ``receive``)."""
    received = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = _scope(method, path, headers or [], version)
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    start, content = sent
    assert content.get("more_body", False) is False
    return start["status"], dict(start["headers"]), content["body"], received


@pytest.fixture
def app() -> Any:
    return PrefixMount(ASGIApp(Engine(MemoryBackend(), authenticate=bearer_tokens([TOKEN]))))


def _create(app: Any) -> str:
    typed = [(b"content-type", b"application/scim+json")]
    status, _, body, received = _call(
        app, "POST", "/scim/v2/Users", headers=typed, body=json.dumps(USER).encode()
    )
    assert (status, received) == (201, 1)  # a write's body is received, framed or not
    user_id: str = json.loads(body)["id"]
    return user_id


@pytest.mark.parametrize("length", [None, b"0", b" 0 "])
def test_a_read_with_no_body_is_answered_without_receiving(app: Any, length: Any) -> None:
    user_id = _create(app)
    headers = [] if length is None else [(b"content-length", length)]
    status, out, body, received = _call(app, "GET", f"/scim/v2/Users/{user_id}", headers=headers)
    assert (status, received) == (200, 0)
    assert json.loads(body)["id"] == user_id
    assert out[b"content-length"] == str(len(body)).encode()
    head = _call(app, "HEAD", f"/scim/v2/Users/{user_id}", headers=headers)
    # RFC 9110 §9.3.2: HEAD is GET's answer without the content, Content-Length included.
    assert head[0] == 200 and head[2] == b"" and head[3] == 0
    assert head[1][b"content-length"] == out[b"content-length"]
    assert head[1][b"etag"] == out[b"etag"]


@pytest.mark.parametrize(
    ("headers", "version"),
    [
        ([(b"content-length", b"2")], "1.1"),  # a GET announcing content: it is received
        ([(b"transfer-encoding", b"chunked")], "1.1"),
        ([], "2"),  # HTTP/2 frames bodies otherwise: RFC 9112's rule does not apply
    ],
)
def test_a_read_that_may_have_a_body_still_receives_it(
    app: Any, headers: list[tuple[bytes, bytes]], version: str
) -> None:
    status, _, body, received = _call(
        app, "GET", "/scim/v2/Users", headers=headers, body=b"{}", version=version
    )
    assert (status, received) == (200, 1)
    assert json.loads(body)["totalResults"] == 0


def _engine_path_by_segments(raw_path: str, prefix: str) -> str | None:
    """The definition: the raw path's segments after the mount's non-empty ones."""
    wanted = [part for part in prefix.split("/") if part]
    segments = raw_path.split("/")[1:]
    if segments[: len(wanted)] != wanted:
        return None
    return "/" + "/".join(segments[len(wanted) :])


_SEGMENT = st.text(alphabet="abv2/.-_~:@!$&'()*+,;=", max_size=8)


@given(
    st.lists(_SEGMENT, max_size=5).map(lambda parts: "/" + "/".join(parts)),
    st.sampled_from(["", "/", "/scim/v2", "scim/v2/", "/scim//v2", "/a", "/a/b/"]),
)
def test_the_mount_is_matched_as_its_segments_are(raw_path: str, prefix: str) -> None:
    assert engine_path(raw_path, prefix) == _engine_path_by_segments(raw_path, prefix)


@pytest.mark.parametrize(
    ("raw_path", "path"),
    [
        ("/scim/v2", "/"),
        ("/scim/v2/", "/"),
        ("/scim/v2/Users", "/Users"),
        ("/scim/v2//Users", "//Users"),
        ("/scim/v2x/Users", None),
        ("/scim//v2/Users", None),
        ("/scim", None),
        ("/Users", None),
    ],
)
def test_the_mount_matches_whole_segments_only(raw_path: str, path: str | None) -> None:
    assert engine_path(raw_path, "/scim/v2") == path
    assert engine_path(raw_path, "/scim/v2/") == path


_NAME = st.sampled_from(
    [b"host", b"Host", b"authorization", b"AUTHORIZATION", b"x-request-id", b"accept", b"x-a"]
)


@given(st.lists(st.tuples(_NAME, st.binary(max_size=12)), max_size=8))
def test_request_headers_are_decoded_as_latin1_by_lower_case_name(
    raw: list[tuple[bytes, bytes]],
) -> None:
    headers, _, _ = asgi_headers({"headers": raw})
    expected: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        # RFC 9110 §5.3: repeated fields combine, in order, with ", ".
        expected[key] = f"{expected[key]}, {text}" if key in expected else text
    assert headers == expected


def _ask(app: Any, path: str, raw_path: str, root_path: str) -> tuple[int, bytes]:
    """A GET of ``path`` (decoded) received as ``raw_path``: (status, body)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {**_scope("GET", path, [], "1.1"), "raw_path": raw_path.encode()}
    scope["root_path"] = root_path
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


def test_a_target_asked_again_is_answered_as_the_first_time() -> None:
    """The mount keeps what it found for the targets asked last (clients repeat them): a
    target asked again, after hundreds of others, is answered as a fresh mount answers it."""
    engine = Engine(MemoryBackend(), authenticate=bearer_tokens([TOKEN]))
    mount = PrefixMount(ASGIApp(engine))
    user_id = _create(mount)
    targets = [
        (f"/scim/v2/Users/{user_id}", f"/scim/v2/Users/{user_id}", "", 200),
        ("/scim/v2/Users/a/b", "/scim/v2/Users/a%2Fb", "", 404),  # the User "a/b"
        ("/scim/v2/Users/a/b", "/scim/v2/Users/a/b", "", 404),  # no such endpoint
        ("/scim/v2/Users", "/scim/v2/Users", "/app", 404),  # not under /app/scim/v2
        ("/app/scim/v2/Users", "/app/scim/v2/Users", "/app", 200),
        ("/app/scim/v2/Users", "/app/scim/v2/Users", "", 404),  # the same, at another root
        ("/scim/v2/Users", "/scim/v2/Users/a%2Fb", "", 200),  # a path rewritten since
        ("/scim/v2x/Users", "/scim/v2x/Users", "", 404),
    ]
    for _ in range(2):
        for path, raw_path, root_path, status in targets:
            fresh = _ask(PrefixMount(ASGIApp(engine)), path, raw_path, root_path)
            assert fresh[0] == status
            for _ in range(3):
                assert _ask(mount, path, raw_path, root_path) == fresh
        for n in range(300):  # more targets than the mount keeps
            assert _ask(mount, f"/scim/v2/Users/x{n}", f"/scim/v2/Users/x{n}", "")[0] == 404
    assert json.loads(_ask(mount, *targets[0][:3])[1])["id"] == user_id


def test_each_answer_names_its_own_host_however_many_were_asked(app: Any) -> None:
    """The base URLs built for the hosts asked last are kept: ``meta.location`` still
    follows each request's ``Host``, past as many hosts as are kept, and back again."""
    user_id = _create(app)
    path = f"/scim/v2/Users/{user_id}"
    hosts = [f"h{n}.example.com" for n in range(100)] + ["example.com", "h1.example.com"]
    for host in hosts + hosts[::-1]:
        sent: list[dict[str, Any]] = []

        async def send(message: Any, sent: list[dict[str, Any]] = sent) -> None:
            sent.append(dict(message))

        scope = _scope("GET", path, [], "1.1")
        scope["headers"] = [(b"host", host.encode()), AUTH]
        asyncio.run(app(scope, None, send))
        assert sent[0]["status"] == 200
        assert json.loads(sent[1]["body"])["meta"]["location"] == f"http://{host}{path}"
