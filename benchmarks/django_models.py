"""DjangoModelBackend beside django-scim2 0.23, in one Django process, through Django's test Client.

    pip install 'django-scim2==0.23' matplotlib     # benchmark-only, not dependencies of scim2-core
    python benchmarks/django_models.py                                          # SQLite files
    python benchmarks/django_models.py postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/django_models.py --quick                                  # 2,000 users, few requests
    python benchmarks/django_models.py --baseline ../main                       # + main's backend
    python benchmarks/django_models.py --cpu                                    # CPU time, not wall
    python benchmarks/django_models.py --prepared postgresql://...    # prepared statements, both sides
    python benchmarks/django_models.py --only PATCH --only "userName eq"      # some cases only
    python benchmarks/django_models.py --vacuum postgresql://...   # VACUUM ANALYZE after the load
    python benchmarks/django_models.py --plot docs/img/django-models.png sqlite.json pg.json

Both servers run in one Django project: the same settings, middleware (``startproject``'s
stack), models and data, each in a database of its own (two SQLite files, or two PostgreSQL
databases made for the run and dropped after it):

* django-scim2 at ``/scim/v2/``, set up as its docs and test suite require: the user model
  swapped for one with its mixins, a group model with its group mixin, a bearer token
  accepted by a subclass of its ``AUTH_CHECK_MIDDLEWARE`` (the documented hook);
* scim2-core's ``DjangoModelBackend`` at ``/core/v2/``, mapping that same user model and
  ``auth.Group`` (its members through ``User.groups``), with ``bearer_tokens``.

Data on each side: 10,000 users made by the app with ``bulk_create`` (scim2-core adopts them
on its first search; django-scim2 needs its ``scim_id`` columns filled by hand), and groups
of 100, 1,000 and 10,000 members. Each case is timed request by request, the two sides
interleaved in a random order, the same logical user on both in one iteration, after
warm-ups; the figure is the median latency, req/s = 1/median, ratio = scim2-core's req/s over
django-scim2's. Every response is checked (status and content); a wrong answer stops the
run. Results are printed and written as JSON (``--out``); ``--plot`` draws the ratios and
the member-add latency against the group's size from one or more such files.

``--baseline CHECKOUT`` adds a third side, ``scim2-core before`` at ``/before/v2/``: the
``DjangoModelBackend`` of another checkout's ``adapters/scim2_core_django/`` (its
``backend.py`` and ``_backend_*`` modules over this tree's models, engine and mapping, in a
database of its own), interleaved with the others, so
a change to the backend is measured before and after in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
# The script's folder comes off the path (its modules are imported by name below).
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
import http.client  # noqa: E402
import http.cookies  # noqa: E402, F401

sys.path[:0] = [HERE, os.path.join(HERE, "..", "adapters"), os.path.join(HERE, "..")]

TOKEN = "bench-token-not-secret"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SIZES = (100, 1_000, 10_000)
#: What a request's time is: wall time (``perf_counter``), or with ``--cpu`` the process's
#: CPU time (``process_time``: the Python work of both sides, without waiting for the disk's
#: fsync at each commit or for a core on a loaded machine; the database's own work is
#: counted on SQLite, which runs in the process, but not on PostgreSQL).
CLOCK = [time.perf_counter]
#: What runs on each side's database after the load: ``ANALYZE``, or ``VACUUM ANALYZE``
#: with ``--vacuum`` (PostgreSQL only).
MAINTENANCE = ["ANALYZE"]


# -- the Django project ----------------------------------------------------------------------


ALIASES = ["default", "core"]  # django-scim2's, scim2-core's; "before" with --baseline
#: PostgreSQL connection options of every side's database (``--prepared``).
PG_OPTIONS: dict[str, Any] = {}


def _databases(target: str) -> tuple[dict[str, Any], list[str]]:
    """A database per side: ``default`` (django-scim2), ``core`` (scim2-core), ``before``."""
    if not target.startswith("postgresql://"):
        folder = tempfile.mkdtemp(prefix="scim2dj-bench-")
        # WAL and synchronous=FULL on both: scim2-core's own SQLBackend's durability.
        init = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
        return {
            alias: {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.path.join(folder, f"{alias}.sqlite3"),
                "OPTIONS": {"transaction_mode": "IMMEDIATE", "init_command": init},
            }
            for alias in ALIASES
        }, []
    import psycopg

    url = urlsplit(target)
    names = [f"scim2dj_bench_{uuid.uuid4().hex[:8]}" for _ in ALIASES]
    with psycopg.connect(target, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    return {
        alias: {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": url.username or "",
            "HOST": url.hostname or "",
            "PORT": url.port or "",
            "OPTIONS": dict(PG_OPTIONS),
        }
        for alias, name in zip(ALIASES, names, strict=True)
    }, names


def configure(target: str) -> list[str]:
    """Django settings, migrations made and applied; the PostgreSQL databases to drop."""
    import django
    from django.conf import settings

    databases, names = _databases(target)
    migrations = tempfile.mkdtemp(prefix="scim2dj-bench-migrations-")
    os.makedirs(os.path.join(migrations, "bench_migrations"))
    with open(os.path.join(migrations, "bench_migrations", "__init__.py"), "w"):
        pass
    sys.path.insert(0, migrations)
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "django_scim",
            "scim2_core_django",
            "django_models_app",
        ],
        MIDDLEWARE=[  # startproject's stack, less the admin's messages
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        DATABASES=databases,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        AUTH_USER_MODEL="django_models_app.User",
        MIGRATION_MODULES={"django_models_app": "bench_migrations"},
        USE_TZ=True,
        SCIM_SERVICE_PROVIDER={
            "NETLOC": "testserver",
            "AUTHENTICATION_SCHEMES": [
                {"type": "oauthbearertoken", "name": "Bearer", "description": "token"}
            ],
            "GROUP_MODEL": "django_models_app.models.ScimGroup",
            "AUTH_CHECK_MIDDLEWARE": f"{__name__}.BearerAuthCheck",
        },
    )
    django.setup()
    from django.core.management import call_command

    call_command("makemigrations", "django_models_app", verbosity=0)
    for alias in ALIASES:
        call_command("migrate", database=alias, verbosity=0)
    return names


def _bearer_auth_check() -> type:
    """django-scim2's documented hook, accepting the benchmark's bearer token (it has no
    token authentication of its own); the principal is not a database user."""
    from django_scim.middleware import SCIMAuthCheckMiddleware

    class Principal:
        is_authenticated = True
        is_active = True
        pk = None

    class Check(SCIMAuthCheckMiddleware):  # type: ignore[misc]
        def process_request(self, request: Any) -> Any:
            if request.headers.get("Authorization") == f"Bearer {TOKEN}":
                request.user = Principal()
            return super().process_request(request)

    return Check


def __getattr__(name: str) -> Any:  # django-scim2 imports its hook by dotted path
    if name == "BearerAuthCheck":
        return _bearer_auth_check()
    raise AttributeError(name)


urlpatterns: list[Any] = []


def _baseline_backend(checkout: str) -> Any:
    """``DjangoModelBackend`` as ``checkout``'s adapter has it: its ``backend.py`` and the
    ``_backend_*`` modules beside it, as a package of their own over this tree's models and
    mapping (one set of Django models per process)."""
    import importlib
    import types

    import scim2_core_django.mapping
    import scim2_core_django.models

    name = "scim2_core_django_baseline"
    package = types.ModuleType(name)
    package.__path__ = [os.path.join(checkout, "adapters", "scim2_core_django")]
    sys.modules[name] = package
    sys.modules[f"{name}.models"] = scim2_core_django.models
    sys.modules[f"{name}.mapping"] = scim2_core_django.mapping
    return importlib.import_module(f"{name}.backend").DjangoModelBackend


def mount(baseline: str | None = None) -> Any:
    """The servers' URLs; scim2-core's engine."""
    from django.urls import include, path

    from scim2_core import Engine, bearer_tokens
    from scim2_core_django import scim_urlpatterns
    from scim2_core_django.backend import DjangoModelBackend
    from scim2_core_django.mapping import group_mapping, user_mapping

    backend = DjangoModelBackend(
        [user_mapping("django_models_app.User"), group_mapping("auth.Group")], using="core"
    )
    engine = Engine(backend, authenticate=bearer_tokens([TOKEN]))
    urlpatterns[:] = [
        path("scim/v2/", include(("django_scim.urls", "scim"), namespace="scim")),
        path("core/v2/", include(scim_urlpatterns(engine))),
    ]
    if baseline:
        before = _baseline_backend(baseline)(
            [user_mapping("django_models_app.User"), group_mapping("auth.Group")], using="before"
        )
        older = Engine(before, authenticate=bearer_tokens([TOKEN]))
        urlpatterns.append(path("before/v2/", include(scim_urlpatterns(older))))
    return engine


# -- the two sides ---------------------------------------------------------------------------


@dataclass
class Side:
    """One server: its URL prefix, its users' ids by index and its groups by size."""

    name: str
    prefix: str
    alias: str
    ids: list[str] = field(default_factory=list)
    groups: dict[int, str] = field(default_factory=dict)
    group_pks: dict[int, int] = field(default_factory=dict)


