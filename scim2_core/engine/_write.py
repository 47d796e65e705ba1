"""Reading and writing one resource (RFC 7644 §3.3, §3.4.1, §3.5, §3.6): GET by id, POST,
PUT, PATCH, DELETE, with conditional requests (RFC 7644 §3.14).

``If-Match`` is checked by the backend atomically with the write (compare-and-set, see
:func:`_update` and ``backend.delete``) and by :func:`get_resource` for a GET; member ids are
checked before the write (:func:`_member_types`) and again by the backend inside it.
The backend stores each change's :class:`~scim2_core.ChangeEvent` with the change
(its outbox; the engine tells it the request through :func:`~scim2_core.events.writing`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeGuard

from .._errors import InvalidValueError, NotFoundError
from .._json import copy_json
from .._types import Response
from ..backends import MemberRows, check_version, lists_members, missing_members_error
from ..events import writing
from ..patch import PatchOptions, apply_patch, parse_patch_request, patch_member_values
from ..schema import ResourceType, first_version, next_version, now, parse_etags
from ._audit import change_of
from ._events import write_context
from ._members import member_only_values
from ._passwords import hash_password
from ._request import Ctx, if_match, read_body
from ._state import EngineState
from ._validate import (
    accept_legacy_urns,
    check_primary,
    check_required,
    check_schemas,
    member_values,
    merge_for_replace,
    normalize,
    same_content,
    schemas_for,
)

__all__ = [
    "create_resource",
    "delete_resource",
    "get_resource",
    "new_resource",
    "patch_resource",
    "replace_resource",
]


_MEMBER_ROWS: dict[type, bool] = {}


def _has_member_rows(backend: object) -> TypeGuard[MemberRows]:
    """``isinstance(backend, MemberRows)``, decided once per backend class: a check against
    a runtime protocol inspects every attribute each time (microseconds per request on
    Python 3.11), and a class either has the capability or not."""
    kind = type(backend)
    known = _MEMBER_ROWS.get(kind)
    if known is None:
        known = _MEMBER_ROWS[kind] = isinstance(backend, MemberRows)
    return known


def get_resource(state: EngineState, ctx: Ctx, rt: ResourceType, rid: str) -> Response:
    """RFC 7644 §3.4.1: the resource, or 404; ``If-None-Match`` and ``If-Match`` apply.

    A group read that will not return ``members`` (RFC 7644 §3.9 ``excludedAttributes``)
    reads none from a backend that stores them apart (:class:`MemberRows`)."""
    backend = state.backend
    groups: list[dict[str, Any]] | None = None  # User.groups, when read with the User
    if (
        _has_member_rows(backend)
        and lists_members(rt)
        and not state.renderer.request_projection(ctx, rt).wants_members
    ):
        stored = backend.get_without_members(ctx.tenant, rt, rid)
    elif (read := state.renderer.read_with_groups(ctx, rt, rid)) is not None:
        stored, groups = read  # one statement (SQLBackend), not get then groups_of
    else:
        stored = backend.get(ctx.tenant, rt, rid)
    if stored is None:
        raise NotFoundError(f"{rt.name} {rid!r} not found.")
    # RFC 7644 §3.14: "If-None-Match [...] the service provider [...] SHALL return an
    # HTTP 304 (Not Modified) [...] if the resource has not changed".
    inm = ctx.headers.get("if-none-match")
    version = stored.get("meta", {}).get("version")
    # RFC 7232 §3.1 (which RFC 7644 §3.14 builds on): when no If-Match tag matches,
    # "the origin server MUST NOT perform the requested method" and answers 412.
    check_version(stored, if_match(ctx))
    if inm is not None and version is not None:
        tags = parse_etags(inm)
        if tags is None or version in tags:
            return {"status": 304, "headers": {"ETag": version}, "body": b""}
    return state.renderer.resource_response(ctx, rt, stored, 200, groups=groups)


def _member_types(state: EngineState, ctx: Ctx, values: Iterable[str]) -> Mapping[str, str]:
    """Resource type of each referenced member; 400 invalidValue if one does not exist.

    RFC 7643 §4.2: members "value: Identifier of the member of this Group"; a member
    must be a resource of this service provider. The write passes the ids found as
    ``members=`` to the backend, which checks them again atomically with the write (a
    member deleted in between is refused, not left dangling).
    """
    wanted = list(dict.fromkeys(values))  # deduplicated at C speed (10k members)
    if set(map(type, wanted)) - {str}:
        wanted = [v for v in wanted if isinstance(v, str)]
    if not wanted:
        return {}
    found = state.backend.existing(ctx.tenant, wanted)  # one mapping, not copied
    if len(found) != len(wanted):  # else every one was found (found names no other)
        missing = [v for v in wanted if v not in found]
        if missing:
            raise missing_members_error(missing)
    return found


def _finish(
    rt: ResourceType,
    data: dict[str, Any],
    before: Mapping[str, Any] | None,
    member_types: Mapping[str, str],
) -> None:
    """Server-side completion of a resource about to be stored (in place).

    Member objects carried over unchanged from ``before`` (the same objects: PATCH
    shares what it does not change) were completed and checked when they were stored,
    so a 1-member change to a 10k-member group costs one pass of identity checks, not
    10k rebuilt and re-validated members.
    """
    members = data.get("members")
    kept: set[int] = set()
    if isinstance(members, list) and rt.schema.attribute("members") is not None:
        seen: set[str] = set()
        clean = []
        old_members = [m for m in (before or {}).get("members") or () if isinstance(m, dict)]
        kept = {id(m) for m in old_members}
        old_types: dict[Any, Any] | None = None
        for m in members:
            value = m.get("value")
            if not isinstance(value, str) or value in seen:
                continue
            seen.add(value)
            if id(m) in kept:
                clean.append(m)
                continue
            kind = member_types.get(value)
            if kind is None:
                if old_types is None:
                    old_types = {m.get("value"): m.get("type") for m in old_members}
                kind = old_types.get(value)
            if kind is None:
                # Every member added by this request was checked to exist; a value
                # that was neither checked nor already a member is refused.
                raise InvalidValueError(f"Member {value!r} does not exist.")
            if "$ref" in m:
                m = {k: v for k, v in m.items() if k != "$ref"}
                m["type"] = kind
            else:  # what clients send: one copy, in one step
                m = {**m, "type": kind}
            clean.append(m)
        if clean:
            data["members"] = clean
        else:
            data.pop("members", None)
    pwd = data.get("password")
    if isinstance(pwd, str):
        old = (before or {}).get("password")
        if pwd != old:
            data["password"] = hash_password(pwd)
    check_required(rt, data, kept)
    check_primary(rt, data)


def new_resource(
    state: EngineState, ctx: Ctx, rt: ResourceType
) -> tuple[dict[str, Any], Mapping[str, str]]:
    """The resource a create of ``ctx.body`` would store (checked, completed, with its
    ``id`` and ``meta``), and the resource type of each member it names; a
    :class:`~scim2_core.ScimError` if it is not one. Stores nothing (``scim2-core import``
    stores it in batches)."""
    body = accept_legacy_urns(rt, read_body(ctx, state.options), state.options)
    check_schemas(rt, body, state.options)
    data = normalize(rt, body, state.options)
    member_types = _member_types(state, ctx, member_values(data.get("members")))
    _finish(rt, data, None, member_types)
    stamp = now()
    resource: dict[str, Any] = {"schemas": schemas_for(rt, data), "id": str(uuid.uuid4()), **data}
    resource["meta"] = {
        "resourceType": rt.name,
        "created": stamp,
        "lastModified": stamp,
        "version": first_version(),
    }
    return resource, member_types


def create_resource(state: EngineState, ctx: Ctx, rt: ResourceType) -> Response:
    """RFC 7644 §3.3: "the server SHALL [...] return [...] 201 Created" with the
    resource and its Location."""
    resource, member_types = new_resource(state, ctx, rt)
    rid = resource["id"]
    # The backend checks the new members again atomically with the write: one deleted
    # since existing() answered is refused rather than left dangling.
    with writing(write_context(ctx)):
        stored = state.backend.create(ctx.tenant, rt, resource, members=member_types.keys())
    state.events.committed(ctx.tenant, rt, "created", None, stored)
    if state.audit.active:
        ctx.written_id = rid
        ctx.change = change_of(rt, None, stored)
    return state.renderer.resource_response(ctx, rt, stored, 201, location=True)


def _own_copy(incoming: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a PUT's ``incoming`` data that its edit may change (the edit may run again
    if the database retries the write). ``members`` is copied as a list only: the edit
    never changes a member object (:func:`_finish` builds new ones), and a 10k-member
    group is 10k objects to copy."""
    return {
        key: list(value) if key == "members" and isinstance(value, list) else copy_json(value)
        for key, value in incoming.items()
    }


