"""The reads of :class:`~._backend.SQLAlchemyBackend`: resources made from the app's
rows, the bookkeeping and the association table, and the pages of the searches that take
a fast path (``userName eq``, a page without filter or sort)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

import sqlalchemy as sa

from scim2_core import (
    InvalidValueError,
    NotFoundError,
)
from scim2_core.backends import (
    Page,
    SearchQuery,
    missing_members_error,
)
from scim2_core.filter import Compare
from scim2_core.mapping import translate

from ._backend_adopt import Adoption, _none_new
from ._backend_expressions import UNSET
from ._backend_reads import Link, Prepared, ReadPlan, group_entries, sa_conn
from ._backend_state import _CHUNK, _chunks, _dict, _hash, _version, hash_text
from ._backend_writes import _PREPARED_IDS, _visible
from ._models import ModelType

#: Larger offsets and counts than any table holds, and than LIMIT/OFFSET can carry
#: (64-bit signed on SQLite and PostgreSQL) once added together.
_MAX_WINDOW: Final = 2**62

_R = TypeVar("_R")

#: The longest value the unique index is probed with (:meth:`Compiler.unique_eq`).
_PROBE_MAX: Final = 255


class Rows(Adoption):
    """Reads of rows and pages (see the module docstring)."""

    def _unique_eq_page(
        self, conn: sa.Connection | Link, t: ModelType, plan: ReadPlan, query: SearchQuery
    ) -> Page | None:
        """The page of a ``userName eq`` (an ``eq`` on a unique column, default order): one
        statement, compiled once per field, run on the cursor; None for any other search.

        A row found is live and adopted (the statement joins the bookkeeping), so the
        check for rows the app inserted (:meth:`_adopt`) runs only when nothing is found,
        and the statement again after it. (An empty answer past the first page leaves the
        count to the general path.)"""
        statement = self._unique_eq_statement(t, plan, query)
        if statement is None:
            return None
        prepared, params = statement
        found = prepared.rows(conn, **params)
        if not found:
            if query.offset > 0:
                return None
            self._adopt(conn, t)
            found = prepared.rows(conn, **params)
            if not found:
                return Page(total=0)
        return self._unique_eq_window(conn, t, plan, query, found, refresh=True)

    def _unique_eq_window(
        self,
        link: sa.Connection | Link,
        t: ModelType,
        plan: ReadPlan,
        query: SearchQuery,
        found: Sequence[Sequence[Any]],
        *,
        refresh: bool,
    ) -> Page:
        """The page of the row (or none) a ``userName eq`` found: it is all the matches,
        so it is the total, and the page is cut from it in Python (RFC 7644 §3.4.2.4: an
        ``startIndex`` past the results is an empty page with the total)."""
        window = found[max(query.offset, 0) :][: query.count]
        groups_at = len(plan.columns) if plan.groups else None
        return self._page(link, t, plan, window, len(found), groups_at, refresh=refresh)

    def _unique_eq_plain(self, t: ModelType, plan: ReadPlan, query: SearchQuery) -> Page | None:
        """A type without members: :meth:`_unique_eq_page` when it writes nothing (its
        rows unchanged by the app, or none and no new row of the app to adopt), in the
        shortest way (:meth:`_plain`); else None, and the general search runs."""
        statement = self._unique_eq_statement(t, plan, query)
        if statement is None:
            return None
        return self._plain(lambda link: self._plain_page(link, t, plan, query, *statement))

    def _plain(self, read: Callable[[Link], _R]) -> _R:
        """``read`` (prepared statements that write nothing) on the connection of the
        request scope when it has one, else on the thread's kept connection
        (:mod:`._backend_kept`), else on one of the app's pool: the scope's, checked out
        now, or one for this read alone (on SQLite under the backend's write lock, as
        every read that may write).

        A kept connection that the database dropped is discarded and the read runs on the
        app's pool (whose ``pre_ping``, if the app set it, checks its connection)."""
        scope = getattr(self._local, "scope", None)
        if scope is not None and scope.link is not None:
            return read(scope.link)
        kept = self._kept
        if kept is not None:
            link = kept.link()
            if link is not None:
                try:
                    found = read(link)
                except Exception as exc:
                    if not self._lost(exc, link):
                        kept.done(link)
                        raise
                    kept.discard()
                else:
                    kept.done(link)
                    return found
        if scope is not None:
            scoped = self._scoped_link()
            assert scoped is not None
            return read(scoped)
        lock = self._write_lock if self._sqlite else None
        if lock is not None:
            lock.acquire()
        try:
            link = self._link()
            try:
                return read(link)
            finally:
                link.close()
        finally:
            if lock is not None:
                lock.release()

    def _lost(self, exc: Exception, link: Link) -> bool:
        """Whether ``exc``, raised by the driver on ``link``, says the connection is gone."""
        dialect = self.engine.dialect
        if not isinstance(exc, dialect.loaded_dbapi.Error):
            return False
        return bool(dialect.is_disconnect(exc, link.dbapi, None))

    def _plain_page(
        self,
        link: Link,
        t: ModelType,
        plan: ReadPlan,
        query: SearchQuery,
        prepared: Prepared,
        params: dict[str, Any],
    ) -> Page | None:
        found = prepared.rows(link, **params)
        if not found:
            if query.offset <= 0 and self._nothing_to_adopt(link, t):
                return Page(total=0)
            return None
        fields = t.hash_fields
        for values in found:
            bk, row = plan.split(values)
            if _hash(row, fields) != bk["content_hash"]:
                return None  # moved by the app: the general read moves its version first
        return self._unique_eq_window(link, t, plan, query, found, refresh=False)

    def _unique_eq_statement(
        self, t: ModelType, plan: ReadPlan, query: SearchQuery
    ) -> tuple[Prepared, dict[str, Any]] | None:
        """The statement of :meth:`_unique_eq_page` and its parameters, or None when the
        search is not a ``userName eq``."""
        f = query.filter
        assert f is not None
        if query.count <= 0 or query.offset >= _MAX_WINDOW:
            return None
        # The shape of the filter (an ``eq`` of a string on one path) decides whether it
        # takes this path and how its value becomes the parameters: known after the
        # first request of each shape, without translating the filter again.
        shape = f.path if type(f) is Compare and f.op == "eq" and type(f.value) is str else None
        known = plan.unique_eq_shapes.get(shape) if shape is not None else None
        prepared: Prepared | None
        if known is not None and len(f.value) <= _PROBE_MAX:  # type: ignore[union-attr, arg-type]
            value: str = f.value  # type: ignore[union-attr, assignment]
            prepared, (key_exact, value_exact) = known
            lowered = value.lower()
            params: dict[str, Any] = {
                "key": value if key_exact else lowered,
                "value": value if value_exact else lowered,
            }
        else:
            unique_eq = self._compiler.unique_eq(t, plan.r, translate(f, t.bound))
            if unique_eq is None:
                return None
            fast, condition, params, exact = unique_eq
            prepared = self._unique_eq_prepared(plan, fast, condition)
            if shape is not None:
                plan.unique_eq_shapes[shape] = (prepared, exact)
        return prepared, params

    def _unique_eq_prepared(
        self, plan: ReadPlan, fast: str, condition: Callable[[], Any]
    ) -> Prepared:
        """The statement of a ``userName eq`` on the field ``fast``, compiled once: the
        rows of :attr:`ReadPlan.columns` whose bookkeeping id is the one the unique index
        holds for the value (a scalar subquery of a unique key: one row at most, hence no
        ``ORDER BY``, window or count, which cost SQLite more than the probes), then the
        groups holding each (a scalar subquery per group type: the engine renders them,
        ``Page.groups``, without a second read)."""
        prepared = plan.unique_eq_pages.get(fast)
        if prepared is None:
            rows = sa.select(*plan.columns, *plan.groups).select_from(plan.joined)
            prepared = Prepared(rows.where(plan.live, condition()), plan.dialect)
            plan.unique_eq_pages[fast] = prepared
        return prepared

    def _page(
        self,
        conn: sa.Connection | Link,
        t: ModelType,
        plan: ReadPlan,
        found: Sequence[Sequence[Any]],
        total: int,
        groups_at: int | None = None,
        *,
        refresh: bool = True,
    ) -> Page:
        """The page of the rows ``found`` (of :attr:`ReadPlan.columns`); with
        ``groups_at``, the position of their :attr:`ReadPlan.groups` columns (the page's
        :attr:`Page.groups`)."""
        pks = []
        rows: dict[Any, dict[str, Any]] = {}
        bks: dict[str, Mapping[str, Any]] = {}
        groups: dict[str, list[dict[str, Any]]] | None = None if groups_at is None else {}
        for values in found:
            bk, row = plan.split(values)
            pks.append(row["_pk"])
            rows[row["_pk"]] = row
            bks[bk["object_pk"]] = bk
            if groups is not None:
                groups[bk["scim_id"]] = group_entries(values[groups_at:])
        resources = self._read_rows(conn, t, pks, bks=bks, rows=rows, owned=True, refresh=refresh)
        return Page(total=total, resources=resources, groups=groups)

    def _index_page(
        self, conn: sa.Connection | Link, t: ModelType, plan: ReadPlan, query: SearchQuery
    ) -> Page | None:
        """A page without filter or sort, cut on the bookkeeping's index and joined with
        the app's rows of the page only; None when the bookkeeping may hold rows the app
        deleted (the join of every row then decides, and the total stays exact).

        The bookkeeping is trusted when it has as many rows of the type as the app's table
        (the test :meth:`_adopt` makes too: a row the app deleted beside one it inserted
        below the largest key, both with raw SQL, is missed by both), and the page is
        checked: a row of the window whose app row is gone sends the search to the join.
        """
        if query.filter is not None or query.sort is not None:
            return None
        counts = plan.prepared_sync.first(conn)
        assert counts is not None
        app_rows, total, deactivated = counts
        if app_rows != total + deactivated:
            return None
        # RFC 7644 §3.4.2.4: an offset past the results is an empty page.
        if query.count <= 0 or query.offset >= total:
            return Page(total=total)
        prepared = plan.prepared_index_page_groups or plan.prepared_index_page
        found = prepared.rows(
            conn, page_offset=max(query.offset, 0), page_limit=min(query.count, total)
        )
        if len(found) != min(query.count, total - max(query.offset, 0)):
            return None
        groups_at = len(plan.columns) if plan.prepared_index_page_groups else None
        return self._page(conn, t, plan, found, total, groups_at)

    def _get_plain(
        self, t: ModelType, plan: ReadPlan, groups: bool, id: str
    ) -> tuple[dict[str, Any] | None, Sequence[Any]] | None:
        """The read by id of a resource read without members, when it writes nothing:
        ``(resource, the groups columns read)`` (empty without ``groups``), ``(None, ())``
        when there is no such resource, or None when the read has more to do (the app
        changed the row: its version moves first) and the caller's general read must run.

        The most frequent request, so it takes the shortest way: one statement
        (:attr:`ReadPlan.prepared_plain`, only the columns a resource shows) on the
        connection :meth:`_plain` gives, no SQLAlchemy ``Connection`` and no read
        bookkeeping (a lone ``SELECT`` outside a transaction is its own snapshot, and
        there is nothing to commit)."""
        prepared = plan.prepared_plain_groups if groups else plan.prepared_plain
        assert prepared is not None
        found = self._plain(lambda link: prepared.first_of(link, id))
        if found is None:
            return None, ()
        row, hashed = plan.plain_row(found)
        scim_id, version, created, last_modified, digest, extras = found[:6]
        if hash_text(hashed) != digest:
            return None  # moved by the app: the general read moves the version first
        meta = extras.get("meta")
        meta = dict(meta) if meta else {}
        if UNSET in extras:
            resource = t.bound.read(*_visible(row, extras), owned=True)
        else:  # nothing to hide: the row and the extras just read are ours
            resource = t.bound.read(row, extras, owned=True)
        resource["id"] = scim_id
        meta.setdefault("resourceType", t.name)
        meta["created"] = created
        meta["lastModified"] = last_modified
        meta["version"] = _version(version)
        resource["meta"] = meta
        return resource, found[plan.plain_end :]

    # One pass that joins a page's app rows, bookkeeping and members, each part read only
    # when the caller does not already hold it (the optional arguments): the branches are
    # those parts. Splitting it is on the list with the read-path speed work.
    def _read_rows(  # noqa: C901
        self,
        link: sa.Connection | Link,
        t: ModelType,
        pks: Sequence[Any],
        *,
        bks: Mapping[str, Mapping[str, Any]] | None = None,
        rows: dict[Any, dict[str, Any]] | None = None,
        members: dict[Any, list[tuple[int, dict[str, Any]]]] | None = None,
        refresh: bool = True,
        owned: bool = False,
        checks: Sequence[Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The resources of the app's rows ``pks`` (in that order; missing ones skipped).
        With ``owned``, the rows and bookkeeping given are the caller's to give away (just
        read): their extras become the resources instead of being copied. ``checks``: of
        one group, what ``_group_reads`` read beside it (see :meth:`_member_lists`).

        With ``refresh``, a row whose mapped columns no longer have the hash SCIM last saw
        was changed by the app: its version and lastModified move first (RFC 7644 §3.14).
        """
        if not pks:
            return []
        r = self._tables.resource
        if rows is None:
            rows = self._rows(sa_conn(link), t, pks)
        if bks is None:
            conn = sa_conn(link)
            found: dict[str, Mapping[str, Any]] = {}
            for chunk in _chunks([t.pk_text(pk) for pk in rows]):
                for kept in conn.execute(
                    sa.select(r).where(
                        r.c.resource_type == t.name,
                        r.c.object_pk.in_(chunk),
                        r.c.deleted == sa.false(),
                    )
                ):
                    found[kept.object_pk] = _dict(kept)
            bks = found
        displays: dict[tuple[Any, str], str] = {}
        fresh_members = members is None  # read here: their dicts are ours to give
        #: Each group's members, in order (``members`` without the order keys).
        lists: dict[Any, list[dict[str, Any]]] = {}
        if t.relation is not None:
            displayed = True  # whether the groups may have members' displays
            if members is None:
                lists, displayed = self._member_lists(link, t, list(rows), checks)
            else:
                lists = {gpk: [m for _, m in entries] for gpk, entries in members.items()}
            if lists and displayed:
                d = self._tables.display
                rids = [bk["id"] for bk in bks.values()]
                if len(rids) == 1:  # a read of one group
                    shown = self._prepared(
                        ("displays",),
                        lambda: sa.select(d.c.resource_id, d.c.member_id, d.c.display).where(
                            d.c.resource_id == sa.bindparam("rid")
                        ),
                    )
                    for rid, member_id, display in shown.rows(link, rid=rids[0]):
                        displays[(rid, member_id)] = display
                    rids = []
                for chunk in _chunks(rids):
                    for rid, member_id, display in (
                        sa_conn(link)
                        .execute(
                            sa.select(d.c.resource_id, d.c.member_id, d.c.display).where(
                                d.c.resource_id.in_(chunk)
                            )
                        )
                        .all()
                    ):
                        displays[(rid, member_id)] = display
        out = []
        fields, read = t.hash_fields, t.bound.read
        for pk in pks:
            row = rows.get(pk)
            bk = bks.get(str(pk)) if row is not None else None  # ModelType.pk_text
            if row is None or bk is None:
                continue
            if refresh:
                digest = _hash(row, fields)
                if digest != bk["content_hash"]:
                    bk = self._app_changed(sa_conn(link), t, bk, row, digest)
            extras = bk["extras"]
            meta = extras.get("meta")
            meta = dict(meta) if meta else {}
            if UNSET in extras or not owned:
                resource = read(*_visible(row, extras), owned=owned)
            else:  # nothing to hide or copy: the row and the extras just read are ours
                resource = read(row, extras, owned=True)
            resource["id"] = bk["scim_id"]
            listed = lists.get(pk) if lists else None
            if listed:
                resource["members"] = listed if fresh_members else [dict(m) for m in listed]
                if displays:
                    rid = bk["id"]
                    for m in resource["members"]:
                        display = displays.get((rid, m["value"]))
                        if display is not None:
                            m["display"] = display
            meta.setdefault("resourceType", t.name)
            meta["created"] = bk["created"]
            meta["lastModified"] = bk["last_modified"]
            meta["version"] = _version(bk["version"])
            resource["meta"] = meta
            out.append(resource)
        return out

    def _rows(
        self, conn: sa.Connection, t: ModelType, pks: Sequence[Any]
    ) -> dict[Any, dict[str, Any]]:
        """``{pk: {"_pk": pk, field: value...}}`` of the app's rows ``pks``."""
        out: dict[Any, dict[str, Any]] = {}
        fields = self._select_fields(t)
        for chunk in _chunks(list(pks)):
            result = conn.execute(sa.select(*fields).where(t.pk.in_(chunk)))
            keys = list(result.keys())
            for values in result:
                row = dict(zip(keys, values, strict=True))
                out[row["_pk"]] = row
        return out

    def _member_lists(
        self,
        link: sa.Connection | Link,
        t: ModelType,
        group_pks: list[Any],
        checks: Sequence[Any] | None = None,
    ) -> tuple[dict[Any, list[dict[str, Any]]], bool]:
        """``{group pk: [{"value": id, "type": member type}, ...]}``, in
        :meth:`_members_of`'s order (the members' bookkeeping rows'), and whether the
        groups may have members' displays (False: known to have none).

        A read of one group runs one statement, compiled once, that reads the members'
        ids alone and makes their dicts directly (a group of 10k members: no order keys,
        no second pass). ``checks``, read with the group (``_group_reads``): the member
        type's largest keys, which stand in for :meth:`_adopt`'s quick check when that is
        the check due, and whether the group has displays."""
        one = self._member_id_reads.get(t.name)
        if one is None or len(group_pks) != 1:
            lists = {
                gpk: [m for _, m in entries]
                for gpk, entries in self._members_of(link, t, group_pks).items()
            }
            return lists, True
        rel = t.relation
        assert rel is not None
        member_t = self._types[rel.member_type]
        displayed = True
        if checks and self._quick_check_due(member_t) and _none_new(checks[0], checks[1]):
            displayed = bool(checks[2])
        else:
            self._adopt(link, member_t)
        gpk, kind = group_pks[0], rel.member_type
        found = [{"value": sid, "type": kind} for (sid,) in one.rows(link, gpk=gpk)]
        return ({gpk: found} if found else {}), displayed

    def _members_of(
        self,
        link: sa.Connection | Link,
        t: ModelType,
        group_pks: list[Any],
        *,
        only: list[str] | None = None,
    ) -> dict[Any, list[tuple[int, dict[str, Any]]]]:
        """``{group pk: [(order, {"value": id, "type": member type}), ...]}``, ordered by
        the members' bookkeeping rows (``order``); with ``only``, just the members whose
        SCIM id is one of those (an index probe each, not the whole group)."""
        rel = t.relation
        assert rel is not None
        member_t = self._types[rel.member_type]
        r = self._tables.resource
        out: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
        if not group_pks:
            return out
        if only is not None and len(only) > _CHUNK:
            # Many ids named: read the group, keep theirs.
            named = set(only)
            return {
                gpk: [e for e in entries if e[1]["value"] in named]
                for gpk, entries in self._members_of(link, t, group_pks).items()
            }
        if only is None:
            self._adopt(link, member_t)
            one = self._member_reads.get(t.name)
            if one is not None and len(group_pks) == 1:  # a read of one group
                gpk = group_pks[0]
                kind = rel.member_type
                rows = one.rows(link, gpk=gpk)
                if rows:
                    out[gpk] = [(rid, {"value": sid, "type": kind}) for rid, sid in rows]
                return out
        elif not only:
            return out
        conn = sa_conn(link)
        for chunk in _chunks(group_pks):
            q = (
                sa.select(rel.group_col, r.c.id, r.c.scim_id)
                .select_from(rel.table.join(r, self._compiler.owner(member_t, r, rel.member_col)))
                .where(rel.group_col.in_(chunk), r.c.deleted == sa.false())
                .order_by(r.c.id)
            )
            if only is not None:
                q = q.where(r.c.scim_id.in_(only))
            kind = rel.member_type
            for gpk, rid, scim_id in conn.execute(q).all():  # one fetch, not one per row
                out.setdefault(gpk, []).append((rid, {"value": scim_id, "type": kind}))
        return out

    def _entries(
        self, conn: sa.Connection, t: ModelType, ids: list[str]
    ) -> list[tuple[int, dict[str, Any]]]:
        """``_members_of``'s entries of the members ``ids``."""
        rel = t.relation
        assert rel is not None
        r = self._tables.resource
        out = []
        for chunk in _chunks(ids):
            q = sa.select(r.c.id, r.c.scim_id).where(
                r.c.scim_id.in_(chunk), r.c.resource_type == rel.member_type
            )
            for rid, scim_id in conn.execute(q):
                out.append((rid, {"value": scim_id, "type": rel.member_type}))
        return out

    def _stored_members(
        self, conn: sa.Connection, t: ModelType, pk: Any, only: list[str] | None
    ) -> tuple[
        dict[Any, list[tuple[int, dict[str, Any]]]], dict[str, tuple[int, Any, bool]] | None
    ]:
        """The members ``change`` sees (``_members_of``'s shape: all, or those of ``only``)
        and, when ``only`` names few, :meth:`_named_members` of them (else None)."""
        rel = t.relation
        if rel is None:
            return {}, None
        if only is None or len(only) > _CHUNK:
            return self._members_of(conn, t, [pk], only=only), None
        named = self._named_members(conn, t, pk, only)
        inside = sorted(
            (rid, {"value": mid, "type": rel.member_type})
            for mid, (rid, _, held) in named.items()
            if held
        )
        return ({pk: inside} if inside else {}), named

    def _named_members(
        self, conn: sa.Connection, t: ModelType, group_pk: Any, ids: Sequence[str]
    ) -> dict[str, tuple[int, Any, bool]]:
        """``{member id: (bookkeeping row id, app pk, in the group)}`` of the live
        resources of the member type among ``ids`` (at most ``_CHUNK``): one statement,
        an index probe per id, whatever the size of the group."""
        rel = t.relation
        assert rel is not None
        if not ids:
            return {}
        member_t = self._types[rel.member_type]
        r = self._tables.resource
        n = len(ids)

        def build() -> Any:
            held = rel.table.alias("held")
            on_member = held.c[rel.member_col.key] == member_t.pk
            in_group = held.c[rel.group_col.key] == sa.bindparam("gpk")
            return (
                sa.select(r.c.scim_id, r.c.id, member_t.pk, held.c[rel.group_col.key])
                .select_from(
                    r.join(
                        member_t.table, self._compiler.owner(member_t, r, member_t.pk)
                    ).outerjoin(held, sa.and_(on_member, in_group))
                )
                .where(
                    r.c.scim_id.in_([sa.bindparam(f"id{i}", type_=sa.String()) for i in range(n)]),
                    r.c.deleted == sa.false(),
                )
            )

        params: dict[str, Any] = {f"id{i}": v for i, v in enumerate(ids)}
        found: Sequence[Sequence[Any]]
        if n <= _PREPARED_IDS:  # one statement per number of ids, compiled once
            found = self._prepared(("named_members", t.name, n), build).rows(
                conn, gpk=group_pk, **params
            )
        else:
            found = conn.execute(build(), {"gpk": group_pk, **params}).all()
        return {scim_id: (rid, pk, in_group is not None) for scim_id, rid, pk, in_group in found}

    def _member_pks(
        self, conn: sa.Connection, t: ModelType, ids: Iterable[str], *, strict: bool = True
    ) -> dict[str, Any]:
        """``{member id: app pk}``; with ``strict``, 400 ``invalidValue`` for ids that are
        not live resources of the member type (RFC 7643 §4.2: "Identifier of the member")."""
        rel = t.relation
        assert rel is not None
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        member_t = self._types[rel.member_type]
        r = self._tables.resource
        pks: dict[str, Any] = {}
        for chunk in _chunks(ids):
            q = (
                sa.select(r.c.scim_id, member_t.pk)
                .select_from(r.join(member_t.table, self._compiler.owner(member_t, r, member_t.pk)))
                .where(r.c.scim_id.in_(chunk), r.c.deleted == sa.false())
            )
            pks.update((scim_id, pk) for scim_id, pk in conn.execute(q))
        missing = [id for id in ids if id not in pks]
        if missing and strict:
            shown = ", ".join(sorted(missing)[:5]) + (" ..." if len(missing) > 5 else "")
            other = conn.execute(
                sa.select(sa.func.count())
                .select_from(r)
                .where(r.c.scim_id.in_(missing[:_CHUNK]), r.c.resource_type != rel.member_type)
            ).scalar_one()
            if other:
                raise InvalidValueError(
                    f"Members of this group must be {rel.member_type} resources "
                    f"(the relation holds only those): {shown}."
                )
            raise missing_members_error(missing)
        return pks

    def _groups_holding(self, member: ModelType) -> list[ModelType]:
        return [
            g
            for g in self._types.values()
            if g.relation is not None and g.relation.member_type == member.name
        ]

    def _lock(
        self, conn: sa.Connection, t: ModelType, id: str
    ) -> tuple[Mapping[str, Any], Any, dict[str, Any]]:
        """The bookkeeping row, the primary key and the app's row of ``id`` (one
        statement, joined), both rows locked for the write; 404 if either is gone (the
        bookkeeping of a row the app deleted goes in :meth:`_adopt`)."""
        plan = self._plans[t.name]
        found = plan.prepared_lock.first(conn, scim_id=id)
        if found is None:
            raise NotFoundError(f"{t.name} {id!r} not found.")
        bk, row = plan.split(found)
        return bk, row["_pk"], row
