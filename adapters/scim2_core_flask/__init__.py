"""Serve a scim2-core :class:`~scim2_core.Engine` from Flask as a blueprint.

::

    from scim2_core_flask import scim_blueprint
    app.register_blueprint(scim_blueprint(engine), url_prefix="/scim/v2")

The operator page (a :class:`scim2_core.admin.OperatorConsole`) mounts the same way::

    console = OperatorConsole(engine, authorize=lambda r: current_user.is_authenticated)
    app.register_blueprint(operator_blueprint(console), url_prefix="/scim/admin")

One view answers every method on the blueprint's root and on ``/<path:path>``. SCIM clients
send bearer tokens, not browser cookies, so the blueprint exempts itself from Flask-WTF's
``CSRFProtect`` (``app.extensions["csrf"]``), whether that is initialised before or after
``register_blueprint``: at registration, and again ahead of the CSRF check on each request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from flask import Blueprint, Request, Response, current_app, request

from scim2_core import serving
from scim2_core.serving import (
    EngineLike,
    base_url,
    outgoing_headers,
    payload_too_large,
    query_params,
    split_mount,
)
from scim2_core.wsgi import mounted_path, read_body

__all__ = ["flask_request", "operator_blueprint", "scim_blueprint"]

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"]


def flask_request(req: Request, rest: str, *, limit: int) -> serving.Request | None:
    """Translate the Flask request ``req`` (routed ``rest`` of the path) for the engine.

    Returns ``None`` when the body exceeds ``limit`` bytes, checked against
    ``Content-Length`` before reading and against the bytes read otherwise. A body with a
    ``Content-Length`` is read through ``req.get_data``, so the app's hooks may read it too.
    """
    declared = req.content_length
    if declared is not None and declared > limit:
        return None
    body = req.get_data() if declared is not None else read_body(req.environ, limit)
    if body is None:
        return None
    prefix, path = split_mount(req.script_root + req.path, rest)
    context: Mapping[str, Any] = {"request": req}
    return {
        "method": req.method,
        "path": mounted_path(req.environ, prefix) or path,  # %2F stays in its segment
        "query": query_params(req.environ.get("QUERY_STRING", "")),
        "headers": {name.lower(): value for name, value in req.headers.items()},
        "body": body,
        "base_url": base_url(req.scheme, req.host, prefix),
        "context": context,
    }


def scim_blueprint(engine: EngineLike, name: str = "scim") -> Blueprint:
    """A blueprint serving ``engine``; register it with ``url_prefix="/scim/v2"``."""
    blueprint = Blueprint(name, __name__)

    def scim_view(path: str = "") -> Response:
        limit = engine.options.max_body_bytes
        # The request object itself, not Flask's context-local proxy, goes into the context.
        current: Request = cast(Any, request)._get_current_object()
        scim_request = flask_request(current, path, limit=limit)
        answer = payload_too_large(limit) if scim_request is None else engine.handle(scim_request)
        response: Response = current_app.response_class(
            answer["body"], status=answer["status"], headers=outgoing_headers(answer)
        )
        if not any(n.lower() == "content-type" for n in answer["headers"]):
            del response.headers["Content-Type"]
        return response

    blueprint.add_url_rule("/", "scim", scim_view, methods=_METHODS, strict_slashes=False)
    blueprint.add_url_rule("/<path:path>", "scim", scim_view, methods=_METHODS)

    def exempt_from_csrf(extensions: dict[str, Any]) -> None:
        csrf = extensions.get("csrf")
        if csrf is not None and hasattr(csrf, "exempt"):
            csrf.exempt(blueprint)

    # CSRFProtect set up before registration: its check runs before any hook of ours, so
    # exempt now. Set up after: our app-wide hook runs first and exempts before its check.
    blueprint.record(lambda state: exempt_from_csrf(state.app.extensions))
    blueprint.before_app_request(lambda: exempt_from_csrf(current_app.extensions))
    return blueprint


def operator_blueprint(console: EngineLike, name: str = "scim_operator") -> Blueprint:
    """A blueprint serving the operator page ``console``; register it with
    ``url_prefix="/scim/admin"``. The console's ``authorize`` hook runs inside the
    request, so Flask-Login's ``current_user`` (or the Flask request in the request
    context) can decide; its sign-in form posts no data, so it needs no CSRF token."""
    return scim_blueprint(console, name)
