"""A subset of the conversation over real sockets on 127.0.0.1, one server per way.

uvicorn serves the raw ASGI app (and Starlette); wsgiref serves the raw WSGI app, Flask and
Django's WSGI handler. Each runs in a thread on a free port; ``scim2-core serve`` runs as a
subprocess and is stopped with SIGINT, as Ctrl-C would.
"""

from __future__ import annotations

import contextlib
import glob
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim2_core import Engine, Options, bearer_tokens
from scim2_core.asgi import ASGIApp, PrefixMount
from scim2_core.backends import MemoryBackend
from scim2_core.serving._uvicorn import Parser
from scim2_core.wsgi import WSGIApp
from tests.helpers import SERVER_DEADLINE

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


def wait_for(port: int, proc: Any = None) -> None:
    """Wait until something listens on ``port``; fail at once if ``proc`` (the server's
    process, when it has one) exits first. The deadline only guards against a hang."""
    deadline = time.monotonic() + SERVER_DEADLINE
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}) before listening")
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
    # h11 unless asked otherwise: it hands the app what httptools refuses itself (``*``),
    # so these servers test the app's own answers.
    config = {"log_level": "error", "lifespan": "on", "http": "h11", **config}
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
    yield from serve_asgi(PrefixMount(ASGIApp(make_engine()), PREFIX))


def starlette() -> Iterator[str]:
    from starlette.applications import Starlette

    from scim2_core_starlette import scim_mount

    yield from serve_asgi(Starlette(routes=[scim_mount(make_engine())]))


def gunicorn() -> Iterator[str]:
    """``gunicorn gunicorn_app:app`` (the raw WSGI app under ``scim2_core.wsgi.PrefixMount``)."""
    port = free_port()
    here = os.path.dirname(__file__)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([here, *sys.path]),
        "SCIM_TEST_TOKEN": TOKEN,
        "SCIM_TEST_LIMIT": str(LIMIT),
        "SCIM_TEST_PREFIX": PREFIX,
    }
    command = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "--workers", "1"]
    command += ["--no-control-socket", "--log-level", "warning", "gunicorn_app:app"]
    with subprocess.Popen(command, cwd=here, env=env) as proc:
        try:
            wait_for(port, proc)
            # The master listens before its worker has booted: wait for a first answer.
            httpx.get(
                f"http://127.0.0.1:{port}{PREFIX}/ServiceProviderConfig", timeout=SERVER_DEADLINE
            )
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(SERVER_DEADLINE)


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


def serve_hardened(
    app: Any, header_timeout: float, limit: int | None = None, parser: Parser = "httptools"
) -> Iterator[str]:
    """uvicorn with the protocol (on ``parser``) and the loop ``scim2-core serve`` uses."""
    from scim2_core.serving._uvicorn import fastest_loop, protocol_class

    http = protocol_class(header_timeout, limit, parser)
    yield from serve_asgi(PrefixMount(app, PREFIX), http=http, loop=fastest_loop())


def as_served() -> Iterator[str]:
    """The raw ASGI app as ``scim2-core serve`` serves it: httptools and uvloop."""
    yield from serve_hardened(ASGIApp(make_engine()), 10)


