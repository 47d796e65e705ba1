"""Which PATCH requests touch only some of a group's members, and which members.

A backend with the :class:`~scim2_core.backends.MemberRows` capability stores members
apart from their group; for a PATCH that only adds members, or removes members named by
id, the engine hands it the ids concerned and the operations run on a group holding just
those members (:meth:`~scim2_core.backends.MemberRows.update_members`). The result is the
same as on the whole group, because each such operation's effect on a member depends on
that member alone; any other operation (a ``replace``, a filter on another sub-attribute,
removing every member) makes the request take the ordinary path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import ScimError
from ..backends import lists_members
from ..filter import simple_eq
from ..patch import PatchOperation
from ..schema import ResourceType

__all__ = ["member_only_values"]


def member_only_values(
    rt: ResourceType, operations: Sequence[PatchOperation], *, strict: bool
) -> set[str] | None:
    """The member ids ``operations`` add or remove, if that is all they do; else None.

    Member-only operations (RFC 7644 §3.5.2.1 add, §3.5.2.2 remove), in the forms
    identity providers send (docs/idp-notes.md):

    * ``add`` with path ``members`` (or its URN-qualified form), or with no path and a
      value object whose one key is ``members``, the value a member object or a list;
    * ``remove`` with path ``members[value eq "id"]`` (Okta);
    * ``remove`` with path ``members`` and a value list of member objects (Entra ID).

    Each member object must carry a string ``value``; no member may be removed and then
    added again in one request. ``members.value`` must be caseExact
    (RFC 7643 §4.2 gives the core Group's), so a member is found by its id exactly.
    """
    if not lists_members(rt):
        return None
    attr = rt.schema.attribute("members")
    value_attr = attr.sub("value") if attr is not None else None
    if value_attr is None or not value_attr.case_exact:
        return None
    out: set[str] = set()
    removed: set[str] = set()
    for operation in operations:
        found = _values_of(rt, operation, strict)
        if found is None:
            return None
        if operation.op == "remove":
            removed |= found
        elif found & removed:
            # Removed, then added again: on the whole list it moves to the end, which
            # the member-only write does not express (it keeps a member in place).
            return None
        out |= found
    return out


def _is_members(rt: ResourceType, text: str) -> bool:
    try:
        ref = rt.resolve_path(text)
    except ScimError:
        return False
    return ref.urn is None and ref.attribute.name == "members" and ref.sub is None


def _values_of(rt: ResourceType, operation: PatchOperation, strict: bool) -> set[str] | None:
    op, path, value = operation.op, operation.path, operation.value
    if path is None:
        if operation.path_text is not None or op != "add" or not isinstance(value, Mapping):
            return None
        if len(value) != 1:
            return None
        ((key, item),) = value.items()
        if not isinstance(key, str) or not _is_members(rt, key):
            return None
        return _entry_values(item, strict)
    if path.sub is not None or not _is_members(rt, str(path.attr)):
        return None
    if op == "add" and path.filter is None:
        return _entry_values(value, strict)
    if op == "remove" and path.filter is not None and not operation.has_value:
        eq = simple_eq(path.filter)
        if eq is None or eq[0].urn is not None or eq[0].sub is not None:
            return None
        if eq[0].name.lower() != "value":
            return None
        return {eq[1]}
    if op == "remove" and path.filter is None and isinstance(value, list) and value:
        return _entry_values(value, strict)
    return None


def _entry_values(value: Any, strict: bool) -> set[str] | None:
    items = value if isinstance(value, list) else [value]
    if not items:
        return None
    out: set[str] = set()
    for item in items:
        if not isinstance(item, Mapping):
            return None
        found = item.get("value")
        if found is None and not strict:
            found = next(
                (v for k, v in item.items() if isinstance(k, str) and k.lower() == "value"),
                None,
            )
        if not isinstance(found, str):
            return None
        out.add(found)
    return out
