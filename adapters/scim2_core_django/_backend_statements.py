"""The fixed SQL statements of :class:`~scim2_core_django.backend.DjangoModelBackend`
(written once per mapped type and connection, run on the DB-API cursor).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._backend_types import _INTEGER_PKS, _TEXT_FIELDS, _attname_field, _converters, _plain, _Type

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
        #: params: type, False, gparams, type, False; ``{}``: LIMIT/OFFSET. The listing's
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
        self.window = (
            f"SELECT ({count}), ({self.top}), {bk_cols}, {row_cols}{gcols} "
            f"FROM (SELECT b.{q('scim_id')} FROM {bk_table} b WHERE {live} {order} {{}}) w "
            f"INNER JOIN {probe} {to_row} {order}"
        )
        #: ``{}``: ``column = %s, ...``; params: their values, the bookkeeping row's pk
        self.save_bk = f"UPDATE {bk_table} SET {{}} WHERE {q(bk_model._meta.pk.column)} = %s"
        #: ``{field: statement}``: ``eq`` on a unique attribute's text field, through the
        #: unique index (params: type, attribute, key, type, False, value)
        self.probe: dict[str, str] = {}
        for u in t.uniques:
            if u.field is None or t.fields[u.field].get_internal_type() not in _TEXT_FIELDS:
                continue
            column = f"a.{q(t.fields[u.field].column)}"
            test = f"{column} = %s" if u.ref.target.case_exact else f"LOWER({column}) = %s"
            u_table = q(unique_model._meta.db_table)
            self.probe[u.field] = (
                f"SELECT {bk_cols}, {row_cols}{gcols} FROM {u_table} u INNER JOIN {bk_table} b "
                f"ON b.{q(bk_model._meta.pk.column)} = u.{q('resource_id')} {to_row} "
                f"WHERE u.{q('resource_type')} = %s AND u.{q('attribute')} = %s "
                f"AND u.{q('value')} = %s AND {live} "
                f"AND {column} IS NOT NULL AND {column} <> '' AND {test}"
            )  # no ORDER BY: one row at most (the unique constraint on the value)
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
        shown = f"g.{q(g.fields[display.field].column)}"
        pair = (
            f"json_build_array(gb.{q('scim_id')}, {shown})"
            if pg
            else (f"json_array(gb.{q('scim_id')}, {shown})")
        )
        agg = f"json_agg({pair})::text" if pg else f"json_group_array({pair})"
        columns.append(
            f"(SELECT {agg} FROM {q(through.db_table)} r "
            f"INNER JOIN {q(g.model._meta.db_table)} g "
            f"ON g.{q(g.model._meta.pk.column)} = r.{q(group_f.column)} "
            f"LEFT OUTER JOIN {q(backend._resource._meta.db_table)} gb "
            f"ON gb.{q('resource_type')} = %s "
            f"AND gb.{q('object_pk')} = CAST(r.{q(group_f.column)} AS {char}) "
            f"AND gb.{q('deleted')} = %s "
            f"WHERE r.{q(member_f.column)} = a.{q(t.model._meta.pk.column)})"
        )
        params.extend([g.name, False])
    return columns, params


def _groups_read(values: Sequence[Any]) -> list[dict[str, Any]] | None:
    """The entries of ``groups_of`` from the JSON arrays of ``_groups_columns`` (None
    when a group has no bookkeeping yet: ``groups_of`` then adopts it)."""
    out: list[dict[str, Any]] = []
    for value in values:
        for gid, name in json.loads(value) if value else ():
            if gid is None:
                return None
            entry: dict[str, Any] = {"value": gid}
            if isinstance(name, str) and name:
                entry["display"] = name
            out.append(entry)
    out.sort(key=lambda e: str(e["value"]))
    return out
