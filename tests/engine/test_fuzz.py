"""Hypothesis at the HTTP surface: no request makes ``handle()`` raise.

Every response is well formed: an int status, str->str headers, bytes body that is empty
(204/304) or JSON; every 4xx/5xx carries an RFC 7644 §3.12 Error body.

Each test keeps one engine across all its examples (state accumulates, as on a live server);
paths may name the three seeded users through the placeholders ``SEEDS``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim2_core import Engine
from tests.helpers import ERROR, GROUP, PATCH_OP, SEARCH, USER, make_engine

SEEDS = ["<seed0>", "<seed1>", "<seed2>"]


class Seeded:
    """An engine with three users; ``path()`` puts their ids in place of ``SEEDS``."""

    def __init__(self) -> None:
        self.engine = make_engine(max_results=20)
        self.ids: dict[str, str] = {}
        for i, placeholder in enumerate(SEEDS):
            body = {"schemas": [USER], "userName": f"seed{i}"}
            response = self.engine.handle({"method": "POST", "path": "/Users", "body": body})
            self.ids[placeholder] = json.loads(response["body"])["id"]

    def path(self, path: str) -> str:
        for placeholder, id_ in self.ids.items():
            path = path.replace(placeholder, id_)
        return path


@pytest.fixture
def seeded() -> Seeded:
    """One engine shared by every example of a test (hence the suppressed health check)."""
    return Seeded()


json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
attr_names = st.sampled_from(
    [
        "userName",
        "displayName",
        "active",
        "emails",
        "name",
        "members",
        "id",
        "meta",
        "password",
        "name.givenName",
        "emails.value",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "externalId",
        "groups",
        "Nope",
        "title",
    ]
)
segments = st.sampled_from(
    [
        "Users",
        "Groups",
        "users",
        ".search",
        "Bulk",
        "Schemas",
        "ResourceTypes",
        "ServiceProviderConfig",
        "Me",
        "x",
        *SEEDS,
    ]
)
paths = st.lists(segments | st.text(max_size=8), min_size=0, max_size=3).map(
    lambda s: "/" + "/".join(s)
)
ops = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "Replace", "bogus"])},
    optional={"path": attr_names | st.text(max_size=20), "value": json_values},
)
bodies = st.one_of(
    st.none(),
    json_values,
    st.fixed_dictionaries(
        {"schemas": st.sampled_from([[USER], [GROUP], [PATCH_OP], [SEARCH], []])},
        optional={
            "userName": json_values,
            "displayName": json_values,
            "members": json_values,
            "emails": json_values,
            "Operations": st.lists(ops, max_size=4),
            "filter": st.text(max_size=40),
            "startIndex": json_values,
            "count": json_values,
        },
    ),
    st.binary(max_size=40),
)
queries = st.dictionaries(
    st.sampled_from(
        [
            "filter",
            "attributes",
            "excludedAttributes",
            "sortBy",
            "sortOrder",
            "startIndex",
            "count",
            "cursor",
        ]
    ),
    st.text(max_size=30) | attr_names,
    max_size=4,
)
headers = st.dictionaries(
    st.sampled_from(["Content-Type", "If-Match", "If-None-Match", "Authorization", "content-type"]),
    st.sampled_from(["application/scim+json", "text/plain", "*", 'W/"1"', "", "application/json"])
    | st.text(max_size=15),
    max_size=3,
)


def check_response(response: Any) -> None:
    assert isinstance(response, dict)
    assert isinstance(response["status"], int)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in response["headers"].items())
    assert isinstance(response["body"], bytes)
    if response["status"] in (204, 304):
        assert response["body"] == b""
        return
    parsed = json.loads(response["body"])
    if response["status"] >= 400:
        assert parsed["schemas"] == [ERROR]
        assert parsed["status"] == str(response["status"])
    assert response["status"] != 500, parsed


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get"]),
    path=paths,
    body=bodies,
    query=queries,
    hdrs=headers,
)
def test_no_request_makes_handle_raise(
    seeded: Seeded,
    method: str,
    path: str,
    body: Any,
    query: dict[str, str],
    hdrs: dict[str, str],
) -> None:
    request: dict[str, Any] = {
        "method": method,
        "path": seeded.path(path),
        "query": query,
        "headers": hdrs,
    }
    if body is not None:
        request["body"] = body if isinstance(body, bytes) else json.dumps(body)
    check_response(seeded.engine.handle(request))  # type: ignore[arg-type]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=200))
def test_any_filter_text_gives_a_list_or_invalid_filter(seeded: Seeded, text: str) -> None:
    response = seeded.engine.handle({"method": "GET", "path": "/Users", "query": {"filter": text}})
    check_response(response)
    assert response["status"] in (200, 400)


def test_seeded_users_are_reachable(seeded: Seeded) -> None:
    assert isinstance(seeded.engine, Engine)
    for placeholder in SEEDS:
        response = seeded.engine.handle(
            {"method": "GET", "path": seeded.path(f"/Users/{placeholder}")}
        )
        assert response["status"] == 200, response
