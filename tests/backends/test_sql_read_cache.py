"""Repeated reads answered from the engine's kept answers (``Options.read_cache_bytes``) on
SQLBackend over SQLite, and never older than the database: writes through this engine,
through another engine on the same file (another server) and from another process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim2_core import ConfigurationError, Engine, Options, Principal
from scim2_core._errors import TooManyRequestsError
from scim2_core.backends import SQLBackend
from tests.helpers import PATCH_OP, USER, Result, bytes_grown, call, create_group, create_user

ROOT = Path(__file__).resolve().parents[2]


def _engine(db: Path, **options: Any) -> Engine:
    return Engine(SQLBackend(f"sqlite:///{db}"), options=Options(**options))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "scim.db"


@pytest.fixture
def engine(db: Path) -> Iterator[Engine]:
    e = _engine(db)
    yield e
    e.backend.close()  # type: ignore[attr-defined]


def _reads(engine: Engine) -> Callable[[], int]:
    """How many statements reading resources this thread's connection has run so far."""
    seen: list[str] = []
    conn = engine.backend._dialect.connection()  # type: ignore[attr-defined]
    conn.set_trace_callback(seen.append)

    def count() -> int:
        return sum(1 for s in seen if "SELECT" in s.upper() and "data_version" not in s)

    return count


def _same(a: Result, b: Result) -> None:
    assert (a.status, a.raw) == (b.status, b.raw)
    strip = {"X-Request-Id"}
    assert {k: v for k, v in a.headers.items() if k not in strip} == {
        k: v for k, v in b.headers.items() if k not in strip
    }


def _patch(engine: Engine, path: str, op: dict[str, Any]) -> Result:
    return call(engine, "PATCH", path, {"schemas": [PATCH_OP], "Operations": [op]})


def test_a_repeated_get_is_answered_without_reading_the_database(engine: Engine) -> None:
    user = create_user(engine, "bjensen", displayName="Babs")
    reads = _reads(engine)
    first = call(engine, "GET", f"/Users/{user['id']}")
    after_first = reads()
    assert after_first >= 1
    again = call(engine, "GET", f"/Users/{user['id']}")
    assert reads() == after_first
    _same(first, again)
    # Every answer still names its own request.
    assert first.headers["X-Request-Id"] != again.headers["X-Request-Id"]
    found = call(engine, "GET", "/Users", query={"filter": 'userName eq "bjensen"'})
    n = reads()
    _same(found, call(engine, "GET", "/Users", query={"filter": 'userName eq "bjensen"'}))
    assert reads() == n
    # HEAD is GET without the content: the same kept answer.
    assert call(engine, "HEAD", f"/Users/{user['id']}").status == 200
    assert reads() == n


def test_a_kept_answer_still_runs_everything_but_the_read(db: Path) -> None:
    """Authentication, the rate gate, the request id, the observers and the audit log run
    for every request; a refused request is refused, never answered from what is kept."""
    good, calls = "Bearer good-token", {"auth": 0, "gate": 0, "started": 0, "finished": 0}

    def authenticate(request: Any) -> Principal | None:
        calls["auth"] += 1
        return Principal("idp") if request["headers"].get("Authorization") == good else None

    def gate(principal: Any, tenant: str | None) -> None:
        calls["gate"] += 1
        if calls["gate"] > 5:
            raise TooManyRequestsError(1)

    class Observer:
        def started(self, request: Any) -> None:
            calls["started"] += 1

        def finished(self, started: Any, record: Any, response: Any) -> None:
            calls["finished"] += 1

    engine = Engine(SQLBackend(f"sqlite:///{db}"), authenticate=authenticate)
    engine.limit_rate(gate)
    engine.observe(Observer())
    engine.audit.enable()
    auth = {"Authorization": good}
    body = {"schemas": [USER], "userName": "bjensen"}
    created = call(engine, "POST", "/Users", body, headers=auth)
    assert created.status == 201
    path = f"/Users/{created.json['id']}"
    first = call(engine, "GET", path, headers=auth)
    reads = _reads(engine)
    before = dict(calls)
    ids = set()
    for n in range(3):
        again = call(engine, "GET", path, headers={**auth, "X-Request-Id": f"req-{n}"})
        _same(first, again)
        ids.add(again.headers["X-Request-Id"])
    assert reads() == 0  # answered from what is kept
    assert ids == {"req-0", "req-1", "req-2"}
    assert {k: calls[k] - before[k] for k in calls} == dict.fromkeys(calls, 3)
    refused = call(engine, "GET", path, headers={"Authorization": "Bearer wrong"})
    assert refused.status == 401 and "X-Request-Id" in refused.headers
    assert call(engine, "GET", path, headers=auth).status == 429  # the gate's 6th call
    engine.audit.flush()
    statuses = [e.status for e in engine.audit.query()]
    assert statuses.count(200) >= 4 and 401 in statuses and 429 in statuses
    engine.backend.close()  # type: ignore[attr-defined]


