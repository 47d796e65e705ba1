"""Cursors across servers: several ``scim2-core serve`` processes on one database (behind a
load balancer, each request may reach any of them) accept each other's RFC 9865 cursors."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from served import TOKEN, Served

from scim2_core.serving._cli import build_app, cursor_key

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"


def _request(base: str, method: str, path: str, body: Any = None, **query: str) -> Any:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    req.add_header("Content-Type", "application/scim+json")
    with urllib.request.urlopen(req, timeout=30) as response:
        return json.loads(response.read() or b"null")


def test_pages_through_one_server_with_cursors_from_another(
    serve: Callable[..., Served],
) -> None:
    first, second = serve(), serve()
    for i in range(23):
        body = {"schemas": [USER_URN], "userName": f"user{i:02d}"}
        _request(first.base, "POST", "/Users", body)
    seen: list[str] = []
    servers = [first.base, second.base]
    page = _request(first.base, "GET", "/Users", cursor="", count="5", sortBy="userName")
    turns = 1
    while True:
        seen.extend(r["userName"] for r in page["Resources"])
        cursor = page.get("nextCursor")
        if cursor is None:
            break
        # Each next page from the other server, with the cursor the previous one minted.
        base = servers[turns % 2]
        page = _request(base, "GET", "/Users", cursor=cursor, count="5", sortBy="userName")
        turns += 1
    assert turns == 5
    assert seen == [f"user{i:02d}" for i in range(23)]


def test_cursor_secret_decides_which_servers_accept_a_cursor(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/scim.db"
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def handle(engine: Any, method: str, path: str, **extra: Any) -> tuple[int, Any]:
        response = engine.handle({"method": method, "path": path, "headers": auth, **extra})
        return response["status"], json.loads(response["body"])

    one = build_app(db, TOKEN, cursor_secret="s3cret")[0]
    for n in range(3):
        body = {"schemas": [USER_URN], "userName": f"u{n}"}
        assert handle(one, "POST", "/Users", body=body)[0] == 201
    # Sorted by userName: the default order (meta.created, id) ties within a millisecond.
    query = {"count": "1", "sortBy": "userName"}
    _, first = handle(one, "GET", "/Users", query={"cursor": "", **query})
    cursor = first["nextCursor"]
    same = build_app(db, TOKEN, cursor_secret="s3cret")[0]
    status, second = handle(same, "GET", "/Users", query={"cursor": cursor, **query})
    assert status == 200 and second["Resources"][0]["userName"] == "u1"
    for stranger in (build_app(db, TOKEN, cursor_secret="other")[0], build_app(db, TOKEN)[0]):
        status, error = handle(stranger, "GET", "/Users", query={"cursor": cursor, **query})
        assert (status, error["scimType"]) == (400, "invalidCursor")
    # Given a secret, the key depends on it alone; by default, on the bearer token.
    assert cursor_key("t1", "s") == cursor_key("t2", "s") != cursor_key("t1", None)
    assert cursor_key("t1", None) != cursor_key("t2", None)


def test_cursor_pages_across_servers_while_users_come_and_go(
    serve: Callable[..., Served],
) -> None:
    """Keyset cursors (positions, not offsets) minted by one server, followed on the other,
    while users are created on one and deleted on the other between pages: each user that
    existed throughout is seen once, in order."""
    first, second = serve(), serve()
    ids = []
    for i in range(20):
        body = {"schemas": [USER_URN], "userName": f"user{i:02d}"}
        ids.append(_request(first.base, "POST", "/Users", body)["id"])
    deleted = {ids[3], ids[9], ids[15]}
    servers = [first.base, second.base]
    query = {"count": "4", "sortBy": "userName", "sortOrder": "descending"}
    page = _request(first.base, "GET", "/Users", cursor="", **query)
    seen = [r["userName"] for r in page["Resources"]]
    turn = 0
    while "nextCursor" in page:
        turn += 1
        # Between pages: a new user ("user05a" sorts among the ones still to come) and a delete.
        body = {"schemas": [USER_URN], "userName": f"user{turn:02d}a"}
        _request(servers[turn % 2], "POST", "/Users", body)
        if turn <= len(deleted):
            _request(servers[(turn + 1) % 2], "DELETE", f"/Users/{sorted(deleted)[turn - 1]}")
        page = _request(servers[turn % 2], "GET", "/Users", cursor=page["nextCursor"], **query)
        seen.extend(r["userName"] for r in page["Resources"])
    stable = [f"user{i:02d}" for i in reversed(range(20)) if ids[i] not in deleted]
    assert [name for name in seen if name in set(stable)] == stable
    assert len(seen) == len(set(seen))
