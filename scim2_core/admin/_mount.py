"""Serving the console over raw ASGI or WSGI, alone or beside the SCIM routes.

:class:`~._console.OperatorConsole` has the shape of an engine (``handle``, ``options``,
``never_blocks``), so the engine's own transports serve it: :class:`scim2_core.asgi.ASGIApp`
and :class:`scim2_core.wsgi.WSGIApp` translate the request, bound its body and run it on a
worker thread. This module adds only the dispatch on the path that puts the console at
``/scim/admin`` beside another app.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import asgi, wsgi
from ._console import OperatorConsole

__all__ = ["ADMIN_MOUNT", "ConsoleBesideASGI", "ConsoleBesideWSGI", "console_asgi", "console_wsgi"]

#: Where ``scim2-core serve`` puts the console.
ADMIN_MOUNT = "/scim/admin"


def console_asgi(console: OperatorConsole, **options: Any) -> asgi.ASGIApp:
    """The console as a raw ASGI app (``options`` as for :class:`~scim2_core.asgi.ASGIApp`):
    mount it under any prefix, e.g. Starlette's ``Mount("/scim/admin", app=...)``."""
    return asgi.ASGIApp(console, **options)


def console_wsgi(console: OperatorConsole, **options: Any) -> wsgi.WSGIApp:
    """The console as a WSGI app (``options`` as for :class:`~scim2_core.wsgi.WSGIApp`)."""
    return wsgi.WSGIApp(console, **options)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


class ConsoleBesideASGI:
    """A raw ASGI app: the console at ``prefix``, every other request to ``app``.

    ``uvicorn.run(ConsoleBesideASGI(PrefixMount(ASGIApp(engine)), console))`` serves SCIM
    at ``/scim/v2`` and the console at ``/scim/admin``. Lifespan events go to ``app``.
    """

    def __init__(
        self, app: Any, console: OperatorConsole, prefix: str = ADMIN_MOUNT, **options: Any
    ) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")
        self.console = asgi.PrefixMount(console_asgi(console, **options), self.prefix)

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        path = str(scope.get("root_path", "")) + self.prefix
        if scope["type"] == "http" and _under(str(scope.get("path", "")), path):
            await self.console(scope, receive, send)
            return
        await self.app(scope, receive, send)
        if scope["type"] == "lifespan":
            self.console.app.workers.shutdown()


class ConsoleBesideWSGI:
    """A WSGI app: the console at ``prefix``, every other request to ``app``."""

    def __init__(
        self, app: Any, console: OperatorConsole, prefix: str = ADMIN_MOUNT, **options: Any
    ) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")
        self.console = wsgi.PrefixMount(console_wsgi(console, **options), self.prefix)

    def __call__(self, environ: wsgi.Environ, start_response: Any) -> Iterable[bytes]:
        if _under(wsgi.wsgi_str(environ.get("PATH_INFO", "")), self.prefix):
            return self.console(environ, start_response)
        result: Iterable[bytes] = self.app(environ, start_response)
        return result
