"""Fixtures of the observability tests: an engine guarded by two tokens, and requests."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from scim2_core import Engine, Principal, bearer_tokens
from scim2_core.backends import MemoryBackend

# The adapter clients of the parity suite (tests/adapters is not a package).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "adapters"))

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdefgh"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"


def make_engine(**kwargs: Any) -> Engine:
    tokens = {ALICE: Principal("alice-idp", "acme"), BOB: Principal("bob-idp", "globex")}
    return Engine(MemoryBackend(), authenticate=bearer_tokens(tokens), **kwargs)


@pytest.fixture
def engine() -> Engine:
    return make_engine()


def call(
    engine: Engine,
    method: str,
    path: str,
    *,
    token: str | None = ALICE,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> Any:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if body is not None:
        sent.setdefault("Content-Type", "application/scim+json")
    request: dict[str, Any] = {"method": method, "path": path, "headers": sent}
    if body is not None:
        request["body"] = json.dumps(body).encode() if not isinstance(body, bytes) else body
    if query:
        request["query"] = query
    return engine.handle(request)  # type: ignore[typeddict-item]


def user(user_name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER_URN], "userName": user_name, **extra}
