"""Engine throughput beside scim2-server, in one process, on the same data.

    .venv/bin/python benchmarks/engine.py            # 1k, 10k and 100k users
    .venv/bin/python benchmarks/engine.py --sizes 1000 --seconds 0.5
    .venv/bin/python benchmarks/engine.py --backend sqlite      # scim2-core on a SQLite file

For each directory size it loads the same users into scim2-core (``Engine(MemoryBackend())``)
and scim2-server 0.8.3 (its ``ScimHandler`` over its ``InMemoryStorage``, the published
package's own in-memory stack), then measures requests/second through each one's
framework-free entry point, with no HTTP:

* GET one user by id;
* ``GET /Users?filter=userName eq "..."`` (what every IdP sends before a create);
* a 100-resource page (``GET /Users?startIndex=...&count=100``);

and, last, the memory each side holds per stored user (tracemalloc, each side loaded alone).

scim2-server's handler returns a dict body; it is JSON-encoded here as any server must do
before sending it, since scim2-core's ``handle`` returns encoded bytes. The run reports
ratios, which stay meaningful on a noisy machine because both sides run interleaved in
the same process. Targets (issue #2): >= 5x on GET-by-id and ``userName eq``, >= 20x on the
100-resource page, and ``userName eq`` time flat from 1k to 100k users.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scim2_core import Engine
from scim2_core.backends import Backend, MemoryBackend, SQLBackend

POSTGRES = os.environ.get("SCIM2_CORE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
BASE = "https://example.com/scim/v2"


def make_user(i: int) -> dict[str, Any]:
    return {
        "schemas": [USER_URN],
        "userName": f"user{i:07d}@example.com",
        "name": {"givenName": f"Given{i}", "familyName": f"Family{i % 997}"},
        "displayName": f"User {i}",
        "active": i % 3 != 0,
        "emails": [{"value": f"user{i}@example.com", "type": "work", "primary": True}],
    }


class Ours:
    name = "scim2-core"

    def __init__(self, backend: Backend | None = None) -> None:
        self.engine = Engine(backend if backend is not None else MemoryBackend())

    def create(self, body: dict[str, Any]) -> str:
        r = self.engine.handle({"method": "POST", "path": "/Users", "body": body, "base_url": BASE})
        assert r["status"] == 201, r
        return str(json.loads(r["body"])["id"])

    def get(self, path: str, query: dict[str, str] | None = None) -> bytes:
        r = self.engine.handle(
            {"method": "GET", "path": path, "query": query or {}, "base_url": BASE}
        )
        assert r["status"] == 200, r
        return r["body"]


class Theirs:
    name = "scim2-server"

    def __init__(self) -> None:
        from scim2_server.handler import ScimHandler
        from scim2_server.memory import InMemoryStorage
        from scim2_server.requests import ScimRequest
        from scim2_server.service import ScimService
        from scim2_server.utils import load_default_provider

        self.request = ScimRequest
        self.handler = ScimHandler(ScimService(load_default_provider()), InMemoryStorage())

    def _call(self, method: str, path: str, query: dict[str, str] | None, body: bytes) -> Any:
        req = self.request(
            method=method,
            base_url=BASE,
            path=path,
            query=query or {},
            headers={"Content-Type": "application/scim+json"},
            body=body,
        )
        return self.handler.handle(req)

    def create(self, body: dict[str, Any]) -> str:
        resp = self._call("POST", "/Users", None, json.dumps(body).encode())
        assert int(resp.status) == 201, resp
        return str(resp.body["id"])

    def get(self, path: str, query: dict[str, str] | None = None) -> bytes:
        resp = self._call("GET", path, query, b"")
        assert int(resp.status) == 200, resp
        return json.dumps(resp.body).encode()


def rate(fn: Callable[[], Any], seconds: float) -> float:
    """Requests per second of ``fn``, the median of five rounds."""
    rounds = []
    per_round = seconds / 5
    for _ in range(5):
        n = 0
        start = time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= per_round:
                break
        rounds.append(n / elapsed)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per case")
    parser.add_argument("--skip-theirs-above", type=int, default=100000)
    parser.add_argument(
        "--backend",
        choices=["memory", "sqlite", "postgresql"],
        default="memory",
        help="scim2-core's storage (scim2-server always runs in memory)",
    )
    parser.add_argument(
        "--memory-users", type=int, default=10000, help="users loaded for the memory row (0: skip)"
    )
    args = parser.parse_args()

    print(
        f"{'users':>7} {'case':<22} {'scim2-core req/s':>17} {'scim2-server req/s':>19} {'ratio':>7}"
    )
    eq_times: dict[int, float] = {}
    for size in args.sizes:
        sides: list[Any] = [Ours(open_backend(args.backend, size))]
        if size <= args.skip_theirs_above:
            sides.append(Theirs())
        ids: dict[str, list[str]] = {s.name: [] for s in sides}
        for i in range(size):
            body = make_user(i)
            for side in sides:
                ids[side.name].append(side.create(body))
        gc.collect()
        rng = random.Random(7)
        picks = [rng.randrange(size) for _ in range(1000)]
        cases: list[tuple[str, Callable[[Any, int], Any]]] = [
            ("GET by id", lambda side, k, ids=ids: side.get(f"/Users/{ids[side.name][k]}")),
            (
                "userName eq",
                lambda side, k: side.get(
                    "/Users", {"filter": f'userName eq "user{k:07d}@example.com"'}
                ),
            ),
            (
                "100-resource page",
                lambda side, k, size=size: side.get(
                    "/Users", {"startIndex": str(1 + (k % max(1, size - 100))), "count": "100"}
                ),
            ),
        ]
        for label, case in cases:
            results = {}
            for side in sides:
                counter = iter(range(10**9))

                def one(
                    side: Any = side, case: Any = case, counter: Any = counter, picks: Any = picks
                ) -> Any:
                    return case(side, picks[next(counter) % len(picks)])

                results[side.name] = rate(one, args.seconds)
            ours = results["scim2-core"]
            theirs = results.get("scim2-server")
            ratio = f"{ours / theirs:6.1f}x" if theirs else "   n/a"
            theirs_text = f"{theirs:19,.0f}" if theirs else f"{'skipped':>19}"
            print(f"{size:>7} {label:<22} {ours:17,.0f} {theirs_text} {ratio}")
            if label == "userName eq":
                eq_times[size] = 1e6 / ours
        close = getattr(sides[0].engine.backend, "close", None)
        del sides
        if close is not None:
            close()
        gc.collect()
    if len(eq_times) > 1:
        sizes = sorted(eq_times)
        flat = eq_times[sizes[-1]] / eq_times[sizes[0]]
        print(
            f"userName eq latency {eq_times[sizes[0]]:.1f} µs at {sizes[0]} users, "
            f"{eq_times[sizes[-1]]:.1f} µs at {sizes[-1]} users ({flat:.2f}x)"
        )
    if args.memory_users and args.backend == "memory":
        memory(args.memory_users)


def open_backend(kind: str, size: int) -> Backend:
    """scim2-core's storage for one run: SQLite opens with synchronous=NORMAL (in WAL mode, no
    fsync per commit) so that loading 100k users through ``handle`` is quick; PostgreSQL runs in a
    fresh schema, dropped at the end. What is measured afterwards only reads."""
    if kind == "memory":
        return MemoryBackend()
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="scim2core-bench-")
        return SQLBackend(f"sqlite:///{folder}/bench-{size}.db", synchronous="NORMAL")
    import psycopg

    schema = f"scim_bench_{uuid.uuid4().hex[:12]}"
    backend = SQLBackend(POSTGRES, schema=schema)
    original_close = backend.close

    def close() -> None:
        original_close()
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    backend.close = close  # type: ignore[method-assign]
    return backend


def memory(size: int) -> None:
    """Bytes held per stored user, each side loaded alone under tracemalloc."""
    per_user = {}
    for cls in (Ours, Theirs):
        gc.collect()
        tracemalloc.start()
        side = cls()
        for i in range(size):
            side.create(make_user(i))
        gc.collect()
        per_user[cls.name] = tracemalloc.get_traced_memory()[0] / size
        tracemalloc.stop()
        del side
    ours, theirs = per_user["scim2-core"], per_user["scim2-server"]
    print(
        f"memory at {size} users: scim2-core {ours:,.0f} B/user, "
        f"scim2-server {theirs:,.0f} B/user ({theirs / ours:.1f}x less)"
    )


if __name__ == "__main__":
    main()
