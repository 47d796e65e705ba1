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
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"example.com")],
        "root_path": "",
        "scheme": "http",
        "http_version": "1.1",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


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
