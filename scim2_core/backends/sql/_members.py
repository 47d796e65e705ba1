"""Group membership: the member rows, touching members, checking new ones, locks.

Members live in ``scim_members`` only (schema version 4), one row per member: ``pos`` keeps
the list order, ``entry`` the member object as stored and ``fentry`` the same object folded
(filters on members' sub-attributes read it). A group's document holds no ``members``, so
adding or removing one is a row insert or delete whose cost does not depend on the group's
size, and a read that does not return ``members`` reads no member row.

``User.groups`` is derived from ``scim_members``, so a membership change is a change of the
member (a new ``meta.version``, RFC 7644 §3.14). The lock order every write keeps on
PostgreSQL is: groups, then members by id. SQLite admits one writer at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

from ...schema import touch
from .._rules import check_new_members as check_new_members_exist
from .._rules import missing_members_error
from ._dialect import Connection, Dialect
from ._rows import (
    META_COLUMNS,
    VERSIONS_JOIN,
    TypeInfo,
    chunks,
    dumps,
    fold_document,
    loads,
    merge_meta,
)

__all__ = [
    "Store",
    "attach_members",
    "check_new_members",
    "delete_all_members",
    "group_ids",
    "insert_checked_members",
    "insert_members",
    "leave_groups",
    "lock_rows",
    "read_members",
    "read_members_text",
    "split_members",
    "touch_members",
    "touch_rows",
    "with_members",
    "write_members",
]


class Store(Protocol):
    """Write a changed resource (its row and index rows; documents without ``members``)."""

    def __call__(
        self,
        conn: Connection,
        info: TypeInfo,
        tenant: str,
        rid: str,
        old: dict[str, Any],
        new: dict[str, Any],
        *,
        touched: bool = ...,
    ) -> Any: ...


# --- documents and member lists ----------------------------------------------------------
def split_members(info: TypeInfo, doc: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """``(doc without members, the member objects)``: what the resource row holds and what
    the member rows hold. Each member has a string ``value`` and appears once (the engine
    completes members so; anything else would have no row to live in)."""
    if not info.has_members or "members" not in doc:
        return doc, []
    rest = {k: v for k, v in doc.items() if k != "members"}
    members = doc["members"]
    entries: list[Any] = []
    if isinstance(members, list) and _plain_members(members):
        entries = list(members)
    elif isinstance(members, list):
        seen: set[str] = set()
        for m in members:
            value = m.get("value") if isinstance(m, dict) else None
            if isinstance(value, str) and value not in seen:
                seen.add(value)
                entries.append(m)
    return rest, entries


def _plain_members(members: list[Any]) -> bool:
    """Whether every member is an object with a string ``value`` and no value repeats
    (what the engine sends), checked in a few passes at C speed."""
    try:
        ids = [m["value"] for m in members]
    except (TypeError, KeyError, IndexError):
        return False
    return (
        set(map(type, members)) == {dict}
        and set(map(type, ids)) == {str}
        and (len(set(ids)) == len(ids))
    )


def with_members(doc: dict[str, Any], members: list[Any]) -> dict[str, Any]:
    """``doc`` with ``members`` set (before ``meta``, where the engine puts them); none when
    the list is empty (RFC 7643 §2.5: an empty multi-valued attribute is unassigned)."""
    if not members:
        return doc
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "meta":
            out["members"] = members
        out[key] = value
    out.setdefault("members", members)
    return out


def _storable(d: Dialect, entry: Any) -> str:
    """The text of the member object ``entry``, which the database can hold."""
    text = dumps(entry)
    d.check_storable(text, entry)
    return text


def _fold_entries(info: TypeInfo, entries: Sequence[Any]) -> list[Any]:
    folded: list[Any] = fold_document(info.rt, {"members": list(entries)}).get("members", [])
    return folded


def read_members(
    d: Dialect, conn: Connection, tenant: str, group_id: str, values: Iterable[str] | None = None
) -> list[Any]:
    """The members of ``group_id`` in list order; only those whose value is in ``values``
    when given (one index probe each)."""
    if values is None:
        members: list[Any] = json.loads(read_members_text(d, conn, tenant, group_id))
        return members
    wanted = sorted(set(values))
    found: list[tuple[int, str]] = []
    for chunk, marks in chunks(wanted):
        found.extend(
            conn.execute(
                d.sql(
                    "SELECT pos, entry FROM scim_members WHERE tenant = ? AND group_id = ? "
                    f"AND member_id IN ({marks})"
                ),
                [tenant, group_id, *chunk],
            ).fetchall()
        )
    found.sort(key=lambda r: r[0])
    return [json.loads(r[1]) for r in found]


def read_members_text(d: Dialect, conn: Connection, tenant: str, group_id: str) -> str:
    """The members of ``group_id`` in list order, as one JSON array's text (parsing it
    again is the cheapest copy of a large group's members)."""
    row = conn.execute(d.sql(d.members_array_sql()), (tenant, group_id)).fetchone()
    return str(row[0]) if row is not None and row[0] else "[]"


