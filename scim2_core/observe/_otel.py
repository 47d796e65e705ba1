"""OpenTelemetry spans and metrics, with ``opentelemetry-api`` (``scim2-core[otel]``).

Imported only when asked for (``Observability(engine, otel=True)``, ``serve --otel``): without
it nothing here runs, and nothing is imported. The API records into whatever SDK the
application configured (``opentelemetry-instrument``, or its own ``TracerProvider`` and
``MeterProvider``); with none, the API's no-op providers drop everything.

Names follow the OpenTelemetry HTTP semantic conventions where they apply
(``http.request.method``, ``http.route``, ``http.response.status_code``) and ``scim.*``
for the rest.

What a request costs is kept to the span itself: the span is made once the answer is
known, with every attribute at once and the request's own start and end times (an SDK
span costs tens of microseconds, most of it in the SDK; a sampler that drops the span
makes it a few). The metrics are asynchronous instruments read at collection time from
the counts :class:`~scim2_core.observe.Metrics` already keeps, so they cost a request
nothing more.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._errors import ConfigurationError
from ..engine._observers import RequestRecord
from ._metrics import Metrics

__all__ = ["OtelTelemetry"]


#: The W3C Trace Context headers (https://www.w3.org/TR/trace-context/#trace-context-http-headers-format).
_TRACE_HEADERS = ("traceparent", "tracestate")


def _trace_headers(request: Any) -> dict[str, str]:
    """The request's ``traceparent`` and ``tracestate`` headers, whatever their case
    (header names are case-insensitive, RFC 9110 §5.1), as the propagator's carrier."""
    headers = request.get("headers") if isinstance(request, Mapping) else None
    if not headers:
        return {}
    if isinstance(headers, Mapping):
        found = headers.get("traceparent")
        if isinstance(found, str):  # lower-cased, as every adapter sends them
            carrier = {"traceparent": found}
            state = headers.get("tracestate")
            if isinstance(state, str):
                carrier["tracestate"] = state
            return carrier
        headers = headers.items()
    carrier = {}
    try:
        for name, value in headers:
            key = name.lower() if isinstance(name, str) else None
            if key in _TRACE_HEADERS and isinstance(value, str):
                carrier[key] = value
    except (TypeError, ValueError):  # not pairs: the engine answers it 400, with no parent
        return {}
    return carrier


