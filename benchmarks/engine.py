"""Engine throughput beside scim2-server, in one process, on the same data.

    .venv/bin/python benchmarks/engine.py            # 1k, 10k and 100k users
    .venv/bin/python benchmarks/engine.py --sizes 1000 --seconds 0.5
    .venv/bin/python benchmarks/engine.py --backend sqlite      # scim2-core on a SQLite file
    .venv/bin/python benchmarks/engine.py --backend postgresql --reads   # issue #14 ratios
    .venv/bin/python benchmarks/engine.py --backend sqlite --sizes 1000 --baseline ../main-before

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

``--baseline DIR`` (a checkout of the code before a change: ``git worktree add --detach DIR
main``) measures a change instead: two worker processes, one importing this tree's
``scim2_core`` and one the baseline's, load the same users on the same kind of storage, then
take turns running each case (one round each, the order alternating) and report CPU time per
request (``time.process_time``); the ratio before / after is the median of the rounds'.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from subprocess import PIPE
from typing import Any

# A --baseline worker imports the baseline's scim2_core instead of this tree's.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # run as a script: the tree to measure goes first instead
sys.path.insert(
    0, os.environ.get("SCIM2_CORE_BENCH_TREE") or str(Path(__file__).resolve().parents[1])
)

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
    parser.add_argument(
        "--reads",
        action="store_true",
        help="SQL backends only: one-statement reads without BEGIN/COMMIT vs inside a "
        "read transaction (the baseline), interleaved on the same database (issue #14)",
    )
    parser.add_argument("--baseline", type=Path, default=None, help="the code before a change")
    parser.add_argument("--rounds", type=int, default=7, help="--baseline: rounds per case")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.backend, args.sizes[0])
        return
    if args.baseline is not None:
        for size in args.sizes:
            compare_trees(args, size)
        return
    if args.reads:
        for size in args.sizes:
            compare_reads(args.backend, size, args.seconds)
        return

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


def compare_reads(kind: str, size: int, seconds: float) -> None:
    """GET by id and ``userName eq`` on ``size`` users, with one-statement reads as they run
    (no transaction) and with every read in a read transaction (the baseline: BEGIN, the
    statement, COMMIT), alternating rounds so both see the same machine."""
    if kind == "memory":
        raise SystemExit("--reads measures a SQL backend: --backend sqlite or postgresql")
    backend = open_backend(kind, size)
    assert isinstance(backend, SQLBackend)
    side = Ours(backend)
    ids = []
    for i in range(size):
        ids.append(side.create(make_user(i)))
        if (i + 1) % 10000 == 0:
            print(f"  loaded {i + 1:,} of {size:,} users", file=sys.stderr)
    dialect = backend._dialect
    if kind == "postgresql":
        # As autovacuum would on a real directory: without statistics on freshly loaded
        # tables the planner walks the whole ORDER BY index for a ``userName eq``.
        with dialect.transaction(write=True) as conn:
            conn.execute("ANALYZE")
    as_run = dialect.reading
    # The baseline: each one-statement read inside a read transaction, as before #14.
    in_transaction = lambda: dialect.transaction(write=False)  # noqa: E731
    rng = random.Random(7)
    picks = [rng.randrange(size) for _ in range(1000)]
    cases: list[tuple[str, Callable[[int], Any]]] = [
        ("GET by id", lambda k: side.get(f"/Users/{ids[k]}")),
        (
            "userName eq",
            lambda k: side.get("/Users", {"filter": f'userName eq "user{k:07d}@example.com"'}),
        ),
    ]
    for label, case in cases:
        counter = iter(range(10**9))

        def one(case: Any = case, counter: Any = counter) -> Any:
            return case(picks[next(counter) % len(picks)])

        rates: dict[str, list[float]] = {"baseline": [], "now": []}
        for _ in range(5):
            dialect.reading = in_transaction  # type: ignore[method-assign]
            rates["baseline"].append(rate(one, seconds / 5))
            dialect.reading = as_run  # type: ignore[method-assign]
            rates["now"].append(rate(one, seconds / 5))
        now, base = (statistics.median(rates[k]) for k in ("now", "baseline"))
        print(
            f"{size:>7} {kind} {label:<12} {now:10,.0f} req/s, baseline {base:10,.0f} req/s "
            f"({now / base:.2f}x), {1e3 / now:.3f} ms/request"
        )
    backend.close()


CASES = ("GET by id", "userName eq", "100-resource page", "GET by id, ASGI")


def asgi_batch(engine: Engine) -> Callable[[list[str]], None]:
    """GETs by id through ``scim2-core serve``'s app (``PrefixMount(ASGIApp(engine))``),
    from the ASGI scope to the last body message, on one event loop. The engine runs on
    the loop (no worker threads: what is measured is the translation and the engine)."""
    import asyncio

    from scim2_core.asgi import ASGIApp, PrefixMount

    engine.never_blocks = True
    app = PrefixMount(ASGIApp(engine), "/scim/v2")
    loop = asyncio.new_event_loop()
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    async def run(paths: list[str]) -> None:
        for path in paths:
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "root_path": "",
                "headers": headers,
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 8000),
            }
            await app(scope, receive, send)
            assert sent[0]["status"] == 200, sent
            sent.clear()

    return lambda paths: loop.run_until_complete(run(paths))


def worker(kind: str, size: int) -> None:
    """A --baseline worker: load ``size`` users, then answer ``case seconds`` lines on stdin
    with the CPU microseconds per request of that case, run for ``seconds``."""
    side = Ours(open_backend(kind, size))
    ids = [side.create(make_user(i)) for i in range(size)]
    rng = random.Random(7)
    picks = [rng.randrange(size) for _ in range(1000)]
    run: dict[str, Callable[[int], Any]] = {
        "GET by id": lambda k: side.get(f"/Users/{ids[k]}"),
        "userName eq": lambda k: side.get(
            "/Users", {"filter": f'userName eq "user{k:07d}@example.com"'}
        ),
        "100-resource page": lambda k: side.get(
            "/Users", {"startIndex": str(1 + (k % max(1, size - 100))), "count": "100"}
        ),
    }
    batches: dict[str, Callable[[list[int]], Any]] = {
        case: lambda ks, fn=fn: [fn(k) for k in ks] for case, fn in run.items()
    }
    through_asgi = asgi_batch(side.engine)
    batches["GET by id, ASGI"] = lambda ks: through_asgi([f"/scim/v2/Users/{ids[k]}" for k in ks])
    print("ready", flush=True)
    n = 0
    for line in sys.stdin:
        case, seconds = line.rsplit(" ", 1)
        batch, count = batches[case], 0
        gc.collect()
        cpu, end = time.process_time(), time.perf_counter() + float(seconds)
        while time.perf_counter() < end:
            batch([picks[(n + i) % len(picks)] for i in range(20)])
            n += 20
            count += 20
        print(f"{(time.process_time() - cpu) / count * 1e6:.3f}", flush=True)


def compare_trees(args: argparse.Namespace, size: int) -> None:
    """This tree against ``args.baseline``: CPU per request of each case, interleaved."""
    here = Path(__file__).resolve().parents[1]
    procs = {}
    for name, tree in (("after", here), ("before", args.baseline.resolve())):
        env = {**os.environ, "SCIM2_CORE_BENCH_TREE": str(tree)}
        command = [sys.executable, __file__, "--worker", "--backend", args.backend]
        procs[name] = subprocess.Popen(
            [*command, "--sizes", str(size)], env=env, stdin=PIPE, stdout=PIPE, text=True
        )
    for name, proc in procs.items():
        if proc.stdout is None or proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {name} worker did not start")
    for case in CASES:
        cpu: dict[str, list[float]] = {"before": [], "after": []}
        for r in range(args.rounds):
            for name in ("before", "after") if r % 2 == 0 else ("after", "before"):
                stdin, stdout = procs[name].stdin, procs[name].stdout
                assert stdin is not None
                assert stdout is not None
                stdin.write(f"{case} {args.seconds / args.rounds}\n")
                stdin.flush()
                cpu[name].append(float(stdout.readline()))
        ratio = statistics.median(b / a for b, a in zip(cpu["before"], cpu["after"], strict=True))
        before, after = (statistics.median(cpu[k]) for k in ("before", "after"))
        print(
            f"{size:>7} {args.backend:<8} {case:<18} before {before:7.1f} µs  "
            f"after {after:7.1f} µs CPU/request  before/after {ratio:.2f}x"
        )
    for proc in procs.values():
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()


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