def test_a_write_through_the_engine_is_seen_by_the_next_read(engine: Engine) -> None:
    user = create_user(engine, "bjensen", displayName="Babs")
    path = f"/Users/{user['id']}"
    assert call(engine, "GET", path).json["displayName"] == "Babs"
    assert (
        _patch(engine, path, {"op": "replace", "path": "displayName", "value": "B"}).status == 200
    )
    got = call(engine, "GET", path)
    assert got.json["displayName"] == "B"
    assert got.headers["ETag"] == got.json["meta"]["version"] != user["meta"]["version"]
    listed = call(engine, "GET", "/Users")
    assert listed.json["totalResults"] == 1
    create_user(engine, "other")
    assert call(engine, "GET", "/Users").json["totalResults"] == 2
    assert call(engine, "DELETE", path).status == 204
    assert call(engine, "GET", path).status == 404


def test_a_write_by_another_server_on_the_same_file_is_seen(db: Path, engine: Engine) -> None:
    other = _engine(db)
    try:
        user = create_user(engine, "bjensen", displayName="Babs")
        group = create_group(engine, "staff")
        path = f"/Users/{user['id']}"
        assert call(engine, "GET", path).json["displayName"] == "Babs"
        assert "groups" not in call(engine, "GET", path).json
        _patch(other, path, {"op": "replace", "path": "displayName", "value": "Barbara"})
        assert call(engine, "GET", path).json["displayName"] == "Barbara"
        # A member added by the other server changes the user's derived groups here.
        add = {"op": "add", "path": "members", "value": [{"value": user["id"]}]}
        assert _patch(other, f"/Groups/{group['id']}", add).status == 200
        assert [g["value"] for g in call(engine, "GET", path).json["groups"]] == [group["id"]]
    finally:
        other.backend.close()  # type: ignore[attr-defined]


def test_a_write_by_another_process_is_seen(db: Path, engine: Engine) -> None:
    user = create_user(engine, "bjensen", displayName="Babs")
    path = f"/Users/{user['id']}"
    assert call(engine, "GET", path).json["displayName"] == "Babs"
    script = textwrap.dedent(
        f"""
        from scim2_core import Engine
        from scim2_core.backends import SQLBackend
        from tests.helpers import PATCH_OP, call
        e = Engine(SQLBackend({f"sqlite:///{db}"!r}))
        op = {{"op": "replace", "path": "displayName", "value": "from afar"}}
        r = call(e, "PATCH", {path!r}, {{"schemas": [PATCH_OP], "Operations": [op]}})
        assert r.status == 200, r
        """
    )
    env_path = f"{ROOT}:{ROOT / 'adapters'}"
    subprocess.run(
        [sys.executable, "-c", script], check=True, cwd=ROOT, env={"PYTHONPATH": env_path}
    )
    assert call(engine, "GET", path).json["displayName"] == "from afar"


def _shm_locks(db: Path) -> list[str]:
    """The POSIX locks this process holds on ``<db>-shm`` (``/proc/locks``)."""
    import os

    inode = os.stat(f"{db}-shm").st_ino
    with open("/proc/locks") as f:
        return [line for line in f if f":{inode} " in line and f" {os.getpid()} " in line]


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="/proc/locks (Linux)")
def test_a_repeated_get_keeps_sqlites_lock_on_the_wal_index(db: Path, engine: Engine) -> None:
    """SQLite's lock on ``<file>-shm`` tells another process opening the file that the
    WAL index is in use. Were it dropped (closing any descriptor of the file drops every
    lock of the process on it), the next server to start would take itself for the first,
    truncate and rebuild the index under this one's connections: SIGBUS in this one's
    next commit (seen in tests/events/test_serve_load.py after a restart)."""
    user = create_user(engine, "bjensen")
    assert _shm_locks(db)
    for _ in range(3):
        call(engine, "GET", f"/Users/{user['id']}")
    assert _shm_locks(db)


