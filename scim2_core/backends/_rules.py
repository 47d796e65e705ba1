"""The rules every backend applies, in one place, so a new backend inherits them.

Each function is plain: it takes what the backend read under its lock or in its transaction,
and either raises the :class:`~scim2_core.ScimError` the engine renders or returns what to
write. The engine uses the same functions where it checks before a backend is involved
(``If-Match`` on a GET). All are exported from :mod:`scim2_core.backends`.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable, Mapping
from typing import Any

from .._errors import InvalidValueError, PreconditionFailedError
from ..schema import ResourceType, now, touch

__all__ = [
    "check_new_members",
    "check_tenant",
    "check_version",
    "derives_groups",
    "last_modified",
    "lists_members",
    "member_ids",
    "missing_members_error",
    "now",
    "remove_member",
    "stored_version",
    "touch",
]


def check_tenant(tenant: str | None) -> None:
    """Raise :class:`ValueError` unless ``tenant`` is None or a non-empty string.

    ``None`` is the single-tenant deployment; a named tenant is a non-empty string. An empty
    name is refused so that no store can confuse it with ``None`` (a database that keeps
    ``None`` as ``''`` would otherwise show one's resources to the other). The engine never
    passes one: ``Principal(tenant="")`` is refused at configuration.
    """
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        raise ValueError(f"tenant must be None or a non-empty string, got {tenant!r}")


def stored_version(resource: Mapping[str, Any]) -> str | None:
    """``meta.version`` of a stored resource, or None when it has none."""
    meta = resource.get("meta")
    version = meta.get("version") if isinstance(meta, Mapping) else None
    return version if isinstance(version, str) else None


def check_version(resource: Mapping[str, Any], if_match: Collection[str] | None) -> None:
    """Raise :class:`~scim2_core.PreconditionFailedError` (412) unless ``if_match`` is None or
    holds the stored ``meta.version`` of ``resource``.

    RFC 7232 §3.1: "If the field-value is a list of entity-tags, the condition is false if none
    of the listed tags match the entity-tag of the selected representation. An origin server
    MUST NOT perform the requested method if a received If-Match condition evaluates to false";
    RFC 7644 §3.14 and Table 8, 412: "Failed to update. Resource has changed on the server."
    A backend calls it under the same lock or in the same transaction as the write, which makes
    the write a compare-and-set.
    """
    if if_match is not None and stored_version(resource) not in if_match:
        raise PreconditionFailedError(
            "The resource has changed on the server (If-Match does not match meta.version)."
        )


def missing_members_error(missing: Iterable[str]) -> InvalidValueError:
    """The 400 ``invalidValue`` for group members that are not resources of this server.

    RFC 7643 §4.2: members' "value: Identifier of the member of this Group". Names at most
    five of the ids, sorted, so the message stays short for a large write.
    """
    ids = sorted(missing)
    shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
    return InvalidValueError(f"Members do not exist: {shown}.")


def check_new_members(
    members: Collection[str], added: Iterable[str], present: Container[str]
) -> None:
    """Raise :func:`missing_members_error` for the ids a write adds as members (``added``)
    that the caller named in ``members`` and that are not ``present`` in the store.

    The engine checks that new members exist, then passes them as ``members`` to
    ``create``/``update``; the backend calls this under the same lock or in the same
    transaction as the write, so a member deleted in between is refused rather than left
    dangling (RFC 7643 §4.2). Ids not in ``members`` are not checked.
    """
    wanted = members if isinstance(members, (set, frozenset)) else set(members)
    missing = [i for i in added if i in wanted and i not in present]
    if missing:
        raise missing_members_error(missing)


def member_ids(resource: Mapping[str, Any]) -> set[str]:
    """The ``value`` of every entry of ``resource["members"]`` (RFC 7643 §4.2)."""
    members = resource.get("members")
    if not members or not isinstance(members, list):
        return set()
    return {
        value for m in members if isinstance(m, dict) and isinstance(value := m.get("value"), str)
    }


def remove_member(group: dict[str, Any], member_id: str, when: str) -> None:
    """Remove ``member_id`` from ``group["members"]`` in place and touch the group.

    RFC 7644 §3.6: after a DELETE "the service provider MUST NOT return the deleted
    resource" — nor as a member. A backend calls it for every group of a deleted resource,
    in the delete's transaction, with one ``when`` for all; the group's ``meta.version``
    changes with its representation (RFC 7644 §3.14). ``members`` is dropped when empty.
    """
    members = group.get("members")
    if isinstance(members, list):
        kept = [m for m in members if not (isinstance(m, dict) and m.get("value") == member_id)]
        if kept:
            group["members"] = kept
        else:
            del group["members"]
    touch(group, when)


def last_modified(resource: Mapping[str, Any]) -> str:
    """``meta.lastModified`` of a resource the engine wrote (the time of the write), or now.

    The time a group write gives the members it touches.
    """
    meta = resource.get("meta")
    modified = meta.get("lastModified") if isinstance(meta, Mapping) else None
    return modified if isinstance(modified, str) else now()


def lists_members(rt: ResourceType) -> bool:
    """Whether resources of ``rt`` list members: a multi-valued ``members`` with ``value``
    in the core schema (a Group, RFC 7643 §4.2, or a custom type shaped like one)."""
    members = rt.schema.attribute("members")
    return members is not None and members.multi_valued and members.sub("value") is not None


def derives_groups(rt: ResourceType) -> bool:
    """Whether resources of ``rt`` have a ``groups`` attribute derived from memberships
    (RFC 7643 §4.1.2): joining or leaving a group then changes them, so they are touched."""
    return rt.schema.attribute("groups") is not None
