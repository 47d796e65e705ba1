"""The outbox: every committed change stores its event with the change, in order, without
secrets; a refused write stores none; delivery runs after the commit on its own thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from scim2_core import ChangeEvent, Engine
from scim2_core.backends import MemoryBackend, SQLBackend
from scim2_core.events import RetryPolicy
from scim2_core.events import _model as event_model
from tests.helpers import GROUP, PATCH_OP, call, create_group, create_user, user_body

from .conftest import MakeBackend, listening


def test_every_change_has_its_event_in_order(
    make_backend: MakeBackend, engines: list[Engine]
) -> None:
    engine, got = listening(make_backend(), engines)
    alice = create_user(engine, "alice", password="t1meMa$heen")
    bob = create_user(engine, "bob")
    group = create_group(engine, "staff", [alice["id"]])
    call(engine, "PUT", f"/Users/{bob['id']}", user_body("bob", title="x"))
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": bob["id"]}]}],
    }
    assert call(engine, "PATCH", f"/Groups/{group['id']}", patch).status == 200
    assert call(engine, "DELETE", f"/Users/{alice['id']}").status == 204
    assert engine.events.wait_idle()
    seen = [(e.kind, e.resource_type, e.id) for e in got]
    assert seen == [
        ("created", "User", alice["id"]),
        ("created", "User", bob["id"]),
        ("created", "Group", group["id"]),
        ("touched", "User", alice["id"]),  # joined staff: its groups changed
        ("replaced", "User", bob["id"]),
        ("patched", "Group", group["id"]),
        ("touched", "User", bob["id"]),
        ("deleted", "User", alice["id"]),
        ("touched", "Group", group["id"]),  # lost alice as a member
    ]
    assert [e.seq for e in got] == sorted(e.seq for e in got)
    assert len({e.event_id for e in got}) == len(got)
    assert got[5].members_added == (bob["id"],)
    assert got[3].cause == group["id"]
    # RFC 7643 §4.1.1: password is returned "never", so it is in no event.
    assert all(
        "password" not in (e.after or {}) and "password" not in (e.before or {}) for e in got
    )
    assert got[4].before is not None and "title" not in got[4].before
    assert got[4].after is not None and got[4].after["title"] == "x"
    # Each event's version is the resource's version after the change.
    current = call(engine, "GET", f"/Users/{bob['id']}").json["meta"]["version"]
    assert got[6].version == current


def test_principal_and_request_id_travel_with_the_event(engines: list[Engine]) -> None:
    engine, got = listening(MemoryBackend(), engines)
    call(engine, "POST", "/Users", user_body("alice"), headers={"X-Request-Id": "req-42"})
    assert engine.events.wait_idle()
    assert got[0].request_id == "req-42"


def test_a_refused_write_stores_no_event(make_backend: MakeBackend, engines: list[Engine]) -> None:
    engine, got = listening(make_backend(), engines)
    create_user(engine, "alice")
    assert call(engine, "POST", "/Users", user_body("ALICE")).status == 409
    user = create_user(engine, "bob")
    again = call(engine, "PUT", f"/Users/{user['id']}", user_body("bob"))  # no change
    assert again.status == 200
    assert engine.events.wait_idle()
    assert [e.kind for e in got] == ["created", "created"]


def test_nothing_is_stored_before_a_consumer_is_added(make_backend: MakeBackend) -> None:
    engine = Engine(make_backend())
    create_user(engine, "alice")
    assert engine.events.store is None
    assert engine.events.counts() == {}


def test_a_slow_handler_never_delays_a_request(engines: list[Engine]) -> None:
    engine = Engine(MemoryBackend())
    engines.append(engine)
    release = threading.Event()
    engine.events.add_handler(lambda event: release.wait(120), name="slow")
    engine.events.start()
    # The requests finish while the handler is still blocked on its first event: had one
    # waited for the handler, it would wait as long as the handler does (120 s).
    requests = threading.Thread(
        target=lambda: [create_user(engine, f"user{n}") for n in range(20)], daemon=True
    )
    requests.start()
    requests.join(60)
    assert not requests.is_alive() and not release.is_set()
    assert engine.events.counts()["slow"].pending >= 19
    release.set()
    assert engine.events.wait_idle()


def test_a_failing_handler_is_retried_then_parked_and_later_events_still_flow(
    engines: list[Engine],
) -> None:
    engine = Engine(MemoryBackend())
    engines.append(engine)
    calls: list[str] = []
    delivered: list[str] = []

    def flaky(event: ChangeEvent) -> None:
        calls.append(event.id)
        assert event.after is not None
        if event.after["userName"] == "broken":
            raise RuntimeError("receiver refuses this one")
        if calls.count(event.id) < 3:
            raise ConnectionError("try again")
        delivered.append(event.after["userName"])

    engine.events.add_handler(
        flaky, name="flaky", retry=RetryPolicy(max_attempts=4, first_delay=0.001)
    )
    engine.events.start()
    create_user(engine, "alice")
    broken = create_user(engine, "broken")
    create_user(engine, "carol")
    assert engine.events.wait_idle()
    assert delivered == ["alice", "carol"]
    assert calls.count(broken["id"]) == 4
    assert engine.events.counts()["flaky"].failed == 1
    (parked,) = engine.events.failed("flaky")
    assert parked.event.id == broken["id"]
    assert "receiver refuses this one" in parked.error
    assert parked.attempts == 4


def test_an_async_handler_runs_off_the_request(engines: list[Engine]) -> None:
    engine = Engine(MemoryBackend())
    engines.append(engine)
    got: list[tuple[str, bool]] = []

    async def handler(event: ChangeEvent) -> None:
        import asyncio

        await asyncio.sleep(0)
        got.append((event.kind, threading.current_thread() is threading.main_thread()))

    engine.events.add_handler(handler, name="async")
    engine.events.start()
    create_user(engine, "alice")
    assert engine.events.wait_idle()
    assert got == [("created", False)]


def test_subscribe_is_a_handler_over_the_same_outbox(engines: list[Engine]) -> None:
    engine = Engine(MemoryBackend())
    engines.append(engine)
    got: list[ChangeEvent] = []
    engine.subscribe(got.append)
    create_user(engine, "alice")
    assert engine.events.wait_idle()
    assert [e.kind for e in got] == ["created"]
    (counts,) = engine.events.counts().values()
    assert (counts.pending, counts.failed) == (0, 0)


def test_undelivered_events_survive_a_restart(
    make_backend: MakeBackend, engines: list[Engine]
) -> None:
    """Committed but not delivered (the process died): the next process delivers them."""
    first = make_backend()
    if isinstance(first, MemoryBackend):
        pytest.skip("MemoryBackend keeps nothing across processes")
    engine = Engine(first)
    engine.events.add_handler(lambda event: None, name="app")  # registered, never started
    users = [create_user(engine, f"user{n}")["id"] for n in range(5)]
    restarted, got = listening(make_backend(), engines, name="app")
    assert restarted.events.wait_idle()
    assert [e.id for e in got] == users


def test_a_consumer_resumes_from_its_position(
    make_backend: MakeBackend, engines: list[Engine]
) -> None:
    first = make_backend()
    if isinstance(first, MemoryBackend):
        pytest.skip("MemoryBackend keeps nothing across processes")
    engine = Engine(first)
    engines.append(engine)
    got: list[str] = []
    engine.events.add_handler(lambda e: got.append(e.id), name="app")
    engine.events.start()
    a = create_user(engine, "a")["id"]
    assert engine.events.wait_idle()
    engine.events.stop()
    b = create_user(engine, "b")["id"]  # committed while nobody delivers
    later = Engine(make_backend())
    engines.append(later)
    more: list[str] = []
    later.events.add_handler(lambda e: more.append(e.id), name="app")
    later.events.start()
    assert later.events.wait_idle()
    assert got == [a]
    assert more == [b]


def _stat(pid: int) -> list[str]:
    """``/proc/<pid>/stat``'s fields from the third on (state first, start time 20th)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rpartition(")")[2].split()


