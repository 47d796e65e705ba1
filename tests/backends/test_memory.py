"""MemoryBackend: the shared backend contract, plus what only an in-process store promises."""

from __future__ import annotations

from typing import Any

import pytest

from scim2_core import UniquenessError
from scim2_core.backends import Backend, MemoryBackend
from scim2_core.testing import (
    DEFAULT_ORDER,
    SEARCH_USERS,
    USER,
    BackendContract,
    bumped,
    search_ids,
    user,
)


class TestMemoryContract(BackendContract):
    @pytest.fixture
    def backend(self) -> Backend:
        return MemoryBackend()


def test_never_blocks() -> None:
    assert MemoryBackend().never_blocks is True


def test_works_without_bind() -> None:
    # bind() is called by the Engine; a backend used directly learns types on first use.
    backend = MemoryBackend()
    backend.create(None, USER, user("u1", "bjensen"))
    with pytest.raises(UniquenessError, match="userName"):
        backend.create(None, USER, user("u2", "BJENSEN"))


def test_default_order_follows_a_changed_created() -> None:
    # The engine never changes meta.created (readOnly), but the memory backend orders by
    # the stored value whatever writes it, including a direct caller.
    backend = MemoryBackend()
    for u in SEARCH_USERS:
        backend.create(None, USER, u)
    assert search_ids(backend, USER, "userName pr") == (7, DEFAULT_ORDER)

    def backdate(current: dict[str, Any]) -> None:
        current["meta"]["created"] = "2000-01-01T00:00:00.000Z"

    backend.update(None, USER, "f6", bumped(backdate))
    expected = ["f6", *DEFAULT_ORDER[:-1]]
    assert search_ids(backend, USER) == (7, expected)
    assert search_ids(backend, USER, "userName pr") == (7, expected)
    assert search_ids(backend, USER, offset=1, count=2) == (7, expected[1:3])
