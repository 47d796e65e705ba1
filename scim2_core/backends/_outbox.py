"""Building the outbox events of one write: shared by every backend that keeps an outbox.

A backend that stores events (the optional :meth:`~scim2_core.backends.Backend`
capability ``enable_outbox``, see :mod:`scim2_core.backends._base`) calls
:func:`change_events` inside the write's transaction or lock, with the resource as it was
and as it is stored, and the resources the write touched, then stores the events in that
same transaction. The request's principal, request id and PUT-or-PATCH come from
:func:`scim2_core.events.current_write`, set by the engine around the write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..events import ChangeEvent, EventKind, current_write, new_event_id, redact
from ..schema import ResourceType, now
from ._rules import last_modified, member_ids

__all__ = ["change_events", "touched_event"]


def _version(resource: Mapping[str, Any] | None) -> str | None:
    meta = resource.get("meta") if resource is not None else None
    version = meta.get("version") if isinstance(meta, Mapping) else None
    return version if isinstance(version, str) else None


def change_events(
    tenant: str | None,
    rt: ResourceType,
    kind: EventKind | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    touched: Iterable[tuple[str, str, str | None]] = (),
    *,
    some_members: bool = False,
    copy: bool = True,
) -> list[ChangeEvent]:
    """The events of one committed write: first the resource's own, then one ``touched``
    event per ``(resource type, id, new version)`` of ``touched``.

    ``kind`` None means an update: ``replaced`` or ``patched`` as the engine said. The
    resource's ``before``/``after`` are redacted copies (:func:`~scim2_core.events.redact`).
    A touched event's id is the write's event id and the touched id, so that the same
    event always has the same id.

    ``some_members``: ``before`` and ``after`` hold only the members a member-only PATCH
    named (:class:`~scim2_core.backends.MemberRows`): ``members_added`` and
    ``members_removed`` come from them, and the event's documents leave ``members``
    out (they would be a misleading part of the list).

    ``copy=False``: the events' documents share their values with ``before`` and
    ``after`` (see :func:`~scim2_core.events.redact`) instead of holding copies; for a
    backend that encodes the events at once in the write's transaction
    (:func:`scim2_core.backends.sql.write_events`) and keeps none of them.
    """
    ctx = current_write()
    rid = str((after or before or {}).get("id", ""))
    event_id = new_event_id()
    time = last_modified(after) if after is not None else now()
    old_members = member_ids(before) if before is not None else set()
    new_members = member_ids(after) if after is not None else set()
    main = ChangeEvent(
        kind=kind if kind is not None else ctx.kind,
        resource_type=rt.name,
        id=rid,
        tenant=tenant,
        before=redact(rt, _without_members(before) if some_members else before, copy=copy),
        after=redact(rt, _without_members(after) if some_members else after, copy=copy),
        principal=ctx.principal,
        version=_version(after if after is not None else before),
        event_id=event_id,
        time=time,
        request_id=ctx.request_id,
        members_added=tuple(sorted(new_members - old_members)),
        members_removed=tuple(sorted(old_members - new_members)),
    )
    events = [main]
    for type_name, touched_id, version in touched:
        events.append(touched_event(main, type_name, touched_id, version))
    return events


def _without_members(resource: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if resource is None or "members" not in resource:
        return resource
    return {k: v for k, v in resource.items() if k != "members"}


def touched_event(
    cause: ChangeEvent, resource_type: str, id: str, version: str | None
) -> ChangeEvent:
    """The ``touched`` event of resource ``id`` changed as a side effect of ``cause``."""
    return ChangeEvent(
        kind="touched",
        resource_type=resource_type,
        id=id,
        tenant=cause.tenant,
        before=None,
        after=None,
        principal=cause.principal,
        version=version,
        event_id=f"{cause.event_id}/{id}",
        time=cause.time,
        request_id=cause.request_id,
        cause=cause.id,
    )
