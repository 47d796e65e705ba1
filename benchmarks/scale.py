"""Large groups on the SQL backend, through ``Engine.handle``.

    .venv/bin/python benchmarks/scale.py
    .venv/bin/python benchmarks/scale.py --sizes 1000,10000 --no-postgres
    SCIM2_CORE_TEST_POSTGRES=postgresql://user@host/db .venv/bin/python benchmarks/scale.py

For each database (SQLite file, ``synchronous=NORMAL``, and PostgreSQL) and each group size
(1k, 10k, 100k members by default):

* **one-member PATCH**: adding one user to the group, then removing it
  (``members[value eq "id"]``), alternately, as identity providers do, each a PATCH through
  ``Engine.handle`` with ``excludedAttributes=members`` (what they send; the response then
  renders no member list) — median of the rounds; and the same add answered with the whole
  group (the default response, which renders every member);
* **create, replace and delete** of a group of that size (POST with every member, PUT
  with as many other members, then DELETE).

Users are loaded with ``SQLBackend.create_many`` (not what is measured). Targets: one-member
PATCH <= 2 ms on SQLite at 10k, the 100k figure within 1.5x of the 1k figure; create and
delete of a 10k-member group <= 200 ms on SQLite.

Only public API is used, so the same script measures an older scim2-core (the "before"
figures of docs/benchmarks.md were taken that way).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scim2_core import Engine, Options
from scim2_core.backends import SQLBackend

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
STAMP = "2026-01-01T00:00:00.000Z"


def _user(i: int) -> dict[str, Any]:
    rid = str(uuid.UUID(int=i + 1))
    return {
        "schemas": [USER_URN],
        "id": rid,
        "userName": f"user{i}@example.com",
        "meta": {
            "resourceType": "User",
            "created": STAMP,
            "lastModified": STAMP,
            "version": 'W/"1"',
        },
    }


def _call(engine: Engine, method: str, path: str, body: Any = None, **query: str) -> Any:
    response = engine.handle(
        {
            "method": method,
            "path": path,
            "query": query,
            "body": json.dumps(body).encode() if body is not None else b"",
        }
    )
    if response["status"] >= 300:
        raise RuntimeError(f"{method} {path}: {response['status']} {response['body'][:300]!r}")
    return json.loads(response["body"]) if response["body"] else None


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


@contextmanager
def _database(kind: str, keep: str | None = None) -> Iterator[SQLBackend]:
    """A new database of ``kind``, dropped afterwards; with ``keep`` (PostgreSQL), the
    schema of that name, created if missing and kept (a directory loaded once)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            backend = SQLBackend(f"sqlite:///{tmp}/scale.db", synchronous="NORMAL")
            try:
                yield backend
            finally:
                backend.close()
        return
    import psycopg

    url = os.environ.get("SCIM2_CORE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    schema = keep or f"scim_scale_{uuid.uuid4().hex[:12]}"
    backend = SQLBackend(url, schema=schema)
    try:
        yield backend
    finally:
        backend.close()
        if keep is None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def measure(kind: str, size: int, rounds: int, seconds: float) -> dict[str, float]:
    with _database(kind) as backend:
        # A 100k-member group is a ~5 MB POST body.
        engine = Engine(backend, options=Options(max_body_bytes=64 << 20))
        users_rt = next(rt for rt in engine.resource_types if rt.name == "User")
        users = [_user(i) for i in range(2 * size + 1)]
        for start in range(0, len(users), 20_000):
            backend.create_many(None, users_rt, users[start : start + 20_000])
        spare = users[-1]["id"]
        others = [{"value": u["id"]} for u in users[size : 2 * size]]
        members = [{"value": u["id"]} for u in users[:size]]
        body = {"schemas": [GROUP_URN], "displayName": "All employees", "members": members}
        gid = _call(engine, "POST", "/Groups", body)["id"]
        add = {
            "schemas": [PATCH_URN],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": spare}]}],
        }
        remove = {
            "schemas": [PATCH_URN],
            "Operations": [{"op": "remove", "path": f'members[value eq "{spare}"]'}],
        }
        times: list[float] = []
        deadline = time.perf_counter() + seconds
        while len(times) < rounds and (len(times) < 4 or time.perf_counter() < deadline):
            body_ = add if len(times) % 2 == 0 else remove
            times.append(
                _timed(
                    lambda b=body_: _call(  # type: ignore[misc]
                        engine, "PATCH", f"/Groups/{gid}", b, excludedAttributes="members"
                    )
                )
            )
        whole: list[float] = []
        for _ in range(3):
            whole.append(_timed(lambda: _call(engine, "PATCH", f"/Groups/{gid}", add)))
            _call(engine, "PATCH", f"/Groups/{gid}", remove, excludedAttributes="members")
        body2 = {"schemas": [GROUP_URN], "displayName": "Second", "members": members}
        created: dict[str, Any] = {}
        create_ms = _timed(lambda: created.update(_call(engine, "POST", "/Groups", body2)))
        body3 = {"schemas": [GROUP_URN], "displayName": "Second", "members": others}
        put_ms = _timed(lambda: _call(engine, "PUT", f"/Groups/{created['id']}", body3))
        delete_ms = _timed(lambda: _call(engine, "DELETE", f"/Groups/{created['id']}"))
        return {
            "patch_ms": statistics.median(times),
            "patch_rounds": len(times),
            "patch_whole_ms": statistics.median(whole),
            "create_ms": create_ms,
            "put_ms": put_ms,
            "delete_ms": delete_ms,
        }


# --- a directory of users: lookups, pages, cursors, import ---------------------------------


def _directory_line(i: int) -> str:
    return json.dumps(
        {
            "schemas": [USER_URN],
            "userName": f"user{i:07d}@example.com",
            "externalId": f"ext-{i}",
            "name": {"givenName": f"Given{i % 997}", "familyName": f"Family{i % 1009}"},
            "emails": [{"value": f"user{i:07d}@example.com", "type": "work", "primary": True}],
            "active": i % 10 != 0,
        }
    )


def _import(engine: Engine, start: int, stop: int, tmp: Path) -> tuple[float, float]:
    """Import users ``start`` to ``stop`` through ``scim2-core import``'s code; seconds, and
    seconds of this process's CPU (the checks and rows; not the database server's)."""
    from scim2_core.serving._import import Importer, records

    source = tmp / f"users-{start}.jsonl"
    with source.open("w") as f:
        for i in range(start, stop):
            f.write(_directory_line(i) + "\n")
    began, cpu = time.perf_counter(), time.process_time()
    with open(os.devnull, "w") as rejects:
        importer = Importer(engine, batch=20_000, rejects=rejects, progress=sys.stderr)
        for record in records(source):
            importer.add(record)
        report = importer.finish()
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    source.unlink()
    if report.rejected:
        raise RuntimeError(f"{report.rejected} users refused")
    return seconds, cpu


def _cursor_at(engine: Engine, backend: SQLBackend, index: int, count: int) -> str:
    """The RFC 9865 cursor a client holds after paging to user ``index`` (0-based) of the
    default order, as the engine mints it (walking 9,000 pages to get it would measure
    the same page 9,000 times)."""
    from scim2_core.backends import Position, SearchQuery
    from scim2_core.engine._cursor import CursorState

    users_rt = next(rt for rt in engine.resource_types if rt.name == "User")
    row = backend.search(None, users_rt, SearchQuery(offset=index, count=1)).resources[0]
    cursors = engine._state.cursors
    digest = cursors.query_digest("", "User", None, None, "a")
    position = Position(row["meta"]["created"], row["id"])
    return cursors.seal(CursorState(0, count, position), digest)


def measure_directory(
    kind: str,
    sizes: list[int],
    rounds: int,
    out: Callable[[dict[str, float]], None],
    keep: str | None = None,
) -> None:
    """Grow one directory to each of ``sizes`` users by import, measuring at each size.
    With ``keep`` (a PostgreSQL schema kept between runs), the users already there (named
    as :func:`_directory_line` names them) are not imported again."""
    import random

    rng = random.Random(7)
    with _database(kind, keep) as backend, tempfile.TemporaryDirectory() as tmp:
        engine = Engine(backend)
        loaded = _call(engine, "GET", "/Users", count="0")["totalResults"]
        for size in sizes:
            import_s, import_cpu, rate = float("nan"), float("nan"), float("nan")
            if size > loaded:
                import_s, import_cpu = _import(engine, loaded, size, Path(tmp))
                rate = (size - loaded) / import_s
                loaded = size
            deep = _cursor_at(engine, backend, int(size * 0.9) - 1, 100)
            series: dict[str, list[float]] = {"eq": [], "page": [], "first": [], "deep": []}
            queries = {
                "page": {"count": "100"},
                "first": {"cursor": "", "count": "100"},
                "deep": {"cursor": deep, "count": "100"},
            }
            for _ in range(rounds):  # interleaved: every measure sees the same machine
                eq = {"filter": f'userName eq "user{rng.randrange(size):07d}@example.com"'}
                for key, query in (("eq", eq), *queries.items()):
                    series[key].append(_timed(partial(_call, engine, "GET", "/Users", **query)))
            got = _call(engine, "GET", "/Users", **queries["deep"])
            if len(got["Resources"]) != min(100, size - int(size * 0.9)):
                raise RuntimeError("the cursor page at 90% is not a full page")
            medians = {k: statistics.median(v) for k, v in series.items()}
            out(
                {
                    "size": size,
                    "import_s": import_s,
                    "import_cpu_s": import_cpu,
                    "import_rate": rate,
                    **{f"{k}_ms": v for k, v in medians.items()},
                    "deep_ratio": medians["deep"] / medians["first"],
                }
            )


def plot_directory(kind: str, rows: list[dict[str, float]], path: Path) -> None:
    """Milliseconds (median) of each request against the directory's size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["size"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = {
        "eq_ms": "userName eq",
        "page_ms": "100-user page (startIndex=1)",
        "first_ms": "first cursor page (100)",
        "deep_ms": "cursor page at 90% (100)",
    }
    for key, label in labels.items():
        ax.plot(sizes, [r[key] for r in rows], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("users")
    ax.set_ylabel("ms per request through Engine.handle (median)")
    ax.set_title(f"A directory of users on {kind}")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--users",
        default=None,
        help="measure a directory grown to these sizes instead (e.g. 100000,1000000)",
    )
    parser.add_argument("--plot", type=Path, default=None, help="write the plot here (PNG)")
    parser.add_argument(
        "--db-schema",
        default=None,
        help="with --users: the PostgreSQL schema to grow and keep between runs "
        "(users already in it are not imported again)",
    )
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    kinds = ([] if args.no_sqlite else ["sqlite"]) + ([] if args.no_postgres else ["postgresql"])
    if args.users is not None:
        sizes = [int(n) for n in args.users.split(",")]
        directory(kinds, sizes, args.rounds, args.plot, args.db_schema)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        "| database | members | 1-member PATCH ms (median) | with whole group in response ms "
        "| create group ms | replace group ms | delete group ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    results: dict[tuple[str, int], dict[str, float]] = {}
    for kind in kinds:
        for size in sizes:
            r = measure(kind, size, args.rounds, args.seconds)
            results[kind, size] = r
            print(
                f"| {kind} | {size:,} | {r['patch_ms']:.2f} | {r['patch_whole_ms']:.1f} "
                f"| {r['create_ms']:.0f} | {r['put_ms']:.0f} | {r['delete_ms']:.0f} |",
                flush=True,
            )
    for kind in kinds:
        small, large = min(sizes), max(sizes)
        if (kind, small) in results and (kind, large) in results and small != large:
            ratio = results[kind, large]["patch_ms"] / results[kind, small]["patch_ms"]
            print(
                f"{kind}: 1-member PATCH at {large:,} / at {small:,} = {ratio:.2f}x "
                "(target <= 1.5x)"
            )
    if ("sqlite", 10_000) in results:
        r = results["sqlite", 10_000]
        print(
            f"sqlite 10k: PATCH {r['patch_ms']:.2f} ms (target <= 2), create "
            f"{r['create_ms']:.0f} ms and delete {r['delete_ms']:.0f} ms (target <= 200)"
        )


def directory(
    kinds: list[str], sizes: list[int], rounds: int, plot: Path | None, keep: str | None = None
) -> None:
    print(
        "| database | users | import s | import CPU s | users/s | userName eq ms | 100-user page ms "
        "| first cursor page ms | cursor page at 90% ms | at 90% / first |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in kinds:
        rows: list[dict[str, float]] = []

        def show(
            r: dict[str, float], kind: str = kind, rows: list[dict[str, float]] = rows
        ) -> None:
            rows.append(r)
            imported = (
                f"{r['import_s']:.1f} | {r['import_cpu_s']:.1f} | {r['import_rate']:,.0f}"
                if r["import_rate"] == r["import_rate"]  # NaN: none imported in this run
                else "kept | kept | kept"
            )
            print(
                f"| {kind} | {int(r['size']):,} | {imported} "
                f"| {r['eq_ms']:.2f} | {r['page_ms']:.2f} | {r['first_ms']:.2f} "
                f"| {r['deep_ms']:.2f} | {r['deep_ratio']:.2f}x |",
                flush=True,
            )

        measure_directory(kind, sizes, rounds, show, keep if kind == "postgresql" else None)
        if plot is not None and rows:
            target = plot if len(kinds) == 1 else plot.with_stem(f"{plot.stem}-{kind}")
            plot_directory(kind, rows, target)


if __name__ == "__main__":
    main()
