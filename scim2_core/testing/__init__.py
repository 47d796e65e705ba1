"""The backend contract kit: the test suite every :class:`~scim2_core.backends.Backend` passes.

Write a backend for your own store, then run the same suite the built-in backends run::

    import pytest
    from scim2_core.testing import BackendContract

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def backend(self):
            return MyBackend()  # fresh and unbound: the suite calls bind() itself

This module needs ``pytest`` and ``hypothesis`` (the ``test`` extra); ``import scim2_core``
never imports it. For pytest's detailed assertion messages, register it for rewriting in
your ``conftest.py``: ``pytest.register_assert_rewrite("scim2_core.testing")``.

A backend over an application's own user and group models (one tenant, members as rows of
a relation to the users) subclasses :class:`OwnModelsContract` instead: the same suite with
the cases such a backend cannot offer changed, each with its reason; its random-operation
test runs :class:`RelationModel` over the Hypothesis strategy :data:`MODEL_OPS`.

Besides the suites, it exports the resource types and the builders the suite writes with,
for a backend's own extra tests.
"""

from ._contract import (
    DEFAULT_ORDER,
    DEVICE,
    ENT,
    GROUP,
    MODEL_OPS,
    RESOURCE_TYPES,
    SEARCH_USERS,
    USER,
    BackendContract,
    bumped,
    device,
    group,
    member_values,
    search_ids,
    user,
)
from ._own_models import OwnModelsContract, RelationModel

__all__ = [
    "DEFAULT_ORDER",
    "DEVICE",
    "ENT",
    "GROUP",
    "MODEL_OPS",
    "RESOURCE_TYPES",
    "SEARCH_USERS",
    "USER",
    "BackendContract",
    "OwnModelsContract",
    "RelationModel",
    "bumped",
    "device",
    "group",
    "member_values",
    "search_ids",
    "user",
]
