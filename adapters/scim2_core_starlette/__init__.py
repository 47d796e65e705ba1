"""Serve a scim2-core :class:`~scim2_core.Engine` from Starlette or FastAPI.

::

    from scim2_core_starlette import scim_mount, starlette_user_hook

    engine = Engine(MemoryBackend(), authenticate=starlette_user_hook)
    app = Starlette(routes=[scim_mount(engine)], middleware=[
        Middleware(AuthenticationMiddleware, backend=MyAuthBackend()),
    ])
    # FastAPI: app.mount("/scim/v2", scim_app(engine))

    # The operator page beside it (scim2_core.admin), behind the app's own sign-in:
    console = OperatorConsole(engine, authorize=starlette_signed_in)
    routes.append(operator_mount(console))                     # at /scim/admin

``Mount`` accepts any raw ASGI app, so :class:`scim2_core.asgi.ASGIApp` already serves
Starlette and FastAPI; this module adds what Starlette users expect beyond that: the user
set by ``AuthenticationMiddleware`` (``scope["user"]`` / ``request.user`` and
``scope["auth"]``) reaches the engine's authentication hook through the request context.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.routing import Mount

from scim2_core import Principal
from scim2_core.asgi import ASGIApp, Scope
from scim2_core.serving import EngineLike, Request

__all__ = [
    "operator_mount",
    "scim_app",
    "scim_mount",
    "starlette_context",
    "starlette_signed_in",
    "starlette_user_hook",
]


def starlette_context(scope: Scope) -> Mapping[str, Any]:
    """The request context: the ASGI ``scope``, and Starlette's ``user`` and ``auth``."""
    return {"scope": scope, "user": scope.get("user"), "auth": scope.get("auth")}


def scim_app(engine: EngineLike, *, trust_proxy: bool = False) -> ASGIApp:
    """An ASGI app for ``engine`` whose request context carries Starlette's user."""
    return ASGIApp(engine, trust_proxy=trust_proxy, context=starlette_context)


def scim_mount(
    engine: EngineLike, path: str = "/scim/v2", *, trust_proxy: bool = False, **kw: Any
) -> Mount:
    """A Starlette ``Mount`` serving ``engine`` at ``path``; ``kw`` goes to ``Mount``
    (``name``, ``middleware``)."""
    return Mount(path.rstrip("/"), app=scim_app(engine, trust_proxy=trust_proxy), **kw)


def starlette_user_hook(request: Request) -> Principal | None:
    """An ``authenticate`` hook trusting Starlette's ``AuthenticationMiddleware``.

    Returns ``Principal(user.display_name)`` when ``scope["user"].is_authenticated``;
    ``None`` (401) otherwise, including when no authentication middleware ran. The user's
    ``tenant`` attribute, if it has one, becomes the principal's tenant.
    """
    user = (request.get("context") or {}).get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    tenant = getattr(user, "tenant", None)
    return Principal(
        name=str(getattr(user, "display_name", "") or "user"),
        tenant=tenant if isinstance(tenant, str) else None,
    )


def operator_mount(console: EngineLike, path: str = "/scim/admin", **kw: Any) -> Mount:
    """A Starlette ``Mount`` serving the operator page (a
    :class:`scim2_core.admin.OperatorConsole`) at ``path``, with Starlette's user in the
    request context for its ``authorize`` hook; ``kw`` goes to ``Mount``. FastAPI:
    ``app.mount("/scim/admin", scim_app(console))``."""
    return Mount(path.rstrip("/"), app=scim_app(console), **kw)


def starlette_signed_in(request: Request) -> bool:
    """An ``authorize`` hook for the operator page: True when Starlette's
    ``AuthenticationMiddleware`` authenticated the user (``request.user.is_authenticated``)."""
    user = (request.get("context") or {}).get("user")
    return bool(getattr(user, "is_authenticated", False))
