"""``scim2-core events`` and ``scim2-core audit`` read a database without changing it:
SQLBackend's, one holding only the outbox and audit tables (what the ORM backends create
in an app's database; tests/django_orm and tests/sqlalchemy run them over those), and
one holding none of them (a one-line error naming what is missing).
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from scim2_core.backends import SQLBackend
from scim2_core.backends.sql._outbox import AUDIT_DDL, AUDIT_EXCHANGE_DDL, OUTBOX_DDL

from .cli_stores import assert_user_sees, json_lines, populate, run_cli, sqlite_state

_OUTBOX = "scim_outbox, scim_outbox_consumers, scim_outbox_failed"


def _one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("scim2-core: ")
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in done.stderr


def test_sqlbackends_database_reads_as_before_and_stays_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "scim.db"
    backend = SQLBackend(f"sqlite:///{path}")
    ids = populate(backend)
    backend.close()
    before = sqlite_state(path)
    assert before[0] == "wal"
    assert_user_sees(f"sqlite:///{path}", ids)
    assert sqlite_state(path) == before


def test_an_empty_sqlite_file_is_a_one_line_error_and_stays_empty(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    path.touch()
    db = f"sqlite:///{path}"
    _one_line_error(run_cli("events", "--db", db), "no outbox in", str(path), _OUTBOX)
    _one_line_error(run_cli("audit", "--db", db), "no audit log in", "scim_audit")
    assert path.stat().st_size == 0
    assert sqlite_state(path) == ("delete", [], ["app.db"])


def test_a_database_with_only_the_outbox_reads_it_and_names_the_missing_audit_table(
    tmp_path: Path,
) -> None:
    """An app's own database (rollback journal, its own tables) where the outbox was
    created but no audit log: ``events`` answers, ``audit`` names ``scim_audit``."""
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE account (id INTEGER PRIMARY KEY, name TEXT)")
    for statement in OUTBOX_DDL:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO scim_outbox_consumers (consumer, position, owner, lease_until) "
        "VALUES ('app', 0, NULL, 0)"
    )
    conn.close()
    before = sqlite_state(path)
    db = f"sqlite:///{path}"
    done = run_cli("events", "--db", db)
    assert (done.returncode, done.stderr) == (0, "")
    assert json_lines(done.stdout) == [{"consumer": "app", "pending": 0, "failed": 0}]
    _one_line_error(run_cli("audit", "--db", db), "missing table scim_audit")
    assert sqlite_state(path) == before
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in (*AUDIT_DDL, *AUDIT_EXCHANGE_DDL):
        conn.execute(statement)
    conn.close()
    done = run_cli("audit", "--db", db)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_a_missing_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    for command in ("events", "audit"):
        _one_line_error(
            run_cli(command, "--db", f"sqlite:///{path}"), "no database file", "typo.db"
        )
    assert not path.exists()


def test_a_file_that_is_no_database_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, " * 20)
    for command in ("events", "audit"):
        _one_line_error(run_cli(command, "--db", f"sqlite:///{path}"), "file is not a database")
    assert path.read_text() == "not a database, " * 20


def test_tables_of_another_shape_are_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE scim_audit (seq BIGINT PRIMARY KEY, time TEXT NOT NULL)")
    for name in ("scim_outbox", "scim_outbox_consumers", "scim_outbox_failed"):
        conn.execute(f"CREATE TABLE {name} (seq BIGINT)")
    conn.close()
    before = sqlite_state(path)
    for command, what in (("events", "the outbox"), ("audit", "the audit log")):
        done = run_cli(command, "--db", f"sqlite:///{path}")
        _one_line_error(done, f"cannot read {what} in sqlite:///{path}", "no such column")
    assert sqlite_state(path) == before


@pytest.mark.parametrize("command", ["events", "audit"])
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--db", "memory://"], "memory:// keeps nothing between runs"),
        (["--db", "sqlite:///x.db", "--db-schema", "s"], "--db-schema applies to a postgresql"),
        (["--db", "mysql://localhost/x"], "unsupported database URL scheme"),
    ],
)
def test_what_cannot_hold_an_outbox_is_a_one_line_error(
    command: str, args: list[str], says: str, tmp_path: Path
) -> None:
    _one_line_error(run_cli(command, *args), says)


def test_a_time_that_is_no_rfc3339_is_a_usage_error_before_anything_is_opened(
    tmp_path: Path,
) -> None:
    done = run_cli("audit", "--db", f"sqlite:///{tmp_path / 'none.db'}", "--since", "yesterday")
    assert done.returncode == 2
    assert done.stderr.startswith("scim2-core: --since/--until:")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_postgresql_schema_reads_as_before(
    postgres_url: str, pg_schemas: Callable[[], str]
) -> None:
    schema = pg_schemas()
    backend = SQLBackend(postgres_url, schema=schema)
    ids = populate(backend)
    backend.close()
    assert_user_sees(postgres_url, ids, "--db-schema", schema)


@pytest.mark.postgres
def test_a_postgresql_schema_without_the_tables_is_an_error_and_is_not_created(
    postgres_url: str, pg_schemas: Callable[[], str]
) -> None:
    import psycopg

    schema = pg_schemas()
    done = run_cli("events", "--db", postgres_url, "--db-schema", schema)
    _one_line_error(done, f"schema {schema}", _OUTBOX)
    done = run_cli("audit", "--db", postgres_url, "--db-schema", schema)
    _one_line_error(done, "missing table scim_audit")
    with psycopg.connect(postgres_url) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    assert found is None


@pytest.mark.postgres
def test_an_empty_postgresql_database_is_an_error_and_stays_empty(postgres_database: str) -> None:
    import psycopg

    _one_line_error(run_cli("events", "--db", postgres_database), _OUTBOX)
    _one_line_error(run_cli("audit", "--db", postgres_database), "scim_audit")
    with psycopg.connect(postgres_database) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', "
            "'information_schema')"
        ).fetchone()
    assert tables == (0,)
