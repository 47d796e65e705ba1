"""``scim2-core serve`` with its observability flags, as a real server: JSON request lines,
``/metrics`` counts matching the requests sent, 429 above the rate limit, no secret logged."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_real_servers import free_port, stop_serve  # tests/adapters, on sys.path

from scim2_core.serving._cli import _parser
from tests.helpers import SERVER_DEADLINE

TOKEN = "serve-token-0123456789abcdef"
METRICS_TOKEN = "metrics-token-0123456789"

pytestmark = pytest.mark.slow


def serve(tmp_path: Path, *argv: str) -> tuple[Any, str]:
    """``scim2-core serve`` on memory with the test token; its origin (no /scim/v2).

    Waits up to a minute for it to listen: on a loaded machine, under coverage, starting
    the interpreter alone can take longer than the adapter tests' ten seconds.
    """
    port = free_port()
    command = [sys.executable, "-m", "scim2_core", "serve", "--port", str(port)]
    command += ["--db", "memory://", "--token", TOKEN, *argv]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SCIM2_CORE_")}
    environ["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=environ,
    )
    deadline = time.monotonic() + SERVER_DEADLINE
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}"
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"serve did not start: {proc.communicate()[0]}")
        time.sleep(0.1)


def test_serve_logs_json_counts_metrics_and_limits_the_rate(tmp_path: Path) -> None:
    proc, origin = serve(
        tmp_path, "--log-format", "json", "--metrics", "--rate-limit", "0.01", "--rate-burst", "3"
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(base_url=origin) as client:
            answers = [
                client.get(
                    "/scim/v2/Users",
                    params={"filter": 'userName eq "jensen.private"'},
                    headers={**auth, "X-Request-Id": f"idp-{i}"},
                )
                for i in range(5)
            ]
            outside = client.get("/elsewhere")
            scraped = client.get("/metrics")
    finally:
        out = stop_serve(proc)
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert 90 <= int(answers[3].headers["retry-after"]) <= 100
    assert [a.headers["x-request-id"] for a in answers] == [f"idp-{i}" for i in range(5)]
    assert outside.status_code == 404
    assert scraped.status_code == 200
    assert (
        'scim_requests_total{method="GET",route="/Users",status="200",scim_type="",tenant=""} 3'
        in scraped.text
    )
    assert (
        'scim_requests_total{method="GET",route="/Users",status="429",scim_type="",tenant=""} 2'
        in scraped.text
    )
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(x["path"], x["status"], x["requestId"]) for x in lines] == [
        *(("/scim/v2/Users", 200, f"idp-{i}") for i in range(3)),
        *(("/scim/v2/Users", 429, f"idp-{i}") for i in (3, 4)),
        ("-", 404, None),
    ]
    assert all(
        x["client"].startswith("127.0.0.1:") and x["principal"] in ("token-1", None) for x in lines
    )
    assert "jensen" not in out and TOKEN not in out and "filter" not in out


def test_serve_metrics_with_a_token_and_rate_limit_off(tmp_path: Path) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_text(METRICS_TOKEN + "\n")
    proc, origin = serve(
        tmp_path, "--metrics", "--metrics-token-file", str(token_file), "--rate-limit", "0"
    )
    try:
        with httpx.Client(base_url=origin) as client:
            statuses = {
                client.get(
                    "/scim/v2/Users", headers={"Authorization": f"Bearer {TOKEN}"}
                ).status_code
                for _ in range(30)
            }
            refused = client.get("/metrics")
            scraped = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    finally:
        out = stop_serve(proc)
    assert statuses == {200}
    assert refused.status_code == 403 and scraped.status_code == 200
    assert 'status="200",scim_type="",tenant=""} 30' in scraped.text
    text_lines = [line for line in out.splitlines() if '"GET /scim/v2/Users"' in line]
    assert len(text_lines) == 30 and all(
        line.startswith("INFO:     127.0.0.1:") for line in text_lines
    )
    assert METRICS_TOKEN not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--metrics", "--metrics-token-file", "/nonexistent/token"],
            "cannot read --metrics-token-file",
        ),
        (["--rate-limit", "-1"], "--rate-limit must be 0 (off) or above"),
        (["--rate-burst", "0"], "a burst must be a whole number >= 1"),
        (["--otel", "--otel-sample", "0"], "the share of requests traced must be in (0, 1]"),
        (["--metrics"], "the metrics token must be at least 16"),
    ],
)
def test_serve_refuses_wrong_observability_flags(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SCIM2_CORE_")}
    environ["SCIM2_CORE_METRICS_TOKEN"] = "short"  # refused by --metrics alone
    done = subprocess.run(
        [sys.executable, "-m", "scim2_core", "serve", "--db", "memory://", "--token", TOKEN, *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environ,
        timeout=60,
    )
    assert done.returncode == 2 and message in done.stderr


def test_serve_defaults_log_text_and_limit_the_rate() -> None:
    args = _parser().parse_args(["serve"])
    assert (args.log_format, args.metrics, args.otel) == ("text", False, False)
    assert (args.rate_limit, args.rate_burst) == (200.0, 1000)
