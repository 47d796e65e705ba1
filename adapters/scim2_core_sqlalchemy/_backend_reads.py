"""The statements a read runs, built once per mapped type instead of once per request.

Building a Core ``select()`` (labels, joins, comparisons) costs more than running it on
SQLite; a :class:`ReadPlan` holds, per mapped type, the join of the app's table with the
bookkeeping, the selected columns in a fixed order, and the whole statement of a read by
SCIM id, so that a ``GET`` builds nothing and a search builds only its ``WHERE`` and
``ORDER BY``. Rows come back as tuples and are cut into the bookkeeping part and the app
row's part by position.

The read by id, the most frequent statement, is compiled once for the app's dialect
(:class:`Prepared`) and run on the connection's DB-API cursor, the column types' own result
processors applied: SQLAlchemy's per-execution work (cache key, execution context, result
metadata) costs more than the statement itself. It runs on the connection the backend
checked out of the app's engine, in the same transaction as the rest of the call; the
engine's ``before_cursor_execute`` events do not see it. The statements of a member add or
remove (the writes of one ``PATCH``) are prepared the same way, at their first use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa

from ._backend_expressions import Compiler
from ._backend_tables import Tables
from ._models import ModelType

__all__ = [
    "PLAIN_BK",
    "GroupsOfPlan",
    "Link",
    "Prepared",
    "ReadPlan",
    "group_entries",
    "sa_conn",
]


class Link:
    """One connection checked out of the app's pool for a read or a request: the
    prepared statements (:class:`Prepared`) run on its DB-API connection, and the
    SQLAlchemy :class:`~sqlalchemy.Connection` around it (:attr:`conn`) is made only when
    a read needs one (building it and its bookkeeping costs more than a read by id on
    SQLite). :meth:`close` returns the connection to the pool, whichever way it was used.

    With ``kept``, the connection is one the backend keeps for a thread
    (:mod:`._backend_kept`): only prepared reads run on it, never a SQLAlchemy
    ``Connection``."""

    __slots__ = ("dbapi", "engine", "fairy", "kept", "made")

    def __init__(self, engine: sa.Engine, fairy: Any, *, kept: bool = False) -> None:
        self.engine = engine
        #: The pool's proxy of the connection, and the driver's connection behind it.
        self.fairy = fairy
        self.dbapi = fairy.dbapi_connection
        #: The SQLAlchemy connection, once :attr:`conn` has made it.
        self.made: sa.Connection | None = None
        self.kept = kept

    @property
    def conn(self) -> sa.Connection:
        """The SQLAlchemy connection on this link's connection (made at the first use)."""
        made = self.made
        if made is None:
            if self.kept:
                raise AssertionError("a kept read connection runs prepared reads only")
            made = self.made = sa.Connection(self.engine, connection=self.fairy)
        return made

    def close(self) -> None:
        """Return the connection to the app's pool (which rolls back what is left open)."""
        made = self.made
        if made is not None:
            made.close()
        else:
            self.fairy.close()


def _dbapi(conn: sa.Connection | Link) -> Any:
    """The driver's connection under ``conn``."""
    if type(conn) is Link:
        return conn.dbapi
    return conn.connection.dbapi_connection  # type: ignore[union-attr]


