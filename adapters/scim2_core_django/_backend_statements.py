"""The fixed SQL statements of :class:`~scim2_core_django.backend.DjangoModelBackend`
(written once per mapped type and connection, run on the DB-API cursor).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._backend_types import (
    _INTEGER_PKS,
    _JSON_LOADS,
    _TEXT_FIELDS,
    _attname_field,
    _converters,
    _plain,
    _Type,
)

if TYPE_CHECKING:
    from ._backend_core import _Core


class _Statements:
    """The fixed statements of one mapped type, written once per database connection and
    run on its DB-API cursor with their parameters (as the SQLAlchemy backend runs its
    compiled reads): building and compiling a queryset costs several times what running
    one of these small statements does.

    Each reads the bookkeeping row and the app's row together, joined by primary key:
    ``a.pk = CAST(b.object_pk AS <pk type>)``, so the join probes the app's primary key
    index. Only for a plain model (see :meth:`DjangoModelBackend._statements`); any other
    model takes the ORM's path.
    """

    def __init__(self, backend: _Core, t: _Type, connection: Any) -> None:
        q = connection.ops.quote_name
        self.connection = connection
        model, bk_model, unique_model = t.model, backend._resource, backend._unique
        pk = model._meta.pk
        bk_fields = list(bk_model._meta.concrete_fields)
        mapped = [pk, *t.fields.values()]
        everything = list(model._meta.concrete_fields)
        self.width = len(bk_fields)
        self.bk_names = [f.attname for f in bk_fields]
        self.row_names = ["pk", *t.fields]
        self.all_names = [f.attname for f in everything]
        self.read_conv = _converters([*bk_fields, *mapped], connection)
        self.lock_conv = _converters([*bk_fields, *everything], connection)
        bk_cols = ", ".join(f"b.{q(f.column)}" for f in bk_fields)
        row_cols = ", ".join(f"a.{q(f.column)}" for f in mapped)
        all_cols = ", ".join(f"a.{q(f.column)}" for f in everything)
        bk_table, table = q(bk_model._meta.db_table), q(model._meta.db_table)
        to_row = (
            f"INNER JOIN {table} a "
            f"ON a.{q(pk.column)} = CAST(b.{q('object_pk')} AS {pk.cast_db_type(connection)})"
        )
        join = f"{bk_table} b {to_row}"
        #: The groups holding each row, as a JSON array of ``[group id, displayName]`` per
        #: group type (``groups_of`` then answers without a statement); params first.
        self.groups, self.gparams = _groups_columns(backend, t, connection)
        gcols = "".join(f", {c}" for c in self.groups)
        live = f"b.{q('resource_type')} = %s AND b.{q('deleted')} = %s"
        order = f"ORDER BY b.{q('created')} ASC, b.{q('scim_id')} ASC"
        by_id = f"WHERE b.{q('scim_id')} = %s AND {live}"
        #: params: id, type, False
        self.by_id = f"SELECT {bk_cols}, {row_cols}{gcols} FROM {join} {by_id}"
        locks = connection.features.has_select_for_update
        for_update = " " + connection.ops.for_update_sql() if locks else ""
        #: params: id, type, False; every column of the app's row (to make the instance)
        self.lock = f"SELECT {bk_cols}, {all_cols}{gcols} FROM {join} {by_id}{for_update}"
        self.top = f"SELECT MAX({q(pk.column)}) FROM {table}"
        count = f"SELECT COUNT(*) FROM {bk_table} b WHERE {live}"
        #: params: type, False: the listing's total, and MAX(pk) (see ``_adopt``)
        self.count_top = f"SELECT ({count}), ({self.top})"
        #: params: type, False, window_gparams, type, False; ``{}``: LIMIT/OFFSET. The
        #: listing's
        #: total, MAX(pk), and the window: its ids from the listing index alone (only the
        #: index's columns pass the rows skipped by the OFFSET, never the wide bookkeeping
        #: rows), then each row of the window probed by id (a LATERAL subquery with a
        #: LIMIT on PostgreSQL, so that it probes the unique index instead of hashing the
        #: whole table), their app rows by primary key and their groups, in one statement.
        probe = (
            f"LATERAL (SELECT * FROM {bk_table} b WHERE b.{q('scim_id')} = w.{q('scim_id')} "
            f"LIMIT 1) b ON 1 = 1"
            if connection.vendor == "postgresql"
            else f"{bk_table} b ON b.{q('scim_id')} = w.{q('scim_id')}"  # SQLite: no LATERAL
        )
        #: The window reads the primary keys of the groups holding each row (one array
        #: per group type, ``_group_keys_columns``), which ``group_names`` then resolves
        #: in one statement for the whole window: the per-row JSON of ``groups`` costs
        #: PostgreSQL ~15 µs a row (a 100-row page: ~1.5 ms), the arrays a fraction.
        #: On SQLite, which runs in the process and plans nothing ahead, the window keeps
        #: the JSON columns of ``groups`` (params: ``window_gparams``).
        self.group_keys: list[str] = []
        self.group_names: list[tuple[str, str]] = []
        self.window_gparams: list[Any] = []
        if connection.vendor == "postgresql":
            self.group_keys, self.group_names = _group_keys_columns(backend, t, connection)
            keys = "".join(f", {c}" for c in self.group_keys)
        else:
            keys, self.window_gparams = gcols, self.gparams
        self.window = (
            f"SELECT ({count}), ({self.top}), {bk_cols}, {row_cols}{keys} "
            f"FROM (SELECT b.{q('scim_id')} FROM {bk_table} b WHERE {live} {order} {{}}) w "
            f"INNER JOIN {probe} {to_row} {order}"
        )
        #: PostgreSQL, a window in the second half of the listing: the same, walking the
        #: index from its end (half the entries passed at most); ``{}``: ``window_limit``.
        self.window_desc: str | None = None
        if connection.vendor == "postgresql":
            desc = f"ORDER BY b.{q('created')} DESC, b.{q('scim_id')} DESC"
            self.window_desc = (
                f"WITH total AS (SELECT COUNT(*) AS n FROM {bk_table} b WHERE {live}) "
                f"SELECT (SELECT n FROM total), ({self.top}), {bk_cols}, {row_cols}{keys} "
                f"FROM (SELECT b.{q('scim_id')} FROM {bk_table} b WHERE {live} {desc} {{}}) w "
                f"INNER JOIN {probe} {to_row} {order}"
            )
        self.pg = connection.vendor == "postgresql"
        #: ``{}``: ``column = %s, ...``; params: their values, the bookkeeping row's pk
        self.save_bk = f"UPDATE {bk_table} SET {{}} WHERE {q(bk_model._meta.pk.column)} = %s"
        #: ``{field: statement}``: ``eq`` on a unique attribute's text field, through the
        #: unique index (params: type, attribute, key, type, False, value; the value is
        #: never empty)
        self.probe: dict[str, str] = {}
        for u in t.uniques:
            if u.field is None or t.fields[u.field].get_internal_type() not in _TEXT_FIELDS:
                continue
            column = f"a.{q(t.fields[u.field].column)}"
            test = f"{column} = %s" if u.ref.target.case_exact else f"LOWER({column}) = %s"
            u_table = q(unique_model._meta.db_table)
            # The taken value's row as a scalar subquery (one row at most: the unique
            # constraint on the value), so that the statement has the shape of ``by_id``
            # and is planned as fast (a third join costs PostgreSQL more to plan than to run).
            taken = (
                f"SELECT u.{q('resource_id')} FROM {u_table} u "
                f"WHERE u.{q('resource_type')} = %s AND u.{q('attribute')} = %s "
                f"AND u.{q('value')} = %s"
            )
            self.probe[u.field] = (
                f"SELECT {bk_cols}, {row_cols}{gcols} FROM {join} "
                f"WHERE b.{q(bk_model._meta.pk.column)} = ({taken}) AND {live} AND {test}"
            )  # no ORDER BY: one row at most; run for a value that is not empty only, which
            # the test then finds in no NULL or empty field (two tests fewer to plan)
        #: ``{}``: the ids' placeholders; params: ids, type, False: ``(id, app pk)`` of the
        #: live resources among ids whose app row exists (one statement, not two)
        self.pks_of = (
            f"SELECT b.{q('scim_id')}, a.{q(pk.column)} FROM {join} "
            f"WHERE b.{q('scim_id')} IN ({{}}) AND {live}"
        )
        #: a group type whose members' model is plain: its members with their ids and
        #: displays (``members_of``), and some named members (``some_members``)
        self.members_of: str | None = None
        self.some_members: str | None = None
        rel = t.relation
        if rel is not None and _plain(backend._types[rel.member_type], connection):
            through = rel.through._meta
            member_model = backend._types[rel.member_type].model
            r_member = q(through.get_field(_attname_field(through, rel.member_col)).column)
            r_group = q(through.get_field(_attname_field(through, rel.group_col)).column)
            r_pk = q(through.pk.column)
            r_table = q(through.db_table)
            char = connection.ops.cast_char_field_without_max_length
            d_table = q(backend._display._meta.db_table)
            #: params: member type, False, type, False, the groups' pks (``{}``)
            self.members_of = (
                f"SELECT r.{r_group}, m.{q('scim_id')}, d.{q('display')} FROM {r_table} r "
                f"LEFT OUTER JOIN {bk_table} m ON m.{q('resource_type')} = %s "
                f"AND m.{q('object_pk')} = CAST(r.{r_member} AS {char}) AND m.{q('deleted')} = %s "
                f"LEFT OUTER JOIN {bk_table} b ON b.{q('resource_type')} = %s "
                f"AND b.{q('object_pk')} = CAST(r.{r_group} AS {char}) AND b.{q('deleted')} = %s "
                f"LEFT OUTER JOIN {d_table} d ON d.{q('resource_id')} = b.{q('id')} "
                f"AND d.{q('member_id')} = m.{q('scim_id')} "
                f"WHERE r.{r_group} IN ({{}}) ORDER BY r.{r_pk}"
            )
            m_pk = member_model._meta.pk
            #: params: group pk, group's bookkeeping pk, ids (``{}``), member type, False:
            #: ``(id, app pk, relation row or NULL, display)`` of each live member named
            self.some_members = (
                f"SELECT m.{q('scim_id')}, a.{q(m_pk.column)}, r.{r_pk}, d.{q('display')} "
                f"FROM {bk_table} m INNER JOIN {q(member_model._meta.db_table)} a "
                f"ON a.{q(m_pk.column)} = CAST(m.{q('object_pk')} AS "
                f"{m_pk.cast_db_type(connection)}) "
                f"LEFT OUTER JOIN {r_table} r ON r.{r_member} = a.{q(m_pk.column)} "
                f"AND r.{r_group} = %s "
                f"LEFT OUTER JOIN {d_table} d ON d.{q('resource_id')} = %s "
                f"AND d.{q('member_id')} = m.{q('scim_id')} "
                f"WHERE m.{q('scim_id')} IN ({{}}) AND m.{q('resource_type')} = %s "
                f"AND m.{q('deleted')} = %s ORDER BY r.{r_pk}"
            )
        #: a group type: ``(statement, converters)`` of its memberships, for ``groups``
        self.memberships: tuple[str, list[tuple[int, list[Any], Any]]] | None = None
        display = t.bm.single(t.bm.rt.resolve_path("displayName")) if t.bm else None
        rel = t.relation
        member_pk = backend._types[rel.member_type].model._meta.pk if rel is not None else None
        if (
            rel is not None
            and display is not None
            and member_pk is not None
            and member_pk.get_internal_type() in _INTEGER_PKS
        ):
            through = rel.through._meta
            member_f = through.get_field(_attname_field(through, rel.member_col))
            group_f = through.get_field(_attname_field(through, rel.group_col))
            shown = t.fields[display.field]
            char = connection.ops.cast_char_field_without_max_length
            self.memberships = (
                f"SELECT r.{q(member_f.column)}, b.{q('scim_id')}, g.{q(shown.column)} "
                f"FROM {q(through.db_table)} r INNER JOIN {table} g "
                f"ON g.{q(pk.column)} = r.{q(group_f.column)} "
                f"LEFT OUTER JOIN {bk_table} b ON b.{q('resource_type')} = %s "
                f"AND b.{q('object_pk')} = CAST(r.{q(group_f.column)} AS {char}) "
                f"AND b.{q('deleted')} = %s "
                f"WHERE r.{q(member_f.column)} IN ({{}})",
                _converters([member_f, None, shown], connection),
            )

    def window_limit(self, start: int, count: int, backward: bool) -> str:
        """The LIMIT/OFFSET of :attr:`window` (or, ``backward``, of :attr:`window_desc`)
        for the results ``start`` (0-based) to ``start + count``.

        On PostgreSQL the OFFSET is a subquery, which the planner cannot read: told a
        large constant OFFSET, it estimates that sorting the whole listing beats walking
        the index to it, which on a table autovacuum has not visited yet (every index
        entry checked in the table) it does not (26 ms against 13 ms at 7,500 of 10,000
        rows, measured)."""
        if not self.pg:
            return str(self.connection.ops.limit_offset_sql(start, start + count))
        if not backward:
            return f"LIMIT {count:d} OFFSET (SELECT {start:d})"
        # the rows start..start+count-1 of the ascending order, counted from the end
        return (
            f"LIMIT GREATEST(LEAST({count:d}, (SELECT n FROM total) - {start:d}), 0) "
            f"OFFSET (SELECT GREATEST(n - {start:d} - {count:d}, 0) FROM total)"
        )


def _groups_columns(backend: _Core, t: _Type, connection: Any) -> tuple[list[str], list[Any]]:
    """``([column, ...], params)``: for each group type whose members are ``t``'s rows, a
    subquery giving the groups holding the row ``a`` as a JSON array of ``[group id,
    displayName]`` (RFC 7643 §4.1.2 ``groups``); none at all unless every such group type
    can be read so."""
    q = connection.ops.quote_name
    char = connection.ops.cast_char_field_without_max_length
    pg = connection.vendor == "postgresql"
    columns: list[str] = []
    params: list[Any] = []
    for g in backend._groups_holding(t):
        rel = g.relation
        if g.bm is None or rel is None:
            continue  # not served: groups_of skips it too
        display = g.bm.single(g.bm.rt.resolve_path("displayName"))
        if display is None or not _plain(g, connection):
            return [], []
        through = rel.through._meta
        member_f = through.get_field(_attname_field(through, rel.member_col))
        group_f = through.get_field(_attname_field(through, rel.group_col))
        group_col = f"r.{q(group_f.column)}"
        # Each group's id and displayName as scalar subqueries of the relation row (not
        # joins): PostgreSQL plans them in about two thirds of the time a three-table join
        # takes, and planning is most of such a read's cost on the server.
        gid = (
            f"(SELECT gb.{q('scim_id')} FROM {q(backend._resource._meta.db_table)} gb "
            f"WHERE gb.{q('resource_type')} = %s "
            f"AND gb.{q('object_pk')} = CAST({group_col} AS {char}) AND gb.{q('deleted')} = %s)"
        )
        shown = (
            f"(SELECT g.{q(g.fields[display.field].column)} FROM {q(g.model._meta.db_table)} g "
            f"WHERE g.{q(g.model._meta.pk.column)} = {group_col})"
        )
        pair = f"json_build_array({gid}, {shown})" if pg else f"json_array({gid}, {shown})"
        agg = f"json_agg({pair})::text" if pg else f"json_group_array({pair})"
        columns.append(
            f"(SELECT {agg} FROM {q(through.db_table)} r "
            f"WHERE r.{q(member_f.column)} = a.{q(t.model._meta.pk.column)})"
        )
        params.extend([g.name, False])
    return columns, params


def _group_keys_columns(
    backend: _Core, t: _Type, connection: Any
) -> tuple[list[str], list[tuple[str, str]]]:
    """``([column, ...], [(group type, statement), ...])`` (PostgreSQL): for each group
    type whose members are ``t``'s rows, a subquery giving the primary keys of the groups
    holding the row ``a`` as an array, and the statement giving
    ``(pk, id, displayName)`` of such groups (``{}``: the keys' placeholders; params:
    group type, False, the keys); none at all unless every such group type can be read
    so (as ``_groups_columns``)."""
    if not _groups_columns(backend, t, connection)[0]:
        return [], []
    q = connection.ops.quote_name
    char = connection.ops.cast_char_field_without_max_length
    columns: list[str] = []
    statements: list[tuple[str, str]] = []
    for g in backend._groups_holding(t):
        rel = g.relation
        if g.bm is None or rel is None:
            continue
        display = g.bm.single(g.bm.rt.resolve_path("displayName"))
        assert display is not None  # checked by _groups_columns
        through = rel.through._meta
        member_f = through.get_field(_attname_field(through, rel.member_col))
        group_f = through.get_field(_attname_field(through, rel.group_col))
        held = f"FROM {q(through.db_table)} r "
        held += f"WHERE r.{q(member_f.column)} = a.{q(t.model._meta.pk.column)}"
        column = f"r.{q(group_f.column)}"
        columns.append(f"ARRAY(SELECT {column} {held})")
        g_pk = q(g.model._meta.pk.column)
        statements.append(
            (
                g.name,
                f"SELECT g.{g_pk}, gb.{q('scim_id')}, g.{q(g.fields[display.field].column)} "
                f"FROM {q(g.model._meta.db_table)} g "
                f"LEFT OUTER JOIN {q(backend._resource._meta.db_table)} gb "
                f"ON gb.{q('resource_type')} = %s "
                f"AND gb.{q('object_pk')} = CAST(g.{g_pk} AS {char}) AND gb.{q('deleted')} = %s "
                f"WHERE g.{g_pk} IN ({{}})",
            )
        )
    return columns, statements


def _groups_read(values: Sequence[Any]) -> list[dict[str, Any]] | None:
    """The entries of ``groups_of`` from the JSON arrays of ``_groups_columns`` (None
    when a group has no bookkeeping yet: ``groups_of`` then adopts it)."""
    out: list[dict[str, Any]] = []
    for value in values:
        for gid, name in _JSON_LOADS(value) if value else ():
            if gid is None:
                return None
            entry: dict[str, Any] = {"value": gid}
            if isinstance(name, str) and name:
                entry["display"] = name
            out.append(entry)
    out.sort(key=lambda e: str(e["value"]))
    return out
