"""Every example app answers SCIM at /scim/v2 with its bearer token."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from adapter_clients import Send, _testclient, _werkzeug

from tests.helpers import SERVER_DEADLINE

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
AUTH = {"Authorization": "Bearer change-me", "Content-Type": "application/scim+json"}
USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "example"}


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "client"),
    [
        ("asgi_uvicorn", _testclient),
        ("starlette_app", _testclient),
        ("fastapi_app", _testclient),
        ("wsgi_wsgiref", _werkzeug),
        ("flask_app", _werkzeug),
    ],
)
def test_example(name: str, client: object) -> None:
    send: Send = client(load(name).app)  # type: ignore[operator]
    created = send("POST", "/scim/v2/Users", AUTH, json.dumps(USER).encode())
    assert created.status == 201
    assert created.headers["location"].startswith("http://testserver/scim/v2/Users/")
    assert send("GET", "/scim/v2/Users", AUTH, b"").json()["totalResults"] == 1
    assert send("GET", "/scim/v2/Users", {}, b"").status == 401
    if name in ("asgi_uvicorn", "wsgi_wsgiref"):  # the raw apps' PrefixMount
        outside = send("GET", "/elsewhere", AUTH, b"")
        assert (outside.status, outside.json()["status"]) == (404, "404")


@pytest.mark.slow
def test_django_example_runserver() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, str(EXAMPLES / "django_app.py"), "runserver", "--noreload"]
    with subprocess.Popen(
        [*command, f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    ) as proc:
        try:
            base = f"http://127.0.0.1:{port}/scim/v2"
            # Wait until the server accepts connections, with a request that changes nothing:
            # retrying the POST itself after a timeout could create the user twice (409).
            deadline = time.monotonic() + SERVER_DEADLINE
            while True:
                try:
                    httpx.get(base + "/ServiceProviderConfig", timeout=30)
                    break
                except httpx.TransportError:  # not listening yet, or too slow to answer
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.1)
            created = httpx.post(
                base + "/Users", headers=AUTH, content=json.dumps(USER), timeout=30
            )
            assert created.status_code == 201, created.text
            assert created.headers["location"].startswith(base + "/Users/")
            assert httpx.get(base + "/Users", headers=AUTH, timeout=30).json()["totalResults"] == 1
            assert httpx.get(base + "/Users", timeout=30).status_code == 401
        finally:
            proc.terminate()
            proc.wait(10)
