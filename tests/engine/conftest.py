"""Every test here runs twice: on MemoryBackend and on SQLBackend over a SQLite file.

Tests build their backends with ``tests.helpers.make_backend`` / ``make_engine``; the
``each_backend`` fixture (tests/conftest.py) picks which. A disagreement between the backends
fails one of the two runs.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _on_each_backend(each_backend: str) -> str:
    return each_backend
