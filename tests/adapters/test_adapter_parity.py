"""One SCIM conversation, played through every way of serving the engine.

Each adapter gets a fresh engine (MemoryBackend, a bearer token, a 4 KiB body limit) and the
same requests; every adapter must give the same statuses, engine headers and bodies (ids
and timestamps normalised), and each answer must be what a SCIM client expects.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from adapter_clients import ADAPTERS, HOST, PREFIX, Normaliser, Reply, Send

from scim2_core import Engine, Options, ScimError, bearer_tokens
from scim2_core.backends import MemoryBackend
from scim2_core.serving import error_response

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/scim+json", **AUTH}
LIMIT = 4096
USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "emails": [{"value": "bjensen@example.com", "primary": True}],
}
PATCH = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "path": "displayName", "value": "Babs Jensen"}],
}

#: (label, method, target, headers, body, expected status). ``{id}`` is the created user.
STEPS: list[tuple[str, str, str, dict[str, str], bytes, int]] = [
    ("create", "POST", "/Users", JSON, json.dumps(USER).encode(), 201),
    ("get", "GET", "/Users/{id}", AUTH, b"", 200),
    ("filter", "GET", '/Users?filter=userName%20eq%20"bjensen"&count=5&count=1', AUTH, b"", 200),
    ("filter-miss", "GET", '/Users?filter=userName+eq+"nobody"', AUTH, b"", 200),
    ("trailing-slash", "GET", "/Users/", AUTH, b"", 200),
    ("patch", "PATCH", "/Users/{id}", JSON, json.dumps(PATCH).encode(), 200),
    ("unknown-id", "GET", "/Users/no-such-id", AUTH, b"", 404),
    ("no-token", "GET", "/Users", {}, b"", 401),
    ("wrong-token", "GET", "/Users/{id}", {"Authorization": "Bearer nope"}, b"", 401),
    ("too-large", "POST", "/Users", JSON, b" " * (LIMIT + 1), 413),
    ("discovery", "GET", "/ServiceProviderConfig", {}, b"", 200),
    ("unknown-endpoint", "GET", "/Nothing", AUTH, b"", 404),
    ("delete", "DELETE", "/Users/{id}", AUTH, b"", 204),
    ("gone", "GET", "/Users/{id}", AUTH, b"", 404),
]


def make_engine() -> Engine:
    return Engine(
        MemoryBackend(),
        authenticate=bearer_tokens([TOKEN]),
        options=Options(max_body_bytes=LIMIT),
    )


def play(send: Send) -> list[tuple[str, Reply]]:
    replies: list[tuple[str, Reply]] = []
    rid = ""
    for label, method, target, headers, body, _ in STEPS:
        reply = send(method, PREFIX + target.replace("{id}", rid), headers, body)
        if label == "create" and reply.status == 201:
            rid = reply.json()["id"]
        replies.append((label, reply))
    return replies


_transcripts: dict[str, list[Any]] = {}


def transcript(adapter: str) -> list[Any]:
    if adapter not in _transcripts:
        normalise = Normaliser()
        _transcripts[adapter] = [
            (label, *normalise(reply)) for label, reply in play(ADAPTERS[adapter](make_engine()))
        ]
    return _transcripts[adapter]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_conversation_answers(adapter: str) -> None:
    replies = dict(play(ADAPTERS[adapter](make_engine())))
    assert {label: r.status for label, r in replies.items()} == {s[0]: s[5] for s in STEPS}

    created = replies["create"]
    rid = created.json()["id"]
    location = f"http://{HOST}{PREFIX}/Users/{rid}"
    assert created.headers["location"] == location
    assert created.json()["meta"]["location"] == location
    assert created.headers["etag"] == created.json()["meta"]["version"]
    assert replies["get"].json()["userName"] == "bjensen"
    assert replies["filter"].json()["totalResults"] == 1
    assert replies["filter"].json()["itemsPerPage"] == 1  # count=5 first: one match
    assert replies["filter-miss"].json()["totalResults"] == 0
    assert replies["trailing-slash"].json()["totalResults"] == 1
    assert replies["patch"].json()["displayName"] == "Babs Jensen"
    assert replies["no-token"].headers["www-authenticate"].startswith("Bearer")
    too_large = replies["too-large"]
    assert too_large.headers["content-type"].startswith("application/scim+json")
    assert too_large.json()["status"] == "413"
    assert replies["delete"].body == b""
    assert "content-type" not in replies["delete"].headers
    if adapter != "django":  # see Normaliser: Django's CommonMiddleware adds one
        assert "content-length" not in replies["delete"].headers
    for label, reply in replies.items():
        if "content-length" in reply.headers:
            assert int(reply.headers["content-length"]) == len(reply.body), label
        if reply.status != 204:
            assert reply.headers["content-type"].startswith("application/scim+json"), label
            assert reply.json()["schemas"], label


@pytest.mark.parametrize("adapter", [a for a in ADAPTERS if a != "asgi"])
def test_same_conversation_as_raw_asgi(adapter: str) -> None:
    assert transcript(adapter) == transcript("asgi")


def test_adapter_413_is_the_engine_413() -> None:
    """The 413 an adapter gives before reading is byte for byte the engine's own 413."""
    engine = make_engine()
    big = b" " * (LIMIT + 1)
    from_engine = engine.handle({"method": "POST", "path": "/Users", "headers": JSON, "body": big})
    from_adapter = ADAPTERS["asgi"](engine)("POST", PREFIX + "/Users", JSON, big)
    assert (from_adapter.status, from_adapter.body) == (413, from_engine["body"])


def _error_classes(root: type[ScimError] = ScimError) -> list[type[ScimError]]:
    found = [root]
    for sub in root.__subclasses__():
        found += _error_classes(sub)
    return found


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        ("GET", "/Users", {}, b""),  # 401 with WWW-Authenticate
        ("GET", "/Users/nope", AUTH, b""),  # 404
        ("GET", "/Users?filter=userName%20zz", AUTH, b""),  # 400 invalidFilter
        ("POST", "/Users", JSON, b"{not json"),  # 400 invalidSyntax
        ("POST", "/Users", JSON, b" " * (LIMIT + 1)),  # 413
    ],
)
def test_error_response_renders_like_the_engine(
    method: str, path: str, headers: dict[str, str], body: bytes
) -> None:
    """``error_response`` (what adapters answer with before the engine runs) gives, for
    the same error, byte for byte what the engine gives."""
    from urllib.parse import parse_qsl, urlsplit

    target = urlsplit(path)
    from_engine = make_engine().handle(
        {
            "method": method,
            "path": target.path,
            "query": dict(parse_qsl(target.query)),
            "headers": headers,
            "body": body,
        }
    )
    sent = json.loads(from_engine["body"])
    [cls] = [
        c
        for c in _error_classes()
        if str(c.status) == sent["status"] and c.scim_type == sent.get("scimType")
    ][-1:]
    extra = {k: v for k, v in from_engine["headers"].items() if k.lower() != "content-type"}
    assert error_response(cls(sent["detail"], headers=extra)) == from_engine