def attach_members(
    d: Dialect, conn: Connection, tenant: str, docs: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``docs`` (groups of one page) with their members, read in one query per chunk."""
    if not docs:
        return list(docs)
    by_group: dict[str, list[Any]] = {}
    ids = [doc["id"] for doc in docs]
    for chunk, marks in chunks(ids):
        rows = conn.execute(
            d.sql(
                "SELECT group_id, entry FROM scim_members WHERE tenant = ? "
                f"AND group_id IN ({marks}) ORDER BY group_id, pos"
            ),
            [tenant, *chunk],
        ).fetchall()
        for gid, entry in rows:
            by_group.setdefault(gid, []).append(json.loads(entry))
    return [with_members(doc, by_group.get(doc["id"], [])) for doc in docs]


def insert_members(
    d: Dialect,
    conn: Connection,
    info: TypeInfo,
    tenant: str,
    group_id: str,
    entries: Sequence[Any],
    first_pos: int,
) -> None:
    """Insert member rows for ``entries`` at positions ``first_pos``, ``first_pos + 1``..."""
    if not entries:
        return
    folded = _fold_entries(info, entries)
    conn.execute(
        d.sql(d.insert_members_sql()),
        (tenant, group_id, first_pos, *d.member_pairs(entries, folded)),
    )


def insert_checked_members(
    d: Dialect,
    conn: Connection,
    info: TypeInfo,
    tenant: str,
    group_id: str,
    entries: Sequence[Any],
    members: Collection[str],
    first_pos: int = 1,
) -> None:
    """Insert member rows for ``entries`` at positions ``first_pos``, ``first_pos + 1``...
    (new members of a group), each member checked to exist by the same statement: a
    member row is inserted only beside its resource's row (locked ``FOR KEY SHARE`` on
    PostgreSQL, as :func:`check_new_members` does), so one fewer row than ``entries``
    means a member is gone, e.g. deleted since the engine looked: 400 ``invalidValue``
    (RFC 7643 §4.2), the transaction rolled back by the caller. Every member's value
    must be in ``members`` (the ids the engine checked)."""
    folded = _fold_entries(info, entries)
    cur = conn.execute(
        d.sql(d.insert_members_sql(checked=True)),
        (tenant, group_id, first_pos, *d.member_pairs(entries, folded), tenant),
    )
    if cur.rowcount != len(entries):
        ids = sorted(m["value"] for m in entries)
        where, param = d.id_set(ids)
        rows = conn.execute(
            d.sql(f"SELECT id FROM scim_resources WHERE tenant = ? AND id {where}"),
            [tenant, param],
        ).fetchall()
        present = {r[0] for r in rows}
        check_new_members_exist(members, ids, present)
        raise missing_members_error(v for v in ids if v not in present)


def delete_all_members(d: Dialect, conn: Connection, tenant: str, group_id: str) -> None:
    """Remove every member row of ``group_id``: one statement."""
    conn.execute(
        d.sql("DELETE FROM scim_members WHERE tenant = ? AND group_id = ?"), (tenant, group_id)
    )


def write_members(
    d: Dialect,
    conn: Connection,
    info: TypeInfo,
    tenant: str,
    group_id: str,
    old: Sequence[Any],
    new: Sequence[Any],
    check: Callable[[Sequence[str]], None] | None,
    *,
    partial: bool,
    members: Collection[str] = (),
) -> set[str]:
    """Write the difference between the member lists ``old`` and ``new`` (each from
    :func:`split_members`) and return the ids added or removed.

    With ``partial``, ``old`` holds only some of the stored members: the others stay, and
    new members go after every stored one. Otherwise ``old`` is every stored member and the
    stored order becomes that of ``new``: members kept in the same order and new ones after
    them cost one row each; a reordered list is rewritten. New members are refused by
    ``check`` (given their ids, before their rows are written) when they do not exist;
    when they are all in ``members`` (the ids the engine checked), by the statement that
    inserts them instead (:func:`insert_checked_members`).
    """
    old_by = {m["value"]: m for m in old}
    new_by = {m["value"]: m for m in new}
    gone = [v for v in old_by if v not in new_by]
    came = [v for v in new_by if v not in old_by]
    kept_new = [v for v in new_by if v in old_by]
    in_order = partial or list(new_by) == [v for v in old_by if v in new_by] + came
    checked_by_insert = in_order and bool(members) and set(members).issuperset(came)
    if came and check is not None and not checked_by_insert:
        check(sorted(came))
    if not in_order:
        delete_all_members(d, conn, tenant, group_id)
        insert_members(d, conn, info, tenant, group_id, list(new_by.values()), 1)
        return set(gone) | set(came)
    if gone and len(gone) == len(old_by) and not partial:  # a PUT of another list
        delete_all_members(d, conn, tenant, group_id)
    elif gone:  # one statement, however many leave
        where, param = d.id_set(gone)
        conn.execute(
            d.sql(
                f"DELETE FROM scim_members WHERE tenant = ? AND group_id = ? AND member_id {where}"
            ),
            [tenant, group_id, param],
        )
    changed = [new_by[v] for v in kept_new if new_by[v] != old_by[v]]
    if changed:
        folded = _fold_entries(info, changed)
        d.executemany(
            conn,
            f"UPDATE scim_members SET entry = ?, fentry = {d.json_param} "
            "WHERE tenant = ? AND group_id = ? AND member_id = ?",
            [
                (_storable(d, m), dumps(f), tenant, group_id, m["value"])
                for m, f in zip(changed, folded, strict=True)
            ],
        )
    if came:
        row = conn.execute(
            # The last position by the order index, backwards: one probe whatever the
            # planner believes of the table's size (MAX() may scan the group's rows).
            d.sql(
                "SELECT pos FROM scim_members WHERE tenant = ? AND group_id = ? "
                "ORDER BY pos DESC LIMIT 1"
            ),
            (tenant, group_id),
        ).fetchone()
        last = int(row[0]) if row is not None and row[0] is not None else 0
        entries = [new_by[v] for v in came]
        if checked_by_insert:
            insert_checked_members(d, conn, info, tenant, group_id, entries, members, last + 1)
        else:
            insert_members(d, conn, info, tenant, group_id, entries, last + 1)
    return set(gone) | set(came)


# --- touching members ----------------------------------------------------------------------
def touch_members(
    d: Dialect,
    conn: Connection,
    types: Mapping[str, TypeInfo],
    store: Store,
    tenant: str,
    group_id: str,
    ids: Collection[str],
    when: str,
    *,
    every: bool = False,
) -> None:
    """Touch the members ``ids`` (added to or removed from ``group_id``) whose type has
    a derived ``groups``: a new version and ``meta.lastModified`` = ``when``.

    RFC 7644 §3.14: a version changes whenever the representation does, and a User's
    ``groups`` (RFC 7643 §4.1.2) is part of it. Called inside the group's write, after
    the group's row is locked and after :func:`check_new_members`. Ids that are gone (a
    deleted member) are skipped, as are types without ``groups`` (a nested Group).
    ``every``: ``ids`` are all of the group's member rows (a create, a delete), which the
    statements then read instead of a list of ids.
    """
    kinds = sorted(name for name, info in types.items() if info.has_groups)
    wanted = [i for i in ids if i != group_id]
    if kinds and wanted:
        group = group_id if every else None
        if group is None:
            wanted.sort()
        touch_rows(d, conn, types, store, tenant, wanted, kinds, when, group=group)


def touch_rows(
    d: Dialect,
    conn: Connection,
    types: Mapping[str, TypeInfo],
    store: Store,
    tenant: str,
    ids: Sequence[str],
    kinds: Sequence[str],
    when: str,
    *,
    group: str | None = None,
) -> None:
    """Give the resources ``ids`` (sorted) of the types ``kinds`` the next ``meta.version``
    and ``meta.lastModified`` = ``when``. ``group``: ``ids`` (in any order) are the members
    of that group (but itself), read from its member rows by the statements.

    The rows are locked ``FOR NO KEY UPDATE`` in id order (PostgreSQL), the lock order
    every write keeps. Where no index row reads ``meta``, the new version and time go to
    their small ``scim_versions`` rows, one statement for all of them (a 10k-member
    group's create or delete touches 10k users), the resources' own rows untouched (see
    :func:`._rows.merge_meta`); otherwise each document is rewritten here.
    """
    in_place = [k for k in kinds if not types[k].meta_indexed]
    by_doc = [k for k in kinds if k not in in_place]
    if in_place:
        params: list[Any]
        if group is not None:  # no list of ids to send and parse again
            where = (
                "IN (SELECT member_id FROM scim_members WHERE tenant = ? AND group_id = ? "
                "AND member_id <> ?)"
            )
            params = [tenant, group, group]
        else:
            where, param = d.id_set(ids)
            params = [param]
        marks_kinds = ", ".join("?" * len(in_place))
        if d.for_update:
            # Locked although not written: a write of one of them (which deletes its
            # scim_versions row) waits for this one, or this one for it.
            conn.execute(
                d.sql(
                    f"SELECT id FROM scim_resources WHERE tenant = ? AND id {where} "
                    f"AND type IN ({marks_kinds}) ORDER BY id" + d.for_update
                ),
                [tenant, *params, *in_place],
            )
        conn.execute(
            d.sql(d.touch_sql(f"r.tenant = ? AND r.id {where} AND r.type IN ({marks_kinds})")),
            [when, tenant, *params, *in_place],
        )
    if not by_doc:
        return
    for chunk, marks in chunks(ids if group is None else sorted(ids)):
        marks_kinds = ", ".join("?" * len(by_doc))
        where = f"WHERE r.tenant = ? AND r.id IN ({marks}) AND r.type IN ({marks_kinds})"
        if d.for_update:  # locked first, read after: see SQLBackend._load_locked
            conn.execute(
                d.sql(f"SELECT r.id FROM scim_resources r {where} ORDER BY r.id" + d.for_update),
                [tenant, *chunk, *by_doc],
            ).fetchall()
        rows = conn.execute(
            d.sql(
                f"SELECT r.id, r.type, r.doc, {META_COLUMNS} FROM scim_resources r"
                f"{VERSIONS_JOIN} {where} ORDER BY r.id"
            ),
            [tenant, *chunk, *by_doc],
        ).fetchall()
        for mid, kind, text, version, modified in rows:
            old = merge_meta(loads(text), version, modified)
            new = merge_meta(loads(text), version, modified)
            touch(new, when)
            store(conn, types[kind], tenant, mid, old, new, touched=modified is not None)


def check_new_members(
    d: Dialect, conn: Connection, tenant: str, members: Collection[str], ids: Sequence[str]
) -> None:
    """Refuse new members that do not exist, e.g. deleted while this write was under way.

    The engine checks that new members exist (``existing``) just before it writes
    and passes them as ``members``; a member deleted in between would be left dangling
    (its delete could not see this uncommitted membership). Inside the transaction, the
    new members (``ids``) that still exist are locked (PostgreSQL ``FOR KEY SHARE``: a
    delete of one waits for this commit, then finds and removes the membership); one
    in ``members`` that is gone now is refused with 400 ``invalidValue``, as if the
    delete had come first.
    """
    where, param = d.id_set(ids)
    rows = conn.execute(
        d.sql(
            f"SELECT id FROM scim_resources WHERE tenant = ? AND id {where} "
            "ORDER BY id" + d.key_share
        ),
        [tenant, param],
    ).fetchall()
    if len(rows) < len(set(ids)):
        check_new_members_exist(members, ids, {r[0] for r in rows})


def group_ids(d: Dialect, conn: Connection, tenant: str, member_id: str) -> list[str]:
    """The groups listing ``member_id``, by id."""
    rows = conn.execute(
        d.sql("SELECT group_id FROM scim_members WHERE tenant = ? AND member_id = ?"),
        (tenant, member_id),
    ).fetchall()
    return sorted(r[0] for r in rows)


def lock_rows(d: Dialect, conn: Connection, tenant: str, ids: Sequence[str]) -> None:
    """Lock resources for update, in id order (PostgreSQL)."""
    for chunk, marks in chunks(ids):
        conn.execute(
            d.sql(
                f"SELECT id FROM scim_resources WHERE tenant = ? AND id IN ({marks}) "
                "ORDER BY id" + d.for_update
            ),
            [tenant, *chunk],
        ).fetchall()


def leave_groups(
    d: Dialect,
    conn: Connection,
    types: Mapping[str, TypeInfo],
    store: Store,
    tenant: str,
    member_id: str,
    group_ids: Sequence[str],
    when: str,
) -> None:
    """Remove ``member_id`` from the ``members`` of each of ``group_ids`` and touch them.

    RFC 7644 §3.6: "the service provider MUST NOT return the deleted resource" — nor as a
    member: a delete leaves every group in its own transaction. One row per group goes,
    and each group gets a new version (RFC 7644 §3.14), whatever its size.
    """
    if not group_ids:
        return
    d.executemany(
        conn,
        "DELETE FROM scim_members WHERE tenant = ? AND group_id = ? AND member_id = ?",
        [(tenant, gid, member_id) for gid in group_ids],
    )
    touch_rows(d, conn, types, store, tenant, sorted(group_ids), sorted(types), when)
