"""The backend contract suite on DjangoModelBackend, over an app's own ``Account``/``Team``.

The suite and its Hypothesis model come from ``scim2_core.testing``.
What a mapping onto an app's own tables cannot offer is overridden below, each with its
reason (``scim2_core.testing.OwnModelsContract``, which the SQLAlchemy backend runs too);
everything else runs unchanged, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django_orm_helpers import clean_tables
from hypothesis import HealthCheck, given, settings

from scim2_core.backends import Backend
from scim2_core.mapping import Field, Members, ResourceMapping
from scim2_core.testing import GROUP, MODEL_OPS, USER, OwnModelsContract, RelationModel
from scim2_core_django.backend import DjangoModelBackend

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

ACCOUNT = ResourceMapping(
    resource_type="User",
    model="scim2_django_testapp.Account",
    fields=(
        Field(attribute="userName", field="username"),
        Field(attribute="name.givenName", field="first_name"),
        Field(attribute="name.familyName", field="last_name"),
        Field(attribute='emails[type eq "work"].value', field="email"),
        Field(attribute="active", field="is_active"),
    ),
)
TEAM = ResourceMapping(
    resource_type="Group",
    model="scim2_django_testapp.Team",
    fields=(Field(attribute="displayName", field="name"),),
    members=Members(relation="members"),
)

MEMBER = ResourceMapping(
    resource_type="User", model="scim2_django_testapp.Member", fields=ACCOUNT.fields
)
CLUB = ResourceMapping(
    resource_type="Group",
    model="scim2_django_testapp.Club",
    fields=TEAM.fields,
    members=Members(relation="members"),
)


class TestDjangoModelContract(OwnModelsContract):
    model_examples = 25

    @pytest.fixture
    def backend(self, alias: str) -> Backend:
        return DjangoModelBackend([ACCOUNT, TEAM], using=alias)

    @staticmethod
    def _listed_after_add(stored: list[str], added: str) -> list[str]:
        # The Django relation keeps the order members joined in (its bookkeeping numbers
        # them), as the protocol says: an added member comes after every stored one.
        return [*stored, added]

    def test_concurrent_member_additions_are_all_kept(self, db: Backend) -> None:
        # The suite's, unchanged; its threads are not Django requests, so nothing would
        # close their database connections at their end: they close them themselves.
        with _threads_close_connections():
            super().test_concurrent_member_additions_are_all_kept(db)


class TestDjangoModelContractUuidKeys(TestDjangoModelContract):
    """The same suite over models whose primary keys are UUIDs: the backend reads them
    through the ORM (its fixed statements serve integer keys), with the same answers."""

    @pytest.fixture
    def backend(self, alias: str) -> Backend:
        return DjangoModelBackend([MEMBER, CLUB], using=alias)


@contextmanager
def _threads_close_connections() -> Iterator[None]:
    """Threads started inside close their Django connections when they end, as Django does
    at the end of each request (``request_finished``)."""
    from django.db import connections

    run = threading.Thread.run

    def run_and_close(self: threading.Thread) -> None:
        try:
            run(self)
        finally:
            connections.close_all()

    threading.Thread.run = run_and_close  # type: ignore[method-assign]
    try:
        yield
    finally:
        threading.Thread.run = run  # type: ignore[method-assign]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=MODEL_OPS)
def test_random_operations_keep_relation_and_versions_consistent(
    alias: str, ops: list[tuple[Any, ...]]
) -> None:
    # The suite's random operation sequences, in the one tenant, on fresh tables.
    clean_tables(alias)
    backend = DjangoModelBackend([ACCOUNT, TEAM], using=alias)
    backend.bind((USER, GROUP))
    model = RelationModel()
    for op in ops:
        model.apply(backend, None, op)
    model.check(backend, None)
