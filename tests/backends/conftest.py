"""Shared fixtures of the backend tests.

``contract.py`` holds the suite every backend runs (``class TestX(BackendContract)`` with a
``backend`` fixture). It is not a ``test_*.py`` module, so its asserts are registered for
pytest's rewriting here, before any test module imports it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.register_assert_rewrite("contract")


# --- PostgreSQL (SQLBackend) ------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The server named by SCIM2_CORE_TEST_POSTGRES; skip if unreachable (fail if CI=true)."""
    import os

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
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for one test, dropped afterwards."""
    import uuid

    import psycopg

    name = f"scim_test_{uuid.uuid4().hex[:16]}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
