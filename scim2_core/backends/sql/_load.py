"""Many new resources in one transaction (a bulk import), all or nothing: the rows of every
table written with one statement each, set-based, not one create at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from ..._errors import ScimError, UniquenessError
from .._outbox import change_events
from ._dialect import Dialect
from ._members import insert_members, with_members
from ._outbox import write_events
from ._rows import TypeInfo, add_count, loads, lookups, resource_row, uniques

__all__ = ["load_many", "load_new"]

NewRow = Callable[[TypeInfo, Mapping[str, Any]], tuple[str, str, Any, Any, list[Any]]]


def load_many(
    d: Dialect,
    info: TypeInfo,
    tenant: str | None,
    t: str,
    resources: Iterable[dict[str, Any]],
    new_row: NewRow,
    *,
    outbox: bool,
) -> int:
    """Store ``resources`` of ``info``'s type for ``tenant`` (kept as ``t``) in ONE write
    transaction; ``new_row`` makes each one's row. Raises
    :class:`~scim2_core.UniquenessError` (storing nothing) if an id or a unique value is
    taken, also within the batch; with ``outbox``, a ``created`` event per resource is stored
    in the same transaction. Returns the number stored."""
    rows: list[tuple[Any, ...]] = []
    unique_rows: list[tuple[str, ...]] = []
    lookup_rows: list[tuple[str, ...]] = []
    member_rows: list[tuple[str, list[Any]]] = []
    for resource in resources:
        rid, text, doc, fdoc, entries = new_row(info, resource)
        rows.append(resource_row(t, rid, info.rt, doc, text, fdoc))
        unique_rows.extend((s, info.rt.name, k, v, t, rid) for s, k, v in uniques(info, t, doc))
        lookup_rows.extend((t, info.rt.name, k, v, rid) for k, v in lookups(info, fdoc))
        if entries:
            member_rows.append((rid, entries))
    with d.transaction(write=True) as conn:
        try:
            d.executemany(
                conn,
                "INSERT INTO scim_resources "
                "(tenant, id, type, version, created, display, doc, fdoc) "
                f"VALUES (?, ?, ?, ?, ?, ?, ?, {d.json_param})",
                rows,
            )
            d.executemany(
                conn,
                "INSERT INTO scim_unique (scope, type, attr, value, tenant, id) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                unique_rows,
            )
        except Exception as exc:
            if d.is_integrity_error(exc):
                raise UniquenessError("An id or a unique value is already in use.") from exc
            raise
        if lookup_rows:
            d.executemany(
                conn,
                "INSERT INTO scim_lookup (tenant, type, attr, value, id) VALUES (?, ?, ?, ?, ?)",
                lookup_rows,
            )
        for rid, entries in member_rows:
            insert_members(d, conn, info, t, rid, entries, 1)
        if rows:
            add_count(d, conn, t, info.rt.name, len(rows))
        if outbox and rows:
            listed = dict(member_rows)  # a group's members are kept apart from its doc
            for chunk in range(0, len(rows), 1000):  # bounded: a thousand events at a time
                events = [
                    e
                    for row in rows[chunk : chunk + 1000]
                    for e in change_events(
                        tenant,
                        info.rt,
                        "created",
                        None,
                        with_members(loads(row[6]), listed.get(row[1], [])),
                    )
                ]
                paramstyle = "format" if d.name == "postgresql" else "qmark"
                write_events(conn, events, paramstyle=paramstyle)
    return len(rows)


#: The staging tables of :func:`load_new` (temporary: each connection has its own).
_STAGES: Final = (
    ("scim_stage_res", ("n", "id", "version", "created", "display", "doc", "fdoc")),
    ("scim_stage_unique", ("n", "scope", "attr", "value")),
    ("scim_stage_lookup", ("n", "attr", "value")),
)
_STAGE_DDL: Final = (
    "CREATE TEMP TABLE scim_stage_res (n BIGINT PRIMARY KEY, id TEXT NOT NULL, "
    "version TEXT NOT NULL, created TEXT NOT NULL, display TEXT, doc TEXT NOT NULL, "
    "fdoc TEXT NOT NULL)",
    "CREATE INDEX scim_stage_res_id ON scim_stage_res (id, n)",
    "CREATE TEMP TABLE scim_stage_unique (n BIGINT NOT NULL, scope TEXT NOT NULL, "
    "attr TEXT NOT NULL, value TEXT NOT NULL)",
    "CREATE INDEX scim_stage_unique_value ON scim_stage_unique (scope, attr, value, n)",
    "CREATE TEMP TABLE scim_stage_lookup (n BIGINT NOT NULL, attr TEXT NOT NULL, "
    "value TEXT NOT NULL)",
    "CREATE TEMP TABLE scim_stage_bad (n BIGINT NOT NULL, attr TEXT)",
)

#: The staged rows that cannot be stored, and why (``attr`` NULL: the id is taken):
#: an id or a unique value already stored, or taken by an earlier row of the batch.
_BAD_SQL: Final = (
    "INSERT INTO scim_stage_bad (n, attr) "
    "SELECT s.n, NULL FROM scim_stage_res s "
    "JOIN scim_resources r ON r.tenant = ? AND r.id = s.id "
    "UNION ALL SELECT s.n, NULL FROM scim_stage_res s WHERE EXISTS "
    "(SELECT 1 FROM scim_stage_res o WHERE o.id = s.id AND o.n < s.n) "
    "UNION ALL SELECT u.n, u.attr FROM scim_stage_unique u JOIN scim_unique x "
    "ON x.scope = u.scope AND x.type = ? AND x.attr = u.attr AND x.value = u.value "
    "UNION ALL SELECT u.n, u.attr FROM scim_stage_unique u WHERE EXISTS "
    "(SELECT 1 FROM scim_stage_unique o WHERE o.scope = u.scope AND o.attr = u.attr "
    "AND o.value = u.value AND o.n < u.n)"
)


def load_new(
    d: Dialect,
    info: TypeInfo,
    t: str,
    resources: Sequence[tuple[int, dict[str, Any]]],
    new_row: NewRow,
) -> tuple[int, dict[int, ScimError]]:
    """Store the new resources ``(n, resource)`` of ``info``'s type (none lists members)
    that can be stored, in ONE write transaction, and say why each other one cannot.

    The rows are staged (COPY on PostgreSQL), the conflicts found by set-based queries (an
    id or a unique value taken, RFC 7643 §2.3.2, also by an earlier row of the batch), and
    the rest moved with ``INSERT ... SELECT``. Returns the number stored and, per ``n``
    refused, its :class:`~scim2_core.UniquenessError` (409). A value taken by a concurrent
    write in between makes the database refuse the batch; it is then staged again.
    """
    rows: list[tuple[Any, ...]] = []
    unique_rows: list[tuple[Any, ...]] = []
    lookup_rows: list[tuple[Any, ...]] = []
    for n, resource in resources:
        rid, text, doc, fdoc, _entries = new_row(info, resource)
        row = resource_row(t, rid, info.rt, doc, text, fdoc)
        rows.append((n, rid, *row[3:]))
        unique_rows.extend((n, s, k, v) for s, k, v in uniques(info, t, doc))
        lookup_rows.extend((n, k, v) for k, v in lookups(info, fdoc))
    name = info.rt.name
    for attempt in range(3):
        try:
            with d.transaction(write=True) as conn:
                for table in (*(table for table, _ in _STAGES), "scim_stage_bad"):
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
                for ddl in _STAGE_DDL:
                    conn.execute(ddl)
                for (table, columns), staged in zip(
                    _STAGES, (rows, unique_rows, lookup_rows), strict=True
                ):
                    d.stage(conn, table, columns, staged)
                d.analyze_staged(conn, [table for table, _ in _STAGES])
                conn.execute(d.sql(_BAD_SQL), (t, name))
                found = conn.execute("SELECT n, attr FROM scim_stage_bad").fetchall()
                bad = {int(n): attr for n, attr in found}
                good = "s.n NOT IN (SELECT n FROM scim_stage_bad)"
                stored = conn.execute(
                    d.sql(
                        "INSERT INTO scim_resources "
                        "(tenant, id, type, version, created, display, doc, fdoc) "
                        "SELECT ?, s.id, ?, s.version, s.created, s.display, s.doc, "
                        f"CAST(s.fdoc AS {d.json_type}) FROM scim_stage_res s WHERE {good}"
                    ),
                    (t, name),
                ).rowcount
                conn.execute(
                    d.sql(
                        "INSERT INTO scim_unique (scope, type, attr, value, tenant, id) "
                        "SELECT u.scope, ?, u.attr, u.value, ?, s.id FROM scim_stage_unique u "
                        f"JOIN scim_stage_res s ON s.n = u.n WHERE {good}"
                    ),
                    (name, t),
                )
                conn.execute(
                    d.sql(
                        "INSERT INTO scim_lookup (tenant, type, attr, value, id) "
                        "SELECT DISTINCT ?, ?, u.attr, u.value, s.id FROM scim_stage_lookup u "
                        f"JOIN scim_stage_res s ON s.n = u.n WHERE {good}"
                    ),
                    (t, name),
                )
                if stored:
                    add_count(d, conn, t, name, stored)
            break
        except Exception as exc:
            if not d.is_integrity_error(exc) or attempt == 2:
                raise
    rejected: dict[int, ScimError] = {
        n: UniquenessError(
            f"The value of {attr!r} is already in use."
            if attr
            else "A resource with this id already exists."
        )
        for n, attr in sorted(bad.items())
    }
    return stored, rejected
