"""``SQLBackend``: SCIM resources in SQLite (the embedded default) or PostgreSQL.

One table holds the resources as JSON documents; small index tables beside it let the
database itself enforce uniqueness, answer membership questions in both directions and find
``userName``/``externalId``/``displayName`` values with one index probe. Filters, sorting
and paging are translated to parameterised SQL (:mod:`._sql_filter`) and run in the
database. See docs/backends.md for the layout and the reasons behind it.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, TypeVar

from .._errors import (
    ConfigurationError,
    InvalidValueError,
    NotFoundError,
    PreconditionFailedError,
    UniquenessError,
)
from .._json import copy_json
from .._meta import now, touch
from .._schema import Attribute, AttrRef, ResourceType
from ._base import Change, Page, SearchQuery
from ._sql_dialect import MIGRATIONS, SCHEMA_VERSION, Connection, Dialect, open_dialect
from ._sql_filter import Translator, fold

__all__ = ["SQLBackend"]

#: Attributes given an equality index when the resource type has them (besides every
#: attribute with ``uniqueness: server|global``): what identity providers filter on.
DEFAULT_INDEXED: Final = ("userName", "externalId", "displayName", "emails.value")

_CHUNK: Final = 500

#: Attempts of a write transaction the database aborted to break a deadlock.
_ATTEMPTS: Final = 5

_T = TypeVar("_T")

#: How often a delete starts over when a group gained the resource as a member between
#: the delete's first look at its groups and its lock on the resource (PostgreSQL).
_DELETE_ATTEMPTS: Final = 8


class _StartOver(Exception):
    """Roll the transaction back and run it again (see :meth:`SQLBackend.delete`)."""


def _tenant_key(tenant: str | None) -> str:
    # Tenant None (single-tenant) is stored as ''. The engine never resolves a tenant to
    # the empty string, so '' cannot collide with a real tenant.
    return "" if tenant is None else tenant


def _chunks(ids: Sequence[str]) -> Iterator[tuple[Sequence[str], str]]:
    """``ids`` in slices of at most ``_CHUNK`` (under every driver's parameter limit), each
    with its ``?, ?, ...`` placeholders for an ``IN (...)``."""
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        yield chunk, ", ".join("?" * len(chunk))


def _dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _loads(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(text)
    return doc


def _values_at(doc: Mapping[str, Any], ref: AttrRef) -> list[Any]:
    """Every value the path ``ref`` reaches in ``doc`` (flattening multi-valued levels)."""
    node: Any = doc
    if ref.urn is not None:
        node = node.get(ref.urn)
        if not isinstance(node, dict):
            return []
    node = node.get(ref.attribute.name)
    items = node if isinstance(node, list) else [node]
    if ref.sub is None:
        return [v for v in items if v is not None]
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            value = item.get(ref.sub.name)
            if isinstance(value, list):
                out.extend(v for v in value if v is not None)
            elif value is not None:
                out.append(value)
    return out


def _folds(attr: Attribute) -> bool:
    return not attr.case_exact and attr.type in ("string", "reference")


#: Per complex attribute (by identity; the attribute is kept so its id stays its own): the
#: canonical names of its simple sub-attributes whose strings fold, and of those whose
#: strings do not. A 10k-member group is folded on every write, so the common case, a
#: string under a canonical name, skips the case-insensitive lookup and the recursion.
_SUB_PLANS: dict[int, tuple[Attribute, frozenset[str], frozenset[str]]] = {}


def _sub_plan(attr: Attribute) -> tuple[frozenset[str], frozenset[str]]:
    known = _SUB_PLANS.get(id(attr))
    if known is None or known[0] is not attr:
        simple = [s for s in attr.sub_attributes if not s.is_complex]
        folded = frozenset(s.name for s in simple if _folds(s))
        plain = frozenset(s.name for s in simple if not _folds(s))
        known = _SUB_PLANS[id(attr)] = (attr, folded, plain)
    return known[1], known[2]


def _fold_value(attr: Attribute | None, value: Any) -> Any:
    if attr is None:
        return value
    if isinstance(value, list):
        return [_fold_value(attr, v) for v in value]
    if attr.is_complex:
        if isinstance(value, dict):
            folded, plain = _sub_plan(attr)
            out: dict[str, Any] = {}
            for k, v in value.items():
                if type(v) is str and k in folded:
                    out[k] = fold(v)
                elif k in plain and type(v) is not list:
                    out[k] = v
                else:
                    out[k] = _fold_value(attr.sub(k), v)
            return out
        return value
    if isinstance(value, str) and _folds(attr):
        return fold(value)
    return value


def fold_document(rt: ResourceType, doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` with every caseExact=false string value folded (what filters compare)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "schemas":
            # Filterable (RFC 7644 Figure 2) and caseExact=false, like any reference.
            out[key] = (
                [fold(v) if isinstance(v, str) else v for v in value]
                if isinstance(value, list)
                else value
            )
            continue
        found = rt.top_level(key)
        if found is None:
            out[key] = value
            continue
        _urn, target = found
        if isinstance(target, Attribute):
            out[key] = _fold_value(target, value)
        elif isinstance(value, dict):
            out[key] = {k: _fold_value(target.attribute(k), v) for k, v in value.items()}
        else:
            out[key] = value
    return out


@dataclass(frozen=True, slots=True)
class _TypeInfo:
    rt: ResourceType
    unique: tuple[tuple[str, AttrRef, bool], ...]  # (attr key, ref, global)
    indexed: tuple[tuple[str, AttrRef], ...]
    has_members: bool
    #: ``groups`` is derived from memberships: joining or leaving a group changes the
    #: resource (a new version and lastModified, written with the group).
    has_groups: bool
    #: An index row (unique or lookup) reads an attribute of ``meta``.
    meta_indexed: bool


def _unique_value(ref: AttrRef, value: Any) -> str:
    if isinstance(value, str):
        return value if ref.target.case_exact else fold(value)
    return _dumps(value)


class SQLBackend:
    """A :class:`~scim2_core.backends.Backend` over SQLite or PostgreSQL.

    ``url`` is ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``,
    ``sqlite:///:memory:`` (one private in-memory database, for tests) or
    ``postgresql://user@host:port/dbname`` (needs the ``postgres`` extra, psycopg 3).

    Options:

    * ``synchronous`` (SQLite): ``"FULL"`` (default; every acknowledged write survives a
      process kill and a power loss) or ``"NORMAL"`` (survives a process kill only;
      faster commits);
    * ``busy_timeout``: seconds to wait for a lock (SQLite) or a connection (PostgreSQL);
    * ``schema`` (PostgreSQL): the schema to create and use instead of the default
      ``search_path``;
    * ``indexed``: attribute paths given an equality index (default: userName, externalId,
      displayName, emails.value where the type has them, plus every unique attribute).

    Thread-safe: each thread uses its own connection (``:memory:`` uses one connection
    behind a lock). Several processes may share one SQLite file.
    """

    never_blocks = False

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 30.0,
        schema: str | None = None,
        indexed: Sequence[str] = DEFAULT_INDEXED,
    ) -> None:
        self.url = url
        self._dialect: Dialect = open_dialect(
            url, synchronous=synchronous, busy_timeout=busy_timeout, schema=schema
        )
        self._indexed_names = tuple(indexed)
        self._types: dict[str, _TypeInfo] = {}
        self._translator = Translator(self._dialect)
        self._bind_lock = threading.Lock()

    # --- lifecycle --------------------------------------------------------------------
    def close(self) -> None:
        """Close every connection this backend opened."""
        self._dialect.close()

    def __enter__(self) -> SQLBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._dialect.name

    def bind(self, resource_types: Sequence[ResourceType]) -> None:
        """Create or migrate the schema, learn the types; see the protocol."""
        with self._bind_lock:
            infos: dict[str, _TypeInfo] = {}
            for rt in resource_types:
                infos[rt.name] = self._type_info(rt)
            self._migrate()
            self._types.update(infos)
            self._reindex_if_needed()
            self._analyze()

    def _type_info(self, rt: ResourceType) -> _TypeInfo:
        unique: list[tuple[str, AttrRef, bool]] = []
        for urn, attr in rt.iter_attributes():
            for key in (urn, attr.name, *(s.name for s in attr.sub_attributes)):
                if key is not None and '"' in key:
                    raise ConfigurationError(
                        f"attribute name {key!r} of {rt.name} cannot be stored: it contains '\"'"
                    )
            if attr.name == "id" and urn is None:
                continue  # the primary key enforces id uniqueness
            if attr.uniqueness in ("server", "global") and not attr.is_complex:
                ref = AttrRef(urn, attr)
                unique.append((str(ref), ref, attr.uniqueness == "global"))
            for sub in attr.sub_attributes:
                if sub.uniqueness in ("server", "global"):
                    ref = AttrRef(urn, attr, sub)
                    unique.append((str(ref), ref, sub.uniqueness == "global"))
        indexed: dict[str, AttrRef] = {}
        for key, ref, _ in unique:
            if ref.target.type in ("string", "reference"):
                indexed[key] = ref
        for name in self._indexed_names:
            try:
                ref = rt.resolve_path(name)
            except Exception:
                continue
            if ref.target.type in ("string", "reference") and not ref.target.is_complex:
                indexed[str(ref)] = ref
        members = rt.schema.attribute("members")
        has_members = (
            members is not None and members.multi_valued and members.sub("value") is not None
        )
        has_groups = rt.schema.attribute("groups") is not None
        meta_indexed = any(
            ref.urn is None and ref.attribute.name == "meta"
            for ref in (*indexed.values(), *(ref for _, ref, _ in unique))
        )
        return _TypeInfo(
            rt, tuple(unique), tuple(indexed.items()), has_members, has_groups, meta_indexed
        )

    def _info(self, rt: ResourceType) -> _TypeInfo:
        info = self._types.get(rt.name)
        if info is None or info.rt is not rt:
            info = self._type_info(rt)
            self._types[rt.name] = info
        return info

    # --- schema versions --------------------------------------------------------------
    def schema_version(self) -> int:
        """The schema version stored in the database (0 if it has no schema yet)."""
        conn = self._dialect.connection()
        if not self._dialect.table_exists(conn, "scim_schema"):
            return 0
        row = conn.execute("SELECT version FROM scim_schema").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        d = self._dialect
        with self._tx(write=True) as conn:
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
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(d.ddl(statement))
                conn.execute(d.sql("UPDATE scim_schema SET version = ?"), (target,))
            d.plan_statistics(conn)

    def _reindex_if_needed(self) -> None:
        """Rebuild the equality index of every type whose indexed attribute set changed
        (and after the migration that created the index table)."""
        d = self._dialect
        for name, info in self._types.items():
            signature = _dumps(sorted(key for key, _ in info.indexed))
            setting = f"lookup:{name}"
            with self._tx(write=True) as conn:
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
                    rows.extend(
                        (tenant, name, key, value, rid) for key, value in self._lookups(info, fd)
                    )
                if rows:
                    self._executemany(
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

    # --- transactions -----------------------------------------------------------------
    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Connection]:
        d = self._dialect
        if d.shared:
            d._lock.acquire()
        try:
            conn = d.connection()
            try:
                conn.execute(d.begin_write if write else d.begin_read)
            except Exception:
                d.forget()
                raise
            try:
                yield conn
            except BaseException:
                try:
                    conn.execute("ROLLBACK")
                except Exception:
                    d.forget()
                raise
            # Commit before returning: an acknowledged write is a committed write.
            conn.execute("COMMIT")
        finally:
            if d.shared:
                d._lock.release()

    def _executemany(self, conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        d = self._dialect
        if d.name == "sqlite":
            conn.executemany(d.sql(sql), rows)  # type: ignore[attr-defined]
        else:
            with conn.cursor() as cur:  # type: ignore[attr-defined]
                cur.executemany(d.sql(sql), rows)

    # --- index rows -------------------------------------------------------------------
    @staticmethod
    def _lookups(info: _TypeInfo, fdoc: Mapping[str, Any]) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for key, ref in info.indexed:
            for value in _values_at(fdoc, ref):
                if isinstance(value, str):
                    out.add((key, value))
        return out

    @staticmethod
    def _uniques(info: _TypeInfo, tenant: str, doc: Mapping[str, Any]) -> set[tuple[str, str, str]]:
        out: set[tuple[str, str, str]] = set()
        for key, ref, is_global in info.unique:
            scope = "g" if is_global else "t:" + tenant
            for value in _values_at(doc, ref):
                out.add((scope, key, _unique_value(ref, value)))
        return out

    @staticmethod
    def _members(info: _TypeInfo, doc: Mapping[str, Any]) -> set[str]:
        if not info.has_members:
            return set()
        members = doc.get("members")
        if not isinstance(members, list):
            return set()
        return {
            m["value"] for m in members if isinstance(m, dict) and isinstance(m.get("value"), str)
        }

    def _write_indexes(
        self,
        conn: Connection,
        info: _TypeInfo,
        tenant: str,
        rid: str,
        old: tuple[Mapping[str, Any], Mapping[str, Any]] | None,
        new: tuple[Mapping[str, Any], Mapping[str, Any]] | None,
        members: Collection[str] = (),
    ) -> set[str]:
        """Write the difference of the index rows between ``old`` and ``new`` (each a
        ``(doc, fdoc)`` pair, or None for "absent"). New members listed in ``members`` that
        do not exist are refused (:meth:`_check_new_members`). Returns the member ids
        added or removed."""
        d = self._dialect
        name = info.rt.name
        o_u = self._uniques(info, tenant, old[0]) if old else set()
        n_u = self._uniques(info, tenant, new[0]) if new else set()
        for scope, key, value in o_u - n_u:
            conn.execute(
                d.sql(
                    "DELETE FROM scim_unique WHERE scope = ? AND type = ? AND attr = ? "
                    "AND value = ? AND tenant = ? AND id = ?"
                ),
                (scope, name, key, value, tenant, rid),
            )
        for scope, key, value in sorted(n_u - o_u):
            # RFC 7643 §2.3.2 uniqueness "server": "The value SHOULD be unique by tenant";
            # "global": "The value SHOULD be globally unique". The PRIMARY KEY of
            # scim_unique makes the database refuse the second holder of a value, even
            # when two transactions race.
            cur = conn.execute(
                d.sql(
                    "INSERT INTO scim_unique (scope, type, attr, value, tenant, id) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
                ),
                (scope, name, key, value, tenant, rid),
            )
            if cur.rowcount != 1:
                raise UniquenessError(f"The value of {key!r} is already in use.")
        o_l = self._lookups(info, old[1]) if old else set()
        n_l = self._lookups(info, new[1]) if new else set()
        for key, value in o_l - n_l:
            conn.execute(
                d.sql(
                    "DELETE FROM scim_lookup WHERE tenant = ? AND type = ? AND attr = ? "
                    "AND value = ? AND id = ?"
                ),
                (tenant, name, key, value, rid),
            )
        added = [(tenant, name, key, value, rid) for key, value in n_l - o_l]
        if added:
            self._executemany(
                conn,
                "INSERT INTO scim_lookup (tenant, type, attr, value, id) VALUES (?, ?, ?, ?, ?)",
                added,
            )
        o_m = self._members(info, old[0]) if old else set()
        n_m = self._members(info, new[0]) if new else set()
        gone = [(tenant, rid, m) for m in o_m - n_m]
        if gone:
            self._executemany(
                conn,
                "DELETE FROM scim_members WHERE tenant = ? AND group_id = ? AND member_id = ?",
                gone,
            )
        came = [(tenant, rid, m) for m in sorted(n_m - o_m)]
        if came:
            if members:
                self._check_new_members(conn, tenant, [m for _, _, m in came], members)
            self._executemany(
                conn,
                "INSERT INTO scim_members (tenant, group_id, member_id) VALUES (?, ?, ?)",
                came,
            )
        return o_m ^ n_m

    def _touch_members(
        self, conn: Connection, tenant: str, group_id: str, ids: Collection[str], when: str
    ) -> None:
        """Touch the members ``ids`` (added to or removed from ``group_id``) whose type has
        a derived ``groups``: a new version and ``meta.lastModified`` = ``when``.

        RFC 7644 §3.14: a version changes whenever the representation does, and a User's
        ``groups`` (RFC 7643 §4.1.2) is part of it. Called inside the group's write, after
        the group's row is locked and after :meth:`_check_new_members`: the member rows are
        locked ``FOR NO KEY UPDATE`` in id order (PostgreSQL), the lock order every write
        keeps (groups, then members by id). Ids that are gone (a deleted member) are
        skipped, as are types without ``groups`` (a nested Group is not locked).
        """
        types = sorted(name for name, info in self._types.items() if info.has_groups)
        wanted = sorted(i for i in ids if i != group_id)
        if not types or not wanted:
            return
        d = self._dialect
        kinds = ", ".join("?" * len(types))
        for chunk, marks in _chunks(wanted):
            rows = conn.execute(
                d.sql(
                    "SELECT id, type, doc, fdoc FROM scim_resources WHERE tenant = ? "
                    f"AND id IN ({marks}) AND type IN ({kinds}) ORDER BY id" + d.for_update
                ),
                [tenant, *chunk, *types],
            ).fetchall()
            updates: list[tuple[str, str, str, str, str]] = []
            for mid, kind, text, fdoc in rows:
                info = self._types[kind]
                old = _loads(text)
                new = _loads(text)
                touch(new, when)
                if info.meta_indexed:  # index rows may change: the general path
                    self._store(conn, info, tenant, mid, old, new)
                    continue
                # Only meta changed, and no index row reads it: rewrite the row alone.
                folded = json.loads(fdoc) if isinstance(fdoc, str) else fdoc
                folded["meta"] = fold_document(info.rt, {"meta": new["meta"]})["meta"]
                version = str(new["meta"]["version"])
                updates.append((version, _dumps(new), _dumps(folded), tenant, mid))
            if updates:
                self._executemany(
                    conn,
                    "UPDATE scim_resources SET version = ?, doc = ?, "
                    f"fdoc = {d.json_param} WHERE tenant = ? AND id = ?",
                    updates,
                )

    def _check_new_members(
        self, conn: Connection, tenant: str, ids: Sequence[str], members: Collection[str]
    ) -> None:
        """Refuse new members that do not exist, e.g. deleted while this write was under way.

        The engine checks that new members exist (:meth:`existing`) just before it writes
        and passes them as ``members``; a member deleted in between would be left dangling
        (its delete could not see this uncommitted membership). Inside the transaction, the
        new members (``ids``) that still exist are locked (PostgreSQL ``FOR KEY SHARE``: a
        delete of one waits for this commit, then finds and removes the membership); one
        in ``members`` that is gone now is refused with 400 ``invalidValue``, as if the
        delete had come first.
        """
        d = self._dialect
        present: set[str] = set()
        for chunk, marks in _chunks(ids):
            rows = conn.execute(
                d.sql(
                    f"SELECT id FROM scim_resources WHERE tenant = ? AND id IN ({marks}) "
                    "ORDER BY id" + d.key_share
                ),
                [tenant, *chunk],
            ).fetchall()
            present.update(r[0] for r in rows)
        gone = sorted(i for i in ids if i not in present and i in members)
        if gone:
            shown = ", ".join(gone[:5]) + (" ..." if len(gone) > 5 else "")
            raise InvalidValueError(f"Members do not exist: {shown}.")

    def _group_ids(self, conn: Connection, tenant: str, member_id: str) -> list[str]:
        d = self._dialect
        rows = conn.execute(
            d.sql("SELECT group_id FROM scim_members WHERE tenant = ? AND member_id = ?"),
            (tenant, member_id),
        ).fetchall()
        return sorted(r[0] for r in rows)

    def _lock_rows(self, conn: Connection, tenant: str, ids: Sequence[str]) -> None:
        """Lock resources for update, in id order (PostgreSQL)."""
        d = self._dialect
        for chunk, marks in _chunks(ids):
            conn.execute(
                d.sql(
                    f"SELECT id FROM scim_resources WHERE tenant = ? AND id IN ({marks}) "
                    "ORDER BY id" + d.for_update
                ),
                [tenant, *chunk],
            ).fetchall()

    # --- Backend ----------------------------------------------------------------------
    def create(
        self,
        tenant: str | None,
        rt: ResourceType,
        resource: dict[str, Any],
        *,
        members: Collection[str] = (),
    ) -> dict[str, Any]:
        info = self._info(rt)
        t = _tenant_key(tenant)
        text = _dumps(resource)
        doc = _loads(text)
        self._check_storable(text, doc)  # our own copy, as it will be read back
        fdoc = fold_document(rt, doc)
        rid = doc.get("id")
        if not isinstance(rid, str) or not rid:
            raise ValueError("the engine must assign a string id before create()")
        d = self._dialect
        wanted = frozenset(members)

        def attempt() -> dict[str, Any]:
            with self._tx(write=True) as conn:
                cur = conn.execute(
                    d.sql(
                        "INSERT INTO scim_resources "
                        "(tenant, id, type, version, created, display, doc, fdoc) "
                        f"VALUES (?, ?, ?, ?, ?, ?, ?, {d.json_param}) ON CONFLICT DO NOTHING"
                    ),
                    _resource_row(t, rid, rt, doc, text, fdoc),
                )
                if cur.rowcount != 1:
                    raise UniquenessError(f"A resource with id {rid!r} already exists.")
                added = self._write_indexes(conn, info, t, rid, None, (doc, fdoc), wanted)
                if added:
                    self._touch_members(conn, t, rid, added, _modified(doc))
                self._count(conn, t, rt.name, 1)
            return doc

        return self._retrying(attempt)

    def create_many(
        self, tenant: str | None, rt: ResourceType, resources: Iterable[dict[str, Any]]
    ) -> int:
        """Store many new resources in ONE transaction (a bulk import): all or nothing.

        Not part of the Backend protocol; the engine never calls it. Each resource must be
        complete as for :meth:`create`. Raises :class:`~scim2_core.UniquenessError` (and
        stores nothing) if an id or a unique value is taken, also within the batch.
        Returns the number stored.
        """
        info = self._info(rt)
        t = _tenant_key(tenant)
        d = self._dialect
        rows: list[tuple[Any, ...]] = []
        uniques: list[tuple[str, ...]] = []
        lookups: list[tuple[str, ...]] = []
        members: list[tuple[str, ...]] = []
        for resource in resources:
            text = _dumps(resource)
            doc = _loads(text)
            self._check_storable(text, doc)
            fdoc = fold_document(rt, doc)
            rid = doc.get("id")
            if not isinstance(rid, str) or not rid:
                raise ValueError("every resource needs a string id")
            rows.append(_resource_row(t, rid, rt, doc, text, fdoc))
            uniques.extend((s, rt.name, k, v, t, rid) for s, k, v in self._uniques(info, t, doc))
            lookups.extend((t, rt.name, k, v, rid) for k, v in self._lookups(info, fdoc))
            members.extend((t, rid, m) for m in self._members(info, doc))
        with self._tx(write=True) as conn:
            try:
                self._executemany(
                    conn,
                    "INSERT INTO scim_resources "
                    "(tenant, id, type, version, created, display, doc, fdoc) "
                    f"VALUES (?, ?, ?, ?, ?, ?, ?, {d.json_param})",
                    rows,
                )
                self._executemany(
                    conn,
                    "INSERT INTO scim_unique (scope, type, attr, value, tenant, id) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    uniques,
                )
            except Exception as exc:
                if d.is_integrity_error(exc):
                    raise UniquenessError("An id or a unique value is already in use.") from exc
                raise
            if lookups:
                self._executemany(
                    conn,
                    "INSERT INTO scim_lookup (tenant, type, attr, value, id) "
                    "VALUES (?, ?, ?, ?, ?)",
                    lookups,
                )
            if members:
                self._executemany(
                    conn,
                    "INSERT INTO scim_members (tenant, group_id, member_id) VALUES (?, ?, ?)",
                    members,
                )
            if rows:
                self._count(conn, t, rt.name, len(rows))
        self._analyze(vacuum=True)
        return len(rows)

    def _retrying(self, attempt: Callable[[], _T]) -> _T:
        """Run one write transaction, again if the database aborted it to break a deadlock
        (PostgreSQL detects lock cycles, e.g. two renames swapping two userNames, and
        aborts one of them; run again, it either succeeds or meets a real conflict)."""
        for n in range(1, _ATTEMPTS + 1):
            try:
                return attempt()
            except Exception as exc:
                if n == _ATTEMPTS or not self._dialect.is_retryable(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _count(self, conn: Connection, tenant: str, type: str, delta: int) -> None:
        """Add ``delta`` to the number of ``type`` resources of ``tenant`` (``scim_counts``).

        Called last in its transaction: on PostgreSQL the slot's row stays locked until
        COMMIT, and a transaction holding it never waits for anything else.
        """
        d = self._dialect
        slot = random.randrange(d.count_slots) if d.count_slots > 1 else 0
        conn.execute(
            d.sql(
                "INSERT INTO scim_counts (tenant, type, slot, n) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (tenant, type, slot) DO UPDATE SET n = scim_counts.n + excluded.n"
            ),
            (tenant, type, slot, delta),
        )

    def _analyze(self, *, vacuum: bool = False) -> None:
        """PostgreSQL: refresh planner statistics, so that a freshly loaded table is
        searched through its indexes (before autovacuum gets to it, the planner assumes
        an empty table and scans). ``vacuum`` (after a bulk load) also sets the visibility
        map, so that counting and paging can read the indexes alone."""
        if self._dialect.name == "postgresql":
            conn = self._dialect.connection()
            command = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
            for table in ("scim_resources", "scim_lookup", "scim_members", "scim_unique"):
                conn.execute(f"{command} {table}")

    def get(self, tenant: str | None, rt: ResourceType, id: str) -> dict[str, Any] | None:
        d = self._dialect
        with self._tx(write=False) as conn:
            row = conn.execute(
                d.sql("SELECT doc FROM scim_resources WHERE tenant = ? AND id = ? AND type = ?"),
                (_tenant_key(tenant), id, rt.name),
            ).fetchone()
        return None if row is None else _loads(row[0])

    def search(self, tenant: str | None, rt: ResourceType, query: SearchQuery) -> Page:
        info = self._info(rt)
        d = self._dialect
        where, params, _probes = self._translator.where(
            info.rt,
            query.filter,
            _tenant_key(tenant),
            {k for k, _ in info.indexed},
            info.has_members,
        )
        base = "FROM scim_resources r WHERE r.tenant = ? AND r.type = ?"
        base_params: list[Any] = [_tenant_key(tenant), rt.name]
        if where:
            base += f" AND ({where})"
            base_params.extend(params)
        if query.sort is not None:
            order, order_params = self._translator.order_by(info.rt, query.sort)
        else:
            order, order_params = "r.created, r.id", []
        if where:
            count_sql, count_params = f"SELECT count(*) {base}", base_params
        else:
            # Every resource of the type: the kept count, not a scan (scim_counts).
            count_sql = "SELECT COALESCE(SUM(n), 0) FROM scim_counts WHERE tenant = ? AND type = ?"
            count_params = [_tenant_key(tenant), rt.name]
        with self._tx(write=False) as conn:
            total = int(conn.execute(d.sql(count_sql), count_params).fetchone()[0])
            resources: list[dict[str, Any]] = []
            if query.count > 0 and query.offset < total:
                rows = conn.execute(
                    d.sql(f"SELECT r.doc {base} ORDER BY {order} LIMIT ? OFFSET ?"),
                    [*base_params, *order_params, query.count, max(0, query.offset)],
                ).fetchall()
                resources = [json.loads(r[0]) for r in rows]
        return Page(total=total, resources=resources)

    def _load_for_update(
        self, conn: Connection, tenant: str, rt: ResourceType, id: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The stored document and its folded form (read, not recomputed: folding a
        10k-member group costs more than parsing it)."""
        d = self._dialect
        row = conn.execute(
            d.sql(
                "SELECT doc, fdoc FROM scim_resources WHERE tenant = ? AND id = ? AND type = ?"
                + d.for_update
            ),
            (tenant, id, rt.name),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"{rt.name} {id!r} not found.")
        fdoc = row[1]
        return _loads(row[0]), json.loads(fdoc) if isinstance(fdoc, str) else fdoc

    @staticmethod
    def _check_version(current: Mapping[str, Any], if_match: Collection[str] | None) -> None:
        # RFC 7644 §3.14: "If the version does not match, the service provider [...] MUST
        # return an HTTP 412 Precondition Failed"; checked inside the write transaction.
        if if_match is None:
            return
        version = (current.get("meta") or {}).get("version")
        if version not in if_match:
            raise PreconditionFailedError(
                "The resource has changed on the server (If-Match does not match its version)."
            )

    def _check_storable(self, text: str, doc: Any) -> None:
        if self._dialect.name == "postgresql" and "\\u0000" in text and _has_nul(doc):
            # PostgreSQL text and jsonb cannot hold U+0000.
            raise InvalidValueError("Values cannot contain the character U+0000.")

    def _store(
        self,
        conn: Connection,
        info: _TypeInfo,
        tenant: str,
        rid: str,
        old: dict[str, Any],
        new: dict[str, Any],
        members: Collection[str] = (),
        old_fdoc: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        d = self._dialect
        text = _dumps(new)
        doc = _loads(text)
        self._check_storable(text, doc)
        fdoc = fold_document(info.rt, doc)
        if old_fdoc is None:
            old_fdoc = fold_document(info.rt, old)
        meta = doc.get("meta") or {}
        conn.execute(
            d.sql(
                "UPDATE scim_resources SET version = ?, display = ?, doc = ?, "
                f"fdoc = {d.json_param} WHERE tenant = ? AND id = ?"
            ),
            (str(meta.get("version") or ""), _display(doc), text, _dumps(fdoc), tenant, rid),
        )
        changed = self._write_indexes(
            conn, info, tenant, rid, (old, old_fdoc), (doc, fdoc), members
        )
        if changed:
            self._touch_members(conn, tenant, rid, changed, _modified(doc))
        return doc

    def update(
        self,
        tenant: str | None,
        rt: ResourceType,
        id: str,
        change: Change,
        *,
        if_match: Collection[str] | None = None,
        members: Collection[str] = (),
    ) -> dict[str, Any]:
        info = self._info(rt)
        t = _tenant_key(tenant)
        wanted = frozenset(members)

        def attempt() -> dict[str, Any]:
            with self._tx(write=True) as conn:
                current, current_fdoc = self._load_for_update(conn, t, rt, id)
                self._check_version(current, if_match)
                new = change(copy_json(current))
                if new is None:
                    return current
                return self._store(conn, info, t, id, current, new, wanted, current_fdoc)

        return self._retrying(attempt)

    def delete(
        self,
        tenant: str | None,
        rt: ResourceType,
        id: str,
        *,
        if_match: Collection[str] | None = None,
    ) -> dict[str, Any]:
        info = self._info(rt)
        t = _tenant_key(tenant)
        d = self._dialect

        def attempt(last: bool) -> dict[str, Any]:
            with self._tx(write=True) as conn:
                # Lock order, as in a group write adding a member: the groups, then the
                # member. (PostgreSQL; SQLite admits one writer at a time anyway.)
                group_ids = self._group_ids(conn, t, id)
                if d.for_update and group_ids:
                    self._lock_rows(conn, t, group_ids)
                row = conn.execute(
                    d.sql(
                        "SELECT doc FROM scim_resources WHERE tenant = ? AND id = ? AND type = ?"
                        + d.for_delete
                    ),
                    (t, id, rt.name),
                ).fetchone()
                if row is None:
                    raise NotFoundError(f"{rt.name} {id!r} not found.")
                current = _loads(row[0])
                self._check_version(current, if_match)
                if d.for_update:
                    # A group that gained this member (and committed) between the first
                    # look and the lock: start over, so that it is locked first too.
                    latest = self._group_ids(conn, t, id)
                    extra = sorted(set(latest) - set(group_ids))
                    if extra and not last:
                        raise _StartOver
                    if extra:
                        self._lock_rows(conn, t, extra)
                    group_ids = latest
                conn.execute(
                    d.sql("DELETE FROM scim_resources WHERE tenant = ? AND id = ?"), (t, id)
                )
                gone = self._write_indexes(
                    conn, info, t, id, (current, fold_document(rt, current)), None
                )
                when = now()
                # Its members leave it (after it is locked: groups, then members by id).
                if gone:
                    self._touch_members(conn, t, id, gone, when)
                # RFC 7644 §3.6: "the service provider MUST NOT return the deleted resource"
                # — nor as a member: leave every group in this same transaction.
                for gid in group_ids:
                    row = conn.execute(
                        d.sql("SELECT type, doc FROM scim_resources WHERE tenant = ? AND id = ?"),
                        (t, gid),
                    ).fetchone()
                    if row is None:  # pragma: no cover - membership rows follow their group
                        continue
                    ginfo = self._types.get(row[0])
                    group = json.loads(row[1])
                    if ginfo is None:  # pragma: no cover - a type this process does not serve
                        continue
                    new = json.loads(row[1])
                    new["members"] = [
                        m
                        for m in new.get("members") or []
                        if not (isinstance(m, dict) and m.get("value") == id)
                    ]
                    if not new["members"]:
                        del new["members"]
                    touch(new, when)
                    self._store(conn, ginfo, t, gid, group, new)
                self._count(conn, t, rt.name, -1)
            return current

        for n in range(1, _DELETE_ATTEMPTS + 1):
            try:
                return self._retrying(partial(attempt, n == _DELETE_ATTEMPTS))
            except _StartOver:
                continue
        raise AssertionError("unreachable")  # pragma: no cover

    def groups_of(
        self, tenant: str | None, member_ids: Iterable[str]
    ) -> Mapping[str, list[dict[str, Any]]]:
        ids = list(dict.fromkeys(member_ids))
        out: dict[str, list[dict[str, Any]]] = {}
        if not ids:
            return out
        t = _tenant_key(tenant)
        d = self._dialect
        with self._tx(write=False) as conn:
            for chunk, marks in _chunks(ids):
                rows = conn.execute(
                    d.sql(
                        "SELECT m.member_id, r.id, r.display FROM scim_members m "
                        "JOIN scim_resources r ON r.tenant = m.tenant AND r.id = m.group_id "
                        f"WHERE m.tenant = ? AND m.member_id IN ({marks}) "
                        "ORDER BY m.member_id, r.created, r.id"
                    ),
                    [t, *chunk],
                ).fetchall()
                for member_id, gid, display in rows:
                    entry: dict[str, Any] = {"value": gid}
                    if display is not None:
                        entry["display"] = display
                    out.setdefault(member_id, []).append(entry)
        return out

    def existing(self, tenant: str | None, ids: Iterable[str]) -> Mapping[str, str]:
        wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str)))
        out: dict[str, str] = {}
        if not wanted:
            return out
        t = _tenant_key(tenant)
        d = self._dialect
        with self._tx(write=False) as conn:
            for chunk, marks in _chunks(wanted):
                rows = conn.execute(
                    d.sql(
                        f"SELECT id, type FROM scim_resources WHERE tenant = ? AND id IN ({marks})"
                    ),
                    [t, *chunk],
                ).fetchall()
                out.update(dict(rows))
        return out


def _resource_row(
    tenant: str, rid: str, rt: ResourceType, doc: Mapping[str, Any], text: str, fdoc: Any
) -> tuple[Any, ...]:
    """The ``scim_resources`` columns (tenant, id, type, version, created, display, doc,
    fdoc) of a new resource."""
    meta = doc.get("meta") or {}
    return (
        tenant,
        rid,
        rt.name,
        str(meta.get("version") or ""),
        str(meta.get("created") or ""),
        _display(doc),
        text,
        _dumps(fdoc),
    )


def _modified(doc: Mapping[str, Any]) -> str:
    """``meta.lastModified`` of a document the engine wrote (the time of the write)."""
    meta = doc.get("meta") or {}
    modified = meta.get("lastModified")
    return modified if isinstance(modified, str) else now()


def _display(doc: Mapping[str, Any]) -> str | None:
    value = doc.get("displayName")
    return value if isinstance(value, str) else None
