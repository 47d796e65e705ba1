"""One client per way of serving an engine, all mounted at ``/scim/v2`` on ``testserver``.

``ADAPTERS[name](engine)`` returns ``send(method, target, headers, body) -> Reply``, where
``target`` is the path and query string (``/scim/v2/Users?filter=...``). Every client
talks to the app in process, through the framework's own test client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import sys
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import django
import httpx
from django.conf import settings

from scim2_core.asgi import ASGIApp
from scim2_core.wsgi import WSGIApp

PREFIX = "/scim/v2"
HOST = "testserver"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Send = Callable[[str, str, Mapping[str, str], bytes], Reply]


def _reply(status: int, headers: Any, body: bytes) -> Reply:
    return Reply(status, {k.lower(): v for k, v in headers.items()}, body)


def raw_asgi(engine: Any) -> Send:
    app = ASGIApp(engine)

    def send(method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app, root_path=PREFIX)
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as c:
                return await c.request(method, target, headers=dict(headers), content=body)

        r = asyncio.run(go())
        return _reply(r.status_code, r.headers, r.content)

    return send


def _not_found_wsgi(environ: Any, start_response: Any) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"outside the mount"]


def _werkzeug(app: Any) -> Send:
    from werkzeug.test import Client

    client = Client(app)

    def send(method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        r = client.open(
            target, method=method, headers=dict(headers), data=body, base_url=f"http://{HOST}"
        )
        return _reply(r.status_code, r.headers, r.get_data())

    return send


def raw_wsgi(engine: Any) -> Send:
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    return _werkzeug(DispatcherMiddleware(_not_found_wsgi, {PREFIX: WSGIApp(engine)}))


@contextlib.contextmanager
def _starlette_quirks() -> Iterator[None]:
    with warnings.catch_warnings():
        # Starlette 1.x prefers the "httpx2" fork; httpx (installed) works the same here.
        warnings.filterwarnings("ignore", message=".*httpx2")
        # Starlette < 0.42's TestClient uses an alias that recent anyio deprecates.
        warnings.filterwarnings("ignore", message=".*anyio.abc.BlockingPortal alias")
        yield


def _testclient(app: Any) -> Send:
    with _starlette_quirks():
        from starlette.testclient import TestClient

        client = TestClient(app, base_url=f"http://{HOST}")

    def send(method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        with _starlette_quirks():
            r = client.request(method, target, headers=dict(headers), content=body)
        return _reply(r.status_code, r.headers, r.content)

    return send


def starlette(engine: Any) -> Send:
    from starlette.applications import Starlette

    from scim2_core_starlette import scim_mount

    return _testclient(Starlette(routes=[scim_mount(engine)]))


def fastapi(engine: Any) -> Send:
    from fastapi import FastAPI

    from scim2_core_starlette import scim_app

    app = FastAPI()
    app.mount(PREFIX, scim_app(engine))
    return _testclient(app)


def flask(engine: Any) -> Send:
    from flask import Flask

    from scim2_core_flask import scim_blueprint

    app = Flask("scim_test")
    app.register_blueprint(scim_blueprint(engine), url_prefix=PREFIX)
    return _werkzeug(app)


def configure_django() -> None:
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="not-secret-tests-only",
            ALLOWED_HOSTS=[HOST, "127.0.0.1", "localhost"],
            ROOT_URLCONF="scim2_core_django.urls",
            MIDDLEWARE=[
                "django.middleware.common.CommonMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
            ],
            APPEND_SLASH=True,
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()


_urlconf_numbers = itertools.count()


def django_urlconf(engine: Any) -> types.ModuleType:
    """A URLconf module mounting ``engine`` at ``/scim/v2/`` with ``include(...)``."""
    from django.urls import include, path

    from scim2_core_django import scim_urlpatterns

    module = types.ModuleType(f"scim_test_urls_{next(_urlconf_numbers)}")
    module.urlpatterns = [path(PREFIX[1:] + "/", include(scim_urlpatterns(engine)))]  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    return module


def django_(engine: Any) -> Send:
    configure_django()
    from django.test import Client
    from django.test.utils import override_settings

    urlconf = django_urlconf(engine)
    client = Client(raise_request_exception=True)

    def send(method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        extra = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        with override_settings(ROOT_URLCONF=urlconf.__name__):
            r = client.generic(method, target, data=body, content_type=ctype, headers=extra)
        return _reply(r.status_code, dict(r.items()), r.content)

    return send


ADAPTERS: dict[str, Callable[[Any], Send]] = {
    "asgi": raw_asgi,
    "wsgi": raw_wsgi,
    "starlette": starlette,
    "fastapi": fastapi,
    "flask": flask,
    "django": django_,
}

#: Headers the engine decides; everything else (Date, Server, framework security headers)
#: belongs to the server or framework and is not part of parity.
ENGINE_HEADERS = ("content-type", "content-length", "location", "etag", "www-authenticate", "allow")

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")


class Normaliser:
    """Replaces resource ids (in order of first appearance) and timestamps by placeholders."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def learn(self, reply: Reply) -> None:
        if reply.headers.get("content-type", "").startswith("application/scim+json"):
            self._collect(reply.json())

    def _collect(self, value: Any) -> None:
        if isinstance(value, dict):
            rid = value.get("id")
            if isinstance(rid, str) and rid not in self.ids:
                self.ids[rid] = f"<id{len(self.ids) + 1}>"
            for item in value.values():
                self._collect(item)
        elif isinstance(value, list):
            for item in value:
                self._collect(item)

    def text(self, text: str) -> str:
        for rid, placeholder in self.ids.items():
            text = text.replace(rid, placeholder)
        return _TIMESTAMP.sub("<timestamp>", text)

    def __call__(self, reply: Reply) -> tuple[int, dict[str, str], str]:
        self.learn(reply)
        headers = {
            name: self.text(reply.headers[name]) for name in ENGINE_HEADERS if name in reply.headers
        }
        if reply.status == 204:
            # Django's CommonMiddleware adds "Content-Length: 0" to every 204 (RFC 9110 §8.6
            # says it MUST NOT); the other adapters send none. Not the adapter's doing.
            headers.pop("content-length", None)
        elif "content-length" in headers:  # ids and timestamps are fixed-length placeholders
            headers["content-length"] = "<n>"
        return reply.status, headers, self.text(reply.body.decode("utf-8"))
