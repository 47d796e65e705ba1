"""Integer and decimal attributes: SQL comparisons equal MemoryBackend's, on every database.

RFC 7644 §3.4.2.2: "gt", "ge", "lt", "le" compare integers and decimals numerically; "eq"
and "ne" compare values; "pr" tests presence. The User and Group schemas have no number
attribute, so a custom type holds integers, decimals, a multi-valued integer and numbers
inside a multi-valued complex attribute.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim2_core.backends import Backend, MemoryBackend, SearchQuery, SortSpec, SQLBackend
from scim2_core.filter import bind, parse_filter
from scim2_core.schema import Attribute, ResourceType, Schema

METER_URN: Final = "urn:example:params:scim:schemas:2.0:Meter"
METER: Final = ResourceType(
    name="Meter",
    endpoint="/Meters",
    schema=Schema(
        id=METER_URN,
        name="Meter",
        attributes=(
            Attribute(name="reading", type="integer"),
            Attribute(name="weight", type="decimal"),
            Attribute(name="codes", type="integer", multi_valued=True),
            Attribute(
                name="samples",
                type="complex",
                multi_valued=True,
                sub_attributes=(
                    Attribute(name="n", type="integer"),
                    Attribute(name="x", type="decimal"),
                ),
            ),
        ),
    ),
)


def meter(id: str, **attrs: Any) -> dict[str, Any]:
    return {
        "schemas": [METER_URN],
        "id": id,
        **attrs,
        "meta": {
            "resourceType": "Meter",
            "created": f"2020-01-01T00:00:00.00{id[-1]}Z",
            "lastModified": "2020-01-01T00:00:00.000Z",
            "version": 'W/"1"',
        },
    }


METERS: Final = [
    meter("m0"),
    meter("m1", reading=-5, weight=-0.5, codes=[-1, 7], samples=[{"n": 1, "x": 0.25}]),
    meter("m2", reading=0, weight=0.0, codes=[0], samples=[{"n": 0}, {"x": -2.5}]),
    meter("m3", reading=3, weight=2.5, codes=[3, 30], samples=[{"n": 3, "x": 3.0}]),
    meter("m4", reading=2**53 + 1, weight=1e20, codes=[], samples=[]),
    meter("m5", reading=10, weight=10, codes=[10]),
]

#: (filter, ids in the default order): what RFC 7644 §3.4.2.2 says, written out.
CASES: Final = [
    ("reading eq 3", ["m3"]),
    ("reading eq 3.0", ["m3"]),
    ("reading ne 3", ["m0", "m1", "m2", "m4", "m5"]),
    ("reading gt 3", ["m4", "m5"]),
    ("reading ge 3", ["m3", "m4", "m5"]),
    ("reading lt 0", ["m1"]),
    ("reading le 0", ["m1", "m2"]),
    ("reading gt 2.5", ["m3", "m4", "m5"]),
    ("reading gt 9007199254740992", ["m4"]),
    ("reading pr", ["m1", "m2", "m3", "m4", "m5"]),
    ("not (reading pr)", ["m0"]),
    ("weight eq 10", ["m5"]),
    ("weight eq 0", ["m2"]),
    ("weight gt 2.4", ["m3", "m4", "m5"]),
    ("weight lt -0.25", ["m1"]),
    ("weight ge 1e20", ["m4"]),
    ("weight le 0", ["m1", "m2"]),
    ("weight ne 2.5", ["m0", "m1", "m2", "m4", "m5"]),
    ("codes eq 30", ["m3"]),
    ("codes gt 7", ["m3", "m5"]),
    ("codes lt 0", ["m1"]),
    ("codes ne 0", ["m0", "m1", "m3", "m4", "m5"]),
    ("codes pr", ["m1", "m2", "m3", "m5"]),
    ("samples.n ge 1", ["m1", "m3"]),
    ("samples.x lt 0", ["m2"]),
    ("samples[n eq 0 or x gt 2]", ["m2", "m3"]),
    ("samples[x pr]", ["m1", "m2", "m3"]),
    ("samples pr", ["m1", "m2", "m3"]),
]

OPS: Final = ("eq", "ne", "gt", "ge", "lt", "le")
PATHS: Final = ("reading", "weight", "codes", "samples.n", "samples.x")


@pytest.fixture(
    scope="module",
    params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def meters(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """The meters on one backend (memory, SQLite, PostgreSQL), written once per module."""
    schema = None
    backend: Backend
    if request.param == "memory":
        backend = MemoryBackend()
    elif request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("numbers") / "scim.db"
        backend = SQLBackend(f"sqlite:///{path}", synchronous="NORMAL")
    else:
        schema = f"scim_num_{uuid.uuid4().hex[:12]}"
        backend = SQLBackend(request.getfixturevalue("postgres_url"), schema=schema)
    backend.bind([METER])
    for m in METERS:
        backend.create(None, METER, m)
    yield backend
    if isinstance(backend, SQLBackend):
        backend.close()
    if schema is not None:
        import psycopg

        with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as c:
            c.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def reference() -> MemoryBackend:
    backend = MemoryBackend()
    backend.bind([METER])
    for m in METERS:
        backend.create(None, METER, m)
    return backend


def ids(backend: Backend, filter: str | None, sort: str | None = None) -> list[str]:
    query = SearchQuery(
        filter=bind(parse_filter(filter), METER) if filter else None,
        sort=SortSpec(path=METER.resolve_path(sort)) if sort else None,
    )
    return [r["id"] for r in backend.search(None, METER, query).resources]


@pytest.mark.parametrize(("filter", "expected"), CASES)
def test_number_filters(meters: Backend, filter: str, expected: list[str]) -> None:
    assert ids(meters, filter) == expected


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("literal", ["-1", "0", "2.5", "3", "10.0", "1e20"])
def test_every_operator_equals_memory(
    meters: Backend, reference: MemoryBackend, path: str, op: str, literal: str
) -> None:
    filter = f"{path} {op} {literal}"
    assert ids(meters, filter) == ids(reference, filter)


@pytest.mark.parametrize("path", ["reading", "weight"])
def test_sorting_by_a_number_is_numeric(meters: Backend, path: str) -> None:
    # RFC 7644 §3.4.2.3: sorted by the value; resources without one sort last.
    assert ids(meters, None, sort=path) == ["m1", "m2", "m3", "m5", "m4", "m0"]


numbers = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False).map(lambda f: round(f, 3)),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    values=st.lists(st.one_of(st.none(), numbers), min_size=1, max_size=6),
    op=st.sampled_from(OPS),
    literal=numbers,
)
def test_random_numbers_compare_as_in_memory(
    meters: Backend, values: list[int | float | None], op: str, literal: int | float
) -> None:
    if not isinstance(meters, SQLBackend):
        return
    tenant = uuid.uuid4().hex
    memory = MemoryBackend()
    memory.bind([METER])
    for i, v in enumerate(values):
        attrs = {} if v is None else {"reading": int(v), "weight": v}
        for backend in (meters, memory):
            backend.create(tenant, METER, meter(f"r{i}", **attrs))
    for path in ("reading", "weight"):
        query = SearchQuery(filter=bind(parse_filter(f"{path} {op} {literal!r}"), METER))
        got = [r["id"] for r in meters.search(tenant, METER, query).resources]
        want = [r["id"] for r in memory.search(tenant, METER, query).resources]
        assert got == want