class Prepared:
    """A statement (a ``SELECT``, or an ``INSERT``/``UPDATE``/``DELETE`` run by
    :meth:`run`) compiled once for one dialect, run on the DB-API cursor (see the module
    docstring). Its parameters go through their types' bind processors (on SQLite, the
    JSON and boolean ones); no parameter may be an expanding ``IN``."""

    def __init__(self, stmt: Any, dialect: sa.Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        #: The values of the statement's own bound literals, by parameter name.
        self.fixed: dict[str, Any] = dict(compiled.params)
        self.order = tuple(compiled.positiontup or ()) if compiled.positional else None
        binds = (
            (name, bind.type.dialect_impl(dialect).bind_processor(dialect))
            for name, bind in ((b.key, b) for b in compiled.binds.values())
        )
        #: ``(parameter name, processor)`` of the parameters whose type has one.
        self.bind_procs = tuple((n, p) for n, p in binds if p is not None)
        selected = stmt.selected_columns if isinstance(stmt, sa.Select) else ()
        procs = (c.type.dialect_impl(dialect).result_processor(dialect, None) for c in selected)
        #: ``(position, processor)`` of the columns that have one (on SQLite, the JSON and
        #: boolean ones): the other values are used as the driver gives them.
        self.procs = tuple((i, p) for i, p in enumerate(procs) if p is not None)

    def one_param(self, name: str) -> None:
        """Prepare :meth:`first_of` for a statement whose only parameter is ``name``."""
        values = dict(self.fixed)
        for n, proc in self.bind_procs:
            v = values.get(n)
            if v is not None and n != name:
                values[n] = proc(v)
        self._param_proc = next((p for n, p in self.bind_procs if n == name), None)
        if self.order is not None:
            self._template: Any = [values[n] for n in self.order]
            self._at: Any = self.order.index(name)
        else:
            self._template, self._at = values, name

    def first_of(self, conn: Link, value: Any) -> list[Any] | None:
        """:meth:`first` with the one parameter :meth:`one_param` named: the arguments
        made from a template, the row fetched alone, its values through their columns'
        processors (the read by id, the most frequent statement: nothing else done)."""
        proc = self._param_proc
        if proc is not None and value is not None:
            value = proc(value)
        args = self._template.copy()
        args[self._at] = value
        cursor = conn.dbapi.cursor()
        try:
            cursor.execute(self.sql, args)
            row = cursor.fetchone()
        finally:
            cursor.close()  # on SQLite, this ends the statement's read
        if row is None:
            return None
        cells = list(row)
        for i, p in self.procs:
            v = cells[i]
            if v is not None:
                cells[i] = p(v)
        return cells

    def _args(self, params: dict[str, Any]) -> Any:
        values = {**self.fixed, **params}
        for name, proc in self.bind_procs:
            v = values.get(name)
            if v is not None:
                values[name] = proc(v)
        return tuple(values[n] for n in self.order) if self.order is not None else values

    def run(self, conn: sa.Connection | Link, **params: Any) -> int:
        """Execute a statement that returns no rows; the number of rows it changed."""
        cursor = _dbapi(conn).cursor()
        try:
            cursor.execute(self.sql, self._args(params))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def first(self, conn: sa.Connection | Link, **params: Any) -> Sequence[Any] | None:
        """The first row, each value through its column type's result processor."""
        found = self.rows(conn, 1, **params)
        return found[0] if found else None

    def rows(
        self, conn: sa.Connection | Link, limit: int | None = None, /, **params: Any
    ) -> list[Sequence[Any]]:
        """The rows (at most ``limit``), each value through its column's result processor."""
        args = self._args(params)
        cursor = _dbapi(conn).cursor()
        try:
            cursor.execute(self.sql, args)
            raw = cursor.fetchall() if limit is None else cursor.fetchmany(limit)
        finally:
            cursor.close()
        procs = self.procs
        if not procs:
            return list(raw)
        out: list[Sequence[Any]] = []
        for row in raw:
            cells = list(row)
            for i, p in procs:
                v = cells[i]
                if v is not None:
                    cells[i] = p(v)
            out.append(cells)
        return out


def largest_keys(t: ModelType, kept: sa.FromClause) -> tuple[Any, Any]:
    """The largest primary key of the app's table of ``t`` and the largest adopted one
    (``kept``: the bookkeeping table or an alias of it), as two scalar subqueries that
    correlate with nothing (columns of any statement). With an integer key, the app's
    rows above the second are its new rows (``Adoption._adopt``)."""
    return (
        sa.select(sa.func.max(t.pk)).correlate(None).scalar_subquery(),
        sa.select(sa.func.max(kept.c.object_int))
        .where(kept.c.resource_type == t.name)
        .correlate(None)
        .scalar_subquery(),
    )


#: The bookkeeping columns of a plain read by id (:attr:`ReadPlan.plain`), in its order.
PLAIN_BK: Final = ("scim_id", "version", "created", "last_modified", "content_hash", "extras")


class ReadPlan:
    """One mapped type's read statements (see the module docstring)."""

    def __init__(
        self, t: ModelType, tables: Tables, compiler: Compiler, dialect: sa.Dialect
    ) -> None:
        #: The bookkeeping table under the alias every search's conditions use.
        self.r = r = tables.resource.alias("r")
        self.joined = t.table.join(r, compiler.owner(t, r, t.pk))
        #: The bookkeeping columns' names, then ``_pk`` and the mapped fields: the order of
        #: :attr:`columns` and of the dicts :meth:`split` makes.
        self.bk_names = tuple(c.name for c in r.columns)
        self.field_names = ("_pk", *t.columns)
        self.columns: tuple[Any, ...] = (
            *(c.label(f"_r_{c.name}") for c in r.columns),
            t.pk.label("_f__pk"),
            *(c.label(f"_f_{n}") for n, c in t.columns.items()),
        )
        self.live = r.c.deleted == sa.false()
        self.by_id = (
            sa.select(*self.columns)
            .select_from(self.joined)
            .where(
                r.c.scim_id == sa.bindparam("scim_id"),
                r.c.resource_type == t.name,
                r.c.deleted == sa.false(),
            )
        )
        self.prepared_by_id = Prepared(self.by_id, dialect)
        # The read by id that writes nothing (``_get_plain``): the bookkeeping columns a
        # resource shows (:data:`PLAIN_BK`), then the mapped fields, in ``t.columns``'
        # order; the row cut by position (:meth:`plain_row`), no dict of the bookkeeping.
        plain_bk = [r.c[name] for name in PLAIN_BK]
        self.plain_names = tuple(t.columns)
        #: Where the mapped fields end (the groups columns follow, when read).
        self.plain_end = len(plain_bk) + len(self.plain_names)
        #: The positions of :attr:`ModelType.hash_fields` in a plain row.
        self.plain_hash_at = tuple(len(plain_bk) + self.plain_names.index(f) for f in t.hash_fields)
        self.plain = (
            sa.select(
                *(c.label(f"_p_{c.name}") for c in plain_bk),
                *(c.label(f"_f_{n}") for n, c in t.columns.items()),
            )
            .select_from(self.joined)
            .where(self.by_id.whereclause)  # type: ignore[arg-type]
        )
        self.prepared_plain = Prepared(self.plain, dialect)
        self.prepared_plain.one_param("scim_id")
        #: The same with the groups columns (:meth:`read_groups`), if read.
        self.prepared_plain_groups: Prepared | None = None
        #: The same, both rows locked for a write (``FOR UPDATE`` on PostgreSQL).
        self.prepared_lock = Prepared(self.by_id.with_for_update(), dialect)
        self.dialect = dialect
        #: The default-ordered page of ``<field> eq <value>`` on a unique column, per field
        #: (:meth:`Compiler.unique_eq`), compiled at its first use.
        self.unique_eq_pages: dict[str, Prepared] = {}
        #: By path of a filter ``<path> eq "<string>"`` that takes that page: its
        #: statement and whether the ``key`` and ``value`` parameters are the value as
        #: given (else lowercased), learnt from its first translation.
        self.unique_eq_shapes: dict[Any, tuple[Prepared, tuple[bool, bool]]] = {}
        kept = tables.resource
        #: The largest primary key of the app's table and the largest adopted one (with
        #: an integer key: rows above the second are the app's new rows).
        self.largest_keys = sa.select(*largest_keys(t, kept))
        self.prepared_largest_keys = Prepared(self.largest_keys, dialect)
        #: The number of live resources of this type (a search without a filter).
        self.prepared_count = Prepared(
            sa.select(sa.func.count()).select_from(self.joined).where(self.live), dialect
        )

        #: The number of the app's rows, of the live bookkeeping rows of this type and of
        #: its deactivated ones (a short range of the page index, not a second scan of
        #: every row): a page without filter or sort trusts the bookkeeping's index
        #: (:attr:`prepared_index_page`) when the app's rows are as many as the last two.
        def kept_count(deleted: bool) -> Any:
            flag = sa.true() if deleted else sa.false()
            return (
                sa.select(sa.func.count())
                .select_from(kept)
                .where(kept.c.resource_type == t.name, kept.c.deleted == flag)
                .scalar_subquery()
            )

        self.prepared_sync = Prepared(
            sa.select(
                sa.select(sa.func.count()).select_from(t.table).scalar_subquery(),
                kept_count(False),
                kept_count(True),
            ),
            dialect,
        )
        # The default-ordered window of the live bookkeeping rows, cut on their index
        # alone (the row ids only: the index covers them, so the rows the offset skips are
        # never read), then joined with their bookkeeping rows and the app's rows.
        cut = (
            sa.select(kept.c.id)
            .where(kept.c.resource_type == t.name, kept.c.deleted == sa.false())
            .order_by(kept.c.created, compiler.collate(kept.c.scim_id))
            .offset(sa.bindparam("page_offset", type_=sa.BigInteger()))
            .limit(sa.bindparam("page_limit", type_=sa.BigInteger()))
            .subquery("w")
        )
        #: That window, in :attr:`columns`' order (:meth:`split` cuts its rows).
        self.index_page = (
            sa.select(*r.columns, t.pk, *t.columns.values())
            .select_from(cut.join(r, r.c.id == cut.c.id).join(t.table, compiler.owner(t, r, t.pk)))
            .order_by(r.c.created, compiler.collate(r.c.scim_id))
        )
        self.prepared_index_page = Prepared(self.index_page, dialect)
        self.type = t
        #: The ``groups`` columns (:meth:`GroupsOfPlan.pairs`) when the type is a member of
        #: groups and they can be read with it (:meth:`read_groups`); else empty, and the
        #: statements below are None.
        self.groups: tuple[Any, ...] = ()
        #: :attr:`prepared_by_id` and :attr:`prepared_index_page` with the groups columns.
        self.prepared_by_id_groups: Prepared | None = None
        self.prepared_index_page_groups: Prepared | None = None
        #: The number of the app's rows and of bookkeeping rows of this type.
        self.counts = sa.select(
            sa.select(sa.func.count()).select_from(t.table).scalar_subquery(),
            sa.select(sa.func.count())
            .select_from(kept)
            .where(kept.c.resource_type == t.name)
            .scalar_subquery(),
        )

    def read_groups(self, plans: Sequence[GroupsOfPlan]) -> None:
        """Read the groups holding a resource of this type with it, in the same statement:
        one scalar subquery per group type (``plans``) after the row's columns."""
        if not plans or not all(p.aggregates for p in plans):
            return
        self.groups = tuple(p.pairs(self.type, f"g{i}") for i, p in enumerate(plans))
        self.prepared_by_id_groups = Prepared(self.by_id.add_columns(*self.groups), self.dialect)
        self.prepared_plain_groups = Prepared(self.plain.add_columns(*self.groups), self.dialect)
        self.prepared_plain_groups.one_param("scim_id")
        self.prepared_index_page_groups = Prepared(
            self.index_page.add_columns(*self.groups), self.dialect
        )

    def window(self, where: Sequence[Any], order: Sequence[Any], *, total: bool) -> sa.Select[Any]:
        """The page statement: the rows of ``where`` in ``order``, the window from the bind
        parameters ``page_offset`` and ``page_limit``; with ``total``, the count of all
        matches as the last column (a window count computed before LIMIT)."""
        columns = list(self.columns)
        if total:
            columns.append(sa.func.count().over().label("_total"))
        return (
            sa.select(*columns)
            .select_from(self.joined)
            .where(*where)
            .order_by(*order)
            .offset(sa.bindparam("page_offset", type_=sa.BigInteger()))
            .limit(sa.bindparam("page_limit", type_=sa.BigInteger()))
        )

    def plain_row(self, values: Sequence[Any]) -> tuple[dict[str, Any], str]:
        """The app row's part of a plain row (``{field: value}``) and the text its
        change hash is made of (:func:`~._backend_state.hash_text`)."""
        row = dict(zip(self.plain_names, values[len(PLAIN_BK) : self.plain_end], strict=True))
        return row, repr([values[i] for i in self.plain_hash_at])

    def split(self, values: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(bookkeeping row, app row)`` of one row of :attr:`columns`."""
        n = len(self.bk_names)
        return (
            dict(zip(self.bk_names, values[:n], strict=True)),
            dict(zip(self.field_names, values[n : n + len(self.field_names)], strict=True)),
        )


def group_entries(pairs: Sequence[Any]) -> list[dict[str, Any]]:
    """What ``groups_of`` gives for one resource, from the JSON texts of
    :meth:`GroupsOfPlan.pairs` (one per group type): ``{"value": group id, "display":
    name}`` entries (``display`` when the group has a name), in the order of the ids."""
    out: list[dict[str, Any]] = []
    for text in pairs:
        if not text or text == "[]":
            continue
        for gid, name in json.loads(text):
            entry: dict[str, Any] = {"value": gid}
            if isinstance(name, str) and name:
                entry["display"] = name
            out.append(entry)
    if len(out) > 1:
        out.sort(key=lambda e: str(e["value"]))
    return out


class GroupsOfPlan:
    """The groups of one group type that hold given members, as one statement built at
    binding: the members' bookkeeping rows, the association table, the group's table and
    its bookkeeping, joined. Rows are ``(member id, group id, group extras, display)``.

    ``User.groups`` is derived on every read of a user (RFC 7643 §4.1.2: "groups ...
    derived from the groups the user belongs to"): a ``GET`` of one user runs
    :attr:`one`, prepared like the read by id; more ids run :meth:`many` (an ``IN`` of
    one parameter per id, prepared too, once per number of ids)."""

    def __init__(
        self,
        group: ModelType,
        member: ModelType,
        tables: Tables,
        compiler: Compiler,
        dialect: sa.Dialect,
    ) -> None:
        rel = group.relation
        assert rel is not None
        r = tables.resource
        rm, rg = r.alias("rm"), r.alias("rg")
        display = group.bound.single(group.bound.rt.resolve_path("displayName"))
        #: Whether the fourth column is the mapped ``displayName`` (else: in the extras).
        self.mapped_display = display is not None
        shown = group.columns[display.field] if display is not None else sa.null()
        member_on = compiler.owner(member, rm, rel.member_col)
        kind: Any = rm.c.resource_type
        if not compiler.pg:
            # SQLite: the members' rows are found by scim_id; a bare test of their type
            # would let the planner walk every member of the type per group instead
            # (`x || ''` keeps it off the type's indexes, as the SQLite docs advise).
            kind = rm.c.resource_type.op("||")(sa.literal("", sa.String()))
            key = rm.c.object_int if member.int_pk else rm.c.object_pk
            pk = rel.member_col if member.int_pk else sa.cast(rel.member_col, sa.String)
            member_on = sa.and_(kind == member.name, key == pk)
        joined = (
            rm.join(rel.table, member_on)
            .join(group.table, group.pk == rel.group_col)
            .join(rg, compiler.owner(group, rg, group.pk))
        )
        # The group's extras hold its displayName when no column does; else they are
        # not read (decoding them is most of a page's groups otherwise).
        extras = sa.null() if display is not None else rg.c.extras
        base = (
            sa.select(rm.c.scim_id, rg.c.scim_id, extras, shown.label("_display"))
            .select_from(joined)
            .where(
                kind == member.name,
                rm.c.deleted == sa.false(),
                rg.c.deleted == sa.false(),
            )
        )
        self.one = Prepared(base.where(rm.c.scim_id == sa.bindparam("scim_id")), dialect)
        #: Whether :meth:`pairs` may be a subquery of a read of the member's table (a
        #: group type on the member's own table would be correlated with it).
        self.aggregates = group.table is not member.table
        self._group = group
        self._pg = compiler.pg
        self._base = base
        self._rm = rm
        self._rg = r
        self._owner = compiler.owner
        self._dialect = dialect
        #: The statement for ``n`` ids (``id0`` ... ``id<n-1>``), by ``n``, compiled at its
        #: first use: a page of users asks for the groups of each of its ids.
        self._many: dict[int, Prepared] = {}

    def pairs(self, member: ModelType, name: str) -> Any:
        """A scalar subquery of a read of ``member``'s app rows: one JSON array text of
        ``[group id, display]``, one per group of this type holding the outer row (in no
        order; ``NULL`` or ``[]`` for none). What :meth:`GroupsOfPlan.entry` gives, for
        ``get_with_groups`` and the pages that read the groups with the users (RFC 7643
        §4.1.2: ``groups`` is derived from the groups' members). ``name``: the alias of
        the group's bookkeeping in it (unique in the statement)."""
        group, rel = self._group, self._group.relation
        assert rel is not None
        g = self._rg.alias(name)
        display = group.bound.single(group.bound.rt.resolve_path("displayName"))
        shown: Any
        if display is not None:
            shown = group.columns[display.field]
        elif self._pg:
            shown = g.c.extras.op("->")(sa.literal("displayName", sa.String()))
        else:  # a string as a string, any other JSON value as itself
            shown = sa.func.json_extract(g.c.extras, "$.displayName")
        if self._pg:
            agg: Any = sa.cast(
                sa.func.json_agg(sa.func.json_build_array(g.c.scim_id, shown)), sa.Text
            )
        else:
            agg = sa.func.json_group_array(sa.func.json_array(g.c.scim_id, shown))
        return (
            sa.select(agg)
            .select_from(
                rel.table.join(group.table, group.pk == rel.group_col).join(
                    g, self._owner(group, g, group.pk)
                )
            )
            .where(rel.member_col == member.pk, g.c.deleted == sa.false())
            .correlate(member.table)
            .scalar_subquery()
            .label(name)
        )

    def many(self, conn: sa.Connection | Link, ids: Sequence[str]) -> list[Sequence[Any]]:
        """The rows of the members ``ids`` (at most a chunk of them), run like :attr:`one`."""
        prepared = self._many.get(len(ids))
        if prepared is None:
            wanted = [sa.bindparam(f"id{i}", type_=sa.String()) for i in range(len(ids))]
            prepared = Prepared(self._base.where(self._rm.c.scim_id.in_(wanted)), self._dialect)
            self._many[len(ids)] = prepared
        params: dict[str, Any] = {f"id{i}": v for i, v in enumerate(ids)}
        return prepared.rows(conn, **params)

    def entry(self, row: Sequence[Any]) -> dict[str, Any]:
        """The ``groups`` entry of one row (RFC 7643 §4.1.2: value, display)."""
        entry: dict[str, Any] = {"value": row[1]}
        name = row[3] if self.mapped_display else (row[2] or {}).get("displayName")
        if isinstance(name, str) and name:
            entry["display"] = name
        return entry


def sa_conn(conn: sa.Connection | Link) -> sa.Connection:
    """The SQLAlchemy connection of ``conn`` (made now if ``conn`` is a :class:`Link`
    without one yet)."""
    return conn.conn if isinstance(conn, Link) else conn
