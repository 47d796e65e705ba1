"""What a hostile client sees at the HTTP edge of the raw ASGI and WSGI apps, in process.

Each case is something that used to be accepted or answered wrongly: a request framed by
both ``Content-Length`` and ``Transfer-Encoding`` (RFC 9112 §6.1), answers outside the mount
in plain text, ``%2F`` routing like ``/``, the client's ``Host`` in ``Location``, and a
body that never finishes. Real servers (uvicorn, gunicorn) repeat the important ones over
sockets in test_real_servers.py.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scim2_core import ConfigurationError, Engine, bearer_tokens
from scim2_core.asgi import ASGIApp, PrefixMount
from scim2_core.backends import MemoryBackend
from scim2_core.serving import engine_path, split_target
from scim2_core.wsgi import PrefixMount as WSGIPrefixMount
from scim2_core.wsgi import WSGIApp

TOKEN = "edge-token-0123456789"
USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "edge"}
SCIM = "application/scim+json"


def engine() -> Engine:
    return Engine(MemoryBackend(), authenticate=bearer_tokens([TOKEN]))


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def asgi(
    app: Any,
    method: str,
    target: str,
    *,
    headers: list[tuple[str, str]] | None = None,
    chunks: list[bytes] | None = None,
    hang: bool = False,
    http_version: str = "1.1",
) -> Answer:
    """One request as uvicorn would deliver it: ``path`` is ``raw_path`` decoded."""
    raw, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": http_version,
        "method": method,
        "scheme": "http",
        "path": _unquote(raw),
        "raw_path": raw.encode("ascii"),
        "root_path": "",
        "query_string": query.encode("ascii"),
        "headers": [(b"host", b"client-chosen.example")]
        + [(k.lower().encode(), v.encode()) for k, v in headers or []],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks or []) - 1 or hang}
        for i, c in enumerate(chunks or [b""])
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # a client that never sends the rest
        raise AssertionError("unreachable")

    async def send(message: Any) -> None:
        sent.append(dict(message))

    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    start, body = sent
    return Answer(
        start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body["body"]
    )


def _unquote(raw: str) -> str:
    from urllib.parse import unquote

    return unquote(raw)


AUTH = [("Authorization", f"Bearer {TOKEN}"), ("Content-Type", SCIM)]


def create(app: Any, prefix: str = "/scim/v2") -> str:
    created = asgi(app, "POST", f"{prefix}/Users", headers=AUTH, chunks=[json.dumps(USER).encode()])
    assert created.status == 201, created.body
    user_id: str = created.json()["id"]
    return user_id


def assert_scim_error(answer: Answer, status: int) -> None:
    assert answer.status == status
    assert answer.headers["content-type"] == SCIM
    body = answer.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == str(status)


# --- 1. Content-Length and Transfer-Encoding together --------------------------------------


def test_both_content_length_and_transfer_encoding_are_refused_and_closed() -> None:
    app = PrefixMount(ASGIApp(engine()))
    framing = [("Content-Length", "4"), ("Transfer-Encoding", "chunked")]
    answer = asgi(app, "POST", "/scim/v2/Users", headers=AUTH + framing, chunks=[b"{}"])
    assert_scim_error(answer, 400)
    assert answer.headers["connection"] == "close"  # RFC 9112 §6.1: MUST close
    listed = asgi(app, "GET", "/scim/v2/Users", headers=AUTH)
    assert listed.json()["totalResults"] == 0  # nothing reached the engine


def test_wsgi_refuses_both_framings() -> None:
    app = WSGIApp(engine())
    answer = wsgi(app, "POST", "/Users", extra={"HTTP_TRANSFER_ENCODING": "chunked"}, body=b"{}")
    assert_scim_error(answer, 400)


# --- 2. every answer of the app is a SCIM Error ----------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        ("GET", "/", 404),
        ("GET", "/scim/v3/Users", 404),
        ("GET", "/scim/v2x/Users", 404),
        ("GET", "/scim%2Fv2/Users", 404),  # the mount is matched on raw segments
        ("OPTIONS", "*", 400),
        ("CONNECT", "example.com:443", 400),
        ("PRI", "*", 400),  # the HTTP/2 preface's request line
    ],
)
def test_answers_outside_the_mount_are_scim_errors(method: str, target: str, status: int) -> None:
    answer = asgi(PrefixMount(ASGIApp(engine())), method, target, headers=AUTH)
    assert_scim_error(answer, status)
    if status == 400:  # not a path at all: nothing more is expected on that connection
        assert answer.headers["connection"] == "close"


def test_absolute_form_target_is_served_with_its_own_host() -> None:
    """RFC 9112 §3.2.2: a server MUST accept the absolute-form, and takes the host from it."""
    app = PrefixMount(ASGIApp(engine()))
    created = asgi(
        app,
        "POST",
        "http://scim.example.com/scim/v2/Users",
        headers=AUTH,
        chunks=[json.dumps(USER).encode()],
    )
    assert created.status == 201
    assert created.headers["location"].startswith("http://scim.example.com/scim/v2/Users/")


# --- 3. %2F never routes as / ----------------------------------------------------------------


@pytest.mark.parametrize("template", ["/scim/v2/Users%2F{id}", "/scim/v2/Users/{id}%3Fx"])
def test_encoded_separators_never_route(template: str) -> None:
    app = PrefixMount(ASGIApp(engine()))
    user_id = create(app)
    assert asgi(app, "GET", f"/scim/v2/Users/{user_id}", headers=AUTH).status == 200
    assert_scim_error(asgi(app, "GET", template.format(id=user_id), headers=AUTH), 404)


def test_a_segment_is_decoded_once() -> None:
    app = PrefixMount(ASGIApp(engine()))
    user_id = create(app)
    encoded = "".join(f"%{b:02X}" for b in user_id.encode())
    assert asgi(app, "GET", f"/scim/v2/Users/{encoded}", headers=AUTH).status == 200
    twice = quote(encoded, safe="")
    assert_scim_error(asgi(app, "GET", f"/scim/v2/Users/{twice}", headers=AUTH), 404)


@given(st.lists(st.text(min_size=1), min_size=1, max_size=4))
def test_engine_path_keeps_each_raw_segment_one_segment(segments: list[str]) -> None:
    raw = "/scim/v2/" + "/".join(quote(s, safe="") for s in segments)
    path = engine_path(raw, "/scim/v2")
    assert path is not None
    # The engine splits on "/" and cuts at "?": each raw segment stays one segment.
    assert path.split("?", 1)[0] == path
    parts = path.split("/")[1:]
    assert len(parts) == len(segments)
    assert [_unquote(p) for p in parts] == segments


@given(st.lists(st.text(min_size=1), min_size=1, max_size=4), st.sampled_from(["", "/scim/v2"]))
def test_engine_path_is_the_same_however_much_is_percent_encoded(
    segments: list[str], prefix: str
) -> None:
    """The shortcut for paths with no ``%`` agrees with decoding every byte."""

    def every_byte(text: str) -> str:
        return "".join(f"%{b:02X}" for b in text.encode())

    minimal = prefix + "/" + "/".join(quote(s, safe="") for s in segments)
    maximal = every_byte(prefix).replace("%2F", "/") + "/" + "/".join(map(every_byte, segments))
    assert engine_path(minimal, prefix) == engine_path(maximal, prefix) is not None


@given(st.text())
def test_split_target_never_raises(target: str) -> None:
    authority, path = split_target(target)
    assert path is None or path.startswith("/")
    assert authority is None or path is not None


# --- 4. a pinned base URL ignores the client's Host ------------------------------------------


def test_pinned_base_url_ignores_host_and_forwarded_headers() -> None:
    pinned = "https://scim.example.com/idp/scim/v2"
    app = PrefixMount(ASGIApp(engine(), base_url=pinned + "/", trust_proxy=True))
    forwarded = [("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Proto", "http")]
    created = asgi(
        app, "POST", "/scim/v2/Users", headers=AUTH + forwarded, chunks=[json.dumps(USER).encode()]
    )
    assert created.headers["location"].startswith(pinned + "/Users/")
    assert created.json()["meta"]["location"] == created.headers["location"]
    wsgi_created = wsgi(
        WSGIApp(engine(), base_url=pinned), "POST", "/Users", body=json.dumps(USER).encode()
    )
    assert wsgi_created.headers["location"].startswith(pinned + "/Users/")


@pytest.mark.parametrize(
    "url", ["scim.example.com", "ftp://h/scim", "https:///scim", "https://h/?a=1", "https://u@h/"]
)
def test_a_base_url_that_is_not_one_is_refused_at_construction(url: str) -> None:
    with pytest.raises(ConfigurationError):
        ASGIApp(engine(), base_url=url)
    with pytest.raises(ConfigurationError):
        WSGIApp(engine(), base_url=url)


# --- 5. a body that never finishes ---------------------------------------------------------


@pytest.mark.parametrize("http_version", ["1.1", "2"])
def test_a_half_sent_body_times_out_with_408_and_close(http_version: str) -> None:
    """HTTP/1.1 announces the body with Content-Length; HTTP/2 may stream one without."""
    app = PrefixMount(ASGIApp(engine(), body_timeout=0.2))
    headers = [*AUTH, ("Content-Length", "100")] if http_version == "1.1" else AUTH
    answer = asgi(
        app,
        "POST",
        "/scim/v2/Users",
        headers=headers,
        chunks=[b'{"userN'],
        hang=True,
        http_version=http_version,
    )
    assert_scim_error(answer, 408)
    assert answer.headers["connection"] == "close"


# --- 8. WSGI: a prefix mount answering SCIM Errors, raw paths from the server ----------------


def wsgi(
    app: Any, method: str, path: str, *, extra: dict[str, str] | None = None, body: bytes = b""
) -> Answer:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": _unquote(path).encode("utf-8").decode("latin-1"),
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "client-chosen.example",
        "HTTP_AUTHORIZATION": f"Bearer {TOKEN}",
        "CONTENT_TYPE": SCIM,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "RAW_URI": path,  # what gunicorn passes on
        **(extra or {}),
    }
    seen: list[Any] = []
    out = b"".join(
        app(environ, lambda status, headers, exc_info=None: seen.append((status, headers)))
    )
    [(status, headers)] = seen
    return Answer(int(status.split()[0]), {k.lower(): v for k, v in headers}, out)


@pytest.mark.parametrize("path", ["/", "/scim/v3/Users", "/scim%2Fv2/Users"])
def test_wsgi_prefix_mount_answers_scim_errors_outside(path: str) -> None:
    answer = wsgi(WSGIPrefixMount(WSGIApp(engine())), "GET", path)
    assert_scim_error(answer, 404)


def test_wsgi_routes_on_the_raw_path() -> None:
    app = WSGIPrefixMount(WSGIApp(engine()))
    created = wsgi(app, "POST", "/scim/v2/Users", body=json.dumps(USER).encode())
    assert created.headers["location"].startswith("http://client-chosen.example/scim/v2/Users/")
    user_id = created.json()["id"]
    assert wsgi(app, "GET", f"/scim/v2/Users/{user_id}").status == 200
    assert_scim_error(wsgi(app, "GET", f"/scim/v2/Users%2F{user_id}"), 404)


def test_wsgi_prefix_mount_passes_path_info_bytes_through_unchanged() -> None:
    """PEP 3333 strings carry bytes as latin-1; bytes that are not UTF-8 are not rewritten."""
    seen: list[dict[str, Any]] = []

    def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ)
        start_response("204 No Content", [])
        return [b""]

    environ = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/scim/v2/Users/\xff\xe9"}
    WSGIPrefixMount(inner)(environ, lambda status, headers, exc_info=None: None)  # type: ignore[arg-type]
    assert (seen[0]["SCRIPT_NAME"], seen[0]["PATH_INFO"]) == ("/scim/v2", "/Users/\xff\xe9")


# -- the bytes of a JSON answer: the same with or without orjson ---------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()  # NaN, infinities, 1e-07, 5e-324, 1e+16: where orjson writes otherwise
    | st.text(),  # lone surrogates, non-ASCII, "e-", "null"
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(_JSON)
def test_a_json_answer_is_the_same_bytes_with_or_without_orjson(value: Any) -> None:
    from scim2_core._responses import encode_json, encode_json_stdlib

    out = encode_json(value)
    assert out == encode_json_stdlib(value)
    out.decode("utf-8")  # RFC 8259 §8.1: UTF-8, whatever the strings hold
    if out != b"NaN" and "NaN" not in out.decode() and "Infinity" not in out.decode():
        assert json.loads(out) == value or value != value


def test_the_json_encoders_agree_on_what_orjson_writes_otherwise() -> None:
    from scim2_core._responses import encode_json, encode_json_stdlib

    for value in (1.5e-7, 1e-5, 1e16, 2**70, "\ud800", "caf\u00e9", float("nan"), [None]):
        assert encode_json(value) == encode_json_stdlib(value), value
    assert encode_json({"a": "caf\u00e9"}) == '{"a":"café"}'.encode()
    assert encode_json("\ud800") == b'"\\ud800"'  # unencodable in UTF-8: escaped


_HEADER_NAMES = st.sampled_from(
    ["Content-Type", "content-type", "ETag", "Location", "X-Request-Id", "Content-Length", "Allow"]
)


@given(
    st.sampled_from([100, 200, 201, 204, 304, 400, 412, 500]),
    st.dictionaries(_HEADER_NAMES, st.sampled_from([SCIM, "text/plain", "7", 'W/"1"'])),
    st.binary(max_size=40),
)
def test_asgi_headers_out_are_the_kit_headers_lower_cased(
    status: int, headers: dict[str, str], body: bytes
) -> None:
    """The ASGI app's one-pass headers are exactly ``outgoing_headers`` as ASGI sends them
    (RFC 9110 §8.6: no Content-Length on 1xx, 204, nor here on 304)."""
    from scim2_core.serving import outgoing_headers
    from scim2_core.serving._targets import asgi_response_headers

    response = {"status": status, "headers": headers, "body": body}
    expected = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in outgoing_headers(response)  # type: ignore[arg-type]
    ]
    assert asgi_response_headers(response) == expected  # type: ignore[arg-type]
