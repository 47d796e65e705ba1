"""A 10,000-member group replaced in one PUT: one event for the group, one small
``touched`` event per member, and no more memory than the same PUT without events (the
touched events are built and stored a thousand at a time)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scim2_core import ChangeEvent, Engine
from scim2_core.backends import SQLBackend
from scim2_core.events import MEMBERS_INLINE
from tests.helpers import GROUP, call, create_group

pytestmark = pytest.mark.slow

N = 10_000

MakeSQL = Callable[[], SQLBackend]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def make_sql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeSQL]:
    """Fresh SQL databases, one per call."""
    made: list[SQLBackend] = []

    def make() -> SQLBackend:
        if request.param == "sqlite":
            made.append(SQLBackend(f"sqlite:///{tmp_path / f'{len(made)}.db'}"))
        else:
            schema = request.getfixturevalue("pg_schemas")()
            made.append(SQLBackend(request.getfixturevalue("postgres_url"), schema=schema))
        return made[-1]

    yield make
    for backend in made:
        backend.close()


def _big_group(backend: SQLBackend, events: list[ChangeEvent] | None) -> tuple[Engine, int]:
    """An engine over ``backend`` with N users and an empty group (and a consumer,
    registered but not started, when ``events`` is given); the peak memory of the PUT
    that puts every user in the group."""
    engine = Engine(backend)
    if events is not None:
        engine.events.add_handler(events.append, name="app")
    users = engine.resource_types[0]
    stamp = "2026-01-01T00:00:00Z"
    meta = {"resourceType": "User", "created": stamp, "lastModified": stamp, "version": 'W/"1"'}
    rows = [
        {"schemas": [users.schema.id], "id": f"u{n:05d}", "userName": f"u{n}", "meta": meta}
        for n in range(N)
    ]
    assert backend.create_many(None, users, rows) == N
    gid = create_group(engine, "everyone")["id"]
    body: dict[str, Any] = {
        "schemas": [GROUP],
        "displayName": "everyone",
        "members": [{"value": f"u{n:05d}"} for n in range(N)],
    }
    tracemalloc.start()
    try:
        assert call(engine, "PUT", f"/Groups/{gid}", body).status == 200
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return engine, peak


def test_a_10k_member_put_stores_one_group_event_and_small_member_events(
    make_sql: MakeSQL,
) -> None:
    _, without = _big_group(make_sql(), None)
    got: list[ChangeEvent] = []
    engine, peak = _big_group(make_sql(), got)
    # Bounded: the events add no more than a thousand touched events' worth.
    assert peak < without * 1.1 + 1_000_000, (peak, without)
    engine.events.start()
    try:
        assert engine.events.wait_idle(120)
    finally:
        engine.events.stop()
    kinds: dict[str, int] = {}
    for event in got:
        kinds[event.kind] = kinds.get(event.kind, 0) + 1
    assert kinds == {"created": N + 1, "replaced": 1, "touched": N}
    (group,) = [e for e in got if e.kind == "replaced"]
    assert group.after is not None and "members" not in group.after  # > MEMBERS_INLINE
    assert len(group.members_added) == N > MEMBERS_INLINE
    touched = [e for e in got if e.kind == "touched"]
    assert {e.cause for e in touched} == {group.id}
    assert [e.id for e in touched] == [f"u{n:05d}" for n in range(N)]
    assert max(len(e.to_json()) for e in touched) < 400
    assert {e.version for e in touched} == {'W/"2"'}  # each member's new version
