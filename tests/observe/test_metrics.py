"""Prometheus metrics: counts that match the requests sent, a latency histogram, the
outbox's depth, and ``/metrics`` for loopback clients or a token holder only."""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scim2_core import Engine
from scim2_core.observe import (
    LATENCY_BUCKETS,
    Metrics,
    MetricsEndpoint,
    Observability,
    RouteTemplates,
)

from .conftest import ALICE, BOB, call, make_engine, user

_SAMPLE = re.compile(r"^([a-z_]+)\{(.*)\} (\S+)$")


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """The samples of a text exposition: (name, labels, value)."""
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, line
        labels = dict(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', match[2]))
        out.append((match[1], labels, float(match[3])))
    return out


def requests_total(metrics: Metrics) -> Counter[tuple[str, str, str, str, str]]:
    found: Counter[tuple[str, str, str, str, str]] = Counter()
    for name, labels, value in samples(metrics.exposition()):
        if name == "scim_requests_total":
            key = (
                labels["method"],
                labels["route"],
                labels["status"],
                labels["scim_type"],
                labels["tenant"],
            )
            found[key] += int(value)
    return found


#: What each kind of request is counted as: (method, route, status, scimType, tenant).
KINDS: dict[str, tuple[str, str, str, str, str]] = {
    "list": ("GET", "/Users", "200", "", "acme"),
    "missing": ("GET", "/Users/{id}", "404", "", "acme"),
    "bad filter": ("GET", "/Users", "400", "invalidFilter", "acme"),
    "unauthenticated": ("GET", "/Users", "401", "", ""),
    "other tenant": ("GET", "/Groups", "200", "", "globex"),
    "discovery": ("GET", "/Schemas/{id}", "200", "", ""),
    "unknown path": ("GET", "/{unknown}", "404", "", "acme"),
    "bad method": ("OTHER", "/Users", "501", "", "acme"),
}


def send(engine: Engine, kind: str) -> None:
    if kind == "list":
        call(engine, "GET", "/Users")
    elif kind == "missing":
        call(engine, "GET", "/Users/0f6b1e9e")
    elif kind == "bad filter":
        call(engine, "GET", "/Users", query={"filter": "userName zz 1"})
    elif kind == "unauthenticated":
        call(engine, "GET", "/Users", token=None)
    elif kind == "other tenant":
        call(engine, "GET", "/Groups", token=BOB)
    elif kind == "discovery":
        call(engine, "GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", token=None)
    elif kind == "unknown path":
        call(engine, "GET", "/Users/a/b/c")
    else:
        call(engine, "get", "/Users")


@given(st.lists(st.sampled_from(sorted(KINDS)), max_size=40))
@settings(max_examples=30, deadline=None)
def test_counts_match_the_requests_sent(kinds: list[str]) -> None:
    engine = make_engine()
    observed = Observability(engine)
    for kind in kinds:
        send(engine, kind)
    assert observed.metrics is not None
    assert requests_total(observed.metrics) == Counter(KINDS[k] for k in kinds)
    histogram = {
        (labels["method"], labels["route"]): value
        for name, labels, value in samples(observed.metrics.exposition())
        if name == "scim_request_duration_seconds_count"
    }
    assert sum(histogram.values()) == len(kinds)


def test_the_histogram_is_cumulative_and_ends_at_inf() -> None:
    metrics = Metrics()
    for seconds in (0.0005, 0.003, 0.003, 0.2, 30.0):
        metrics.record("GET", "/Users", 200, None, None, seconds)
    buckets = [
        (labels["le"], value)
        for name, labels, value in samples(metrics.exposition())
        if name == "scim_request_duration_seconds_bucket"
    ]
    assert len(buckets) == len(LATENCY_BUCKETS) + 1
    assert buckets[0] == ("0.001", 1) and buckets[-1] == ("+Inf", 5)
    assert dict(buckets)["0.005"] == 3 and dict(buckets)["0.25"] == 4 and dict(buckets)["10"] == 4
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    text = metrics.exposition()
    assert 'scim_request_duration_seconds_sum{method="GET",route="/Users"} 30.2065' in text


def test_counts_from_many_threads_all_arrive() -> None:
    """Each thread counts into its own series, without a lock: none is lost, read while the
    threads count (new label values appearing meanwhile), after they ended, or after a new
    thread started counting."""
    metrics = Metrics()

    def send(n: int, tenants: int = 1) -> None:
        for i in range(n):
            tenant = f"t{i % tenants}"
            metrics.record("GET", "/Users/{id}", 200 if i % 3 else 404, None, tenant, 0.002)

    threads = [threading.Thread(target=send, args=(1500, 50)) for _ in range(4)]
    for t in threads:
        t.start()
    seen = 0
    while any(t.is_alive() for t in threads):
        now = sum(metrics.requests().values())
        assert seen <= now <= 6000
        seen = now
        assert "scim_requests_total" in metrics.exposition()
    for t in threads:
        t.join()
    counts = metrics.requests()
    assert sum(n for (_, _, status, _, _), n in counts.items() if status == 200) == 4000
    assert sum(n for (_, _, status, _, _), n in counts.items() if status == 404) == 2000
    assert len(counts) == 100
    later = threading.Thread(target=send, args=(5,))
    later.start()
    later.join()
    assert metrics.durations()[("GET", "/Users/{id}")] == (6005, pytest.approx(12.01))
    send(7)
    assert sum(metrics.requests().values()) == 6012


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.record("GET", "/Users", 200, None, 'a"b\\c\nd', 0.01)
    assert 'tenant="a\\"b\\\\c\\nd"' in metrics.exposition()


def test_the_outbox_depth_is_read_when_scraped() -> None:
    engine = make_engine()
    delivered: list[Any] = []
    engine.events.add_handler(delivered.append, name="app")  # not started: events wait
    observed = Observability(engine)
    assert observed.metrics is not None
    call(engine, "POST", "/Users", body=user("bjensen"))
    call(engine, "POST", "/Users", body=user("jsmith"))
    text = observed.metrics.exposition()
    assert 'scim_outbox_pending{consumer="app"} 2' in text
    assert 'scim_outbox_failed{consumer="app"} 0' in text


def test_a_broken_outbox_does_not_take_the_metrics_down(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Any:
        raise RuntimeError("storage down")

    metrics = Metrics(broken)
    metrics.record("GET", "/Users", 200, None, None, 0.01)
    assert "scim_requests_total" in metrics.exposition()
    assert "scim_outbox" not in metrics.exposition()
    assert "Cannot read the event outbox" in caplog.text


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/", "/"),
        ("/Users", "/Users"),
        ("/users/abc", "/Users/{id}"),
        ("/Users/.search", "/Users/.search"),
        ("/Groups/x?attributes=members", "/Groups/{id}"),
        ("/Schemas/urn:x", "/Schemas/{id}"),
        ("/ServiceProviderConfig", "/ServiceProviderConfig"),
        ("/ServiceProviderConfig/x", "/{unknown}"),
        ("/Bulk", "/Bulk"),
        ("/Me", "/Me"),
        ("/Me/x", "/Me"),
        ("/.search", "/.search"),
        ("/bjensen@example.com", "/{unknown}"),
        ("/Users/a/b", "/{unknown}"),
    ],
)
def test_route_templates_never_hold_a_value(path: str, route: str) -> None:
    assert RouteTemplates(["/Users", "/Groups"]).route(path) == route


