"""The operator page mounted in each framework, behind the host application's own
sign-in: Starlette/FastAPI (AuthenticationMiddleware), Flask, Django (staff only)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from scim2_core import Engine
from scim2_core.admin import OperatorConsole
from scim2_core.backends import MemoryBackend


def _console(**kw: Any) -> OperatorConsole:
    engine = Engine(MemoryBackend())
    return OperatorConsole(engine, **kw)


def test_starlette_mount_behind_authentication_middleware() -> None:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware

    from scim2_core_starlette import operator_mount, starlette_signed_in

    class HeaderAuth(AuthenticationBackend):
        async def authenticate(self, conn: Any) -> Any:
            name = conn.headers.get("x-user")
            return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None

    console = _console(authorize=starlette_signed_in)
    app = Starlette(
        routes=[operator_mount(console)],
        middleware=[Middleware(AuthenticationMiddleware, backend=HeaderAuth())],
    )

    async def go() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return (
                await client.get("/scim/admin/outbox", headers={"X-User": "ops"}),
                await client.get("/scim/admin/outbox"),
            )

    signed, anonymous = asyncio.run(go())
    assert signed.status_code == 200 and "Event outbox" in signed.text
    assert 'href="/scim/admin/requests"' in signed.text  # links under the mount
    assert anonymous.status_code == 403


def test_fastapi_mounts_the_console_app() -> None:
    pytest.importorskip("fastapi")
    from fastapi import FastAPI

    from scim2_core_starlette import scim_app

    app = FastAPI()
    app.mount("/scim/admin", scim_app(_console(token="operator-token-0123456789")))

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(
                "/scim/admin/errors", headers={"Authorization": "Bearer operator-token-0123456789"}
            )

    answer = asyncio.run(go())
    assert answer.status_code == 200 and "By scimType" in answer.text


def test_flask_blueprint_with_the_host_sign_in() -> None:
    flask = pytest.importorskip("flask")
    from scim2_core_flask import operator_blueprint

    def signed_in(request: Any) -> bool:
        return request["context"]["request"].headers.get("X-User") == "ops"

    app = flask.Flask(__name__)
    app.register_blueprint(
        operator_blueprint(_console(authorize=signed_in)), url_prefix="/scim/admin"
    )
    client = app.test_client()
    page = client.get("/scim/admin/requests", headers={"X-User": "ops"})
    assert page.status_code == 200 and b"Requests" in page.data
    assert b'action="/scim/admin/requests"' in page.data
    assert client.get("/scim/admin/requests").status_code == 403


def test_django_patterns_are_for_staff_only(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("django")
    import sys
    import types

    from tests.adapters.adapter_clients import configure_django

    configure_django()
    from django.http import HttpResponseRedirect
    from django.test import RequestFactory

    from scim2_core_django import operator_urlpatterns

    # The default is Django admin's staff_member_required (this test settings module has
    # no admin app installed, so a stand-in with the same check takes its place).
    def staff_member_required(view: Any) -> Any:
        def wrapped(request: Any, **kw: Any) -> Any:
            if not (request.user.is_active and request.user.is_staff):
                return HttpResponseRedirect("/admin/login/")
            return view(request, **kw)

        return wrapped

    stand_in = types.ModuleType("django.contrib.admin.views.decorators")
    stand_in.staff_member_required = staff_member_required  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "django.contrib.admin.views.decorators", stand_in)

    class User:
        is_active = True
        is_authenticated = True

        def __init__(self, staff: bool) -> None:
            self.is_staff = staff

    (pattern,) = operator_urlpatterns(_console())
    request = RequestFactory().get("/scim/admin/outbox")
    request.user = User(staff=True)
    answer = pattern.callback(request, scim_path="outbox")
    assert answer.status_code == 200 and b"Event outbox" in answer.content
    request.user = User(staff=False)
    refused = pattern.callback(request, scim_path="outbox")
    assert refused.status_code == 302 and refused["Location"].startswith("/admin/login/")
    (own,) = operator_urlpatterns(
        _console(token="operator-token-0123456789"), decorator=lambda view: view
    )
    assert own.callback(request, scim_path="outbox").status_code == 303  # to the sign-in form


def test_the_admin_package_exports_what_exists() -> None:
    import scim2_core.admin as admin

    assert admin.__all__ == sorted(
        admin.__all__, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)
    )
    assert all(hasattr(admin, name) for name in admin.__all__)
