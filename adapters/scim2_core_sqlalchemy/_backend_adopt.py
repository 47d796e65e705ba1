"""The app and SCIM share the rows: :class:`~._backend.SQLAlchemyBackend` adopts the
rows the app inserts (an id and a version), forgets those it deletes, and moves the version
of those it changes, found by the app's ORM events or by the next read."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from scim2_core.schema import now

from ._backend_reads import Link, sa_conn
from ._backend_state import _chunks, _dict, _hash
from ._backend_writes import Writes, _visible
from ._models import ModelType

#: How often (seconds) the full check for rows the app wrote without the ORM runs.
_FULL_CHECK_SECONDS = 1.0


def _none_new(app_max: Any, kept_max: Any) -> bool:
    """Whether the largest keys (the app's, the largest adopted) say that the app has no
    row above the adopted ones: :meth:`Adoption._adopt`'s quick check passes."""
    return app_max is None or (kept_max is not None and app_max <= kept_max)


class Adoption(Writes):
    """Adoption of the app's own writes (see the module docstring)."""

    def _select_fields(self, t: ModelType) -> list[Any]:
        return [t.pk.label("_pk"), *(col.label(name) for name, col in t.columns.items())]

    def _stored_row(self, conn: sa.Connection, t: ModelType, pk: Any) -> dict[str, Any]:
        row = conn.execute(sa.select(*self._select_fields(t)).where(t.pk == pk)).first()
        return dict(row._mapping) if row is not None else {}

    def _row_hash(self, conn: sa.Connection, t: ModelType, pk: Any) -> str:
        return _hash(self._stored_row(conn, t, pk), t.hash_fields)

    def _adopt(self, link: sa.Connection | Link, t: ModelType) -> None:
        """Give the app's rows without bookkeeping (inserted by the app) an id and version;
        forget the bookkeeping of rows the app deleted.

        With an integer primary key, each call compares the largest key of the app's table
        with the largest adopted one (two index probes) and adopts the rows above it; the
        full check (counting both sides, anti-joins only when the counts differ) runs at
        most once a second per type, for rows written below that key or deleted.
        """
        tb = self._tables
        r = tb.resource
        if t.int_pk:
            moment = time.monotonic()
            if moment - t.checked < _FULL_CHECK_SECONDS:
                app_max, kept_max = self._largest_keys(link, t)
                if _none_new(app_max, kept_max):
                    return
                conn = sa_conn(link)
                k = r.alias()
                above = sa.select(*self._select_fields(t)).where(
                    ~sa.exists(sa.select(sa.literal(1)).where(self._compiler.owner(t, k, t.pk)))
                )
                if kept_max is not None:
                    above = above.where(t.pk > kept_max)
                self._adopt_rows(conn, t, [dict(row._mapping) for row in conn.execute(above)])
                return
            t.checked = moment
        conn = sa_conn(link)
        rows, kept = conn.execute(self._plans[t.name].counts).one()
        if rows == kept:
            return
        if kept > rows:
            gone = sa.select(r.c.id).where(
                r.c.resource_type == t.name,
                ~sa.exists(sa.select(sa.literal(1)).where(self._compiler.owner(t, r, t.pk))),
            )
            ids = list(conn.execute(gone).scalars())
            if ids:
                self._wrote(conn)
            for chunk in _chunks(ids):
                conn.execute(sa.delete(tb.value).where(tb.value.c.resource_id.in_(chunk)))
                conn.execute(sa.delete(tb.unique).where(tb.unique.c.resource_id.in_(chunk)))
                conn.execute(sa.delete(tb.display).where(tb.display.c.resource_id.in_(chunk)))
                conn.execute(sa.delete(r).where(r.c.id.in_(chunk)))
        k = r.alias()
        missing = [
            dict(row._mapping)
            for row in conn.execute(
                sa.select(*self._select_fields(t)).where(
                    ~sa.exists(sa.select(sa.literal(1)).where(self._compiler.owner(t, k, t.pk)))
                )
            )
        ]
        self._adopt_rows(conn, t, missing)

    def _largest_keys(self, link: sa.Connection | Link, t: ModelType) -> tuple[Any, Any]:
        """The largest primary key of the app's table of ``t`` and the largest adopted."""
        largest = self._plans[t.name].prepared_largest_keys.first(link)
        assert largest is not None
        return largest[0], largest[1]

    def _nothing_to_adopt(self, link: sa.Connection | Link, t: ModelType) -> bool:
        """Whether :meth:`_adopt` would find nothing to do now, known without writing: its
        quick check (an integer key, the full check not due) finds no new row of the app.
        False when it cannot tell."""
        if not self._quick_check_due(t):
            return False
        return _none_new(*self._largest_keys(link, t))

    def _quick_check_due(self, t: ModelType) -> bool:
        """Whether :meth:`_adopt` would now run only its quick check (an integer key, the
        full check not due): a statement that reads :func:`~._backend_reads.largest_keys`
        beside what it reads may then stand in for it (:func:`_none_new` of them)."""
        return t.int_pk and time.monotonic() - t.checked < _FULL_CHECK_SECONDS

    def _adopt_rows(
        self, conn: sa.Connection, t: ModelType, missing: Sequence[Mapping[str, Any]]
    ) -> None:
        """Bookkeeping for app rows (``_select_fields`` rows) that have none."""
        if not missing:
            return
        self._wrote(conn)
        r = self._tables.resource
        when = now()
        for chunk in _chunks(missing):
            conn.execute(
                sa.insert(r),
                [
                    {
                        "scim_id": str(uuid.uuid4()),
                        "resource_type": t.name,
                        "object_pk": t.pk_text(row["_pk"]),
                        "object_int": row["_pk"] if t.int_pk else None,
                        "version": 1,
                        "created": when,
                        "last_modified": when,
                        "content_hash": _hash(row, t.hash_fields),
                        "extras": {},
                        "deleted": False,
                    }
                    for row in chunk
                ],
            )
        if t.uniques:
            for row in missing:
                rid = conn.execute(
                    sa.select(r.c.id).where(
                        r.c.resource_type == t.name, r.c.object_pk == t.pk_text(row["_pk"])
                    )
                ).scalar_one()
                self._write_uniques(conn, t, rid, t.bound.read(row, {}), strict=False)

    # -- the app's changes through its ORM session -------------------------------------------

    def _listen(self) -> None:
        """Follow the app's ORM writes of mapped models, in the app's own transaction: an
        inserted row gets its id at once, an updated one a new version, a deleted one
        leaves SCIM. (Writes that bypass the ORM's unit of work, such as bulk
        ``update()`` statements or raw SQL, are found by the next read instead.)"""
        for t in self._types.values():
            for name, handler in (
                ("after_insert", self._on_app_insert),
                ("after_update", self._on_app_update),
                ("after_delete", self._on_app_delete),
            ):
                sa.event.listen(t.model, name, handler, propagate=True)

    def _app_type(self, mapper: Any) -> ModelType | None:
        for t in self._types.values():
            if t.bm is not None and mapper.local_table is t.table:
                return t
        return None

    def _on_app_insert(self, mapper: Any, conn: sa.Connection, target: Any) -> None:
        t = self._app_type(mapper)
        if t is None:
            return
        pk = mapper.primary_key_from_instance(target)[0]
        r = self._tables.resource
        known = conn.execute(
            sa.select(r.c.id).where(r.c.resource_type == t.name, r.c.object_pk == t.pk_text(pk))
        ).first()
        if known is None:
            self._adopt_rows(conn, t, [self._stored_row(conn, t, pk)])

    def _on_app_update(self, mapper: Any, conn: sa.Connection, target: Any) -> None:
        t = self._app_type(mapper)
        if t is None:
            return
        pk = mapper.primary_key_from_instance(target)[0]
        r = self._tables.resource
        found = conn.execute(
            sa.select(r).where(r.c.resource_type == t.name, r.c.object_pk == t.pk_text(pk))
        ).first()
        row = self._stored_row(conn, t, pk)
        if found is None:
            self._adopt_rows(conn, t, [row])
            return
        bk = _dict(found)
        digest = _hash(row, t.hash_fields)
        if digest != bk["content_hash"]:
            self._app_changed(conn, t, bk, row, digest)

    def _on_app_delete(self, mapper: Any, conn: sa.Connection, target: Any) -> None:
        t = self._app_type(mapper)
        if t is None:
            return
        pk = mapper.primary_key_from_instance(target)[0]
        tb = self._tables
        r = tb.resource
        ids = list(
            conn.execute(
                sa.select(r.c.id).where(r.c.resource_type == t.name, r.c.object_pk == t.pk_text(pk))
            ).scalars()
        )
        for child in (tb.value, tb.unique, tb.display):
            conn.execute(sa.delete(child).where(child.c.resource_id.in_(ids)))
        conn.execute(sa.delete(r).where(r.c.id.in_(ids)))

    def _app_changed(
        self,
        conn: sa.Connection,
        t: ModelType,
        bk: Mapping[str, Any],
        row: Mapping[str, Any],
        digest: str,
    ) -> Mapping[str, Any]:
        self._wrote(conn)
        r = self._tables.resource
        when = now()
        done = conn.execute(
            sa.update(r)
            .where(r.c.id == bk["id"], r.c.content_hash == bk["content_hash"])
            .values(version=r.c.version + 1, last_modified=when, content_hash=digest)
        ).rowcount
        if done and t.uniques:
            resource = t.bound.read(*_visible(row, bk["extras"]))
            self._write_uniques(conn, t, bk["id"], resource, replace=True, strict=False)
        fresh = conn.execute(sa.select(r).where(r.c.id == bk["id"])).first()
        out: Mapping[str, Any] = _dict(fresh) if fresh is not None else bk
        return out
