"""The bearer-token hook, and the framework user reaching the engine's hook."""

from __future__ import annotations

import json
from typing import Any

import pytest
from adapter_clients import PREFIX, _testclient, configure_django, django_urlconf

from scim2_core import ConfigurationError, Engine, Principal, Request, bearer_tokens
from scim2_core.backends import MemoryBackend


def req(**headers: str) -> Request:
    return {"method": "GET", "path": "/Users", "headers": headers}


HOOK = bearer_tokens({"tok-a": None, "tok-b": "acme", "tok-c": Principal("robot", "t9")})

#: (headers, expected principal)
CASES: list[tuple[dict[str, str], Principal | None]] = [
    ({"Authorization": "Bearer tok-a"}, Principal("token-1")),
    ({"authorization": "bearer tok-b"}, Principal("acme", "acme")),
    ({"AUTHORIZATION": "BEARER   tok-c  "}, Principal("robot", "t9")),
    ({"Authorization": "Bearer tok-a "}, Principal("token-1")),
    ({}, None),
    ({"Authorization": ""}, None),
    ({"Authorization": "Bearer"}, None),
    ({"Authorization": "Bearer "}, None),
    ({"Authorization": "Basic tok-a"}, None),
    ({"Authorization": "tok-a"}, None),
    ({"Authorization": "Bearer tok-"}, None),
    ({"Authorization": "Bearer tok-aa"}, None),
    ({"Authorization": "Bearer TOK-A"}, None),
    ({"Authorization": "Bearer tok-a tok-b"}, None),
    ({"Authorization": "Bearer \u00e9"}, None),
]


@pytest.mark.parametrize(("headers", "principal"), CASES)
def test_bearer_tokens(headers: dict[str, str], principal: Principal | None) -> None:
    assert HOOK(req(**headers)) == principal


def test_bearer_tokens_from_a_list() -> None:
    hook = bearer_tokens(["one", "two"])
    assert hook(req(Authorization="Bearer two")) == Principal("token-2")
    assert hook(req(Authorization="Bearer three")) is None


def test_bearer_tokens_answer_the_same_when_asked_again() -> None:
    """A token found valid is remembered, not hashed again: every case answers the same
    whatever was asked before it (each valid token as its own principal, a near miss of a
    remembered token still refused), in any order and repeated."""
    hook = bearer_tokens({"tok-a": None, "tok-b": "acme", "tok-c": Principal("robot", "t9")})
    for _ in range(3):
        for headers, principal in CASES + CASES[::-1]:
            assert hook(req(**headers)) == principal
    # The same valid token written in more ways than are remembered: each still valid.
    spaced = [f"Bearer{' ' * n}tok-b{' ' * n}" for n in range(1, 200)]
    for header in spaced + spaced:
        assert hook(req(Authorization=header)) == Principal("acme", "acme")
        assert hook(req(Authorization=header + "x")) is None


@pytest.mark.parametrize(
    "tokens",
    [[], {}, "secret", [""], ["two words"], ["tab\tinside"], {"tok": 3}, [None]],
)
def test_bearer_tokens_misconfigured(tokens: Any) -> None:
    with pytest.raises(ConfigurationError):
        bearer_tokens(tokens)


