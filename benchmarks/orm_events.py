"""What durability costs a create on the ORM backends: the outbox and the audit log on,
beside off, over an app's own models.

Run: ``.venv/bin/python benchmarks/orm_events.py [--stores django-sqlite,sa-postgresql,...]
[--batch 50] [--rounds 25] [--threads 1,4] [--share 300]``

The method is ``benchmarks/events.py``'s (imported, not copied): ``POST /Users`` through
:meth:`Engine.handle`, three engines side by side (``off``, ``outbox`` with a handler
delivering as the creates run, ``outbox+audit``), each on a database of its own, timed
batch by batch in an order that rotates each round; reported as the median over the
rounds of ``per create (on) / per create (off) - 1``, in wall time and in this process's
CPU time (delivery and audit writing included). The target is under 25%.

Stores (all four by default):

* ``django-sqlite`` (``DjangoModelBackend`` over ``auth.User``/``auth.Group``, three SQLite
  files with Django's defaults) and ``django-postgresql`` (three databases made for the run
  on SCIM2_CORE_TEST_POSTGRES, default postgresql://postgres@127.0.0.1:5432/test, and
  dropped after it);
* ``sa-sqlite`` (``SQLAlchemyBackend`` over an app's ``Account``/``Team`` with a membership
  table, a SQLite file per set-up, SQLAlchemy's defaults: the rollback journal, no WAL) and
  ``sa-postgresql`` (a schema per set-up on the same server, through psycopg 3, dropped
  after the run).

Another ORM adds itself to :data:`STORES`: a name and a context manager yielding
``make()``, which returns the backend of the next set-up (called once per set-up, in the
order off, outbox, outbox+audit; the context is entered once per thread count), and to
:data:`RECORD` for ``--share``.

``--share N`` measures instead, on one engine with a consumer, what the event write itself
(the backend's ``record``: building the events, numbering and inserting them) takes of a
create's CPU time on the requesting thread (``time.thread_time``, both in the same N
creates): a ratio the load of a shared machine barely moves.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The checkout and its adapters first; this folder is not needed on the path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path[:0] = [os.path.join(ROOT, "adapters"), ROOT]


def _load_events() -> Any:
    """benchmarks/events.py, the method this benchmark shares."""
    spec = importlib.util.spec_from_file_location("bench_events", os.path.join(HERE, "events.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


_events = _load_events()
PG_URL: str = _events.PG_URL
measure = _events.measure
_postgres_ok = _events._postgres_ok

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship  # noqa: E402

from scim2_core import Engine  # noqa: E402
from scim2_core.backends import Backend  # noqa: E402
from scim2_core.mapping import Field, Members, ResourceMapping  # noqa: E402
from scim2_core_sqlalchemy import SQLAlchemyBackend  # noqa: E402

MakeBackend = Callable[[], Backend]

# -- Django ------------------------------------------------------------------------------------

_DJANGO_SETUPS = ("off", "outbox", "outbox_audit")


def _django_settings(with_postgres: bool) -> list[str]:
    """Configure Django once: an SQLite file and (if asked) a PostgreSQL database per
    set-up; returns the PostgreSQL databases made, to drop."""
    import django
    from django.conf import settings

    folder = tempfile.mkdtemp(prefix="scim2-orm-events-")
    databases: dict[str, Any] = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": f"{folder}/default.db"}
    }
    for name in _DJANGO_SETUPS:
        databases[f"sqlite_{name}"] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": f"{folder}/{name}.db",
            "OPTIONS": {"timeout": 30},
        }
    made: list[str] = []
    if with_postgres:
        import psycopg

        parts = PG_URL.rsplit("/", 1)[0].removeprefix("postgresql://")
        user, _, host = parts.rpartition("@")
        host, _, port = host.partition(":")
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for name in _DJANGO_SETUPS:
                made.append(f"bench_orm_{name}_{uuid.uuid4().hex[:8]}")
                conn.execute(f'CREATE DATABASE "{made[-1]}"')
        for name, db in zip(_DJANGO_SETUPS, made, strict=True):
            databases[f"pg_{name}"] = {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": db,
                "HOST": host,
                "PORT": int(port or 5432),
                "USER": user.partition(":")[0] or "postgres",
                "PASSWORD": user.partition(":")[2],
            }
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only",
        USE_TZ=True,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "scim2_core_django"],
        DATABASES=databases,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
    from django.core.management import call_command

    for alias in databases:
        if alias != "default":
            call_command("migrate", database=alias, verbosity=0)
    return made


_configured: list[str] | None = None


def _django_ready(with_postgres: bool) -> None:
    global _configured
    if _configured is None:
        _configured = _django_settings(with_postgres)


@contextmanager
def _django(prefix: str) -> Iterator[MakeBackend]:
    from scim2_core_django.backend import DjangoModelBackend

    aliases = itertools.cycle(f"{prefix}_{name}" for name in _DJANGO_SETUPS)

    def make() -> Backend:
        return DjangoModelBackend(using=next(aliases))

    yield make


def _drop_django_databases() -> None:
    if not _configured:
        return
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for name in _configured:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- SQLAlchemy --------------------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


memberships = sa.Table(
    "bench_team_members",
    Base.metadata,
    sa.Column("team_id", sa.ForeignKey("bench_team.id"), primary_key=True),
    sa.Column("account_id", sa.ForeignKey("bench_account.id"), primary_key=True),
)


class Account(Base):
    __tablename__ = "bench_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(150), unique=True)
    first_name: Mapped[str] = mapped_column(sa.String(150), default="")
    last_name: Mapped[str] = mapped_column(sa.String(150), default="")
    email: Mapped[str] = mapped_column(sa.String(254), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    teams: Mapped[list[Team]] = relationship(secondary=memberships, back_populates="members")


class Team(Base):
    __tablename__ = "bench_team"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(150))
    members: Mapped[list[Account]] = relationship(secondary=memberships, back_populates="teams")


MAPPINGS = (
    ResourceMapping(
        resource_type="User",
        model=Account,
        fields=(
            Field(attribute="userName", field="username"),
            Field(attribute="name.givenName", field="first_name"),
            Field(attribute="name.familyName", field="last_name"),
            Field(attribute='emails[type eq "work"].value', field="email"),
            Field(attribute="active", field="is_active"),
        ),
    ),
    ResourceMapping(
        resource_type="Group",
        model=Team,
        fields=(Field(attribute="displayName", field="name"),),
        members=Members(relation="members"),
    ),
)


@contextmanager
def _sa_sqlite() -> Iterator[MakeBackend]:
    engines: list[sa.Engine] = []
    with tempfile.TemporaryDirectory() as folder:

        def make() -> Backend:
            engines.append(sa.create_engine(f"sqlite:///{Path(folder) / f'app{len(engines)}.db'}"))
            Base.metadata.create_all(engines[-1])
            return SQLAlchemyBackend(engines[-1], MAPPINGS)

        try:
            yield make
        finally:
            for engine in engines:
                engine.dispose()


@contextmanager
def _sa_postgres() -> Iterator[MakeBackend]:
    import psycopg

    url = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    engines: list[sa.Engine] = []
    schemas: list[str] = []

    def make() -> Backend:
        schemas.append(f"bench_sa_{uuid.uuid4().hex[:12]}")
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schemas[-1]}"')
        options = {"options": f"-csearch_path={schemas[-1]}"}
        engines.append(sa.create_engine(url, connect_args=options))
        Base.metadata.create_all(engines[-1])
        return SQLAlchemyBackend(engines[-1], MAPPINGS)

    try:
        yield make
    finally:
        for engine in engines:
            engine.dispose()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


#: ``{store: () -> context manager yielding make()}``; add another ORM here.
STORES: dict[str, Callable[[], AbstractContextManager[MakeBackend]]] = {
    "django-sqlite": lambda: _django("sqlite"),
    "django-postgresql": lambda: _django("pg"),
    "sa-sqlite": _sa_sqlite,
    "sa-postgresql": _sa_postgres,
}
#: Run before the first store (set-up a process needs once, e.g. Django's settings).
PREPARE: dict[str, Callable[[list[str]], None]] = {
    "django-sqlite": lambda stores: _django_ready("django-postgresql" in stores),
    "django-postgresql": lambda stores: _django_ready(True),
}
#: Run after the last store.
CLEANUP: list[Callable[[], None]] = [_drop_django_databases]


def _django_record() -> tuple[Any, str]:
    from scim2_core_django._backend_events import DjangoEvents

    return DjangoEvents, "record"


def _sa_record() -> tuple[Any, str]:
    from scim2_core_sqlalchemy._backend_events import Events

    return Events, "record"


#: ``{store: () -> (class, method)}``: what ``--share`` times, the backend's event write.
RECORD: dict[str, Callable[[], tuple[Any, str]]] = {
    "django-sqlite": _django_record,
    "django-postgresql": _django_record,
    "sa-sqlite": _sa_record,
    "sa-postgresql": _sa_record,
}


def share(make: MakeBackend, creates: int, owner: Any, method: str) -> tuple[float, float]:
    """``(event write / create, ms per create)`` in the requesting thread's CPU time, over
    ``creates`` creates through :meth:`Engine.handle` with a consumer delivering; the event
    write is ``owner.method`` (see :data:`RECORD`)."""
    backend = make()
    engine = Engine(backend)
    delivered = _events.Delivered()
    engine.events.add_handler(delivered, name="bench")
    engine.events.start()
    spent = [0.0]
    record = getattr(owner, method)

    def timed(self: Any, *args: Any, **kw: Any) -> None:
        started = time.thread_time()
        try:
            record(self, *args, **kw)
        finally:
            spent[0] += time.thread_time() - started

    setattr(owner, method, timed)
    try:
        bodies = _events._bodies(creates + 20)
        total = 0.0
        for n, body in enumerate(bodies):
            if n == 20:  # warmed up
                spent[0], total = 0.0, 0.0
            request = {
                "method": "POST",
                "path": "/Users",
                "headers": {"Content-Type": "application/scim+json"},
                "body": body,
            }
            started = time.thread_time()
            response = engine.handle(request)  # type: ignore[arg-type]
            total += time.thread_time() - started
            assert response["status"] == 201, response
        assert delivered.wait_for(creates + 20, 120), "delivery fell behind"
    finally:
        setattr(owner, method, record)
        engine.events.stop()
        backend.close()  # type: ignore[attr-defined]
    return spent[0] / total, 1000 * total / creates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--batch", type=int, default=50, help="creates per timed batch")
    parser.add_argument("--rounds", type=int, default=25, help="timed batches per set-up")
    parser.add_argument("--threads", default="1,4")
    parser.add_argument("--share", type=int, default=0, metavar="N", help="see the docstring")
    args = parser.parse_args()
    stores = [s.strip() for s in args.stores.split(",")]
    if unknown := [s for s in stores if s not in STORES]:
        parser.error(f"unknown store(s) {', '.join(unknown)}; known: {', '.join(STORES)}")
    if any("postgresql" in s for s in stores) and not _postgres_ok():
        print("PostgreSQL unreachable: skipped", file=sys.stderr)
        stores = [s for s in stores if "postgresql" not in s]
    try:
        if args.share:
            print("| store | event write / create (CPU) | CPU ms per create |")
            print("|---|---:|---:|")
            for store in stores:
                PREPARE.get(store, lambda stores: None)(stores)
                with STORES[store]() as make:
                    part, ms = share(make, args.share, *RECORD[store]())
                print(f"| {store} | {part:.1%} | {ms:.2f} |", flush=True)
            return
        print(
            "| store | threads | ms/create off | outbox | outbox+audit | wall cost outbox | "
            "wall cost both | CPU cost outbox | CPU cost both |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for store in stores:
            PREPARE.get(store, lambda stores: None)(stores)
            for threads in (int(t) for t in args.threads.split(",")):
                with STORES[store]() as make:
                    r = measure(make, store, threads, args.batch, args.rounds)
                ms = {k: 1000 * v for k, v in r.per_create.items()}
                print(
                    f"| {store} | {threads} | {ms['off']:.2f} | {ms['outbox']:.2f} | "
                    f"{ms['outbox+audit']:.2f} | {r.wall['outbox']} | "
                    f"{r.wall['outbox+audit']} | {r.cpu['outbox']} | "
                    f"{r.cpu['outbox+audit']} |",
                    flush=True,
                )
    finally:
        for cleanup in CLEANUP:
            cleanup()


if __name__ == "__main__":
    main()
