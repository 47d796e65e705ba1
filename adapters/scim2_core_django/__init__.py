"""Serve a scim2-core :class:`~scim2_core.Engine` from Django.

::

    # settings.py
    SCIM2_CORE_ENGINE = "myproject.scim.engine"     # an Engine, or a zero-argument factory

    # urls.py
    urlpatterns = [path("scim/v2/", include("scim2_core_django.urls"))]
    # or, with the engine in hand:
    urlpatterns = [path("scim/v2/", include(scim_urlpatterns(engine)))]

The operator page (a :class:`scim2_core.admin.OperatorConsole`), for staff only::

    urlpatterns += [path("scim/admin/", include(operator_urlpatterns(console)))]

The views are CSRF-exempt (SCIM clients send bearer tokens, not cookies) and opt out of
``CommonMiddleware``'s ``APPEND_SLASH`` redirect, so ``/scim/v2/Users`` is never redirected
and a SCIM 404 stays a 404. ``base_url`` comes from ``request.build_absolute_uri`` (so
Django's ``ALLOWED_HOSTS``, ``USE_X_FORWARDED_HOST`` and ``SECURE_PROXY_SSL_HEADER``
apply) followed by the mount prefix.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]
from django.urls import URLPattern, re_path  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]
from django.views.decorators.common import no_append_slash  # type: ignore[import-untyped]
from django.views.decorators.csrf import csrf_exempt  # type: ignore[import-untyped]

from scim2_core import serving
from scim2_core.serving import (
    EngineLike,
    content_length,
    outgoing_headers,
    payload_too_large,
    query_params,
    split_mount,
)
from scim2_core.wsgi import mounted_path

__all__ = ["django_request", "operator_urlpatterns", "scim_urlpatterns", "settings_engine"]


def django_request(req: HttpRequest, rest: str, *, limit: int) -> serving.Request | None:
    """Translate the Django request ``req`` (routed ``rest`` of the path) for the engine.

    Returns ``None`` when the body exceeds ``limit`` bytes, checked against
    ``Content-Length`` before reading and against the bytes read otherwise. The body is
    read through ``req.body``, so middleware may read it too, before or after the view.
    """
    declared = content_length(req.META.get("CONTENT_LENGTH"))
    if declared is not None and declared > limit:
        return None
    body: bytes = req.body
    if len(body) > limit:
        return None
    prefix, path = split_mount(req.path, rest)
    return {
        "method": req.method or "GET",
        "path": mounted_path(req.META, prefix) or path,  # %2F stays in its segment
        "query": query_params(req.META.get("QUERY_STRING", "")),
        "headers": {name.lower(): value for name, value in req.headers.items()},
        "body": body,
        "base_url": req.build_absolute_uri(prefix or "/").rstrip("/"),
        "context": {"request": req, "user": getattr(req, "user", None)},
    }


def _view(get_engine: Callable[[], EngineLike]) -> Callable[..., HttpResponse]:
    def scim_view(request: HttpRequest, scim_path: str = "") -> HttpResponse:
        engine = get_engine()
        # Django refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE itself (with a 400 page).
        django_limit = getattr(settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", None)
        limit = engine.options.max_body_bytes
        limit = limit if django_limit is None else min(limit, django_limit)
        scim_request = django_request(request, scim_path, limit=limit)
        answer = payload_too_large(limit) if scim_request is None else engine.handle(scim_request)
        response = HttpResponse(answer["body"], status=answer["status"])
        if not any(name.lower() == "content-type" for name in answer["headers"]):
            del response["Content-Type"]
        for name, value in outgoing_headers(answer):
            response[name] = value
        return response

    # CSRF: SCIM clients authenticate with bearer tokens, never with cookies.
    # APPEND_SLASH: a SCIM 404 must stay a 404, never become a redirect.
    return cast("Callable[..., HttpResponse]", csrf_exempt(no_append_slash(scim_view)))


def scim_urlpatterns(engine: EngineLike | Callable[[], EngineLike]) -> list[URLPattern]:
    """URL patterns serving ``engine`` (or a zero-argument factory, called once, lazily)
    for ``include(...)`` under a prefix ending in ``/``."""
    cache: list[EngineLike] = []
    lock = threading.Lock()

    def get_engine() -> EngineLike:
        if not cache:
            with lock:
                if not cache:
                    if hasattr(engine, "handle"):
                        cache.append(cast("EngineLike", engine))
                    else:
                        cache.append(engine())
        return cache[0]

    return [re_path(r"^(?P<scim_path>.*)\Z", _view(get_engine), name="scim")]


def operator_urlpatterns(
    console: EngineLike,
    *,
    decorator: Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]] | None = None,
) -> list[URLPattern]:
    """URL patterns serving the operator page ``console`` for ``include(...)``, each view
    wrapped in ``decorator``: by default Django admin's ``staff_member_required``, so only
    signed-in staff see it (give ``decorator=lambda view: view`` to rely on the console's
    own token instead). ``request.user`` is in the request context for ``authorize``."""
    if decorator is None:
        from django.contrib.admin.views.decorators import (  # type: ignore[import-untyped]
            staff_member_required,
        )

        decorator = staff_member_required
    view = decorator(_view(lambda: console))
    return [re_path(r"^(?P<scim_path>.*)\Z", view, name="scim_operator")]


def settings_engine() -> EngineLike:
    """The engine named by ``settings.SCIM2_CORE_ENGINE`` (a dotted path to an Engine or
    to a zero-argument factory)."""
    dotted: Any = getattr(settings, "SCIM2_CORE_ENGINE", None)
    if not isinstance(dotted, str) or not dotted:
        raise ImproperlyConfigured("SCIM2_CORE_ENGINE must be the dotted path of an Engine")
    target = import_string(dotted)
    engine: Any = target if hasattr(target, "handle") else target()
    if not hasattr(engine, "handle"):
        raise ImproperlyConfigured(f"SCIM2_CORE_ENGINE {dotted!r} is not an Engine")
    return cast("EngineLike", engine)
