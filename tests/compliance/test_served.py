"""The published python-scim tools against ``scim2-core serve`` over real HTTP on loopback.

``scim2-tester`` (the compliance checker whose reference server passes all of its checks) and
``scim2-client`` (the client library) talk to a ``scim2-core serve`` subprocess, on the embedded
default (a SQLite file) and on PostgreSQL (a database of its own, dropped afterwards), exactly as a
user would run it: the command line, a bearer token, uvicorn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import PatchOp, PatchOperation, SearchRequest
from scim2_tester import Status, check_server
from served import TOKEN, Served


@pytest.fixture
def served(serve: Callable[..., Served]) -> str:
    """``scim2-core serve`` on the test's database; its SCIM base URL."""
    return serve().base


@pytest.fixture
def client(served: str) -> Iterator[SyncSCIMClient]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx2.Client(base_url=served, headers=headers, timeout=30) as http:
        yield SyncSCIMClient(http)


def test_scim2_tester_passes_every_check(client: SyncSCIMClient) -> None:
    results = check_server(client)
    failed = [
        f"{r.status.name} {r.resource_type or ''} {r.title}: {r.reason}"
        for r in results
        if r.status is not Status.SUCCESS
    ]
    assert failed == []
    # The reference server passes 135 checks; fewer would mean checks were not run at all.
    assert len(results) >= 135


def test_scim2_client_round_trip(client: SyncSCIMClient) -> None:
    client.discover()
    user_model: Any = client.get_resource_model("User")
    assert user_model is not None

    created = client.create(
        user_model(
            user_name="bjensen",
            display_name="Barbara Jensen",
            emails=[{"value": "bjensen@example.com", "type": "work", "primary": True}],
        )
    )
    assert created.id and created.meta.version
    assert created.user_name == "bjensen"

    found = client.query(user_model, query_parameters=SearchRequest(filter='userName eq "BJENSEN"'))
    assert found.total_results == 1
    assert found.resources[0].id == created.id

    patch: Any = PatchOp[user_model](  # type: ignore[index]
        operations=[
            PatchOperation(op="replace", path="displayName", value="Babs Jensen"),
            PatchOperation(op="add", path="title", value="Tour Guide"),
        ]
    )
    modified = client.modify(user_model, created.id, patch)
    assert modified is not None
    assert (modified.display_name, modified.title) == ("Babs Jensen", "Tour Guide")
    assert modified.meta.version != created.meta.version

    again = client.query(user_model, created.id)
    assert (again.display_name, again.title) == ("Babs Jensen", "Tour Guide")

    client.delete(user_model, created.id)
    gone = client.query(user_model, created.id, raise_scim_errors=False, expected_status_codes=None)
    assert getattr(gone, "status", None) in (404, "404")
    empty = client.query(user_model, query_parameters=SearchRequest(filter='userName eq "bjensen"'))
    assert empty.total_results == 0
