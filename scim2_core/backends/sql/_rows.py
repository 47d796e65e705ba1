"""Rows of the SQL schema: documents, their folded form and the index rows beside them.

A resource is one ``scim_resources`` row (``doc`` as stored, ``fdoc`` with every
caseExact=false string folded, both without a group's ``members``); ``scim_unique``,
``scim_lookup`` and ``scim_members`` hold one row per unique value, indexed value and
member. Writes change only the rows that differ between the old and the new document.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..._errors import ConfigurationError, UniquenessError
from ...schema import Attribute, AttrRef, ResourceType
from .._rules import derives_groups, lists_members
from .._rules import member_ids as listed_members
from ._dialect import Connection, Dialect
from ._filter import fold

__all__ = [
    "DEFAULT_INDEXED",
    "META_COLUMNS",
    "VERSIONS_JOIN",
    "TypeInfo",
    "add_count",
    "check_indexed",
    "chunks",
    "display",
    "dumps",
    "fold_document",
    "loads",
    "lookups",
    "member_ids",
    "merge_meta",
    "resource_row",
    "type_info",
    "uniques",
    "values_at",
    "write_index_rows",
]

#: Attributes given an equality index when the resource type has them (besides every
#: attribute with ``uniqueness: server|global``): what identity providers filter on.
DEFAULT_INDEXED: Final = ("userName", "externalId", "displayName", "emails.value")

_CHUNK: Final = 500


def chunks(ids: Sequence[str]) -> Iterator[tuple[Sequence[str], str]]:
    """``ids`` in slices of at most ``_CHUNK`` (under every driver's parameter limit), each
    with its ``?, ?, ...`` placeholders for an ``IN (...)``."""
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        yield chunk, ", ".join("?" * len(chunk))


def dumps(doc: Any) -> str:
    """Compact JSON text, as stored."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def loads(text: str) -> dict[str, Any]:
    """The document stored as ``text``."""
    doc: dict[str, Any] = json.loads(text)
    return doc


def values_at(doc: Mapping[str, Any], ref: AttrRef) -> list[Any]:
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


def _fold_complex(
    attr: Attribute, value: dict[str, Any], folded: frozenset[str], plain: frozenset[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        if type(v) is str and k in folded:
            out[k] = fold(v)
        elif k in plain and type(v) is not list:
            out[k] = v
        else:
            out[k] = _fold_value(attr.sub(k), v)
    return out


def _fold_value(attr: Attribute | None, value: Any) -> Any:
    if attr is None:
        return value
    if isinstance(value, list):
        if attr.is_complex:  # a 10k-member list: one plan, one call per member
            folded, plain = _sub_plan(attr)
            return [
                _fold_complex(attr, v, folded, plain) if type(v) is dict else _fold_value(attr, v)
                for v in value
            ]
        return [_fold_value(attr, v) for v in value]
    if attr.is_complex:
        if isinstance(value, dict):
            return _fold_complex(attr, value, *_sub_plan(attr))
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
class TypeInfo:
    """What the backend stores and indexes for one resource type."""

    rt: ResourceType
    unique: tuple[tuple[str, AttrRef, bool], ...]  # (attr key, ref, global)
    indexed: tuple[tuple[str, AttrRef], ...]
    has_members: bool
    #: ``groups`` is derived from memberships: joining or leaving a group changes the
    #: resource (a new version and lastModified, written with the group).
    has_groups: bool
    #: An index row (unique or lookup) reads an attribute of ``meta``.
    meta_indexed: bool


def unique_value(ref: AttrRef, value: Any) -> str:
    if isinstance(value, str):
        return value if ref.target.case_exact else fold(value)
    return dumps(value)


def type_info(rt: ResourceType, indexed_names: Sequence[str]) -> TypeInfo:
    """The unique and indexed attributes of ``rt``; raises ConfigurationError for a name
    the JSON paths cannot hold."""
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
    for name in indexed_names:
        if _why_not_indexable(rt, name) is None:  # else another type's, or check_indexed's
            ref = rt.resolve_path(name)
            indexed[str(ref)] = ref
    has_members = lists_members(rt)
    has_groups = derives_groups(rt)
    meta_indexed = any(
        ref.urn is None and ref.attribute.name == "meta"
        for ref in (*indexed.values(), *(ref for _, ref, _ in unique))
    )
    return TypeInfo(
        rt, tuple(unique), tuple(indexed.items()), has_members, has_groups, meta_indexed
    )


def lookups(info: TypeInfo, fdoc: Mapping[str, Any]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for key, ref in info.indexed:
        for value in values_at(fdoc, ref):
            if isinstance(value, str):
                out.add((key, value))
    return out


def uniques(info: TypeInfo, tenant: str, doc: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    out: set[tuple[str, str, str]] = set()
    for key, ref, is_global in info.unique:
        scope = "g" if is_global else "t:" + tenant
        for value in values_at(doc, ref):
            out.add((scope, key, unique_value(ref, value)))
    return out


def member_ids(info: TypeInfo, doc: Mapping[str, Any]) -> set[str]:
    """The member ids ``doc`` lists (none unless its type lists members)."""
    return listed_members(doc) if info.has_members else set()


def write_index_rows(
    d: Dialect,
    conn: Connection,
    info: TypeInfo,
    tenant: str,
    rid: str,
    old: tuple[Mapping[str, Any], Mapping[str, Any]] | None,
    new: tuple[Mapping[str, Any], Mapping[str, Any]] | None,
) -> None:
    """Write the difference of the unique and lookup rows between ``old`` and ``new``
    (each a ``(doc, fdoc)`` pair without ``members``, or None for "absent"). Member rows
    are written by :func:`._members.write_members`."""
    name = info.rt.name
    o_u = uniques(info, tenant, old[0]) if old else set()
    n_u = uniques(info, tenant, new[0]) if new else set()
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
    o_l = lookups(info, old[1]) if old else set()
    n_l = lookups(info, new[1]) if new else set()
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
        d.executemany(
            conn,
            "INSERT INTO scim_lookup (tenant, type, attr, value, id) VALUES (?, ?, ?, ?, ?)",
            added,
        )


def add_count(d: Dialect, conn: Connection, tenant: str, type: str, delta: int) -> None:
    """Add ``delta`` to the number of ``type`` resources of ``tenant`` (``scim_counts``).

    Called last in its transaction: on PostgreSQL the slot's row stays locked until
    COMMIT, and a transaction holding it never waits for anything else.
    """
    slot = random.randrange(d.count_slots) if d.count_slots > 1 else 0
    conn.execute(
        d.sql(
            "INSERT INTO scim_counts (tenant, type, slot, n) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (tenant, type, slot) DO UPDATE SET n = scim_counts.n + excluded.n"
        ),
        (tenant, type, slot, delta),
    )


def _why_not_indexable(rt: ResourceType, name: str) -> str | None:
    """Why ``name`` cannot have an equality index in ``rt`` (None: it can)."""
    try:
        ref = rt.resolve_path(name)
    except Exception:
        return f"{rt.name} has no attribute {name!r}"
    if ref.target.type not in ("string", "reference") or ref.target.is_complex:
        return f"{rt.name}.{ref} is of type {ref.target.type}, not a string"
    return None


def check_indexed(names: Sequence[str], resource_types: Sequence[ResourceType]) -> None:
    """Raise :class:`~scim2_core.ConfigurationError` for a name in ``indexed`` that no
    resource type can index (a misspelling would otherwise leave filters unindexed)."""
    for name in names:
        reasons = [_why_not_indexable(rt, name) for rt in resource_types]
        if reasons and all(reasons):
            raise ConfigurationError(
                f"indexed attribute {name!r} cannot be indexed: " + "; ".join(map(str, reasons))
            )


def resource_row(
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
        display(doc),
        text,
        dumps(fdoc),
    )


#: The columns a read selects after ``doc`` for :func:`merge_meta`, from ``scim_resources r``
#: with :data:`VERSIONS_JOIN`.
META_COLUMNS: Final = "COALESCE(v.version, r.version), v.modified"

#: What a read of ``scim_resources r`` joins to see the version and time a touch gave a
#: row (schema version 10: ``scim_versions``; no row there when ``doc`` is current).
VERSIONS_JOIN: Final = " LEFT JOIN scim_versions v ON v.tenant = r.tenant AND v.id = r.id"


def merge_meta(doc: dict[str, Any], version: str, modified: str | None) -> dict[str, Any]:
    """``doc`` as read, with the ``meta.version`` and ``meta.lastModified`` a touch left in
    ``scim_versions`` (schema version 10: a member added to or removed from a group gets
    them there, a small row, its own row and documents untouched; ``modified`` is NULL when
    ``doc`` is current). RFC 7644 §3.14: the version read is the version the resource has."""
    if modified is not None:
        meta = doc.get("meta")
        if isinstance(meta, dict):
            meta["version"] = version
            meta["lastModified"] = modified
    return doc


def display(doc: Mapping[str, Any]) -> str | None:
    value = doc.get("displayName")
    return value if isinstance(value, str) else None