def test_what_is_not_kept_is_read_every_time(engine: Engine) -> None:
    user = create_user(engine, "bjensen")
    path = f"/Users/{user['id']}"
    reads = _reads(engine)

    # RFC 9110 §13.1.2: a conditional GET is answered against the version of now.
    etag = call(engine, "GET", path).headers["ETag"]
    for _ in range(2):
        before = reads()
        assert call(engine, "GET", path, headers={"If-None-Match": etag}).status == 304
        assert reads() > before
    # RFC 9865: every cursor page is read (its cursor expires).
    for _ in range(2):
        before = reads()
        paged = call(engine, "GET", "/Users", query={"cursor": "", "count": "1"})
        assert paged.status == 200, paged
        assert reads() > before
    # Errors are not kept.
    for _ in range(2):
        before = reads()
        assert call(engine, "GET", "/Users/nobody").status == 404
        assert reads() > before


def test_tenants_and_base_urls_never_share_an_answer(db: Path) -> None:
    principals = {
        "Bearer a": Principal("a", tenant="acme"),
        "Bearer b": Principal("b", tenant="beta"),
    }

    def authenticate(request: Any) -> Any:
        return principals.get(request["headers"].get("Authorization", ""))

    engine = Engine(SQLBackend(f"sqlite:///{db}"), authenticate=authenticate)
    try:
        acme = {"Authorization": "Bearer a"}
        beta = {"Authorization": "Bearer b"}
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x"}
        assert call(engine, "POST", "/Users", body, headers=acme).status == 201
        assert call(engine, "GET", "/Users", headers=acme).json["totalResults"] == 1
        assert call(engine, "GET", "/Users", headers=beta).json["totalResults"] == 0
        assert call(engine, "GET", "/Users", headers={"Authorization": "Bearer c"}).status == 401
        request = {"method": "GET", "path": "/Users", "headers": acme}
        there = engine.handle({**request, "base_url": "https://a.example/scim/v2"})  # type: ignore[typeddict-item]
        here = engine.handle({**request, "base_url": "https://b.example/scim/v2"})  # type: ignore[typeddict-item]
        assert b"https://a.example/scim/v2/Users/" in there["body"]
        assert b"https://b.example/scim/v2/Users/" in here["body"]
    finally:
        engine.backend.close()  # type: ignore[attr-defined]


def test_read_cache_bytes_zero_reads_every_time_and_a_negative_size_is_refused(db: Path) -> None:
    engine = _engine(db, read_cache_bytes=0)
    try:
        user = create_user(engine, "bjensen")
        reads = _reads(engine)
        call(engine, "GET", f"/Users/{user['id']}")
        n = reads()
        call(engine, "GET", f"/Users/{user['id']}")
        assert reads() > n
    finally:
        engine.backend.close()  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="read_cache_bytes"):
        Options(read_cache_bytes=-1)


def test_what_is_kept_stays_within_its_budget(db: Path) -> None:
    budget = 200_000
    engine = _engine(db, read_cache_bytes=budget)
    try:
        create_user(engine, "alice")

        def ask(i: int) -> None:
            text = f'userName eq "{i:06d}{"x" * 900}"'
            answer = call(engine, "GET", "/Users", query={"filter": text})
            assert answer.json["totalResults"] == 0

        grown = bytes_grown(ask, 20, 2000)
        # 2,000 distinct ~1 KiB requests: kept, they would hold over 2 MiB. The filter
        # cache holds its own share (tests/engine/test_memory_bounds.py).
        assert grown < budget + 1_200_000, grown
        # The oldest went first: a request of the first hundred is read again, and kept.
        reads = _reads(engine)
        ask(100)
        n = reads()
        assert n >= 1
        ask(100)
        assert reads() == n
    finally:
        engine.backend.close()  # type: ignore[attr-defined]


_NAMES = st.sampled_from(["ann", "bob", "cy"])
_STEP = st.one_of(
    st.tuples(st.just("create"), _NAMES),
    st.tuples(st.just("rename"), _NAMES, st.text("abc", min_size=1, max_size=3)),
    st.tuples(st.just("delete"), _NAMES),
    st.tuples(st.just("join"), _NAMES),
    st.tuples(st.just("read"), _NAMES),
    st.tuples(st.just("list"), st.sampled_from(["", 'userName eq "ann"', 'displayName co "a"'])),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(st.tuples(st.booleans(), _STEP), min_size=1, max_size=25))
