"""The SQL schema's versions, and bringing a database to the current one.

A database records its schema version in ``scim_schema``; :func:`migrate` applies every
missing step of :data:`MIGRATIONS` in order, in one transaction, and :func:`reindex` rebuilds
a type's equality index when the set of indexed attributes changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Final

from ..._errors import ConfigurationError
from ._dialect import Connection, Dialect
from ._outbox import AUDIT_DDL, AUDIT_EXCHANGE_DDL, OUTBOX_DDL, OUTBOX_SEQUENCE_DDL
from ._rows import TypeInfo, dumps, lookups

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "reindex", "schema_version"]

#: The schema version this code writes. Each entry of ``MIGRATIONS`` moves a
#: database from version ``n - 1`` to ``n``; a database is migrated forward on first use.
SCHEMA_VERSION: Final = 10

#: One step of a migration: a DDL/DML statement (``{json}`` names the dialect's JSON type),
#: or a function given the dialect and the open transaction, for what SQL alone cannot do.
Step = str | Callable[[Dialect, Connection], None]


# Schema version 1: resources, uniqueness and membership.
_V1: Final = (
    # One row per resource. ``tenant`` is '' for the single-tenant deployment (tenant None).
    # ``doc`` is the resource exactly as stored and returned; ``fdoc`` is the same document
    # with every caseExact=false string folded, which filters and sorting read.
    """CREATE TABLE scim_resources (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        type TEXT NOT NULL,
        version TEXT NOT NULL,
        created TEXT NOT NULL,
        display TEXT,
        doc TEXT NOT NULL,
        fdoc {json} NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    "CREATE INDEX scim_resources_order ON scim_resources (tenant, type, created, id)",
    # The database enforces uniqueness: one row per (scope, attribute, normalised value).
    # ``scope`` is 't:' + tenant for uniqueness "server" and 'g' for "global".
    """CREATE TABLE scim_unique (
        scope TEXT NOT NULL,
        type TEXT NOT NULL,
        attr TEXT NOT NULL,
        value TEXT NOT NULL,
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        PRIMARY KEY (scope, type, attr, value)
    )""",
    "CREATE INDEX scim_unique_owner ON scim_unique (tenant, id)",
    # Direct membership, indexed both ways: members.value eq / groups_of.
    """CREATE TABLE scim_members (
        tenant TEXT NOT NULL,
        group_id TEXT NOT NULL,
        member_id TEXT NOT NULL,
        PRIMARY KEY (tenant, group_id, member_id)
    )""",
    "CREATE INDEX scim_members_by_member ON scim_members (tenant, member_id, group_id)",
)

