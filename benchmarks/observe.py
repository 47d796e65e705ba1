"""What observing costs: GET by id through ``Engine.handle`` with logs, metrics, traces and
rate limits on, beside the same engine with them off, interleaved in one process.

    .venv/bin/python benchmarks/observe.py                 # 1000 users, 9 rounds
    .venv/bin/python benchmarks/observe.py --rounds 15 --seconds 0.3
    .venv/bin/python benchmarks/observe.py --backend sqlite     # the same on a SQLite file

The workload is ``benchmarks/engine.py``'s GET-by-id case (its users, on MemoryBackend, the
fastest path and so the one where a fixed per-request cost shows most). One engine holds
the users; each configuration's observers and rate gate are switched in before it is
measured (separate engines differ by more than what is measured); every round measures
each configuration
for ``--seconds`` of CPU time in a shuffled order, and a configuration's figure is the
median over the rounds of (its CPU time per request / the "off" one in the same round):

* ``before``: ``engine._answer``, the request path without the observer hooks and without
  stamping ``X-Request-Id`` (what ``handle`` was before them), to show what "off" costs;
* ``off``: ``engine.handle`` with nothing attached (the default when embedded);
* ``metrics``: Prometheus counters and histogram (``Observability(engine)``);
* ``rate limit``: a token bucket per principal (never empty here);
* ``metrics+otel, no SDK``: and OpenTelemetry through the API's no-op providers: the cost
  of scim2-core's own code (span attributes, backend timing) without any SDK's;
* ``metrics+otel, SDK sampler 1%``: the SDK (a batch processor and an exporter that drops
  the spans; an in-memory metric reader) with ``ParentBased(TraceIdRatioBased(0.01))``;
* ``metrics+otel, otel_sample 1%``: the SDK recording every span it is given, and
  scim2-core giving it 1% of requests (``serve --otel --otel-sample 0.01``);
* ``metrics+otel, every span``: the SDK recording a span for every request;
* ``everything, otel_sample 1%``: metrics, spans for 1%, a JSON log line per request (to
  /dev/null) and the rate limit.

Target (issue #15): under 10% on ``metrics+otel``, nothing measurable on ``off``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# The checkout first, benchmarks/ last (for `engine`).
sys.path.remove(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.append(str(Path(__file__).resolve().parent))

from engine import BASE, make_user  # benchmarks/engine.py

from scim2_core import Engine
from scim2_core.backends import Backend, MemoryBackend, SQLBackend
from scim2_core.observe import Observability, Rate, RateLimit
from scim2_core.observe._backend_time import _MARK, _TIMED

#: name -> (Observability keyword arguments or None, OpenTelemetry providers, rate limit on)
CONFIGS: dict[str, tuple[dict[str, Any] | None, str | None, bool]] = {
    "before": (None, None, False),
    "off": (None, None, False),
    "metrics": ({"metrics": True}, None, False),
    "rate limit": (None, None, True),
    "metrics+otel, no SDK": ({"metrics": True, "otel": True}, "api", False),
    "metrics+otel, SDK sampler 1%": ({"metrics": True, "otel": True}, "sdk 1%", False),
    "metrics+otel, otel_sample 1%": (
        {"metrics": True, "otel": True, "otel_sample": 0.01},
        "sdk",
        False,
    ),
    "metrics+otel, every span": ({"metrics": True, "otel": True}, "sdk", False),
    "everything, otel_sample 1%": (
        {"metrics": True, "otel": True, "otel_sample": 0.01, "log_format": "json"},
        "sdk",
        True,
    ),
}


def _otel_providers(kind: str) -> dict[str, Any]:
    """The SDK's providers, or (``api``) the API's no-op ones: what scim2-core's own code
    costs, without the cost of any SDK."""
    if kind == "api":
        from opentelemetry.metrics import NoOpMeterProvider
        from opentelemetry.trace import NoOpTracerProvider

        return {"tracer_provider": NoOpTracerProvider(), "meter_provider": NoOpMeterProvider()}
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    class Dropping(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = (
        TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.01)))
        if kind == "sdk 1%"
        else TracerProvider()
    )
    tracer_provider.add_span_processor(BatchSpanProcessor(Dropping()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return {"tracer_provider": tracer_provider, "meter_provider": meter_provider}


class Setups:
    """One engine, its users loaded once, and each configuration's observers, rate gate and
    backend timing, switched in before the configuration is measured.

    One engine for every configuration: separate engines (each its own dicts, or its own
    SQLite file and page cache) differ from one another by more than what is measured.
    """

    def __init__(self, users: int, backend: str, folder: str) -> None:
        store: Backend = MemoryBackend()
        if backend == "sqlite":
            store = SQLBackend(f"sqlite:///{folder}/bench.db")
        self.engine = engine = Engine(store)
        self.ids = []
        for i in range(users):
            r = engine.handle(
                {"method": "POST", "path": "/Users", "body": make_user(i), "base_url": BASE}
            )
            self.ids.append(json.loads(r["body"])["id"])
        self.setups: dict[str, tuple[tuple[Any, ...], Any, Any, dict[str, Any]]] = {}
        unobserved = engine._observed
        for config, (observe, providers, limited) in CONFIGS.items():
            engine._observers = ()
            engine._observed = unobserved
            engine._gate = None
            if observe is not None:
                Observability(
                    engine, **observe, **(_otel_providers(providers) if providers else {})
                )
            if limited:
                engine.limit_rate(RateLimit(Rate(1e9, 1_000_000_000)))
            # Backend timing (with OpenTelemetry) wraps the backend's methods in place.
            timed = {k: v for k, v in vars(store).items() if k in _WRAPPED}
            for name in timed:
                delattr(store, name)
            self.setups[config] = (engine._observers, engine._observed, engine._gate, timed)

    def call(self, config: str) -> Callable[[], Any]:
        """Switch ``config`` in; one GET by id of a random user."""
        engine = self.engine
        observers, observed, gate, timed = self.setups[config]
        for name in list(vars(engine.backend)):
            if name in _WRAPPED:
                delattr(engine.backend, name)
        for name, value in timed.items():
            setattr(engine.backend, name, value)
        engine._observers, engine._observed, engine._gate = observers, observed, gate
        picks = iter(random.Random(len(config)).choices(self.ids, k=1_000_000))
        if config == "before":
            answer = engine._answer

            def call() -> Any:
                path = f"/Users/{next(picks)}"
                return answer({"method": "GET", "path": path, "base_url": BASE}, [None, None])

            return call

        def handle() -> Any:
            path = f"/Users/{next(picks)}"
            return engine.handle({"method": "GET", "path": path, "base_url": BASE})

        return handle


#: What backend timing sets on a backend object.
_WRAPPED = frozenset((*_TIMED, _MARK))


def per_request(fn: Callable[[], Any], seconds: float) -> float:
    """CPU seconds of this thread per call of ``fn``, over about ``seconds`` of it.

    CPU time, not wall time: on a machine shared with other jobs, wall time also counts
    the moments this process waited for a core, which says nothing about ``fn``.
    """
    n = 0
    start = time.thread_time()
    while True:
        for _ in range(50):
            fn()
        n += 50
        elapsed = time.thread_time() - start
        if elapsed >= seconds:
            return elapsed / n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--backend", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=0.25, help="per configuration per round")
    args = parser.parse_args()
    devnull = open(os.devnull, "w")  # noqa: SIM115  (open for the whole run)
    request_log = logging.getLogger("scim2_core.request")
    request_log.handlers = [logging.StreamHandler(devnull)]
    request_log.propagate = False
    request_log.setLevel(logging.INFO)

    folder = tempfile.mkdtemp(prefix="scim2-observe-bench-")
    print(f"loading {args.users} users...", file=sys.stderr, flush=True)
    setups = Setups(args.users, args.backend, folder)
    # The users stay alive for the whole run: frozen, the garbage collector no longer
    # walks them (as in a server whose data lives in its database).
    gc.collect()
    gc.freeze()
    ratios: dict[str, list[float]] = {c: [] for c in CONFIGS}
    times: dict[str, list[float]] = {c: [] for c in CONFIGS}
    order = list(CONFIGS)
    for n in range(args.rounds):
        random.shuffle(order)
        measured = {c: per_request(setups.call(c), args.seconds) for c in order}
        for c in CONFIGS:
            times[c].append(measured[c])
            ratios[c].append(measured[c] / measured["off"])
        print(f"round {n + 1}/{args.rounds}", file=sys.stderr, flush=True)

    print(f"GET by id, {args.users} users, {args.backend}, {args.rounds} interleaved rounds")
    print(
        "| configuration | CPU µs/request (median) | vs off (median of rounds) | min-max of rounds |"
    )
    print("|---|---:|---:|---:|")
    for c in CONFIGS:
        r = ratios[c]
        print(
            f"| {c} | {statistics.median(times[c]) * 1e6:.1f} | {statistics.median(r):.3f}x "
            f"| {min(r):.3f}-{max(r):.3f} |"
        )


if __name__ == "__main__":
    main()