def test_kept_answers_always_equal_a_fresh_read(tmp_path: Path, steps: list[Any]) -> None:
    """Writes through either of two engines on one file, reads through the one that keeps
    answers: each read equals the same read by a third engine that keeps none."""
    db = tmp_path / f"{len(list(tmp_path.iterdir()))}.db"
    kept, other, fresh = _engine(db), _engine(db), _engine(db, read_cache_bytes=0)
    try:
        group = create_group(kept, "g")
        ids: dict[str, str] = {}
        for via_other, step in steps:
            writer = other if via_other else kept
            kind, name = step[0], step[1]
            if kind == "create" and name not in ids:
                ids[name] = create_user(writer, name)["id"]
            elif kind == "rename" and name in ids:
                op = {"op": "replace", "path": "displayName", "value": step[2]}
                assert _patch(writer, f"/Users/{ids[name]}", op).status == 200
            elif kind == "delete" and name in ids:
                assert call(writer, "DELETE", f"/Users/{ids.pop(name)}").status == 204
            elif kind == "join" and name in ids:
                op = {"op": "add", "path": "members", "value": [{"value": ids[name]}]}
                assert _patch(writer, f"/Groups/{group['id']}", op).status == 200
            elif kind == "read":
                path = f"/Users/{ids.get(name, 'missing')}"
                _same(call(kept, "GET", path), call(fresh, "GET", path))
            elif kind == "list":
                query = {"filter": name} if name else None
                _same(
                    call(kept, "GET", "/Users", query=query),
                    call(fresh, "GET", "/Users", query=query),
                )
            _same(
                call(kept, "GET", f"/Groups/{group['id']}"),
                call(fresh, "GET", f"/Groups/{group['id']}"),
            )
    finally:
        for e in (kept, other, fresh):
            e.backend.close()  # type: ignore[attr-defined]


# -- the token read from the WAL index's header -------------------------------------------


def _statements(engine: Engine) -> list[str]:
    """Every statement this thread's connection runs from now on, pragmas included."""
    seen: list[str] = []
    engine.backend._dialect.connection().set_trace_callback(seen.append)  # type: ignore[attr-defined]
    return seen


def test_a_repeated_get_asks_sqlite_nothing(engine: Engine) -> None:
    # The token comes from the WAL index SQLite shares between connections: a repeated GET
    # runs no statement at all, not even PRAGMA data_version.
    user = create_user(engine, "bjensen")
    first = call(engine, "GET", f"/Users/{user['id']}")
    seen = _statements(engine)
    for _ in range(3):
        _same(first, call(engine, "GET", f"/Users/{user['id']}"))
    assert seen == []
    # A write by another server on the file moves the header: the next GET reads.
    other = _engine(Path(engine.backend._dialect.file))  # type: ignore[attr-defined]
    _patch(other, f"/Users/{user['id']}", {"op": "add", "path": "displayName", "value": "B"})
    other.backend.close()  # type: ignore[attr-defined]
    assert call(engine, "GET", f"/Users/{user['id']}").json["displayName"] == "B"
    assert any("SELECT" in s.upper() for s in seen)


def test_a_header_being_rewritten_falls_back_to_data_version(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While a writer rewrites the header its two copies differ: the token is then the
    # connection's data_version, and answers stay those of a fresh read.
    from scim2_core.backends.sql import _dialect

    monkeypatch.setattr(_dialect._WalIndex, "header", lambda self: None)
    user = create_user(engine, "bjensen", displayName="Babs")
    path = f"/Users/{user['id']}"
    first = call(engine, "GET", path)
    seen = _statements(engine)
    _same(first, call(engine, "GET", path))
    assert [s for s in seen if "data_version" not in s] == []
    _patch(engine, path, {"op": "replace", "path": "displayName", "value": "Barbara"})
    assert call(engine, "GET", path).json["displayName"] == "Barbara"


@given(
    first=st.binary(min_size=48, max_size=48),
    second=st.binary(min_size=48, max_size=48),
    same=st.booleans(),
)
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_wal_index_header_is_taken_only_when_both_copies_agree(
    tmp_path: Path, first: bytes, second: bytes, same: bool
) -> None:
    # https://www.sqlite.org/walformat.html: two copies of the 48-byte header, the second
    # written first; equal copies with isInit (byte 12) set are one consistent header.
    from scim2_core.backends.sql._dialect import _WalIndex

    if same:
        second = first
    shm = tmp_path / "h.db-shm"
    shm.write_bytes(first + second + bytes(40))
    index = _WalIndex.open(str(tmp_path / "h.db"), conn=None)  # type: ignore[arg-type]
    assert index is not None
    expected = first if first == second and first[12] else None
    assert index.header() == expected


def test_no_wal_index_no_header(tmp_path: Path) -> None:
    from scim2_core.backends.sql._dialect import _WalIndex

    assert _WalIndex.open(str(tmp_path / "none.db"), conn=None) is None  # type: ignore[arg-type]
    (tmp_path / "short.db-shm").write_bytes(bytes(50))
    assert _WalIndex.open(str(tmp_path / "short.db"), conn=None) is None  # type: ignore[arg-type]
