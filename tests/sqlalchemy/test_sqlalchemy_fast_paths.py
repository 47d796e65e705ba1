"""The SQLAlchemy backend's fast paths answer as the general ones do.

A page without filter or sort is cut on the bookkeeping's index; these tests change the
app's rows behind SCIM's back (raw SQL, no ORM events) and check that pages and totals stay
those of the rows that exist. A member add reads and writes the member it names only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sa_app import ACCOUNT, MODELS, TEAM, Account, Team, team_members
from test_sqlalchemy_models import GROUP, PATCH, USER, call

from scim2_core import Engine
from scim2_core_sqlalchemy import SQLAlchemyBackend


@pytest.fixture
def scim(engine: sa.Engine) -> Iterator[Engine]:
    backend = SQLAlchemyBackend(engine, (ACCOUNT, TEAM), models=MODELS)
    yield Engine(backend)
    backend.close()


def _users(scim: Engine, n: int) -> list[str]:
    return [
        call(scim, "POST", "/Users", {"schemas": [USER], "userName": f"u{i:02d}"})[1]["id"]
        for i in range(n)
    ]


def _pages(scim: Engine, size: int) -> tuple[set[int], list[str]]:
    """Every page of ``GET /Users`` (``size`` a page): the totals they gave, the ids."""
    totals: set[int] = set()
    ids: list[str] = []
    start = 1
    while True:
        status, page, _ = call(scim, "GET", f"/Users?startIndex={start}&count={size}")
        assert status == 200
        totals.add(page["totalResults"])
        found = [r["id"] for r in page.get("Resources", [])]
        if not found:
            return totals, ids
        ids += found
        start += size


def test_pages_partition_the_users_in_creation_order(scim: Engine) -> None:
    ids = _users(scim, 11)
    totals, paged = _pages(scim, 4)
    assert totals == {11}
    assert paged == ids
    _, page, _ = call(scim, "GET", "/Users?startIndex=12&count=4")
    assert page["totalResults"] == 11
    assert page.get("Resources", []) == []
    _, page, _ = call(scim, "GET", "/Users?count=0")
    assert page["totalResults"] == 11


def test_pages_leave_out_rows_the_app_deleted_with_raw_sql(engine: sa.Engine, scim: Engine) -> None:
    ids = _users(scim, 12)
    with engine.begin() as conn:
        conn.execute(sa.delete(Account).where(Account.username.in_(["u01", "u05", "u09"])))
    kept = [uid for i, uid in enumerate(ids) if i not in (1, 5, 9)]
    totals, paged = _pages(scim, 4)
    assert totals == {9}
    assert paged == kept


def test_a_page_over_a_row_the_app_replaced_with_raw_sql_leaves_the_gone_one_out(
    engine: sa.Engine, scim: Engine
) -> None:
    """The app deletes one row and inserts another below the largest key: as many rows as
    before, but the deleted one must not be listed."""
    ids = _users(scim, 6)
    with engine.begin() as conn:
        conn.execute(sa.delete(Account).where(Account.username == "u02"))
        conn.execute(sa.insert(Account).values(id=-1, username="low"))
    _, page, _ = call(scim, "GET", "/Users?startIndex=1&count=10")
    listed: list[dict[str, Any]] = page["Resources"]
    names = [r["userName"] for r in listed]
    assert "u02" not in names
    assert ids[2] not in [r["id"] for r in listed]
    assert len(names) == len(set(names)) == page["totalResults"]


def _statements(engine: sa.Engine, scim: Engine, gid: str, member: str) -> list[str]:
    """The statements the app's engine runs for a PATCH adding ``member`` to ``gid``."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    op = {"op": "add", "path": "members", "value": [{"value": member}]}
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        status, _, _ = call(
            scim, "PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [op]}
        )
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert status in (200, 204)
    return seen


def test_a_member_add_costs_the_same_in_a_small_and_a_large_group(
    engine: sa.Engine, scim: Engine
) -> None:
    ids = _users(scim, 42)
    small = call(scim, "POST", "/Groups", {"schemas": [GROUP], "displayName": "small"})[1]
    large = call(
        scim,
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "large", "members": [{"value": u} for u in ids[:40]]},
    )[1]
    in_small = _statements(engine, scim, small["id"], ids[40])
    in_large = _statements(engine, scim, large["id"], ids[41])
    assert in_small == in_large
    # The member is in, and its version moved (its groups changed: RFC 7644 §3.14).
    _, user, _ = call(scim, "GET", f"/Users/{ids[41]}")
    assert [g["value"] for g in user["groups"]] == [large["id"]]
    assert user["meta"]["version"] != 'W/"1"'
    _, group, _ = call(scim, "GET", f"/Groups/{large['id']}")
    assert [m["value"] for m in group["members"]] == [*ids[:40], ids[41]]


