"""The heaviest writes never keep a read waiting for a worker thread (ASGIApp's two pools)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from scim2_core import ConfigurationError, Options
from scim2_core.asgi import ASGIApp


class _BlockingWrites:
    """An engine whose writes block until released, and whose reads answer at once."""

    never_blocks = False
    options = Options()

    def __init__(self) -> None:
        self.release = threading.Event()
        self.writes_running = 0
        self.lock = threading.Lock()

    def handle(self, request: Any) -> Any:
        if request["method"] not in ("GET", "HEAD") and not request["path"].endswith(".search"):
            with self.lock:
                self.writes_running += 1
            self.release.wait(60)
        return {"status": 200, "headers": {"Content-Type": "application/scim+json"}, "body": b"{}"}


async def _call(app: ASGIApp, method: str, path: str) -> int:
    return (await _send(app, method, path))[0]


def test_a_read_is_answered_while_every_write_worker_is_busy() -> None:
    engine = _BlockingWrites()
    app = ASGIApp(engine, read_threads=2, write_threads=3)  # type: ignore[arg-type]

    async def scenario() -> None:
        writes = [asyncio.create_task(_call(app, "POST", "/Users")) for _ in range(10)]
        while engine.writes_running < 3:  # every write worker is now held
            await asyncio.sleep(0.01)
        # Reads are answered while ten writes wait: GET, HEAD and a .search.
        for method, path in [("GET", "/Users/1"), ("HEAD", "/Users"), ("POST", "/Users/.search")]:
            assert await asyncio.wait_for(_call(app, method, path), timeout=30) == 200
        assert engine.writes_running == 3  # bounded: the other seven writes queue
        engine.release.set()
        assert await asyncio.gather(*writes) == [200] * 10

    try:
        asyncio.run(scenario())
    finally:
        engine.release.set()
        app.workers.shutdown()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "4"])
def test_worker_counts_are_checked_at_construction(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="read_threads"):
        ASGIApp(_BlockingWrites(), read_threads=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="write_threads"):
        ASGIApp(_BlockingWrites(), write_threads=bad)  # type: ignore[arg-type]


class _ThreadNoting:
    """An engine noting the thread each request ran on."""

    never_blocks = False
    options = Options()

    def __init__(self) -> None:
        self.threads: dict[tuple[str, str], str] = {}

    def handle(self, request: Any) -> Any:
        self.threads[request["method"], request["path"]] = threading.current_thread().name
        return {"status": 200, "headers": {"Content-Type": "application/scim+json"}, "body": b"{}"}


def test_an_error_in_a_worker_reaches_the_request_and_the_worker_lives_on() -> None:
    class Failing(_ThreadNoting):
        def handle(self, request: Any) -> Any:
            if request["path"] == "/boom":
                raise RuntimeError("boom")
            return super().handle(request)

    app = ASGIApp(Failing(), read_threads=1)  # type: ignore[arg-type]

    async def scenario() -> None:
        with pytest.raises(RuntimeError, match="boom"):
            await app.workers.run(app.engine.handle, {"method": "GET", "path": "/boom"})  # type: ignore[typeddict-item]
        assert await _call(app, "GET", "/Users") == 200  # the one read worker still serves

    try:
        asyncio.run(scenario())
    finally:
        app.workers.shutdown()


def _thread_noting_engine(backend: Any) -> tuple[Any, dict[str, str]]:
    """An engine over ``backend`` whose authentication hook notes, per method and path,
    the thread each request ran on."""
    from scim2_core import Engine, Principal

    threads: dict[str, str] = {}

    def authenticate(request: Any) -> Principal:
        threads[f"{request['method']} {request['path']}"] = threading.current_thread().name
        return Principal("idp")

    return Engine(backend, authenticate=authenticate), threads


async def _send(app: ASGIApp, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"example.com"), (b"content-type", b"application/scim+json")],
        "root_path": "",
        "scheme": "http",
        "http_version": "1.1",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"]), bytes(sent[1]["body"])


_USER = b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bjensen"}'


@pytest.mark.parametrize("reads_on_loop", [None, False])
def test_reads_of_a_sqlite_file_are_answered_on_the_event_loop_and_writes_on_workers(
    tmp_path: Any, reads_on_loop: bool | None
) -> None:
    import json

    from scim2_core.backends.sql import SQLBackend

    backend = SQLBackend(f"sqlite:///{tmp_path / 'scim.db'}")
    engine, threads = _thread_noting_engine(backend)
    assert engine.reads_never_block and not engine.never_blocks
    app = ASGIApp(engine, reads_on_loop=reads_on_loop)

    async def scenario() -> str:
        status, body = await _send(app, "POST", "/Users", _USER)
        assert status == 201
        uid = json.loads(body)["id"]
        assert (await _send(app, "GET", f"/Users/{uid}"))[0] == 200
        assert (await _send(app, "HEAD", "/Users"))[0] == 200
        search = b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}'
        assert (await _send(app, "POST", "/Users/.search", search))[0] == 200
        assert (await _send(app, "DELETE", f"/Users/{uid}"))[0] == 204
        return uid

    loop_thread = threading.current_thread().name  # asyncio.run's loop runs here
    try:
        uid = asyncio.run(scenario())
    finally:
        app.workers.shutdown()
        backend.close()
    assert threads["POST /Users"].startswith("scim-write")
    assert threads[f"DELETE /Users/{uid}"].startswith("scim-write")
    for read in (f"GET /Users/{uid}", "HEAD /Users", "POST /Users/.search"):
        if reads_on_loop is None:
            assert threads[read] == loop_thread, read
        else:
            assert threads[read].startswith("scim-read"), read


def test_reads_arriving_with_writes_run_on_the_loop_and_the_writes_on_workers(
    tmp_path: Any,
) -> None:
    """Concurrent requests: each read is answered on the loop, in turn; each write, arriving
    at the same time, on a write worker, and every answer is right."""
    import json

    from scim2_core.backends.sql import SQLBackend

    backend = SQLBackend(f"sqlite:///{tmp_path / 'scim.db'}")
    engine, threads = _thread_noting_engine(backend)
    app = ASGIApp(engine)

    async def scenario() -> list[str]:
        uids = []
        for n in range(5):
            body = _USER.replace(b"bjensen", f"user{n}".encode())
            status, answer = await _send(app, "POST", "/Users", body)
            assert status == 201
            uids.append(json.loads(answer)["id"])
        reads = [_send(app, "GET", f"/Users/{u}") for u in uids]
        writes = [
            _send(app, "POST", "/Users", _USER.replace(b"bjensen", f"new{n}".encode()))
            for n in range(5)
        ]
        answers = await asyncio.gather(*reads, *writes)
        assert [status for status, _ in answers] == [200] * 5 + [201] * 5
        assert [json.loads(body)["id"] for _, body in answers[:5]] == uids
        return uids

    loop_thread = threading.current_thread().name
    try:
        uids = asyncio.run(scenario())
    finally:
        app.workers.shutdown()
        backend.close()
    assert all(threads[f"GET /Users/{u}"] == loop_thread for u in uids), threads
    assert threads["POST /Users"].startswith("scim-write")


def test_a_read_on_the_event_loop_does_not_wait_for_another_writer(tmp_path: Any) -> None:
    """The premise of answering SQLite reads on the loop: while another connection (another
    process, a write in a worker) holds the database's write lock, a read answers at once
    with the last committed data instead of waiting (a wait would block every request)."""
    import json
    import sqlite3

    from scim2_core.backends.sql import SQLBackend

    path = tmp_path / "scim.db"
    backend = SQLBackend(f"sqlite:///{path}", busy_timeout=30.0)
    engine, threads = _thread_noting_engine(backend)
    app = ASGIApp(engine)
    writer = sqlite3.connect(path, isolation_level=None)

    async def scenario() -> None:
        status, body = await _send(app, "POST", "/Users", _USER)
        assert status == 201
        uid = json.loads(body)["id"]
        writer.execute("BEGIN IMMEDIATE")  # the write lock, held until the end
        writer.execute("DELETE FROM scim_resources")  # not committed: readers still see it
        status, body = await asyncio.wait_for(_send(app, "GET", f"/Users/{uid}"), timeout=20)
        assert status == 200 and json.loads(body)["userName"] == "bjensen"
        assert threads[f"GET /Users/{uid}"] == threading.current_thread().name
        writer.execute("ROLLBACK")

    try:
        asyncio.run(scenario())
    finally:
        writer.close()
        app.workers.shutdown()
        backend.close()


def test_only_a_sqlite_file_says_its_reads_never_block(tmp_path: Any) -> None:
    from scim2_core import Engine
    from scim2_core.backends import MemoryBackend
    from scim2_core.backends.sql import SQLBackend

    with SQLBackend(f"sqlite:///{tmp_path / 'a.db'}") as on_file:
        assert on_file.reads_never_block
    with SQLBackend("sqlite:///:memory:") as in_memory:  # one connection, shared under a lock
        assert not in_memory.reads_never_block
        assert not ASGIApp(Engine(in_memory)).reads_on_loop
    assert Engine(MemoryBackend()).reads_never_block  # it never blocks at all


@pytest.mark.postgres
def test_postgresql_reads_run_on_worker_threads(postgres_database: str) -> None:
    from scim2_core import Engine
    from scim2_core.backends.sql import SQLBackend

    with SQLBackend(postgres_database) as backend:
        assert not backend.reads_never_block
        assert not ASGIApp(Engine(backend)).reads_on_loop
