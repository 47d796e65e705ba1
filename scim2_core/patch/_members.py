"""Which member ids a PATCH may add to a Group, read from the parsed operations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import ScimError
from ..schema import ResourceType
from ._message import PatchOperation, json_member, parse_path_cached
from ._values import seed_from_filter


def patch_member_values(
    rt: ResourceType, operations: Sequence[PatchOperation], *, strict: bool
) -> list[str]:
    """Every ``members`` value (a resource id) that ``operations`` may add to a Group.

    The engine checks that these exist before the write (RFC 7643 §4.2: a member is a
    resource of this service provider). It reads the *parsed* operations, so every form
    :func:`apply_patch` accepts is covered: any op and key case, ``"path": ""``, URN-
    qualified paths and keys (``urn:...:core:2.0:Group:members``), dotted keys
    (``members.value``), a lone object instead of an array, ``Value`` keys inside member
    objects, filters whose ``eq`` comparisons name the member (``members[value eq "x"]``)
    and filtered keys of a no-path value object. The result may hold ids that end up not
    added (a superset); it never misses one. Operations that are malformed are skipped
    here: :func:`apply_patch` rejects them.
    """
    members = rt.schema.attribute("members")
    if members is None or not members.is_complex:
        return []
    out: list[str] = []
    for operation in operations:
        if operation.op == "remove":
            continue
        if operation.path_text is None:
            if isinstance(operation.value, Mapping):
                for key, item in operation.value.items():
                    if isinstance(key, str):
                        _member_values_at(rt, key, item, strict, out)
            continue
        _member_values_at(rt, operation.path_text.strip(), operation.value, strict, out)
    return out


def _member_values_at(
    rt: ResourceType, text: str, value: Any, strict: bool, out: list[str]
) -> None:
    """Collect into ``out`` the member ids ``value`` puts at path ``text``, if it is
    (a part of) the core ``members`` attribute."""
    try:
        path = parse_path_cached(text)
        ref = rt.resolve_path(str(path.attr))
    except ScimError:
        return
    if ref.urn is not None or ref.attribute.name != "members":
        return
    attr = ref.attribute
    value_attr = attr.sub("value")
    if path.filter is not None:
        seed = seed_from_filter(path.filter, attr, not strict)
        if seed is not None and isinstance(seed.get("value"), str):
            out.append(seed["value"])
    sub = ref.sub if ref.sub is not None else (attr.sub(path.sub) if path.sub else None)
    if sub is not None:
        if sub is value_attr and isinstance(value, str):
            out.append(value)
        return
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Mapping):
            found = json_member(item, "value", False)
            if isinstance(found, str):
                out.append(found)
