"""SQLAlchemyBackend (the app's own models) beside SQLBackend, same process, same database.

Run: ``.venv/bin/python benchmarks/sqlalchemy_models.py [--users 10000] [--queries 300]
[--no-postgres] [--no-sqlite] [--vacuum] [--plot docs/img/sqlalchemy_models.png]``

For each database (a SQLite file; PostgreSQL when SCIM2_CORE_TEST_POSTGRES, default
postgresql://postgres@127.0.0.1:5432/test, is reachable), both backends hold the same
``--users`` users (SQLAlchemyBackend in an app's ``User``/``Team`` tables, SQLBackend in its own
``scim_*`` tables, side by side in one database) and two groups of 1k and 10k members. The
app's users are inserted by the app itself (one ``INSERT`` of many rows, as an app that had
its users before SCIM) and adopted by SQLAlchemyBackend on its first search; SQLBackend's are
loaded with ``create_many``. On PostgreSQL the database is then analysed (``ANALYZE``), as
autovacuum would have done on a database loaded a while ago; with ``--vacuum``, vacuumed
too (``VACUUM ANALYZE``: the rows the load's member touches left dead are gone and the
visibility map is set, as autovacuum leaves the tables a minute after a load; SQLBackend's
``create_many`` vacuums its own tables either way). Timed, p50 and p99 in ms,
through the Backend protocol the engine calls, the two backends **interleaved** sample by
sample (which one goes first alternates):

* ``get by id`` — ``get()`` of a random user;
* ``userName eq`` — ``search()`` with a bound ``userName eq "<random user, mixed case>"``;
* ``page 100`` — ``search()`` with no filter, 100 resources from a random offset, default order;
* ``add to 1k`` / ``add to 10k`` — adding one member to a group, what a PATCH ``add members``
  makes the engine call: ``update_members()`` on a backend with the ``MemberRows``
  capability, ``update()`` otherwise; the member is removed again, untimed.

Then the same five cases **through the engine** (``Engine.handle``, the request an IdP sends:
``GET /Users/<id>``, ``GET /Users?filter=userName eq "..."``, ``GET /Users?startIndex=..&count=100``,
``PATCH /Groups/<id>`` with one ``add members`` operation), again interleaved: the figure a
user sees, parsing, rendering and the engine's own work included.

The ratio SQLAlchemyBackend / SQLBackend (p50 wall time) follows each line, then the same
ratio of the calls' CPU time in this process (steadier on a loaded machine; on PostgreSQL it
leaves the server's work out); the target is at most 1.5 on each, and the member add flat in
the group's size. With ``--plot``, a bar chart of the
ratios per database and level is written there (matplotlib, the benchmark's own dependency).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import scim2_models
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from scim2_core import Engine, Options
from scim2_core.backends import Backend, MemberRows, SearchQuery, SQLBackend
from scim2_core.filter import bind, parse_filter
from scim2_core.mapping import Field, Members, ResourceMapping
from scim2_core.schema import GROUP_URN, USER_URN, resource_type_from_model
from scim2_core_sqlalchemy import SQLAlchemyBackend

USER = resource_type_from_model(scim2_models.User[scim2_models.EnterpriseUser])
GROUP = resource_type_from_model(scim2_models.Group)
PG_URL = os.environ.get("SCIM2_CORE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


class Base(DeclarativeBase):
    pass


team_members = sa.Table(
    "team_members",
    Base.metadata,
    sa.Column("team_id", sa.ForeignKey("teams.id"), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), primary_key=True),
)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(255), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(255))
    first_name: Mapped[str | None] = mapped_column(sa.String(150))
    last_name: Mapped[str | None] = mapped_column(sa.String(150))
    display_name: Mapped[str | None] = mapped_column(sa.String(255))
    is_active: Mapped[bool] = mapped_column(default=True)


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    members: Mapped[list[User]] = relationship(secondary=team_members)


MAPPINGS = (
    ResourceMapping(
        resource_type="User",
        model="User",
        fields=(
            Field(attribute="userName", field="username"),
            Field(attribute='emails[type eq "work"].value', field="email"),
            Field(attribute="name.givenName", field="first_name"),
            Field(attribute="name.familyName", field="last_name"),
            Field(attribute="displayName", field="display_name"),
            Field(attribute="active", field="is_active"),
        ),
    ),
    ResourceMapping(
        resource_type="Group",
        model="Team",
        fields=(Field(attribute="displayName", field="name"),),
        members=Members(relation="members"),
    ),
)


def make_user(i: int) -> dict[str, Any]:
    # A uuid, as the engine gives a resource it creates (and as SQLAlchemyBackend gives the
    # app's rows it adopts): ids of another length or alphabet would make the two sides'
    # responses and indexes differ in size, not in the backends' work.
    uid = str(uuid.UUID(int=random.Random(i).getrandbits(128), version=4))
    return {
        "schemas": [USER_URN],
        "id": uid,
        "userName": f"user{i:07d}@Example.com",
        "externalId": f"ext-{i}",
        "displayName": f"User Number {i}",
        "name": {"givenName": f"Given{i % 997}", "familyName": f"Family{i % 1009}"},
        "active": i % 7 != 0,
        "emails": [{"value": f"user{i}@example.com", "type": "work", "primary": True}],
        "meta": {
            "resourceType": "User",
            "created": f"2024-01-01T00:00:{i % 60:02d}.{i % 1000:03d}Z",
            "lastModified": "2024-01-01T00:00:00.000Z",
            "version": 'W/"1"',
        },
    }


def make_group(gid: str, members: list[str]) -> dict[str, Any]:
    return {
        "schemas": [GROUP_URN],
        "id": gid,
        "displayName": gid,
        "members": [{"value": m, "type": "User"} for m in members],
        "meta": {
            "resourceType": "Group",
            "created": "2024-01-02T00:00:00.000Z",
            "lastModified": "2024-01-02T00:00:00.000Z",
            "version": 'W/"1"',
        },
    }


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return statistics.median(samples) * 1000, p99 * 1000


def load_sql(backend: SQLBackend, users: int) -> list[str]:
    """``users`` users plus 100 in no group (the members the timed adds add); their ids."""
    resources = [make_user(i) for i in range(users + 100)]
    backend.create_many(None, USER, resources)
    return [r["id"] for r in resources]


def load_app(engine: sa.Engine, backend: SQLAlchemyBackend, users: int) -> list[str]:
    """The app's own rows, inserted by the app, then adopted by SCIM; their SCIM ids."""
    rows = [
        {
            "username": f"user{i:07d}@Example.com",
            "email": f"user{i}@example.com",
            "first_name": f"Given{i % 997}",
            "last_name": f"Family{i % 1009}",
            "display_name": f"User Number {i}",
            "is_active": i % 7 != 0,
        }
        for i in range(users + 100)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(User), rows)
    page = backend.search(None, USER, SearchQuery(count=users + 100))  # adopts them
    by_name = {r["userName"]: r["id"] for r in page.resources}
    return [by_name[row["username"]] for row in rows]


