"""Webhooks: RFC 9967 SETs, signed, delivered after the commit, retried until the receiver
takes them (``scim2-core serve --webhook`` under load and SIGKILL: test_serve_load.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scim2_core import Engine
from scim2_core.backends import MemoryBackend
from scim2_core.events import RetryPolicy
from tests.helpers import call, create_user

from .receiver import SECRET, Receiver, claims

joserfc = pytest.importorskip("joserfc")
from joserfc import jws  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_each_change_is_posted_as_a_signed_set(receiver: Receiver) -> None:
    engine = Engine(MemoryBackend())
    engine.events.add_webhook(receiver.url, key=SECRET, audience="https://app.example")
    engine.events.start()
    try:
        user = create_user(engine, "alice", password="t1meMa$heen")
        call(engine, "DELETE", f"/Users/{user['id']}", headers={"X-Request-Id": "r-1"})
        assert engine.events.wait_idle()
    finally:
        engine.events.stop()
    assert receiver.content_types == ["application/secevent+jwt"] * 2
    created, deleted = (claims(b) for b in receiver.bodies)
    # RFC 8417 §2.2 claims; RFC 9967 event URIs and the SCIM subject.
    assert created["iss"] == "scim2-core"
    assert created["aud"] == "https://app.example"
    assert created["sub_id"] == {"format": "scim", "uri": f"/Users/{user['id']}"}
    (uri,) = created["events"]
    assert uri == "urn:ietf:params:SCIM:event:prov:create:full"
    data = created["events"][uri]["data"]
    assert data["userName"] == "alice"
    assert "password" not in data
    assert b"t1meMa" not in receiver.bodies[0]
    assert list(deleted["events"]) == ["urn:ietf:params:SCIM:event:prov:delete"]
    assert deleted["txn"] == "r-1"
    assert created["jti"] != deleted["jti"]


def test_a_wrong_key_does_not_verify(receiver: Receiver) -> None:
    engine = Engine(MemoryBackend())
    engine.events.add_webhook(receiver.url, key=SECRET)
    engine.events.start()
    try:
        create_user(engine, "alice")
        assert engine.events.wait_idle()
    finally:
        engine.events.stop()
    with pytest.raises(Exception, match="signature"):
        claims(receiver.bodies[0], secret="another-secret-entirely-0000")


def test_a_failing_receiver_gets_every_event_when_it_recovers(receiver: Receiver) -> None:
    receiver.fail_next = 5
    engine = Engine(MemoryBackend())
    engine.events.add_webhook(
        receiver.url, key=SECRET, retry=RetryPolicy(max_attempts=None, first_delay=0.01)
    )
    engine.events.start()
    try:
        ids = [create_user(engine, f"user{n}")["id"] for n in range(3)]
        assert engine.events.wait_idle()
    finally:
        engine.events.stop()
    got = [claims(b)["sub_id"]["uri"].rsplit("/", 1)[1] for b in receiver.bodies]
    assert got == ids


def test_jose_is_imported_only_for_a_webhook() -> None:
    code = (
        "import sys, scim2_core, scim2_core.events, scim2_core.backends\n"
        "print('joserfc' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"


def test_events_command_prints_each_consumers_counts(tmp_path: Path) -> None:
    import io

    from scim2_core.backends import SQLBackend
    from scim2_core.serving._cli import main

    db = f"sqlite:///{tmp_path / 'scim.db'}"
    backend = SQLBackend(db)
    engine = Engine(backend)

    def refuse(event: object) -> None:
        raise RuntimeError("no")

    engine.events.add_handler(refuse, name="refuser", retry=RetryPolicy(max_attempts=1))
    idle = Engine(SQLBackend(db))
    idle.events.add_handler(lambda e: None, name="idle")  # registered, never started
    create_user(engine, "alice")
    create_user(engine, "bob")
    engine.events.start()
    deadline = time.monotonic() + 10
    while engine.events.counts()["refuser"].failed < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    engine.events.stop()
    backend.close()
    idle.backend.close()  # type: ignore[attr-defined]
    out = io.StringIO()
    assert main(["events", "--db", db], out=out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    by_name = {line["consumer"]: line for line in lines}
    assert by_name["refuser"] == {"consumer": "refuser", "pending": 0, "failed": 2}
    assert by_name["idle"]["pending"] == 2
    out = io.StringIO()
    assert main(["events", "--db", db, "--failed"], out=out) == 0
    failed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [f["kind"] for f in failed] == ["created", "created"]
    assert all(f["error"] == "RuntimeError: no" for f in failed)


@pytest.mark.parametrize(("kind", "alg"), [("EC", "ES256"), ("RSA", "RS256")])
def test_a_pem_key_signs_so_the_public_key_verifies(
    receiver: Receiver, kind: str, alg: str
) -> None:
    from joserfc.jwk import ECKey, RSAKey

    from scim2_core.events import load_signing_key

    private = ECKey.generate_key("P-256") if kind == "EC" else RSAKey.generate_key(2048)
    pem = private.as_pem(private=True)
    public = (ECKey if kind == "EC" else RSAKey).import_key(private.as_pem(private=False))
    engine = Engine(MemoryBackend())
    engine.events.add_webhook(receiver.url, key=load_signing_key(pem=pem))
    engine.events.start()
    try:
        create_user(engine, "alice")
        assert engine.events.wait_idle()
    finally:
        engine.events.stop()
    token = jws.deserialize_compact(receiver.bodies[0], public, algorithms=[alg])
    assert token.protected["alg"] == alg
    assert json.loads(token.payload)["events"]
