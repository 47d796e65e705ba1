"""OpenTelemetry: one SERVER span per request with the SCIM attributes, the request counter
and histogram, the outbox gauge; nothing imported or done when it is off."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scim2_core import ConfigurationError
from scim2_core.observe import Observability

from .conftest import BOB, call, make_engine, user

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402


def traced(**kwargs: Any) -> tuple[Any, InMemorySpanExporter, InMemoryMetricReader, Any]:
    """An engine observed with OpenTelemetry into in-memory exporters; its tracer provider."""
    exporter = InMemorySpanExporter()
    tracer_provider = sdk_trace.TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    engine = make_engine()
    Observability(
        engine,
        otel=True,
        metrics=False,
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
        **kwargs,
    )
    return engine, exporter, reader, tracer_provider


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
        for p in m.data.data_points
    ]


def test_each_request_is_one_server_span_with_the_scim_attributes() -> None:
    engine, exporter, _, _ = traced()
    created = json.loads(
        call(engine, "POST", "/Users", body=user("bjensen"), headers={"X-Request-Id": "r-9"})[
            "body"
        ]
    )
    call(engine, "GET", f"/Users/{created['id']}", token=BOB)
    call(engine, "GET", "/Users", query={"filter": "userName zz 1"})
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["POST /Users", "GET /Users/{id}", "GET /Users"]
    assert all(s.kind is SpanKind.SERVER for s in spans)
    first, second, third = (dict(s.attributes or {}) for s in spans)
    assert first["http.response.status_code"] == 201 and first["scim.request_id"] == "r-9"
    assert first["scim.resource_type"] == "User" and first["scim.tenant"] == "acme"
    assert first["scim.principal"] == "alice-idp" and "scim.type" not in first
    assert second["http.response.status_code"] == 404 and second["scim.tenant"] == "globex"
    assert third["scim.type"] == "invalidFilter" and third["http.route"] == "/Users"
    for span, attrs in zip(spans, (first, second, third), strict=True):
        took_ms = (span.end_time - span.start_time) / 1e6
        assert (
            0 < attrs["scim.backend.duration_ms"] <= took_ms
            or attrs["http.response.status_code"] == 400
        )
        assert span.status.status_code is StatusCode.UNSET  # 4xx is the client's, not an error
    text = json.dumps([dict(s.attributes or {}) for s in spans])
    assert "bjensen" not in text


def test_a_500_span_is_an_error() -> None:
    engine, exporter, _, _ = traced()

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the storage fell over")

    engine.backend.search = boom  # type: ignore[method-assign]
    assert call(engine, "GET", "/Users")["status"] == 500
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR


def test_the_request_counter_and_durations_count_every_request() -> None:
    engine, _, reader, _ = traced()
    for _ in range(3):
        call(engine, "GET", "/Users")
    call(engine, "GET", "/Users", token=None)
    counted = {
        (
            p.attributes["http.route"],
            p.attributes["http.response.status_code"],
            p.attributes["scim.tenant"],
        ): p.value
        for p in points(reader, "scim.requests")
    }
    assert counted == {("/Users", 200, "acme"): 3, ("/Users", 401, ""): 1}
    [count] = points(reader, "scim.request.duration.count")
    [total] = points(reader, "scim.request.duration.sum")
    assert count.value == 4 and count.attributes == {
        "http.request.method": "GET",
        "http.route": "/Users",
    }
    assert 0 < total.value < 60


def test_the_outbox_gauge_reports_pending_events() -> None:
    engine, _, reader, _ = traced()
    engine.events.add_handler(lambda e: None, name="app")
    call(engine, "POST", "/Users", body=user("bjensen"))
    [pending] = points(reader, "scim.outbox.pending")
    assert (pending.attributes["consumer"], pending.value) == ("app", 1)


def test_asking_for_otel_without_it_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ConfigurationError, match=r"scim2-core\[otel\]"):
        Observability(make_engine(), otel=True)


def test_nothing_imports_opentelemetry_unless_asked() -> None:
    code = (
        "import sys\n"
        "from scim2_core import Engine\n"
        "from scim2_core.backends import MemoryBackend\n"
        "from scim2_core.observe import Observability\n"
        "e = Engine(MemoryBackend())\n"
        "Observability(e, log_format='json')\n"
        "e.handle({'method': 'GET', 'path': '/Users'})\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_otel_sample_skips_spans_but_not_counts_and_keeps_sampled_traces() -> None:
    engine, exporter, reader, tracer_provider = traced(otel_sample=1e-12)
    for _ in range(20):
        call(engine, "GET", "/Users")
    assert exporter.get_finished_spans() == ()
    assert sum(p.value for p in points(reader, "scim.requests")) == 20
    with tracer_provider.get_tracer("app").start_as_current_span("the app's request"):
        call(engine, "GET", "/Users")  # inside a sampled trace: always a span
    names = [s.name for s in exporter.get_finished_spans()]
    assert names == ["GET /Users", "the app's request"]
    inner, outer = exporter.get_finished_spans()
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id


@pytest.mark.parametrize("share", [0, -0.5, 1.5])
def test_a_wrong_sample_share_fails_at_start_up(share: float) -> None:
    with pytest.raises(ConfigurationError, match="share of requests traced"):
        Observability(make_engine(), otel=True, otel_sample=share)


def test_backend_timing_wraps_once_and_gives_up_on_slotted_backends() -> None:
    from scim2_core.observe._backend_time import time_backend

    engine = make_engine()
    assert time_backend(engine.backend) and time_backend(engine.backend)
    wrapped = engine.backend.get
    assert time_backend(engine.backend) and engine.backend.get is wrapped

    class Slotted:
        __slots__ = ()

        def get(self) -> None:
            return None

    assert time_backend(Slotted()) is False


def test_no_span_and_no_backend_timing_where_nothing_records_them() -> None:
    """The API's no-op tracer (OpenTelemetry without an SDK) records nothing: requests are
    still counted, the storage is left as it was and no span is started."""
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.trace import NoOpTracerProvider

    engine = make_engine()
    get = engine.backend.get
    observed = Observability(
        engine,
        otel=True,
        tracer_provider=NoOpTracerProvider(),
        meter_provider=NoOpMeterProvider(),
    )
    call(engine, "GET", "/Users")
    assert engine.backend.get == get
    assert observed.otel is not None and observed.otel.start({}) is None
    assert observed.metrics is not None and sum(observed.metrics.requests().values()) == 1


def test_a_sampled_span_times_only_its_own_requests_storage() -> None:
    engine, exporter, _, tracer_provider = traced(otel_sample=1e-12)
    created = json.loads(call(engine, "POST", "/Users", body=user("bjensen"))["body"])
    for _ in range(30):  # not sampled: their storage time is not carried over
        call(engine, "GET", f"/Users/{created['id']}")
    with tracer_provider.get_tracer("app").start_as_current_span("the app's request"):
        call(engine, "GET", f"/Users/{created['id']}")
    span = exporter.get_finished_spans()[0]
    assert span.start_time is not None and span.end_time is not None
    took_ms = (span.end_time - span.start_time) / 1e6
    assert span.attributes is not None
    assert 0 < span.attributes["scim.backend.duration_ms"] <= took_ms


# W3C Trace Context (https://www.w3.org/TR/trace-context/): the example of its §3.2 and §3.3.
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN = 0x00F067AA0BA902B7
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize("name", ["traceparent", "Traceparent", "TRACEPARENT"])
def test_a_callers_traceparent_makes_the_span_its_child(name: str) -> None:
    engine, exporter, _, _ = traced()
    answer = call(
        engine,
        "GET",
        "/Users",
        headers={name: TRACEPARENT, "tracestate": "congo=t61rcWkgMzE", "X-Request-Id": "r-1"},
    )
    assert answer["status"] == 200
    assert answer["headers"]["X-Request-Id"] == "r-1"  # the request id stays the client's
    (span,) = exporter.get_finished_spans()
    assert span.context.trace_id == TRACE_ID
    assert span.parent is not None and span.parent.span_id == CALLER_SPAN
    assert span.parent.is_remote
    assert span.context.trace_state.get("congo") == "t61rcWkgMzE"
    assert dict(span.attributes or {})["scim.request_id"] == "r-1"


def test_without_a_traceparent_the_span_starts_a_trace() -> None:
    engine, exporter, _, _ = traced()
    call(engine, "GET", "/Users", headers={"X-Request-Id": TRACEPARENT})
    (span,) = exporter.get_finished_spans()
    assert span.parent is None and span.context.trace_id != TRACE_ID


def test_a_span_of_the_app_wins_over_the_callers_traceparent() -> None:
    """An instrumented server has already made the caller's trace its span's parent: the
    request's span is the child of that span, not a sibling of it."""
    engine, exporter, _, tracer_provider = traced()
    with tracer_provider.get_tracer("app").start_as_current_span("the server's span"):
        call(engine, "GET", "/Users", headers={"traceparent": TRACEPARENT})
    inner, outer = exporter.get_finished_spans()
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id


