"""Members as rows (schema version 4): the migration from version 3, what a member add or
a group read costs in statements, and that filters on members keep their meaning."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scim2_core import Engine, Options
from scim2_core.backends import SQLBackend
from scim2_core.backends.sql._migrations import MIGRATIONS, SCHEMA_VERSION

postgres = pytest.mark.postgres

FIXTURE = Path(__file__).parent / "data" / "schema_v3.json"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _call(engine: Engine, method: str, path: str, body: Any = None, **query: str) -> Any:
    response = engine.handle(
        {"method": method, "path": path, "query": query, "body": body if body else b""}
    )
    assert response["status"] < 300, response
    return json.loads(response["body"]) if response["body"] else None


def _plain(resource: dict[str, Any]) -> dict[str, Any]:
    """A response without what depends on the base URL."""
    resource = json.loads(json.dumps(resource))
    resource["meta"].pop("location", None)
    for entry in resource.get("members", []) + resource.get("groups", []):
        entry.pop("$ref", None)
    return resource


# --- migration from schema version 3 ---------------------------------------------------------


def _v3_database(url: str, schema: str | None) -> None:
    """Write the tables of ``schema_v3.json`` (made by scim2-core at schema version 3: the
    rows of three groups, one nested, and five users) into a fresh database."""
    data = json.loads(FIXTURE.read_text())
    if url.startswith("sqlite"):
        conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
        json_type, mark, cast = "TEXT", "?", "?"
    else:
        import psycopg

        conn = psycopg.connect(url, autocommit=True)
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        json_type, mark, cast = "JSONB", "%s", "CAST(%s AS JSONB)"
    conn.execute("CREATE TABLE scim_schema (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO scim_schema (version) VALUES (3)")
    for steps in MIGRATIONS[:3]:
        for step in steps:
            assert isinstance(step, str)
            if "INSERT" not in step:
                conn.execute(step.format(json=json_type))
    for table, content in data["tables"].items():
        columns = content["columns"]
        marks = ", ".join(cast if c == "fdoc" else mark for c in columns)
        for row in content["rows"]:
            conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", row)
    if url.startswith("sqlite"):
        conn.commit()
    conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=postgres)])
def v3_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path}/v3.db", None
    else:
        url = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("postgres_schema")
    _v3_database(url, schema)
    return url, schema


def test_version_3_groups_move_to_member_rows_without_loss(
    v3_url: tuple[str, str | None],
) -> None:
    url, schema = v3_url
    expected = json.loads(FIXTURE.read_text())["expected"]
    with SQLBackend(url, schema=schema) as backend:
        engine = Engine(backend)
        assert (
            backend.schema_version() == SCHEMA_VERSION == 10
        )  # 4: members as rows; 5-8: events and audit; 9, 10: touched meta apart
        for rid, resource in expected.items():
            kind = "Groups" if GROUP_URN in resource["schemas"] else "Users"
            # Every resource reads exactly as version 3 returned it: members in list
            # order with their display and type, users' derived groups, versions.
            assert _plain(_call(engine, "GET", f"/{kind}/{rid}")) == resource
        ops = next(r for r in expected.values() if r.get("displayName") == "Ops")
        first = ops["members"][0]
        # The documents hold no members any more; the rows hold them all.
        with backend._dialect.transaction(write=False) as conn:
            docs = conn.execute("SELECT doc, fdoc FROM scim_resources").fetchall()
            rows = conn.execute("SELECT count(*) FROM scim_members").fetchone()[0]
        for doc, fdoc in docs:
            assert "members" not in json.loads(doc)
            assert "members" not in (json.loads(fdoc) if isinstance(fdoc, str) else fdoc)
        assert rows == sum(len(r.get("members", [])) for r in expected.values())
        # Filters on members read the rows: by id (index probe) and by a folded display.
        by_id = _call(engine, "GET", "/Groups", filter=f'members.value eq "{first["value"]}"')
        assert [r["id"] for r in by_id["Resources"]] == [ops["id"]]
        by_display = _call(engine, "GET", "/Groups", filter='members[display eq "DÉE"]')
        assert [r["id"] for r in by_display["Resources"]] == [ops["id"]]
        # And writes go on from there: a new member goes last.
        new = _call(engine, "POST", "/Users", {"schemas": [USER_URN], "userName": "late"})
        patch = {
            "schemas": [PATCH_URN],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": new["id"]}]}],
        }
        after = _call(engine, "PATCH", f"/Groups/{ops['id']}", patch)
        values = [m["value"] for m in after["members"]]
        assert values == [m["value"] for m in ops["members"]] + [new["id"]]


# --- cost: statements run --------------------------------------------------------------------


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[tuple[Engine, list[str]]]:
    """An engine on SQLite and the statements its (single, shared) connection runs."""
    backend = SQLBackend("sqlite:///:memory:")
    # Every read goes to the backend: these tests count what one read runs (the answers
    # kept for repeated reads have tests/backends/test_sql_read_cache.py).
    engine = Engine(backend, options=Options(read_cache_bytes=0))
    statements: list[str] = []
    backend._dialect.connection().set_trace_callback(statements.append)  # type: ignore[attr-defined]
    yield engine, statements
    backend.close()


def _group_of(engine: Engine, size: int) -> tuple[str, list[str]]:
    users = [
        _call(engine, "POST", "/Users", {"schemas": [USER_URN], "userName": f"s{size}-{i}"})["id"]
        for i in range(size)
    ]
    body = {
        "schemas": [GROUP_URN],
        "displayName": f"g{size}",
        "members": [{"value": u} for u in users],
    }
    return _call(engine, "POST", "/Groups", body)["id"], users


def _shape(statement: str) -> str:
    """A statement without its inline values."""
    return re.sub(r"\b\d+\b", "0", re.sub(r"'[^']*'", "'?'", statement))


def test_member_add_and_remove_cost_the_same_whatever_the_group_size(
    traced: tuple[Engine, list[str]],
) -> None:
    engine, statements = traced
    shapes = []
    for size in (3, 600):
        gid, _ = _group_of(engine, size)
        extra = _call(engine, "POST", "/Users", {"schemas": [USER_URN], "userName": f"x{size}"})
        for op in (
            {"op": "add", "path": "members", "value": [{"value": extra["id"]}]},
            {"op": "remove", "path": f'members[value eq "{extra["id"]}"]'},
        ):
            statements.clear()
            _call(
                engine,
                "PATCH",
                f"/Groups/{gid}",
                {"schemas": [PATCH_URN], "Operations": [op]},
                excludedAttributes="members",
            )
            shapes.append([_shape(s) for s in statements])
    # The same statements, none of them reading the whole member list.
    assert shapes[0] == shapes[2] and shapes[1] == shapes[3]
    for shape in shapes:
        assert not any("ORDER BY pos)" in s or "json_group_array" in s for s in shape)


def test_group_read_without_members_reads_no_member_row(
    traced: tuple[Engine, list[str]],
) -> None:
    engine, statements = traced
    gid, users = _group_of(engine, 5)
    statements.clear()
    one = _call(engine, "GET", f"/Groups/{gid}", excludedAttributes="members")
    listed = _call(engine, "GET", "/Groups", excludedAttributes="members")
    assert "members" not in one and "members" not in listed["Resources"][0]
    assert not any("scim_members" in s for s in statements)
    # With members, they come in list order.
    assert [m["value"] for m in _call(engine, "GET", f"/Groups/{gid}")["members"]] == users


def test_group_create_and_delete_touch_members_in_place(
    traced: tuple[Engine, list[str]],
) -> None:
    engine, _ = traced
    gid, users = _group_of(engine, 30)
    before = _call(engine, "GET", f"/Users/{users[7]}")
    assert before["meta"]["version"] == 'W/"2"'  # joining the group moved it
    assert before["groups"][0]["value"] == gid
    _call(engine, "DELETE", f"/Groups/{gid}")
    after = _call(engine, "GET", f"/Users/{users[7]}")
    assert after["meta"]["version"] == 'W/"3"'
    assert "groups" not in after
    assert after["meta"]["lastModified"] >= before["meta"]["lastModified"]
    # What the users hold as meta is what filters read (folded document edited too).
    found = _call(engine, "GET", "/Users", filter='meta.version eq "W/\\"3\\""')
    assert found["totalResults"] == 30


def test_touched_members_keep_meta_in_columns_that_filters_and_sorts_read(
    traced: tuple[Engine, list[str]],
) -> None:
    engine, statements = traced
    gid, users = _group_of(engine, 5)
    stamps = {u: _call(engine, "GET", f"/Users/{u}")["meta"]["lastModified"] for u in users}
    late = _call(engine, "POST", "/Users", {"schemas": [USER_URN], "userName": "late"})
    time.sleep(0.002)  # lastModified has millisecond resolution
    statements.clear()
    _call(engine, "DELETE", f"/Groups/{gid}")
    # One statement writing the members' small scim_versions rows; no member's own row
    # (nor its document) is rewritten.
    touches = [s for s in statements if "INTO SCIM_VERSIONS" in s.upper()]
    assert len(touches) == 1
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE SCIM_RESOURCES")]
    moved = _call(engine, "GET", f"/Users/{users[0]}")["meta"]["lastModified"]
    assert moved > late["meta"]["lastModified"] >= max(stamps.values())
    # meta.lastModified as read is what a filter and a sort see (RFC 7644 §3.4.2.2).
    after = _call(
        engine, "GET", "/Users", filter=f'meta.lastModified gt "{late["meta"]["lastModified"]}"'
    )
    assert sorted(r["id"] for r in after["Resources"]) == sorted(users)
    ordered = _call(engine, "GET", "/Users", sortBy="meta.lastModified", sortOrder="descending")
    assert {r["id"] for r in ordered["Resources"][:5]} == set(users)
    # A full write of a touched user puts its meta back in the document.
    put = {"schemas": [USER_URN], "userName": "renamed"}
    updated = _call(engine, "PUT", f"/Users/{users[0]}", put)
    assert updated["meta"]["version"] == 'W/"4"'
    assert _call(engine, "GET", f"/Users/{users[0]}")["meta"] == updated["meta"]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=postgres)])
def test_version_8_database_moves_to_the_current_version_without_loss(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        url, schema = f"sqlite:///{tmp_path}/v8.db", None
    else:
        url = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("postgres_schema")
    with SQLBackend(url, schema=schema) as old:
        engine = Engine(old)
        users = [
            _call(engine, "POST", "/Users", {"schemas": [USER_URN], "userName": f"u{i}"})
            for i in range(3)
        ]
        members = [{"value": u["id"]} for u in users]
        body = {"schemas": [GROUP_URN], "displayName": "G", "members": members}
        gid = _call(engine, "POST", "/Groups", body)["id"]
        before = {u["id"]: _call(engine, "GET", f"/Users/{u['id']}") for u in users}
        # The database as version 8 left it: every row's meta in its documents only.
        d = old._dialect
        with d.transaction(write=True) as conn:
            rows = conn.execute(
                "SELECT r.id, r.doc, r.fdoc, COALESCE(v.version, r.version), v.modified "
                "FROM scim_resources r LEFT JOIN scim_versions v ON v.id = r.id"
            )
            for rid, doc, fdoc, version, modified in rows.fetchall():
                docs = [json.loads(x) if isinstance(x, str) else x for x in (doc, fdoc)]
                for one in docs:
                    one["meta"]["version"] = version
                    one["meta"]["lastModified"] = modified or one["meta"]["lastModified"]
                conn.execute(
                    d.sql(
                        f"UPDATE scim_resources SET doc = ?, fdoc = {d.json_param}, version = ? "
                        "WHERE id = ?"
                    ),
                    (json.dumps(docs[0]), json.dumps(docs[1]), version, rid),
                )
            conn.execute("ALTER TABLE scim_resources DROP COLUMN modified")
            conn.execute("DROP TABLE scim_versions")
            conn.execute("UPDATE scim_schema SET version = 8")
        assert old.schema_version() == 8
    with SQLBackend(url, schema=schema) as new:
        engine = Engine(new)
        assert new.schema_version() == SCHEMA_VERSION == 10
        for rid, resource in before.items():
            assert _call(engine, "GET", f"/Users/{rid}") == resource
        _call(engine, "DELETE", f"/Groups/{gid}")
        for rid, resource in before.items():
            now = _call(engine, "GET", f"/Users/{rid}")
            assert (resource["meta"]["version"], now["meta"]["version"]) == ('W/"2"', 'W/"3"')
            assert "groups" not in now


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=postgres)])
def test_version_9_database_moves_to_version_10_without_loss(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Version 9 kept a touched member's version and time in its own row's ``version``
    and ``modified`` columns; version 10 moves them to ``scim_versions``: every read, filter
    and sort answers as before, and the next touch counts on from there."""
    if kind == "sqlite":
        url, schema = f"sqlite:///{tmp_path}/v9.db", None
    else:
        url = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("postgres_schema")
    with SQLBackend(url, schema=schema) as old:
        engine = Engine(old)
        users = [
            _call(engine, "POST", "/Users", {"schemas": [USER_URN], "userName": f"u{i}"})
            for i in range(4)
        ]
        members = [{"value": u["id"]} for u in users[:3]]
        body = {"schemas": [GROUP_URN], "displayName": "G", "members": members}
        gid = _call(engine, "POST", "/Groups", body)["id"]
        _call(engine, "PATCH", f"/Users/{users[0]['id']}", _patch("title", "written"))
        before = {u["id"]: _call(engine, "GET", f"/Users/{u['id']}") for u in users}
        listed = _call(engine, "GET", "/Users", sortBy="meta.lastModified")
        # The database as version 9 left it: a touched row's meta in its own columns.
        d = old._dialect
        with d.transaction(write=True) as conn:
            touched = conn.execute("SELECT id, version, modified FROM scim_versions").fetchall()
            for rid, version, modified in touched:
                conn.execute(
                    d.sql("UPDATE scim_resources SET version = ?, modified = ? WHERE id = ?"),
                    (version, modified, rid),
                )
            conn.execute("DROP TABLE scim_versions")
            conn.execute("UPDATE scim_schema SET version = 9")
        assert len(touched) == 2  # users 1 and 2; user 0 was written after the touch
        assert old.schema_version() == 9
    with SQLBackend(url, schema=schema) as new:
        engine = Engine(new)
        assert new.schema_version() == SCHEMA_VERSION == 10
        for rid, resource in before.items():
            assert _call(engine, "GET", f"/Users/{rid}") == resource
        assert _call(engine, "GET", "/Users", sortBy="meta.lastModified") == listed
        version = before[users[1]["id"]]["meta"]["version"]
        found = _call(engine, "GET", "/Users", filter=f"meta.version eq {json.dumps(version)}")
        assert {r["id"] for r in found["Resources"]} == {users[1]["id"], users[2]["id"]}
        _call(engine, "DELETE", f"/Groups/{gid}")
        for u in users[:3]:
            now = _call(engine, "GET", f"/Users/{u['id']}")
            assert now["meta"]["version"] == _next(before[u["id"]]["meta"]["version"])
            assert "groups" not in now
        assert _call(engine, "GET", f"/Users/{users[3]['id']}") == before[users[3]["id"]]


