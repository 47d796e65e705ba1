"""Engines for the SQLAlchemy backend tests: a SQLite file and a PostgreSQL database of
their own (created once per session, dropped afterwards). Each test starts on empty tables."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "backends"))  # test_sql_differential's random filters

from sa_app import EVENT_TABLES, Base, clean  # noqa: E402

from tests.helpers import scratch_dir  # noqa: E402


@pytest.fixture(scope="session")
def sqlite_engine() -> Iterator[sa.Engine]:
    path = scratch_dir("scim2sa-") / "app.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_engine(postgres_url: str) -> Iterator[sa.Engine]:
    import psycopg

    name = f"scim2sa_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        Base.metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """Each test once on SQLite and once on PostgreSQL, on empty tables."""
    found: sa.Engine = request.getfixturevalue(
        "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    )
    clean(found)
    yield found
    clean(found)


def _drop_event_tables(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for name in EVENT_TABLES:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("DROP SEQUENCE IF EXISTS scim_outbox_seq")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def app_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """The app's engine over its own tables (empty), without the outbox and audit tables: a
    new SQLite file, or the session's PostgreSQL database emptied (the event tests and the
    CLI's)."""
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
        Base.metadata.create_all(engine)
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("pg_engine")
    clean(engine)
    _drop_event_tables(engine)
    yield engine
    clean(engine)
    _drop_event_tables(engine)
