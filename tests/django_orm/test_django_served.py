"""examples/django_own_models.py over real HTTP: scim2-tester against ``auth.User``/``auth.Group``
(and the example's ``Team``), on SQLite and on PostgreSQL, started as a user starts it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tests.helpers import SERVER_DEADLINE

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django_own_models.py"
TOKEN = "served-token-0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def example_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "example.db")
        return
    import psycopg

    url: str = request.getfixturevalue("postgres_url")
    name = f"scim2dj_served_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def example(example_db: str, tmp_path: Path) -> Iterator[str]:
    """The example, started by its documented command; its SCIM base URL."""
    port = _free_port()
    log = (tmp_path / "example.log").open("w")
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "SCIM_EXAMPLE_DB": example_db,
        "SCIM2_CORE_TOKEN": TOKEN,
        # nodelay/sitecustomize.py: answers are sent without Nagle's delay (its docstring)
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent / "nodelay"), str(root), str(root / "adapters")]
        ),
    }
    command = [sys.executable, str(EXAMPLE), "runserver", "--noreload", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + SERVER_DEADLINE
        while True:
            assert proc.poll() is None, (tmp_path / "example.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the example did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/scim/v2"
    finally:
        proc.terminate()
        proc.wait(SERVER_DEADLINE)
        log.close()
    text = (tmp_path / "example.log").read_text()
    assert "Traceback" not in text, text


@pytest.mark.slow
def test_scim2_tester_passes_every_check(example: str) -> None:
    # One kept-alive connection, as an IdP sends: one thread of the development server
    # serves it, with one database connection (the example's CONN_MAX_AGE).
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx2.Client(base_url=example, headers=headers, timeout=30) as http:
        results = check_server(SyncSCIMClient(http))
    failed = [
        f"{r.status.name} {r.resource_type or ''} {r.title}: {r.reason}"
        for r in results
        if r.status is not Status.SUCCESS
    ]
    assert failed == []
    assert len(results) >= 135