def _patch(path: str, value: Any) -> dict[str, Any]:
    return {"schemas": [PATCH_URN], "Operations": [{"op": "replace", "path": path, "value": value}]}


def _next(version: str) -> str:
    from scim2_core.schema import next_version

    return next_version(version)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=postgres)])
def test_touch_counts_versions_as_the_engine_does(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The touch's version arithmetic, in SQL, is :func:`scim2_core.schema.next_version`:
    an unparseable version counts as 0 (a resource stored by an application, say)."""
    from scim2_core.schema import next_version

    if kind == "sqlite":
        url, schema = f"sqlite:///{tmp_path}/v.db", None
    else:
        url = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("postgres_schema")
    versions = ['W/"7"', 'W/"x1"', '"12"', "", 'W/""', 'W/"99999999999"', 'W/"9"', 'W/"007"']
    versions += ['W/"1"2"', 'W/"', 'W/"3', "W/4", 'w/"5"']
    stamp = "2026-01-01T00:00:00Z"
    with SQLBackend(url, schema=schema) as backend:
        engine = Engine(backend)
        users, groups = (
            next(r for r in engine.resource_types if r.name == n) for n in ("User", "Group")
        )
        for i, version in enumerate(versions):
            meta = {
                "resourceType": "User",
                "created": stamp,
                "lastModified": stamp,
                "version": version,
            }
            user = {"schemas": [USER_URN], "id": f"u{i}", "userName": f"u{i}", "meta": meta}
            backend.create(None, users, user)
        ids = [f"u{i}" for i in range(len(versions))]
        meta = {
            "resourceType": "Group",
            "created": stamp,
            "lastModified": stamp,
            "version": 'W/"1"',
        }
        members = [{"value": i, "type": "User"} for i in ids]
        group = {
            "schemas": [GROUP_URN],
            "id": "g",
            "displayName": "g",
            "members": members,
            "meta": meta,
        }
        backend.create(None, groups, group, members=ids)
        got = [backend.get(None, users, i)["meta"]["version"] for i in ids]  # type: ignore[index]
    assert got == [next_version(v) for v in versions]


def test_a_first_page_shorter_than_count_is_its_own_total(
    traced: tuple[Engine, list[str]],
) -> None:
    engine, statements = traced
    for i in range(3):
        _call(engine, "POST", "/Users", {"schemas": [USER_URN], "userName": f"p{i}"})
    statements.clear()
    found = _call(engine, "GET", "/Users", filter='userName eq "P1"')
    assert (found["totalResults"], found["Resources"][0]["userName"]) == (1, "p1")
    # One statement for the lookup: no count beside the page, no transaction around it.
    assert not [s for s in statements if "count" in s.lower()]
    assert len([s for s in statements if s.startswith("SELECT r.doc")]) == 1
    assert not _in_transaction(statements)
    assert _call(engine, "GET", "/Users", filter='userName eq "nobody"')["totalResults"] == 0
    # A full page needs the count; a later page too.
    assert _call(engine, "GET", "/Users", count="2")["totalResults"] == 3
    later = _call(engine, "GET", "/Users", count="1", startIndex="3")
    assert (later["totalResults"], len(later["Resources"])) == (3, 1)
    assert _call(engine, "GET", "/Users", startIndex="9")["totalResults"] == 3


def _in_transaction(statements: list[str]) -> bool:
    """Whether ``statements`` open or close a transaction."""
    return any(s.split()[0].upper() in ("BEGIN", "COMMIT") for s in statements)


def test_a_read_by_id_is_one_statement_and_no_transaction(
    traced: tuple[Engine, list[str]],
) -> None:
    engine, statements = traced
    gid, users = _group_of(engine, 2)
    for path in (f"/Users/{users[0]}", f"/Groups/{gid}"):
        statements.clear()
        got = _call(engine, "GET", path)
        # A user with its groups, a group with its members: ONE statement each (the
        # groups or the members a scalar subquery of it), its own snapshot: no BEGIN/COMMIT.
        assert len(statements) == 1, statements
        assert not _in_transaction(statements), statements
        if path.startswith("/Users"):
            assert [g["value"] for g in got["groups"]] == [gid]
        else:
            assert sorted(m["value"] for m in got["members"]) == sorted(users)


def test_a_user_name_lookup_reads_the_groups_in_the_same_statement(
    traced: tuple[Engine, list[str]],
) -> None:
    engine, statements = traced
    gid, users = _group_of(engine, 2)
    statements.clear()
    found = _call(engine, "GET", "/Users", filter='userName eq "s2-1"')
    assert [g["value"] for g in found["Resources"][0]["groups"]] == [gid]
    assert len(statements) == 1, statements  # the page, its total and its groups
    assert found["Resources"][0] == _call(engine, "GET", f"/Users/{users[1]}")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=postgres)])
def test_a_lookup_shows_the_groups_a_read_by_id_shows(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The groups read with a ``userName eq`` page (one statement) are those of a read by id
    and of ``groups_of``: by group id, with their display names, the tenant's only."""
    if kind == "sqlite":
        backend = SQLBackend(f"sqlite:///{tmp_path / 'l.db'}")
    else:
        url = request.getfixturevalue("postgres_url")
        backend = SQLBackend(url, schema=request.getfixturevalue("postgres_schema"))
    engine = Engine(backend)
    try:
        for tenant in (None, "acme"):
            people = engine.directory(tenant).users
            joined = people.create({"userName": "joined"})["id"]
            people.create({"userName": "alone"})
            for name in ("z", "a", "\u00e9t\u00e9"):
                engine.directory(tenant).groups.create(
                    {"displayName": name, "members": [{"value": joined}]}
                )
        for name in ("joined", "alone"):
            got = engine.directory("acme").users.search(filter=f'userName eq "{name}"')
            (user,) = got.resources
            assert user == engine.directory("acme").users.get(user["id"])
            assert len(user.get("groups", [])) == (3 if name == "joined" else 0)
    finally:
        backend.close()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=postgres)])