def load_groups(backend: Backend, ids: list[str], users: int) -> None:
    backend.create(None, GROUP, make_group("g1k", ids[:1000]), members=ids[:1000])
    big = ids[: min(users, 10000)]
    backend.create(None, GROUP, make_group("g10k", big), members=big)


def group_id(backend: Backend, name: str) -> str:
    found = backend.search(
        None, GROUP, SearchQuery(filter=bind(parse_filter(f'displayName eq "{name}"'), GROUP))
    )
    return str(found.resources[0]["id"])


Op = Callable[[], float]


def cases(get: Op, eq: Op, page: Op, add_1k: Op, add_10k: Op) -> dict[str, Op]:
    """The five timed cases by name, in the order of the tables and plot."""
    return {
        "get by id": get,
        "userName eq": eq,
        "page 100": page,
        "add to 1k": add_1k,
        "add to 10k": add_10k,
    }


def ops(backend: Backend, ids: list[str], users: int) -> dict[str, Op]:
    """The timed operations on ``backend``; each returns its own duration in seconds."""
    rng = random.Random(7)

    def get() -> float:
        id = ids[rng.randrange(users)]
        start = time.perf_counter()
        found = backend.get(None, USER, id)
        took = time.perf_counter() - start
        assert found is not None
        return took

    def eq() -> float:
        name = f"USER{rng.randrange(users):07d}@example.COM"
        start = time.perf_counter()
        page = backend.search(
            None, USER, SearchQuery(filter=bind(parse_filter(f'userName eq "{name}"'), USER))
        )
        took = time.perf_counter() - start
        assert page.total == 1
        return took

    def page() -> float:
        offset = rng.randrange(max(users - 100, 1))
        start = time.perf_counter()
        found = backend.search(None, USER, SearchQuery(offset=offset, count=100))
        took = time.perf_counter() - start
        assert len(found.resources) == 100
        return took

    extra = ids[users : users + 100]

    def adder(gid: str) -> Op:
        turn = iter(range(10**9))

        def add_one() -> float:
            member = extra[next(turn) % len(extra)]

            def add(current: dict[str, Any]) -> dict[str, Any]:
                current["members"] = [*current.get("members", []), {"value": member}]
                return current

            def remove(current: dict[str, Any]) -> dict[str, Any]:
                current["members"] = [m for m in current["members"] if m["value"] != member]
                return current

            start = time.perf_counter()
            if isinstance(backend, MemberRows):
                backend.update_members(None, GROUP, gid, [member], add, members=[member])
            else:
                backend.update(None, GROUP, gid, add, members=[member])
            took = time.perf_counter() - start
            if isinstance(backend, MemberRows):
                backend.update_members(None, GROUP, gid, [member], remove)
            else:
                backend.update(None, GROUP, gid, remove)
            return took

        return add_one

    return cases(get, eq, page, adder(group_id(backend, "g1k")), adder(group_id(backend, "g10k")))


PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def engine_ops(engine: Engine, ids: list[str], users: int, groups: dict[str, str]) -> dict[str, Op]:
    """The same cases as :func:`ops`, as requests to ``engine.handle``."""
    rng = random.Random(7)

    def call(method: str, path: str, body: Any = None, **query: str) -> tuple[float, Any]:
        request: dict[str, Any] = {"method": method, "path": path, "query": query}
        if body is not None:
            request["body"] = json.dumps(body).encode()
            request["headers"] = {"Content-Type": "application/scim+json"}
        start = time.perf_counter()
        response = engine.handle(request)  # type: ignore[arg-type]
        took = time.perf_counter() - start
        assert response["status"] in (200, 204), response
        return took, response

    def get() -> float:
        return call("GET", f"/Users/{ids[rng.randrange(users)]}")[0]

    def eq() -> float:
        name = f"USER{rng.randrange(users):07d}@example.COM"
        took, response = call("GET", "/Users", filter=f'userName eq "{name}"')
        assert json.loads(response["body"])["totalResults"] == 1
        return took

    def page() -> float:
        start = rng.randrange(max(users - 100, 1)) + 1
        return call("GET", "/Users", startIndex=str(start), count="100")[0]

    extra = ids[users : users + 100]

    def adder(gid: str) -> Op:
        turn = iter(range(10**9))

        def add_one() -> float:
            member = extra[next(turn) % len(extra)]
            op = {"op": "add", "path": "members", "value": [{"value": member}]}
            took = call("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_URN], "Operations": [op]})[0]
            gone = {"op": "remove", "path": f'members[value eq "{member}"]'}
            call("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_URN], "Operations": [gone]})
            return took

        return add_one

    return cases(get, eq, page, adder(groups["g1k"]), adder(groups["g10k"]))


def interleaved(
    a: Op, b: Op, n: int, cpu: tuple[list[float], list[float]] | None = None
) -> tuple[list[float], list[float]]:
    """``n`` samples of each, alternately, the first of each pair alternating too; with
    ``cpu``, each call's CPU time of this thread (the whole call) goes there too."""
    sa_, sb = [], []

    def timed(op: Op, out: list[float], cpu_out: list[float] | None) -> None:
        start = time.thread_time()
        out.append(op())
        if cpu_out is not None:
            cpu_out.append(time.thread_time() - start)

    ca, cb = cpu if cpu is not None else (None, None)
    for i in range(n):
        if i % 2:
            timed(b, sb, cb)
            timed(a, sa_, ca)
        else:
            timed(a, sa_, ca)
            timed(b, sb, cb)
    return sa_, sb


#: Per level ("backend", "engine"), per case: (SQLAlchemyBackend, SQLBackend) p50/p99 ms.
Results = dict[str, dict[str, tuple[tuple[float, float], tuple[float, float]]]]


def compare(a_ops: dict[str, Op], b_ops: dict[str, Op], queries: int) -> dict[str, Any]:
    """Each case of both, interleaved; a line per case; the p50/p99 of each."""
    counts = {"page 100": max(queries // 5, 10), "add to 1k": max(queries // 10, 10)}
    counts["add to 10k"] = counts["add to 1k"]
    results: dict[str, Any] = {}
    print(
        f"{'':14}{'SQLAlchemyBackend p50/p99':>28}{'SQLBackend p50/p99':>24}{'ratio p50':>11}"
        f"{'CPU ratio p50':>15}"
    )
    for key, op in a_ops.items():
        cpu: tuple[list[float], list[float]] = ([], [])
        a, b = interleaved(op, b_ops[key], counts.get(key, queries), cpu)
        pa, pb = percentiles(a), percentiles(b)
        results[key] = (pa, pb)
        # CPU time of this process's thread per call (the database server's work on
        # PostgreSQL not included): steadier than wall time on a loaded machine.
        cpu_ratio = statistics.median(cpu[0]) / max(statistics.median(cpu[1]), 1e-9)
        print(
            f"{key:14}{pa[0]:>16.2f} / {pa[1]:<9.2f}{pb[0]:>12.2f} / {pb[1]:<9.2f}"
            f"{pa[0] / pb[0]:>9.2f}{cpu_ratio:>15.2f}",
            flush=True,
        )
    return results


def run(
    name: str, app_url: str, sql_url: str, users: int, queries: int, vacuum: bool = False
) -> Results:
    engine = sa.create_engine(app_url)
    Base.metadata.create_all(engine)
    models = SQLAlchemyBackend(engine, MAPPINGS, models=[User, Team])
    sql = SQLBackend(sql_url)
    # Each binds its backend. Every read goes to the backend on both sides: SQLBackend's
    # engine would otherwise answer a GET asked again from the answers it keeps on SQLite
    # (Options.read_cache_bytes), and this compares the backends' reads.
    reads = Options(read_cache_bytes=0)
    scim_a, scim_b = Engine(models, options=reads), Engine(sql, options=reads)
    print(f"\n{name}, {users} users: loading...", flush=True)
    start = time.perf_counter()
    app_ids = load_app(engine, models, users)
    load_groups(models, app_ids, users)
    loaded_app = time.perf_counter() - start
    start = time.perf_counter()
    sql_ids = load_sql(sql, users)
    load_groups(sql, sql_ids, users)
    loaded_sql = time.perf_counter() - start
    if engine.dialect.name == "postgresql":
        # The planner's statistics, as autovacuum would have gathered them by now on a
        # database that was loaded a while ago (without them it estimates one row per
        # just-loaded table and picks nested loops over the association table).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE" if vacuum else "ANALYZE")
    results: Results = {}
    print("through the Backend protocol:")
    results["backend"] = compare(ops(models, app_ids, users), ops(sql, sql_ids, users), queries)
    groups_a = {g: group_id(models, g) for g in ("g1k", "g10k")}
    groups_b = {g: group_id(sql, g) for g in ("g1k", "g10k")}
    print("through Engine.handle:")
    results["engine"] = compare(
        engine_ops(scim_a, app_ids, users, groups_a),
        engine_ops(scim_b, sql_ids, users, groups_b),
        queries,
    )
    print(f"{'load s':14}{loaded_app:>16.1f}{'':12}{loaded_sql:>12.1f}")
    models.close()
    sql.close()
    engine.dispose()
    return results


def plot(path: str, results: dict[str, Results]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = ("backend", "engine")
    cases = list(next(iter(results.values()))["backend"])
    fig, axes = plt.subplots(1, len(levels), figsize=(12, 4), sharey=True)
    width = 0.8 / len(results)
    for ax, level in zip(axes, levels, strict=True):
        for n, (db, res) in enumerate(results.items()):
            ratios = [res[level][c][0][0] / res[level][c][1][0] for c in cases]
            xs = [i + n * width for i in range(len(cases))]
            ax.bar(xs, ratios, width, label=db)
        ax.axhline(1.5, color="red", linestyle="--", label="target 1.5")
        ax.set_xticks([i + width * (len(results) - 1) / 2 for i in range(len(cases))], cases)
        ax.set_title("Backend protocol" if level == "backend" else "Engine.handle")
    axes[0].set_ylabel("SQLAlchemyBackend / SQLBackend, p50")
    axes[0].legend()
    fig.suptitle("The app's own SQLAlchemy models beside SQLBackend (same database)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"\nplot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--vacuum", action="store_true", help="PostgreSQL: VACUUM ANALYZE after the load"
    )
    parser.add_argument("--plot", help="write a bar chart of the ratios to this PNG file")
    args = parser.parse_args()
    results: dict[str, Results] = {}
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "app.db"
            results["SQLite"] = run(
                "SQLite", f"sqlite:///{path}", f"sqlite:///{path}", args.users, args.queries
            )
    if not args.no_postgres:
        pg = run_postgres(args.users, args.queries, args.vacuum)
        if pg is not None:
            results["PostgreSQL"] = pg
    if args.plot:
        plot(args.plot, results)


def run_postgres(users: int, queries: int, vacuum: bool = False) -> Results | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            db = f"scim2bench_{uuid.uuid4().hex[:10]}"
            conn.execute(f'CREATE DATABASE "{db}"')
    except Exception as exc:
        print(f"\nPostgreSQL skipped: {exc}")
        return None
    url = PG_URL.rsplit("/", 1)[0] + "/" + db
    try:
        return run(
            "PostgreSQL",
            url.replace("postgresql://", "postgresql+psycopg://", 1),
            url,
            users,
            queries,
            vacuum,
        )
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
