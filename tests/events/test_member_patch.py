"""A PATCH that only adds or removes members keeps its flat cost (the backend's
member-only write, whatever the group's size) with the outbox and the audit log on, as
under ``scim2-core serve``, and still stores its events and its audit diff."""

from __future__ import annotations

from typing import Any

from scim2_core import Engine
from scim2_core.backends import Backend
from tests.helpers import PATCH_OP, call, create_group, create_user

from .conftest import MakeBackend, listening


def _counting(backend: Backend) -> list[int]:
    """Count the backend's member-only writes (MemberRows.update_members)."""
    calls = [0]
    inner = backend.update_members  # type: ignore[attr-defined]

    def update_members(*args: Any, **kw: Any) -> Any:
        calls[0] += 1
        return inner(*args, **kw)

    backend.update_members = update_members  # type: ignore[attr-defined]
    return calls


def _add(uid: str) -> dict[str, Any]:  # what Entra ID sends
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}],
    }


def _remove(uid: str) -> dict[str, Any]:  # what Okta sends
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "remove", "path": f'members[value eq "{uid}"]'}],
    }


def test_member_adds_and_removes_take_the_member_only_write_with_events_and_audit_on(
    make_backend: MakeBackend, engines: list[Engine]
) -> None:
    backend = make_backend()
    engine, got = listening(backend, engines)
    engine.audit.enable()
    try:
        members = [create_user(engine, f"m{n}")["id"] for n in range(30)]
        newcomer = create_user(engine, "new", password="t1meMa$heen")["id"]
        group = create_group(engine, "big", members)
        gid = group["id"]
        calls = _counting(backend)
        assert engine.events.wait_idle()
        got.clear()
        added = call(engine, "PATCH", f"/Groups/{gid}", _add(newcomer))
        assert added.status == 200
        removed = call(engine, "PATCH", f"/Groups/{gid}", _remove(members[3]))
        assert removed.status == 200
        assert calls[0] == 2  # both took the member-only write
        assert engine.events.wait_idle()
        stored = call(engine, "GET", f"/Groups/{gid}").json
        engine.audit.flush()
        entries = [e for e in engine.audit.query(resource_id=gid) if e.method == "PATCH"]
    finally:
        engine.audit.stop()
    assert [(e.kind, e.id) for e in got] == [
        ("patched", gid),
        ("touched", newcomer),
        ("patched", gid),
        ("touched", members[3]),
    ]
    join, joined, leave, left = got
    assert join.members_added == (newcomer,) and join.members_removed == ()
    assert leave.members_removed == (members[3],) and leave.members_added == ()
    assert leave.version == stored["meta"]["version"]
    assert join.principal is None and join.request_id  # the request's context travels
    # The group's documents never hold a misleading part of its member list.
    assert join.before is not None and join.after is not None and leave.after is not None
    if "members" in join.after:  # MemoryBackend's event has the whole (short) list
        assert len(join.after["members"]) == 31
    assert joined.cause == left.cause == gid
    assert joined.version == call(engine, "GET", f"/Users/{newcomer}").json["meta"]["version"]
    assert [e.change for e in entries] == [
        {"membersAdded": [newcomer]},
        {"membersRemoved": [members[3]]},
    ]


def test_a_member_only_patch_that_changes_nothing_stores_no_event(
    make_backend: MakeBackend, engines: list[Engine]
) -> None:
    backend = make_backend()
    engine, got = listening(backend, engines)
    uid = create_user(engine, "a")["id"]
    gid = create_group(engine, "g", [uid])["id"]
    assert engine.events.wait_idle()
    count = len(got)
    calls = _counting(backend)
    assert call(engine, "PATCH", f"/Groups/{gid}", _add(uid)).status == 200  # already in
    assert calls[0] == 1
    assert engine.events.wait_idle()
    assert len(got) == count
