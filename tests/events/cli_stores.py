"""What the ``scim2-core events`` and ``audit`` tests share across backends: a store with
known events and audit entries, the CLI run as a user runs it, and what a SQLite file
looks like (to show that a command changed nothing).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from scim2_core import ChangeEvent, Engine
from scim2_core.backends import Backend
from scim2_core.events import RetryPolicy
from tests.helpers import call, create_user

ROOT = Path(__file__).resolve().parents[2]


def populate(backend: Backend) -> dict[str, str]:
    """Two consumers and an audit log over ``backend``: ``app`` delivers, ``refuser``
    parks every event as failed; alice is created and delivered (refused by ``refuser``),
    then bob is created while no worker runs (pending for both). Returns the ids."""
    engine = Engine(backend)
    engine.audit.enable()

    def refuse(event: ChangeEvent) -> None:
        raise RuntimeError("no")

    engine.events.add_handler(lambda event: None, name="app")
    engine.events.add_handler(refuse, name="refuser", retry=RetryPolicy(max_attempts=1))
    try:
        engine.events.start()
        alice = create_user(engine, "alice")
        assert engine.events.wait_idle()
        engine.events.stop()
        bob = create_user(engine, "bob")
        assert call(engine, "GET", f"/Users/{alice['id']}").status == 200
    finally:
        engine.events.stop()
        engine.audit.stop()
    return {"alice": alice["id"], "bob": bob["id"]}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m scim2_core ARGS`` in a process of its own, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "adapters")])}
    return subprocess.run(
        [sys.executable, "-m", "scim2_core", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def assert_user_sees(db: str, ids: dict[str, str], *extra: str) -> None:
    """``events``, ``events --failed`` and ``audit`` over what :func:`populate` wrote."""
    done = run_cli("events", "--db", db, *extra)
    assert (done.returncode, done.stderr) == (0, "")
    assert json_lines(done.stdout) == [
        {"consumer": "app", "pending": 1, "failed": 0},
        {"consumer": "refuser", "pending": 1, "failed": 1},
    ]
    done = run_cli("events", "--db", db, "--failed", *extra)
    assert (done.returncode, done.stderr) == (0, "")
    (failed,) = json_lines(done.stdout)
    assert (failed["consumer"], failed["kind"]) == ("refuser", "created")
    assert failed["id"] == ids["alice"]
    assert (failed["attempts"], failed["error"]) == (1, "RuntimeError: no")
    done = run_cli("audit", "--db", db, "--since", "2000-01-01T00:00:00Z", *extra)
    assert (done.returncode, done.stderr) == (0, "")
    assert [(e["method"], e["status"], e["resourceId"]) for e in json_lines(done.stdout)] == [
        ("POST", 201, ids["alice"]),
        ("POST", 201, ids["bob"]),
        ("GET", 200, ids["alice"]),
    ]
    done = run_cli("audit", "--db", db, "--since", "2999-01-01", *extra)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def sqlite_state(path: Path) -> tuple[str, list[tuple[str, str]], list[str]]:
    """A SQLite file's journal mode, its schema objects, and the files beside it that
    belong to it (``-wal``, ``-shm``, ``-journal``)."""
    conn = sqlite3.connect(path)
    try:
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
        objects = sorted(conn.execute("SELECT type, name FROM sqlite_master").fetchall())
    finally:
        conn.close()
    files = sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))
    return mode, objects, files
