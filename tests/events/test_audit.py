"""The audit log: one entry per request that reached the engine, with the change of a
write as a compact diff and no secret; queryable from Python and the CLI."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scim2_core import Engine, Principal, bearer_tokens
from scim2_core.backends import SQLBackend
from scim2_core.serving._cli import main
from tests.helpers import PATCH_OP, call, create_group, create_user, user_body

from .conftest import MakeBackend


def test_every_request_has_one_entry(make_backend: MakeBackend) -> None:
    engine = Engine(make_backend())
    engine.audit.enable()
    try:
        user = create_user(engine, "alice", password="t1meMa$heen", title="a")
        uid = user["id"]
        call(engine, "GET", f"/Users/{uid}", headers={"X-Request-Id": "get-1"})
        call(engine, "POST", "/Users", user_body("ALICE"))  # 409 uniqueness
        patch = {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "replace", "path": "title", "value": "b"},
                {"op": "replace", "path": "password", "value": "n3wPa$$word"},
                {"op": "remove", "path": "displayName"},
            ],
        }
        assert call(engine, "PATCH", f"/Users/{uid}", patch).status == 200
        group = create_group(engine, "staff", [uid])
        call(engine, "DELETE", f"/Groups/{group['id']}")
        entries = engine.audit.query()
    finally:
        engine.audit.stop()
    assert [(e.method, e.status) for e in entries] == [
        ("POST", 201),
        ("GET", 200),
        ("POST", 409),
        ("PATCH", 200),
        ("POST", 201),
        ("DELETE", 204),
    ]
    created, got, refused, patched, grouped, deleted = entries
    assert created.resource_type == "User" and created.resource_id == uid
    assert created.change is not None and created.change["set"]["userName"] == "alice"
    assert got.request_id == "get-1" and got.change is None
    assert refused.scim_type == "uniqueness" and refused.resource_id is None
    # A secret never appears, not even hashed: a changed password shows as redacted.
    assert patched.change == {"set": {"title": "b", "password": "(redacted)"}}
    assert grouped.change is not None and grouped.change["membersAdded"] == [uid]
    assert deleted.resource_id == group["id"]
    text = "".join(e.to_json() for e in entries)
    assert "t1meMa" not in text and "n3wPa" not in text and "$2" not in text
    assert all(e.duration_ms >= 0 for e in entries)


def test_query_by_resource_principal_status_and_time(make_backend: MakeBackend) -> None:
    tokens = {"token-of-the-hr-system": Principal("hr"), "token-of-the-idp-xxxxx": "idp"}
    engine = Engine(make_backend(), authenticate=bearer_tokens(tokens))
    engine.audit.enable()
    hr = {"Authorization": "Bearer token-of-the-hr-system"}
    try:
        before = datetime.now(UTC) - timedelta(seconds=1)
        first = call(engine, "POST", "/Users", user_body("alice"), headers=hr).json["id"]
        call(engine, "GET", f"/Users/{first}", headers=hr)
        call(engine, "GET", "/Users/nobody", headers=hr)  # 404
        call(engine, "GET", "/Users")  # 401: no token, still logged
        assert [e.method for e in engine.audit.query(resource_id=first)] == ["POST", "GET"]
        assert len(engine.audit.query(principal="hr")) == 3
        (missing,) = engine.audit.query(status=404)
        assert missing.resource_id == "nobody"
        (anonymous,) = engine.audit.query(status=401)
        assert anonymous.principal is None
        assert len(engine.audit.query(since=before)) == 4
        assert engine.audit.query(until=before) == []
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert engine.audit.query(since=later) == []
    finally:
        engine.audit.stop()


def test_retention_prunes_old_entries(make_backend: MakeBackend) -> None:
    engine = Engine(make_backend())
    engine.audit.enable()
    try:
        create_user(engine, "alice")
        engine.audit.flush()
        store = engine.audit.store
        assert store is not None
        future = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert store.prune(future) == 1
        assert engine.audit.query() == []
    finally:
        engine.audit.stop()


def test_audit_command_exports_json_lines(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'scim.db'}"
    backend = SQLBackend(db)
    engine = Engine(backend)
    engine.audit.enable()
    user = create_user(engine, "alice")
    call(engine, "GET", f"/Users/{user['id']}")
    engine.audit.stop()
    backend.close()
    out = io.StringIO()
    assert main(["audit", "--db", db, "--since", "2000-01-01T00:00:00Z"], out=out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(x["method"], x["status"], x["resourceId"]) for x in lines] == [
        ("POST", 201, user["id"]),
        ("GET", 200, user["id"]),
    ]
    out = io.StringIO()
    assert main(["audit", "--db", db, "--since", "2999-01-01"], out=out) == 0
    assert out.getvalue() == ""
    assert main(["audit", "--db", db, "--since", "yesterday"], out=io.StringIO()) == 2
