"""The copy-on-write view of a resource that one :func:`apply_patch` call writes to."""

from __future__ import annotations

from typing import Any


class Overlay:
    """A resource dict seen through copy-on-write overrides of its top-level keys.

    The original is never mutated: a changed top-level attribute is held in ``overrides``
    and :meth:`result` merges them into a shallow copy at the end, so a failed PATCH leaves
    nothing to restore and a 1-member add to a 10k-member group copies one list, not the
    group.
    """

    __slots__ = ("exts_touched", "indexes", "original", "overrides", "owned")

    def __init__(self, resource: dict[str, Any]):
        self.original = resource
        #: top-level key -> new value (None: unassigned). Extension objects are keyed by URN.
        self.overrides: dict[str, Any] = {}
        #: ids of containers created by this run, safe to mutate in place.
        self.owned: set[int] = set()
        self.exts_touched: set[str] = set()
        #: (extension URN, name) -> (the attribute's list, what :meth:`keep_index` stored):
        #: the position index that makes N adds to one multi-valued attribute O(N).
        self.indexes: dict[tuple[str | None, str], tuple[list[Any], object]] = {}

    def _top(self, key: str) -> Any:
        if key in self.overrides:
            return self.overrides[key]
        return self.original.get(key)

    def get(self, ref_urn: str | None, name: str) -> Any:
        """The current value of attribute ``name`` (of extension ``ref_urn``, if given)."""
        if ref_urn is None:
            return self._top(name)
        ext = self._top(ref_urn)
        return ext.get(name) if isinstance(ext, dict) else None

    def set(self, ref_urn: str | None, name: str, value: Any) -> None:
        """Set (or with None, [] or {}, unassign) a top-level attribute.

        Drops the index kept for that attribute: every writer but the one that keeps it
        calls this after changing the attribute's list.
        """
        self.indexes.pop((ref_urn, name), None)
        empty = unassigned(value)
        if ref_urn is None:
            self.overrides[name] = None if empty else value
            return
        ext = self._top(ref_urn)
        if not isinstance(ext, dict):
            if empty:
                return
            ext = {}
        elif id(ext) not in self.owned:
            ext = dict(ext)
        self.owned.add(id(ext))
        if empty:
            ext.pop(name, None)
        else:
            ext[name] = value
        self.overrides[ref_urn] = ext
        self.exts_touched.add(ref_urn)

    def own_list(self, value: Any) -> list[Any]:
        """A list this run may mutate holding the current values."""
        if isinstance(value, list) and id(value) in self.owned:
            return value
        out = list(value) if isinstance(value, list) else []
        self.owned.add(id(out))
        return out

    def unassign_extension(self, urn: str) -> None:
        """Unassign the extension object ``urn`` (and drop it from ``schemas``)."""
        self.indexes.clear()
        self.overrides[urn] = None
        self.exts_touched.add(urn)

    def index(self, ref_urn: str | None, name: str, items: list[Any]) -> object | None:
        """What :meth:`keep_index` last stored for this attribute, if ``items`` is still
        its list and nothing has :meth:`set` the attribute since; else None."""
        found = self.indexes.get((ref_urn, name))
        return found[1] if found is not None and found[0] is items else None

    def keep_index(self, ref_urn: str | None, name: str, items: list[Any], index: object) -> None:
        """Keep ``index`` (which describes ``items``, the attribute's list) until the next
        :meth:`set` of the attribute."""
        self.indexes[(ref_urn, name)] = (items, index)

    def result(self) -> dict[str, Any] | None:
        """The new resource, or None if the overrides changed nothing."""
        # RFC 7643 §2.5: "Unassigned attributes, the null value, or empty array [...]
        # SHALL be considered to be equivalent in "state"": an extension emptied by this
        # request that was absent before is no change.
        changed = {
            k: v
            for k, v in self.overrides.items()
            if v != self.original.get(k)
            and not (unassigned(v) and unassigned(self.original.get(k)))
        }
        if not changed:
            return None
        out = dict(self.original)
        for key, value in changed.items():
            if unassigned(value):
                out.pop(key, None)
            else:
                out[key] = value
        schemas = out.get("schemas")
        if self.exts_touched and isinstance(schemas, list):
            # RFC 7643 §3: "schemas [...] Each String value must be a unique URI" naming the
            # schemas and extensions the resource uses; keep it in step with the extensions.
            new_schemas = list(schemas)
            for urn in sorted(self.exts_touched):
                present = bool(out.get(urn))
                listed = [s for s in new_schemas if isinstance(s, str) and s.lower() == urn.lower()]
                if present and not listed:
                    new_schemas.append(urn)
                elif not present:
                    out.pop(urn, None)
                    new_schemas = [s for s in new_schemas if s not in listed]
            if new_schemas != schemas:
                out["schemas"] = new_schemas
        return out


def unassigned(value: Any) -> bool:
    """RFC 7643 §2.5: "Unassigned attributes, the null value, or empty array (in the case of
    a multi-valued attribute) SHALL be considered to be equivalent in "state"."
    """
    return value is None or value == [] or value == {}