class OtelTelemetry:
    """One SERVER span per request (``sample``: for that share of them, chosen at random,
    and for every request inside a sampled trace: a span costs the SDK tens of
    microseconds, an unsampled request nothing); the ``scim.requests`` counter (by method, route,
    status, ``scimType``, tenant), ``scim.request.duration.sum``/``.count`` (seconds), and
    the ``scim.outbox.pending`` gauge, all read from ``metrics``."""

    def __init__(
        self,
        metrics: Metrics,
        outbox: Callable[[], Mapping[str, Any]] | None = None,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        sample: float = 1.0,
    ) -> None:
        if not 0 < sample <= 1:
            raise ConfigurationError(
                f"the share of requests traced must be in (0, 1], got {sample!r}"
            )
        self._sample = sample
        try:
            from opentelemetry import metrics as otel_metrics
            from opentelemetry import propagate, trace
        except ImportError:
            raise ConfigurationError(
                "OpenTelemetry is not installed: pip install 'scim2-core[otel]'"
            ) from None
        self._current_span = trace.get_current_span
        self._extract = propagate.extract
        self._server = trace.SpanKind.SERVER
        self._error = trace.Status(trace.StatusCode.ERROR)
        # The global providers unless given (tests, or an app keeping several apart).
        self._tracer = trace.get_tracer("scim2_core", tracer_provider=tracer_provider)
        # No span, and no attribute built, where nothing would record it: the API's no-op
        # tracer, or the global proxy while no SDK is set (looked up again per request).
        self._noop_tracer = trace.NoOpTracer
        self._noop = isinstance(self._tracer, trace.NoOpTracer)
        self._proxy_provider = trace.ProxyTracerProvider
        self._global_provider = trace.get_tracer_provider
        self._proxied = isinstance(self._tracer, trace.ProxyTracer)
        meter = otel_metrics.get_meter("scim2_core", meter_provider=meter_provider)
        observation = otel_metrics.Observation

        def requests(_options: Any) -> Iterable[Any]:
            return [
                observation(
                    n,
                    {
                        "http.request.method": method,
                        "http.route": route,
                        "http.response.status_code": status,
                        "scim.type": scim_type,
                        "scim.tenant": tenant,
                    },
                )
                for (method, route, status, scim_type, tenant), n in metrics.requests().items()
            ]

        def duration_sum(_options: Any) -> Iterable[Any]:
            return [
                observation(total, {"http.request.method": m, "http.route": r})
                for (m, r), (_, total) in metrics.durations().items()
            ]

        def duration_count(_options: Any) -> Iterable[Any]:
            return [
                observation(count, {"http.request.method": m, "http.route": r})
                for (m, r), (count, _) in metrics.durations().items()
            ]

        meter.create_observable_counter(
            "scim.requests", [requests], unit="{request}", description="SCIM requests answered"
        )
        meter.create_observable_counter(
            "scim.request.duration.sum",
            [duration_sum],
            unit="s",
            description="Total time the engine took to answer",
        )
        meter.create_observable_counter(
            "scim.request.duration.count",
            [duration_count],
            unit="{request}",
            description="Requests timed",
        )
        if outbox is not None:

            def pending(_options: Any) -> Iterable[Any]:
                return [
                    observation(c.pending, {"consumer": str(name)}) for name, c in outbox().items()
                ]

            meter.create_observable_gauge(
                "scim.outbox.pending",
                callbacks=[pending],
                unit="{event}",
                description="Events not yet delivered to a consumer",
            )

    def start(self, request: Any) -> tuple[int, Any] | None:
        """When the request started (its span's start time) and its parent context, or
        None when it will have no span: the tracer records nothing (the API's no-op one, or
        the global one before an SDK is set), or the request is outside the sampled share
        and its caller's trace is not sampled. Decided here, before any attribute is built.

        The parent is the span active on this thread (an instrumented HTTP server's), else
        the caller's trace from the request's ``traceparent`` and ``tracestate`` headers
        (W3C Trace Context, read by the global propagator: ``OTEL_PROPAGATORS``), else
        none: the span starts a trace.
        """
        if self._proxied and not self._resolve():
            return None
        if self._noop:
            return None
        parent = None
        if not self._current_span().get_span_context().is_valid:
            carrier = _trace_headers(request)
            if carrier:
                parent = self._extract(carrier)
        if self._sample < 1.0 and random.random() >= self._sample:
            caller = self._current_span(parent).get_span_context()
            if not (caller.is_valid and caller.trace_flags.sampled):
                return None
        return time.time_ns(), parent

    def _resolve(self) -> bool:
        """Whether an SDK has been set as the global tracer provider since (then its
        tracer is used from now on)."""
        provider = self._global_provider()
        if isinstance(provider, self._proxy_provider):
            return False
        self._tracer = provider.get_tracer("scim2_core")
        self._noop = isinstance(self._tracer, self._noop_tracer)
        self._proxied = False
        return True

    @property
    def records(self) -> bool:
        """Whether spans may be recorded (False for the API's no-op tracer: no request
        will ever get one, so the storage need not be timed)."""
        return not self._noop

    def finish(
        self,
        started: tuple[int, Any] | None,
        method: str,
        route: str,
        record: RequestRecord,
        backend_seconds: float | None,
    ) -> None:
        """The request's span, with every attribute, from when :meth:`start` said (what
        it returned: the start and the parent) to now; none when it said so (None)."""
        if started is None:
            return
        started_ns, parent = started
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "http.route": route,
            "http.response.status_code": record.status,
        }
        if record.scim_type:
            attributes["scim.type"] = record.scim_type
        if record.tenant is not None:
            attributes["scim.tenant"] = record.tenant
        if record.resource_type is not None:
            attributes["scim.resource_type"] = record.resource_type
        if record.request_id is not None:
            attributes["scim.request_id"] = record.request_id
        if record.principal is not None:
            attributes["scim.principal"] = record.principal
        if backend_seconds is not None:
            attributes["scim.backend.duration_ms"] = backend_seconds * 1000
        span = self._tracer.start_span(
            f"{method} {route}",
            context=parent,
            kind=self._server,
            attributes=attributes,
            start_time=started_ns,
        )
        if record.status >= 500 and span.is_recording():
            # OpenTelemetry HTTP conventions: a server span is an error for 5xx only.
            span.set_status(self._error)
        span.end()
