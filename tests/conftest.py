"""Fixtures shared by every test folder: the PostgreSQL server the ``postgres`` tests use.

PostgreSQL tests read ``SCIM2_CORE_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``). When the server cannot be reached they skip with
the reason, except when ``CI=true``: then they fail, so CI never passes without having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest


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
