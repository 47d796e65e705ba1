"""The read connections the backend keeps per thread (``own_read_connections``, the default).

A ``GET`` by id and a ``userName eq`` that write nothing run on a connection of the
backend's own pool (made from the app's engine), kept by the reading thread. What a user
must see: every read sees what was committed before it (by the app or by SCIM), no
connection of the app's pool stays checked out, the app's pool listeners run on these
connections too, a thread that ends gives its connection back, and an in-memory database
(which a second pool would not reach) keeps using the app's pool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sa_app import ACCOUNT, MODELS, TEAM, Account, Base, clean
from test_sqlalchemy_models import GROUP, PATCH, USER, call

from scim2_core import Engine
from scim2_core_sqlalchemy import SQLAlchemyBackend


def _scim(engine: sa.Engine, **options: Any) -> tuple[Engine, SQLAlchemyBackend]:
    backend = SQLAlchemyBackend(engine, (ACCOUNT, TEAM), models=MODELS, **options)
    return Engine(backend), backend


@pytest.fixture
def scim(engine: sa.Engine) -> Iterator[Engine]:
    scim, backend = _scim(engine)
    yield scim
    backend.close()


def _in_thread(work: Any) -> Any:
    """``work()`` in a new thread that ends before this returns; its result."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(work())
        except BaseException as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert not errors, errors
    return out[0] if out else None


def _user(scim: Engine, name: str) -> str:
    status, body, _ = call(scim, "POST", "/Users", {"schemas": [USER], "userName": name})
    assert status == 201
    return str(body["id"])


def test_each_read_sees_what_the_app_committed_just_before(engine: sa.Engine, scim: Engine) -> None:
    uid = _user(scim, "ann")
    versions = set()
    for i in range(5):
        # The app changes its row with its own connection (no ORM event): the next SCIM
        # read sees it, and its version moves (RFC 7644 §3.14).
        with engine.begin() as conn:
            conn.execute(
                sa.update(Account).where(Account.username == "ann").values(first_name=f"Ann{i}")
            )
        status, body, headers = call(scim, "GET", f"/Users/{uid}")
        assert status == 200
        assert body["name"]["givenName"] == f"Ann{i}"
        versions.add(headers["ETag"])
        # A row the app inserts is found by the next userName eq.
        with engine.begin() as conn:
            conn.execute(sa.insert(Account).values(username=f"app{i}"))
        _, page, _ = call(scim, "GET", f'/Users?filter=userName eq "app{i}"')
        assert page["totalResults"] == 1
    assert len(versions) == 5


def test_a_scim_write_in_one_thread_is_seen_by_a_reader_thread(
    engine: sa.Engine, scim: Engine
) -> None:
    uid = _user(scim, "bob")
    reads: list[str] = []
    ready, written, done = threading.Event(), threading.Event(), threading.Event()

    def reader() -> None:
        reads.append(call(scim, "GET", f"/Users/{uid}")[1]["userName"])  # keeps a connection
        ready.set()
        written.wait(30)
        reads.append(call(scim, "GET", f"/Users/{uid}")[1]["userName"])
        reads.append(
            call(scim, "GET", '/Users?filter=userName eq "robert"')[1]["Resources"][0]["id"]
        )
        done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    assert ready.wait(30)
    replace = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "path": "userName", "value": "robert"}],
    }
    assert call(scim, "PATCH", f"/Users/{uid}", replace)[0] == 200
    written.set()
    assert done.wait(30)
    thread.join(30)
    assert reads == ["bob", "robert", uid]


