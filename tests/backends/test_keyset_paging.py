"""RFC 9865 cursors while the directory changes: paging through ``Engine.handle`` with
cursors, with users created and deleted between pages, never skips nor repeats a user that
existed throughout (on MemoryBackend, SQLite and PostgreSQL), in either direction."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim2_core import Engine
from scim2_core.backends import Backend, MemoryBackend, SQLBackend
from tests.helpers import call, user_body

Factory = Callable[[], Backend]

SORTS = [None, "userName", "title", "active", "meta.created", "emails.value"]
FILTERS = [None, "title pr", 'userName sw "u"', 'active eq true or title eq "b"']


@pytest.fixture(
    scope="module",
    params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def new_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Factory]:
    """Makes a new, empty backend per example; each closes when the next is made (an
    example uses one), and PostgreSQL schemas are dropped after the module."""
    opened: list[SQLBackend] = []
    schemas: list[str] = []

    def make() -> Backend:
        while opened:
            opened.pop().close()
        if request.param == "memory":
            return MemoryBackend()
        if request.param == "sqlite":
            path: Path = tmp_path_factory.mktemp("keyset") / "scim.db"
            backend = SQLBackend(f"sqlite:///{path}", synchronous="NORMAL")
        else:
            schemas.append(f"scim_keyset_{uuid.uuid4().hex[:12]}")
            backend = SQLBackend(request.getfixturevalue("postgres_url"), schema=schemas[-1])
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()
    if schemas:
        import psycopg

        with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as c:
            for schema in schemas:
                c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


names = itertools.count()

users = st.fixed_dictionaries(
    {"prefix": st.sampled_from(["u", "U", "x"])},
    optional={
        "title": st.sampled_from(["a", "b", "B", "c"]),
        "active": st.booleans(),
        "emails": st.lists(
            st.fixed_dictionaries({"value": st.sampled_from(["m@x", "N@x", "o@x"])}),
            min_size=1,
            max_size=1,
        ),
    },
)
#: What happens after each of the first 30 pages: a user deleted (the n-th of those alive,
#: modulo their number) or created. Drawn up front, so that what is drawn does not depend
#: on the ids. Then the walk goes on to the end with no change: with changes after every
#: page, a page of one and a user created per page (placed after the cursor) it never ends.
changes = st.lists(
    st.lists(st.one_of(st.integers(0, 50), users), max_size=3), min_size=30, max_size=30
)


def _create(engine: Engine, spec: dict[str, Any]) -> str:
    extra = {k: v for k, v in spec.items() if k != "prefix"}
    created = call(
        engine, "POST", "/Users", user_body(f"{spec['prefix']}{next(names):05d}", **extra)
    )
    assert created.status == 201, created
    return str(created.json["id"])


def _ids(engine: Engine, query: dict[str, str]) -> list[str]:
    """Every matching id, in the query's order (one page)."""
    result = call(engine, "GET", "/Users", query={**query, "count": "1000"})
    assert result.status == 200, result
    return [r["id"] for r in result.json["Resources"]]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    initial=st.lists(users, max_size=12),
    between=changes,
    count=st.integers(1, 4),
    sort=st.sampled_from(SORTS),
    descending=st.booleans(),
    filter=st.sampled_from(FILTERS),
    backward=st.booleans(),
)
def test_cursor_pages_never_skip_nor_repeat_a_stable_user(
    new_backend: Factory,
    initial: list[dict[str, Any]],
    between: list[list[int | dict[str, Any]]],
    count: int,
    sort: str | None,
    descending: bool,
    filter: str | None,
    backward: bool,
) -> None:
    engine = Engine(new_backend())
    ids = [_create(engine, spec) for spec in initial]
    query: dict[str, str] = {"count": str(count)}
    if sort is not None:
        query["sortBy"] = sort
        query["sortOrder"] = "descending" if descending else "ascending"
    if filter is not None:
        query["filter"] = filter
    start = ""
    tail: list[str] = []
    if backward:
        # Walk to the last page first; then travel back with previousCursor.
        page = call(engine, "GET", "/Users", query={**query, "cursor": ""}).json
        while "nextCursor" in page:
            page = call(engine, "GET", "/Users", query={**query, "cursor": page["nextCursor"]}).json
        start = page.get("previousCursor", "")
        if not start:
            return
        tail = [r["id"] for r in page["Resources"]]
    alive = list(ids)
    deleted: set[str] = set()
    seen: list[str] = []
    cursor: str | None = start
    follow = "previousCursor" if backward else "nextCursor"
    for step in itertools.count():
        if cursor is None:
            break
        result = call(engine, "GET", "/Users", query={**query, "cursor": cursor})
        assert result.status == 200, result
        page_ids = [r["id"] for r in result.json["Resources"]]
        seen.extend(reversed(page_ids) if backward else page_ids)
        cursor = result.json.get(follow)
        # Between the first pages: users come and go.
        for change in between[step] if step < len(between) else []:
            if isinstance(change, int) and alive:
                gone = alive.pop(change % len(alive))
                assert call(engine, "DELETE", f"/Users/{gone}").status == 204
                deleted.add(gone)
            elif isinstance(change, dict):
                alive.append(_create(engine, change))
    if backward:
        seen.reverse()
    assert len(seen) == len(set(seen)), "a user was repeated"
    stable = set(ids) - deleted
    now = _ids(engine, query)
    expected = [rid for rid in now if rid in stable and rid not in tail]
    # Every stable match, once, in the query's order (new ones may be among them).
    assert [rid for rid in seen if rid in stable] == expected
