"""SQLBackend on SQLite and PostgreSQL: the shared contract, plus what only SQL promises
(schema versions, database-enforced uniqueness across threads and processes, durability
across kill -9, no filter text in SQL)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scim2_core import ConfigurationError, InvalidFilterError, UniquenessError
from scim2_core._errors import InvalidValueError
from scim2_core.backends import Backend, SearchQuery, SQLBackend
from scim2_core.backends.sql._migrations import MIGRATIONS, SCHEMA_VERSION
from scim2_core.backends.sql._rows import DEFAULT_INDEXED
from scim2_core.filter import bind, parse_filter
from scim2_core.schema import Attribute, ResourceType, Schema
from scim2_core.testing import (
    DEVICE,
    GROUP,
    RESOURCE_TYPES,
    USER,
    BackendContract,
    bumped,
    group,
    member_values,
    search_ids,
    user,
)

postgres = pytest.mark.postgres


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/scim.db"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=postgres)])
def any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLBackend]:
    """A bound SQLBackend on a fresh SQLite file, then on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        backend = SQLBackend(f"sqlite:///{tmp_path}/scim.db")
    else:
        url = request.getfixturevalue("postgres_url")
        backend = SQLBackend(url, schema=request.getfixturevalue("postgres_schema"))
    backend.bind(RESOURCE_TYPES)
    yield backend
    backend.close()


class TestSQLiteFileContract(BackendContract):
    @pytest.fixture
    def backend(self, sqlite_url: str) -> Iterator[Backend]:
        backend = SQLBackend(sqlite_url)
        yield backend
        backend.close()


class TestSQLiteMemoryContract(BackendContract):
    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        backend = SQLBackend("sqlite:///:memory:")
        yield backend
        backend.close()


@postgres
class TestPostgresContract(BackendContract):
    @pytest.fixture
    def backend(self, postgres_url: str, postgres_schema: str) -> Iterator[Backend]:
        backend = SQLBackend(postgres_url, schema=postgres_schema)
        yield backend
        backend.close()


# --- construction -------------------------------------------------------------------------


def test_never_blocks_is_false() -> None:
    assert SQLBackend("sqlite:///:memory:").never_blocks is False


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("mysql://localhost/db", {}),
        ("scim.db", {}),
        ("sqlite:///x.db", {"synchronous": "OFF"}),
        ("sqlite:///x.db", {"schema": "s"}),
        ("postgresql://127.0.0.1/test", {"schema": 'bad"; DROP'}),
        ("sqlite:///x.db", {"indexed": "userName"}),
        ("sqlite:///x.db", {"busy_timeout": -1}),
        ("sqlite:///x.db", {"busy_timeout": "30"}),
    ],
)
def test_bad_configuration_raises_at_construction(url: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SQLBackend(url, **options)


@pytest.mark.parametrize(
    ("indexed", "named"),
    [
        (("userName", "titel"), "titel"),  # a misspelling: no resource type has it
        (("emails.valeu",), "emails.valeu"),
        (("active",), "active"),  # a boolean: the equality index holds strings
    ],
)
def test_an_indexed_name_no_type_can_index_fails_at_bind(
    sqlite_url: str, indexed: tuple[str, ...], named: str
) -> None:
    with (
        SQLBackend(sqlite_url, indexed=indexed) as backend,
        pytest.raises(ConfigurationError, match=f"'{named}'"),
    ):
        backend.bind(RESOURCE_TYPES)


def test_indexed_names_any_one_type_has_are_accepted(sqlite_url: str) -> None:
    # hostname is the Device's only; members.display the Group's: each indexes its type.
    with SQLBackend(sqlite_url, indexed=("hostname", "members.display", "title")) as backend:
        backend.bind(RESOURCE_TYPES)
        backend.create(None, USER, user("u1", "bjensen", title="Boss"))
        assert search_ids(backend, USER, 'title eq "boss"') == (1, ["u1"])


def test_a_new_database_waits_for_another_process_creating_it(tmp_path: Path) -> None:
    # Several servers started at once on a new file: while one holds the write lock to
    # create the schema, another's switch to WAL must wait (busy_timeout), not fail with
    # "database is locked" (SQLite does not call its busy handler for that switch).
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, other.execute, ("COMMIT",))
    release.start()
    try:
        with SQLBackend(f"sqlite:///{path}", busy_timeout=10) as backend:
            backend.bind(RESOURCE_TYPES)
            backend.create(None, USER, user("u1", "bjensen"))
            assert backend.schema_version() == SCHEMA_VERSION
    finally:
        release.join()
        other.close()


