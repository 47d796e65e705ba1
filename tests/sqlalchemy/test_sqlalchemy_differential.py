"""Differential: SQLAlchemyBackend's filters, sorts and pages equal MemoryBackend's.

Random users (case variants, LIKE metacharacters, missing values, several emails of which
the first ``work`` one lives in a field of the app's model, extension attributes kept as
extras) and random bound filters from ``tests/backends/test_sql_differential.py``; the
results computed in the database must equal MemoryBackend's and ``compile_filter``'s, on
SQLite and PostgreSQL.

Two differences are by design and kept out of the data (see docs/guide-sqlalchemy-models.md):
an app's NOT NULL text column stores "no value" as ``""``, so an empty string in a mapped attribute
reads back unassigned; and caseExact=false comparisons on the app's fields fold case with
the database's ``lower()`` (ASCII-only on SQLite), so mapped values here are ASCII.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orm_differential import (
    USER_FIELDS,
    assert_filter_equals_memory,
    assert_page_equals_sorted,
    assert_reads_back,
    users,
)
from sa_app import MODELS, TEAM, clean
from test_sql_differential import SORTS, filters

from scim2_core.backends import MemoryBackend
from scim2_core.filter import Filter
from scim2_core.mapping import ResourceMapping
from scim2_core.testing import GROUP, USER
from scim2_core_sqlalchemy import SQLAlchemyBackend

MAPPING = ResourceMapping(
    resource_type="User",
    model="Account",
    fields=USER_FIELDS,
)


_OPEN: list[SQLAlchemyBackend] = []


def _load(
    engine: sa.Engine, resources: list[dict[str, Any]]
) -> tuple[SQLAlchemyBackend, MemoryBackend]:
    clean(engine)
    while _OPEN:
        _OPEN.pop().close()  # stop following the app's ORM writes
    backend = SQLAlchemyBackend(engine, [MAPPING, TEAM], models=MODELS)
    _OPEN.append(backend)
    backend.bind((USER, GROUP))
    memory = MemoryBackend()
    memory.bind((USER, GROUP))
    for r in resources:
        backend.create(None, USER, r)
        memory.create(None, USER, r)
    return backend, memory


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(resources=users(), filter=filters)
def test_filter_results_equal_memory(
    engine: sa.Engine, resources: list[dict[str, Any]], filter: Filter
) -> None:
    backend, memory = _load(engine, resources)
    assert_filter_equals_memory(backend, memory, resources, filter)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    resources=users(),
    sort=st.sampled_from(SORTS),
    descending=st.booleans(),
    offset=st.integers(0, 8),
    count=st.integers(0, 8),
)
def test_sort_and_paging_equal_memory(
    engine: sa.Engine,
    resources: list[dict[str, Any]],
    sort: str,
    descending: bool,
    offset: int,
    count: int,
) -> None:
    backend, _ = _load(engine, resources)
    assert_page_equals_sorted(backend, resources, sort, descending, offset, count)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(resources=users())
def test_read_returns_what_was_written(engine: sa.Engine, resources: list[dict[str, Any]]) -> None:
    backend, _ = _load(engine, resources)
    assert_reads_back(backend, resources)
