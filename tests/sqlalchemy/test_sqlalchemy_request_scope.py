"""One connection of the app's pool per request (``SQLAlchemyBackend.request_scope``).

A request makes several backend calls (a read, then the ``groups_of`` of what it read); the
engine enters the backend's request scope around it, so the app's pool sees one checkout per
request, every connection goes back to the pool, whatever the answer, and the guarantees of
each call (If-Match compare-and-set, rows the app made adopted) hold as before. With the
backend's own read connections (the default), a ``GET`` by id and a ``userName eq`` that
write nothing check out none of the app's pool; without them (``own_read_connections=False``)
every request takes one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sa_app import ACCOUNT, MODELS, TEAM, clean, team_members
from test_sqlalchemy_models import GROUP, PATCH, USER, call

from scim2_core import Engine
from scim2_core_sqlalchemy import SQLAlchemyBackend


@pytest.fixture(params=[True, False], ids=["own-reads", "app-pool-only"])
def own_reads(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def scim(engine: sa.Engine, own_reads: bool) -> Iterator[Engine]:
    backend = SQLAlchemyBackend(
        engine, (ACCOUNT, TEAM), models=MODELS, own_read_connections=own_reads
    )
    yield Engine(backend)
    backend.close()


class Checkouts:
    """The app's pool checkouts, counted while inside the block."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.count = 0

    def _seen(self, *_: Any) -> None:
        self.count += 1

    def __enter__(self) -> Checkouts:
        self.count = 0
        sa.event.listen(self.engine, "checkout", self._seen)
        return self

    def __exit__(self, *_: Any) -> None:
        sa.event.remove(self.engine, "checkout", self._seen)


def _add(member: str) -> dict[str, Any]:
    return {
        "schemas": [PATCH],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": member}]}],
    }


def test_each_request_checks_out_one_connection(
    engine: sa.Engine, scim: Engine, own_reads: bool
) -> None:
    uid = call(scim, "POST", "/Users", {"schemas": [USER], "userName": "ann"})[1]["id"]
    gid = call(scim, "POST", "/Groups", {"schemas": [GROUP], "displayName": "T"})[1]["id"]
    assert call(scim, "PATCH", f"/Groups/{gid}", _add(uid))[0] in (200, 204)
    assert call(scim, "GET", f"/Users/{uid}")[0] == 200  # the thread's own connection made
    plain = 0 if own_reads else 1  # reads that write nothing, on the backend's own
    requests: list[tuple[str, str, int]] = [
        ("GET", f"/Users/{uid}", plain),  # the user with its groups
        ("GET", '/Users?filter=userName eq "ANN"', plain),
        ("GET", "/Users?startIndex=1&count=10", 1),
        ("GET", f"/Groups/{gid}", 1),
    ]
    for method, path, checkouts in requests:
        with Checkouts(engine) as seen:
            status, body, _ = call(scim, method, path)
        assert status == 200
        assert seen.count == checkouts, path
    with Checkouts(engine) as seen:
        body = scim.users.get(uid)
    assert [g["value"] for g in body["groups"]] == [gid]
    assert seen.count == plain
    # Discovery reads no data: no connection at all.
    with Checkouts(engine) as seen:
        assert call(scim, "GET", "/ServiceProviderConfig")[0] == 200
    assert seen.count == 0


def test_every_connection_goes_back_whatever_the_answer(engine: sa.Engine, scim: Engine) -> None:
    uid = call(scim, "POST", "/Users", {"schemas": [USER], "userName": "ann"})[1]["id"]
    version = call(scim, "GET", f"/Users/{uid}")[2]["ETag"]
    replace = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}
    answers = [
        call(scim, "GET", "/Users/nobody")[0],
        call(scim, "GET", '/Users?filter=userName zz "x"')[0],
        call(scim, "PATCH", f"/Users/{uid}", replace, **{"If-Match": 'W/"999"'})[0],
        call(scim, "POST", "/Users", {"schemas": [USER], "userName": "ANN"})[0],
        call(scim, "PATCH", f"/Users/{uid}", replace, **{"If-Match": version})[0],
    ]
    assert answers == [404, 400, 412, 409, 200]
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    # The refused writes wrote nothing; the accepted one is there, with a new version.
    _, got, headers = call(scim, "GET", f"/Users/{uid}")
    assert got["title"] == "x"
    assert headers["ETag"] != version
    assert call(scim, "GET", "/Users")[1]["totalResults"] == 1


def test_rows_the_app_inserts_are_adopted_inside_a_request(engine: sa.Engine, scim: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(MODELS[0]), [{"username": "app.made"}])
    status, page, _ = call(scim, "GET", '/Users?filter=userName eq "app.made"')
    assert status == 200
    uid = page["Resources"][0]["id"]
    # The adoption was committed with the request: the next one sees the same id.
    assert call(scim, "GET", f"/Users/{uid}")[0] == 200
    gid = call(scim, "POST", "/Groups", {"schemas": [GROUP], "displayName": "T"})[1]["id"]
    assert call(scim, "PATCH", f"/Groups/{gid}", _add(uid))[0] in (200, 204)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(team_members)).scalar() == 1


def test_concurrent_requests_all_answer(engine: sa.Engine, scim: Engine) -> None:
    """Reads and member writes from several threads at once: every request is answered
    (none waits forever on another's connection) and every member added is there."""
    users = [
        call(scim, "POST", "/Users", {"schemas": [USER], "userName": f"u{i}"})[1]["id"]
        for i in range(8)
    ]
    gid = call(scim, "POST", "/Groups", {"schemas": [GROUP], "displayName": "T"})[1]["id"]
    start = threading.Barrier(4)
    statuses: list[int] = []

    def work(part: list[str]) -> None:
        start.wait()
        for uid in part:
            statuses.append(call(scim, "PATCH", f"/Groups/{gid}", _add(uid))[0])
            statuses.append(call(scim, "GET", f"/Users/{uid}")[0])
            statuses.append(call(scim, "GET", f"/Groups/{gid}")[0])

    threads = [threading.Thread(target=work, args=(users[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    assert sorted(set(statuses)) in ([200], [200, 204])
    assert len(statuses) == 24
    _, group, _ = call(scim, "GET", f"/Groups/{gid}")
    assert sorted(m["value"] for m in group["members"]) == sorted(users)
    for uid in users:
        assert [g["value"] for g in call(scim, "GET", f"/Users/{uid}")[1]["groups"]] == [gid]
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_reads_on_postgresql_hold_no_transaction_open(pg_engine: sa.Engine) -> None:
    """Between the calls of a request (and after a read), the backend's connection is
    idle, not "idle in transaction": a read takes no snapshot and holds no lock that the
    app's own writers or VACUUM would wait behind."""
    clean(pg_engine)
    backend = SQLAlchemyBackend(pg_engine, (ACCOUNT, TEAM), models=MODELS)
    scim = Engine(backend)
    try:
        uid = call(scim, "POST", "/Users", {"schemas": [USER], "userName": "ann"})[1]["id"]
        with pg_engine.connect() as probe:
            probe.execute(sa.text("SELECT 1"))  # its own backend pid, left out below
            others = sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state = 'idle in transaction'"
            )
            users = scim.resource_types[0]
            with backend.request_scope():
                assert backend.get(None, users, uid) is not None
                assert probe.execute(others).scalar() == 0
                assert backend.groups_of(None, [uid]) == {}
                assert probe.execute(others).scalar() == 0
            probe.rollback()
    finally:
        backend.close()
        clean(pg_engine)