# --- schema versions ------------------------------------------------------------------------


def test_new_database_gets_the_current_schema_version(sqlite_url: str) -> None:
    with SQLBackend(sqlite_url) as backend:
        backend.bind(RESOURCE_TYPES)
        assert backend.schema_version() == SCHEMA_VERSION


def test_version_1_database_is_migrated_forward_without_data_loss(tmp_path: Path) -> None:
    # A database as scim2-core wrote it at schema version 1 (no equality index table).
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE scim_schema (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO scim_schema (version) VALUES (1)")
    for statement in MIGRATIONS[0]:
        conn.execute(statement.format(json="TEXT"))
    old = user("u1", "BJensen", externalId="ext-1")
    fdoc = dict(old, userName="bjensen")
    import json

    conn.execute(
        "INSERT INTO scim_resources VALUES ('', 'u1', 'User', 'W/\"1\"', ?, NULL, ?, ?)",
        (old["meta"]["created"], json.dumps(old), json.dumps(fdoc)),
    )
    conn.execute("INSERT INTO scim_unique VALUES ('t:', 'User', 'userName', 'bjensen', '', 'u1')")
    conn.commit()
    conn.close()

    with SQLBackend(f"sqlite:///{path}") as backend:
        backend.bind(RESOURCE_TYPES)
        assert backend.schema_version() == SCHEMA_VERSION
        assert backend.get(None, USER, "u1") == old
        # The new index was filled from the existing rows, and uniqueness still holds.
        assert search_ids(backend, USER, 'userName eq "BJENSEN"') == (1, ["u1"])
        assert search_ids(backend, USER, 'externalId eq "ext-1"') == (1, ["u1"])
        with pytest.raises(UniquenessError):
            backend.create(None, USER, user("u2", "bjensen"))
        # The kept count of resources (schema version 3) was filled from the rows.
        assert search_ids(backend, USER) == (1, ["u1"])
        backend.create(None, USER, user("u3", "third"))
        assert search_ids(backend, USER, count=0)[0] == 2


def test_newer_schema_version_is_refused(sqlite_url: str) -> None:
    with SQLBackend(sqlite_url) as backend:
        backend.bind(RESOURCE_TYPES)
    conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    conn.execute("UPDATE scim_schema SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with SQLBackend(sqlite_url) as backend, pytest.raises(ConfigurationError, match="newer"):
        backend.bind(RESOURCE_TYPES)


def test_changing_the_indexed_attributes_rebuilds_the_index(sqlite_url: str) -> None:
    with SQLBackend(sqlite_url, indexed=()) as backend:
        backend.bind(RESOURCE_TYPES)
        backend.create(None, USER, user("u1", "bjensen", title="Boss"))
    with SQLBackend(sqlite_url, indexed=("title",)) as backend:
        backend.bind(RESOURCE_TYPES)
        assert search_ids(backend, USER, 'title eq "BOSS"') == (1, ["u1"])
        assert search_ids(backend, USER, 'userName eq "BJENSEN"') == (1, ["u1"])


def test_data_survives_reopening(sqlite_url: str) -> None:
    with SQLBackend(sqlite_url) as backend:
        backend.bind(RESOURCE_TYPES)
        backend.create(None, USER, user("u1", "bjensen"))
        backend.create(None, GROUP, group("g1", "Admins", ("u1",)))
    with SQLBackend(sqlite_url) as backend:
        backend.bind(RESOURCE_TYPES)
        assert backend.groups_of(None, ["u1"]) == {"u1": [{"value": "g1", "display": "Admins"}]}


# --- filters: parameters only, clear errors ----------------------------------------------

HOSTILE = [
    "x'; DROP TABLE scim_resources; --",
    'x"); DELETE FROM scim_unique; --',
    "%' OR '1'='1",
    "\\",
    "?",
    "%s",
    "$.userName",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("op", ["eq", "ne", "co", "sw", "ew", "gt"])
def test_filter_text_never_reaches_sql(any_backend: SQLBackend, value: str, op: str) -> None:
    any_backend.create(None, USER, user("u1", "plain"))
    any_backend.create(None, USER, user("u2", value, title=value))
    literal = value.replace("\\", "\\\\").replace('"', '\\"')
    expected = {
        "eq": ["u2"],
        "ne": ["u1"],
        "co": ["u2"],
        "sw": ["u2"],
        "ew": ["u2"],
        "gt": ["u1"] if value.lower() < "plain" else [],
    }[op]
    assert search_ids(any_backend, USER, f'userName {op} "{literal}"') == (
        len(expected),
        expected,
    )
    assert search_ids(any_backend, USER, f'title {op} "{literal}"')[1] == [
        i for i in expected if i == "u2" or op in ("ne",)
    ]
    assert search_ids(any_backend, USER)[0] == 2


#: A type whose complex attribute has a multi-valued sub-attribute.
GADGET = ResourceType(
    name="Gadget",
    endpoint="/Gadgets",
    schema=Schema(
        id="urn:example:Gadget",
        name="Gadget",
        attributes=(
            Attribute(
                name="ports",
                type="complex",
                multi_valued=True,
                sub_attributes=(Attribute(name="tags", multi_valued=True),),
            ),
        ),
    ),
)


def test_untranslatable_filter_is_invalid_filter_not_a_scan(any_backend: SQLBackend) -> None:
    any_backend.bind([GADGET])
    query = SearchQuery(filter=bind(parse_filter('ports.tags eq "x"'), GADGET))
    with pytest.raises(InvalidFilterError) as caught:
        any_backend.search(None, GADGET, query)
    assert (caught.value.status, caught.value.scim_type) == (400, "invalidFilter")


@postgres
def test_postgres_refuses_nul_characters_with_a_scim_error(
    postgres_url: str, postgres_schema: str
) -> None:
    with SQLBackend(postgres_url, schema=postgres_schema) as backend:
        backend.bind(RESOURCE_TYPES)
        with pytest.raises(InvalidValueError):
            backend.create(None, USER, user("u1", "a\x00b"))
        with pytest.raises(InvalidFilterError):
            search_ids(backend, USER, 'userName eq "a\\u0000b"')
        backend.create(None, USER, user("u2", "a\\u0000b"))  # a backslash is fine
        assert search_ids(backend, USER, 'userName eq "a\\\\u0000b"') == (1, ["u2"])


# --- concurrency ------------------------------------------------------------------------------


def test_two_threads_creating_one_user_name_one_conflicts(any_backend: SQLBackend) -> None:
    for round in range(5):
        results: list[str] = []
        start = threading.Barrier(2)

        def create(
            i: int,
            round: int = round,
            start: threading.Barrier = start,
            results: list[str] = results,
        ) -> None:
            start.wait()
            try:
                any_backend.create(None, USER, user(f"r{round}-{i}", f"same{round}"))
                results.append("created")
            except UniquenessError:
                results.append("409")

        threads = [threading.Thread(target=create, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["409", "created"]
        assert search_ids(any_backend, USER, f'userName eq "same{round}"')[0] == 1


def test_twenty_threads_adding_members_lose_none(any_backend: SQLBackend) -> None:
    ids = [f"m{i}" for i in range(20)]
    for id in ids:
        any_backend.create(None, USER, user(id, id))
    any_backend.create(None, GROUP, group("g1", "Everyone"))
    start = threading.Barrier(len(ids))
    errors: list[BaseException] = []

    def add(member: str) -> None:
        try:
            start.wait()

            def change(current: dict[str, Any]) -> None:
                current.setdefault("members", []).append({"value": member})

            any_backend.update(None, GROUP, "g1", bumped(change))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(m,)) for m in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    g1 = any_backend.get(None, GROUP, "g1")
    assert g1 is not None
    assert sorted(member_values(g1)) == sorted(ids)
    assert search_ids(any_backend, GROUP, 'members.value eq "m7"') == (1, ["g1"])


@pytest.mark.parametrize("indexed", [(), ("meta.version",)], ids=["default", "meta-indexed"])
def test_touched_members_stay_findable(sqlite_url: str, indexed: tuple[str, ...]) -> None:
    # A member touched by a group write keeps doc, fdoc and index rows in step: filters on
    # meta (answered from fdoc, or from the lookup index when meta.version is indexed).
    with SQLBackend(sqlite_url, indexed=(*DEFAULT_INDEXED, *indexed)) as backend:
        backend.bind(RESOURCE_TYPES)
        backend.create(None, USER, user("u1", "bjensen"))
        when = "2023-05-05T05:05:05.000Z"
        backend.create(None, GROUP, group("g1", "Admins", ("u1",), modified=when))
        assert search_ids(backend, USER, 'meta.version eq "W/\\"2\\""') == (1, ["u1"])
        assert search_ids(backend, USER, 'meta.version eq "W/\\"1\\""') == (0, [])
        assert search_ids(backend, USER, f'meta.lastModified eq "{when}"') == (1, ["u1"])
        assert search_ids(backend, USER, 'userName eq "BJENSEN"') == (1, ["u1"])


def test_concurrent_group_writes_touch_each_member_once_per_change(
    any_backend: SQLBackend,
) -> None:
    # Four groups gain and lose overlapping users in opposite orders while the users are
    # renamed: no deadlock surfaces, and every membership change bumps the user's version
    # exactly once (the touch is in the group's transaction, the member row locked).
    users = [f"u{i}" for i in range(6)]
    for id in users:
        any_backend.create(None, USER, user(id, id))
    groups = [f"g{i}" for i in range(4)]
    for id in groups:
        any_backend.create(None, GROUP, group(id, id))
    rounds = 6
    start = threading.Barrier(len(groups) + 1)
    errors: list[BaseException] = []

    def churn(gid: str, n: int) -> None:
        try:
            start.wait()
            order = users if n % 2 else users[::-1]
            for r in range(rounds):
                picked = order[r % 2 :: 2]  # alternate halves: every user joins or leaves

                def change(current: dict[str, Any], picked: list[str] = picked) -> None:
                    current["members"] = [{"value": m} for m in picked]

                any_backend.update(None, GROUP, gid, bumped(change))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def rename() -> None:
        try:
            start.wait()
            for r in range(rounds):
                for id in users:
                    any_backend.update(
                        None, USER, id, bumped(lambda c, id=id, r=r: c.update(title=f"{id}{r}"))
                    )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(g, n)) for n, g in enumerate(groups)]
    threads.append(threading.Thread(target=rename))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    changes = dict.fromkeys(users, 0)
    holders = dict.fromkeys(users, 0)  # how many groups hold the user at the end
    for n in range(len(groups)):
        order = users if n % 2 else users[::-1]
        held: set[str] = set()
        for r in range(rounds):
            picked = set(order[r % 2 :: 2])
            for id in held ^ picked:
                changes[id] += 1
            held = picked
        for id in held:
            holders[id] += 1
    for id in users:
        got = any_backend.get(None, USER, id)
        assert got is not None
        assert got["meta"]["version"] == f'W/"{1 + rounds + changes[id]}"'
    for id in groups:  # each deleted group touches the members it had
        any_backend.delete(None, GROUP, id)
    for id in users:
        got = any_backend.get(None, USER, id)
        assert got is not None
        assert got["meta"]["version"] == f'W/"{1 + rounds + changes[id] + holders[id]}"'


@postgres
def test_a_write_aborted_to_break_a_deadlock_runs_again(
    postgres_url: str, postgres_schema: str
) -> None:
    # PostgreSQL aborts one transaction of a lock cycle (SQLSTATE 40P01, e.g. deleting a
    # nested group while deleting one of its members); the write is run again, not failed.
    import psycopg

    with SQLBackend(postgres_url, schema=postgres_schema) as backend:
        backend.bind(RESOURCE_TYPES)
        backend.create(None, USER, user("u1", "alpha"))
        calls: list[str] = []

        def change(current: dict[str, Any]) -> None:
            calls.append(current["meta"]["version"])
            if len(calls) == 1:
                raise psycopg.errors.DeadlockDetected("deadlock detected")
            current["title"] = "Boss"

        stored = backend.update(None, USER, "u1", bumped(change))
        assert calls == ['W/"1"', 'W/"1"']  # the first attempt wrote nothing
        assert stored["title"] == "Boss"
        assert backend.get(None, USER, "u1") == stored

        def refuse(current: dict[str, Any]) -> None:
            calls.append("refused")
            raise UniquenessError("taken")

        with pytest.raises(UniquenessError):  # a real conflict is not retried
            backend.update(None, USER, "u1", refuse)
        assert calls.count("refused") == 1


def test_member_deleted_after_the_engine_checked_it_is_refused(sqlite_url: str) -> None:
    # The engine asks existing() and then writes, passing what it checked as members=; a
    # member deleted in between (here by a second server on the same database) must not
    # be stored as a dangling member.
    with SQLBackend(sqlite_url) as backend, SQLBackend(sqlite_url) as other:
        backend.bind(RESOURCE_TYPES)
        other.bind(RESOURCE_TYPES)
        for id in ("u1", "u2"):
            backend.create(None, USER, user(id, id))
        backend.create(None, GROUP, group("g1", "Admins"))

        def add(*ids: str) -> Any:
            def change(current: dict[str, Any]) -> None:
                current.setdefault("members", []).extend({"value": i} for i in ids)

            return bumped(change)

        assert backend.existing(None, ["u1", "u2"]) == {"u1": "User", "u2": "User"}
        other.delete(None, USER, "u1")
        with pytest.raises(InvalidValueError, match="u1"):
            backend.update(None, GROUP, "g1", add("u1", "u2"), members=["u1", "u2"])
        g1 = backend.get(None, GROUP, "g1")
        assert g1 is not None
        assert member_values(g1) == []
        backend.update(None, GROUP, "g1", add("u2"), members=["u2"])
        assert backend.groups_of(None, ["u1", "u2"]) == {
            "u2": [{"value": "g1", "display": "Admins"}]
        }


def _worker(url: str, worker: int, count: int) -> None:
    backend = SQLBackend(url)
    backend.bind(RESOURCE_TYPES)
    for i in range(count):
        uid = f"p{worker}-{i}"
        backend.create(None, USER, user(uid, uid))

        def change(current: dict[str, Any], uid: str = uid) -> None:
            current.setdefault("members", []).append({"value": uid})

        backend.update(None, GROUP, "g1", bumped(change))
        with contextlib.suppress(UniquenessError):
            backend.create(None, USER, user(f"dup{worker}-{i}", "shared-name"))
    backend.close()


def test_several_processes_share_one_sqlite_file(sqlite_url: str) -> None:
    with SQLBackend(sqlite_url) as backend:
        backend.bind(RESOURCE_TYPES)
        backend.create(None, GROUP, group("g1", "Everyone"))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(sqlite_url, w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with SQLBackend(sqlite_url) as backend:
        backend.bind(RESOURCE_TYPES)
        g1 = backend.get(None, GROUP, "g1")
        assert g1 is not None
        assert len(member_values(g1)) == 60
        assert g1["meta"]["version"] == 'W/"61"'
        assert search_ids(backend, USER, 'userName eq "shared-name"')[0] == 1
        assert search_ids(backend, USER, count=0)[0] == 61


_DURABILITY_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from scim2_core.testing import RESOURCE_TYPES, USER, user
    from scim2_core.backends import SQLBackend

    backend = SQLBackend({url!r})
    backend.bind(RESOURCE_TYPES)
    i = 0
    while True:
        backend.create(None, USER, user(f"k{{i}}", f"k{{i}}"))
        print(f"k{{i}}", flush=True)  # acknowledged only after create() returned
        i += 1
    """
)


def test_acknowledged_writes_survive_kill_9(sqlite_url: str) -> None:
    script = _DURABILITY_WRITER.format(tests=str(Path(__file__).parent), url=sqlite_url)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert proc.stdout is not None
    acknowledged = []
    for line in proc.stdout:
        acknowledged.append(line.strip())
        if len(acknowledged) == 200:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    with SQLBackend(sqlite_url) as backend:
        backend.bind(RESOURCE_TYPES)
        present = backend.existing(None, acknowledged)
        assert sorted(present) == sorted(acknowledged)
        assert search_ids(backend, USER, count=0)[0] >= len(acknowledged)


# --- what SQL stores ------------------------------------------------------------------------


def test_group_update_writes_only_the_membership_difference(sqlite_url: str) -> None:
    with SQLBackend(sqlite_url) as backend:
        backend.bind(RESOURCE_TYPES)
        ids = [f"u{i}" for i in range(300)]
        for id in ids:
            backend.create(None, USER, user(id, id))
        backend.create(None, GROUP, group("g1", "Big", tuple(ids)))
        path = sqlite_url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path)
        before = conn.execute("SELECT rowid, member_id FROM scim_members").fetchall()

        def change(current: dict[str, Any]) -> None:
            current["members"] = [m for m in current["members"] if m["value"] != "u5"]
            current["members"].append({"value": "new"})

        backend.create(None, USER, user("new", "new"))
        backend.update(None, GROUP, "g1", bumped(change))
        after = conn.execute("SELECT rowid, member_id FROM scim_members").fetchall()
        conn.close()
        # The 299 untouched rows keep their rowids: nothing was rewritten.
        assert len(set(before) & set(after)) == 299
        assert backend.groups_of(None, ["u5", "new"]) == {
            "new": [{"value": "g1", "display": "Big"}]
        }


def test_tenant_none_and_named_tenants_are_isolated(any_backend: SQLBackend) -> None:
    any_backend.create(None, USER, user("u1", "bjensen"))
    any_backend.create("acme", USER, user("u1", "bjensen"))
    any_backend.create(
        "acme",
        DEVICE,
        {"schemas": [DEVICE.schema.id], "id": "d1", "serialNumber": "S1", "hostname": "h"},
    )
    with pytest.raises(UniquenessError):  # serialNumber is global: across tenants
        any_backend.create(
            None,
            DEVICE,
            {"schemas": [DEVICE.schema.id], "id": "d2", "serialNumber": "S1", "hostname": "h"},
        )
    assert search_ids(any_backend, USER, 'userName eq "bjensen"', tenant="acme") == (1, ["u1"])
    assert search_ids(any_backend, USER, 'userName eq "bjensen"', tenant="other") == (0, [])


def test_create_many_is_all_or_nothing(any_backend: SQLBackend) -> None:
    batch = [user(f"b{i}", f"bulk{i}", emails=[{"value": f"b{i}@x.org"}]) for i in range(50)]
    assert any_backend.create_many(None, USER, batch) == 50
    assert search_ids(any_backend, USER, 'emails.value eq "B7@X.ORG"') == (1, ["b7"])
    with pytest.raises(UniquenessError):
        any_backend.create_many(None, USER, [user("c1", "fresh"), user("c2", "BULK3")])
    assert any_backend.get(None, USER, "c1") is None
    with pytest.raises(UniquenessError):
        any_backend.create_many(None, USER, [user("c1", "same"), user("c2", "SAME")])
    assert search_ids(any_backend, USER, count=0)[0] == 50


@pytest.mark.parametrize(
    "filter",
    ['userName eq "x"', 'externalId eq "x"', 'id eq "x"', 'userName eq "x" or id eq "y"'],
)
def test_indexed_equality_never_scans_the_resources(sqlite_url: str, filter: str) -> None:
    # The plan SQLite reports must reach resources by primary key, on an empty database
    # as on a large one (fixed planner statistics), never by a scan of the tenant.
    with SQLBackend(sqlite_url) as backend:
        backend.bind(RESOURCE_TYPES)
        where, params, _ = backend._translator.where(
            USER, bind(parse_filter(filter), USER), "", {"userName", "externalId"}
        )
        conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM scim_resources r "
            f"WHERE r.tenant = ? AND r.type = ? AND ({where})",
            ["", "User", *params],
        ).fetchall()
        conn.close()
        details = " | ".join(row[3] for row in plan)
        assert "scim_resources_order" not in details, details
        assert "sqlite_autoindex_scim_resources_1 (tenant=? AND id=?)" in details, details


def _open_files(path: str) -> int:
    """How many descriptors of this process are open on ``path`` (Linux's /proc)."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd) == path
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
def test_a_thread_that_ends_leaves_no_connection_open(sqlite_url: str) -> None:
    # A server that runs each request on a thread of its own (wsgiref, Django's runserver)
    # must not keep one open connection per thread it ever ran.
    path = sqlite_url.removeprefix("sqlite:///")
    with SQLBackend(sqlite_url) as backend:
        backend.bind(RESOURCE_TYPES)
        backend.create(None, USER, user("u1", "one"))
        seen: list[int] = []

        def run_threads(n: int) -> int:
            for _ in range(n):
                thread = threading.Thread(
                    target=lambda: seen.append(search_ids(backend, USER, count=0)[0])
                )
                thread.start()
                thread.join()
            return _open_files(path)

        # SQLite may keep one closed connection's descriptor for reuse while another
        # connection of the process holds a lock on the file: what counts is no growth.
        after_one = run_threads(1)
        assert run_threads(20) == after_one
        assert seen == [1] * 21
    assert _open_files(path) == 0  # closed with the backend


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
def test_a_backend_dropped_without_close_closes_its_connections(sqlite_url: str) -> None:
    import gc

    path = sqlite_url.removeprefix("sqlite:///")
    backend = SQLBackend(sqlite_url)
    backend.bind(RESOURCE_TYPES)
    backend.create(None, USER, user("u1", "one"))
    assert _open_files(path) >= 1
    del backend
    gc.collect()
    # no ResourceWarning for an unclosed connection (pytest turns warnings into errors here)
    assert _open_files(path) == 0
