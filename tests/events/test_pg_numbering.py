"""PostgreSQL numbers events from a sequence: concurrent writers do not queue on one row,
and the reader never skips a number whose transaction may still commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from scim2_core import ChangeEvent, Engine
from scim2_core.backends import SQLBackend
from scim2_core.backends.sql import write_events
from scim2_core.events import new_event_id
from tests.helpers import PATCH_OP, call, create_user

pytestmark = pytest.mark.postgres


@pytest.fixture
def schema(pg_schemas: Callable[[], str]) -> str:
    return pg_schemas()


class _Writer:
    """A transaction of another process, left open: it wrote, drew an event number, and
    has not committed yet."""

    def __init__(self, url: str, schema: str, rid: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=False)
        self.conn.execute(f'SET search_path TO "{schema}"')
        self.conn.execute(
            "INSERT INTO scim_settings (name, value) VALUES (%s, 'x')", (f"writer:{rid}",)
        )
        event = ChangeEvent(
            kind="created",
            resource_type="User",
            id=rid,
            tenant=None,
            before=None,
            after=None,
            principal=None,
            version='W/"1"',
            event_id=new_event_id(),
            time="2026-11-30T00:00:00Z",
            request_id=None,
        )
        write_events(self.conn, [event], paramstyle="format")

    def finish(self, *, commit: bool) -> None:
        if commit:
            self.conn.commit()
        else:
            self.conn.rollback()
        self.conn.close()


def _engine(url: str, schema: str) -> tuple[Engine, list[ChangeEvent]]:
    engine = Engine(SQLBackend(url, schema=schema))
    got: list[ChangeEvent] = []
    engine.events.add_handler(got.append, name="app")
    engine.events.start()
    return engine, got


def _close(engine: Engine) -> None:
    engine.events.stop()
    engine.backend.close()  # type: ignore[attr-defined]


def test_a_later_commit_waits_for_an_earlier_number_still_running(
    postgres_url: str, schema: str
) -> None:
    engine, got = _engine(postgres_url, schema)
    try:
        a = create_user(engine, "a")["id"]
        assert engine.events.wait_idle()
        slow = _Writer(postgres_url, schema, "slow")  # draws the next number, not committed
        b = create_user(engine, "b")["id"]  # commits a later number first
        time.sleep(0.5)
        assert [e.id for e in got] == [a]  # b waits: "slow" may still commit before it
        slow.finish(commit=True)
        assert engine.events.wait_idle()
        assert [e.id for e in got] == [a, "slow", b]
        assert [e.seq for e in got] == sorted(e.seq for e in got)
    finally:
        _close(engine)


def test_a_number_rolled_back_is_passed_once_its_writer_is_gone(
    postgres_url: str, schema: str
) -> None:
    engine, got = _engine(postgres_url, schema)
    try:
        create_user(engine, "a")
        assert engine.events.wait_idle()
        lost = _Writer(postgres_url, schema, "lost")
        b = create_user(engine, "b")["id"]
        time.sleep(0.3)
        assert [e.id for e in got][-1] != b
        lost.finish(commit=False)  # its number is a gap for ever
        # Passed once every write transaction running in this database when the gap was
        # found has ended (a busy test server: give it time).
        assert engine.events.wait_idle(60)
        assert [e.id for e in got][-1] == b
        assert "lost" not in [e.id for e in got]
    finally:
        _close(engine)


def test_a_transaction_open_in_another_database_does_not_hold_delivery_back(
    postgres_url: str, schema: str
) -> None:
    """A sequence belongs to one database: a long transaction of another application on
    the same server (here one with a transaction id, left open in the database
    ``postgres``) holds none of its numbers, so a gap is passed without waiting for it."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    other_url = make_conninfo(**{**conninfo_to_dict(postgres_url), "dbname": "postgres"})
    engine, got = _engine(postgres_url, schema)
    elsewhere = psycopg.connect(other_url, autocommit=False)
    try:
        create_user(engine, "a")
        assert engine.events.wait_idle()
        elsewhere.execute("SELECT pg_current_xact_id()")  # has an id, stays open
        lost = _Writer(postgres_url, schema, "lost")
        b = create_user(engine, "b")["id"]
        lost.finish(commit=False)  # a gap, with the other database's writer still open
        assert engine.events.wait_idle(30)
        assert [e.id for e in got][-1] == b
    finally:
        elsewhere.rollback()
        elsewhere.close()
        _close(engine)


