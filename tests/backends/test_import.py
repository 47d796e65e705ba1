"""``scim2-core import``: JSON lines or a Bulk request file into SQLite or PostgreSQL, with
the checks and uniqueness of the API, refused lines reported with their SCIM error."""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from scim2_core import Engine
from scim2_core.serving._cli import main, open_backend

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """``--db`` (and ``--db-schema``) of a new, empty database."""
    if request.param == "sqlite":
        yield ["--db", f"sqlite:///{tmp_path}/scim.db"]
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"scim_import_{uuid.uuid4().hex[:12]}"
    yield ["--db", url, "--db-schema", schema]
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


@contextmanager
def _engine(db: list[str]) -> Iterator[Engine]:
    backend = open_backend(db[1], db[3] if len(db) > 2 else None)
    try:
        yield Engine(backend)
    finally:
        backend.close()  # type: ignore[attr-defined]


def _users(db: list[str]) -> dict[str, dict[str, Any]]:
    with _engine(db) as engine:
        found = engine.users.search(count=1000).resources
    return {u["userName"]: u for u in found}


def _rejects(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _user(name: str) -> dict[str, Any]:
    return {"schemas": [USER], "userName": name}


def _lines(path: Path, items: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in items))
    return path


def test_json_lines_are_stored_as_a_post_would_and_refused_lines_reported(
    db: list[str], tmp_path: Path
) -> None:
    lines: list[Any] = [
        {"schemas": [USER], "userName": f"user{i}", "emails": [{"value": f"u{i}@example.com"}]}
        for i in range(25)
    ]
    lines += [
        {"schemas": [USER], "userName": "USER3"},  # userName is caseExact=false: taken
        "{not json",
        {"schemas": [USER], "userName": 42},
        "",
        {"schemas": [USER], "userName": "carol", "password": "s3cret-pass"},
        {"schemas": [USER], "userName": "carol"},  # taken within the same batch
        {"schemas": ["urn:example:unknown"], "userName": "dave"},
    ]
    source = _lines(tmp_path / "users.jsonl", lines)
    status, text = _run("import", str(source), *db, "--batch", "10")
    assert status == 1
    assert "imported 26 resources" in text and "rejected 5" in text
    rejects = _rejects(tmp_path / "users.jsonl.rejected.jsonl")
    by_line = {r["line"]: r for r in rejects}
    assert sorted(by_line) == [26, 27, 28, 31, 32]
    assert (by_line[26]["error"]["status"], by_line[26]["error"]["scimType"]) == (
        "409",
        "uniqueness",
    )
    assert by_line[26]["input"] == lines[25]
    assert by_line[27]["error"]["scimType"] == "invalidSyntax"
    assert by_line[27]["input"] == "{not json"
    assert by_line[28]["error"]["scimType"] == "invalidValue"
    assert by_line[31]["error"]["scimType"] == "uniqueness"
    users = _users(db)
    assert len(users) == 26
    stored = users["user7"]
    assert stored["emails"] == [{"value": "u7@example.com"}]
    assert stored["meta"]["resourceType"] == "User" and stored["meta"]["version"]
    assert "password" not in users["carol"]  # hashed, never returned (RFC 7643 §4.1.1)
    # Imported users are found as any other: by an indexed filter, and unique afterwards.
    with _engine(db) as engine:
        assert engine.users.search(filter='userName eq "USER7"').total == 1
    again = _run("import", str(_lines(tmp_path / "again.jsonl", [lines[7]])), *db)
    assert again[0] == 1 and "rejected 1" in again[1]


def test_a_bulk_file_creates_groups_whose_members_are_earlier_operations(
    db: list[str], tmp_path: Path
) -> None:
    operations = [
        *(
            {"method": "POST", "path": "/Users", "bulkId": name[0], "data": _user(name)}
            for name in ("alice", "bob")
        ),
        {
            "method": "POST",
            "path": "/Groups",
            "data": {
                "schemas": [GROUP],
                "displayName": "Staff",
                "members": [{"value": "bulkId:a"}, {"value": "bulkId:b"}],
            },
        },
        {"method": "DELETE", "path": "/Users/123"},
        {
            "method": "POST",
            "path": "/Groups",
            "data": {"schemas": [GROUP], "displayName": "Ghosts", "members": [{"value": "nobody"}]},
        },
    ]
    source = tmp_path / "bulk.json"
    source.write_text(json.dumps({"schemas": [BULK], "Operations": operations}, indent=2))
    status, text = _run("import", str(source), *db)
    assert status == 1 and "imported 3 resources" in text
    rejects = _rejects(tmp_path / "bulk.json.rejected.jsonl")
    assert [(r["line"], r["error"]["scimType"]) for r in rejects] == [
        (4, "invalidValue"),
        (5, "invalidValue"),
    ]
    users = _users(db)
    with _engine(db) as engine:
        group = engine.groups.search(filter='displayName eq "Staff"').resources[0]
    assert sorted(m["value"] for m in group["members"]) == sorted(
        [users["alice"]["id"], users["bob"]["id"]]
    )
    assert users["alice"]["groups"][0]["value"] == group["id"]


def test_an_import_with_nothing_refused_exits_0_and_leaves_no_rejects_file(
    tmp_path: Path,
) -> None:
    source = _lines(tmp_path / "u.jsonl", [{"schemas": [USER], "userName": "x"}])
    status, text = _run("import", str(source), "--db", f"sqlite:///{tmp_path}/s.db")
    assert (status, text.strip()) == (0, text.strip())
    assert "imported 1 resources" in text
    assert not (tmp_path / "u.jsonl.rejected.jsonl").exists()
    missing = _run("import", str(tmp_path / "absent.jsonl"), "--db", f"sqlite:///{tmp_path}/s.db")
    assert missing[0] == 2
    (tmp_path / "bad.json").write_text('{"schemas": ["x"],\n "a": 1}')
    assert _run("import", str(tmp_path / "bad.json"), "--db", f"sqlite:///{tmp_path}/s.db")[0] == 2


