"""The console beside the SCIM routes over raw ASGI and WSGI, and how ``scim2-core serve``
takes its operator token."""

from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import httpx
import pytest

from scim2_core import Engine, bearer_tokens
from scim2_core.admin import ConsoleBesideASGI, ConsoleBesideWSGI, OperatorConsole
from scim2_core.asgi import ASGIApp, PrefixMount
from scim2_core.backends import MemoryBackend
from scim2_core.serving import _cli
from scim2_core.wsgi import PrefixMount as WSGIPrefixMount
from scim2_core.wsgi import WSGIApp

SCIM = "scim-token-0123456789"
ADMIN = "admin-token-0123456789"


def _engine() -> Engine:
    engine = Engine(MemoryBackend(), authenticate=bearer_tokens([SCIM]))
    engine.audit.enable()
    return engine


def test_asgi_serves_scim_and_the_console_side_by_side() -> None:
    asyncio.run(_asgi_side_by_side())


async def _asgi_side_by_side() -> None:
    engine = _engine()
    app = ConsoleBesideASGI(PrefixMount(ASGIApp(engine)), OperatorConsole(engine, token=ADMIN))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        users = await client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {SCIM}"})
        assert users.status_code == 200
        page = await client.get(
            "/scim/admin/requests", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert page.status_code == 200 and "GET /Users" in page.text
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        login = await client.get("/scim/admin")
        assert login.status_code == 303 and login.headers["location"] == "/scim/admin/login"
        signed = await client.post("/scim/admin/login", data={"token": ADMIN})
        assert signed.status_code == 303
        again = await client.get("/scim/admin/")  # the client keeps the cookie
        assert again.status_code == 200 and "Overview" in again.text
        assert (await client.get("/elsewhere")).status_code == 404
    engine.audit.stop()


def _wsgi(app: Any, path: str, headers: dict[str, str] | None = None) -> tuple[str, bytes]:
    environ: dict[str, Any] = {
        "PATH_INFO": path,
        "REQUEST_METHOD": "GET",
        "wsgi.input": io.BytesIO(),
    }
    setup_testing_defaults(environ)
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    status: list[str] = []
    body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
    return status[0], body


def test_wsgi_serves_scim_and_the_console_side_by_side() -> None:
    engine = _engine()
    app = ConsoleBesideWSGI(WSGIPrefixMount(WSGIApp(engine)), OperatorConsole(engine, token=ADMIN))
    status, _ = _wsgi(app, "/scim/v2/Users", {"Authorization": f"Bearer {SCIM}"})
    assert status.startswith("200")
    status, body = _wsgi(app, "/scim/admin/requests", {"Authorization": f"Bearer {ADMIN}"})
    assert status.startswith("200") and b"GET /Users" in body
    status, _ = _wsgi(app, "/scim/admin/")
    assert status.startswith("303")
    engine.audit.stop()


def _args(**given: object) -> argparse.Namespace:
    return argparse.Namespace(**{"admin_token": None, "admin_token_file": None, **given})


def test_serve_takes_the_operator_token_from_a_flag_a_file_or_the_environment(
    tmp_path: Path,
) -> None:
    assert _cli.admin_token(_args(), {}, SCIM) is None  # no token: no page
    assert _cli.admin_token(_args(admin_token=ADMIN), {}, SCIM) == ADMIN
    assert _cli.admin_token(_args(), {_cli.ADMIN_TOKEN_ENV: ADMIN}, SCIM) == ADMIN
    path = tmp_path / "admin"
    path.write_text(ADMIN + "\n")
    path.chmod(0o600)
    assert _cli.admin_token(_args(admin_token_file=str(path)), {}, SCIM) == ADMIN


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"admin_token": "short"}, "at least"),
        ({"admin_token": SCIM}, "differ from the SCIM bearer token"),
        ({"admin_token": ADMIN, "admin_token_file": "x"}, "not both"),
        ({"admin_token_file": "/nonexistent/admin"}, "admin-token-file"),
    ],
)
def test_serve_refuses_a_bad_operator_token_by_name(given: dict[str, object], message: str) -> None:
    with pytest.raises(_cli._UsageError, match=message):
        _cli.admin_token(_args(**given), {}, SCIM)


def test_serve_exits_2_on_a_bad_operator_token(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("uvicorn")
    code = _cli.main(["serve", "--db", "memory://", "--token", SCIM, "--admin-token", "short"])
    assert code == 2
    assert "--admin-token" in capsys.readouterr().err
