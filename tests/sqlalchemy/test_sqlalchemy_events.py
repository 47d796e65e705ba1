"""The outbox and the audit log of SQLAlchemyBackend, in the app's own database.

The backend-neutral event tests (tests/events/neutral.py) run here unchanged over SQLAlchemyBackend
(imported below: pytest collects them in this module, with this module's ``make_backend``),
on a SQLite file and on a PostgreSQL database; then what only an app's own database shows:
the write and its events commit or roll back together, and the app's own session writing
in the same database leaves the numbering and delivery alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sa_app import ACCOUNT, EVENT_TABLES, MODELS, TEAM, Account, Base
from sqlalchemy.orm import Session

from scim2_core import ChangeEvent, ConfigurationError, Engine
from scim2_core.admin import OperatorConsole
from scim2_core.backends import Backend
from scim2_core.backends.sql import SQLBackend
from scim2_core.events import RetryPolicy
from scim2_core.testing import GROUP, USER
from scim2_core_sqlalchemy import SQLAlchemyBackend
from scim2_core_sqlalchemy import _backend_events as sa_events
from tests.admin.test_console import TOKEN, text_of
from tests.events.conftest import listening
from tests.events.neutral import *  # noqa: F403  (collected here, over make_backend below)
from tests.helpers import PATCH_OP, call, create_group, create_user, user_body

MakeBackend = Callable[[], Backend]


@pytest.fixture
def make_backend(app_db: sa.Engine) -> Iterator[MakeBackend]:
    """A factory of SQLAlchemyBackends over one app database (each as another process
    would open it: its own backend over the app's tables)."""
    made: list[SQLAlchemyBackend] = []

    def make() -> Backend:
        made.append(SQLAlchemyBackend(app_db, [ACCOUNT, TEAM], models=MODELS))
        return made[-1]

    yield make
    for backend in made:
        backend.close()


def _outbox_rows(engine: sa.Engine) -> list[tuple[int, str, str]]:
    with engine.connect() as conn:
        return [
            (int(seq), kind, rid)
            for seq, kind, rid in conn.exec_driver_sql(
                "SELECT seq, kind, resource_id FROM scim_outbox ORDER BY seq"
            )
        ]


def test_the_event_rows_are_sqlbackends_layout(
    app_db: sa.Engine, make_backend: MakeBackend, engines: list[Engine]
) -> None:
    """The tables are SQLBackend's: its event store reads what this backend wrote."""
    engine, got = listening(make_backend(), engines)
    uid = create_user(engine, "alice")["id"]
    assert engine.events.wait_idle()
    assert _outbox_rows(app_db)[-1][1:] == ("created", uid)
    assert [e.id for e in got] == [uid]
    names = set(sa.inspect(app_db).get_table_names())
    assert {"scim_outbox", "scim_outbox_consumers", "scim_outbox_failed"} <= names
    assert "scim_audit" not in names  # created when the audit log is enabled
    assert "scim_resources" not in names  # none of SQLBackend's resource tables


def test_a_write_and_its_events_roll_back_together(
    app_db: sa.Engine,
    make_backend: MakeBackend,
    engines: list[Engine],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = make_backend()
    engine, got = listening(backend, engines)
    alice = create_user(engine, "alice")["id"]
    gid = create_group(engine, "staff", [alice])["id"]
    assert engine.events.wait_idle()
    before = _outbox_rows(app_db)
    insert = sa_events.Events._insert

    def crash_after_storing(
        self: sa_events.Events, conn: sa.Connection, events: list[ChangeEvent]
    ) -> None:
        insert(self, conn, events)
        raise RuntimeError("the process died before COMMIT")

    monkeypatch.setattr(sa_events.Events, "_insert", crash_after_storing)
    assert call(engine, "POST", "/Users", user_body("bob")).status == 500
    assert call(engine, "DELETE", f"/Users/{alice}").status == 500
    patch = {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "members"}]}
    assert call(engine, "PATCH", f"/Groups/{gid}", patch).status == 500
    monkeypatch.undo()
    # Nothing of the three writes is stored: neither the change nor its events.
    assert _outbox_rows(app_db) == before
    users = call(engine, "GET", "/Users").json["Resources"]
    assert [u["id"] for u in users] == [alice]
    group = call(engine, "GET", f"/Groups/{gid}").json
    assert [m["value"] for m in group["members"]] == [alice]
    with Session(app_db) as session:
        assert session.scalars(sa.select(Account.username)).all() == ["alice"]
    # And the next write commits both. SQLite numbers on from the last committed event;
    # PostgreSQL's sequence left the rolled-back numbers unused, and delivery passes them.
    bob = create_user(engine, "bob")["id"]
    assert engine.events.wait_idle()
    seq, kind, rid = _outbox_rows(app_db)[-1]
    assert (kind, rid) == ("created", bob)
    if app_db.dialect.name == "sqlite":
        assert seq == before[-1][0] + 1
    assert [e.id for e in got][-1] == bob