def test_otel_sample_keeps_every_request_of_a_trace_its_caller_sampled() -> None:
    engine, exporter, reader, _ = traced(otel_sample=1e-12)
    unsampled = TRACEPARENT[:-2] + "00"
    for _ in range(10):
        call(engine, "GET", "/Users", headers={"traceparent": unsampled})
        call(engine, "GET", "/Users")
    assert exporter.get_finished_spans() == ()
    call(engine, "GET", "/Users", headers={"traceparent": TRACEPARENT})
    (span,) = exporter.get_finished_spans()
    assert span.context.trace_id == TRACE_ID
    assert sum(p.value for p in points(reader, "scim.requests")) == 21


@settings(max_examples=60, deadline=None)
@given(
    traceparent=st.one_of(
        st.text(max_size=80),
        st.from_regex(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", fullmatch=True),
    ),
    tracestate=st.text(max_size=80),
)
def test_any_trace_context_header_is_answered_with_one_span(
    traceparent: str, tracestate: str
) -> None:
    """A malformed traceparent or tracestate is ignored (the span starts a trace), never an
    error: the caller's trace is a hint, not part of the SCIM request. (A well-formed one
    whose caller did not sample it gets no span from the SDK's default sampler.)"""
    engine, exporter, _, _ = traced()
    headers = {"traceparent": traceparent, "tracestate": tracestate}
    assert call(engine, "GET", "/Users", headers=headers)["status"] == 200
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] in (["GET /Users"], [])
    if not spans:
        assert traceparent.endswith(("0", "2", "4", "6", "8", "a", "c", "e"))
