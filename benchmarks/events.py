"""What durability costs a create: the outbox and the audit log on, beside off.

Run: ``.venv/bin/python benchmarks/events.py [--batch 50] [--rounds 25] [--threads 1,4]
[--plot events.png] [--breakdown]``.

For SQLite (a file, ``synchronous=FULL``, the default, and ``NORMAL``) and PostgreSQL,
``POST /Users`` through :meth:`Engine.handle` (validation, password-free users, the whole
engine path), from 1 and from 4 threads, in three set-ups side by side, each on a fresh
database of its own:

* ``off`` — no consumer, no audit log: nothing is written but the user;
* ``outbox`` — a handler consumer delivering on its own thread as the creates run (the
  event row is written in the create's transaction; delivery reads it and records the
  consumer's position meanwhile);
* ``outbox+audit`` — the same, and an audit entry per request (batched by its writer).

Each round times one batch of creates per set-up, back to back, in an order that rotates
from round to round, so that the three meet the same drift of a machine shared with other
work; between batches (untimed) delivery and the audit writer catch up. Reported: the
median wall time per create of each set-up, and the cost of durability as the median over
the rounds of ``per create (on) / per create (off) - 1`` with its quartiles, twice: in
wall-clock time (what a client sees; on a loaded machine, noisy) and in this process's
CPU time, delivery and audit writing included (steadier; the database server's work is
not in it). The target is under 25%. ``--breakdown`` also prints where each set-up's CPU
goes, per create: the client threads (the requests), the delivery thread and the audit
writer (Linux: read from ``/proc``). Progress goes to stderr. PostgreSQL is skipped when
SCIM2_CORE_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test) is
unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from scim2_core import Engine
from scim2_core.backends import Backend, SQLBackend

PG_URL = os.environ.get("SCIM2_CORE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"


def _postgres_ok() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return True
    except Exception:
        return False


@contextmanager
def _sqlite(synchronous: str) -> Iterator[Callable[[], Backend]]:
    with tempfile.TemporaryDirectory() as folder:
        n = iter(range(1000))

        def make() -> Backend:
            path = Path(folder) / f"scim{next(n)}.db"
            return SQLBackend(f"sqlite:///{path}", synchronous=synchronous)

        yield make


@contextmanager
def _postgres() -> Iterator[Callable[[], Backend]]:
    import psycopg

    schemas: list[str] = []

    def make() -> Backend:
        schemas.append(f"bench_{uuid.uuid4().hex[:12]}")
        return SQLBackend(PG_URL, schema=schemas[-1])

    try:
        yield make
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


SETUPS = ("off", "outbox", "outbox+audit")


class Delivered:
    """The benchmark's handler: counts the events delivered, and lets the benchmark
    wait for a count without polling the outbox (which would cost CPU of its own)."""

    def __init__(self) -> None:
        self.count = 0
        self._cond = threading.Condition()

    def __call__(self, event: object) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= count, timeout)


@dataclass
class Setup:
    """One engine of the comparison, and how many users it created so far."""

    name: str
    backend: Backend
    engine: Engine
    delivered: Delivered | None
    #: The client threads, kept across batches: each thread has its own connection.
    pool: ThreadPoolExecutor
    created: int = 0

    @classmethod
    def open(cls, name: str, backend: Backend, threads: int) -> Setup:
        engine = Engine(backend)
        delivered = None
        if name != "off":
            delivered = Delivered()
            # Named per set-up, so that its delivery thread is told apart (--breakdown).
            engine.events.add_handler(delivered, name=f"bench {name}")
            engine.events.start()
        if name == "outbox+audit":
            engine.audit.enable()
        pool = ThreadPoolExecutor(threads, thread_name_prefix=f"bench {name} client")
        return cls(name, backend, engine, delivered, pool)

    def close(self) -> None:
        self.pool.shutdown()
        self.engine.events.stop()
        self.engine.audit.stop()
        self.backend.close()  # type: ignore[attr-defined]


def _bodies(n: int) -> list[bytes]:
    run = uuid.uuid4().hex[:8]
    return [
        json.dumps(
            {
                "schemas": [USER_URN],
                "userName": f"{run}-user{i}@example.com",
                "name": {"givenName": "Given", "familyName": f"Family{i}"},
                "emails": [{"value": f"{run}-user{i}@example.com", "type": "work"}],
                "active": True,
            }
        ).encode()
        for i in range(n)
    ]


def _batch(setup: Setup, n: int, threads: int) -> Sample:
    """``threads`` threads create ``n`` users (n // threads each), timed; then, untimed
    but in the CPU time, delivery and the audit writer catch up, so that one set-up's
    leftovers never run in another's timing."""
    engine = setup.engine
    bodies = _bodies(n)
    per = n // threads
    failures: list[object] = []

    def worker(k: int) -> None:
        for body in bodies[k * per : (k + 1) * per]:
            response = engine.handle(
                {
                    "method": "POST",
                    "path": "/Users",
                    "headers": {"Content-Type": "application/scim+json"},
                    "body": body,
                }
            )
            if response["status"] != 201:
                failures.append(response)
                return

    cpu = time.process_time()
    started = time.perf_counter()
    for future in [setup.pool.submit(worker, k) for k in range(threads)]:
        future.result()
    took = time.perf_counter() - started
    if failures:
        raise AssertionError(f"a create failed: {failures[0]!r}")
    setup.created += per * threads
    if setup.delivered is not None:
        assert setup.delivered.wait_for(setup.created, 120), "delivery fell behind"
    engine.audit.flush()
    cpu = time.process_time() - cpu
    return Sample(took / (per * threads), cpu / (per * threads))


@dataclass(frozen=True)
class Sample:
    """One batch, per create: the wall-clock time of the requests, and the CPU time of
    this process for them and for delivering their events and writing their audit
    entries (the database server's is not in it)."""

    wall: float
    cpu: float


@dataclass(frozen=True)
class Cost:
    """The median over the rounds of ``on / off - 1``, with its quartiles."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, ratios: list[float]) -> Cost:
        q = statistics.quantiles(ratios, n=4)
        return cls(statistics.median(ratios), q[0], q[2])

    def __str__(self) -> str:
        return f"{self.median:+.0%} ({self.low:+.0%} .. {self.high:+.0%})"


@dataclass
class Result:
    """One store and thread count: the median wall time per create of each set-up, and
    the cost of each durable set-up in wall time and in this process's CPU time."""

    store: str
    threads: int
    per_create: dict[str, float]
    wall: dict[str, Cost]
    cpu: dict[str, Cost]
    #: With ``--breakdown``: per set-up, its threads' CPU per create.
    roles: dict[str, str]


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each live thread of this process so far, by thread name (Linux
    ``/proc``; empty elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[thread.name] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def _roles(before: dict[str, float], after: dict[str, float], created: int) -> dict[str, str]:
    """Per set-up, the CPU per create of its client threads, delivery and audit writer."""
    spent: dict[str, dict[str, float]] = {name: {} for name in SETUPS}
    for thread, cpu in after.items():
        for name in SETUPS:
            if thread.startswith(f"bench {name} client"):
                role = "requests"
            elif thread == f"scim2-core events bench {name}":
                role = "delivery"
            elif thread == "scim2-core audit" and name == "outbox+audit":
                role = "audit"
            else:
                continue
            used = cpu - before.get(thread, 0.0)
            spent[name][role] = spent[name].get(role, 0.0) + used
    return {
        name: ", ".join(f"{role} {1e6 * cpu / created:.0f} µs" for role, cpu in roles.items())
        for name, roles in spent.items()
    }


def measure(
    make: Callable[[], Backend],
    store: str,
    threads: int,
    batch: int,
    rounds: int,
    breakdown: bool = False,
) -> Result:
    """Three engines side by side (a fresh database each), warmed by one batch, then
    ``rounds`` rounds of one ``batch`` per set-up, in an order that rotates each round."""
    setups = {name: Setup.open(name, make(), threads) for name in SETUPS}
    samples: dict[str, list[Sample]] = {name: [] for name in SETUPS}
    try:
        for setup in setups.values():
            _batch(setup, batch, threads)
        cpu_before = _thread_cpu()
        for r in range(rounds):
            order = SETUPS[r % 3 :] + SETUPS[: r % 3]
            for name in order:
                samples[name].append(_batch(setups[name], batch, threads))
            print(f"  {store}, {threads} thread(s): round {r + 1}/{rounds}", file=sys.stderr)
        cpu_after = _thread_cpu() if breakdown else {}
    finally:
        for setup in setups.values():
            setup.close()
    off = samples["off"]

    def cost(setup: str, metric: Callable[[Sample], float]) -> Cost:
        return Cost.of(
            [metric(s) / metric(o) - 1 for s, o in zip(samples[setup], off, strict=True)]
        )

    return Result(
        store,
        threads,
        {k: statistics.median(s.wall for s in v) for k, v in samples.items()},
        {k: cost(k, lambda s: s.wall) for k in SETUPS[1:]},
        {k: cost(k, lambda s: s.cpu) for k in SETUPS[1:]},
        _roles(cpu_before, cpu_after, rounds * (batch // threads) * threads) if breakdown else {},
    )


def plot(results: list[Result], path: str) -> None:
    """The cost of each durable set-up per store and thread count, wall clock and CPU,
    as bars with the quartiles (matplotlib, the benchmark's own dependency)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    labels = [f"{r.store}\n{r.threads} thr." for r in results]
    for ax, title, metric in (
        (axes[0], "wall clock per create", "wall"),
        (axes[1], "this process's CPU per create", "cpu"),
    ):
        for k, setup in enumerate(SETUPS[1:]):
            xs = [i + (k - 0.5) * 0.35 for i in range(len(results))]
            costs: list[Cost] = [getattr(r, metric)[setup] for r in results]
            ys = [100 * c.median for c in costs]
            err = [
                [100 * (c.median - c.low) for c in costs],
                [100 * (c.high - c.median) for c in costs],
            ]
            ax.bar(xs, ys, width=0.35, yerr=err, capsize=3, label=setup)
        ax.axhline(25, color="red", linestyle="--", linewidth=1, label="target (25%)")
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_xticks(range(len(results)), labels, fontsize=7)
        ax.set_title(f"Cost: {title} (median, quartiles)", fontsize=9)
    axes[0].set_ylabel("cost vs off (%)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=50, help="creates per timed batch")
    parser.add_argument("--rounds", type=int, default=25, help="timed batches per set-up")
    parser.add_argument("--threads", default="1,4")
    parser.add_argument("--stores", default="SQLite FULL,SQLite NORMAL,PostgreSQL")
    parser.add_argument("--plot", metavar="PNG", help="also draw the costs (needs matplotlib)")
    parser.add_argument(
        "--breakdown", action="store_true", help="also print each thread's CPU per create"
    )
    args = parser.parse_args()
    openers: dict[str, Callable[[], AbstractContextManager[Callable[[], Backend]]]] = {
        "SQLite FULL": lambda: _sqlite("FULL"),
        "SQLite NORMAL": lambda: _sqlite("NORMAL"),
        "PostgreSQL": _postgres,
    }
    stores = [s.strip() for s in args.stores.split(",")]
    if "PostgreSQL" in stores and not _postgres_ok():
        print("PostgreSQL unreachable: skipped", file=sys.stderr)
        stores.remove("PostgreSQL")
    print(
        "| store | threads | ms/create off | outbox | outbox+audit | wall cost outbox | "
        "wall cost both | CPU cost outbox | CPU cost both |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    results: list[Result] = []
    for store in stores:
        with openers[store]() as make:
            for threads in (int(t) for t in args.threads.split(",")):
                r = measure(make, store, threads, args.batch, args.rounds, args.breakdown)
                results.append(r)
                ms = {k: 1000 * v for k, v in r.per_create.items()}
                print(
                    f"| {store} | {threads} | {ms['off']:.2f} | {ms['outbox']:.2f} | "
                    f"{ms['outbox+audit']:.2f} | {r.wall['outbox']} | {r.wall['outbox+audit']} | "
                    f"{r.cpu['outbox']} | {r.cpu['outbox+audit']} |",
                    flush=True,
                )
    lines = [
        f"* CPU per create, {r.store}, {r.threads} thread(s), {name}: {text}"
        for r in results
        for name, text in r.roles.items()
    ]
    if lines:
        print("\n" + "\n".join(lines))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
