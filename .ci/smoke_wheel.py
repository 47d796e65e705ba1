"""Smoke test of an installed wheel, run by .ci/run's package job from outside the checkout.

Run with the interpreter of a venv holding only the wheel (and its ``serve`` extra), from a
temporary folder: checks that ``scim2_core`` comes from that venv, that the adapters and the
backend contract kit are inside the wheel, then starts ``scim2-core serve`` and sends it one
SCIM request of each kind a first user sends (discovery, create, read back).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

IN_THE_WHEEL = [  # files a user of the published package relies on
    "scim2_core/__init__.py",
    "scim2_core/py.typed",
    "scim2_core/asgi.py",
    "scim2_core/wsgi.py",
    "scim2_core/testing/__init__.py",
    "scim2_core/mapping/__init__.py",
    "scim2_core_starlette/__init__.py",
    "scim2_core_starlette/fastapi.py",
    "scim2_core_starlette/py.typed",
    "scim2_core_flask/__init__.py",
    "scim2_core_django/__init__.py",
    "scim2_core_django/urls.py",
    "scim2_core_django/migrations/0001_initial.py",
    "scim2_core_sqlalchemy/__init__.py",
]
TOKEN = "smoke-test-token-0123456789abcdef"


def step(message: str) -> None:
    print(f"smoke: {message}", flush=True)


def check_installed() -> None:
    import scim2_core

    where = Path(scim2_core.__file__).resolve()
    if Path(sys.prefix).resolve() not in where.parents:
        sys.exit(f"scim2_core imported from {where}, not from the venv {sys.prefix}")
    version = importlib.metadata.version("scim2-core")
    if version != scim2_core.__version__:
        sys.exit(f"metadata says {version}, scim2_core.__version__ {scim2_core.__version__}")
    installed = {str(path) for path in importlib.metadata.files("scim2-core") or ()}
    missing = sorted(set(IN_THE_WHEEL) - installed)
    if missing:
        sys.exit(f"not in the wheel: {missing}")
    step(f"scim2-core {version} installed from the wheel, adapters and testing kit included")


def expect(holds: bool, status: int, body: object) -> None:
    if not holds:
        sys.exit(f"unexpected answer: {status} {body}")


def request(method: str, url: str, body: object = None) -> tuple[int, dict[str, object]]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        req.add_header("Content-Type", "application/scim+json")
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def serve_and_ask(folder: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [str(Path(sys.executable).with_name("scim2-core")), "serve", "--port", str(port)]
    env = dict(os.environ, SCIM2_CORE_TOKEN=TOKEN)
    server = subprocess.Popen(command, cwd=folder, env=env)
    try:
        base = f"http://127.0.0.1:{port}/scim/v2"
        for _ in range(300):
            if server.poll() is not None:
                sys.exit(f"scim2-core serve exited with {server.returncode}")
            try:
                status, config = request("GET", f"{base}/ServiceProviderConfig")
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("scim2-core serve did not answer within 30 s")
        expect(status == 200 and config["patch"] == {"supported": True}, status, config)
        user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "smoke"}
        status, created = request("POST", f"{base}/Users", user)
        expect(status == 201, status, created)
        status, read = request("GET", f"{base}/Users/{created['id']}")
        expect(status == 200 and read["userName"] == "smoke", status, read)
        step(f"scim2-core serve answered discovery, POST /Users (201) and GET (200) on {port}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    if not (folder / "scim.db").exists():
        sys.exit("scim2-core serve wrote no ./scim.db")


def main() -> None:
    check_installed()
    with tempfile.TemporaryDirectory() as folder:
        serve_and_ask(Path(folder))
    step("passed")


if __name__ == "__main__":
    main()
