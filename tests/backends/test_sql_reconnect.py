"""A PostgreSQL connection the server drops while it is idle (a restart, a failover, an
idle-session timeout, an operator's ``pg_terminate_backend``) costs no request: a read of one
statement runs again on a new connection, and a transaction that finds it broken at its
``BEGIN`` (nothing of it sent yet) begins again on a new one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scim2_core import Engine
from scim2_core.backends import SQLBackend
from tests.helpers import call, create_user

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(postgres_database: str) -> Iterator[Engine]:
    backend = SQLBackend(postgres_database)
    try:
        yield Engine(backend)
    finally:
        backend.close()


def _drop_connections(url: str) -> int:
    """Terminate every other session on the database of ``url``, as a restart would."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("request_kind", ["read by id", "search", "write"])
def test_a_connection_the_server_dropped_costs_no_request(
    engine: Engine, postgres_database: str, request_kind: str
) -> None:
    alice = create_user(engine, "alice")["id"]
    assert call(engine, "GET", f"/Users/{alice}").status == 200  # this thread's connection
    assert _drop_connections(postgres_database) >= 1
    if request_kind == "read by id":
        assert call(engine, "GET", f"/Users/{alice}").status == 200
    elif request_kind == "search":
        found = call(engine, "GET", "/Users?filter=userName%20eq%20%22alice%22")
        assert found.status == 200 and found.json["totalResults"] == 1
    else:
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        }
        patched = call(engine, "PATCH", f"/Users/{alice}", patch)
        assert patched.status == 200 and patched.json["active"] is False
    # And every later request is answered, with nothing lost.
    user = call(engine, "GET", f"/Users/{alice}")
    assert user.status == 200 and user.json["userName"] == "alice"
    assert call(engine, "GET", "/Users").json["totalResults"] == 1
    bob = create_user(engine, "bob")["id"]
    assert call(engine, "GET", f"/Users/{bob}").status == 200