@given(st.lists(st.lists(st.sampled_from(["Users", "users", ".search", "Me", "x", "Schemas"]))))
def test_remembered_route_templates_are_those_worked_out(paths: list[list[str]]) -> None:
    """Templates are remembered per path shape: a second path of the same shape gets the
    template it would get from a fresh RouteTemplates."""
    remembering = RouteTemplates(["/Users"])
    for segments in paths:
        assert remembering.of_segments(segments) == RouteTemplates(["/Users"]).of_segments(segments)


def scrape(
    app: Any,
    *,
    client: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
    method: str = "GET",
    path: str = "/metrics",
) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client, 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.request(method, path, headers=headers)

    return asyncio.run(go())


async def _inner(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_metrics_endpoint_answers_loopback_clients_only_without_a_token() -> None:
    metrics = Metrics()
    metrics.record("GET", "/Users", 200, None, "acme", 0.01)
    app = MetricsEndpoint(_inner, metrics)
    for client in ("127.0.0.1", "127.8.9.1", "::1"):
        ok = scrape(app, client=client)
        assert ok.status_code == 200, client
        assert ok.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert (
            'scim_requests_total{method="GET",route="/Users",status="200",scim_type="",tenant="acme"} 1'
            in ok.text
        )
    assert scrape(app, client="203.0.113.7").status_code == 403
    assert scrape(app, client="10.0.0.1").status_code == 403
    assert scrape(app, method="POST").status_code == 405
    assert scrape(app, path="/scim/v2/Users").status_code == 204  # not ours: passed on
    head = scrape(app, method="HEAD")
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize("client", [None, ("not-an-address", 1), ("fe80::1%eth0", 1)])
def test_metrics_endpoint_refuses_clients_it_cannot_place(client: Any) -> None:
    async def go() -> int:
        sent: list[Any] = []

        async def receive() -> Any:
            return {"type": "http.request", "body": b""}

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/metrics",
            "headers": [],
            "client": client,
        }
        await MetricsEndpoint(_inner, Metrics())(scope, receive, send)
        return int(sent[0]["status"])

    assert asyncio.run(go()) == 403


def test_metrics_endpoint_with_a_token_wants_it_from_everyone() -> None:
    token = "metrics-token-0123456789"
    app = MetricsEndpoint(_inner, Metrics(), token=token)
    assert scrape(app).status_code == 403  # loopback, no token
    assert scrape(app, headers={"Authorization": "Bearer wrong-token-012345"}).status_code == 403
    good = scrape(app, client="203.0.113.7", headers={"Authorization": f"Bearer {token}"})
    assert good.status_code == 200 and "scim_requests_total" in good.text


def test_metrics_hold_no_token_or_value() -> None:
    engine = make_engine()
    observed = Observability(engine)
    call(engine, "POST", "/Users", body=user("bjensen.private"))
    call(engine, "GET", "/Users", query={"filter": 'userName eq "bjensen.private"'})
    call(engine, "GET", "/Users/bjensen.private")
    assert observed.metrics is not None
    text = observed.metrics.exposition()
    assert "bjensen" not in text and ALICE not in text and "alice-idp" not in text
