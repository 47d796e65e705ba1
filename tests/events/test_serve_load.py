"""``scim2-core serve --webhook`` as an operator runs it: two servers on one database
(SQLite file, PostgreSQL), a local receiver, creates and PATCHes of shared users from
several threads; one server killed with SIGKILL mid-load and restarted. Counted at the
receiver: every SET verifies with the key; every acknowledged write has its event; per
resource, events arrive in the order of the versions; an event delivered twice (only
after the kill) carries the same id; without a kill, none is delivered twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PATCH_OP, SERVER_DEADLINE, user_body

from .receiver import SECRET, Receiver, claims

pytest.importorskip("joserfc")
pytestmark = pytest.mark.slow

TOKEN = "t" * 32
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'scim.db'}"
    return str(request.getfixturevalue("postgres_database"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One ``scim2-core serve --webhook`` process."""

    def __init__(self, db: str, receiver: Receiver) -> None:
        self.db, self.receiver = db, receiver
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        env = {**os.environ, "SCIM2_CORE_TOKEN": TOKEN, "SCIM2_CORE_WEBHOOK_SECRET": SECRET}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "adapters")])
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "scim2_core", "serve", "--db", self.db),
                *("--port", str(self.port), "--webhook", self.receiver.url),
                *("--no-access-log", "--log-level", "warning"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + SERVER_DEADLINE
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                self.request("GET", "/ServiceProviderConfig")
                return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        raise AssertionError("serve did not start")

    def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/scim/v2{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


class Load:
    """Writers creating users and patching the shared ones, through one server each;
    ``acknowledged`` holds ``(id, version)`` of every write answered with success."""

    def __init__(self, pool: list[str]) -> None:
        self.pool = pool
        self.acknowledged: set[tuple[str, str]] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def run(self, server: Server, n: int) -> None:
        for k in range(n):
            thread = threading.Thread(target=self._writer, args=(server, f"{id(server)}-{k}"))
            self.threads.append(thread)
            thread.start()

    def _writer(self, server: Server, name: str) -> None:
        rng = random.Random(name)
        i = 0
        while not self.stop.is_set():
            try:
                if rng.random() < 0.4:
                    done = server.request("POST", "/Users", user_body(f"w{name}-{i}"))
                else:
                    patch = {
                        "schemas": [PATCH_OP],
                        "Operations": [{"op": "replace", "path": "title", "value": f"{i}"}],
                    }
                    done = server.request("PATCH", f"/Users/{rng.choice(self.pool)}", patch)
            except (OSError, urllib.error.HTTPError):
                return  # the server died under us: this write was not acknowledged
            with self.lock:
                self.acknowledged.add((done["id"], done["meta"]["version"]))
            i += 1

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def _deliveries(receiver: Receiver) -> list[dict[str, Any]]:
    """The verified claims of every SET received, in arrival order (raises if one does
    not verify with the key)."""
    with receiver.lock:
        bodies = list(receiver.bodies)
    return [claims(body) for body in bodies]


def _written(claims: dict[str, Any]) -> tuple[str, str]:
    ((_, event),) = claims["events"].items()
    return claims["sub_id"]["uri"].rsplit("/", 1)[1], event["version"]


def _wait_for(receiver: Receiver, wanted: set[tuple[str, str]]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90
    while True:
        got = _deliveries(receiver)
        if wanted <= {_written(c) for c in got} or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def _check_order(got: list[dict[str, Any]]) -> None:
    """First deliveries only (a duplicate carries the id it had): per resource, versions
    strictly increase in arrival order."""
    seen: dict[str, dict[str, Any]] = {}
    last: dict[str, int] = {}
    for delivered in got:
        first = seen.setdefault(delivered["jti"], delivered)
        # A duplicate is the same event (issued again: only ``iat`` may differ).
        assert {**first, "iat": 0} == {**delivered, "iat": 0}
        if first is not delivered:
            continue
        rid, version = _written(delivered)
        number = int(version.strip('W/"'))
        assert number > last.get(rid, 0), f"{rid}: {version} after W/{last[rid]}"
        last[rid] = number


def _pool(server: Server) -> list[str]:
    return [server.request("POST", "/Users", user_body(f"pool{n}"))["id"] for n in range(6)]


def _under_load(db: str, receiver: Receiver, *, kill: bool) -> tuple[Load, list[dict[str, Any]]]:
    """Two servers, two writers each, for about three seconds; with ``kill``, the first
    is killed with SIGKILL after 1.5 s, restarted half a second later, and written to
    again. Returns the load and what the receiver got once every acknowledged write's
    event arrived (or 90 s passed), after checking that both servers still run."""
    first = Server(db, receiver)
    second = Server(db, receiver)
    try:
        load = Load(_pool(first))
        load.run(first, 2)
        load.run(second, 2)
        time.sleep(1.5)
        if kill:
            first.kill()
            time.sleep(0.5)
            first.start()  # the restart resumes delivery where the killed one left it
            load.run(first, 2)
        time.sleep(1.0)
        load.finish()
        got = _wait_for(receiver, load.acknowledged)
        # Only the kill stops a server: none dies of another's start or of the load.
        assert first.running() and second.running()
        return load, got
    finally:
        first.stop()
        second.stop()


def test_two_servers_share_the_outbox_without_delivering_twice(db: str, receiver: Receiver) -> None:
    load, got = _under_load(db, receiver, kill=False)
    assert len(load.acknowledged) > 20
    assert load.acknowledged <= {_written(c) for c in got}
    ids = [c["jti"] for c in got]
    assert len(ids) == len(set(ids))  # no event delivered twice
    _check_order(got)


def test_a_server_killed_mid_load_loses_no_acknowledged_write(db: str, receiver: Receiver) -> None:
    load, got = _under_load(db, receiver, kill=True)
    assert len(load.acknowledged) > 20
    assert load.acknowledged <= {_written(c) for c in got}
    _check_order(got)
