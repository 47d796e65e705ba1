"""Engines for the Python API tests: each test runs on MemoryBackend and on SQLBackend over a
SQLite file, so the API and the HTTP API are compared on both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scim2_core import Engine
from scim2_core.backends import Backend, MemoryBackend, SQLBackend

EngineFactory = Callable[..., Engine]


@pytest.fixture(params=["memory", "sqlite"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineFactory]:
    """``make(**engine_kwargs)``: a new Engine over a new backend of this run's kind."""
    opened: list[SQLBackend] = []

    def factory(**kwargs: Any) -> Engine:
        backend: Backend
        if request.param == "memory":
            backend = MemoryBackend()
        else:
            sql = SQLBackend(f"sqlite:///{tmp_path / f'api-{len(opened)}.db'}")
            opened.append(sql)
            backend = sql
        return Engine(backend, **kwargs)

    try:
        yield factory
    finally:
        for backend in opened:
            backend.close()