# Schema version 2: an equality index over selected attributes (userName, externalId, ...),
# one row per (folded) string value; rebuilt by the backend when the indexed set changes.
_V2: Final = (
    """CREATE TABLE scim_lookup (
        tenant TEXT NOT NULL,
        type TEXT NOT NULL,
        attr TEXT NOT NULL,
        value TEXT NOT NULL,
        id TEXT NOT NULL,
        PRIMARY KEY (tenant, type, attr, value, id)
    )""",
    "CREATE INDEX scim_lookup_owner ON scim_lookup (tenant, id)",
    "CREATE TABLE scim_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

# Schema version 3: the number of resources per tenant and type, kept by every create and
# delete in the same transaction, so that an unfiltered list (paging through every user,
# what identity providers do) does not count the whole table for ``totalResults``. The
# count is spread over ``count_slots`` rows so that concurrent writers on PostgreSQL do not
# queue on one row; a reader sums them. Filled from the existing rows on upgrade.
_V3: Final = (
    """CREATE TABLE scim_counts (
        tenant TEXT NOT NULL,
        type TEXT NOT NULL,
        slot INTEGER NOT NULL,
        n BIGINT NOT NULL,
        PRIMARY KEY (tenant, type, slot)
    )""",
    "INSERT INTO scim_counts (tenant, type, slot, n) "
    "SELECT tenant, type, 0, count(*) FROM scim_resources GROUP BY tenant, type",
)


def _move_members(d: Dialect, conn: Connection) -> None:
    """Schema version 4, the data: every group's ``members`` leave its document for its
    ``scim_members`` rows, in list order, with their other sub-attributes (as stored and
    folded: the stored ``fdoc`` already holds each member folded, at the same position).

    A group is a resource that has membership rows (every member with a ``value`` has one
    since version 1), so no resource type needs to be known here.
    """
    groups = conn.execute(
        "SELECT r.tenant, r.id, r.doc, r.fdoc FROM scim_resources r WHERE EXISTS "
        "(SELECT 1 FROM scim_members m WHERE m.tenant = r.tenant AND m.group_id = r.id)"
    ).fetchall()
    for tenant, gid, text, ftext in groups:
        doc = json.loads(text)
        fdoc = json.loads(ftext) if isinstance(ftext, str) else ftext
        members = doc.pop("members", None)
        fmembers = fdoc.pop("members", None)
        rows: list[tuple[object, ...]] = []
        seen: set[str] = set()
        if isinstance(members, list):
            folded = fmembers if isinstance(fmembers, list) else members
            for pos, (m, fm) in enumerate(zip(members, folded, strict=False), start=1):
                value = m.get("value") if isinstance(m, dict) else None
                if not isinstance(value, str) or value in seen:
                    continue
                seen.add(value)
                rows.append((tenant, gid, value, pos, dumps(m), dumps(fm)))
        conn.execute(
            d.sql("DELETE FROM scim_members WHERE tenant = ? AND group_id = ?"), (tenant, gid)
        )
        if rows:
            d.executemany(
                conn,
                "INSERT INTO scim_members (tenant, group_id, member_id, pos, entry, fentry) "
                f"VALUES (?, ?, ?, ?, ?, {d.json_param})",
                rows,
            )
        conn.execute(
            d.sql(
                f"UPDATE scim_resources SET doc = ?, fdoc = {d.json_param} "
                "WHERE tenant = ? AND id = ?"
            ),
            (dumps(doc), dumps(fdoc), tenant, gid),
        )


# Schema version 4: members live in ``scim_members`` only, so that adding or removing one is
# a row insert or delete whatever the group's size. ``pos`` keeps the list order (a new
# member gets the group's largest ``pos`` + 1), ``entry`` the member object as stored and
# ``fentry`` the same object folded (filters on members' sub-attributes read it).
_V4: Final[tuple[Step, ...]] = (
    "ALTER TABLE scim_members ADD COLUMN pos BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE scim_members ADD COLUMN entry TEXT NOT NULL DEFAULT '{{}}'",
    "ALTER TABLE scim_members ADD COLUMN fentry {json} NOT NULL DEFAULT '{{}}'",
    "CREATE INDEX scim_members_order ON scim_members (tenant, group_id, pos)",
    _move_members,
)

# Schema version 5: the transactional outbox (see :mod:`._outbox`): change events written
# in the same transaction as the change, each consumer's position and lease, and the events
# a consumer parked as failed.
_V5: Final[tuple[Step, ...]] = OUTBOX_DDL

# Schema version 6: the audit log, one row per request (see :mod:`._outbox`).
_V6: Final[tuple[Step, ...]] = AUDIT_DDL

# Schema version 7: the audit log keeps a refused request and its answer (see :mod:`._outbox`).
_V7: Final[tuple[Step, ...]] = AUDIT_EXCHANGE_DDL


def _outbox_sequence(d: Dialect, conn: Connection) -> None:
    """Schema version 8, PostgreSQL only: events numbered from a sequence, so concurrent
    writers do not queue on the counter row (see :mod:`._outbox`). SQLite keeps the row."""
    if d.name == "postgresql":
        for statement in OUTBOX_SEQUENCE_DDL:
            conn.execute(statement)


_V8: Final[tuple[Step, ...]] = (_outbox_sequence,)

# Schema version 9: a member added to or removed from a group (its ``groups`` changed, RFC
# 7644 §3.14) gets its next ``meta.version`` in ``version`` and its ``meta.lastModified`` in
# ``modified``, which reads, filters and sorts take over ``doc``'s ``meta``; its documents
# are not rewritten, so touching a 10k-member group's members is one narrow UPDATE. NULL
# (every existing row): the documents are current, so the upgrade changes no row.
_V9: Final[tuple[Step, ...]] = ("ALTER TABLE scim_resources ADD COLUMN modified TEXT",)


def _versions_table(d: Dialect, conn: Connection) -> None:
    """Schema version 10: ``scim_versions``, one small row per touched resource (see
    :data:`_V10`); WITHOUT ROWID on SQLite, so a row lives in its primary key's B-tree."""
    conn.execute(
        """CREATE TABLE scim_versions (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            version TEXT NOT NULL,
            modified TEXT NOT NULL,
            PRIMARY KEY (tenant, id)
        )"""
        + (" WITHOUT ROWID" if d.name == "sqlite" else "")
    )


# Schema version 10: a touched resource (a member added to or removed from a group, a group
# a member left by its delete) gets its next ``meta.version`` and ``meta.lastModified`` in a
# row of its own in ``scim_versions`` (tenant, id, version, modified), which reads, filters
# and sorts take over ``scim_resources``' ``version`` and ``doc``'s ``meta``: touching a
# 10k-member group's members writes 10k small rows instead of rewriting 10k resource rows.
# A write of the resource itself deletes its row (its documents are current again). The
# upgrade moves every row version 9 touched (``modified`` not NULL) with its version and
# time, so nothing is lost; ``scim_resources.modified`` stays, always NULL.
_V10: Final[tuple[Step, ...]] = (
    _versions_table,
    "INSERT INTO scim_versions (tenant, id, version, modified) "
    "SELECT tenant, id, version, modified FROM scim_resources WHERE modified IS NOT NULL",
    "UPDATE scim_resources SET modified = NULL WHERE modified IS NOT NULL",
)

MIGRATIONS: Final[tuple[tuple[Step, ...], ...]] = (
    _V1,
    _V2,
    _V3,
    _V4,
    _V5,
    _V6,
    _V7,
    _V8,
    _V9,
    _V10,
)


def schema_version(d: Dialect) -> int:
    """The schema version stored in the database (0 if it has no schema yet)."""
    conn = d.connection()
    if not d.table_exists(conn, "scim_schema"):
        return 0
    row = conn.execute("SELECT version FROM scim_schema").fetchone()
    return int(row[0]) if row else 0


def migrate(d: Dialect) -> None:
    """Create the schema or migrate it forward to :data:`SCHEMA_VERSION`.

    The version is read inside the write transaction, after the schema lock: several
    processes starting at once on one new database create and migrate it one after the
    other, each seeing what the previous one committed. Raises
    :class:`~scim2_core.ConfigurationError` for a database newer than this code.
    """
    with d.transaction(write=True) as conn:
        if d.schema_lock:
            conn.execute(d.schema_lock)
        if not d.table_exists(conn, "scim_schema"):
            conn.execute("CREATE TABLE scim_schema (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO scim_schema (version) VALUES (0)")
        version = int(conn.execute("SELECT version FROM scim_schema").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"the database has schema version {version}, newer than this "
                f"scim2-core supports ({SCHEMA_VERSION}); upgrade scim2-core"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for step in MIGRATIONS[target - 1]:
                if isinstance(step, str):
                    conn.execute(d.ddl(step))
                else:
                    step(d, conn)
            conn.execute(d.sql("UPDATE scim_schema SET version = ?"), (target,))
        d.plan_statistics(conn)


def reindex(d: Dialect, types: Mapping[str, TypeInfo]) -> None:
    """Rebuild the equality index of every type whose indexed attribute set changed
    (and after the migration that created the index table)."""
    for name, info in types.items():
        signature = dumps(sorted(key for key, _ in info.indexed))
        setting = f"lookup:{name}"
        with d.transaction(write=True) as conn:
            if d.schema_lock:
                conn.execute(d.schema_lock)
            row = conn.execute(
                d.sql("SELECT value FROM scim_settings WHERE name = ?"), (setting,)
            ).fetchone()
            if row is not None and row[0] == signature:
                continue
            conn.execute(d.sql("DELETE FROM scim_lookup WHERE type = ?"), (name,))
            cur = conn.execute(
                d.sql("SELECT tenant, id, fdoc FROM scim_resources WHERE type = ?"), (name,)
            )
            rows: list[tuple[str, str, str, str, str]] = []
            for tenant, rid, fdoc in cur.fetchall():
                fd = json.loads(fdoc) if isinstance(fdoc, str) else fdoc
                rows.extend((tenant, name, key, value, rid) for key, value in lookups(info, fd))
            if rows:
                d.executemany(
                    conn,
                    "INSERT INTO scim_lookup (tenant, type, attr, value, id) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    rows,
                )
            conn.execute(d.sql("DELETE FROM scim_settings WHERE name = ?"), (setting,))
            conn.execute(
                d.sql("INSERT INTO scim_settings (name, value) VALUES (?, ?)"),
                (setting, signature),
            )
