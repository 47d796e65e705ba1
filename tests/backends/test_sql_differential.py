"""Differential: SQLBackend's pushed-down filters and sorts equal the reference evaluator.

Random users (with case variants, LIKE metacharacters, non-ASCII case mappings, missing,
empty and multi-valued values) and random bound filters; SQL results must equal
``compile_filter`` applied in Python, and MemoryBackend's results, on SQLite and PostgreSQL.
Every example runs in its own tenant, so one database serves the whole run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim2_core.backends import Backend, MemoryBackend, SearchQuery, Seek, SortSpec, SQLBackend
from scim2_core.filter import (
    And,
    AttrPath,
    Compare,
    Filter,
    Not,
    Or,
    Present,
    ValuePath,
    bind,
    compile_filter,
    sort_key,
)
from scim2_core.testing import ENT, RESOURCE_TYPES, USER, user

# Letters whose case mapping differs between Python and naive SQL lower(): İ (two code
# points when lowered), ß, final sigma; LIKE metacharacters and the escape characters.
ALPHABET = "aAbBzZ%_!\\ İıßΣσςé."
text = st.text(alphabet=ALPHABET, max_size=5)
stamps = st.sampled_from(
    [
        "2020-01-01T00:00:00.000Z",
        "2020-01-01T00:00:00.001Z",
        "2021-06-15T12:30:00.000Z",
        "1999-12-31T23:59:59.999Z",
    ]
)


@st.composite
def users(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(0, 7))):
        attrs: dict[str, Any] = {}
        for name in ("title", "displayName", "externalId", "nickName"):
            if draw(st.booleans()):
                attrs[name] = draw(text)
        if draw(st.booleans()):
            attrs["active"] = draw(st.booleans())
        if draw(st.booleans()):
            attrs["emails"] = draw(
                st.lists(
                    st.fixed_dictionaries(
                        {"value": text},
                        optional={
                            "type": st.sampled_from(["work", "home", "Work"]),
                            "primary": st.booleans(),
                        },
                    ),
                    max_size=3,
                )
            )
        if draw(st.booleans()):
            attrs["name"] = draw(
                st.fixed_dictionaries({}, optional={"givenName": text, "familyName": text})
            )
        if draw(st.booleans()):
            attrs[ENT] = draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "employeeNumber": text,
                        "manager": st.fixed_dictionaries({"value": text}),
                    },
                )
            )
        name = draw(text) + f"#{i}"  # unique whatever the case
        out.append(user(f"u{i}", name, created=draw(stamps), **attrs))
    return out


STRINGS = [
    ("userName", None),
    ("title", None),
    ("displayName", None),
    ("externalId", None),
    ("nickName", None),
    ("name", "givenName"),
    ("name", "familyName"),
    ("emails", "value"),
    ("emails", "type"),
    ("id", None),
]
EXT_STRINGS = [("employeeNumber", None), ("manager", "value")]


@st.composite
def leaves(draw: st.DrawFn) -> Filter:
    kind = draw(st.sampled_from(["string", "ext", "bool", "date", "present", "null"]))
    if kind in ("string", "ext"):
        urn = ENT if kind == "ext" else None
        name, sub = draw(st.sampled_from(EXT_STRINGS if urn else STRINGS))
        op = draw(st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]))
        return Compare(AttrPath(urn, name, sub), op, draw(text))
    if kind == "bool":
        path = draw(
            st.sampled_from([AttrPath(None, "active"), AttrPath(None, "emails", "primary")])
        )
        return Compare(path, draw(st.sampled_from(["eq", "ne"])), draw(st.booleans()))
    if kind == "date":
        op = draw(st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]))
        return Compare(AttrPath(None, "meta", "created"), op, draw(stamps))
    paths = [AttrPath(None, n, s) for n, s in STRINGS] + [
        AttrPath(None, "emails"),
        AttrPath(None, "name"),
        AttrPath(None, "active"),
        AttrPath(ENT, "manager"),
        AttrPath(ENT, "employeeNumber"),
    ]
    path = draw(st.sampled_from(paths))
    if kind == "present" or path.name in ("emails", "name", "manager"):
        return Present(path)  # (a complex attribute compares only by sub-attribute)
    return Compare(path, draw(st.sampled_from(["eq", "ne"])), None)


@st.composite
def email_filters(draw: st.DrawFn) -> Filter:
    inner = st.one_of(
        st.builds(
            Compare,
            st.sampled_from([AttrPath(None, "value"), AttrPath(None, "type")]),
            st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt"]),
            text,
        ),
        st.builds(Compare, st.just(AttrPath(None, "primary")), st.just("eq"), st.booleans()),
        st.builds(Present, st.sampled_from([AttrPath(None, "value"), AttrPath(None, "type")])),
    )
    tree = st.recursive(
        inner,
        lambda c: st.one_of(st.builds(And, c, c), st.builds(Or, c, c), st.builds(Not, c)),
        max_leaves=3,
    )
    return ValuePath(AttrPath(None, "emails"), draw(tree))


filters = st.recursive(
    st.one_of(leaves(), email_filters()),
    lambda c: st.one_of(st.builds(And, c, c), st.builds(Or, c, c), st.builds(Not, c)),
    max_leaves=5,
)

SORTS = [
    "userName",
    "title",
    "emails.value",
    "emails",
    "active",
    "meta.created",
    "name.givenName",
    f"{ENT}:employeeNumber",
    "externalId",
]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def sql(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SQLBackend]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("diff") / "scim.db"
        backend = SQLBackend(f"sqlite:///{path}", synchronous="NORMAL")
        schema = None
    else:
        url = request.getfixturevalue("postgres_url")
        schema = f"scim_diff_{uuid.uuid4().hex[:12]}"
        backend = SQLBackend(url, schema=schema)
    backend.bind(RESOURCE_TYPES)
    yield backend
    backend.close()
    if schema is not None:
        import psycopg

        with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as c:
            c.execute(f'DROP SCHEMA "{schema}" CASCADE')


#: A hundred examples, each with the module's database fixture.
examples_100 = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _load(sql: SQLBackend, resources: list[dict[str, Any]]) -> tuple[str, MemoryBackend]:
    tenant = uuid.uuid4().hex
    memory = MemoryBackend()
    memory.bind(RESOURCE_TYPES)
    for r in resources:
        sql.create(tenant, USER, r)
        memory.create(tenant, USER, r)
    return tenant, memory


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(resources=users(), filter=filters)
def test_filter_results_equal_the_reference(
    sql: SQLBackend, resources: list[dict[str, Any]], filter: Filter
) -> None:
    bound = bind(filter, USER)
    tenant, memory = _load(sql, resources)
    predicate = compile_filter(bound, USER)
    in_order = sorted(resources, key=lambda r: (r["meta"]["created"], r["id"]))
    expected = [r["id"] for r in in_order if predicate(r)]
    query = SearchQuery(filter=bound, count=1000)
    got = sql.search(tenant, USER, query)
    assert [r["id"] for r in got.resources] == expected, str(bound)
    assert got.total == len(expected)
    assert [r["id"] for r in memory.search(tenant, USER, query).resources] == expected


@examples_100
@given(
    resources=users(),
    sort=st.sampled_from(SORTS),
    descending=st.booleans(),
    offset=st.integers(0, 8),
    count=st.integers(0, 8),
)
def test_sort_and_paging_equal_the_reference(
    sql: SQLBackend,
    resources: list[dict[str, Any]],
    sort: str,
    descending: bool,
    offset: int,
    count: int,
) -> None:
    tenant, _ = _load(sql, resources)
    ref = USER.resolve_path(sort)
    ordered = sorted(resources, key=sort_key(ref, descending=descending), reverse=descending)
    expected = [r["id"] for r in ordered][offset : offset + count]
    query = SearchQuery(sort=SortSpec(path=ref, descending=descending), offset=offset, count=count)
    got = sql.search(tenant, USER, query)
    assert got.total == len(resources)
    assert [r["id"] for r in got.resources] == expected


def _walk(
    backend: Backend, tenant: str, query: SearchQuery, backward_from: Any = None
) -> list[str]:
    """Every id, page after page, by keyset seeks (forward, or backward from a position)."""
    seek = Seek(position=backward_from, backward=backward_from is not None)
    pages: list[list[str]] = []
    for _ in range(50):
        page = backend.search(tenant, USER, replace(query, seek=seek))
        pages.append([r["id"] for r in page.resources])
        assert (page.first is None) == (page.last is None) == (not page.resources)
        if not page.more:
            break
        edge = page.first if seek.backward else page.last
        seek = Seek(position=edge, backward=seek.backward)
    if seek.backward:
        pages.reverse()
    return [rid for ids in pages for rid in ids]


@examples_100
@given(
    resources=users(),
    sort=st.one_of(st.none(), st.sampled_from(SORTS)),
    descending=st.booleans(),
    filter=st.one_of(st.none(), filters),
    count=st.integers(1, 4),
)
def test_keyset_pages_walk_the_reference_order(
    sql: SQLBackend,
    resources: list[dict[str, Any]],
    sort: str | None,
    descending: bool,
    filter: Filter | None,
    count: int,
) -> None:
    """RFC 9865 cursors as positions: walking forward by ``seek`` gives every match once,
    in the order of an offset search, and walking backward from the last gives the same
    list; on SQLite, PostgreSQL and MemoryBackend."""
    tenant, memory = _load(sql, resources)
    spec = None if sort is None else SortSpec(path=USER.resolve_path(sort), descending=descending)
    bound = None if filter is None else bind(filter, USER)
    everything = SearchQuery(filter=bound, sort=spec, count=1000)
    expected = [r["id"] for r in memory.search(tenant, USER, everything).resources]
    query = SearchQuery(filter=bound, sort=spec, count=count)
    for backend in (sql, memory):
        assert _walk(backend, tenant, query) == expected, (sort, str(bound))
        end = backend.search(tenant, USER, replace(everything, seek=Seek()))
        if end.last is not None:
            # Backward from the last match: every match but the last, in order.
            assert _walk(backend, tenant, query, end.last) == expected[:-1]
