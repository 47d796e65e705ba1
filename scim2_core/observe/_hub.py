""":class:`Observability`: the request observer that feeds the log, the metrics and the
OpenTelemetry spans of one engine (``engine.observe``), each optional.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._types import Request, Response
from ..engine._audit import entry_time
from ..engine._observers import Answered, ObserverHooks, RequestRecord, record_of
from ._backend_time import backend_seconds, reset_backend_time, time_backend
from ._log import RequestLog
from ._metrics import LATENCY_BUCKETS, Metrics
from ._route import _METHODS, RouteTemplates

if TYPE_CHECKING:
    from ..engine import Engine
    from ._otel import OtelTelemetry

__all__ = ["HANDOFF", "Observability"]

#: The key of the dict a server puts in the ASGI scope to receive a request's log fields
#: instead of having them logged here (:class:`~scim2_core.observe.RequestLogMiddleware`).
HANDOFF = "scim2_core.observe"
#: How many request shapes each thread remembers the series of (past them, a request's
#: route and labels are worked out each time, never stored: the path is the client's).
_SHAPES = 512


def _handoff(request: Request) -> dict[str, Any] | None:
    """The dict a server left in the request's ASGI scope for the log fields, if any."""
    try:
        slot = request["context"]["scope"].get(HANDOFF)
    except (KeyError, TypeError, AttributeError):
        return None
    return slot if type(slot) is dict else None


