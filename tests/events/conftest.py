"""Fixtures of the event tests: an engine over each backend with an outbox."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scim2_core import ChangeEvent, Engine
from scim2_core.backends import Backend, MemoryBackend, SQLBackend

from .receiver import Receiver

MakeBackend = Callable[[], Backend]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeBackend]:
    """A factory of backends sharing one store (one SQLite file, one PostgreSQL schema;
    each MemoryBackend is its own store)."""
    made: list[Backend] = []
    if request.param == "memory":

        def make() -> Backend:
            made.append(MemoryBackend())
            return made[-1]

    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'scim.db'}"

        def make() -> Backend:
            made.append(SQLBackend(url, synchronous="NORMAL"))
            return made[-1]

    else:
        base = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("pg_schemas")()

        def make() -> Backend:
            made.append(SQLBackend(base, schema=schema))
            return made[-1]

    yield make
    for backend in made:
        close = getattr(backend, "close", None)
        if callable(close):
            close()


@pytest.fixture
def pg_schemas(postgres_url: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh PostgreSQL schema names (on ``postgres_url``), each dropped
    after the test (after the fixtures that use it closed their backends)."""
    made: list[str] = []

    def new() -> str:
        made.append(f"scim_test_{uuid.uuid4().hex[:16]}")
        return made[-1]

    yield new
    if made:
        import psycopg

        with psycopg.connect(postgres_url, autocommit=True) as conn:
            for name in made:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    """Engines a test made: their delivery threads and audit writers are stopped
    afterwards (before the store's tables are dropped: a writer still running would hold
    the drop back)."""
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.events.stop()
        engine.audit.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local webhook receiver, closed afterwards."""
    r = Receiver()
    yield r
    r.close()


def listening(
    backend: Backend, engines: list[Engine], name: str = "test"
) -> tuple[Engine, list[ChangeEvent]]:
    """An engine over ``backend`` whose handler ``name`` collects every event delivered
    (delivery started; stopped by the ``engines`` fixture)."""
    engine = Engine(backend)
    engines.append(engine)
    got: list[ChangeEvent] = []
    engine.events.add_handler(got.append, name=name)
    engine.events.start()
    return engine, got
