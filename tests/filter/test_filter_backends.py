"""Every filter the parser accepts runs on every backend: MemoryBackend, SQLite, PostgreSQL.

Through the engine (the plain-dict contract), so a filter that a backend cannot run shows as
what a client would see: a 500. The depth limit (``Options.max_filter_depth``, 16) was chosen
by measuring the deepest filters SQLite runs through SQLBackend (docs/filters.md): each shape
below runs at the limit, and one level deeper is 400 ``invalidFilter``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from scim2_core import Engine, Options
from scim2_core.backends import MemoryBackend, SearchQuery, SQLBackend
from scim2_core.filter import bind, parse_filter
from scim2_core.schema import ResourceType

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BASE = "https://example.com/scim/v2"

postgres = pytest.mark.postgres


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    import psycopg

    name = f"scim_test_{uuid.uuid4().hex[:16]}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Engine]:
    if request.param == "memory":
        backend: Any = MemoryBackend()
    elif request.param == "sqlite":
        backend = SQLBackend(f"sqlite:///{tmp_path}/filters.db")
    else:
        url = request.getfixturevalue("postgres_url")
        backend = SQLBackend(url, schema=request.getfixturevalue("pg_schema"))
    engine = with_users(Engine(backend))
    yield engine
    close = getattr(backend, "close", None)
    if close is not None:
        close()


USERS: list[tuple[str, list[dict[str, Any]]]] = [
    ("ann", [{"value": "ann@example.com", "type": "work"}]),
    ("bob", [{"value": "bob@example.org", "type": "home"}, {"value": "x", "type": "work"}]),
    ("cat", []),
]


def call(
    engine: Engine, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
) -> dict[str, Any]:
    request: dict[str, Any] = {"method": method, "path": path, "base_url": BASE, "headers": {}}
    if query is not None:
        request["query"] = query
    if body is not None:
        request["headers"] = {"Content-Type": "application/scim+json"}
        request["body"] = json.dumps(body).encode()
    response = engine.handle(request)  # type: ignore[arg-type]
    return {"status": response["status"], "json": json.loads(response["body"] or b"null")}


def search(engine: Engine, text: str) -> dict[str, Any]:
    return call(engine, "GET", "/Users", query={"filter": text})


def user_names(result: dict[str, Any]) -> list[str]:
    assert result["status"] == 200, result
    return sorted(r["userName"] for r in result["json"]["Resources"])


def with_users(engine: Engine) -> Engine:
    for name, emails in USERS:
        body = {"schemas": [USER], "userName": name, "emails": emails}
        assert call(engine, "POST", "/Users", body)["status"] == 201
    return engine


def memory_engine(**options: Any) -> Engine:
    return with_users(Engine(MemoryBackend(), options=Options(**options)))


def users_rt(engine: Engine) -> ResourceType:
    return next(rt for rt in engine.resource_types if rt.name == "User")


# --- Lone surrogates: 400 invalidFilter, not a 500 from the database ----------------------


@pytest.mark.parametrize(
    "text",
    [
        r'userName eq "\ud800"',
        'userName eq "\ud800"',
        r'emails[value co "\udfff"]',
        r'userName eq "a" or emails.value sw "\udc00b"',
    ],
)
def test_lone_surrogate_in_a_filter_is_invalid_filter(engine: Engine, text: str) -> None:
    result = search(engine, text)
    assert result["status"] == 400, result
    assert result["json"]["scimType"] == "invalidFilter"
    assert "lone surrogate" in result["json"]["detail"]


def test_lone_surrogate_in_a_patch_value_filter_is_invalid(engine: Engine) -> None:
    ann = call(engine, "GET", "/Users", query={"filter": 'userName eq "ann"'})
    ann_id = ann["json"]["Resources"][0]["id"]
    body = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": r'emails[value eq "\udc00"].type', "value": "x"}],
    }
    result = call(engine, "PATCH", f"/Users/{ann_id}", body)
    assert result["status"] == 400, result
    assert result["json"]["scimType"] == "invalidPath"
    assert "lone surrogate" in result["json"]["detail"]


# --- Depth: every shape at the limit runs, one level deeper is 400 -------------------------

NE = 'emails.value ne "x"'  # the leaf whose SQL nests deepest (measured)


def alternating(depth: int, leaf: str = NE) -> str:
    """``leaf and (leaf or (leaf and ...))``: ``depth`` deep, nothing to flatten."""
    text = leaf
    for k in range(depth - 1):
        text = f"{leaf} {'and' if k % 2 else 'or'} ({text})"
    return text


def negated(depth: int, leaf: str = NE) -> str:
    """``leaf and not (leaf and not (...))``: nothing to fold."""
    text = leaf
    for k in range(depth - 1):
        text = f"{leaf} and ({text})" if k % 2 else f"not ({text})"
    return text


SHAPES: dict[str, Callable[[int], str]] = {
    "and/or": alternating,
    "not": negated,
    "value path": lambda d: f"emails[{alternating(d - 1, 'value ne ' + chr(34) + 'x' + chr(34))}]",
    "value path with not": lambda d: f"emails[{negated(d - 1, 'type pr')}]",
    "value path .value": lambda d: (
        f'emails[{alternating(d - 2, "type ne " + chr(34) + "w" + chr(34))}].value ne "x"'
    ),
}


def depth_of(text: str) -> int:
    tree: Any = parse_filter(text, max_depth=200)
    todo, deepest = [(tree, 1)], 0
    while todo:
        node, d = todo.pop()
        deepest = max(deepest, d)
        for child in ("left", "right", "operand", "filter"):
            if hasattr(node, child):
                todo.append((getattr(node, child), d + 1))
    return deepest


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_runs_at_the_depth_limit(engine: Engine, shape: str) -> None:
    limit = Options().max_filter_depth
    text = SHAPES[shape](limit)
    assert depth_of(text) == limit
    result = search(engine, text)
    assert result["status"] == 200, result
    assert user_names(result) == user_names(search(memory_engine(), text))

    deeper = SHAPES[shape](limit + 1)
    assert depth_of(deeper) == limit + 1
    result = search(engine, deeper)
    assert result["status"] == 400, result
    assert result["json"]["scimType"] == "invalidFilter"
    assert f"nested more than {limit} levels deep" in result["json"]["detail"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 40 nested "not" fold away; 27 grouped "or" are one balanced chain.
        ("not (" * 40 + 'userName eq "ann"' + ")" * 40, ["ann"]),
        ("not (" * 41 + 'userName eq "ann"' + ")" * 41, ["bob", "cat"]),
        (" or (".join(f'userName eq "{n}"' for n in ("x",) * 26 + ("bob",)) + ")" * 26, ["bob"]),
        ("(" * 150 + 'userName eq "cat"' + ")" * 150, ["cat"]),
        (
            "emails[" + "not (" * 31 + 'type eq "home"' + ")" * 31 + "]",
            ["ann", "bob"],
        ),
    ],
    ids=["40 not", "41 not", "27 grouped or", "150 parentheses", "value path, 31 not"],
)
def test_grouping_that_leaves_no_depth_runs(engine: Engine, text: str, expected: list[str]) -> None:
    assert user_names(search(engine, text)) == expected


# --- Bare values (Microsoft's SCIM validator) run on every backend ------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("userName sw a", ["ann"]),
        (
            "userName ne cat and (emails.value co example.com or emails.value co example.org)",
            ["ann", "bob"],
        ),
        ("emails[type eq work].value eq ann@example.com", ["ann"]),
        ("meta.created gt 2015-10-10T14:38:21.8617979-07:00", ["ann", "bob", "cat"]),
        ("meta.created lt 2015-10-10T14:38:21.8617979-07:00", []),
    ],
)
def test_bare_values_search_every_backend(engine: Engine, text: str, expected: list[str]) -> None:
    rt = users_rt(engine)
    query = SearchQuery(filter=bind(parse_filter(text, tolerant=True), rt))
    page = engine.backend.search(None, rt, query)
    assert sorted(r["userName"] for r in page.resources) == expected
    assert page.total == len(expected)


def test_strict_engine_refuses_bare_values() -> None:
    result = search(memory_engine(strict=True), "userName sw a")
    assert result["status"] == 400, result
    assert result["json"]["scimType"] == "invalidFilter"
    assert "which is not quoted" in result["json"]["detail"]


def test_engine_accepts_bare_values_by_default() -> None:
    engine = memory_engine()
    assert user_names(search(engine, "userName sw a")) == ["ann"]
    assert user_names(search(engine, "meta.created gt 2015-10-10T14:38:21.8617979-07:00")) == [
        "ann",
        "bob",
        "cat",
    ]