def test_get_with_groups_is_get_and_groups_of_in_one_read(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``get_with_groups`` answers what ``get`` then ``groups_of`` answer: the groups by id
    (whatever order they were joined in), with their display names, a tenant's groups
    only, and ``None`` for no such resource."""
    if kind == "sqlite":
        backend = SQLBackend(f"sqlite:///{tmp_path / 'g.db'}")
    else:
        url = request.getfixturevalue("postgres_url")
        backend = SQLBackend(url, schema=request.getfixturevalue("postgres_schema"))
    engine = Engine(backend)
    users_rt, groups_rt = engine.resource_types
    try:
        for tenant in (None, "acme"):
            people = engine.directory(tenant).users
            teams = engine.directory(tenant).groups
            alone = people.create({"userName": "alone"})["id"]
            joined = people.create({"userName": "joined"})["id"]
            # Joined in an order unrelated to the groups' (server-chosen) ids.
            for name in ("z", "a", "\u00e9t\u00e9", "Zed"):
                teams.create({"displayName": name, "members": [{"value": joined}]})
            for rid in (alone, joined, "missing"):
                read = backend.get_with_groups(tenant, users_rt, rid)
                doc = backend.get(tenant, users_rt, rid)
                if doc is None:
                    assert read is None
                    continue
                assert read is not None
                assert read[0] == doc
                assert read[1] == backend.groups_of(tenant, [rid]).get(rid, [])
            assert len(backend.get_with_groups(tenant, users_rt, joined)[1]) == 4  # type: ignore[index]
        # Another tenant's user is not found, its groups are not seen.
        assert backend.get_with_groups("other", users_rt, joined) is None
        # A group read by id: its members, from the same single statement.
        gid = backend.groups_of("acme", [joined])[joined][0]["value"]
        group = backend.get("acme", groups_rt, gid)
        assert group is not None
        assert [m["value"] for m in group["members"]] == [joined]
    finally:
        backend.close()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=postgres)])
@pytest.mark.parametrize("write", ["create", "replace"])
def test_a_member_deleted_after_the_engine_checked_it_fails_the_whole_group_write(
    kind: str, write: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The engine checks members (``existing``), then writes; the write's own statement
    inserting the member rows is the check inside its transaction, so a member deleted in
    between (by another server) fails the write with 400 and nothing of it is kept: no
    group, or the group as it was, and no member touched."""
    from scim2_core import InvalidValueError

    if kind == "sqlite":
        url, schema = f"sqlite:///{tmp_path}/race.db", None
    else:
        url = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("postgres_schema")
    stamp = "2026-01-01T00:00:00Z"

    def meta(kind: str) -> dict[str, str]:
        return {"resourceType": kind, "created": stamp, "lastModified": stamp, "version": 'W/"1"'}

    with SQLBackend(url, schema=schema) as backend, SQLBackend(url, schema=schema) as other:
        engine = Engine(backend)
        Engine(other)
        users, groups = (
            next(r for r in engine.resource_types if r.name == n) for n in ("User", "Group")
        )
        ids = [f"u{i}" for i in range(5)]
        for i in ids:
            user = {"schemas": [USER_URN], "id": i, "userName": i, "meta": meta("User")}
            backend.create(None, users, user)
        group = {"schemas": [GROUP_URN], "id": "g", "displayName": "g", "meta": meta("Group")}
        if write == "replace":
            backend.create(None, groups, dict(group, members=[{"value": "u0", "type": "User"}]))
        found = backend.existing(None, ids)
        assert set(found) == set(ids)
        other.delete(None, users, "u3")
        members = [{"value": i, "type": "User"} for i in ids]

        def replace(current: dict[str, Any]) -> dict[str, Any]:
            new = dict(current, members=members)
            new["meta"] = dict(current["meta"], version='W/"2"')
            return new

        def write_group() -> object:
            if write == "create":
                return backend.create(None, groups, dict(group, members=members), members=found)
            return backend.update(None, groups, "g", replace, members=found)

        with pytest.raises(InvalidValueError, match="u3"):
            write_group()
        stored = backend.get(None, groups, "g")
        if write == "create":
            assert stored is None
        else:
            assert stored is not None
            assert [m["value"] for m in stored["members"]] == ["u0"]
            assert stored["meta"]["version"] == 'W/"1"'
        for i in ("u1", "u2", "u4"):
            user = backend.get(None, users, i)
            assert user is not None
            assert user["meta"]["version"] == 'W/"1"'  # not touched: rolled back
        assert backend.groups_of(None, ["u1", "u2", "u4"]) == {}
