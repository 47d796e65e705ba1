"""A subset of the conversation over real sockets on 127.0.0.1, one server per way.

uvicorn serves the raw ASGI app (and Starlette); wsgiref serves the raw WSGI app, Flask and
Django's WSGI handler. Each runs in a thread on a free port; ``scim2-core serve`` runs as a
subprocess and is stopped with SIGINT, as Ctrl-C would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from adapter_clients import PREFIX, configure_django, django_urlconf

from scim2_core import Engine, Options, bearer_tokens
from scim2_core.asgi import ASGIApp
from scim2_core.backends import MemoryBackend
from scim2_core.wsgi import WSGIApp

pytestmark = pytest.mark.slow

TOKEN = "real-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}
LIMIT = 4096
USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "real"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_engine() -> Engine:
    return Engine(
        MemoryBackend(), authenticate=bearer_tokens([TOKEN]), options=Options(max_body_bytes=LIMIT)
    )


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_wsgi(app: Any) -> Iterator[str]:
    port = free_port()
    server: WSGIServer = make_server("127.0.0.1", port, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def serve_asgi(app: Any, **config: Any) -> Iterator[str]:
    import uvicorn

    port = free_port()
    # lifespan="on": uvicorn refuses to start unless the app answers the lifespan protocol.
    config = {"log_level": "error", "lifespan": "on", **config}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def raw_asgi() -> Iterator[str]:
    from scim2_core.asgi import PrefixMount

    yield from serve_asgi(PrefixMount(ASGIApp(make_engine()), PREFIX))


def starlette() -> Iterator[str]:
    from starlette.applications import Starlette

    from scim2_core_starlette import scim_mount

    yield from serve_asgi(Starlette(routes=[scim_mount(make_engine())]))


def raw_wsgi() -> Iterator[str]:
    app = WSGIApp(make_engine())

    def mounted(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + PREFIX
            environ["PATH_INFO"] = path[len(PREFIX) :]
        return app(environ, start_response)

    yield from serve_wsgi(mounted)


def flask() -> Iterator[str]:
    from flask import Flask

    from scim2_core_flask import scim_blueprint

    app = Flask("real")
    app.register_blueprint(scim_blueprint(make_engine()), url_prefix=PREFIX)
    yield from serve_wsgi(app)


def django_() -> Iterator[str]:
    configure_django()
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    urlconf = django_urlconf(make_engine())
    with override_settings(ROOT_URLCONF=urlconf.__name__, ALLOWED_HOSTS=["127.0.0.1"]):
        yield from serve_wsgi(WSGIHandler())


SERVERS: dict[str, Callable[[], Iterator[str]]] = {
    "asgi-uvicorn": raw_asgi,
    "starlette-uvicorn": starlette,
    "wsgi-wsgiref": raw_wsgi,
    "flask-wsgiref": flask,
    "django-wsgiref": django_,
}


@pytest.mark.parametrize("server", SERVERS)
def test_over_a_real_socket(server: str) -> None:
    for origin in SERVERS[server]():
        base = origin + PREFIX
        with httpx.Client(timeout=10) as client:
            created = client.post(base + "/Users", headers=AUTH, content=json.dumps(USER))
            assert created.status_code == 201, created.text
            location = created.headers["location"]
            assert location.startswith(base + "/Users/")
            assert created.json()["meta"]["location"] == location
            got = client.get(location, headers=AUTH)
            assert (got.status_code, got.json()["userName"]) == (200, "real")
            listed = client.get(
                base + "/Users", params={"filter": 'userName eq "real"'}, headers=AUTH
            )
            assert listed.json()["totalResults"] == 1
            assert client.get(base + "/Users").status_code == 401
            big = client.post(base + "/Users", headers=AUTH, content=b" " * (LIMIT + 1))
            assert (big.status_code, big.json()["status"]) == (413, "413")
            deleted = client.delete(location, headers=AUTH)
            assert (deleted.status_code, deleted.content) == (204, b"")
            assert client.get(location, headers=AUTH).status_code == 404


@pytest.mark.parametrize("trust_proxy", [False, True])
def test_uvicorn_root_path_behind_a_proxy(trust_proxy: bool) -> None:
    """A proxy forwards ``https://scim.example.com/scim/v2/...`` to ``http://127.0.0.1/...``
    with the prefix stripped; uvicorn's ``--root-path`` restores it (ASGI: ``path`` includes
    ``root_path``), and the ``X-Forwarded-*`` headers count only with ``trust_proxy``."""
    app = ASGIApp(make_engine(), trust_proxy=trust_proxy)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "scim.example.com"}
    # proxy_headers=False: uvicorn itself would otherwise apply X-Forwarded-Proto.
    for origin in serve_asgi(app, root_path=PREFIX, proxy_headers=False):
        with httpx.Client(timeout=10) as client:
            created = client.post(
                origin + "/Users", headers={**AUTH, **forwarded}, content=json.dumps(USER)
            )
            assert created.status_code == 201, created.text
            public = "https://scim.example.com" if trust_proxy else origin
            location = created.headers["location"]
            assert location.startswith(f"{public}{PREFIX}/Users/")
            got = client.get(origin + location[len(public + PREFIX) :], headers=AUTH)
            assert (got.status_code, got.json()["userName"]) == (200, "real")


def test_scim2_core_serve_command(tmp_path: Any) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "scim2_core",
        "serve",
        "--port",
        str(port),
        "--db",
        "memory://",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path, env=env
    ) as proc:
        try:
            assert proc.stdout is not None
            banner = [proc.stdout.readline() for _ in range(3)]
            assert banner[0].strip() == f"SCIM 2.0 endpoint: http://127.0.0.1:{port}/scim/v2"
            token = banner[2].split(":", 1)[1].strip()
            assert len(token) >= 32
            wait_for(port)
            base = f"http://127.0.0.1:{port}/scim/v2"
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
            created = httpx.post(base + "/Users", headers=headers, content=json.dumps(USER))
            assert created.status_code == 201
            assert created.headers["location"].startswith(base + "/Users/")
            assert httpx.get(base + "/Users").status_code == 401
            assert httpx.get(f"http://127.0.0.1:{port}/elsewhere").status_code == 404
        finally:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
            code = proc.wait(15)
    assert code == 0
    assert not (tmp_path / "scim.db").exists()  # memory:// wrote nothing
