"""The apps ``benchmarks/http_servers.py`` serves: each framework's SCIM adapter beside its own
hello-world JSON endpoint, in one app, on one server.

Each factory reads ``SCIM_BENCH_DB`` (a SQLite file already holding users),
``SCIM_BENCH_TOKEN`` and ``SCIM_BENCH_HELLO`` (a JSON object: for each query compared,
``get`` and ``list``, the document the SCIM answer holds, so that both answers have the same
size). The hello-worlds are written the way each framework's own documentation writes one,
answered at ``/hello/get`` and ``/hello/list``; the SCIM service is at ``/scim/v2``.
``SERVE_PROTOCOL`` is the uvicorn protocol ``scim2-core serve`` runs.
"""

from __future__ import annotations

import json
import os
from typing import Any

from scim2_core import Engine, Options, bearer_tokens
from scim2_core.backends import SQLBackend

PREFIX = "/scim/v2"


def engine() -> Engine:
    """The engine every app serves: SQLBackend on the prepared SQLite file (serve's default);
    ``SCIM_BENCH_READ_CACHE_BYTES``, when set, is its ``Options.read_cache_bytes`` (0: every
    read goes to the database)."""
    backend = SQLBackend(f"sqlite:///{os.environ['SCIM_BENCH_DB']}")
    kept = os.environ.get("SCIM_BENCH_READ_CACHE_BYTES")
    options = Options() if kept is None else Options(read_cache_bytes=int(kept))
    token = os.environ["SCIM_BENCH_TOKEN"]
    return Engine(backend, authenticate=bearer_tokens([token]), options=options)


def hello() -> dict[str, Any]:
    """``{"get": document, "list": document}``: what each hello-world answers."""
    documents: dict[str, Any] = json.loads(os.environ["SCIM_BENCH_HELLO"])
    return documents


def __getattr__(name: str) -> Any:
    if name == "SERVE_PROTOCOL":  # for ``uvicorn --http benchmarks.http_apps:SERVE_PROTOCOL``
        from scim2_core.serving._uvicorn import protocol_class

        return protocol_class(10.0, 100)
    raise AttributeError(name)


def raw_asgi() -> Any:
    """``scim2-core serve``'s app (the raw ASGI app under a prefix, without the access log)
    and a raw ASGI hello-world."""
    from scim2_core.asgi import ASGIApp, PrefixMount

    return _beside_hello(PrefixMount(ASGIApp(engine()), PREFIX))


def _beside_hello(scim: Any) -> Any:
    """The raw ASGI hello-world at ``/hello/...``, ``scim`` everywhere else."""
    answers = {}
    for kind, document in hello().items():
        body = json.dumps(document).encode()
        length = str(len(body)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", length)]
        answers[f"/hello/{kind}"] = (
            {"type": "http.response.start", "status": 200, "headers": headers},
            {"type": "http.response.body", "body": body},
        )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        answer = answers.get(scope["path"]) if scope["type"] == "http" else None
        if answer is None:
            await scim(scope, receive, send)
        else:
            await send(answer[0])
            await send(answer[1])

    return app


def serve_defaults() -> Any:
    """``scim2-core serve`` as its defaults run it: the same raw ASGI app with the request
    log (one text line a request, here to ``/dev/null``), the audit log (an entry a request,
    stored with the data) and the rate limit (raised out of wrk's way, still counted), and
    the raw ASGI hello-world answered before any of them."""
    from scim2_core.observe._serve import log_requests_to
    from scim2_core.serving._cli import _enable_events, _open_app, _parser, _served

    db, token = os.environ["SCIM_BENCH_DB"], os.environ["SCIM_BENCH_TOKEN"]
    argv = ["serve", "--db", f"sqlite:///{db}", "--token", token, "--rate-limit", "1e9"]
    args = _parser().parse_args(argv)
    scim_engine, scim = _open_app(args, token)
    _enable_events(scim_engine, args, None)
    served = _served(scim_engine, scim, args, None)
    log_requests_to(open(os.devnull, "w"), args.log_level, args.log_format)  # noqa: SIM115
    return _beside_hello(served)


def raw_wsgi() -> Any:
    """The raw WSGI app under a prefix, and a raw WSGI hello-world."""
    from scim2_core.wsgi import PrefixMount, WSGIApp

    scim = PrefixMount(WSGIApp(engine()), PREFIX)
    answers = {}
    for kind, document in hello().items():
        body = json.dumps(document).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        answers[f"/hello/{kind}"] = (headers, body)

    def app(environ: Any, start_response: Any) -> Any:
        answer = answers.get(environ["PATH_INFO"])
        if answer is None:
            return scim(environ, start_response)
        start_response("200 OK", answer[0])
        return [answer[1]]

    return app


def starlette() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from scim2_core_starlette import scim_mount

    documents = hello()

    async def hello_view(request: Request) -> JSONResponse:
        return JSONResponse(documents[request.path_params["kind"]])

    return Starlette(routes=[Route("/hello/{kind}", hello_view), scim_mount(engine(), PREFIX)])


def fastapi() -> Any:
    from fastapi import FastAPI

    from scim2_core_starlette.fastapi import scim_router

    app = FastAPI()
    documents = hello()

    @app.get("/hello/{kind}")
    async def hello_view(kind: str) -> dict[str, Any]:
        document: dict[str, Any] = documents[kind]
        return document

    app.include_router(scim_router(engine()), prefix=PREFIX)
    return app


def flask() -> Any:
    from flask import Flask, jsonify

    from scim2_core_flask import scim_blueprint

    app = Flask("bench")
    documents = hello()

    @app.get("/hello/<kind>")
    def hello_view(kind: str) -> Any:
        return jsonify(documents[kind])

    app.register_blueprint(scim_blueprint(engine()), url_prefix=PREFIX)
    return app


def django() -> Any:
    import django as django_module
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.http import JsonResponse
    from django.urls import include, path

    from scim2_core_django import scim_urlpatterns

    documents = hello()

    def hello_view(request: Any, kind: str) -> JsonResponse:
        return JsonResponse(documents[kind])

    urlpatterns = [
        path("hello/<str:kind>", hello_view),
        path("scim/v2/", include(scim_urlpatterns(engine()))),
    ]
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only",
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF=__name__,
        # Django's default project middleware, as ``startproject`` writes it, less
        # sessions, auth and messages (no database for them).
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    globals()["urlpatterns"] = urlpatterns
    django_module.setup()
    return WSGIHandler()
