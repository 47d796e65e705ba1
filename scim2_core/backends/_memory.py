"""An in-process backend: plain dicts behind one lock, with the indexes a directory needs.

:class:`MemoryBackend` keeps every resource as a canonical JSON dict. It never blocks on I/O,
so the ASGI app may call the engine on its event loop. It is the reference implementation of
the :class:`~scim2_core.backends.Backend` protocol: filter semantics are exactly those of
:func:`scim2_core.filter.compile_filter`, applied to the stored dicts.

Lookups that a provisioning client makes on every sync do not scan:

* by ``id`` (a dict per resource type);
* ``userName eq "x"`` and every other attribute with ``uniqueness: server|global`` (an index
  keyed by the value, lowercased unless the attribute is ``caseExact``), ``externalId eq``;
* ``members.value eq "x"`` / ``members[value eq "x"]`` and :meth:`MemoryBackend.groups_of`
  (a reverse membership index, member id -> ids of the resources listing it).

Any other filter is compiled once and evaluated over the resources in ``(meta.created, id)``
order. Nothing is persisted: the data lives as long as the object.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from .._errors import (
    InvalidValueError,
    NotFoundError,
    PreconditionFailedError,
    UniquenessError,
)
from .._json import copy_json
from .._meta import now, touch
from .._schema import Attribute, AttrRef, ResourceType
from ..filter import Predicate, compile_filter, sort_key
from ..filter._ast import And, Compare, Filter, Or, ValuePath
from ._base import Change, Page, SearchQuery

__all__ = ["MemoryBackend"]

#: ``(urn, name, sub)`` in canonical spelling: the dict keys leading to an indexed value.
_Path: TypeAlias = tuple[str | None, str, str | None]
#: An index: normalised value -> ids of the resources holding it.
_Index: TypeAlias = dict[Any, set[str]]

_COMPILED_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class _IndexSpec:
    """One indexed attribute of a resource type."""

    path: _Path
    attribute: Attribute
    multi_valued: bool
    #: RFC 7643 §7 "caseExact": "A Boolean value that specifies whether or not a string
    #: attribute is case sensitive"; a case-insensitive attribute is indexed by its
    #: lowercased value, the very comparison :func:`~scim2_core.filter.compile_filter` makes.
    case_exact: bool
    uniqueness: str
    label: str

    def key(self, value: str) -> str:
        return value if self.case_exact else value.lower()

    def keys(self, resource: Mapping[str, Any]) -> set[Any]:
        """The normalised values ``resource`` holds for this attribute."""
        urn, name, sub = self.path
        container = resource if urn is None else resource.get(urn)
        if not isinstance(container, dict):
            return set()
        value = container.get(name)
        if value is None:
            return set()
        values: Iterable[Any]
        if sub is not None:
            items = value if isinstance(value, list) else [value]
            values = [item.get(sub) for item in items if isinstance(item, dict)]
        else:
            values = value if isinstance(value, list) else [value]
        return {self.key(v) if isinstance(v, str) else v for v in values if _hashable(v)}


def _hashable(value: Any) -> bool:
    return value is not None and isinstance(value, (str, int, float))


@dataclass(frozen=True, slots=True)
class _Spec:
    """What the backend indexes for one resource type."""

    indexes: dict[_Path, _IndexSpec]
    #: True if the resource type has a multi-valued ``members`` attribute with ``value``.
    has_members: bool
    #: True if the resource type has a ``groups`` attribute, derived from memberships: a
    #: resource of it changes (new version and lastModified) when it joins or leaves one.
    has_groups: bool


def _spec_for(rt: ResourceType) -> _Spec:
    indexes: dict[_Path, _IndexSpec] = {}

    def add(urn: str | None, attr: Attribute, sub: Attribute | None) -> None:
        target = sub or attr
        path: _Path = (urn, attr.name, sub.name if sub is not None else None)
        indexes[path] = _IndexSpec(
            path=path,
            attribute=target,
            multi_valued=attr.multi_valued or target.multi_valued,
            case_exact=target.case_exact,
            uniqueness=target.uniqueness,
            label=str(AttrRef(urn, attr, sub)),
        )

    has_members = False
    for urn, attr in rt.iter_attributes():
        if urn is None and attr.name == "id":
            continue  # the row dict is the id index; ids are unique per tenant
        if urn is None and attr.name == "members" and attr.multi_valued:
            has_members = attr.sub("value") is not None
            continue  # the tenant's reverse membership index serves members.value
        if attr.is_complex:
            for sub in attr.sub_attributes:
                if sub.uniqueness != "none" and not sub.is_complex:
                    add(urn, attr, sub)
        elif attr.uniqueness != "none" or (urn is None and attr.name == "externalId"):
            add(urn, attr, None)
    has_groups = rt.schema.attribute("groups") is not None
    return _Spec(indexes=indexes, has_members=has_members, has_groups=has_groups)


def _member_ids(resource: Mapping[str, Any]) -> set[Any]:
    """The ``value`` of every entry of ``members`` (canonical resources: dicts with str)."""
    members = resource.get("members")
    if not members or not isinstance(members, list):
        return set()
    try:
        return {m["value"] for m in members}
    except (TypeError, KeyError):  # not canonical: skip what is not a member reference
        return {
            m["value"] for m in members if isinstance(m, dict) and isinstance(m.get("value"), str)
        }


def _created(resource: Mapping[str, Any]) -> str:
    meta = resource.get("meta")
    created = meta.get("created") if isinstance(meta, dict) else None
    return created if isinstance(created, str) else ""


def _modified(resource: Mapping[str, Any]) -> str:
    """``meta.lastModified`` of a resource the engine wrote (the time of the write)."""
    meta = resource.get("meta")
    modified = meta.get("lastModified") if isinstance(meta, dict) else None
    return modified if isinstance(modified, str) else now()


def _version(resource: Mapping[str, Any]) -> str | None:
    meta = resource.get("meta")
    version = meta.get("version") if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None


@dataclass(slots=True)
class _Store:
    """The resources of one type in one tenant."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``(meta.created, id)`` of every row, sorted: the default order of search results.
    order: list[tuple[str, str]] = field(default_factory=list)
    #: True while ``rows`` (insertion-ordered) is in ``order``'s order, so a scan can walk
    #: ``rows.values()`` (3x faster than looking up 100k ids). Creates in time order, the
    #: usual case, keep it True; anything else clears it and the next scan re-sorts once.
    in_order: bool = True

    def insert(self, id: str, row: dict[str, Any]) -> None:
        item = (_created(row), id)
        if self.order and item < self.order[-1]:
            self.in_order = False
        bisect.insort(self.order, item)
        self.rows[id] = row

    def ordered_rows(self) -> Iterable[dict[str, Any]]:
        if not self.in_order:
            rows = self.rows
            self.rows = {id: rows[id] for _, id in self.order}
            self.in_order = True
        return self.rows.values()

    indexes: dict[_Path, _Index] = field(default_factory=dict)


