"""Fixtures shared by every test folder: the PostgreSQL server the ``postgres`` tests use, and
``each_backend``, which runs a test on MemoryBackend and on SQLBackend over SQLite.

PostgreSQL tests read ``SCIM2_CORE_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``). When the server cannot be reached they skip with
the reason, except when ``CI=true``: then they fail, so CI never passes without having run them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import helpers

# What the tests check never depends on a flush to disk: no test crashes the machine, and a
# process killed with SIGKILL (tests/compliance/test_serve_durability.py) leaves what it
# committed in the kernel's page cache and in PostgreSQL. Waiting for those flushes was half
# of the suite's time (an SQLite commit ~6 ms, 28 commits per Django contract test), so:
# - every PostgreSQL session the tests open, and the servers they start (libpq reads
#   PGOPTIONS), commits without waiting for its WAL flush (``synchronous_commit=off``: a
#   setting of the session only; the server's and the databases' settings are untouched, and
#   isolation, locks and constraints are the same);
# - the tests' temporary files (``tmp_path``: the SQLite databases) live on a RAM file system
#   when the machine has one (pytest_configure below), where fsync returns at once.
# The benchmarks run outside the tests and keep every flush.
os.environ.setdefault("PGOPTIONS", "-c synchronous_commit=off")

_made_basetemp: list[Path] = []


@pytest.hookimpl(tryfirst=True)  # before pytest's tmp_path factory reads --basetemp
def pytest_configure(config: pytest.Config) -> None:
    """``tmp_path`` on the RAM file system when there is one (``helpers.ram_dir``), unless
    ``--basetemp`` is given (xdist's workers get theirs from this process, below it)."""
    ram = helpers.ram_dir()
    if config.option.basetemp or ram is None:
        return
    made = Path(tempfile.mkdtemp(prefix="scim2-core-tests-", dir=ram))
    _made_basetemp.append(made)
    config.option.basetemp = str(made)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give the RAM back (pytest keeps a run's files on disk, where they cost nothing)."""
    for made in _made_basetemp:
        shutil.rmtree(made, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The server named by SCIM2_CORE_TEST_POSTGRES; skip if unreachable (fail if CI=true)."""
    url = os.environ.get("SCIM2_CORE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3):
            pass
    except Exception as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL at {url} is unreachable and CI=true: {exc}")
        pytest.skip(f"PostgreSQL at {url} is unreachable: {exc}")
    return url


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database for one test, dropped afterwards.

    For what takes only a URL (``scim2-core serve --db``), where a schema cannot be named.
    """
    import psycopg

    name = f"scim2core_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["memory", "sqlite"])
def each_backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Run the test once on MemoryBackend and once on SQLBackend over SQLite files.

    The test's backends come from ``tests.helpers.make_backend`` (and ``make_engine``): on
    ``sqlite`` each call opens a new database file under the test's ``tmp_path``, with the
    backend's default options, and closes it after the test. Used (autouse) by
    tests/engine and tests/bulk, so the engine's own suite holds on both backends.
    """
    if request.param == "memory":
        yield "memory"
        return
    from scim2_core.backends import SQLBackend

    opened: list[SQLBackend] = []

    def sqlite_backend() -> SQLBackend:
        backend = SQLBackend(f"sqlite:///{tmp_path / f'scim-{len(opened)}.db'}")
        opened.append(backend)
        return backend

    monkeypatch.setattr(helpers, "backend_factory", sqlite_backend)
    try:
        yield "sqlite"
    finally:
        for backend in opened:
            backend.close()
