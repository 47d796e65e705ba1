"""The writes of :class:`~._backend.SQLAlchemyBackend` on the app's rows and the
bookkeeping: column values checked against their columns, member rows inserted and
deleted, the unique index and the value index kept, versions of members touched."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from scim2_core import (
    InvalidValueError,
    UniquenessError,
)

from ._backend_connections import Connections
from ._backend_expressions import UNSET, is_text, marker_column
from ._backend_state import _chunks
from ._models import ModelType

#: Statements of one write taking up to this many ids are compiled once per count
#: (:meth:`Connections._prepared`); more go through SQLAlchemy's ``execute``.
_PREPARED_IDS = 8


class Writes(Connections):
    """Writes of rows (see the module docstring)."""

    def _write_displays(
        self, conn: sa.Connection, rid: Any, old: Mapping[str, str], new: Mapping[str, str]
    ) -> None:
        """Write only the members' ``display`` values that changed."""
        d = self._tables.display
        gone = [m for m, text in old.items() if new.get(m) != text]
        for chunk in _chunks(gone):
            conn.execute(sa.delete(d).where(d.c.resource_id == rid, d.c.member_id.in_(chunk)))
        fresh = [
            {"resource_id": rid, "member_id": m, "display": text}
            for m, text in new.items()
            if old.get(m) != text
        ]
        if fresh:
            conn.execute(sa.insert(d), fresh)

    def _add_members(
        self, conn: sa.Connection, t: ModelType, group_pk: Any, member_pks: list[Any]
    ) -> None:
        """Insert the association rows of ``member_pks``, members the caller read to be
        outside the group (in its write's transaction)."""
        rel = t.relation
        assert rel is not None
        pks = list(dict.fromkeys(member_pks))
        if 0 < len(pks) <= _PREPARED_IDS:
            g, m = rel.group_col.key, rel.member_col.key
            n = len(pks)
            insert = self._prepared(
                ("add_members", t.name, n),
                lambda: sa.insert(rel.table).values(
                    [{g: sa.bindparam("gpk"), m: sa.bindparam(f"m{i}")} for i in range(n)]
                ),
            )
            insert.run(conn, gpk=group_pk, **{f"m{i}": pk for i, pk in enumerate(pks)})
            return
        rows = [{rel.group_col.key: group_pk, rel.member_col.key: pk} for pk in pks]
        if rows:
            conn.execute(sa.insert(rel.table), rows)

    def _remove_members(
        self, conn: sa.Connection, t: ModelType, group_pk: Any, member_pks: list[Any]
    ) -> None:
        rel = t.relation
        assert rel is not None
        if 0 < len(member_pks) <= _PREPARED_IDS:
            n = len(member_pks)
            delete = self._prepared(
                ("remove_members", t.name, n),
                lambda: sa.delete(rel.table).where(
                    rel.group_col == sa.bindparam("gpk"),
                    rel.member_col.in_([sa.bindparam(f"m{i}") for i in range(n)]),
                ),
            )
            delete.run(conn, gpk=group_pk, **{f"m{i}": pk for i, pk in enumerate(member_pks)})
            return
        for chunk in _chunks(member_pks):
            conn.execute(
                sa.delete(rel.table).where(rel.group_col == group_pk, rel.member_col.in_(chunk))
            )

    def _touch(self, conn: sa.Connection, type_name: str, pks: list[Any], when: str) -> None:
        """A membership changed: the member (or group) gets a new version and lastModified
        (RFC 7644 §3.14: ``groups`` is part of a User's representation)."""
        t = self._types.get(type_name)
        if t is None or not pks or t.bm is None:
            return
        if t.bm.rt.schema.attribute("groups") is None and t.relation is None:
            return
        r = self._tables.resource
        texts = [t.pk_text(pk) for pk in pks]
        if len(texts) <= _PREPARED_IDS:
            n = len(texts)
            touch = self._prepared(
                ("touch", type_name, n),
                lambda: (
                    sa.update(r)
                    .where(
                        r.c.resource_type == type_name,
                        r.c.object_pk.in_(
                            [sa.bindparam(f"k{i}", type_=sa.String()) for i in range(n)]
                        ),
                        r.c.deleted == sa.false(),
                    )
                    .values(version=r.c.version + 1, last_modified=sa.bindparam("when"))
                ),
            )
            touch.run(conn, when=when, **{f"k{i}": k for i, k in enumerate(texts)})
            return
        for chunk in _chunks(texts):
            conn.execute(
                sa.update(r)
                .where(
                    r.c.resource_type == type_name,
                    r.c.object_pk.in_(chunk),
                    r.c.deleted == sa.false(),
                )
                .values(version=r.c.version + 1, last_modified=when)
            )

    # -- internals: writing the app's row ------------------------------------------------

    def _assign(
        self,
        t: ModelType,
        stored: Mapping[str, Any] | None,
        values: Mapping[str, Any],
        *,
        unset: dict[str, Any],
    ) -> dict[str, Any]:
        """The column values to write (all on create, the changed ones on update); 400
        ``invalidValue`` naming the SCIM attribute for a value the column cannot hold.

        A column that cannot hold "no value" (a ``NOT NULL`` boolean with a default) gets
        its default; ``unset`` records it, so that reading gives the attribute back
        unassigned while the app sees the column as written (RFC 7643 §2.5).
        """
        out: dict[str, Any] = {}
        by_field = {f.field: f for f in t.bound.fields}
        for name, value in values.items():
            col = t.columns[name]
            label = by_field[name].label
            if value is None:
                if col.nullable:
                    value = None
                elif is_text(col):
                    value = ""
                elif col.default is not None and getattr(col.default, "is_scalar", False):
                    value = col.default.arg  # type: ignore[attr-defined]
                    unset[name] = value
                else:
                    raise InvalidValueError(f"A value of {label!r} is required here.")
            else:
                value = _fit(col, value, label)
            if stored is None or stored.get(name) != value:
                out[col.key] = value
        return out

    def _insert(self, conn: sa.Connection, t: ModelType, row: dict[str, Any]) -> Any:
        try:
            result = conn.execute(sa.insert(t.table).values(**row))
        except IntegrityError:
            # The app's own unique constraints hold too.
            raise UniquenessError(
                f"A value of this {t.name} is already in use ({t.model_name})."
            ) from None
        except (DBAPIError, StatementError):
            raise InvalidValueError(f"A value of this {t.name} does not fit its table.") from None
        pk = result.inserted_primary_key
        assert pk is not None
        return pk[0]

    def _update_row(self, conn: sa.Connection, t: ModelType, pk: Any, row: dict[str, Any]) -> None:
        try:
            conn.execute(sa.update(t.table).where(t.pk == pk).values(**row))
        except IntegrityError:
            raise UniquenessError(
                f"A value of this {t.name} is already in use ({t.model_name})."
            ) from None
        except (DBAPIError, StatementError):
            raise InvalidValueError(f"A value of this {t.name} does not fit its table.") from None

    def _check_columns_unique(
        self, conn: sa.Connection, t: ModelType, resource: Mapping[str, Any], exclude_pk: Any
    ) -> None:
        """Unique attributes held by columns: also compare with the app's own rows (which
        may predate the bookkeeping), case-insensitively unless caseExact."""
        for u in t.uniques:
            if u.field is None:
                continue
            col = t.columns[u.field]
            for key in u.keys(resource):
                lhs: Any = col if u.ref.target.case_exact else sa.func.lower(col)
                q = sa.select(t.pk).where(lhs == key)
                if exclude_pk is not None:
                    q = q.where(t.pk != exclude_pk)
                # rows hidden from SCIM (deleted, deactivated) still hold their values
                if conn.execute(q.limit(1)).first() is not None:
                    raise UniquenessError(f"The value of {u.label!r} is already in use.")

    def _write_uniques(
        self,
        conn: sa.Connection,
        t: ModelType,
        rid: Any,
        resource: Mapping[str, Any],
        *,
        replace: bool = False,
        strict: bool = True,
    ) -> None:
        """RFC 7643 §7 "uniqueness": "server" — "The value SHOULD be unique within the
        context of the current SCIM endpoint"; the unique constraint decides races."""
        u_t = self._tables.unique
        if replace:
            conn.execute(sa.delete(u_t).where(u_t.c.resource_id == rid))
        rows = [
            {"resource_id": rid, "resource_type": t.name, "attribute": u.label, "value": k[:255]}
            for u in t.uniques
            for k in u.keys(resource)
        ]
        if not rows:
            return
        if not strict:
            for row in rows:
                taken = conn.execute(
                    sa.select(u_t.c.id).where(
                        u_t.c.resource_type == row["resource_type"],
                        u_t.c.attribute == row["attribute"],
                        u_t.c.value == row["value"],
                    )
                ).first()
                if taken is None:
                    conn.execute(sa.insert(u_t).values(**row))
            return
        try:
            conn.execute(sa.insert(u_t), rows)
        except IntegrityError:
            label = t.uniques[0].label if len(t.uniques) == 1 else "a unique attribute"
            raise UniquenessError(f"The value of {label!r} is already in use.") from None

    def _write_values(
        self,
        conn: sa.Connection,
        t: ModelType,
        rid: Any,
        extras: Mapping[str, Any],
        *,
        replace: bool = False,
    ) -> None:
        v_t = self._tables.value
        if replace:
            conn.execute(sa.delete(v_t).where(v_t.c.resource_id == rid))
        blank = {"position": 0, "text": None, "folded": None, "number": None, "flag": None}
        rows: list[dict[str, Any]] = [
            {
                **blank,
                "resource_id": rid,
                "key": UNSET,
                "sub": name,
                marker_column(t.columns[name]): value,
            }
            for name, value in (extras.get(UNSET) or {}).items()
            if name in t.columns
        ]
        for leaf in t.bound.leaves({k: v for k, v in extras.items() if k != UNSET}):
            v = leaf.value
            text = v if isinstance(v, str) else None
            rows.append(
                {
                    "resource_id": rid,
                    "key": leaf.key[:255],
                    "sub": leaf.sub,
                    "position": leaf.index,
                    "text": text,
                    "folded": text.lower() if text is not None else None,
                    "number": float(v)
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                    else None,
                    "flag": v if isinstance(v, bool) else None,
                }
            )
        if rows:
            conn.execute(sa.insert(v_t), rows)


