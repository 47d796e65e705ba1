"""``scim2-core serve`` pieces, in process: storage choice, the prefix mount, the flags."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from scim2_core.backends import MemoryBackend
from scim2_core.serving._cli import (
    _parser,
    build_app,
    given_token,
    keep_token,
    kept_or_new_token,
    main,
)

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
        "application/scim+json",
    )
    assert outside.json()["status"] == "404"
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
    assert (args.token_file, args.base_url, args.access_log) == (None, None, True)
    assert (args.limit_concurrency, args.timeout_keep_alive, args.body_timeout) == (100, 5, 30)
    assert args.workers == 1


def args_for(*argv: str) -> object:
    return _parser().parse_args(["serve", *argv])


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, None),
        (["--token", "t" * 16], {"SCIM2_CORE_TOKEN": "e" * 16}, "t" * 16),
        ([], {"SCIM2_CORE_TOKEN": "e" * 16}, "e" * 16),
        ([], {"SCIM2_CORE_TOKEN": ""}, None),
    ],
)
def test_the_token_comes_from_the_flag_then_the_environment(
    argv: list[str], env: dict[str, str], expected: str | None
) -> None:
    assert given_token(args_for(*argv), env) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "env", "reason"),
    [
        (["--token", "short"], {}, "--token has 5 characters; use at least 16"),
        ([], {"SCIM2_CORE_TOKEN": "x" * 15}, "$SCIM2_CORE_TOKEN has 15 characters"),
        (["--token", "with space 0123456789"], {}, "printable ASCII without spaces"),
        (["--token", "t" * 16, "--token-file", "f"], {}, "--token or --token-file, not both"),
    ],
)
def test_a_weak_or_ambiguous_token_stops_the_command(
    argv: list[str], env: dict[str, str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        assert main(["serve", "--db", "memory://", *argv]) == 2
    captured = capsys.readouterr()
    assert reason in captured.err
    assert captured.out == ""  # refused before printing anything, let alone a token


def test_token_file_is_read_and_a_shared_one_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "token"
    secret.write_text("f" * 20 + "\n")
    secret.chmod(0o600)
    assert given_token(args_for("--token-file", str(secret)), {}) == "f" * 20  # type: ignore[arg-type]
    assert capsys.readouterr().err == ""
    secret.chmod(0o644)  # how container secrets are often mounted: used, with a warning
    assert given_token(args_for("--token-file", str(secret)), {}) == "f" * 20  # type: ignore[arg-type]
    assert "is open to other users" in capsys.readouterr().err
    with pytest.raises(Exception, match="cannot read --token-file"):
        given_token(args_for("--token-file", str(tmp_path / "missing")), {})  # type: ignore[arg-type]


def test_a_generated_token_is_kept_beside_the_sqlite_file(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/scim.db"
    token, note, keep_at = kept_or_new_token(db)
    kept = tmp_path / "scim.db.token"
    assert (note, keep_at) == (f"generated, kept in {kept} (mode 0600) for the next start", kept)
    assert keep_token(kept, token) == token
    assert keep_token(kept, "another-serve-0123456789") == token  # the first one kept wins
    assert kept.read_text() == token + "\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scim.db.token"]  # nothing left aside
    assert kept.stat().st_mode & 0o777 == 0o600
    assert kept_or_new_token(db) == (token, f"kept in {kept}", None)  # a restart keeps it
    kept.chmod(0o644)  # someone opened the kept token to others: refused
    with pytest.raises(Exception, match="open to other users; run: chmod 600"):
        kept_or_new_token(db)
    other, note, keep_at = kept_or_new_token("memory://")
    assert other != token and len(other) >= 32 and keep_at is None
    assert note.startswith("generated, not stored")


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--base-url", "scim.example.com"], "--base-url: base URL 'scim.example.com' must be"),
        (["--limit-concurrency", "0"], "--limit-concurrency must be above 0"),
        (["--body-timeout", "-1"], "--body-timeout must be above 0"),
        (["--workers", "0"], "--workers must be above 0"),
        (["--workers", "2"], "--workers above 1 needs a database the workers share"),
    ],
)
def test_bad_flags_stop_the_command(
    argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--db", "memory://", "--token", "t" * 16, *argv]) == 2
    assert reason in capsys.readouterr().err


def test_serve_needs_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args([])
    assert exited.value.code == 2
    assert "serve" in capsys.readouterr().err


@pytest.mark.postgres
def test_postgresql_url_opens_the_sql_backend(postgres_database: str) -> None:
    from scim2_core.serving._cli import open_backend

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


def test_serve_runs_on_httptools_and_uvloop_when_installed() -> None:
    """The serve extra installs them; serve's protocol then extends uvicorn's httptools one."""
    uvicorn = pytest.importorskip("uvicorn")
    pytest.importorskip("httptools")
    pytest.importorskip("uvloop")
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from scim2_core.serving._cli import _uvicorn_config

    config = _uvicorn_config(uvicorn, object(), _parser().parse_args(["serve"]))
    assert config.loop == "uvloop"
    assert issubclass(config.http, HttpToolsProtocol)
    assert (config.http.header_timeout, config.http.limit) == (10.0, 100)


def test_serve_falls_back_to_h11_and_asyncio_without_the_fast_parts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uvicorn = pytest.importorskip("uvicorn")
    from uvicorn.protocols.http.h11_impl import H11Protocol

    from scim2_core.serving import _cli, _uvicorn

    real_find_spec = _uvicorn.importlib.util.find_spec

    def without_fast_parts(name: str, *args: object) -> object:
        return None if name in ("httptools", "uvloop") else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_uvicorn.importlib.util, "find_spec", without_fast_parts)
    config = _cli._uvicorn_config(uvicorn, object(), _parser().parse_args(["serve"]))
    assert config.loop == "asyncio"
    assert issubclass(config.http, H11Protocol)
