"""Both SQLAlchemy examples, started as a user starts them, checked by scim2-tester over HTTP.

``examples/flask_sqlalchemy_own_models.py`` (the Flask blueprint) and
``examples/fastapi_sqlalchemy_own_models.py`` (FastAPI) run as subprocesses on a SQLite file
(``SCIM_EXAMPLE_DB``) or a fresh PostgreSQL database; scim2-tester must pass every check,
then an Entra-like provisioning sequence is read back from the app's own tables.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import sqlalchemy as sa
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tests.helpers import SERVER_DEADLINE

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "served-token-0123456789"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "example.db")
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture(params=["flask", "fastapi"])
def served(request: pytest.FixtureRequest, database: str, tmp_path: Path) -> Iterator[str]:
    """The example running on ``database``; its SCIM base URL."""
    port = _free_port()
    script = ROOT / "examples" / f"{request.param}_sqlalchemy_own_models.py"
    env = {
        **os.environ,
        "SCIM_EXAMPLE_DB": database,
        "SCIM2_CORE_TOKEN": TOKEN,
        "PORT": str(port),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "adapters")]),
    }
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(script)], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + SERVER_DEADLINE
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the example did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/scim/v2"
    finally:
        proc.terminate()
        proc.wait(SERVER_DEADLINE)
        log.close()
        text = (tmp_path / "server.log").read_text()
        assert "Traceback" not in text, text


def _app_engine(database: str) -> sa.Engine:
    if "://" in database:
        return sa.create_engine(database.replace("postgresql://", "postgresql+psycopg://", 1))
    return sa.create_engine(f"sqlite:///{database}")


def test_scim2_tester_passes_every_check(served: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx2.Client(base_url=served, headers=headers, timeout=60) as http:
        results = check_server(SyncSCIMClient(http))
    failed = [
        f"{r.status.name} {r.resource_type or ''} {r.title}: {r.reason}"
        for r in results
        if r.status is not Status.SUCCESS
    ]
    assert failed == []
    assert len(results) >= 135


def test_entra_like_provisioning_lands_in_the_apps_tables(served: str, database: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}
    with httpx.Client(base_url=served, headers=headers, timeout=30) as http:
        # Entra: look the user up first, then create.
        found = http.get("/Users", params={"filter": 'userName eq "AdeleV@contoso.com"'}).json()
        assert found["totalResults"] == 0
        user: dict[str, Any] = {
            "schemas": [USER, ENTERPRISE],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7b2c4e1c5ec1",
            "userName": "AdeleV@contoso.com",
            "active": True,
            "displayName": "Adele Vance",
            "emails": [{"primary": True, "type": "work", "value": "AdeleV@contoso.com"}],
            "name": {"formatted": "Adele Vance", "familyName": "Vance", "givenName": "Adele"},
            ENTERPRISE: {"department": "Retail", "employeeNumber": "1234"},
        }
        created = http.post("/Users", json=user)
        assert created.status_code == 201, created.text
        uid = created.json()["id"]
        group = http.post(
            "/Groups", json={"schemas": [GROUP], "displayName": "Retail", "members": []}
        )
        assert group.status_code == 201, group.text
        gid = group.json()["id"]
        # Entra's PATCH dialect: capitalised ops, booleans as strings.
        add = {
            "schemas": [PATCH],
            "Operations": [{"op": "Add", "path": "members", "value": [{"value": uid}]}],
        }
        assert http.patch(f"/Groups/{gid}", json=add).status_code in (200, 204)
        off = {
            "schemas": [PATCH],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
        }
        assert http.patch(f"/Users/{uid}", json=off).status_code in (200, 204)
        got = http.get(f"/Users/{uid}").json()
        assert got[ENTERPRISE] == {"department": "Retail", "employeeNumber": "1234"}
        assert [g["value"] for g in got["groups"]] == [gid]
    engine = _app_engine(database)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT username, email, first_name, last_name, is_active FROM users")
            ).one()
            assert tuple(row) == (
                "AdeleV@contoso.com",
                "AdeleV@contoso.com",
                "Adele",
                "Vance",
                False,
            )
            team = conn.execute(sa.text("SELECT id, name FROM teams")).one()
            assert team.name == "Retail"
            links = conn.execute(sa.text("SELECT team_id, user_id FROM team_members")).all()
            assert [tuple(link) for link in links] == [(team.id, 1)]
            if "://" not in database:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
    finally:
        engine.dispose()
