"""The outbox's and the audit log's own records commit without an fsync on SQLite, and
never leave the thread's connection that way: a write that follows on the same thread (a
handler writing on the delivery thread, an app querying the audit log and then writing)
commits as configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from scim2_core import Engine
from scim2_core.backends import SQLBackend
from tests.helpers import create_user

#: ``PRAGMA synchronous`` answers with a number.
LEVELS = {"NORMAL": 1, "FULL": 2, "EXTRA": 3}


@pytest.mark.parametrize("synchronous", ["FULL", "EXTRA", "NORMAL"])
def test_bookkeeping_leaves_the_connection_as_configured(tmp_path: Path, synchronous: str) -> None:
    backend = SQLBackend(f"sqlite:///{tmp_path / 'scim.db'}", synchronous=synchronous)
    engine = Engine(backend)
    try:
        seen: list[str] = []
        engine.events.add_handler(lambda e: seen.append(e.id), name="app")
        engine.audit.enable()
        uid = create_user(engine, "alice")["id"]
        store = engine.events.store
        assert store is not None
        # On this thread: claim, read, advance, prune, audit writes and prune.
        assert store.claim("app", "me", 30) == 0
        [event] = store.fetch(0, 10)
        assert store.advance("app", "me", event.seq, 30)
        store.prune()
        assert [e.resource_id for e in engine.audit.query()] == [uid]
        assert engine.audit.store is not None
        engine.audit.store.prune("1970-01-01T00:00:00Z")
        conn = backend._dialect.connection()  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == LEVELS[synchronous]
        assert store.counts(["app"])["app"].pending == 0
    finally:
        engine.audit.stop()
        backend.close()