class Observability:
    """Observe every request ``engine`` answers: a log line (``log_format`` ``"text"`` or
    ``"json"``; None for none), Prometheus metrics (``metrics``, read with
    ``self.metrics.exposition()``), OpenTelemetry spans and metrics (``otel``: needs
    ``scim2-core[otel]``, else :class:`~scim2_core.ConfigurationError` here), into the
    global OpenTelemetry providers unless ``tracer_provider``/``meter_provider`` are given;
    ``otel_sample`` is the share of requests given a span (all inside a sampled trace).

    Attaches itself to ``engine`` (:meth:`Engine.observe`). With everything off it is not
    worth attaching: an engine with no observer does no per-request work for it.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        log_format: str | None = None,
        metrics: bool = True,
        otel: bool = False,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        otel_sample: float = 1.0,
    ) -> None:
        outbox: Callable[[], Mapping[str, Any]] = engine.events.counts
        self.routes = RouteTemplates(rt.endpoint for rt in engine.resource_types)
        self.log = RequestLog(log_format) if log_format is not None else None
        # OpenTelemetry's metrics are read from these counts: kept whenever it is on.
        counts = Metrics(outbox) if metrics or otel else None
        self.metrics = counts
        self.otel: OtelTelemetry | None = None
        self.backend_timed = False
        if counts is not None and otel:
            from ._otel import OtelTelemetry

            self.otel = OtelTelemetry(
                counts,
                outbox,
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
                sample=otel_sample,
            )
            # The storage's time goes on spans: not timed when none can be recorded.
            self.backend_timed = self.otel.records and time_backend(engine.backend)
        # What a request calls: no OpenTelemetry at all where no span can be recorded.
        self._spans = self.otel if self.otel is not None and self.otel.records else None
        self._types = engine._state.by_endpoint
        self._count = self._counter(counts) if counts is not None else None
        self._on_answer: Answered = self._answered
        if self._count is not None and self._spans is None and self.log is None:
            self._on_answer = self._count
        engine.observe(self)

    def engine_hooks(self) -> ObserverHooks:
        """What the engine calls (see :func:`~scim2_core.engine._observers.observed_handler`):
        nothing when a request arrives unless it may get a span, and :meth:`_answered` once
        it is answered, from the engine's own facts (no record unless a span or a log line
        reads one)."""
        return ObserverHooks(self._start if self._spans is not None else None, self._on_answer)

    def started(self, request: Request) -> Any:
        """A request arrives (:class:`~scim2_core.observe.RequestObserver`'s call): what
        :meth:`finished` needs of it."""
        return self._start(request) if self._spans is not None else None, request

    def finished(self, started: Any, record: RequestRecord, response: Response) -> None:
        """A request was answered (:class:`~scim2_core.observe.RequestObserver`'s call):
        count it, end its span, log it."""
        begun, request = started
        self._finished(begun, record, request)

    def _start(self, request: Request) -> Any:
        """A request arrives: when (its span's start) and under which parent, if it gets a
        span; then the storage's time is counted for it. None: no span."""
        assert self._spans is not None
        begun = self._spans.start(request)
        if begun is not None and self.backend_timed:
            reset_backend_time()
        return begun

    def _answered(
        self,
        begun: Any,
        request: Request,
        response: Response,
        seen: list[Any],
        started: float,
        took: float,
    ) -> None:
        """A request was answered: count it; end its span and log it, from its record."""
        ctx = seen[0]
        if ctx is None:  # not a request the engine could read: the record knows what is
            self._finished(begun, record_of(request, response, seen, started, took, {}), request)
            return
        if self._count is not None:
            self._count(begun, request, response, seen, started, took)
        if begun is None and self.log is None:  # no span (not sampled), no log line
            return
        method = request["method"]  # a string: the engine decoded it
        if method not in _METHODS:
            method = "OTHER"
        route = self.routes.of_segments(ctx.segments)
        record = record_of(request, response, seen, started, took, self._types)
        self._spanned_and_logged(begun, method, route, record, request)

    def _counter(self, metrics: Metrics) -> Answered:
        """:meth:`_answered` with metrics alone, as a request pays for it: the request's
        facts as the engine has them (method, first path segment, how many, whether the
        second is ``.search``, status, ``scimType``, tenant) find the series it adds to in
        one look-up; the route template and labels are worked out once per such shape
        (:data:`_SHAPES` of them per thread, then every time)."""
        local = metrics._local
        series_of = metrics._series_of
        of_segments = self.routes.of_segments
        buckets = LATENCY_BUCKETS
        answered = self._answered

        def counted(
            begun: Any,
            request: Request,
            response: Response,
            seen: list[Any],
            started: float,
            took: float,
        ) -> None:
            ctx = seen[0]
            if ctx is None:
                answered(begun, request, response, seen, started, took)
                return
            segments = ctx.segments
            n = len(segments)
            shape = (
                request["method"],
                segments[0] if n else "",
                n,
                n > 1 and segments[1] == ".search",
                response["status"],
                seen[1],
                ctx.tenant,
            )
            shapes = local.shapes
            series = shapes.get(shape)
            if series is None:
                method = request["method"]
                series = series_of(
                    (
                        method if method in _METHODS else "OTHER",
                        of_segments(segments),
                        shape[4],
                        shape[5] or "",
                        shape[6] or "",
                    )
                )
                if len(shapes) < _SHAPES:
                    shapes[shape] = series
            series[0] += 1
            series[1] += took
            series[2 + bisect_left(buckets, took)] += 1

        return counted

    def _finished(self, begun: Any, record: RequestRecord, request: Any) -> None:
        method = record.method
        if method not in _METHODS:
            method = "OTHER"
        segments = record.segments
        route = self.routes.of_segments(segments) if segments else self.routes.route(record.path)
        if self.metrics is not None:
            self.metrics.record(
                method,
                route,
                record.status,
                record.scim_type,
                record.tenant,
                record.seconds,
            )
        self._spanned_and_logged(begun, method, route, record, request)

    def _spanned_and_logged(
        self, begun: Any, method: str, route: str, record: RequestRecord, request: Any
    ) -> None:
        """End the request's span (when it has one) and log its line."""
        if self._spans is not None:
            took = backend_seconds() if begun is not None and self.backend_timed else None
            self._spans.finish(begun, method, route, record, took)
        if self.log is None:
            return
        fields = {
            # the text line has no time (its handler may add one): the JSON line's only
            "time": entry_time(record.arrived) if self.log.format == "json" else None,
            "requestId": record.request_id,
            "method": method,
            "path": route,
            "status": record.status,
            "scimType": record.scim_type,
            "principal": record.principal,
            "tenant": record.tenant,
            "durationMs": round(record.seconds * 1000, 3),
        }
        handoff = _handoff(request)
        if handoff is not None:
            handoff.update(fields)
        else:
            self.log.write(fields)