def test_concurrent_writers_deliver_every_event_in_order_per_resource(
    postgres_url: str, schema: str
) -> None:
    engine, got = _engine(postgres_url, schema)
    try:
        users = [create_user(engine, f"u{n}")["id"] for n in range(4)]
        errors: list[Any] = []

        def writer(n: int) -> None:
            for i in range(15):
                patch = {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "path": "title", "value": f"{n}-{i}"}],
                }
                status = call(engine, "PATCH", f"/Users/{users[i % 4]}", patch).status
                if status != 200:
                    errors.append(status)
                create_user(engine, f"w{n}-{i}")

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert engine.events.wait_idle(30)
        assert len(got) == 4 + 4 * 15 * 2
        assert len({e.event_id for e in got}) == len(got)
        for rid in users:
            versions = [e.version for e in got if e.id == rid]
            stored = call(engine, "GET", f"/Users/{rid}").json["meta"]["version"]
            assert versions[-1] == stored  # the last change delivered is the last made
            numbers = [int(str(v).strip('W/"')) for v in versions]
            assert numbers == list(range(1, len(numbers) + 1))  # each change once, in order
    finally:
        _close(engine)


def test_a_version_6_database_numbers_on_from_its_counter(postgres_url: str, schema: str) -> None:
    import psycopg

    backend = SQLBackend(postgres_url, schema=schema)
    engine = Engine(backend)
    engine.events.add_handler(lambda e: None, name="app")  # registered, never started
    create_user(engine, "a")
    backend.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # as schema 7 left it
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("DROP SEQUENCE scim_outbox_seq")
        conn.execute("UPDATE scim_outbox_head SET seq = 41")
        conn.execute("UPDATE scim_outbox SET seq = 41")
        conn.execute("ALTER TABLE scim_resources DROP COLUMN modified")  # schema 9's
        conn.execute("DROP TABLE scim_versions")  # schema 10's
        conn.execute("UPDATE scim_schema SET version = 7")
    engine, got = _engine(postgres_url, schema)
    try:
        b = create_user(engine, "b")["id"]
        # 1 to 40 are a gap (pruned, say): passed once this database's writes in
        # progress end (a busy test server: give it time).
        assert engine.events.wait_idle(60)
        assert [(e.id, e.seq) for e in got][-1] == (b, 42)
        assert engine.backend.schema_version() == 10  # type: ignore[attr-defined]
    finally:
        _close(engine)


def test_a_writer_above_the_snapshots_xmax_keeps_the_horizon_back() -> None:
    """A snapshot lists running transactions only below its ``xmax`` (the last completed
    id + 1): a writer that got its id later runs unlisted, and may hold a number."""
    from scim2_core.backends.sql._outbox import _Candidate, _Snapshot

    # Read with transaction 100 running and 104 (ours) given; 102 got its id unlisted.
    candidate = _Candidate(last=50, running=frozenset({100}), unlisted_from=101, below=104)
    assert not candidate.settled(_Snapshot(xmin=100, xmax=103, running=frozenset({100})))
    assert not candidate.settled(_Snapshot(xmin=102, xmax=105, running=frozenset({102})))
    assert not candidate.settled(_Snapshot(xmin=101, xmax=103, running=frozenset()))
    # Every transaction that may hold a number up to 50 has ended; 200 came after.
    assert candidate.settled(_Snapshot(xmin=105, xmax=201, running=frozenset({200})))
    # 100 still runs, but in another database: it holds none of this sequence's numbers.
    elsewhere = _Snapshot(xmin=100, xmax=201, running=frozenset({100}), elsewhere=frozenset({100}))
    assert candidate.settled(elsewhere)