def _holder(tmp_path: Path, holder: str) -> tuple[Engine, str]:
    """An engine on a new SQLite file whose consumer ``app`` has one event pending and a
    lease held by ``holder`` for the next hour; the event's resource id."""
    import sqlite3
    import time

    url = f"sqlite:///{tmp_path / 'scim.db'}"
    first = Engine(SQLBackend(url))
    first.events.add_handler(lambda e: None, name="app")  # registered, never started
    b = create_user(first, "b")["id"]
    conn = sqlite3.connect(tmp_path / "scim.db", isolation_level=None)
    conn.execute(
        "UPDATE scim_outbox_consumers SET owner = ?, lease_until = ? WHERE consumer = 'app'",
        (holder, time.time() + 3600),
    )
    conn.close()
    return first, b


def _deliver_after(
    tmp_path: Path, engines: list[Engine], holder: str, wait: float
) -> tuple[bool, list[str], str]:
    """Start a consumer ``app`` polling every 50 ms in another engine while ``holder``
    holds its lease: whether it delivered everything within ``wait`` seconds, what it
    got, and what it had to deliver."""
    first, b = _holder(tmp_path, holder)
    later = Engine(SQLBackend(f"sqlite:///{tmp_path / 'scim.db'}"))
    engines.extend((first, later))
    later.events.poll_interval = 0.05
    got: list[str] = []
    later.events.add_handler(lambda e: got.append(e.id), name="app")
    later.events.start()
    try:
        return later.events.wait_idle(timeout=wait), got, b
    finally:
        later.events.stop()
        for engine in (first, later):
            engine.backend.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("gone", ["reaped", "zombie", "pid reused", "this pid earlier"])
