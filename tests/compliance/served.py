"""Running ``scim2-core serve`` as a user would, for the compliance tests: a subprocess on a
free port, a bearer token, a SQLite file or a fresh PostgreSQL database (``db_url``), stopped as
Ctrl-C would stop it (or killed with SIGKILL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import SERVER_DEADLINE

TOKEN = "compliance-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Served:
    """One ``scim2-core serve`` process on ``db``; ``base`` is its SCIM base URL."""

    def __init__(self, db: str, workdir: Path, name: str, *, wait: bool = True) -> None:
        self.db = db
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/scim/v2"
        command = [sys.executable, "-m", "scim2_core", "serve", "--port", str(self.port)]
        command += ["--db", db, "--token", TOKEN, "--log-level", "warning"]
        self._log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, cwd=workdir
        )
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Wait until it listens; if it exits (or hangs), kill it and fail with its log."""
        deadline = time.monotonic() + SERVER_DEADLINE
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.kill()  # nothing else would stop it: it never joined the test's servers
        pytest.fail(f"scim2-core serve did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is flushed or closed."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(SERVER_DEADLINE)
        self._log.close()

    def stop(self) -> None:
        """Stop as Ctrl-C would; the server must exit cleanly."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            code = self.proc.wait(SERVER_DEADLINE)
            self._log.close()
            assert code == 0, self.log()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/scim.db"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def serve(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start ``scim2-core serve`` processes on the test's database; all stopped afterwards,
    and none may have logged a traceback or a locking error."""
    started: list[Served] = []

    def start(wait: bool = True) -> Served:
        server = Served(db_url, tmp_path, f"serve{len(started)}", wait=False)
        started.append(server)  # stopped afterwards even if it never comes up
        if wait:
            server.wait_ready()
        return server

    yield start
    try:
        for server in started:
            server.stop()
    finally:  # one that would not stop leaves none of the others running
        for server in started:
            if server.proc.poll() is None:
                server.kill()
    for server in started:
        text = server.log()
        assert "Traceback" not in text, text
        assert "locked" not in text, text
