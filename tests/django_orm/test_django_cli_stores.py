"""``scim2-core events`` and ``scim2-core audit`` pointed at a Django app's own database,
where DjangoModelBackend keeps the outbox and the audit log (SQLite, PostgreSQL): the
counts and JSON lines a user sees, and the database left as the app made it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scim2_core_django.backend import DjangoModelBackend
from tests.events.cli_stores import assert_user_sees, populate, sqlite_state

_EVENT_TABLES = ("scim_outbox", "scim_outbox_consumers", "scim_outbox_failed", "scim_audit")


def _clean_events(alias: str) -> None:
    from django.db import connections

    with connections[alias].cursor() as cursor:
        for table in _EVENT_TABLES:
            cursor.execute(f"DELETE FROM {table}")
        cursor.execute("UPDATE scim_outbox_head SET seq = 0")
        if connections[alias].vendor == "postgresql":
            cursor.execute("ALTER SEQUENCE scim_outbox_seq RESTART WITH 1")


@pytest.fixture
def app_db(alias: str) -> Iterator[str]:
    """The ``--db`` URL of the app's database ``alias``, outbox and audit log empty."""
    from django.db import connections

    settings = connections[alias].settings_dict
    if connections[alias].vendor == "sqlite":
        url = f"sqlite:///{settings['NAME']}"
    else:
        url = f"postgresql://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/"
        url += settings["NAME"]
    _clean_events(alias)
    yield url
    _clean_events(alias)


def test_the_cli_reads_a_django_apps_outbox_and_audit_log(alias: str, app_db: str) -> None:
    backend = DjangoModelBackend(using=alias)
    try:
        ids = populate(backend)
    finally:
        backend.close()
    path = Path(app_db.removeprefix("sqlite:///")) if app_db.startswith("sqlite:") else None
    before = None if path is None else sqlite_state(path)
    assert before is None or before[0] == "delete"  # Django's default rollback journal
    assert_user_sees(app_db, ids)
    if path is not None:
        # Still the app's rollback journal (not switched to WAL), no table added.
        assert sqlite_state(path) == before