def test_reads_hold_no_connection_of_the_apps_pool(engine: sa.Engine, scim: Engine) -> None:
    uid = _user(scim, "cy")
    gid = call(scim, "POST", "/Groups", {"schemas": [GROUP], "displayName": "T"})[1]["id"]
    add = {
        "schemas": [PATCH],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}],
    }
    assert call(scim, "PATCH", f"/Groups/{gid}", add)[0] == 200

    def reads() -> list[int]:
        statuses = []
        for path in (
            f"/Users/{uid}",
            '/Users?filter=userName eq "CY"',
            "/Users/nobody",
            f"/Groups/{gid}",
            "/Users",
        ):
            statuses.append(call(scim, "GET", path)[0])
            assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        return statuses

    assert reads() == [200, 200, 404, 200, 200]
    assert _in_thread(reads) == [200, 200, 404, 200, 200]
    assert scim.users.get(uid)["groups"][0]["value"] == gid
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_the_apps_connect_listeners_run_on_the_backends_connections(
    engine: sa.Engine,
) -> None:
    connected: list[int] = []  # the threads that opened a connection
    checked_in: list[int] = []

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        connected.append(threading.get_ident())

    def on_checkin(dbapi_connection: Any, _record: Any) -> None:
        checked_in.append(id(dbapi_connection))

    # Listeners the app sets on its engine before serving SCIM.
    sa.event.listen(engine, "connect", on_connect)
    sa.event.listen(engine, "checkin", on_checkin)
    try:
        scim, backend = _scim(engine)
        uid = _user(scim, "dee")
        before = engine.pool.checkedout()  # type: ignore[attr-defined]

        def reads() -> tuple[int, int]:
            for _ in range(5):
                assert call(scim, "GET", f"/Users/{uid}")[0] == 200
            return threading.get_ident(), len(checked_in)

        reader, checkins_while_reading = _in_thread(reads)
        # The reader touched no connection of the app's pool, yet a connection was opened
        # in its thread, through the app's listener: the backend's own; it was given back
        # once, when the thread ended (not after each read).
        assert connected.count(reader) == 1
        assert engine.pool.checkedout() == before == 0  # type: ignore[attr-defined]
        for _ in range(50):  # the thread's locals go with its end
            if len(checked_in) > checkins_while_reading:
                break
            time.sleep(0.02)
        assert len(checked_in) == checkins_while_reading + 1
        backend.close()
    finally:
        sa.event.remove(engine, "connect", on_connect)
        sa.event.remove(engine, "checkin", on_checkin)


def test_reads_use_the_apps_pool_when_asked(engine: sa.Engine) -> None:
    scim, backend = _scim(engine, own_read_connections=False)
    try:
        uid = _user(scim, "eve")
        seen: list[int] = []

        def on_checkout(*_: Any) -> None:
            seen.append(1)

        sa.event.listen(engine, "checkout", on_checkout)
        try:
            for _ in range(3):
                assert call(scim, "GET", f"/Users/{uid}")[0] == 200
        finally:
            sa.event.remove(engine, "checkout", on_checkout)
        assert len(seen) == 3
    finally:
        backend.close()


def test_a_backend_closed_reads_through_the_apps_pool(engine: sa.Engine) -> None:
    scim, backend = _scim(engine)
    uid = _user(scim, "fay")
    assert call(scim, "GET", f"/Users/{uid}")[0] == 200
    backend.close()
    assert call(scim, "GET", f"/Users/{uid}")[0] == 200
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "pool"),
    [
        ("sqlite://", None),  # SingletonThreadPool: one database per connection
        ("sqlite:///:memory:", sa.pool.StaticPool),
        ("sqlite:///file:scim2kept?mode=memory&cache=shared&uri=true", sa.pool.QueuePool),
    ],
)
def test_in_memory_databases_keep_using_the_apps_pool(url: str, pool: Any) -> None:
    options: dict[str, Any] = {}
    if pool is not None:
        options = {"poolclass": pool, "connect_args": {"check_same_thread": False}}
    engine = sa.create_engine(url, **options)
    Base.metadata.create_all(engine)
    scim, backend = _scim(engine)
    try:
        # A second pool would open another, empty, database: the reads would not find the
        # tables, let alone the user.
        uid = _user(scim, "gil")
        for _ in range(3):
            status, body, _ = call(scim, "GET", f"/Users/{uid}")
            assert (status, body["userName"]) == (200, "gil")
        _, page, _ = call(scim, "GET", '/Users?filter=userName eq "gil"')
        assert page["totalResults"] == 1
        if pool is sa.pool.StaticPool:  # one connection for every thread
            assert _in_thread(lambda: call(scim, "GET", f"/Users/{uid}")[0]) == 200
    finally:
        backend.close()
        engine.dispose()