@dataclass(slots=True)
class _Tenant:
    stores: dict[str, _Store] = field(default_factory=dict)
    #: id -> resource type name, for every resource of the tenant.
    kinds: dict[str, str] = field(default_factory=dict)
    #: member id -> ids of the resources whose ``members`` list it (any resource type).
    member_of: dict[str, set[str]] = field(default_factory=dict)
    #: the reverse: resource id -> the member ids it lists (to diff updates cheaply).
    members: dict[str, set[str]] = field(default_factory=dict)


def _add(index: _Index, keys: Iterable[Any], id: str) -> None:
    for key in keys:
        ids = index.get(key)
        if ids is None:
            index[key] = {id}
        else:
            ids.add(id)


def _discard(index: _Index, keys: Iterable[Any], id: str) -> None:
    for key in keys:
        ids = index.get(key)
        if ids is not None:
            ids.discard(id)
            if not ids:
                del index[key]


class MemoryBackend:
    """Thread-safe in-memory storage implementing :class:`~scim2_core.backends.Backend`.

    One re-entrant lock serialises every call, so a ``change`` callback of :meth:`update`
    runs atomically with the write (and may itself call :meth:`existing` and friends).
    """

    never_blocks = True

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._specs: dict[str, _Spec] = {}
        self._tenants: dict[str | None, _Tenant] = {}
        #: Compiled filters by (type name, bound filter): a provisioning client repeats the
        #: same few filters (``userName eq "x"``), and compiling costs half of such a search.
        self._compiled: dict[tuple[str, Filter], tuple[ResourceType, Predicate]] = {}
        #: ``uniqueness: global`` values across tenants: (type, path) -> value -> {(tenant, id)}.
        self._global: dict[tuple[str, _Path], dict[Any, set[tuple[str | None, str]]]] = {}

    # -- the protocol ------------------------------------------------------------------------

    def bind(self, resource_types: Sequence[ResourceType]) -> None:
        with self._lock:
            for rt in resource_types:
                self._specs[rt.name] = _spec_for(rt)

    def create(
        self,
        tenant: str | None,
        rt: ResourceType,
        resource: dict[str, Any],
        *,
        members: Collection[str] = (),
    ) -> dict[str, Any]:
        stored = copy_json(resource)
        id = stored["id"]
        with self._lock:
            spec = self._spec(rt)
            state = self._tenants.get(tenant)
            if members and spec.has_members:
                _check_members(state, members, _member_ids(stored))
            if state is None:
                state = self._tenants[tenant] = _Tenant()
            # RFC 7643 §3.1 "id": "Each representation of the resource MUST include a
            # non-empty "id" value. This identifier MUST be unique across the SCIM service
            # provider's entire set of resources."
            if id in state.kinds:
                raise UniquenessError("The id is already in use.")
            store = state.stores.get(rt.name)
            if store is None:
                store = state.stores[rt.name] = _Store()
            new_keys = {path: ix.keys(stored) for path, ix in spec.indexes.items()}
            self._check_unique(tenant, rt, spec, store, id, new_keys)
            for path, keys in new_keys.items():
                self._index(tenant, rt, spec, store, path, id, (), keys)
            if spec.has_members:
                added = _member_ids(stored)
                self._index_members(state, id, added)
                self._touch_members(state, added, id, _modified(stored))
            store.insert(id, stored)
            state.kinds[id] = rt.name
            return copy_json(stored)

    def get(self, tenant: str | None, rt: ResourceType, id: str) -> dict[str, Any] | None:
        with self._lock:
            store = self._store(tenant, rt)
            row = store.rows.get(id) if store is not None else None
            return copy_json(row) if row is not None else None

    def search(self, tenant: str | None, rt: ResourceType, query: SearchQuery) -> Page:
        predicate = self._compile(query.filter, rt) if query.filter is not None else None
        with self._lock:
            store = self._store(tenant, rt)
            if store is None:
                return Page(total=0)
            start = max(query.offset, 0)
            stop = start + max(query.count, 0)
            if predicate is None and query.sort is None:
                # No filter and the default order: only the window is touched.
                window = store.order[start:stop]
                return Page(
                    total=len(store.order),
                    resources=[copy_json(store.rows[id]) for _, id in window],
                )
            rows = self._matches(tenant, rt, store, query.filter, predicate)
            if query.sort is not None:
                # sort_key carries the id tie-break (ascending in both directions) and the
                # missing-values rule; it is used with ``reverse`` set to the same flag.
                descending = query.sort.descending
                rows.sort(key=sort_key(query.sort.path, descending=descending), reverse=descending)
            return Page(total=len(rows), resources=[copy_json(r) for r in rows[start:stop]])

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
        with self._lock:
            state, store, old = self._load(tenant, rt, id)
            _check_version(old, if_match)
            given = copy_json(old)
            new = change(given)
            if new is None:
                # Comparing is much cheaper than copying: hand back the caller's own copy
                # when ``change`` left it as it was.
                return given if given == old else copy_json(old)
            stored = copy_json(new)
            stored["id"] = id
            spec = self._spec(rt)
            if members and spec.has_members:
                _check_members(state, members, _member_ids(stored) - _member_ids(old))
            new_keys = {path: ix.keys(stored) for path, ix in spec.indexes.items()}
            self._check_unique(tenant, rt, spec, store, id, new_keys)
            for path, keys in new_keys.items():
                self._index(tenant, rt, spec, store, path, id, spec.indexes[path].keys(old), keys)
            if spec.has_members:
                old_ids = state.members.get(id, set())
                new_ids = _member_ids(stored)
                self._index_members(state, id, new_ids)
                self._touch_members(state, old_ids ^ new_ids, id, _modified(stored))
            before, after = _created(old), _created(stored)
            if before != after:
                _remove_sorted(store.order, (before, id))
                bisect.insort(store.order, (after, id))
                store.in_order = False
            store.rows[id] = stored
            # ``new`` came from the caller's own callback and is not kept: hand it back as
            # the stored resource instead of paying for a third copy of a large group.
            new["id"] = id
            return new

    def delete(
        self,
        tenant: str | None,
        rt: ResourceType,
        id: str,
        *,
        if_match: Collection[str] | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            state, store, old = self._load(tenant, rt, id)
            _check_version(old, if_match)
            spec = self._spec(rt)
            for path, ix in spec.indexes.items():
                self._index(tenant, rt, spec, store, path, id, ix.keys(old), ())
            when = now()
            if spec.has_members:
                # Its members leave it: each whose ``groups`` is derived changes.
                self._touch_members(state, state.members.get(id, set()), id, when)
                self._index_members(state, id, set())
            del store.rows[id]
            del state.kinds[id]
            _remove_sorted(store.order, (_created(old), id))
            # RFC 7644 §3.6: "Service providers MUST omit the resource from future query
            # results. In addition, the service provider SHOULD NOT consider the deleted
            # resource in conflict calculation." Its indexes are gone above; here it leaves
            # every ``members`` list in the same critical section, and each group so changed
            # gets a new version and lastModified (its ETag must change with it).
            for group_id in state.member_of.pop(id, ()):
                kind = state.kinds.get(group_id)
                if kind is None:
                    continue
                group = state.stores[kind].rows[group_id]
                state.members.get(group_id, set()).discard(id)
                members = group.get("members")
                if isinstance(members, list):
                    kept = [
                        m for m in members if not (isinstance(m, dict) and m.get("value") == id)
                    ]
                    if kept:
                        group["members"] = kept
                    else:
                        del group["members"]
                touch(group, when)
            return old  # no longer kept: no copy needed

    def groups_of(
        self, tenant: str | None, member_ids: Iterable[str]
    ) -> Mapping[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        with self._lock:
            state = self._tenants.get(tenant)
            if state is None:
                return out
            for member_id in member_ids:
                group_ids = state.member_of.get(member_id)
                if not group_ids:
                    continue
                groups = []
                for group_id in sorted(group_ids):
                    group = state.stores[state.kinds[group_id]].rows[group_id]
                    entry: dict[str, Any] = {"value": group_id}
                    display = group.get("displayName")
                    if isinstance(display, str):
                        entry["display"] = display
                    groups.append(entry)
                out[member_id] = groups
        return out

    def existing(self, tenant: str | None, ids: Iterable[str]) -> Mapping[str, str]:
        with self._lock:
            state = self._tenants.get(tenant)
            if state is None:
                return {}
            kinds = state.kinds
            return {id: kinds[id] for id in ids if id in kinds}

    # -- internals ---------------------------------------------------------------------------

    def _compile(self, filter: Filter, rt: ResourceType) -> Predicate:
        key = (rt.name, filter)
        hit = self._compiled.get(key)
        if hit is not None and hit[0] is rt:
            return hit[1]
        predicate = compile_filter(filter, rt)
        if len(self._compiled) >= _COMPILED_CACHE_SIZE:
            self._compiled.clear()
        self._compiled[key] = (rt, predicate)
        return predicate

    def _spec(self, rt: ResourceType) -> _Spec:
        spec = self._specs.get(rt.name)
        if spec is None:
            spec = self._specs[rt.name] = _spec_for(rt)
        return spec

    def _store(self, tenant: str | None, rt: ResourceType) -> _Store | None:
        state = self._tenants.get(tenant)
        return state.stores.get(rt.name) if state is not None else None

    def _load(
        self, tenant: str | None, rt: ResourceType, id: str
    ) -> tuple[_Tenant, _Store, dict[str, Any]]:
        state = self._tenants.get(tenant)
        store = state.stores.get(rt.name) if state is not None else None
        row = store.rows.get(id) if store is not None else None
        if state is None or store is None or row is None:
            raise NotFoundError(f"{rt.name} {id!r} not found.")
        return state, store, row

    def _check_unique(
        self,
        tenant: str | None,
        rt: ResourceType,
        spec: _Spec,
        store: _Store,
        id: str,
        new_keys: Mapping[_Path, set[Any]],
    ) -> None:
        """RFC 7643 §7 "uniqueness": "server" — "The value SHOULD be unique within the
        context of the current SCIM endpoint (or tenancy) [...]"; "global" — "The value
        SHOULD be globally unique [...]". Raises UniquenessError naming the attribute.
        """
        for path, keys in new_keys.items():
            ix = spec.indexes[path]
            if ix.uniqueness == "none" or not keys:
                continue
            if ix.uniqueness == "global":
                index = self._global.get((rt.name, path), {})
                me = (tenant, id)
                taken = any(other != me for k in keys for other in index.get(k, ()))
            else:
                local = store.indexes.get(path, {})
                taken = any(other != id for k in keys for other in local.get(k, ()))
            if taken:
                raise UniquenessError(f"The value of {ix.label!r} is already in use.")

    def _index(
        self,
        tenant: str | None,
        rt: ResourceType,
        spec: _Spec,
        store: _Store,
        path: _Path,
        id: str,
        old: Iterable[Any],
        new: Iterable[Any],
    ) -> None:
        """Move ``id`` from the ``old`` keys to the ``new`` keys of one index (by diff)."""
        old_keys, new_keys = set(old), set(new)
        if old_keys == new_keys:
            return
        index = store.indexes.get(path)
        if index is None:
            index = store.indexes[path] = {}
        _discard(index, old_keys - new_keys, id)
        _add(index, new_keys - old_keys, id)
        if spec.indexes[path].uniqueness == "global":
            gindex = self._global.setdefault((rt.name, path), {})
            me = (tenant, id)
            for key in old_keys - new_keys:
                owners = gindex.get(key)
                if owners is not None:
                    owners.discard(me)
                    if not owners:
                        del gindex[key]
            for key in new_keys - old_keys:
                gindex.setdefault(key, set()).add(me)

    @staticmethod
    def _index_members(state: _Tenant, id: str, new_ids: set[str]) -> None:
        """Make the membership indexes say that resource ``id`` lists ``new_ids``."""
        old_ids = state.members.get(id, set())
        if old_ids != new_ids:
            _discard(state.member_of, old_ids - new_ids, id)
            _add(state.member_of, new_ids - old_ids, id)
        if new_ids:
            state.members[id] = new_ids
        else:
            state.members.pop(id, None)

    def _touch_members(self, state: _Tenant, ids: Iterable[str], group_id: str, when: str) -> None:
        """Touch each existing resource of ``ids`` whose type has a derived ``groups``.

        RFC 7644 §3.14: a version changes whenever the representation does, and ``groups``
        (RFC 7643 §4.1.2) is part of a User's: joining or leaving a group changes it. Only
        the members the write added or removed are passed, never all of a large group's.
        """
        for member_id in ids:
            kind = state.kinds.get(member_id)
            if kind is None or member_id == group_id or not self._specs[kind].has_groups:
                continue
            touch(state.stores[kind].rows[member_id], when)

    def _matches(
        self,
        tenant: str | None,
        rt: ResourceType,
        store: _Store,
        filter: Filter | None,
        predicate: Predicate | None,
    ) -> list[dict[str, Any]]:
        """The matching rows in ``(meta.created, id)`` order."""
        rows = store.rows
        candidates = self._candidates(tenant, rt, store, filter) if filter is not None else None
        if candidates is None:
            ordered = store.ordered_rows()
            return [r for r in ordered if predicate(r)] if predicate else list(ordered)
        found = [rows[id] for id in candidates if id in rows]
        found.sort(key=_by_created)
        return [r for r in found if predicate(r)] if predicate else found

    def _candidates(
        self, tenant: str | None, rt: ResourceType, store: _Store, filter: Filter
    ) -> set[str] | None:
        """Ids that include every match of ``filter``, from an index; None to scan.

        Only ``eq`` with a string on an indexed string attribute narrows, and ``and``/``or``
        combine narrowed sides; the caller still applies the full predicate.
        """
        if isinstance(filter, And):
            left = self._candidates(tenant, rt, store, filter.left)
            right = self._candidates(tenant, rt, store, filter.right)
            if left is None or right is None:
                return left if right is None else right
            return left & right
        if isinstance(filter, Or):
            left = self._candidates(tenant, rt, store, filter.left)
            if left is None:
                return None
            right = self._candidates(tenant, rt, store, filter.right)
            return None if right is None else left | right
        path: _Path
        value: Any
        if isinstance(filter, Compare):
            if filter.op != "eq" or not isinstance(filter.value, str):
                return None
            p = filter.path
            path, value = (_urn(rt, p.urn), p.name, p.sub), filter.value
        elif isinstance(filter, ValuePath):
            inner = filter.filter
            if not (
                isinstance(inner, Compare)
                and inner.op == "eq"
                and isinstance(inner.value, str)
                and inner.path.urn is None
                and inner.path.sub is None
                and filter.path.sub is None
            ):
                return None
            path = (_urn(rt, filter.path.urn), filter.path.name, inner.path.name)
            value = inner.value
        else:
            return None
        if path == (None, "id", None):
            return {value}
        if path == (None, "members", "value") and self._spec(rt).has_members:
            state = self._tenants.get(tenant)
            return set(state.member_of.get(value, ())) if state is not None else set()
        ix = self._spec(rt).indexes.get(path)
        if ix is None or ix.attribute.type not in ("string", "reference"):
            return None
        return set(store.indexes.get(path, {}).get(ix.key(value), ()))


def _urn(rt: ResourceType, urn: str | None) -> str | None:
    return None if urn is None or urn == rt.schema.id else urn


def _by_id(row: Mapping[str, Any]) -> str:
    return str(row.get("id", ""))


def _by_created(row: Mapping[str, Any]) -> tuple[str, str]:
    return _created(row), _by_id(row)


def _remove_sorted(order: list[tuple[str, str]], item: tuple[str, str]) -> None:
    at = bisect.bisect_left(order, item)
    if at < len(order) and order[at] == item:
        del order[at]


def _check_members(state: _Tenant | None, members: Collection[str], added: set[Any]) -> None:
    """Refuse the ids of ``members`` that the write adds but that do not exist (RFC 7643
    §4.2); called under the lock, before anything is written."""
    kinds = state.kinds if state is not None else {}
    missing = sorted(i for i in set(members) if i in added and i not in kinds)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InvalidValueError(f"Members do not exist: {shown}.")


def _check_version(row: Mapping[str, Any], if_match: Collection[str] | None) -> None:
    # RFC 7232 §3.1: "If the field-value is a list of entity-tags, the condition is false if
    # none of the listed tags match the entity-tag of the selected representation. An origin
    # server MUST NOT perform the requested method if a received If-Match condition
    # evaluates to false"; RFC 7644 Table 8, 412: "Failed to update. Resource has changed on
    # the server." Checked under the same lock as the write, so it is a compare-and-set.
    if if_match is not None and _version(row) not in if_match:
        raise PreconditionFailedError(
            "The resource has changed on the server (If-Match does not match meta.version)."
        )
