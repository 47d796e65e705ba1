"""``scim2-core events`` and ``scim2-core audit`` pointed at a SQLAlchemy app's own
database, where SQLAlchemyBackend keeps the outbox and the audit log (a SQLite file,
PostgreSQL): the counts and JSON lines a user sees, and the database left as it was."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sa_app import ACCOUNT, MODELS, TEAM

from scim2_core_sqlalchemy import SQLAlchemyBackend
from tests.events.cli_stores import assert_user_sees, populate, sqlite_state


def test_the_cli_reads_a_sqlalchemy_apps_outbox_and_audit_log(app_db: sa.Engine) -> None:
    backend = SQLAlchemyBackend(app_db, [ACCOUNT, TEAM], models=MODELS)
    try:
        ids = populate(backend)
    finally:
        backend.close()
    app_db.dispose()  # the app's pool closed, as when the app is stopped
    url = app_db.url.set(drivername=app_db.url.get_backend_name())
    db = url.render_as_string(hide_password=False)
    path = Path(app_db.url.database or "") if app_db.dialect.name == "sqlite" else None
    before = None if path is None else sqlite_state(path)
    assert_user_sees(db, ids)
    if path is not None:
        assert sqlite_state(path) == before
