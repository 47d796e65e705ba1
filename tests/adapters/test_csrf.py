"""CSRF protection switched on app-wide never breaks SCIM: clients send bearer tokens.

Flask with Flask-WTF's ``CSRFProtect`` (set up before or after the blueprint is
registered, as app factories do either), and Django with ``CsrfViewMiddleware`` and
``CommonMiddleware``'s ``APPEND_SLASH``: SCIM POST, PUT, PATCH and DELETE go through,
while the app's own form view is still protected (so the protection really is on).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from adapter_clients import PREFIX, configure_django, django_urlconf

from scim2_core import Engine, bearer_tokens
from scim2_core.backends import MemoryBackend

AUTH = {"Authorization": "Bearer tok"}
USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "csrf"}
PATCH = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "path": "displayName", "value": "Patched"}],
}


def make_engine() -> Engine:
    return Engine(MemoryBackend(), authenticate=bearer_tokens(["tok"]))


def conversation(request: Any) -> list[int]:
    """POST, PATCH, PUT, DELETE a user through ``request(method, path, body) -> (status, body)``."""
    status, body = request("POST", PREFIX + "/Users", USER)
    statuses = [status]
    location = PREFIX + "/Users/" + json.loads(body)["id"]
    statuses.append(request("PATCH", location, PATCH)[0])
    statuses.append(request("PUT", location, {**USER, "displayName": "Put"})[0])
    statuses.append(request("DELETE", location, None)[0])
    return statuses


@pytest.mark.parametrize("order", ["csrf-first", "blueprint-first"])
def test_flask_wtf_csrf_protect_app_wide(order: str) -> None:
    from flask import Flask
    from flask_wtf.csrf import CSRFProtect

    from scim2_core_flask import scim_blueprint

    app = Flask(f"csrf_{order}")
    app.config["SECRET_KEY"] = "tests-only"
    csrf = CSRFProtect()
    if order == "csrf-first":
        csrf.init_app(app)
    app.register_blueprint(scim_blueprint(make_engine()), url_prefix=PREFIX)
    if order == "blueprint-first":
        csrf.init_app(app)

    @app.post("/form")
    def form() -> str:
        return "accepted"

    client = app.test_client()

    def request(method: str, path: str, body: Any) -> tuple[int, bytes]:
        r = client.open(
            path,
            method=method,
            headers={**AUTH, "Content-Type": "application/scim+json"},
            data=b"" if body is None else json.dumps(body).encode(),
        )
        return r.status_code, r.get_data()

    assert conversation(request) == [201, 200, 200, 204]
    refused = client.post("/form", data={"field": "x"})
    assert (refused.status_code, b"CSRF" in refused.get_data()) == (400, True)


def test_django_csrf_middleware_and_append_slash() -> None:
    configure_django()
    from django.conf import settings
    from django.http import HttpResponse
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import path

    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
    assert "django.middleware.common.CommonMiddleware" in settings.MIDDLEWARE
    urlconf = django_urlconf(make_engine())

    def form(request: Any) -> HttpResponse:
        return HttpResponse("accepted")

    urlconf.urlpatterns.append(path("form/", form))  # type: ignore[attr-defined]
    client = Client(enforce_csrf_checks=True)

    def request(method: str, target: str, body: Any) -> tuple[int, bytes]:
        data = b"" if body is None else json.dumps(body)
        r = client.generic(
            method, target, data=data, content_type="application/scim+json", headers=AUTH
        )
        return r.status_code, r.content

    with override_settings(ROOT_URLCONF=urlconf.__name__, APPEND_SLASH=True):
        assert conversation(request) == [201, 200, 200, 204]
        # APPEND_SLASH: no redirect to a slash-ending URL, and SCIM's 404 stays a 404.
        for target in ("/Users", "/Users/no-such-id", "/Nothing"):
            r = client.get(PREFIX + target, headers=AUTH)
            assert r.status_code in (200, 404), target
            assert r["Content-Type"].startswith("application/scim+json"), target
        assert client.post("/form/", {"field": "x"}).status_code == 403
        assert client.get("/form").status_code == 301  # APPEND_SLASH is on for the app
