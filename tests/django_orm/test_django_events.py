"""DjangoModelBackend's outbox and audit log, in the app's own database (SQLite, PostgreSQL).

The backend-neutral event and audit tests (``tests/events/neutral.py``) run here unchanged over
``make_backend`` below; then what is Django's own: an event commits and rolls back with
its write, and an Entra ID deactivation reaches the app's handler.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django_orm_helpers import clean_tables

from scim2_core import ChangeEvent, Engine
from scim2_core_django.backend import DjangoModelBackend
from tests.events.conftest import listening
from tests.events.neutral import *  # noqa: F403  (collected here, over make_backend below)
from tests.helpers import PATCH_OP, call, create_user

_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
_EVENT_TABLES = ("scim_outbox", "scim_outbox_consumers", "scim_outbox_failed", "scim_audit")


def _clean_events(alias: str) -> None:
    """Empty outbox and audit log, numbered from 1 again: a PostgreSQL reader starting
    behind a gap would wait for every write transaction open on the server (other
    databases' too; see docs/events.md)."""
    from django.db import connections

    with connections[alias].cursor() as cursor:
        for table in _EVENT_TABLES:
            cursor.execute(f"DELETE FROM {table}")
        cursor.execute("UPDATE scim_outbox_head SET seq = 0")
        if connections[alias].vendor == "postgresql":
            cursor.execute("ALTER SEQUENCE scim_outbox_seq RESTART WITH 1")


@pytest.fixture
def make_backend(alias: str) -> Iterator[Callable[[], DjangoModelBackend]]:
    """Backends over one database (``auth.User``/``auth.Group``), on empty tables."""
    _clean_events(alias)
    made: list[DjangoModelBackend] = []

    def make() -> DjangoModelBackend:
        made.append(DjangoModelBackend(using=alias))
        return made[-1]

    yield make
    for backend in made:
        backend.close()
    _clean_events(alias)
    clean_tables(alias)


def _raw(alias: str, sql: str) -> list[tuple[Any, ...]]:
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall()) if cursor.description else []


def test_an_event_rolls_back_with_the_app_transaction_around_its_write(
    make_backend: Callable[[], DjangoModelBackend], alias: str, engines: list[Engine]
) -> None:
    """The app calls the engine inside a transaction of its own that then fails: the user
    and its event are both gone; only the committed write is delivered."""
    from django.contrib.auth.models import User
    from django.db import transaction

    engine, got = listening(make_backend(), engines)
    # First the write that commits: the rolled-back one's number comes after it, so no
    # gap in the numbers keeps the reader waiting (PostgreSQL; see _clean_events).
    kept = create_user(engine, "kept")

    def app_view() -> None:
        with transaction.atomic(using=alias):
            rid = engine.users.create({"userName": "rolled-back"})["id"]
            assert (rid,) in _raw(alias, "SELECT resource_id FROM scim_outbox")  # written
            raise RuntimeError("the app's own step failed")

    with pytest.raises(RuntimeError):
        app_view()
    assert engine.events.wait_idle()
    assert [(e.kind, e.id) for e in got] == [("created", kept["id"])]
    assert list(User.objects.using(alias).values_list("username", flat=True)) == ["kept"]


def test_a_write_whose_event_cannot_be_stored_is_not_made(
    make_backend: Callable[[], DjangoModelBackend], alias: str, engines: list[Engine]
) -> None:
    """No write without its event: the outbox refusing the row rolls the user back."""
    from django.contrib.auth.models import User

    engine = Engine(make_backend())
    engines.append(engine)
    engine.events.add_handler(lambda event: None, name="app")  # the outbox is on
    # The next event number is taken already: the event's INSERT fails.
    if alias == "pg":
        (taken,) = _raw(alias, "SELECT nextval('scim_outbox_seq') + 1")[0]
    else:
        (taken,) = _raw(alias, "SELECT seq + 1 FROM scim_outbox_head")[0]
    _raw(
        alias,
        "INSERT INTO scim_outbox (seq, event_id, tenant, type, resource_id, kind, event) "
        f"VALUES ({int(taken)}, 'x', '', 'User', 'x', 'created', '{{}}')",
    )
    refused = call(engine, "POST", "/Users", {"schemas": [_USER], "userName": "alice"})
    assert refused.status == 500
    assert not User.objects.using(alias).filter(username="alice").exists()
    assert (
        call(engine, "GET", "/Users", query={"filter": 'userName eq "alice"'}).json["totalResults"]
        == 0
    )


def test_an_entra_deactivation_reaches_the_app_handler(
    make_backend: Callable[[], DjangoModelBackend], alias: str, engines: list[Engine]
) -> None:
    """Entra ID deactivates a user (``Replace active "False"``): the model's ``is_active``
    is False at once, and the app's handler gets a ``patched`` event saying so."""
    from django.contrib.auth.models import User

    engine = Engine(make_backend())
    engines.append(engine)
    revoked: list[str] = []

    def revoke_sessions(event: ChangeEvent) -> None:
        if event.resource_type == "User" and event.after and event.after.get("active") is False:
            revoked.append(event.after["userName"])

    engine.events.add_handler(revoke_sessions, name="revoke-sessions")
    engine.events.start()
    user = create_user(engine, "ada@example.com", active=True)
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    assert call(engine, "PATCH", f"/Users/{user['id']}", patch).status == 200
    assert User.objects.using(alias).get(username="ada@example.com").is_active is False
    assert engine.events.wait_idle()
    assert revoked == ["ada@example.com"]


def test_the_migrations_match_the_models() -> None:
    """``makemigrations --check``: the app's migrations (0002 adds the event tables,
    which are no models) describe its models exactly."""
    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "makemigrations", "scim2_core_django", check=True, dry_run=True, stdout=out, stderr=out
    )
    assert "No changes detected" in out.getvalue()


_WRITER = """
import os, signal, sys
import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "scim2_core_django"],
    DATABASES={"default": %r},
    USE_TZ=True,
)
django.setup()
from scim2_core import Engine
from scim2_core_django.backend import DjangoModelBackend

engine = Engine(DjangoModelBackend())
engine.events.add_handler(lambda event: None, name="app")  # registered; delivery never starts
for n in range(5):
    print(engine.users.create({"userName": f"user{n}"})["id"], flush=True)  # acknowledged
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_every_acknowledged_write_is_delivered_after_kill_9(
    make_backend: Callable[[], DjangoModelBackend], alias: str, engines: list[Engine]
) -> None:
    """A process writes through the engine and is killed with SIGKILL before it delivers
    anything: the next process delivers the event of every write it acknowledged."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from django.db import connections

    root = Path(__file__).resolve().parents[2]
    settings_dict = {k: v for k, v in connections[alias].settings_dict.items() if k.isupper()}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "adapters")])}
    done = subprocess.run(
        [sys.executable, "-c", _WRITER % (settings_dict,)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    acknowledged = done.stdout.split()
    assert len(acknowledged) == 5
    restarted, got = listening(make_backend(), engines, name="app")
    assert restarted.events.wait_idle()
    assert [e.id for e in got] == acknowledged
