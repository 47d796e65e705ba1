"""The SQL of one search: the ``WHERE`` of the filter, the ``ORDER BY`` of the sort, and how
the total is counted (RFC 7644 §3.4.2): built apart from running it, so :class:`SQLBackend`
only runs it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .._base import Position, SearchQuery, Seek
from ._dialect import Dialect
from ._filter import Translator
from ._rows import META_COLUMNS, VERSIONS_JOIN, TypeInfo

__all__ = ["position_key", "search_sql", "seek_sql"]


def search_sql(
    d: Dialect, translator: Translator, info: TypeInfo, tenant_key: str, query: SearchQuery
) -> tuple[str, list[Any], str, list[Any], str, list[Any]]:
    """``(base, base_params, order, order_params, count_sql, count_params)`` of ``query``:
    ``base`` is the ``FROM ... WHERE ...`` of the matching resources, ``order`` the
    ``ORDER BY`` (default: creation order, then id), ``count_sql`` counts the matches (the
    kept per-type count when there is no filter, not a scan)."""
    where, params, _probes = translator.where(
        info.rt,
        query.filter,
        tenant_key,
        {k for k, _ in info.indexed},
        info.has_members,
    )
    # The join is dropped by the planner (a unique key, nothing read from it) unless a
    # filter, a sort or the select list reads the versions of touched rows.
    base = f"FROM scim_resources r{VERSIONS_JOIN} WHERE r.tenant = ? AND r.type = ?"
    base_params: list[Any] = [tenant_key, info.rt.name]
    if where:
        base += f" AND ({where})"
        base_params.extend(params)
    if query.sort is not None:
        order, order_params = translator.order_by(info.rt, query.sort)
    else:
        order, order_params = "r.created, r.id", []
    if info.has_members:
        # A filter or sort on members other than ``members.value eq`` reads them as
        # part of the folded document, assembled from their rows.
        if where and translator.reads_members(info.rt, query.filter):
            base = d.members_fdoc(base)
        if (
            query.sort is not None
            and query.sort.path.urn is None
            and (query.sort.path.attribute.name == "members")
        ):
            order = d.members_fdoc(order)
    if where:
        count_sql, count_params = f"SELECT count(*) {base}", base_params
    else:
        # Every resource of the type: the kept count, not a scan (scim_counts).
        count_sql = "SELECT COALESCE(SUM(n), 0) FROM scim_counts WHERE tenant = ? AND type = ?"
        count_params = [tenant_key, info.rt.name]
    return base, base_params, order, order_params, count_sql, count_params


def seek_sql(
    d: Dialect,
    translator: Translator,
    info: TypeInfo,
    tenant_key: str,
    query: SearchQuery,
    seek: Seek,
) -> tuple[str, list[Any]]:
    """``(sql, params)`` of one keyset page (RFC 9865 cursors as positions): the rows
    ``(doc, id, key)`` right after ``seek.position`` (before it, ``backward``, nearest
    first), at most ``query.count + 1`` of them (the extra one says "more").

    The position is compared with the same expression the rows are ordered by, so the
    database's own order decides (collation, types, NULL as the greatest value, ties by
    id), and the page costs the same at the millionth resource as at the first: without
    ``sortBy`` it is a range scan of the ``(tenant, type, created, id)`` index.
    """
    base, params, _order, _order_params, _count, _count_params = search_sql(
        d, translator, info, tenant_key, query
    )
    backward = seek.backward
    at = seek.position
    key_params: list[Any] = []
    if query.sort is None:
        key = "r.created"
        direction = "DESC" if backward else "ASC"
        order = f"r.created {direction}, r.id {direction}"
        if at is not None:
            base += f" AND (r.created, r.id) {'<' if backward else '>'} (?, ?)"
            params = [*params, str(at.key), at.id]
    else:
        key, key_params = translator.sort_expr(info.rt, query.sort)
        if query.sort.path.urn is None and query.sort.path.attribute.name == "members":
            key = d.members_fdoc(key)
        key_desc = query.sort.descending != backward
        nulls = "DESC NULLS FIRST" if key_desc else "ASC NULLS LAST"
        order = f"{key} {nulls}, r.id {'DESC' if backward else 'ASC'}"
        if at is not None:
            cond, cond_params = _after(key, key_params, at, key_desc, "<" if backward else ">")
            base += f" AND {cond}"
            params = [*params, *cond_params]
    sql = f"SELECT r.doc, r.id, {key}, {META_COLUMNS} {base} ORDER BY {order} LIMIT ?"
    # The key's parameters twice: once selected, once in ORDER BY.
    return sql, [*key_params, *params, *key_params, query.count + 1]


def _after(
    key: str, key_params: list[Any], at: Position, key_desc: bool, id_op: str
) -> tuple[str, list[Any]]:
    """The condition "strictly after ``at``" for rows ordered by ``key`` (``key_desc``:
    descending) with NULL as the greatest value, then by id (``id_op`` ``>`` or ``<``)."""
    if at.key is None:
        if key_desc:  # every value comes after "no value", then the NULLs after the id
            return f"({key} IS NOT NULL OR r.id {id_op} ?)", [*key_params, at.id]
        return f"({key} IS NULL AND r.id {id_op} ?)", [*key_params, at.id]
    op = "<" if key_desc else ">"
    tie = f"({key} = ? AND r.id {id_op} ?)"
    if key_desc:
        return (
            f"({key} {op} ? OR {tie})",
            [*key_params, at.key, *key_params, at.key, at.id],
        )
    return (
        f"({key} {op} ? OR {key} IS NULL OR {tie})",
        [*key_params, at.key, *key_params, *key_params, at.key, at.id],
    )


def position_key(value: Any) -> str | int | float | bool | None:
    """A sort key as read from the database, as a position keeps it (a JSON scalar)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