SERVERS: dict[str, Callable[[], Iterator[str]]] = {
    "asgi-uvicorn": raw_asgi,
    "asgi-serve": as_served,
    "starlette-uvicorn": starlette,
    "wsgi-wsgiref": raw_wsgi,
    "wsgi-gunicorn": gunicorn,
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
            wait_for(port, proc)
            base = f"http://127.0.0.1:{port}/scim/v2"
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
            created = httpx.post(base + "/Users", headers=headers, content=json.dumps(USER))
            assert created.status_code == 201
            assert created.headers["location"].startswith(base + "/Users/")
            assert httpx.get(base + "/Users").status_code == 401
            outside = httpx.get(f"http://127.0.0.1:{port}/elsewhere")
            assert (outside.status_code, outside.json()["status"]) == (404, "404")
            # What uvicorn itself refuses is a SCIM Error too (the protocol serve uses).
            received, closed = raw_exchange(port, b"GARBAGE\r\n\r\n")
            assert closed and status_and_json(received)[0] == 400
        finally:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
            code = proc.wait(SERVER_DEADLINE)
    assert code == 0
    assert not (tmp_path / "scim.db").exists()  # memory:// wrote nothing


def raw_exchange(port: int, data: bytes, wait: float = 5.0) -> tuple[bytes, bool]:
    """Send ``data`` on a new connection; (everything received, whether the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            return received, False
        return received, True


def status_and_json(received: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"content-type: application/scim+json" in head.lower(), received
    return int(head.split()[1]), json.loads(body)


def port_of(origin: str) -> int:
    return int(origin.rsplit(":", 1)[1])


REQUEST = "{method} {target} HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer " + TOKEN + "\r\n"


@pytest.mark.parametrize("server", ["asgi-uvicorn", "asgi-serve", "wsgi-gunicorn"])
def test_answers_outside_the_mount_are_scim_errors_on_the_wire(server: str) -> None:
    for origin in SERVERS[server]():
        cases = [
            ("GET", "/", 404),
            ("GET", "/scim/v3/Users", 404),
            ("GET", "/scim%2Fv2/Users", 404),
        ]
        if server != "wsgi-gunicorn":  # gunicorn refuses these itself, before the app runs
            cases += [("OPTIONS", "*", 400), ("CONNECT", "example.com:443", 400)]
        for method, target, status in cases:
            request = REQUEST.format(method=method, target=target) + "Connection: close\r\n\r\n"
            received, _ = raw_exchange(port_of(origin), request.encode())
            code, body = status_and_json(received)
            assert (code, body["status"]) == (status, str(status)), (target, received)
        with httpx.Client(timeout=10) as client:
            created = client.post(
                origin + PREFIX + "/Users", headers=AUTH, content=json.dumps(USER)
            )
            user_id = created.json()["id"]
            assert client.get(f"{origin}{PREFIX}/Users/{user_id}", headers=AUTH).status_code == 200
            # %2F is not a separator: "Users%2F<id>" names no endpoint.
            slashed = client.get(f"{origin}{PREFIX}/Users%2F{user_id}", headers=AUTH)
            assert (slashed.status_code, slashed.json()["status"]) == (404, "404")


def test_uvicorn_closes_after_content_length_with_transfer_encoding() -> None:
    """RFC 9112 §6.1: refused, and the connection closed, so nothing can be smuggled after."""
    for origin in raw_asgi():
        smuggled = "GET /scim/v2/Users HTTP/1.1\r\nHost: h\r\n\r\n"
        request = (
            REQUEST.format(method="POST", target="/scim/v2/Users")
            + "Content-Type: application/scim+json\r\n"
            + f"Content-Length: {len(smuggled) + 5}\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "0\r\n\r\n"
            + smuggled
        )
        received, closed = raw_exchange(port_of(origin), request.encode())
        assert closed
        assert received.count(b"HTTP/1.1 ") == 1  # the smuggled request got no answer
        assert status_and_json(received)[0] == 400


def test_uvicorn_a_half_sent_body_gets_408_and_the_connection_closed() -> None:
    app = PrefixMount(ASGIApp(make_engine(), body_timeout=0.5), PREFIX)
    for origin in serve_asgi(app):
        request = (
            REQUEST.format(method="POST", target="/scim/v2/Users")
            + "Content-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{"
        )
        started = time.monotonic()
        received, closed = raw_exchange(port_of(origin), request.encode())
        assert closed and time.monotonic() - started < 4
        assert status_and_json(received)[0] == 408


def start_serve(tmp_path: Any, *argv: str, env: dict[str, str] | None = None) -> Any:
    port = free_port()
    command = [sys.executable, "-m", "scim2_core", "serve", "--port", str(port), *argv]
    environ = {k: v for k, v in os.environ.items() if k != "SCIM2_CORE_TOKEN"}
    environ.update({"PYTHONUNBUFFERED": "1", **(env or {})})
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=environ,
    )
    try:
        wait_for(port, proc)
    except BaseException:
        proc.kill()
        raise AssertionError(f"serve did not start: {proc.communicate()[0]}") from None
    return proc, f"http://127.0.0.1:{port}/scim/v2"


def stop_serve(proc: Any) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=SERVER_DEADLINE)
    assert proc.returncode == 0, out
    return str(out)


def test_serve_token_from_the_environment_is_never_printed(tmp_path: Any) -> None:
    secret = "env-token-0123456789abcdef"
    proc, base = start_serve(tmp_path, "--db", "memory://", env={"SCIM2_CORE_TOKEN": secret})
    try:
        auth = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(base + "/Users", headers=auth).status_code == 200
    finally:
        out = stop_serve(proc)
    assert "Bearer token:      (given)" in out
    assert secret not in out


def test_serve_keeps_its_generated_token_across_a_restart(tmp_path: Any) -> None:
    proc, base = start_serve(tmp_path)  # the default: sqlite:///scim.db in the folder
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline() for _ in range(4)]
        token = banner[2].split(":", 1)[1].strip()
    finally:
        stop_serve(proc)
    assert "kept in scim.db.token (mode 0600)" in banner[3]
    proc, base = start_serve(tmp_path)
    try:
        listed = httpx.get(base + "/Users", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200
    finally:
        out = stop_serve(proc)
    assert token not in out  # a kept token is not printed again
    assert "Bearer token:      (kept)" in out


def test_serve_access_log_has_no_query_string(tmp_path: Any) -> None:
    proc, base = start_serve(tmp_path, "--db", "memory://", "--token", TOKEN * 2)
    try:
        auth = {"Authorization": f"Bearer {TOKEN * 2}"}
        listed = httpx.get(
            base + "/Users", params={"filter": 'userName eq "jensen.private"'}, headers=auth
        )
        assert listed.status_code == 200
    finally:
        out = stop_serve(proc)
    [line] = [line for line in out.splitlines() if '"GET /scim/v2/Users"' in line]
    assert line.startswith("INFO:     127.0.0.1:") and " 200 " in line and line.endswith("ms")
    assert "jensen" not in out and "filter" not in out


def worker_pids(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(stat) as file:
                fields = file.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.add(int(stat.split("/")[2]))
    return found


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_serve_workers_serve_one_database(
    db: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    """``--workers 2``: two processes answer on one port from one database; what one wrote
    the other reads, and a cursor minted by one pages on in the other."""
    if sys.platform != "linux":
        pytest.skip("counts the worker processes in /proc")
    url = (
        f"sqlite:///{tmp_path}/workers.db"
        if db == "sqlite"
        else request.getfixturevalue("postgres_database")
    )
    token = TOKEN * 3
    proc, base = start_serve(tmp_path, "--db", url, "--workers", "2", "--token", token)
    auth = {**AUTH, "Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + SERVER_DEADLINE
        while len(worker_pids(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = worker_pids(proc.pid)
        assert len(workers) == 2
        for n in range(6):  # a connection each: the kernel hands them to either worker
            user = {**USER, "userName": f"worker-{n}"}
            created = httpx.post(base + "/Users", headers=auth, content=json.dumps(user))
            assert created.status_code == 201, created.text
        seen, cursor = [], ""
        while cursor is not None:
            page = httpx.get(
                base + "/Users",
                params={"cursor": cursor, "count": "2", "sortBy": "userName"},
                headers=auth,
            )
            assert page.status_code == 200, page.text
            seen += [user["userName"] for user in page.json()["Resources"]]
            cursor = page.json().get("nextCursor")
        assert seen == [f"worker-{n}" for n in range(6)]
    finally:
        out = stop_serve(proc)
    assert "Workers:           2 processes" in out
    assert out.count("Finished server process") == 2
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)  # none left behind


def test_serve_stops_every_worker_when_one_dies(tmp_path: Any) -> None:
    """A worker killed (OOM killer, kill -9): the others are stopped and the command exits
    with status 1, for the supervisor to restart the whole service."""
    if sys.platform != "linux":
        pytest.skip("counts the worker processes in /proc")
    url = f"sqlite:///{tmp_path}/workers.db"
    proc, base = start_serve(tmp_path, "--db", url, "--workers", "2", "--token", TOKEN * 3)
    try:
        deadline = time.monotonic() + SERVER_DEADLINE
        while len(workers := worker_pids(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) == 2
        auth = {"Authorization": f"Bearer {TOKEN * 3}"}
        assert httpx.get(base + "/Users", headers=auth, timeout=30).status_code == 200
        victim, other = sorted(workers)
        os.kill(victim, signal.SIGKILL)
        assert proc.wait(30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=SERVER_DEADLINE)
    assert not os.path.exists(f"/proc/{other}")


class SlowEngine:
    """The real engine, taking ``delay`` seconds per request in a worker thread."""

    def __init__(self, delay: float) -> None:
        self.inner = make_engine()
        self.options = self.inner.options
        self.never_blocks = False
        self.delay = delay

    def handle(self, request: Any) -> Any:
        time.sleep(self.delay)
        return self.inner.handle(request)


PARSERS: list[Parser] = ["httptools", "h11"]


@pytest.mark.parametrize("parser", PARSERS)
def test_serve_protocol_answers_unparseable_requests_with_a_scim_error(parser: Parser) -> None:
    for origin in serve_hardened(ASGIApp(make_engine()), 5, parser=parser):
        for garbage in (
            b"GARBAGE\r\n\r\n",
            # RFC 9112 §3.2: exactly one Host in an HTTP/1.1 request.
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET /scim/v2/Users HTTP/1.1\r\n\r\n",
        ):
            received, closed = raw_exchange(port_of(origin), garbage)
            assert closed
            code, body = status_and_json(received)
            assert (code, body["status"]) == (400, "400")


@pytest.mark.parametrize("parser", PARSERS)
def test_serve_protocol_times_out_a_slow_request_head(parser: Parser) -> None:
    for origin in serve_hardened(ASGIApp(make_engine()), 1.0, parser=parser):
        with socket.create_connection(("127.0.0.1", port_of(origin)), timeout=10) as sock:
            sock.sendall(b"GET /scim/v2/Users HTTP/1.1\r\n")
            started, received = time.monotonic(), b""
            with contextlib.suppress(OSError):
                while True:  # one header line every 0.2 s: each byte used to restart the clock
                    sock.sendall(b"X-Slow: 1\r\n")
                    sock.settimeout(0.2)
                    with contextlib.suppress(TimeoutError):
                        chunk = sock.recv(65536)
                        if not chunk:
                            break
                        received += chunk
                    assert time.monotonic() - started < 8, "never timed out"
        assert status_and_json(received)[0] == 408


@pytest.mark.parametrize("parser", PARSERS)
def test_serve_protocol_keeps_alive_and_never_cuts_a_slow_answer(parser: Parser) -> None:
    """The head timeout restarts after each response, and a request being served (here for
    longer than the timeout) is never interrupted."""
    for origin in serve_hardened(ASGIApp(SlowEngine(1.2)), 0.8, parser=parser):  # type: ignore[arg-type]
        with httpx.Client(timeout=10) as client:
            for _ in range(3):
                got = client.get(origin + PREFIX + "/Users", headers=AUTH)
                assert got.status_code == 200
                time.sleep(0.5)
            assert client.get(origin + PREFIX + "/Users", headers=AUTH).status_code == 200


@pytest.mark.parametrize("parser", PARSERS)
def test_serve_protocol_answers_beyond_the_connection_limit_with_a_scim_error(
    parser: Parser,
) -> None:
    for origin in serve_hardened(ASGIApp(make_engine()), 5, limit=2, parser=parser):
        port = port_of(origin)
        request = (
            REQUEST.format(method="GET", target="/scim/v2/Users") + "Connection: close\r\n\r\n"
        )
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        try:
            time.sleep(0.3)  # both accepted by the server
            received, closed = raw_exchange(port, request.encode())
            code, body = status_and_json(received)
            assert (code, body["status"], closed) == (503, "503", True)
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.3)  # both gone: served again
        received, _ = raw_exchange(port, request.encode())
        assert status_and_json(received)[0] == 200


# Bytes a client may put on the wire: request lines and header lines built from tokens
# HTTP allows and bytes it does not, so that llhttp accepts some and refuses others.
_tokens = st.sampled_from(["GET", "POST", "HEAD", "PUT", "get", "G E T", "", "\x00", "OPTIONS"])
_targets = st.one_of(
    st.sampled_from(["/scim/v2/Users", "/scim/v2/Users%2Fx", "*", "/", "http://h/scim/v2/Users"]),
    st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=20),
)
_versions = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", ""])
_header_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "Host: h",
                "Content-Length: 2",
                "Content-Length: -1",
                "Transfer-Encoding: chunked",
                "Authorization: Bearer " + TOKEN,
                ": no name",
                "Bad Header: x",
            ]
        ),
        st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=30),
    ),
    max_size=4,
)


@pytest.fixture(scope="module")
def served_origin() -> Iterator[str]:
    yield from serve_hardened(ASGIApp(make_engine()), 2.0)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=_tokens,
    target=_targets,
    version=_versions,
    lines=_header_lines,
    body=st.binary(max_size=8),
)
def test_serve_answers_any_bytes_with_a_scim_answer_or_closes(
    served_origin: str, method: str, target: str, version: str, lines: list[str], body: bytes
) -> None:
    """Whatever a client sends to the stack ``serve`` runs (httptools, uvloop), every answer
    on the wire is SCIM JSON — never uvicorn's plain text — or the connection just closes."""
    head = f"{method} {target} {version}\r\n" + "".join(f"{line}\r\n" for line in lines)
    data = head.encode("latin-1") + b"\r\n" + body
    received, _ = raw_exchange(port_of(served_origin), data, wait=3.0)
    for answer in received.split(b"HTTP/1.1 ")[1:]:
        head_bytes = answer.partition(b"\r\n\r\n")[0].lower()
        status = int(answer[:3])
        if status not in (204, 304):
            assert b"content-type: application/scim+json" in head_bytes, received
