"""``scim2-core serve`` under concurrency, load and ``kill -9``, over HTTP, on SQLite and PostgreSQL.

Each test runs one or two real ``scim2-core serve`` processes (uvicorn, a bearer token) on one
database: a SQLite file, or a PostgreSQL database of its own (dropped afterwards). Two
processes on one database stand for several app servers in front of one database. What is
asserted is what a SCIM client sees: status codes, ``scimType``, the resources read back —
after a race, after a burst of mixed traffic, and after the server was killed with SIGKILL
and started again on the same database.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from served import TOKEN, Served, free_port

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json"


def http(server: Served) -> httpx.Client:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": SCIM_JSON}
    return httpx.Client(base_url=server.base, headers=headers, timeout=60)


def new_user(name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": name, **extra}


def add_member(user_id: str) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
    }


def race(
    clients: list[httpx.Client], n: int, call: Callable[[httpx.Client, int], Any]
) -> list[Any]:
    """``call(client, i)`` for i in 0..n-1 at once from n threads, spread over ``clients``."""
    start = threading.Barrier(n)

    def run(i: int) -> Any:
        start.wait()
        return call(clients[i % len(clients)], i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def all_users(client: httpx.Client) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = client.get("/Users", params={"startIndex": len(out) + 1, "count": 200})
        assert page.status_code == 200, page.text
        body = page.json()
        out.extend(body.get("Resources", []))
        if len(out) >= body["totalResults"] or not body.get("Resources"):
            return out


def assert_consistent(client: httpx.Client) -> None:
    """What a client can check: every user is found by its own userName and id, every group
    member exists, and ``User.groups`` says the same as ``Group.members``."""
    users = all_users(client)
    by_id = {u["id"]: u for u in users}
    assert len(by_id) == len(users)
    for u in users:
        found = client.get("/Users", params={"filter": f'userName eq "{u["userName"]}"'}).json()
        assert [r["id"] for r in found["Resources"]] == [u["id"]]
    groups = client.get("/Groups", params={"count": 1000}).json()
    memberships: set[tuple[str, str]] = set()
    for g in groups.get("Resources", []):
        for m in g.get("members", []):
            assert m["value"] in by_id, f"group {g['id']} lists a missing member {m['value']}"
            memberships.add((m["value"], g["id"]))
    claimed = {(u["id"], g["value"]) for u in users for g in u.get("groups", [])}
    assert claimed == memberships


# --- several servers on one new database ---------------------------------------------------


def test_servers_started_at_once_on_a_new_database_all_come_up(
    serve: Callable[..., Served],
) -> None:
    # Several app servers deployed together: they create the schema one after the other.
    servers = [serve(wait=False) for _ in range(3)]
    for server in servers:
        server.wait_ready()
    for i, server in enumerate(servers):
        with http(server) as client:
            assert client.post("/Users", json=new_user(f"boot{i}")).status_code == 201
    for server in servers:
        with http(server) as client:
            assert client.get("/Users").json()["totalResults"] == len(servers)


# --- 1. concurrent creates of one userName ----------------------------------------------------


@pytest.mark.parametrize("processes", [1, 2])
def test_concurrent_creates_of_one_user_name_exactly_one_wins(
    serve: Callable[..., Served], processes: int
) -> None:
    servers = [serve() for _ in range(processes)]
    clients = [http(s) for s in servers]
    for round in range(2):
        name = f"Same.Name{round}"

        def create(client: httpx.Client, i: int, name: str = name) -> httpx.Response:
            # Mixed case: uniqueness of userName is case-insensitive (caseExact false).
            spelled = name.upper() if i % 2 else name
            return client.post("/Users", json=new_user(spelled))

        responses = race(clients, 16, create)
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {201: 1, 409: 15}, [r.text for r in responses]
        assert {r.json().get("scimType") for r in responses if r.status_code == 409} == {
            "uniqueness"
        }
        for client in clients:
            found = client.get("/Users", params={"filter": f'userName eq "{name}"'}).json()
            assert found["totalResults"] == 1
    for client in clients:
        client.close()


# --- 2. concurrent group membership and If-Match ----------------------------------------------


def test_concurrent_member_adds_lose_none(serve: Callable[..., Served]) -> None:
    # 16 threads, half through each of two servers on one database.
    servers = [serve(), serve()]
    clients = [http(s) for s in servers]
    client = clients[0]
    ids = [client.post("/Users", json=new_user(f"m{i}")).json()["id"] for i in range(16)]
    gid = client.post("/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": "All"}).json()[
        "id"
    ]

    def add(c: httpx.Client, i: int) -> int:
        return c.patch(f"/Groups/{gid}", json=add_member(ids[i])).status_code

    assert set(race(clients, len(ids), add)) <= {200, 204}
    for c in clients:
        group = c.get(f"/Groups/{gid}").json()
        assert sorted(m["value"] for m in group["members"]) == sorted(ids)
        # One version bump per acknowledged PATCH, none swallowed by a race.
        assert group["meta"]["version"] == f'W/"{len(ids) + 1}"'
        for uid in ids[:5]:
            groups = c.get(f"/Users/{uid}").json()["groups"]
            assert [(g["value"], g.get("display")) for g in groups] == [(gid, "All")]
    assert_consistent(client)
    for c in clients:
        c.close()


def test_member_added_while_being_deleted_never_dangles(serve: Callable[..., Served]) -> None:
    # A user deleted while a group adds it: either order is fine, but afterwards the group
    # never lists a member that does not exist, and User.groups agrees with Group.members.
    servers = [serve(), serve()]
    clients = [http(s) for s in servers]
    gid = clients[0].post("/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": "G"})
    gid = gid.json()["id"]
    for round in range(4):
        ids = [
            clients[0].post("/Users", json=new_user(f"d{round}-{i}")).json()["id"] for i in range(6)
        ]

        def act(c: httpx.Client, i: int, ids: list[str] = ids) -> int:
            uid = ids[i // 2]
            if i % 2:
                return c.delete(f"/Users/{uid}").status_code
            return c.patch(f"/Groups/{gid}", json=add_member(uid)).status_code

        statuses = race(clients, 2 * len(ids), act)
        assert set(statuses) <= {200, 204, 400}, statuses
        group = clients[1].get(f"/Groups/{gid}").json()
        assert not {m["value"] for m in group.get("members", [])} & set(ids)
    assert_consistent(clients[0])
    for c in clients:
        c.close()


def test_concurrent_if_match_writes_exactly_one_wins(serve: Callable[..., Served]) -> None:
    servers = [serve(), serve()]
    clients = [http(s) for s in servers]
    for method in ("PUT", "PATCH", "DELETE"):
        created = clients[0].post("/Users", json=new_user(f"contended-{method}", title="t0"))
        uid, etag = created.json()["id"], created.headers["ETag"]

        def write(
            c: httpx.Client, i: int, method: str = method, uid: str = uid, etag: str = etag
        ) -> int:
            headers = {"If-Match": etag}
            if method == "PUT":
                body = new_user(f"contended-{method}", title=f"t{i + 1}")
                return c.put(f"/Users/{uid}", json=body, headers=headers).status_code
            if method == "PATCH":
                body = {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "path": "title", "value": f"t{i + 1}"}],
                }
                return c.patch(f"/Users/{uid}", json=body, headers=headers).status_code
            return c.delete(f"/Users/{uid}", headers=headers).status_code

        statuses = Counter(race(clients, 8, write))
        if method == "DELETE":
            # The losers find the resource gone or changed; it is deleted exactly once.
            assert statuses[204] == 1, statuses
            assert set(statuses) <= {204, 404, 412}, statuses
            assert clients[1].get(f"/Users/{uid}").status_code == 404
        else:
            assert statuses == {200: 1, 412: 7}, (method, statuses)
            after = clients[1].get(f"/Users/{uid}").json()
            assert after["meta"]["version"] == 'W/"2"'
            assert after["title"] != "t0"
    for c in clients:
        c.close()


# --- 3. kill -9 -----------------------------------------------------------------------------


def test_acknowledged_writes_survive_kill_9(serve: Callable[..., Served]) -> None:
    server = serve()
    client = http(server)
    gid = client.post("/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": "Crew"}).json()[
        "id"
    ]
    created: dict[str, str] = {}
    for i in range(30):
        r = client.post("/Users", json=new_user(f"k{i}", title="new"))
        assert r.status_code == 201
        created[r.json()["id"]] = f"k{i}"
    ids = list(created)
    for uid in ids[:20]:  # titles replaced
        body = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "title", "value": "patched"}],
        }
        assert client.patch(f"/Users/{uid}", json=body).status_code in (200, 204)
    for uid in ids[10:25]:  # group members
        assert client.patch(f"/Groups/{gid}", json=add_member(uid)).status_code in (200, 204)
    deleted = ids[:5] + ids[20:22]
    for uid in deleted:
        assert client.delete(f"/Users/{uid}").status_code == 204
    client.close()
    server.kill()  # right after the last acknowledged write

    client = http(serve())
    for uid in ids:
        r = client.get(f"/Users/{uid}")
        if uid in deleted:
            assert r.status_code == 404
            continue
        assert r.status_code == 200
        user = r.json()
        assert user["userName"] == created[uid]
        assert user["title"] == ("patched" if uid in ids[:20] else "new")
    group = client.get(f"/Groups/{gid}").json()
    expected = [u for u in ids[10:25] if u not in deleted]
    assert sorted(m["value"] for m in group["members"]) == sorted(expected)
    assert_consistent(client)
    client.close()


def test_kill_9_in_the_middle_of_a_write_stream(
    serve: Callable[..., Served], db_url: str, tmp_path: Path
) -> None:
    server = serve()
    client = http(server)
    gid = client.post("/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": "Stream"}).json()[
        "id"
    ]
    client.close()
    acknowledged: dict[str, str] = {}  # id -> userName, recorded only after a 201
    members: set[str] = set()
    stop = threading.Event()

    def writer(w: int) -> None:
        with http(server) as c:
            i = 0
            while not stop.is_set():
                try:
                    r = c.post("/Users", json=new_user(f"s{w}-{i}"))
                    if r.status_code != 201:
                        return
                    uid = r.json()["id"]
                    acknowledged[uid] = f"s{w}-{i}"
                    if i % 2 == 0:
                        p = c.patch(f"/Groups/{gid}", json=add_member(uid))
                        if p.status_code in (200, 204):
                            members.add(uid)
                except httpx.TransportError:
                    return  # the server was killed mid-request: not acknowledged
                i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill()
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acknowledged) >= 40

    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(tmp_path / "scim.db")
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()
    client = http(serve())
    for uid, name in acknowledged.items():
        r = client.get(f"/Users/{uid}")
        assert r.status_code == 200, uid
        assert r.json()["userName"] == name
    group = client.get(f"/Groups/{gid}").json()
    assert members <= {m["value"] for m in group.get("members", [])}
    assert_consistent(client)
    # The database takes writes again.
    assert client.post("/Users", json=new_user("after-restart")).status_code == 201
    client.close()


# --- 4. a short mixed load --------------------------------------------------------------------


def test_mixed_load_on_two_servers_never_fails(serve: Callable[..., Served]) -> None:
    servers = [serve(), serve()]
    setup = http(servers[0])
    gids = [
        setup.post("/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": f"G{i}"}).json()["id"]
        for i in range(3)
    ]
    taken = setup.post("/Users", json=new_user("taken"))
    assert taken.status_code == 201
    setup.close()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def client_loop(w: int) -> None:
        mine: list[str] = []
        with http(servers[w % 2]) as c:

            def check(r: httpx.Response, *ok: int) -> httpx.Response:
                with lock:
                    statuses[r.status_code] += 1
                    if r.status_code not in ok:
                        failures.append(
                            f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
                        )
                return r

            for i in range(260):
                step = i % 10
                if step in (0, 5) or not mine:
                    r = check(c.post("/Users", json=new_user(f"w{w}-{i}", title="x")), 201)
                    if r.status_code == 201:
                        mine.append(r.json()["id"])
                elif step == 1:
                    check(c.get(f"/Users/{mine[-1]}"), 200)
                elif step == 2:
                    check(c.get("/Users", params={"filter": f'userName eq "w{w}-{i - 2}"'}), 200)
                elif step == 3:
                    gid = gids[i % len(gids)]
                    check(c.patch(f"/Groups/{gid}", json=add_member(mine[-1])), 200, 204)
                elif step == 4:
                    body = new_user(f"w{w}-renamed-{i}", title="y")
                    check(c.put(f"/Users/{mine[-1]}", json=body), 200)
                elif step == 6:
                    check(c.get("/Users", params={"startIndex": 1 + i, "count": 20}), 200)
                elif step == 7:
                    check(c.get(f"/Groups/{gids[i % len(gids)]}"), 200)
                elif step == 8:
                    # A user name in use (in another case): 409, not a 5xx.
                    check(c.post("/Users", json=new_user("TAKEN")), 409)
                else:
                    check(c.delete(f"/Users/{mine.pop(0)}"), 204)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client_loop, range(8)))
    assert failures == []
    assert sum(statuses.values()) >= 2000
    assert not any(s >= 500 for s in statuses)
    with http(servers[1]) as c:
        assert_consistent(c)


# --- the command line -------------------------------------------------------------------------


@pytest.mark.postgres
def test_serve_prints_the_database_url_without_its_password(
    postgres_database: str, tmp_path: Path
) -> None:
    # The test server trusts local connections, so any password is accepted.
    url = postgres_database.replace("postgresql://postgres@", "postgresql://postgres:s3cret-pw@")
    server = Served(url, tmp_path, "redacted")
    try:
        with http(server) as client:
            assert client.get("/Users").status_code == 200
    finally:
        server.stop()
    printed = server.log()
    assert "s3cret-pw" not in printed
    assert url.replace("s3cret-pw", "***") in printed


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://scim:s3cret-pw@127.0.0.1:1/nowhere",
            "postgresql://scim:***@127.0.0.1:1/nowhere",
        ),
        # libpq also takes the password as a query parameter, in any case
        (
            "postgresql://scim@127.0.0.1:1/nowhere?sslmode=disable&Password=s3cret-pw",
            "postgresql://scim@127.0.0.1:1/nowhere?sslmode=disable&Password=***",
        ),
    ],
)
def test_a_failing_database_url_is_reported_without_its_password(
    tmp_path: Path, url: str, shown: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scim2_core", "serve", "--db", url, "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "s3cret-pw" not in done.stdout + done.stderr
    assert shown in done.stderr


@pytest.mark.parametrize(
    "db",
    [
        "postgresql://postgres@127.0.0.1:1/nowhere",
        "mysql://localhost/db",
        "sqlite:///{tmp}/no/such/folder/scim.db",
        "not a url",
    ],
)
def test_serve_with_a_bad_database_exits_with_one_clear_line(tmp_path: Path, db: str) -> None:
    db_arg = db.format(tmp=tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "scim2_core", "serve", "--port", str(free_port()), "--db", db_arg],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("scim2-core: "), lines[0]