class Client:
    """Django's test Client with the bearer token and SCIM's media type."""

    def __init__(self) -> None:
        from django.test import Client as DjangoClient

        self.client = DjangoClient(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    def get(self, url: str, **query: str) -> Any:
        return self.client.get(url, query)

    def patch(self, url: str, operations: list[dict[str, Any]], **query: str) -> Any:
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        body = json.dumps({"schemas": [PATCH_OP], "Operations": operations})
        return self.client.patch(url, body, content_type="application/scim+json")


def load(users: int, sides: list[Side], client: Client) -> None:
    """The same users and groups on both sides, made by the app (``bulk_create``)."""
    from django.contrib.auth.models import Group
    from django.db.models import CharField
    from django.db.models.functions import Cast
    from django_models_app.models import ScimGroup, User

    def rows() -> list[Any]:
        return [
            User(
                username=f"user{i:05d}",
                email=f"user{i}@example.com",
                first_name=f"First{i}",
                last_name=f"Last{i}",
            )
            for i in range(users)
        ]

    for side in sides:
        started = time.perf_counter()
        User.objects.using(side.alias).bulk_create(rows(), batch_size=2000)
        pks = list(User.objects.using(side.alias).order_by("pk").values_list("pk", flat=True))
        if side.name == "django-scim2":
            # scim_id is filled by Model.save() only: rows made otherwise have none.
            User.objects.using(side.alias).update(
                scim_id=Cast("id", CharField()), scim_username=Cast("username", CharField())
            )
            side.ids = [str(pk) for pk in pks]
            for size in SIZES:
                group = ScimGroup(name=f"g{size}")
                group.save(using=side.alias)
                through = User.scim_groups.through
                through.objects.using(side.alias).bulk_create(
                    [through(user_id=pk, scimgroup_id=group.pk) for pk in pks[:size]],
                    batch_size=5000,
                )
                side.groups[size] = str(group.pk)
                side.group_pks[size] = group.pk
        else:
            listed = client.get(f"{side.prefix}/Users", count="1")  # adopts the app's rows
            assert listed.status_code == 200, listed.content
            by_name: dict[str, str] = {}
            while len(by_name) < users:  # the server's page size may be smaller
                page = client.get(f"{side.prefix}/Users", startIndex=str(len(by_name) + 1))
                by_name.update((r["userName"], r["id"]) for r in page.json()["Resources"])
            side.ids = [by_name[f"user{i:05d}"] for i in range(users)]
            for size in SIZES:
                group = Group.objects.using(side.alias).create(name=f"g{size}")
                through = User.groups.through
                through.objects.using(side.alias).bulk_create(
                    [through(user_id=pk, group_id=group.pk) for pk in pks[:size]],
                    batch_size=5000,
                )
                found = client.get(
                    f"{side.prefix}/Groups",
                    filter=f'displayName eq "g{size}"',
                    excludedAttributes="members",
                )
                side.groups[size] = found.json()["Resources"][0]["id"]
                side.group_pks[size] = group.pk
        print(
            f"{side.name}: {users} users and groups loaded in {time.perf_counter() - started:.1f} s"
        )
    from django.db import connections

    for side in sides:  # planner statistics, as autovacuum or a nightly ANALYZE keeps them
        with connections[side.alias].cursor() as cursor:
            # --vacuum: the visibility map set too, as autovacuum leaves a table a minute
            # after a bulk load (PostgreSQL 13+): index-only scans then skip the table
            pg = connections[side.alias].vendor == "postgresql"
            cursor.execute(MAINTENANCE[0] if pg else "ANALYZE")


# -- timing ----------------------------------------------------------------------------------


@dataclass
class Case:
    """One timed case: per side, a request for iteration ``i`` and a check of its answer."""

    label: str
    n: int
    warm: int
    run: Callable[[Side, int], Any]
    check: Callable[[Side, int, Any], None]
    before: Callable[[Side, int], None] | None = None
    sides: tuple[str, ...] = ()
    population: int = 0  # iteration ``i`` picks a user below this (0: any user)


def time_case(case: Case, sides: list[Side], users: int, rng: random.Random) -> dict[str, float]:
    """Median latency of each side, interleaved request by request in a random order."""
    chosen = [s for s in sides if not case.sides or s.name in case.sides]
    times: dict[str, list[float]] = {s.name: [] for s in chosen}
    for it in range(case.warm + case.n):
        i = rng.randrange(case.population or users)
        order = chosen[:]
        rng.shuffle(order)
        for side in order:
            if case.before is not None:
                case.before(side, i)
            started = CLOCK[0]()
            answer = case.run(side, i)
            elapsed = CLOCK[0]() - started
            case.check(side, i, answer)
            if it >= case.warm:
                times[side.name].append(elapsed)
        if (it + 1) % max(1, (case.warm + case.n) // 4) == 0:
            print(f"  {case.label}: {it + 1}/{case.warm + case.n}", file=sys.stderr)
    return {name: statistics.median(ts) for name, ts in times.items()}


def cases(users: int, client: Client, fraction: float) -> list[Case]:
    """The cases of issue #11, each with the check of every answer."""

    def scale(n: int) -> int:
        return max(5, round(n * fraction))

    def status(answer: Any, expected: int = 200) -> None:
        assert answer.status_code == expected, (answer.status_code, answer.content[:300])

    def get_one(side: Side, i: int) -> Any:
        return client.get(f"{side.prefix}/Users/{side.ids[i]}")

    def check_one(side: Side, i: int, answer: Any) -> None:
        status(answer)
        assert answer.json()["id"] == side.ids[i]

    def eq(side: Side, i: int) -> Any:
        return client.get(f"{side.prefix}/Users", filter=f'userName eq "USER{i:05d}"')

    def check_eq(side: Side, i: int, answer: Any) -> None:
        status(answer)
        body = answer.json()
        assert body["totalResults"] == 1, body
        [found] = body["Resources"]
        assert found["id"] == side.ids[i]
        assert found["userName"].lower() == f"user{i:05d}"

    def page(side: Side, i: int) -> Any:
        return client.get(
            f"{side.prefix}/Users", startIndex=str(1 + i % (users - 100)), count="100"
        )

    def check_page(side: Side, i: int, answer: Any) -> None:
        status(answer)
        body = answer.json()
        assert body["totalResults"] == users
        assert body["itemsPerPage"] == 100
        assert body["startIndex"] == 1 + i % (users - 100)
        assert len({r["id"] for r in body["Resources"]}) == 100

    def deactivate(side: Side, i: int) -> Any:
        op = {"op": "replace", "path": "active", "value": False}
        return client.patch(f"{side.prefix}/Users/{side.ids[i]}", [op])

    def check_inactive(side: Side, i: int, answer: Any) -> None:
        status(answer)
        assert answer.json()["active"] is False

    out = [
        Case("GET /Users/<id>", scale(300), 20, get_one, check_one),
        Case('GET /Users?filter=userName eq "<other case>"', scale(300), 20, eq, check_eq),
        Case("GET /Users?startIndex=<rand>&count=100", scale(200), 5, page, check_page),
        Case("PATCH active=false (RFC form)", scale(300), 20, deactivate, check_inactive),
    ]
    for size in SIZES:
        if size <= users:
            out.extend(_member_cases(size, client, scale, status))
    return out


def _member_cases(
    size: int,
    client: Client,
    scale: Callable[[int], int],
    status: Callable[..., None],
) -> list[Case]:
    """Add one member to the group of ``size`` (users 0 to size-1): an untimed step first
    removes that member, so the group has size-1 members before the add and size after."""
    from django_models_app.models import User

    n, warm = {100: (200, 10), 1_000: (200, 10), 10_000: (40, 3)}[size]

    def remove(side: Side, i: int) -> None:
        if side.name == "django-scim2":
            User.scim_groups.through.objects.using(side.alias).filter(
                scimgroup_id=side.group_pks[size], user__username=f"user{i:05d}"
            ).delete()
            return
        op = {"op": "remove", "path": f'members[value eq "{side.ids[i]}"]'}
        url = f"{side.prefix}/Groups/{side.groups[size]}"
        status(client.patch(url, [op], excludedAttributes="members"))

    def add(query: dict[str, str]) -> Callable[[Side, int], Any]:
        def run(side: Side, i: int) -> Any:
            op = {"op": "add", "path": "members", "value": [{"value": side.ids[i]}]}
            return client.patch(f"{side.prefix}/Groups/{side.groups[size]}", [op], **query)

        return run

    def whole(side: Side, i: int, answer: Any) -> None:
        status(answer)
        members = answer.json()["members"]
        assert len(members) == size
        assert side.ids[i] in {m["value"] for m in members}

    def short(side: Side, i: int, answer: Any) -> None:
        status(answer)
        assert "members" not in answer.json()
        listed = client.get(
            f"{side.prefix}/Groups",
            filter=f'members.value eq "{side.ids[i]}" and displayName eq "g{size}"',
            excludedAttributes="members",
        )
        assert listed.json()["totalResults"] == 1

    return [
        Case(
            f"PATCH add 1 member to the {size:,} group",
            scale(n),
            warm,
            add({}),
            whole,
            before=remove,
            population=size,
        ),
        Case(
            f"PATCH add 1 member to the {size:,} group, excludedAttributes=members",
            scale(n),
            warm,
            add({"excludedAttributes": "members"}),
            short,
            before=remove,
            sides=("scim2-core", "scim2-core before"),
            population=size,
        ),
    ]


# -- the run ---------------------------------------------------------------------------------


def run(
    target: str,
    users: int,
    fraction: float,
    out: str | None,
    baseline: str | None,
    only: list[str] | None = None,
) -> None:
    if baseline:
        ALIASES.append("before")
    names = configure(target)
    mount(baseline)
    client = Client()
    core = Side("scim2-core", "/core/v2", "core")
    theirs = Side("django-scim2", "/scim/v2", "default")
    sides = [theirs, core]
    if baseline:
        sides.append(Side("scim2-core before", "/before/v2", "before"))
    results: list[dict[str, Any]] = []
    try:
        load(users, sides, client)
        rng = random.Random(11)
        for case in cases(users, client, fraction):
            if only and not any(o in case.label for o in only):
                continue
            medians = time_case(case, sides, users, rng)
            row: dict[str, Any] = {"case": case.label, "n": case.n, "median_s": medians}
            line = f"{case.label:70s} n={case.n:4d}"
            for name, median in medians.items():
                line += f"  {name} {1 / median:8.1f}/s ({median * 1000:7.2f} ms)"
            if "django-scim2" in medians:
                row["ratio"] = medians["django-scim2"] / medians["scim2-core"]
                line += f"  ratio {row['ratio']:.1f}x"
            if "scim2-core before" in medians:  # after ÷ before, in req/s
                row["speedup"] = medians["scim2-core before"] / medians["scim2-core"]
                line += f"  after/before {row['speedup']:.1f}x"
            print(line)
            results.append(row)
    finally:
        from django.db import connections

        connections.close_all()
        if names:
            import psycopg

            with psycopg.connect(target, autocommit=True) as conn:
                for name in names:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    database = "PostgreSQL" if names else "SQLite"
    if out:
        with open(out, "w") as f:
            json.dump({"database": database, "users": users, "results": results}, f, indent=1)


def plot(path: str, files: list[str]) -> None:
    """Ratios per case, and member-add latency against the group's size, per database."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = []
    for name in files:
        with open(name) as f:
            runs.append(json.load(f))
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    labels = [r["case"] for r in runs[0]["results"] if "ratio" in r]
    width = 0.8 / len(runs)
    for k, data in enumerate(runs):
        ratios = {r["case"]: r["ratio"] for r in data["results"] if "ratio" in r}
        xs = [i + k * width for i in range(len(labels))]
        bars = left.bar(xs, [ratios[label] for label in labels], width, label=data["database"])
        left.bar_label(bars, fmt="%.1f×", fontsize=7)
        for size_side, style in (("scim2-core", "-o"), ("django-scim2", "--s")):
            points = [
                (size, r["median_s"][size_side] * 1000)
                for size in SIZES
                for r in data["results"]
                if r["case"] == f"PATCH add 1 member to the {size:,} group"
            ]
            right.plot(*zip(*points, strict=True), style, label=f"{size_side}, {data['database']}")
        points = [
            (size, r["median_s"]["scim2-core"] * 1000)
            for size in SIZES
            for r in data["results"]
            if r["case"].startswith(f"PATCH add 1 member to the {size:,} group, excluded")
        ]
        right.plot(
            *zip(*points, strict=True),
            ":^",
            label=f"scim2-core, no members in the answer, {data['database']}",
        )
    left.axhline(1, color="grey", linewidth=0.8)
    left.set_yscale("log")
    left.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))])
    left.set_xticklabels(
        [label.replace(" (RFC form)", "").replace("GET /Users", "") for label in labels],
        rotation=30,
        ha="right",
        fontsize=7,
    )
    left.set_ylabel("scim2-core req/s ÷ django-scim2 req/s (log)")
    left.set_title("DjangoModelBackend vs django-scim2 0.23")
    left.legend()
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("members in the group")
    right.set_ylabel("median latency of adding one member (ms)")
    right.set_title("Adding one member, by group size")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("target", nargs="*", default=["sqlite"])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="2,000 users, a tenth of the requests")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--plot", help="draw the results of the JSON files given as targets")
    parser.add_argument("--baseline", help="a checkout whose DjangoModelBackend runs beside")
    parser.add_argument("--cpu", action="store_true", help="time CPU (process_time), not wall")
    parser.add_argument(
        "--fraction", type=float, default=1.0, help="run this fraction of each case's requests"
    )
    parser.add_argument(
        "--only",
        action="append",
        help="run only the cases whose label contains this text (repeatable)",
    )
    parser.add_argument(
        "--prepared",
        action="store_true",
        help="PostgreSQL: server-side binding and prepared statements on every side's database "
        "(docs/guide-django-models.md); Django's default is off",
    )
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="VACUUM ANALYZE after the load instead of ANALYZE (PostgreSQL: the visibility "
        "map autovacuum sets, so that index-only scans skip the tables)",
    )
    args = parser.parse_args()
    if args.vacuum:
        MAINTENANCE[0] = "VACUUM ANALYZE"
    if args.prepared:
        PG_OPTIONS.update(server_side_binding=True, prepare_threshold=5)
    if args.plot:
        plot(args.plot, args.target)
        return
    users = 2_000 if args.quick and args.users == 10_000 else args.users
    fraction = 0.1 if args.quick else args.fraction
    if args.cpu:
        CLOCK[0] = time.process_time
    run(args.target[0], users, fraction, args.out, args.baseline, args.only)


if __name__ == "__main__":
    main()