@pytest.mark.postgres
def test_a_value_taken_by_a_concurrent_write_during_the_load_is_refused_not_lost(
    postgres_url: str, tmp_path: Path
) -> None:
    """A userName another writer stores after the batch was checked makes the database
    refuse the batch; the batch is checked again: that line is a 409, the others stored."""
    import psycopg

    schema = f"scim_import_{uuid.uuid4().hex[:12]}"
    db = ["--db", postgres_url, "--db-schema", schema]
    try:
        assert _run("import", str(_lines(tmp_path / "a.jsonl", [_user("first")])), *db)[0] == 0
        names = ["anna", "Zed", "otto"]
        source = _lines(tmp_path / "b.jsonl", [_user(name) for name in names])
        with (
            psycopg.connect(postgres_url) as other,  # a transaction left open
            psycopg.connect(postgres_url, autocommit=True) as watch,
        ):
            other.execute(
                f'INSERT INTO "{schema}".scim_unique (scope, type, attr, value, tenant, id) '
                "VALUES ('t:', 'User', 'userName', 'zed', '', 'other-writer')"
            )
            result: list[tuple[int, str]] = []
            load = threading.Thread(target=lambda: result.append(_run("import", str(source), *db)))
            load.start()
            # The import's write waits for the open transaction's key (a lock wait) ...
            for _ in range(600):
                waiting = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'COPY scim_unique%'"
                ).fetchone()
                if (waiting and waiting[0]) or not load.is_alive():
                    break
                load.join(0.05)
            other.commit()  # ... which then takes the value first.
            load.join(60)
        assert result and result[0][0] == 1
        rejects = _rejects(tmp_path / "b.jsonl.rejected.jsonl")
        assert [(r["line"], r["error"]["scimType"]) for r in rejects] == [(2, "uniqueness")]
        assert sorted(_users(db)) == ["anna", "first", "otto"]
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_text_the_api_refuses_is_refused_line_by_line_not_a_crash(tmp_path: Path) -> None:
    """RFC 8259 §8.1: JSON text is UTF-8, which cannot hold an unpaired surrogate; a line
    with one (escaped, or as CESU-8 bytes), bytes that are not UTF-8, or JSON nested too deep
    is refused as the API refuses such a body (400 invalidSyntax); the other lines are stored."""
    head = b'{"schemas": ["' + USER.encode() + b'"], "userName": '
    source = tmp_path / "u.jsonl"
    source.write_bytes(
        b"\n".join(
            [
                head + b'"esc\\ud800"}',
                head + b'"cesu\xed\xa0\x80"}',
                head + b'"latin\xff"}',
                b"[" * 100_000 + b"]" * 100_000,
                head + b'"ok"}',
            ]
        )
        + b"\n"
    )
    db = ["--db", f"sqlite:///{tmp_path}/s.db"]
    status, text = _run("import", str(source), *db)
    assert status == 1 and "imported 1 resources" in text and "rejected 4" in text
    rejects = _rejects(tmp_path / "u.jsonl.rejected.jsonl")
    assert [(r["line"], r["error"]["scimType"]) for r in rejects] == [
        (n, "invalidSyntax") for n in (1, 2, 3, 4)
    ]
    assert rejects[0]["input"].endswith('"esc\\ud800"}')  # the line as given
    assert list(_users(db)) == ["ok"]

    operations = [
        {"method": "POST", "path": "/Users", "data": _user("esc\ud800")},
        {"method": "POST", "path": "/Users", "data": _user("fine")},
    ]
    bulk = tmp_path / "bulk.json"
    bulk.write_text(json.dumps({"schemas": [BULK], "Operations": operations}))
    status, text = _run("import", str(bulk), *db)
    assert status == 1 and "imported 1 resources" in text
    (reject,) = _rejects(tmp_path / "bulk.json.rejected.jsonl")
    assert (reject["line"], reject["error"]["scimType"]) == (1, "invalidSyntax")
    assert reject["input"]["data"]["userName"] == "esc\ud800"  # kept as its escape
    assert sorted(_users(db)) == ["fine", "ok"]


def test_the_bulk_path_refuses_an_id_stored_or_taken_earlier_in_its_batch(db: list[str]) -> None:
    """``SQLBackend.load_new`` (what the import stores a batch with): an id already stored,
    or taken by an earlier resource of the batch, is a 409; the other resources are stored."""
    with _engine(db) as engine:
        stored = engine.users.create(_user("first"))
        users = next(rt for rt in engine.resource_types if rt.name == "User")

        def resource(rid: str, name: str) -> dict[str, Any]:
            meta = {**stored["meta"], "location": None}
            return {**_user(name), "id": rid, "meta": {k: v for k, v in meta.items() if v}}

        fresh = str(uuid.uuid4())
        batch = [
            (0, resource(stored["id"], "second")),
            (1, resource(fresh, "third")),
            (2, resource(fresh, "fourth")),
        ]
        count, refused = engine.backend.load_new(None, users, batch)  # type: ignore[attr-defined]
        assert count == 1
        assert {n: (e.status, e.scim_type) for n, e in refused.items()} == {
            0: (409, "uniqueness"),
            2: (409, "uniqueness"),
        }
    assert sorted(_users(db)) == ["first", "third"]