def _split(t: ModelType, resource: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``t.bound.write(resource)`` (a converter refusing a value is 400 ``invalidValue``
    naming its attribute there)."""
    return t.bound.write(resource)


def _fit(col: sa.Column[Any], value: Any, label: str) -> Any:
    """``value`` checked against the column's type: 400 ``invalidValue`` naming the
    attribute if it cannot be stored (RFC 7644 §3.12 Table 9: "The attribute value [...] is
    incompatible with the [...] schema")."""
    kind = col.type
    bad = InvalidValueError(f"The value of {label!r} is not valid here.")
    if isinstance(kind, sa.Boolean):
        if not isinstance(value, bool):
            raise bad
    elif isinstance(kind, sa.Integer):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        bits = (
            16
            if isinstance(kind, sa.SmallInteger)
            else 64
            if isinstance(kind, sa.BigInteger)
            else 32
        )
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise InvalidValueError(f"The value of {label!r} is out of range here.")
    elif isinstance(kind, (sa.Float, sa.Numeric)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
    elif isinstance(kind, sa.String):
        if not isinstance(value, str):
            raise bad
        if kind.length is not None and len(value) > kind.length:
            raise InvalidValueError(
                f"The value of {label!r} is too long here (at most {kind.length} characters)."
            )
        if "\x00" in value:
            raise bad
    return value


def _member_ids(resource: Mapping[str, Any]) -> list[str]:
    members = resource.get("members")
    if not isinstance(members, list):
        return []
    out = [m["value"] for m in members if isinstance(m, dict) and isinstance(m.get("value"), str)]
    return list(dict.fromkeys(out))


def _displays(resource: Mapping[str, Any]) -> dict[str, str]:
    """``{member id: display}`` of the members that have a ``display``."""
    members = resource.get("members")
    out: dict[str, str] = {}
    if isinstance(members, list):
        for m in members:
            if isinstance(m, dict) and isinstance(m.get("value"), str):
                display = m.get("display")
                if isinstance(display, str):
                    out[m["value"]] = display
    return out


def _visible(
    row: Mapping[str, Any], extras: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(column values, extras)`` to read: a column still holding the default it got for
    an unassigned attribute reads as unassigned."""
    values = dict(row)
    rest = dict(extras)
    unset = rest.pop(UNSET, None)
    if isinstance(unset, dict):
        for name, default in unset.items():
            if values.get(name) == default:
                values[name] = None
    return values, rest


def _strip_meta(extras: Mapping[str, Any], unset: Mapping[str, Any]) -> dict[str, Any]:
    """The extras to store: ``meta`` without what the bookkeeping columns hold, and the
    defaults given to unassigned attributes (see :func:`_visible`)."""
    out = dict(extras)
    kept_unset = {k: v for k, v in unset.items() if isinstance(v, (bool, int, float, str))}
    if kept_unset:
        out[UNSET] = kept_unset
    meta = out.get("meta")
    if isinstance(meta, dict):
        kept = {k: v for k, v in meta.items() if k not in ("version", "created", "lastModified")}
        if kept:
            out["meta"] = kept
        else:
            del out["meta"]
    return out