def test_the_apps_own_session_leaves_numbering_and_delivery_alone(
    app_db: sa.Engine, make_backend: MakeBackend, engines: list[Engine]
) -> None:
    """The app writes its own rows, in its own transactions, between and during SCIM
    writes: no event is lost or numbered out of order, and an app transaction left open
    does not hold delivery back."""
    engine, got = listening(make_backend(), engines)
    first = create_user(engine, "scim-1")["id"]
    with Session(app_db) as session:
        session.add(Account(username="app-1"))
        session.commit()
    second = create_user(engine, "scim-2")["id"]
    assert engine.events.wait_idle()
    # An app transaction that wrote and stays open while SCIM writes and delivers.
    session = Session(app_db)
    try:
        if app_db.dialect.name == "postgresql":  # SQLite: one writer at a time
            session.add(Account(username="app-2"))
            session.flush()
        third = create_user(engine, "scim-3")["id"]
        assert engine.events.wait_idle(10)
        assert [e.id for e in got] == [first, second, third]
    finally:
        session.commit()
        session.close()
    fourth = create_user(engine, "scim-4")["id"]
    assert engine.events.wait_idle()
    assert [e.id for e in got] == [first, second, third, fourth]
    seqs = [e.seq for e in got]
    assert seqs == sorted(seqs)
    # The app's rows are SCIM resources (adopted), without events of their own.
    names = {u["userName"] for u in call(engine, "GET", "/Users").json["Resources"]}
    app_rows = {"app-1", "app-2"} if app_db.dialect.name == "postgresql" else {"app-1"}
    assert names == app_rows | {"scim-1", "scim-2", "scim-3", "scim-4"}


def test_concurrent_writers_deliver_every_event_in_order_per_resource(
    make_backend: MakeBackend, engines: list[Engine]
) -> None:
    """Two backends (two processes) write at once; each resource's events arrive in the
    order of its versions, none lost, none twice."""
    writers = []
    got: list[ChangeEvent] = []
    lock = threading.Lock()

    def handler(event: ChangeEvent) -> None:
        with lock:
            got.append(event)

    for _ in range(2):
        engine = Engine(make_backend())
        engines.append(engine)
        engine.events.add_handler(handler, name="shared")
        engine.events.start()
        writers.append(engine)
    ids = [create_user(writers[0], f"user{n}")["id"] for n in range(4)]
    errors: list[BaseException] = []

    def work(engine: Engine, uid: str) -> None:
        try:
            for n in range(5):
                body = {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "path": "title", "value": f"t{n}"}],
                }
                assert call(engine, "PATCH", f"/Users/{uid}", body).status == 200
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(writers[n % 2], uid)) for n, uid in enumerate(ids)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(engine.events.wait_idle(30) for engine in writers)
    assert len(got) == len({e.event_id for e in got}) == 4 + 4 * 5
    for uid in ids:
        titles = [e.after["title"] for e in got if e.id == uid and e.after and "title" in e.after]
        assert titles == [f"t{n}" for n in range(5)]


def test_sqlbackend_reads_the_same_layout(tmp_path: Path) -> None:
    """The tables' columns are those SQLBackend's readers use (its schema, side by side)."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    Base.metadata.create_all(engine)
    backend = SQLAlchemyBackend(engine, [ACCOUNT, TEAM], models=MODELS)
    backend.bind((USER, GROUP))
    backend.enable_outbox()
    backend.enable_audit()
    backend.close()
    engine.dispose()
    sql = SQLBackend(f"sqlite:///{tmp_path / 'scim.db'}")
    sql.bind((USER, GROUP))
    sql.enable_outbox()
    sql.close()

    def columns(url: str) -> dict[str, list[str]]:
        reader = sa.create_engine(url)
        inspector = sa.inspect(reader)
        try:
            return {t: [c["name"] for c in inspector.get_columns(t)] for t in EVENT_TABLES}
        finally:
            reader.dispose()

    assert columns(f"sqlite:///{tmp_path / 'app.db'}") == columns(
        f"sqlite:///{tmp_path / 'scim.db'}"
    )


def test_an_in_memory_sqlite_database_is_refused_at_start_up() -> None:
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    backend = SQLAlchemyBackend(engine, [ACCOUNT, TEAM], models=MODELS)
    backend.bind((USER, GROUP))
    with pytest.raises(ConfigurationError, match="in-memory SQLite"):
        backend.enable_outbox()
    backend.close()
    engine.dispose()


def test_the_operator_page_reads_the_apps_database(
    make_backend: MakeBackend, engines: list[Engine]
) -> None:
    """A failed event and the audit log, written by one process, as another process's
    operator page shows them (both read the tables in the app's database)."""

    def broken(event: ChangeEvent) -> None:
        raise RuntimeError("the app's session store is down")

    engine = Engine(make_backend())
    engines.append(engine)
    engine.audit.enable()
    engine.events.add_handler(
        broken, name="revoke-sessions", retry=RetryPolicy(max_attempts=2, first_delay=0.001)
    )
    engine.events.start()
    try:
        uid = create_user(engine, "alice")["id"]
        assert call(engine, "POST", "/Users", user_body("ALICE")).status == 409
        assert engine.events.wait_idle(10)
    finally:
        engine.audit.stop()
    other = Engine(make_backend())
    engines.append(other)
    other.audit.enable()
    other.events.add_handler(broken, name="revoke-sessions")  # registered, never started
    try:
        console = OperatorConsole(other, token=TOKEN)
        headers = {"Authorization": f"Bearer {TOKEN}"}

        def page(path: str) -> str:
            answer = console.handle(
                {"method": "GET", "path": path, "query": {"window": "all"}, "headers": headers}
            )
            assert answer["status"] == 200
            return text_of(answer["body"])

        outbox = page("/outbox")
        assert "revoke-sessions 0 1" in outbox  # none pending, one parked
        assert "the app's session store is down" in outbox
        requests = page("/requests")
        assert uid in requests and "uniqueness" in requests
    finally:
        other.audit.stop()
