"""The outbox and the audit log, in the app's database (SQLite and PostgreSQL).

The tables are those of scim2-core's own SQL store (``scim2_core.backends.sql``:
``OUTBOX_DDL``, ``AUDIT_DDL``, ``AUDIT_EXCHANGE_DDL`` and, on PostgreSQL,
``OUTBOX_SEQUENCE_DDL``), so that its writer (``write_events``) and readers
(``SQLEventStore``, ``SQLAuditStore``) work on them unchanged. The statements are written
out here, not imported: a migration must mean the same thing for ever, and a later change
of those tables gets a migration of its own. They are not Django models (nothing in the
app queries them through the ORM), so ``makemigrations`` has nothing to say about them.
Other database vendors get no tables (the backend refuses ``enable_outbox`` there).
"""

from typing import Any

from django.db import migrations  # type: ignore[import-untyped]

TABLES = (
    """CREATE TABLE scim_outbox (
        seq BIGINT PRIMARY KEY,
        event_id TEXT NOT NULL,
        tenant TEXT NOT NULL,
        type TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        event TEXT NOT NULL
    )""",
    "CREATE TABLE scim_outbox_head (one INTEGER PRIMARY KEY, seq BIGINT NOT NULL)",
    "INSERT INTO scim_outbox_head (one, seq) VALUES (1, 0)",
    """CREATE TABLE scim_outbox_consumers (
        consumer TEXT PRIMARY KEY,
        position BIGINT NOT NULL,
        owner TEXT,
        lease_until DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE scim_outbox_failed (
        consumer TEXT NOT NULL,
        seq BIGINT NOT NULL,
        attempts INTEGER NOT NULL,
        error TEXT NOT NULL,
        failed_at DOUBLE PRECISION NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (consumer, seq)
    )""",
    """CREATE TABLE scim_audit (
        seq BIGINT PRIMARY KEY,
        time TEXT NOT NULL,
        principal TEXT,
        tenant TEXT,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        resource_type TEXT,
        resource_id TEXT,
        status INTEGER NOT NULL,
        scim_type TEXT,
        request_id TEXT,
        duration_ms DOUBLE PRECISION NOT NULL,
        change TEXT,
        exchange TEXT
    )""",
    "CREATE INDEX scim_audit_time ON scim_audit (time)",
    "CREATE INDEX scim_audit_resource ON scim_audit (resource_id, time)",
    "CREATE INDEX scim_audit_principal ON scim_audit (principal, time)",
    "CREATE TABLE scim_audit_head (one INTEGER PRIMARY KEY, seq BIGINT NOT NULL)",
    "INSERT INTO scim_audit_head (one, seq) VALUES (1, 0)",
)

#: PostgreSQL numbers events from a sequence, so that concurrent writers do not queue on
#: one counter row (see ``scim2_core.backends.sql._outbox``).
POSTGRESQL_ONLY = (
    "CREATE SEQUENCE scim_outbox_seq AS BIGINT",
    "SELECT setval('scim_outbox_seq', GREATEST(seq, 1), seq > 0) FROM scim_outbox_head",
)

DROPPED = (
    "scim_audit_head",
    "scim_audit",
    "scim_outbox_failed",
    "scim_outbox_consumers",
    "scim_outbox_head",
    "scim_outbox",
)


def create_tables(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in ("sqlite", "postgresql"):
        return
    for statement in TABLES + (POSTGRESQL_ONLY if vendor == "postgresql" else ()):
        schema_editor.execute(statement)


def drop_tables(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in ("sqlite", "postgresql"):
        return
    if vendor == "postgresql":
        schema_editor.execute("DROP SEQUENCE IF EXISTS scim_outbox_seq")
    for table in DROPPED:
        schema_editor.execute(f"DROP TABLE IF EXISTS {table}")


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies = [("scim2_core_django", "0001_initial")]

    operations = [migrations.RunPython(create_tables, drop_tables)]