@pytest.mark.parametrize("count", [1, 3, 12])
def test_a_patch_adds_and_removes_the_members_it_names(scim: Engine, count: int) -> None:
    """Few members or many (statements compiled once per number of members, or not): the
    group holds exactly the members added, and each one's ``groups`` says so."""
    ids = _users(scim, 14)
    gid = call(scim, "POST", "/Groups", {"schemas": [GROUP], "displayName": "g"})[1]["id"]
    named, kept = ids[:count], ids[-1]
    add = {"op": "add", "path": "members", "value": [{"value": m} for m in [*named, kept]]}
    status, _, _ = call(scim, "PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [add]})
    assert status in (200, 204)
    _, group, _ = call(scim, "GET", f"/Groups/{gid}")
    assert sorted(m["value"] for m in group["members"]) == sorted([*named, kept])
    _, user, _ = call(scim, "GET", f"/Users/{named[-1]}")
    assert [g["value"] for g in user["groups"]] == [gid]
    which = " or ".join(f'value eq "{m}"' for m in named)
    gone = {"op": "remove", "path": f"members[{which}]"}
    status, _, _ = call(scim, "PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [gone]})
    assert status in (200, 204)
    _, group, _ = call(scim, "GET", f"/Groups/{gid}")
    assert [m["value"] for m in group["members"]] == [kept]
    _, user, _ = call(scim, "GET", f"/Users/{named[-1]}")
    assert "groups" not in user


def test_a_group_read_shows_members_the_app_added_with_raw_sql_and_the_displays_given(
    engine: sa.Engine, scim: Engine
) -> None:
    """A group's members are read with the adoption check and whether the group has
    displays in one statement: an account and memberships the app inserts behind SCIM's
    back (no ORM events) right after a read still show, in a group with members and in an
    empty one, and a display a client gave still shows beside them."""
    ids = _users(scim, 2)
    body = {
        "schemas": [GROUP],
        "displayName": "g",
        "members": [{"value": ids[0], "display": "Zero"}, {"value": ids[1]}],
    }
    gid = call(scim, "POST", "/Groups", body)[1]["id"]
    empty = call(scim, "POST", "/Groups", {"schemas": [GROUP], "displayName": "e"})[1]["id"]
    for group in (gid, gid, empty):  # after a first read, the next take the quick check
        _, read, _ = call(scim, "GET", f"/Groups/{group}")
        if group == gid:
            assert [m.get("display") for m in read["members"]] == ["Zero", None]
    with engine.begin() as conn:
        new = conn.execute(
            sa.insert(Account).values(username="raw").returning(Account.id)
        ).scalar_one()
        for name in ("g", "e"):
            team = conn.execute(sa.select(Team.id).where(Team.name == name)).scalar_one()
            conn.execute(sa.insert(team_members).values(team_id=team, account_id=new))
    _, group, _ = call(scim, "GET", f"/Groups/{gid}")
    members = group["members"]
    assert [m["value"] for m in members[:2]] == ids
    assert members[0]["display"] == "Zero"
    assert "display" not in members[1]
    assert len(members) == 3
    raw = members[2]["value"]
    assert raw not in ids
    _, user, _ = call(scim, "GET", f"/Users/{raw}")
    assert user["userName"] == "raw"
    _, alone, _ = call(scim, "GET", f"/Groups/{empty}")
    assert [m["value"] for m in alone["members"]] == [raw]
    assert "display" not in alone["members"][0]


@pytest.mark.parametrize("count", [3, 12])
def test_members_the_app_deleted_with_raw_sql_are_refused(engine: sa.Engine, count: int) -> None:
    """The check that new members exist reads the bookkeeping and the app's rows in one
    statement (few ids: compiled once per number; many: chunked): an account the app
    deleted behind SCIM's back (its bookkeeping row still there) is no member to add."""
    backend = SQLAlchemyBackend(engine, (ACCOUNT, TEAM), models=MODELS)
    scim = Engine(backend)
    try:
        ids = _users(scim, count)
        gid = call(scim, "POST", "/Groups", {"schemas": [GROUP], "displayName": "g"})[1]["id"]
        assert backend.existing(None, [*ids, gid, "nope"]) == {
            **dict.fromkeys(ids, "User"),
            gid: "Group",
        }
        with engine.begin() as conn:
            conn.execute(sa.delete(Account).where(Account.username == "u01"))
        assert backend.existing(None, [*ids, gid]) == {
            **{m: "User" for m in ids if m != ids[1]},
            gid: "Group",
        }
        add = {"op": "add", "path": "members", "value": [{"value": m} for m in ids]}
        status, error, _ = call(
            scim, "PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [add]}
        )
        assert status == 400
        assert error["scimType"] == "invalidValue"
        assert ids[1] in error["detail"]
        assert ids[0] not in error["detail"]
    finally:
        backend.close()
