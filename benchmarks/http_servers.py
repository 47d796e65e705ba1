"""SCIM over real HTTP through every adapter, beside each framework's own hello-world.

Run: ``.venv/bin/python benchmarks/http_servers.py [--seconds 3] [--rounds 3] [--only NAME,...] [--connections 16]``
(needs ``wrk``: ``apt-get install -y wrk``; granian is measured when installed).

For each stack (a server and an adapter), one server process serves one app holding both the
SCIM adapter (``/scim/v2``, SQLBackend on a SQLite file of 1,000 users: serve's default
storage) and that framework's own hello-world JSON endpoint answering a document of the same
size (``benchmarks/http_apps.py``). ``wrk`` (1 thread, 16 connections) drives, interleaved
within the same run, the hello-world and the SCIM request, for two requests:

* ``GET /Users/{id}`` (RFC 7644 §3.4.1);
* ``GET /Users?filter=userName eq "..."`` (RFC 7644 §3.4.2.2; a one-resource ListResponse).

One stack is ``scim2-core serve`` as its defaults run it (a request log line and an audit
log entry per request, the rate limit counted), beside the same raw ASGI hello-world: what
those defaults cost beside the bare app of the stack above it.

wrk asks the same request again and again, so with the engine's defaults every SCIM answer
after the first comes from the answers it keeps while the database has not changed
(``Options.read_cache_bytes``, docs/backends.md); ``--read-cache-bytes 0`` measures every
request read from the database.

Reported: requests per second of each, and the ratio SCIM / hello-world (the median of the
rounds' ratios); the target is >= 0.6 for every stack. ``--baseline DIR`` (a checkout of
the code before a change, ``git worktree add --detach DIR main``) serves the same stack a
second time from that tree and drives its SCIM request interleaved with the others: the
table then adds the change's own ratio, before / after, from server CPU per request. The figures are printed as a
Markdown table, and plotted (``--plot``, matplotlib) when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "benchmark-token-0123456789"
USERS = 1000
APPS = "benchmarks.http_apps"
#: ``--pin``: the CPUs the servers and wrk run on, one each (None: wherever the scheduler
#: puts them). Pinned, the server keeps its core's caches and wrk never takes its turns.
PINNED: tuple[int, int] | None = None


def _on_cpu(which: int) -> Any:
    """A ``preexec_fn`` pinning the child (and every process it starts) to one of PINNED."""
    if PINNED is None:
        return None
    cpu = PINNED[which]
    return lambda: os.sched_setaffinity(0, {cpu})


@dataclass(frozen=True)
class Stack:
    """One server running one framework's app."""

    name: str
    server: str  # uvicorn, uvicorn-h11, granian, gunicorn
    factory: str  # a function of http_apps

    def command(self, port: int) -> list[str]:
        target = f"{APPS}:{self.factory}"
        where = ["--host", "127.0.0.1", "--port", str(port)]
        if self.server.startswith("uvicorn"):
            if self.server == "uvicorn-serve":  # serve's own protocol, httptools and uvloop
                http, loop = f"{APPS}:SERVE_PROTOCOL", "uvloop"
            elif self.server == "uvicorn-h11":
                http, loop = "h11", "asyncio"
            else:
                http, loop = "httptools", "uvloop"
            quiet = ["--log-level", "warning", "--no-access-log"]
            return [
                *(sys.executable, "-m", "uvicorn", "--factory", target, *where, *quiet),
                *("--http", http, "--loop", loop),
            ]
        if self.server == "granian":
            granian = shutil.which("granian") or str(Path(sys.executable).parent / "granian")
            options = ["--interface", "asgi", "--factory", "--workers", "1", "--loop", "uvloop"]
            return [granian, *options, *where, "--log-level", "warning", "--no-access-log", target]
        # gunicorn's default: one process of sync workers, the usual production setting.
        bind = ["-b", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"]
        return [sys.executable, "-m", "gunicorn", *bind, f"{target}()"]


STACKS = [
    Stack("raw ASGI, uvicorn h11 + asyncio (serve before)", "uvicorn-h11", "raw_asgi"),
    Stack("raw ASGI, uvicorn httptools + uvloop (serve now)", "uvicorn-serve", "raw_asgi"),
    Stack(
        "scim2-core serve's defaults: request log, audit log, rate limit (httptools + uvloop)",
        "uvicorn-serve",
        "serve_defaults",
    ),
    Stack("raw ASGI, granian", "granian", "raw_asgi"),
    Stack("raw WSGI, gunicorn", "gunicorn", "raw_wsgi"),
    Stack("Starlette, uvicorn", "uvicorn", "starlette"),
    Stack("FastAPI (scim_router), uvicorn", "uvicorn", "fastapi"),
    Stack("Flask, gunicorn", "gunicorn", "flask"),
    Stack("Django, gunicorn", "gunicorn", "django"),
]


@dataclass
class Result:
    stack: str
    query: str
    hello: list[Run] = field(default_factory=list)
    scim: list[Run] = field(default_factory=list)
    before: list[Run] = field(default_factory=list)  # the SCIM request on --baseline's code

    @property
    def ratio(self) -> float:
        """SCIM / hello-world requests per second: the median of the rounds' ratios."""
        pairs = zip(self.scim, self.hello, strict=True)
        return statistics.median(s.rate / h.rate for s, h in pairs)

    @property
    def cpu_ratio(self) -> float:
        """The same from the server's CPU time per request (hello / SCIM): what the ratio
        is on a core of its own, much less disturbed by other work on a shared machine."""
        pairs = zip(self.scim, self.hello, strict=True)
        return statistics.median(h.cpu / s.cpu for s, h in pairs if s.cpu > 0)

    @property
    def gain(self) -> float:
        """CPU per SCIM request on the baseline's code / on this code (median of rounds)."""
        pairs = zip(self.before, self.scim, strict=True)
        return statistics.median(b.cpu / s.cpu for b, s in pairs if s.cpu > 0)

    @property
    def speedup(self) -> float:
        """Requests per second of SCIM on this code / on the baseline's (median of rounds):
        with ``--connections 1``, the baseline's latency over this code's."""
        pairs = zip(self.scim, self.before, strict=True)
        return statistics.median(s.rate / b.rate for s, b in pairs if b.rate > 0)

    def median(self, side: str) -> float:
        runs: list[Run] = getattr(self, side)
        return statistics.median(run.rate for run in runs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _prepare(folder: Path, port: int) -> tuple[Path, dict[str, str], dict[str, object]]:
    """A SQLite file of USERS users; the two SCIM paths and their answers' documents."""
    sys.path[:0] = [str(ROOT), str(ROOT / "adapters")]
    from benchmarks.http_apps import PREFIX
    from scim2_core import Engine, bearer_tokens
    from scim2_core.backends import SQLBackend

    db = folder / "http.db"
    engine = Engine(SQLBackend(f"sqlite:///{db}"), authenticate=bearer_tokens([TOKEN]))
    base = f"http://127.0.0.1:{port}{PREFIX}"
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/scim+json"}

    def call(method: str, path: str, query: dict[str, str], body: bytes = b"") -> object:
        request = {"method": method, "path": path, "query": query, "headers": headers}
        answer = engine.handle({**request, "body": body, "base_url": base})  # type: ignore[typeddict-item]
        assert answer["status"] in (200, 201), answer
        return json.loads(answer["body"])

    user_id = ""
    for n in range(USERS):
        user = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": f"user-{n:05d}@example.com",
            "name": {"givenName": "Barbara", "familyName": f"Jensen {n}"},
            "emails": [{"value": f"user-{n:05d}@example.com", "type": "work", "primary": True}],
            "active": True,
        }
        created = call("POST", "/Users", {}, json.dumps(user).encode())
        if n == USERS // 2:
            user_id = created["id"]  # type: ignore[index]
    name = f"user-{USERS // 2:05d}@example.com"
    paths = {
        "get": f"{PREFIX}/Users/{user_id}",
        "list": f"{PREFIX}/Users?filter=" + urllib.request.quote(f'userName eq "{name}"'),
    }
    documents = {
        "get": call("GET", f"/Users/{user_id}", {}),
        "list": call("GET", "/Users", {"filter": f'userName eq "{name}"'}),
    }
    engine.backend.close()  # type: ignore[attr-defined]
    return db, paths, documents


@contextlib.contextmanager
def _serving(
    stack: Stack, port: int, env: dict[str, str], root: Path = ROOT
) -> Iterator[tuple[str, int]]:
    origin = f"http://127.0.0.1:{port}"
    path = os.pathsep.join([str(root), str(root / "adapters")])
    env = {**env, "PYTHONPATH": path}
    proc = subprocess.Popen(stack.command(port), cwd=root, env=env, preexec_fn=_on_cpu(0))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(origin + "/hello/get", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{stack.name} did not start") from None
                time.sleep(0.2)
        yield origin, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` and its children (gunicorn's workers)."""
    total, ticks = 0, os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


@dataclass(frozen=True)
class Run:
    """One wrk run: requests per second, and the server's CPU seconds per request."""

    rate: float
    cpu: float


def wrk(url: str, seconds: float, server: int, connections: int = 16) -> Run:
    """Run ``wrk`` on ``url`` against the server process ``server``; refuses errors."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    command += ["-H", f"Authorization: Bearer {TOKEN}", url]
    before = _cpu_seconds(server)
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, preexec_fn=_on_cpu(1)
    ).stdout
    cpu = _cpu_seconds(server) - before
    if "Non-2xx" in out:
        raise RuntimeError(f"{url} answered errors:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    if rate is None or count is None:
        raise RuntimeError(out)
    return Run(float(rate.group(1)), cpu / max(1, int(count.group(1))))


def _serves(root: Path, stack: Stack) -> bool:
    """Whether the checkout at ``root`` has the app ``stack`` serves (a stack added since
    has no baseline: its row gets none)."""
    apps = root / "benchmarks" / "http_apps.py"
    return apps.is_file() and f"def {stack.factory}(" in apps.read_text(encoding="utf-8")


def measure(
    stack: Stack, args: argparse.Namespace, env: dict[str, str], port: int, paths: dict[str, str]
) -> list[Result]:
    results = []
    with contextlib.ExitStack() as stop:
        origin, pid = stop.enter_context(_serving(stack, port, env))
        old: tuple[str, int] | None = None
        if args.baseline is not None and _serves(args.baseline, stack):
            old = stop.enter_context(_serving(stack, _free_port(), env, args.baseline))
        for query, path in paths.items():
            urls = {"hello": (f"{origin}/hello/{query}", pid), "scim": (origin + path, pid)}
            if old is not None:
                urls["before"] = (old[0] + path, old[1])
            for url, server in urls.values():
                wrk(url, 1, server, args.connections)  # warm up
            result = Result(stack.name, query)
            sides = list(urls)
            for n in range(args.rounds):
                # Interleaved, the order turning: drift on a shared machine hits every side.
                for side in sides[n % len(sides) :] + sides[: n % len(sides)]:
                    url, server = urls[side]
                    run = wrk(url, args.seconds, server, args.connections)
                    getattr(result, side).append(run)
            line = (
                f"  {query:4}  hello {result.median('hello'):8.0f}/s  "
                f"scim {result.median('scim'):8.0f}/s  ratio {result.ratio:.2f}  "
                f"cpu ratio {result.cpu_ratio:.2f}"
            )
            if old is not None:
                line += f"  before/after (cpu) {result.gain:.2f}  after/before (req/s) "
                line += f"{result.speedup:.2f}"
            print(line, file=sys.stderr, flush=True)
            results.append(result)
    return results


def table(results: list[Result]) -> str:
    before = any(r.before for r in results)
    head = "| stack | request | hello-world (req/s) | SCIM (req/s) | ratio (req/s) | ratio (CPU) |"
    rule = "|---|---|---:|---:|---:|---:|"
    if before:
        head += " SCIM before (req/s) | ratio before (CPU) | before / after (CPU) |"
        rule += "---:|---:|---:|"
    lines = [head, rule]
    label = {"get": "GET by id", "list": "userName eq"}
    for r in results:
        hello, scim = r.median("hello"), r.median("scim")
        line = (
            f"| {r.stack} | {label[r.query]} | {hello:,.0f} | {scim:,.0f} | {r.ratio:.2f} "
            f"| {r.cpu_ratio:.2f} |"
        )
        if before and r.before:
            pairs = zip(r.before, r.hello, strict=True)
            was = statistics.median(h.cpu / b.cpu for b, h in pairs if b.cpu > 0)
            line += f" {r.median('before'):,.0f} | {was:.2f} | {r.gain:.2f} |"
        elif before:
            line += " - | - | - |"
        lines.append(line)
    return "\n".join(lines)


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stacks = list(dict.fromkeys(r.stack for r in results))
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(stacks) + 1.5))
    height = 0.38
    for offset, query, label in (
        (-height / 2, "get", "GET by id"),
        (height / 2, "list", "userName eq"),
    ):
        ratios = {r.stack: r.cpu_ratio for r in results if r.query == query}
        ys = [i + offset for i in range(len(stacks))]
        ax.barh(ys, [ratios.get(s, 0) for s in stacks], height=height, label=label)
    ax.axvline(0.6, color="black", linestyle="--", linewidth=1, label="target 0.6")
    ax.set_yticks(range(len(stacks)), stacks)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("SCIM ÷ the same server's hello-world (from CPU time per request)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="one wrk run (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs (default 3)")
    parser.add_argument(
        "--connections",
        type=int,
        default=16,
        help="wrk's connections (default 16); 1 measures a lone client's latency",
    )
    parser.add_argument("--only", default="", help="stacks whose name contains one of these")
    parser.add_argument("--plot", type=Path, default=None, help="write the chart here (PNG)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument(
        "--baseline", type=Path, default=None, help="a checkout of the code before a change"
    )
    parser.add_argument(
        "--read-cache-bytes",
        type=int,
        default=None,
        help="the engine's Options.read_cache_bytes (default: its default); 0: every GET is "
        "read from the database, as a request never asked before is",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="run the servers on one CPU and wrk on another (a machine of two CPUs or more): "
        "far steadier figures on a shared machine",
    )
    args = parser.parse_args()
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            sys.exit("--pin needs two CPUs")
        global PINNED
        PINNED = (cpus[-1], cpus[0])
    if shutil.which("wrk") is None:
        sys.exit("benchmarks/http_servers.py needs wrk: apt-get install -y wrk")
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    stacks = [s for s in STACKS if not wanted or any(w.lower() in s.name.lower() for w in wanted)]
    try:
        import granian  # noqa: F401
    except ImportError:
        stacks = [s for s in stacks if s.server != "granian"]
    port = _free_port()
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as folder:
        print(f"preparing {USERS} users ...", file=sys.stderr, flush=True)
        db, paths, documents = _prepare(Path(folder), port)
        env = {
            **os.environ,
            "SCIM_BENCH_DB": str(db),
            "SCIM_BENCH_TOKEN": TOKEN,
            "SCIM_BENCH_HELLO": json.dumps(documents),
        }
        if args.read_cache_bytes is not None:
            env["SCIM_BENCH_READ_CACHE_BYTES"] = str(args.read_cache_bytes)
        for i, stack in enumerate(stacks, 1):
            print(f"[{i}/{len(stacks)}] {stack.name}", file=sys.stderr, flush=True)
            results += measure(stack, args, env, port, paths)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