def replace_resource(state: EngineState, ctx: Ctx, rt: ResourceType, rid: str) -> Response:
    """RFC 7644 §3.5.1 PUT: replace the resource's attributes."""
    body = accept_legacy_urns(rt, read_body(ctx, state.options), state.options)
    check_schemas(rt, body, state.options)
    incoming = normalize(rt, body, state.options)
    member_types = _member_types(state, ctx, member_values(incoming.get("members")))

    def edit(current: dict[str, Any]) -> dict[str, Any]:
        data = _own_copy(incoming)
        merge_for_replace(rt, current, data)
        _finish(rt, data, current, member_types)
        return {"schemas": schemas_for(rt, data), "id": current["id"], **data}

    stored = _update(state, ctx, rt, rid, "replaced", member_types, edit)
    return state.renderer.resource_response(ctx, rt, stored, 200)


def _update(
    state: EngineState,
    ctx: Ctx,
    rt: ResourceType,
    rid: str,
    kind: Literal["replaced", "patched"],
    member_types: Mapping[str, str],
    edit: Callable[[dict[str, Any]], dict[str, Any] | None],
    only_members: set[str] | None = None,
) -> dict[str, Any]:
    """The atomic write shared by PUT and PATCH: ``edit`` turns the stored resource (the
    request's own copy) into the new one, or None for no change; a result differing only
    in ``meta`` is no change either (the version stays). Otherwise ``meta.version`` and
    ``lastModified`` move (RFC 7644 §3.14), and the change's event says ``kind``.

    With ``only_members`` (a backend with :class:`MemberRows`: see :func:`_member_rows`),
    ``edit`` sees the group holding only those members and the result has no
    ``members``; see :func:`._members.member_only_values`. The backend's outbox records
    the event from those members alone, and the audit log's diff names them.

    ``If-Match`` goes to the backend, which compares it with the stored version under
    the same lock or transaction as the write (412 when no tag matches)."""
    captured: dict[str, Any] = {}
    events = state.events
    audit = state.audit.active

    def change(current: dict[str, Any]) -> dict[str, Any] | None:
        if events.captures or audit:  # the event or the audit log needs a "before"
            captured["before"] = copy_json(current)
        new = edit(current)
        if new is None or same_content(current, new):
            return None
        meta = dict(current.get("meta") or {})
        meta["lastModified"] = now()
        meta["version"] = next_version(meta.get("version"))
        new["meta"] = meta
        captured["after"] = new
        return new

    backend = state.backend
    if only_members is not None and _has_member_rows(backend):
        with writing(write_context(ctx, kind)):
            stored = backend.update_members(
                ctx.tenant,
                rt,
                rid,
                only_members,
                change,
                if_match=if_match(ctx),
                members=member_types.keys(),
            )
        if audit and "after" in captured:  # the diff of the members named
            ctx.change = change_of(rt, captured["before"], captured["after"])
        events.committed(ctx.tenant, rt, kind, None, None)  # wakes delivery
        return stored
    with writing(write_context(ctx, kind)):
        stored = backend.update(
            ctx.tenant,
            rt,
            rid,
            change,
            if_match=if_match(ctx),
            members=member_types.keys(),
        )
    before = captured.get("before")
    if audit and before is not None:
        ctx.change = change_of(rt, before, stored)
    if not events.captures:
        events.committed(ctx.tenant, rt, kind, None, None)  # wakes delivery
    elif before is not None and stored.get("meta") != before.get("meta"):
        events.committed(ctx.tenant, rt, kind, before, stored)
    return stored