def test_engine_answers_401_with_the_hook() -> None:
    engine = Engine(MemoryBackend(), authenticate=HOOK)
    denied = engine.handle(req(Authorization="Bearer wrong"))
    assert denied["status"] == 401
    assert denied["headers"]["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(denied["body"])["status"] == "401"
    assert engine.handle(req(Authorization="Bearer tok-b"))["status"] == 200


def test_tenant_token_scopes_the_data() -> None:
    engine = Engine(MemoryBackend(), authenticate=HOOK)
    user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x"}
    created = engine.handle(
        {
            "method": "POST",
            "path": "/Users",
            "body": user,
            "headers": {"Authorization": "Bearer tok-b"},
        }
    )
    assert created["status"] == 201
    listed = engine.handle(req(Authorization="Bearer tok-c"))
    assert json.loads(listed["body"])["totalResults"] == 0
    listed = engine.handle(req(Authorization="Bearer tok-b"))
    assert json.loads(listed["body"])["totalResults"] == 1


# --- Starlette: AuthenticationMiddleware's user reaches the hook -------------------------


def starlette_app(engine: Engine) -> Any:
    from starlette.applications import Starlette
    from starlette.authentication import (
        AuthCredentials,
        AuthenticationBackend,
        SimpleUser,
    )
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware

    from scim2_core_starlette import scim_mount

    class HeaderAuth(AuthenticationBackend):
        async def authenticate(self, conn: Any) -> Any:
            name = conn.headers.get("x-user")
            return (AuthCredentials(["scim"]), SimpleUser(name)) if name else None

    return Starlette(
        routes=[scim_mount(engine)],
        middleware=[Middleware(AuthenticationMiddleware, backend=HeaderAuth())],
    )


def test_starlette_user_hook() -> None:
    from scim2_core_starlette import starlette_user_hook

    seen: list[Any] = []

    def hook(request: Request) -> Principal | None:
        seen.append(request["context"])
        return starlette_user_hook(request)

    send = _testclient(starlette_app(Engine(MemoryBackend(), authenticate=hook)))
    assert send("GET", PREFIX + "/Users", {}, b"").status == 401
    assert seen[-1]["user"].is_authenticated is False
    assert send("GET", PREFIX + "/Users", {"X-User": "alice"}, b"").status == 200
    assert seen[-1]["user"].display_name == "alice"
    assert seen[-1]["auth"].scopes == ["scim"]
    context = {"user": seen[-1]["user"]}
    assert starlette_user_hook({"method": "GET", "path": "/", "context": context}) == Principal(
        "alice"
    )
    assert starlette_user_hook({"method": "GET", "path": "/"}) is None


# --- Flask: the request reaches the hook ---------------------------------------------------


def test_flask_context_carries_the_request() -> None:
    from flask import Flask

    from scim2_core_flask import scim_blueprint

    seen: list[Any] = []
    engine = Engine(MemoryBackend(), authenticate=lambda r: seen.append(r["context"]) or "ok")
    app = Flask("ctx_test")
    app.register_blueprint(scim_blueprint(engine), url_prefix=PREFIX)
    assert app.test_client().get(PREFIX + "/Users").status_code == 200
    assert seen[0]["request"].path == PREFIX + "/Users"


# --- Django: CSRF middleware, lazily resolved settings engine ------------------------------

FACTORY_CALLS: list[int] = []


def engine_factory() -> Engine:
    FACTORY_CALLS.append(1)
    return Engine(MemoryBackend(), authenticate=bearer_tokens(["dj"]))


def test_django_settings_engine_resolved_lazily_once() -> None:
    configure_django()
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import include, path

    import scim2_core_django.urls as module

    urlconf = django_urlconf(None)
    urlconf.urlpatterns = [path("scim/v2/", include(module))]  # type: ignore[attr-defined]
    before = len(FACTORY_CALLS)
    with override_settings(
        ROOT_URLCONF=urlconf.__name__,
        SCIM2_CORE_ENGINE=f"{__name__}.engine_factory",
    ):
        client = Client(enforce_csrf_checks=True)
        assert len(FACTORY_CALLS) == before  # importing the URLconf built nothing
        user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "d"}
        created = client.post(
            "/scim/v2/Users",
            data=json.dumps(user),
            content_type="application/scim+json",
            headers={"Authorization": "Bearer dj"},
        )
        assert created.status_code == 201, created.content  # no CSRF 403, no redirect
        assert created["Location"].startswith("http://testserver/scim/v2/Users/")
        listed = client.get("/scim/v2/Users", headers={"Authorization": "Bearer dj"})
        assert json.loads(listed.content)["totalResults"] == 1
    assert len(FACTORY_CALLS) == before + 1
