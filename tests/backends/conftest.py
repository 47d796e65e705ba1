"""Shared fixtures of the backend tests.

:mod:`scim2_core.testing` holds the suite every backend runs (``class TestX(BackendContract)``
with a ``backend`` fixture). It is not a test module, so its asserts are registered for
pytest's rewriting here, before any test module imports it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.register_assert_rewrite("scim2_core.testing")


# --- PostgreSQL (SQLBackend) ------------------------------------------------------------


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for one test, dropped afterwards."""
    import uuid

    import psycopg

    name = f"scim_test_{uuid.uuid4().hex[:16]}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
