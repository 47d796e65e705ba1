"""Backend latency and throughput: SQLBackend (SQLite, PostgreSQL) beside MemoryBackend.

Run: ``.venv/bin/python benchmarks/backends.py [--quick] [--sizes 1000,100000]``

For each backend and directory size (1k and 100k users by default):

* ``userName eq`` — ``search()`` with a bound ``userName eq "<random existing user>"``
  (mixed case, so the case-insensitive index is exercised); p50 and p99 in ms;
* ``page 100`` — ``search()`` with no filter, 100 resources from a random offset in the
  first 10k, default order; p50/p99 in ms;
* ``create/s`` — single ``create()`` calls, each its own committed transaction;
* ``load s`` — the bulk load of the directory (``SQLBackend.create_many``; MemoryBackend
  ``create`` in a loop), not a target, shown so runs can be compared.

Ratios against MemoryBackend (same process, same data) follow the table. The target
(DESIGN.md / docs/backends.md): ``userName eq`` p50 < 1 ms on SQLite at 100k users, flat
from 1k to 100k. PostgreSQL is skipped when SCIM2_CORE_TEST_POSTGRES (default
postgresql://postgres@127.0.0.1:5432/test) is unreachable.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import scim2_models

from scim2_core.backends import Backend, MemoryBackend, SearchQuery, SQLBackend
from scim2_core.filter import bind, parse_filter
from scim2_core.schema import USER_URN, resource_type_from_model

USER = resource_type_from_model(scim2_models.User[scim2_models.EnterpriseUser])
GROUP = resource_type_from_model(scim2_models.Group)
PG_URL = os.environ.get("SCIM2_CORE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def make_user(i: int, prefix: str = "user") -> dict[str, Any]:
    uid = f"{prefix}-{i:07d}"
    return {
        "schemas": [USER_URN],
        "id": uid,
        "userName": f"{prefix}{i:07d}@Example.com",
        "externalId": f"ext-{prefix}-{i}",
        "displayName": f"User Number {i}",
        "name": {"givenName": f"Given{i % 997}", "familyName": f"Family{i % 1009}"},
        "active": i % 7 != 0,
        "emails": [{"value": f"{prefix}{i}@example.com", "type": "work", "primary": True}],
        "meta": {
            "resourceType": "User",
            "created": f"2024-01-01T00:00:{i % 60:02d}.{i % 1000:03d}Z",
            "lastModified": "2024-01-01T00:00:00.000Z",
            "location": f"https://example.com/scim/v2/Users/{uid}",
            "version": 'W/"1"',
        },
    }


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return p50 * 1000, p99 * 1000


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def backends(tmp: Path, size: int) -> Iterator[tuple[str, Callable[[], Backend]]]:
    yield "memory", MemoryBackend
    yield "sqlite", lambda: SQLBackend(f"sqlite:///{tmp}/bench-{size}.db")
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            pass
    except Exception as exc:
        print(f"(postgresql skipped: {exc})")
        return
    yield "postgresql", lambda: SQLBackend(PG_URL, schema=f"bench_{uuid.uuid4().hex[:10]}")


def load(backend: Backend, size: int) -> float:
    start = time.perf_counter()
    users = (make_user(i) for i in range(size))
    if isinstance(backend, SQLBackend):
        batch: list[dict[str, Any]] = []
        for u in users:
            batch.append(u)
            if len(batch) == 10_000:
                backend.create_many(None, USER, batch)
                batch = []
        if batch:
            backend.create_many(None, USER, batch)
    else:
        for u in users:
            backend.create(None, USER, u)
    return time.perf_counter() - start


def drop(backend: Backend) -> None:
    if isinstance(backend, SQLBackend) and backend.dialect == "postgresql":
        schema = backend._dialect.schema  # type: ignore[attr-defined]
        backend.close()
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    elif isinstance(backend, SQLBackend):
        backend.close()


def run(sizes: list[int], queries: int, creates: int) -> None:
    rows: list[tuple[str, int, float, float, float, float, float, float]] = []
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            for name, factory in backends(Path(tmp), size):
                backend = factory()
                backend.bind([USER, GROUP])
                load_s = load(backend, size)
                names = [f"USER{rng.randrange(size):07d}@example.COM" for _ in range(queries)]
                filters = iter([bind(parse_filter(f'userName eq "{n}"'), USER) for n in names])

                def eq(backend: Backend = backend, filters: Iterator[Any] = filters) -> None:
                    page = backend.search(None, USER, SearchQuery(filter=next(filters)))
                    assert page.total == 1, page.total

                for _ in range(20):  # warm up caches and connections
                    backend.search(
                        None,
                        USER,
                        SearchQuery(
                            filter=bind(parse_filter('userName eq "user0000000@example.com"'), USER)
                        ),
                    )
                eq_p50, eq_p99 = percentiles(timed(eq, queries))

                def page(backend: Backend = backend, size: int = size) -> None:
                    offset = rng.randrange(min(size, 10_000))
                    backend.search(None, USER, SearchQuery(offset=offset, count=100))

                pg_p50, pg_p99 = percentiles(timed(page, max(20, queries // 10)))
                counter = iter(range(creates))

                def create(backend: Backend = backend, counter: Iterator[int] = counter) -> None:
                    backend.create(None, USER, make_user(next(counter), prefix="new"))

                create_times = timed(create, creates)
                create_rate = creates / sum(create_times)
                rows.append((name, size, eq_p50, eq_p99, pg_p50, pg_p99, create_rate, load_s))
                drop(backend)
    print()
    print(
        f"{'backend':<11}{'users':>8} | {'eq p50':>8}{'eq p99':>8} | {'page p50':>9}"
        f"{'page p99':>9} | {'create/s':>9} | {'load s':>7}"
    )
    print("-" * 80)
    for name, size, e50, e99, p50, p99, rate, load_s in rows:
        print(
            f"{name:<11}{size:>8} | {e50:>8.3f}{e99:>8.3f} | {p50:>9.3f}{p99:>9.3f} | "
            f"{rate:>9.0f} | {load_s:>7.1f}"
        )
    print("(latencies in ms)")
    base = {(n, s): (e50, p50) for n, s, e50, _, p50, _, _, _ in rows if n == "memory"}
    for name, size, e50, _, p50, _, _, _ in rows:
        if name != "memory" and (("memory", size) in base):
            m_eq, m_page = base[("memory", size)]
            print(
                f"{name} {size}: userName eq {e50 / m_eq:.1f}x memory, "
                f"page {p50 / m_page:.1f}x memory"
            )
    for name in ("sqlite", "postgresql"):
        by_size = {s: e50 for n, s, e50, *_ in rows if n == name}
        if len(by_size) >= 2:
            lo, hi = min(by_size), max(by_size)
            print(
                f"{name}: userName eq p50 at {hi} / at {lo} = {by_size[hi] / by_size[lo]:.2f}"
                " (flat is ~1)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k users, fewer queries")
    parser.add_argument("--sizes", help="comma-separated directory sizes")
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 100_000]
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    queries = 300 if args.quick else 2_000
    run(sizes, queries, creates=100 if args.quick else 300)


if __name__ == "__main__":
    main()