def _member_rows(state: EngineState) -> bool:
    """True if a PATCH that only adds or removes members may go to the backend's
    :class:`MemberRows` capability: unless the engine builds the events itself (a
    backend without an outbox, and a consumer), which needs the whole group before and
    after. A backend with an outbox records a member-only write's events in its
    transaction (the group's, and one per member added or removed: bounded by the
    request), and the audit log's diff needs only the members named."""
    return _has_member_rows(state.backend) and not state.events.captures


def patch_resource(state: EngineState, ctx: Ctx, rt: ResourceType, rid: str) -> Response:
    """RFC 7644 §3.5.2 PATCH: apply the operations atomically (all or nothing)."""
    opts = state.options
    body = read_body(ctx, opts)
    operations = parse_patch_request(body, strict=opts.strict)
    options = PatchOptions(
        strict=opts.strict,
        replace_creates_missing=opts.patch_replace_creates_missing,
    )
    member_types = _member_types(
        state, ctx, patch_member_values(rt, operations, strict=opts.strict)
    )

    def edit(current: dict[str, Any]) -> dict[str, Any] | None:
        # apply_patch never mutates ``current`` and shares what it leaves unchanged
        # with its result, so _finish can tell carried-over members by identity.
        new = apply_patch(rt, current, operations, options=options)
        if new is not None:
            _finish(rt, new, current, member_types)
            new["schemas"] = schemas_for(rt, new)
        return new

    # Adding or removing members by id on a backend that stores them apart: the cost is
    # the members named, not the group's size, with events and the audit log on too.
    only: set[str] | None = None
    if _member_rows(state):
        only = member_only_values(rt, operations, strict=opts.strict)
    stored = _update(state, ctx, rt, rid, "patched", member_types, edit, only)
    if opts.patch_returns_no_content:
        version = (stored.get("meta") or {}).get("version")
        headers = {"ETag": version} if isinstance(version, str) else {}
        return {"status": 204, "headers": headers, "body": b""}
    if only is not None and state.renderer.request_projection(ctx, rt).wants_members:
        # RFC 7644 §3.5.2: the response shows the resource after the change; this read
        # happens after the write's commit (a later write may show through).
        stored = state.backend.get(ctx.tenant, rt, rid) or stored
    return state.renderer.resource_response(ctx, rt, stored, 200)


def delete_resource(state: EngineState, ctx: Ctx, rt: ResourceType, rid: str) -> Response:
    """RFC 7644 §3.6: "the service provider [...] returns [...] 204 (No Content)".

    ``If-Match`` is checked by the backend atomically with the delete."""
    with writing(write_context(ctx)):
        before = state.backend.delete(ctx.tenant, rt, rid, if_match=if_match(ctx))
    state.events.committed(ctx.tenant, rt, "deleted", before, None)
    return {"status": 204, "headers": {}, "body": b""}
