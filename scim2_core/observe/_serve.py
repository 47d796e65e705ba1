"""The observability flags of ``scim2-core serve``: ``--log-format``, ``--metrics``,
``--otel``, ``--rate-limit`` and ``--rate-burst``, and the app they wrap around the SCIM app.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from .._errors import ConfigurationError
from ..engine import Engine
from ._asgi import MetricsEndpoint, RequestLogMiddleware
from ._hub import Observability
from ._limits import Rate, RateLimit
from ._log import LOG_FORMATS, LineHandler, request_logger

__all__ = ["METRICS_TOKEN_ENV", "add_serve_flags", "log_requests_to", "observed_app"]

METRICS_TOKEN_ENV = "SCIM2_CORE_METRICS_TOKEN"
#: Microsoft asks SCIM endpoints to sustain 25 requests a second for one provisioning job
#: and Entra ID adds no client-side limit to custom apps: eight times that, per principal,
#: with a burst that takes a whole scim2-tester compliance run (832 requests) at once.
DEFAULT_RATE = 200.0
DEFAULT_BURST = 1000


def add_serve_flags(serve: argparse.ArgumentParser) -> None:
    """Add the observability flags to the ``serve`` subcommand."""
    serve.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="the line logged per request: text or json (time, request id, method, path "
        "template, status, scimType, principal, tenant, duration; never a query string, "
        "header or attribute value) (default text)",
    )
    serve.add_argument(
        "--metrics",
        action="store_true",
        help="serve Prometheus metrics at /metrics: to loopback clients only, or to any "
        f"client sending the --metrics-token-file / ${METRICS_TOKEN_ENV} bearer token",
    )
    serve.add_argument(
        "--metrics-token-file",
        default=None,
        help="read the token /metrics requires from this file (default: loopback only)",
    )
    serve.add_argument(
        "--otel",
        action="store_true",
        help="OpenTelemetry spans and metrics per request, to the SDK configured around the "
        "process (e.g. opentelemetry-instrument); needs scim2-core[otel]",
    )
    serve.add_argument(
        "--otel-sample",
        type=float,
        default=1.0,
        metavar="SHARE",
        help="with --otel, the share of requests given a span, e.g. 0.01 (default 1: all); "
        "the metrics count every request",
    )
    serve.add_argument(
        "--rate-limit",
        type=float,
        default=DEFAULT_RATE,
        metavar="PER_SECOND",
        help="requests a second each principal (token) may sustain; above it 429 with "
        "Retry-After. Counted in this process only: N processes allow N times it. "
        f"0 turns it off (default {DEFAULT_RATE:g}, 8x the 25/s Entra ID asks endpoints to take)",
    )
    serve.add_argument(
        "--rate-burst",
        type=int,
        default=DEFAULT_BURST,
        help=f"requests a principal may send at once above the rate (default {DEFAULT_BURST})",
    )


def _metrics_token(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """The token ``/metrics`` requires: from ``--metrics-token-file`` or the environment."""
    if args.metrics_token_file is not None:
        try:
            token = Path(args.metrics_token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read --metrics-token-file {args.metrics_token_file}: {exc.strerror}"
            ) from None
    else:
        token = environ.get(METRICS_TOKEN_ENV, "")
    if not token:
        if args.metrics_token_file is not None:
            raise ConfigurationError(f"--metrics-token-file {args.metrics_token_file} is empty")
        return None
    if len(token) < 16 or not token.isascii() or not token.isprintable() or " " in token:
        raise ConfigurationError(
            "the metrics token must be at least 16 printable ASCII characters without spaces"
        )
    return token


def observed_app(
    engine: Engine,
    app: Any,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    *,
    mount: str,
) -> Any:
    """Attach what the flags ask for to ``engine`` and wrap ``app`` (the ASGI app serving it
    at ``mount``); raises :class:`~scim2_core.ConfigurationError` for a flag it cannot run
    with (an unreadable token file, OpenTelemetry not installed, a negative rate)."""
    if args.rate_limit < 0:
        raise ConfigurationError("--rate-limit must be 0 (off) or above")
    if args.rate_limit > 0:
        engine.limit_rate(RateLimit(Rate(args.rate_limit, args.rate_burst)))
    token = _metrics_token(args, environ) if args.metrics else None
    log_format = args.log_format if args.access_log else None
    if log_format is None and not args.metrics and not args.otel:
        return app
    observed = Observability(
        engine,
        log_format=log_format,
        metrics=args.metrics,
        otel=args.otel,
        otel_sample=args.otel_sample,
    )
    if observed.log is not None:
        app = RequestLogMiddleware(app, observed.log, mount)
    if args.metrics and observed.metrics is not None:
        app = MetricsEndpoint(app, observed.metrics, token=token)
    return app


def log_requests_to(stream: TextIO, level: str, log_format: str) -> None:
    """Send the request log to ``stream`` at ``level`` (uvicorn configures only its own):
    JSON lines as they are, text lines after the level, as uvicorn prints its own."""
    handler = LineHandler(stream, "" if log_format == "json" else "INFO:     ")
    request_logger.handlers = [handler]
    request_logger.propagate = False
    request_logger.setLevel(logging.getLevelName(level.upper()) if level != "trace" else 5)