def test_a_lease_held_by_a_dead_process_on_this_host_is_taken_over_at_once(
    tmp_path: Path, engines: list[Engine], gone: str
) -> None:
    """A process killed with ``kill -9`` keeps its consumer's lease until the lease runs
    out (here an hour); the next process on the same host sees that the holder is gone
    and delivers at once: its pid belongs to no process, or to a zombie (killed, not yet
    reaped by its parent), or to a process started since (a container restarted after
    ``kill -9`` gives the server its pid again)."""
    import os
    import socket
    import subprocess
    import time

    if gone != "reaped" and not Path("/proc/self/stat").exists():
        pytest.skip("told apart with /proc (Linux)")
    host = socket.gethostname()
    child = subprocess.Popen(["sleep", "30"] if gone == "pid reused" else ["true"])
    try:
        if gone == "reaped":
            child.wait()  # its pid belongs to no process any more
            holder = f"{host}:{child.pid}:deadbeef"
        elif gone == "zombie":
            deadline = time.monotonic() + 10
            while _stat(child.pid)[0] != "Z" and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _stat(child.pid)[0] == "Z"
            holder = f"{host}:{child.pid}:deadbeef:{_stat(child.pid)[19]}"
        elif gone == "pid reused":  # the holder started before the process with its pid
            holder = f"{host}:{child.pid}:deadbeef:{int(_stat(child.pid)[19]) - 1}"
        else:
            holder = f"{host}:{os.getpid()}:deadbeef:{int(_stat(os.getpid())[19]) - 1}"
        idle, got, b = _deliver_after(tmp_path, engines, holder, wait=2.0)
    finally:
        child.kill()
        child.wait()
    assert idle
    assert got == [b]


def test_a_lease_held_by_a_live_process_on_this_host_is_respected(
    tmp_path: Path, engines: list[Engine]
) -> None:
    """The holder runs (the pid is the one that took the lease, by its start time):
    nothing is delivered while its lease holds, not even after ten polls."""
    import socket
    import subprocess

    if not Path("/proc/self/stat").exists():
        pytest.skip("a live holder is told apart with /proc (Linux)")
    child = subprocess.Popen(["sleep", "30"])
    try:
        holder = f"{socket.gethostname()}:{child.pid}:deadbeef:{_stat(child.pid)[19]}"
        idle, got, _ = _deliver_after(tmp_path, engines, holder, wait=0.5)
    finally:
        child.kill()
        child.wait()
    assert not idle
    assert got == []


def test_two_processes_share_a_consumer_without_duplicates(
    make_backend: MakeBackend, engines: list[Engine]
) -> None:
    first = make_backend()
    if isinstance(first, MemoryBackend):
        pytest.skip("MemoryBackend is one process")
    got: list[str] = []
    lock = threading.Lock()

    def handler(event: ChangeEvent) -> None:
        with lock:
            got.append(event.event_id)

    writers = []
    for backend in (first, make_backend()):
        engine = Engine(backend)
        engines.append(engine)
        engine.events.add_handler(handler, name="shared")
        engine.events.start()
        writers.append(engine)
    for n in range(30):
        create_user(writers[n % 2], f"user{n}")
    assert all(engine.events.wait_idle() for engine in writers)
    assert len(got) == 30
    assert len(set(got)) == 30


