"""Running SCIM in production: request logs, metrics, OpenTelemetry traces, rate limits.

::

    from scim2_core.observe import Observability, Rate, RateLimit

    observed = Observability(engine, log_format="json", otel=True)   # logs, metrics, spans
    engine.limit_rate(RateLimit(Rate(per_second=50, burst=100)))      # 429 above it
    text = observed.metrics.exposition()                             # Prometheus text

Every answer of the engine carries ``X-Request-Id`` (the client's, if short and made of safe
characters, else a new one), also in the audit log, the events and the log line. Nothing
here runs for an engine that was not given it; OpenTelemetry is imported only when asked
for. ``scim2-core serve`` turns these on from its flags (docs/observability.md).
"""

from .._errors import TooManyRequestsError
from ..engine._observers import RateGate, RequestObserver, RequestRecord
from ._asgi import MetricsEndpoint, RequestLogMiddleware
from ._hub import Observability
from ._limits import Rate, RateLimit
from ._log import LOG_FORMATS, LineHandler, RequestLog
from ._metrics import LATENCY_BUCKETS, Metrics
from ._route import RouteTemplates

__all__ = [
    "LATENCY_BUCKETS",
    "LOG_FORMATS",
    "LineHandler",
    "Metrics",
    "MetricsEndpoint",
    "Observability",
    "Rate",
    "RateGate",
    "RateLimit",
    "RequestLog",
    "RequestLogMiddleware",
    "RequestObserver",
    "RequestRecord",
    "RouteTemplates",
    "TooManyRequestsError",
]
