"""The Entra ID and Okta replays of the engine and PATCH tests, on auth.User/auth.Group.

Each replay of ``tests/engine/test_idp_sequences.py`` and ``tests/patch/test_idp_replays.py``
that builds its own engine runs unchanged, with its engine's backend swapped for a
DjangoModelBackend over Django's own ``auth`` models (SQLite and PostgreSQL).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import tests.engine.test_idp_sequences as sequences
from scim2_core import Engine, Options
from scim2_core_django.backend import DjangoModelBackend

# tests/patch is not a package: its modules import each other by their file names.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "patch"))
import test_idp_replays as replays


def _replays(module: ModuleType) -> list[Any]:
    return [
        pytest.param(module, name, id=name)
        for name, fn in vars(module).items()
        if name.startswith("test_") and callable(fn) and not inspect.signature(fn).parameters
    ]


@pytest.mark.parametrize(("module", "name"), _replays(sequences) + _replays(replays))
def test_replay_on_auth_models(
    module: ModuleType, name: str, alias: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def make_engine(**options: Any) -> Engine:
        backend = DjangoModelBackend(using=alias)
        return Engine(backend, options=Options(**options) if options else None)

    monkeypatch.setattr(module, "make_engine", make_engine)
    replay: Callable[[], None] = getattr(module, name)
    replay()
