"""The engine suite really runs on both backends (tests/engine/conftest.py)."""

from __future__ import annotations

from scim2_core.backends import MemoryBackend, SQLBackend
from tests.helpers import create_user, make_backend, make_engine


def test_make_backend_follows_the_parameter(each_backend: str) -> None:
    backend = make_backend()
    expected = {"memory": MemoryBackend, "sqlite": SQLBackend}[each_backend]
    assert type(backend) is expected
    if isinstance(backend, SQLBackend):
        assert backend.dialect == "sqlite"
        assert backend.url.startswith("sqlite:////")  # a file, not :memory:


def test_each_engine_starts_empty() -> None:
    first, second = make_engine(), make_engine()
    create_user(first, "bjensen")
    create_user(second, "bjensen")  # no 409: the second engine has its own database
