"""``scim2-core serve`` pieces, in process: storage choice, the prefix mount, the flags."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from scim2_core._cli import _parser, build_app, main
from scim2_core.backends import MemoryBackend

USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "cli"}


def call(app: object, method: str, url: str, **kw: object) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://cli.test") as c:
            return await c.request(method, url, **kw)  # type: ignore[arg-type]

    return asyncio.run(go())


@pytest.mark.parametrize("db", ["memory://", "sqlite:///{tmp}/scim.db"])
def test_build_app_serves_scim_under_the_mount(db: str, tmp_path: Path) -> None:
    engine, app = build_app(db.format(tmp=tmp_path), "tok")
    assert isinstance(engine.backend, MemoryBackend) == (db == "memory://")
    headers = {"Authorization": "Bearer tok", "Content-Type": "application/scim+json"}
    created = call(app, "POST", "/scim/v2/Users", headers=headers, content=json.dumps(USER))
    assert created.status_code == 201
    assert created.headers["location"].startswith("http://cli.test/scim/v2/Users/")
    assert call(app, "GET", "/scim/v2/Users").status_code == 401
    outside = call(app, "GET", "/scim/v2x/Users", headers=headers)
    assert (outside.status_code, outside.headers["content-type"]) == (
        404,
        "text/plain; charset=utf-8",
    )
    if db != "memory://":
        assert (tmp_path / "scim.db").exists()
        engine.backend.close()  # type: ignore[attr-defined]  # Python 3.13 warns otherwise


def test_every_flag_has_a_default() -> None:
    args = _parser().parse_args(["serve"])
    assert (args.host, args.port, args.db, args.token) == (
        "127.0.0.1",
        8000,
        "sqlite:///scim.db",
        None,
    )


def test_serve_needs_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args([])
    assert exited.value.code == 2
    assert "serve" in capsys.readouterr().err


@pytest.mark.postgres
def test_postgresql_url_opens_the_sql_backend(postgres_database: str) -> None:
    from scim2_core._cli import open_backend

    backend = open_backend(postgres_database)
    try:
        assert backend.dialect == "postgresql"  # type: ignore[attr-defined]
    finally:
        backend.close()  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_db_schema_keeps_the_tables_in_that_postgresql_schema(postgres_database: str) -> None:
    import psycopg

    engine, app = build_app(postgres_database, "tok", schema="scim_app")
    try:
        headers = {"Authorization": "Bearer tok", "Content-Type": "application/scim+json"}
        created = call(app, "POST", "/scim/v2/Users", headers=headers, content=json.dumps(USER))
        assert created.status_code == 201
    finally:
        engine.backend.close()  # type: ignore[attr-defined]
    with psycopg.connect(postgres_database) as conn:
        where = conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'scim_resources'"
        ).fetchall()
        names = conn.execute(
            "SELECT doc::jsonb->>'userName' FROM scim_app.scim_resources"
        ).fetchall()
    assert where == [("scim_app",)]
    assert names == [("cli",)]


def test_db_schema_with_another_database_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--db", "memory://", "--db-schema", "scim_app"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "scim2-core: cannot open storage memory://: "
        "--db-schema applies to a postgresql:// database only"
    ]