def test_a_null_pool_engine_connects_once_per_reading_thread(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}", poolclass=sa.pool.NullPool)
    Base.metadata.create_all(engine)
    opened: list[int] = []
    sa.event.listen(engine, "connect", lambda *_: opened.append(1))
    scim, backend = _scim(engine)
    try:
        uid = _user(scim, "hal")
        before = len(opened)
        for _ in range(5):
            assert call(scim, "GET", f"/Users/{uid}")[0] == 200
        assert len(opened) == before + 1  # the kept one; the app's pool would open 5
    finally:
        backend.close()
        engine.dispose()


@pytest.mark.postgres
def test_a_kept_connection_the_server_dropped_is_replaced(pg_engine: sa.Engine) -> None:
    url = pg_engine.url.render_as_string(hide_password=False)
    engine = sa.create_engine(
        url, pool_pre_ping=True, connect_args={"application_name": "scim2kept"}
    )
    clean(engine)
    scim, backend = _scim(engine)
    try:
        uid = _user(scim, "ida")
        assert call(scim, "GET", f"/Users/{uid}")[0] == 200
        with engine.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'scim2kept' AND pid <> pg_backend_pid()"
                )
            )
        for _ in range(3):
            assert call(scim, "GET", f"/Users/{uid}")[0] == 200
    finally:
        backend.close()
        clean(engine)
        engine.dispose()


#: What an app may write in a text column (UTF-8; PostgreSQL refuses NUL).
_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    changes=st.lists(
        st.fixed_dictionaries(
            {
                "first_name": _text,
                "last_name": _text,
                "is_active": st.booleans(),
                "email": st.emails(),
            }
        ),
        min_size=1,
        max_size=4,
    )
)
def test_a_read_by_id_shows_the_apps_row_as_a_page_does(
    engine: sa.Engine, changes: list[dict[str, Any]]
) -> None:
    """Whatever the app writes in its mapped columns, the read by id (the short way, on
    the kept connection) gives the resource the general page read gives."""
    clean(engine)
    scim, backend = _scim(engine)
    try:
        uid = _user(scim, "jo")
        for change in changes:
            with engine.begin() as conn:
                conn.execute(sa.update(Account).where(Account.username == "jo").values(**change))
            first = call(scim, "GET", f"/Users/{uid}")[1]  # the change seen: version moves
            _, page, _ = call(scim, "GET", "/Users")  # the general read
            again = call(scim, "GET", f"/Users/{uid}")[1]  # the short way, nothing moved
            assert first == page["Resources"][0] == again
    finally:
        backend.close()


def test_threads_beyond_the_pools_size_read_through_the_apps_pool(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}", pool_size=1)
    Base.metadata.create_all(engine)
    scim, backend = _scim(engine)
    try:
        uid = _user(scim, "kai")
        holding, release = threading.Event(), threading.Event()

        def first() -> int:
            status = call(scim, "GET", f"/Users/{uid}")[0]  # keeps the one connection allowed
            holding.set()
            release.wait(30)
            return int(status)

        thread = threading.Thread(target=first)
        thread.start()
        assert holding.wait(30)
        seen: list[int] = []
        sa.event.listen(engine, "checkout", lambda *_: seen.append(1))
        # This thread may keep none: each of its reads checks out of the app's pool.
        assert [call(scim, "GET", f"/Users/{uid}")[0] for _ in range(3)] == [200, 200, 200]
        assert len(seen) == 3
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        release.set()
        thread.join(30)
    finally:
        backend.close()
        engine.dispose()
