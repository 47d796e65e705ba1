"""Any HTTP request through the raw ASGI and WSGI apps gets a well-formed SCIM answer."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from scim2_core import Engine, Options, bearer_tokens
from scim2_core.asgi import ASGIApp
from scim2_core.backends import MemoryBackend
from scim2_core.wsgi import WSGIApp

ENGINE = Engine(
    MemoryBackend(), authenticate=bearer_tokens(["t"]), options=Options(max_body_bytes=256)
)
ASGI = ASGIApp(ENGINE)
WSGI = WSGIApp(ENGINE)

segments = st.lists(
    st.one_of(
        st.sampled_from(["Users", "Groups", "Schemas", ".search", "Bulk", "Me", "", ".."]),
        st.text(max_size=12),
    ),
    max_size=4,
)
requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
        "path": segments.map(lambda parts: "/" + "/".join(parts)),
        "query": st.dictionaries(
            st.sampled_from(["filter", "count", "startIndex", "attributes", "sortBy", "x"]),
            st.text(max_size=20),
            max_size=3,
        ),
        "auth": st.sampled_from(["Bearer t", "Bearer u", "", "Basic dA=="]),
        "ctype": st.sampled_from(["application/scim+json", "application/json", "text/plain", ""]),
        "body": st.one_of(st.binary(max_size=300), st.just(b'{"schemas":[]}')),
    }
)


def check(method: str, status: int, headers: dict[str, str], body: bytes) -> None:
    assert 200 <= status < 600
    if status in (204, 304):
        assert body == b""
        return
    assert headers["content-type"].startswith("application/scim+json")
    if method == "HEAD":  # RFC 9110 §9.3.2: no content; Content-Length is what GET would send
        assert body == b""
        return
    assert int(headers["content-length"]) == len(body)
    document = json.loads(body)
    assert document["schemas"]
    if status >= 400:
        assert document["status"] == str(status)


@settings(max_examples=150, deadline=None)
@given(requests)
def test_asgi_any_request(r: dict[str, Any]) -> None:
    headers = [(b"host", b"h")]
    if r["auth"]:
        headers.append((b"authorization", r["auth"].encode()))
    if r["ctype"]:
        headers.append((b"content-type", r["ctype"].encode()))
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in r["query"].items())
    scope = {
        "type": "http",
        "method": r["method"],
        "scheme": "http",
        "path": "/scim/v2" + r["path"],
        "root_path": "/scim/v2",
        "query_string": query.encode(),
        "headers": headers,
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": r["body"], "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(ASGI(scope, receive, send))  # type: ignore[arg-type]
    start, body = sent
    got = {k.decode(): v.decode() for k, v in start["headers"]}
    check(r["method"], start["status"], got, body["body"])


@settings(max_examples=150, deadline=None)
@given(requests)
def test_wsgi_any_request(r: dict[str, Any]) -> None:
    environ = {
        "REQUEST_METHOD": r["method"],
        "SCRIPT_NAME": "/scim/v2",
        "PATH_INFO": r["path"].encode("utf-8", "surrogatepass").decode("latin-1"),
        "QUERY_STRING": "&".join(f"{quote(k)}={quote(v)}" for k, v in r["query"].items()),
        "HTTP_HOST": "h",
        "HTTP_AUTHORIZATION": r["auth"],
        "CONTENT_TYPE": r["ctype"],
        "CONTENT_LENGTH": str(len(r["body"])),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(r["body"]),
    }
    seen: list[tuple[str, list[tuple[str, str]]]] = []
    body = b"".join(WSGI(environ, lambda s, h, x=None: seen.append((s, h))))  # type: ignore[arg-type,func-returns-value]
    [(status, headers)] = seen
    check(r["method"], int(status.split()[0]), {k.lower(): v for k, v in headers}, body)
