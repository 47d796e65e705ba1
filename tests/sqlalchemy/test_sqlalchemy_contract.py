"""The backend contract suite on SQLAlchemyBackend, over an app's own ``Account``/``Team``.

The suite is ``scim2_core.testing.OwnModelsContract``: the public contract with what a mapping
onto an app's own tables cannot offer changed, each with its reason (the Django backend runs
the same); everything else runs unchanged, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from sa_app import ACCOUNT, MODELS, TEAM, clean

from scim2_core.backends import Backend
from scim2_core.testing import GROUP, MODEL_OPS, USER, OwnModelsContract, RelationModel
from scim2_core_sqlalchemy import SQLAlchemyBackend


class TestSQLAlchemyContract(OwnModelsContract):
    model_examples = 25

    @pytest.fixture
    def backend(self, engine: sa.Engine) -> Iterator[Backend]:
        backend = SQLAlchemyBackend(engine, [ACCOUNT, TEAM], models=MODELS)
        yield backend
        backend.close()  # stop following the app's ORM writes


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=MODEL_OPS)
def test_random_operations_keep_relation_and_versions_consistent(
    engine: sa.Engine, ops: list[tuple[Any, ...]]
) -> None:
    # The suite's random operation sequences, in the one tenant, on fresh tables.
    clean(engine)
    backend = SQLAlchemyBackend(engine, [ACCOUNT, TEAM], models=MODELS)
    try:
        backend.bind((USER, GROUP))
        model = RelationModel()
        for op in ops:
            model.apply(backend, None, op)
        model.check(backend, None)
    finally:
        backend.close()
