"""Rate limits: above the bucket a SCIM 429 with Retry-After, and nothing else changes."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scim2_core import ConfigurationError, Engine
from scim2_core.observe import Rate, RateLimit, TooManyRequestsError

from .conftest import ALICE, BOB, call, make_engine, user

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limited(rate: float, burst: int, **kwargs: object) -> tuple[Engine, Clock]:
    clock = Clock()
    engine = make_engine()
    engine.limit_rate(RateLimit(Rate(rate, burst), clock=clock, **kwargs))  # type: ignore[arg-type]
    return engine, clock


def test_a_burst_above_the_limit_gets_429_and_writes_nothing() -> None:
    engine, clock = limited(1, 3)
    answers = [call(engine, "POST", "/Users", body=user(f"u{i}")) for i in range(6)]
    assert [a["status"] for a in answers] == [201, 201, 201, 429, 429, 429]
    refused = answers[3]
    assert refused["headers"]["Retry-After"] == "1"
    assert refused["headers"]["Content-Type"] == "application/scim+json"
    body = json.loads(refused["body"])
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == "429" and "scimType" not in body
    clock.now += 60
    listed = json.loads(call(engine, "GET", "/Users")["body"])
    assert sorted(r["userName"] for r in listed["Resources"]) == ["u0", "u1", "u2"]


def test_a_refused_patch_leaves_the_resource_as_it_was() -> None:
    engine, clock = limited(0.5, 2)
    created = json.loads(call(engine, "POST", "/Users", body=user("bjensen"))["body"])
    ops = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "path": "displayName", "value": "X"}],
    }
    call(engine, "GET", f"/Users/{created['id']}")
    refused = call(engine, "PATCH", f"/Users/{created['id']}", body=ops)
    assert refused["status"] == 429 and refused["headers"]["Retry-After"] == "2"
    clock.now += 2
    after = json.loads(call(engine, "GET", f"/Users/{created['id']}")["body"])
    assert after["meta"]["version"] == created["meta"]["version"] and "displayName" not in after


def test_each_principal_has_its_own_bucket() -> None:
    engine, _ = limited(1, 2)
    alice = [call(engine, "GET", "/Users")["status"] for _ in range(3)]
    bob = [call(engine, "GET", "/Users", token=BOB)["status"] for _ in range(2)]
    assert alice == [200, 200, 429] and bob == [200, 200]


def test_the_bucket_refills_at_the_rate() -> None:
    engine, clock = limited(2, 2)
    assert [call(engine, "GET", "/Users")["status"] for _ in range(3)] == [200, 200, 429]
    clock.now += 0.5  # one token back
    assert [call(engine, "GET", "/Users")["status"] for _ in range(2)] == [200, 429]
    clock.now += 100  # full, never above the burst
    assert [call(engine, "GET", "/Users")["status"] for _ in range(3)] == [200, 200, 429]


def test_a_tenant_can_have_a_rate_of_its_own() -> None:
    engine, _ = limited(1, 1, tenants={"globex": Rate(1, 3)})
    assert [call(engine, "GET", "/Users")["status"] for _ in range(2)] == [200, 429]
    assert [call(engine, "GET", "/Users", token=BOB)["status"] for _ in range(4)] == [
        200,
        200,
        200,
        429,
    ]


def test_retry_after_is_whole_seconds_until_a_token() -> None:
    engine, _ = limited(0.1, 1)
    call(engine, "GET", "/Users")
    assert call(engine, "GET", "/Users")["headers"]["Retry-After"] == "10"


def test_unauthenticated_requests_are_refused_before_the_limit() -> None:
    engine, _ = limited(1, 1)
    assert [call(engine, "GET", "/Users", token=None)["status"] for _ in range(3)] == [401] * 3
    assert call(engine, "GET", "/Users", token=ALICE)["status"] == 200


def test_without_authentication_everyone_shares_one_bucket() -> None:
    from scim2_core.backends import MemoryBackend

    clock = Clock()
    engine = Engine(MemoryBackend())
    engine.limit_rate(RateLimit(Rate(1, 2), clock=clock))
    statuses = [engine.handle({"method": "GET", "path": "/Users"})["status"] for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_off_by_default_when_embedded() -> None:
    engine = make_engine()
    assert {call(engine, "GET", "/Users")["status"] for _ in range(500)} == {200}


def test_idle_buckets_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    from scim2_core.observe import _limits

    monkeypatch.setattr(_limits, "_PRUNE_ABOVE", 3)
    clock = Clock()
    limit = RateLimit(Rate(1, 1), clock=clock)
    for name in ("a", "b", "c"):
        limit(name, None)
    clock.now += 5  # a, b and c have refilled
    limit("d", None)
    assert len(limit._buckets) == 1
    with pytest.raises(TooManyRequestsError):
        limit("d", None)


@pytest.mark.parametrize(
    ("rate", "burst"), [(0, 1), (-1, 1), (1, 0), (1, 1.5), (1, True), ("1", 1)]
)
def test_a_wrong_rate_fails_at_start_up(rate: object, burst: object) -> None:
    with pytest.raises(ConfigurationError):
        Rate(rate, burst)  # type: ignore[arg-type]


@given(
    rate=st.floats(0.5, 50),
    burst=st.integers(1, 20),
    gaps=st.lists(st.tuples(st.sampled_from(["p", "q"]), st.floats(0, 0.5)), max_size=200),
)
@settings(max_examples=100, deadline=None)
def test_no_principal_ever_gets_more_than_burst_plus_rate_times_time(
    rate: float, burst: int, gaps: list[tuple[str, float]]
) -> None:
    clock = Clock()
    start = clock.now
    limit = RateLimit(Rate(rate, burst), clock=clock)
    allowed: dict[str, int] = defaultdict(int)
    waits: list[int] = []
    for who, gap in gaps:
        clock.now += gap
        try:
            limit(who, None)
        except TooManyRequestsError as exc:
            waits.append(exc.retry_after)
        else:
            allowed[who] += 1
        for name, n in allowed.items():
            assert n <= burst + rate * (clock.now - start) + 1e-6, name
    assert all(1 <= w <= 1 / rate + 1 for w in waits)
    if gaps and all(g >= 1.01 / rate for _, g in gaps):
        assert sum(allowed.values()) == len(gaps)  # never refused below the rate