def test_a_huge_group_write_stores_bounded_events(
    make_backend: MakeBackend, engines: list[Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = make_backend()
    if not isinstance(backend, MemoryBackend):
        # A store commits each of the users created below: its run takes a lower limit
        # (the same code path with a twentieth of the users); MemoryBackend runs the real one.
        monkeypatch.setattr(event_model, "MEMBERS_INLINE", 50)
    engine = Engine(backend)
    engines.append(engine)
    kinds: dict[str, int] = {}
    sizes: list[int] = []

    def handler(event: ChangeEvent) -> None:
        kinds[event.kind] = kinds.get(event.kind, 0) + 1
        sizes.append(len(event.to_json()))

    engine.events.add_handler(handler, name="count")
    n = event_model.MEMBERS_INLINE + event_model.MEMBERS_INLINE // 2
    users = [create_user(engine, f"u{i}")["id"] for i in range(n)]
    engine.events.start()
    assert engine.events.wait_idle(60)
    kinds.clear()
    sizes.clear()
    group = create_group(engine, "all", [])
    body: dict[str, Any] = {
        "schemas": [GROUP],
        "displayName": "all",
        "members": [{"value": u} for u in users],
    }
    assert call(engine, "PUT", f"/Groups/{group['id']}", body).status == 200
    assert engine.events.wait_idle(60)
    assert kinds == {"created": 1, "replaced": 1, "touched": n}
    # The group's event names who joined without carrying the whole list twice.
    assert max(sizes) < 60 * n


def test_a_bulk_import_stores_a_created_event_per_resource(
    tmp_path: Path, engines: list[Engine]
) -> None:
    backend = SQLBackend(f"sqlite:///{tmp_path / 'scim.db'}")
    engine, got = listening(backend, engines)
    users = engine.resource_types[0]
    now = "2026-01-01T00:00:00Z"
    meta = {"resourceType": "User", "created": now, "lastModified": now, "version": 'W/"1"'}
    rows = [
        {"schemas": [users.schema.id], "id": f"u{n}", "userName": f"u{n}", "meta": meta}
        for n in range(1200)
    ]
    assert backend.create_many(None, users, rows) == 1200
    assert engine.events.wait_idle(30)
    assert [e.id for e in got] == [f"u{n}" for n in range(1200)]
    assert {e.kind for e in got} == {"created"}
    backend.close()


def test_a_process_without_the_lease_does_not_ask_for_it_on_every_write(
    make_backend: MakeBackend, engines: list[Engine]
) -> None:
    """Two servers on one store: the one that does not hold a consumer's lease takes its
    writes' wake-ups without asking the store for the lease each time (a claim, and a
    look at the holder, per write under load); it asks once a poll interval, which is how
    soon it takes over from a holder that died."""
    first = make_backend()
    if isinstance(first, MemoryBackend):
        pytest.skip("MemoryBackend is one process")
    got: list[str] = []
    holder, other = Engine(first), Engine(make_backend())
    engines.extend([holder, other])
    for engine in (holder, other):
        engine.events.add_handler(lambda event: got.append(event.event_id), name="shared")
    holder.events.start()
    create_user(holder, "first")
    assert holder.events.wait_idle()  # it holds the lease by now
    store = other.events.store
    assert store is not None
    asked: list[float] = []
    claim = store.claim

    def counted(consumer: str, owner: str, lease_seconds: float) -> int | None:
        asked.append(time.monotonic())
        return claim(consumer, owner, lease_seconds)

    store.claim = counted  # type: ignore[method-assign]
    other.events.start()
    started = time.monotonic()
    for n in range(60):  # each write wakes the other server's delivery thread
        create_user(other, f"user{n}")
        time.sleep(0.01)
    assert holder.events.wait_idle()
    elapsed = time.monotonic() - started
    assert len(got) == 61 and len(set(got)) == 61
    # One claim at start, then one a poll interval (0.5 s), not one per write.
    assert len(asked) <= 2 + elapsed / other.events.poll_interval, (len(asked), elapsed)
