"""Rendering stored resources into responses: projections (``attributes``,
``excludedAttributes``, ``returned``), ``meta.location``, member ``$ref``, the derived
``User.groups`` and the derived ``$ref`` of singular references such as ``manager``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from .._types import Response
from ..backends import Backend
from ..schema import ResourceType
from ._projection import Projection, split_attribute_list
from ._request import Ctx, json_response

__all__ = ["Renderer"]

#: ``(extension urn or None, attribute, referenced type name, its endpoint)``.
_RefFill = tuple[str | None, str, str, str]

#: A resource and its derived ``groups`` (``Backend.groups_of``'s list for it), or ``None``.
_WithGroups = tuple[dict[str, Any], list[dict[str, Any]]] | None
#: A backend's optional ``get_with_groups(tenant, rt, id)`` (``SQLBackend`` has it).
_GetWithGroups = Callable[[str | None, ResourceType, str], _WithGroups]


def _single_refs(rt: ResourceType, types: Sequence[ResourceType]) -> tuple[_RefFill, ...]:
    """Singular references whose ``$ref`` the server derives from ``value``.

    RFC 7643 §4.3 enterprise ``manager``: "$ref: The URI of the SCIM resource
    representing the User's manager. REQUIRED." IdPs send only ``value``; a singular
    complex attribute with ``value`` and a ``$ref`` naming exactly one configured
    resource type gets ``$ref`` filled on output when that resource exists (a dangling
    id stays as the client sent it).
    """
    endpoints = {t.name: t.endpoint for t in types}
    out: list[_RefFill] = []
    for urn, attr in rt.iter_attributes():
        ref = attr.sub("$ref")
        if attr.multi_valued or ref is None or attr.sub("value") is None:
            continue
        targets = [t for t in ref.reference_types if t in endpoints]
        if len(targets) == 1 and attr.mutability != "readOnly":
            out.append((urn, attr.name, targets[0], endpoints[targets[0]]))
    return tuple(out)


#: The projection cache's bounds (see :meth:`Renderer.projection`).
_CACHE_ENTRIES: Final = 512
_CACHED_TEXT: Final = 1024


class Renderer:
    """Holds what rendering needs: the backend (for derived values), the resource types
    by name, the compiled projections (a bounded cache) and the reference fills."""

    __slots__ = (
        "_backend",
        "_by_name",
        "_get_with_groups",
        "_grouped",
        "_projections",
        "_ref_fills",
    )

    def __init__(self, backend: Backend, types: Sequence[ResourceType]) -> None:
        self._backend = backend
        self._by_name = {rt.name: rt for rt in types}
        self._projections: dict[tuple[str, str | None, str | None], Projection] = {}
        self._ref_fills = {rt.name: _single_refs(rt, types) for rt in types}
        #: The types with a ``groups`` attribute (derived from memberships, RFC 7643 §4.1.2).
        self._grouped = frozenset(rt.name for rt in types if rt.schema.attribute("groups"))
        self._get_with_groups: _GetWithGroups | None = getattr(backend, "get_with_groups", None)

    def read_with_groups(
        self, ctx: Ctx, rt: ResourceType, rid: str
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None] | None:
        """The resource ``rid`` and its derived ``groups`` in one backend call, when the
        backend reads them together (its optional ``get_with_groups``: one statement where
        ``get`` then ``groups_of`` are two) and the response shows ``groups``; ``(None,
        None)`` when there is no such resource. ``None`` when that does not apply: the
        caller reads the resource alone, and rendering asks ``groups_of``."""
        read = self._get_with_groups
        if (
            read is None
            or rt.name not in self._grouped
            or not self.request_projection(ctx, rt).wants_groups
        ):
            return None
        found = read(ctx.tenant, rt, rid)
        return (None, None) if found is None else found

    def projection(
        self, rt: ResourceType, attrs: list[str] | None, excl: list[str] | None
    ) -> Projection:
        """The compiled projection for these parameters.

        Cached, up to ``_CACHE_ENTRIES`` entries, only for parameter lists of at most
        ``_CACHED_TEXT`` characters: what identity providers send is short and repeats, and a
        client sending long, ever-changing lists cannot grow the cache past a few megabytes.
        """
        key = (rt.name, ",".join(attrs) if attrs else None, ",".join(excl) if excl else None)
        proj = self._projections.get(key)
        if proj is None:
            proj = Projection(rt, attrs, excl)
            if len(key[1] or "") + len(key[2] or "") <= _CACHED_TEXT:
                if len(self._projections) >= _CACHE_ENTRIES:
                    self._projections.clear()
                self._projections[key] = proj
        return proj

    def request_projection(self, ctx: Ctx, rt: ResourceType) -> Projection:
        """The projection named by the request's query parameters (RFC 7644 §3.9)."""
        if not ctx.query:  # most reads name none: the type's default projection
            return self.projection(rt, None, None)
        attrs = split_attribute_list(ctx.query.get("attributes"))
        excl = split_attribute_list(ctx.query.get("excludedAttributes"))
        return self.projection(rt, attrs, excl)

    def render_many(
        self,
        ctx: Ctx,
        rt: ResourceType,
        resources: list[dict[str, Any]],
        projection: Projection,
        groups: Mapping[str, list[dict[str, Any]]] | None = None,
    ) -> list[dict[str, Any]]:
        """The response form of ``resources`` (which the caller owns: they are completed
        in place with derived values before the projection is applied). ``groups``: the
        derived groups of each resource by id, when already read (else asked here)."""
        if projection.wants_groups and rt.name in self._grouped:
            self.attach_groups(ctx, resources, groups)
        self.fill_refs(ctx, rt, resources)
        base = ctx.base_url
        out = []
        for res in resources:
            meta = res.get("meta")
            if projection.wants_meta and isinstance(meta, dict):
                meta["location"] = f"{base}{rt.endpoint}/{res['id']}"
            if projection.wants_members:
                members = res.get("members")
                if members:
                    for m in members:
                        mrt = self._by_name.get(m.get("type", ""))
                        if mrt is not None:
                            m["$ref"] = f"{base}{mrt.endpoint}/{m['value']}"
            out.append(projection.apply(res))
        return out

    def fill_refs(self, ctx: Ctx, rt: ResourceType, resources: list[dict[str, Any]]) -> None:
        """Derive ``$ref`` of singular references (``manager``) that name an existing
        resource of the referenced type (see :func:`_single_refs`), in place."""
        fills = self._ref_fills.get(rt.name)
        if not fills:
            return
        pending: list[tuple[dict[str, Any], str, str, str]] = []
        for res in resources:
            for urn, name, type_name, endpoint in fills:
                holder = res if urn is None else res.get(urn)
                value = holder.get(name) if isinstance(holder, dict) else None
                if isinstance(value, dict) and "$ref" not in value:
                    target = value.get("value")
                    if isinstance(target, str) and target:
                        pending.append((value, target, type_name, endpoint))
        if not pending:
            return
        found = self._backend.existing(ctx.tenant, sorted({p[1] for p in pending}))
        for value, target, type_name, endpoint in pending:
            if found.get(target) == type_name:
                value["$ref"] = f"{ctx.base_url}{endpoint}/{target}"

    def attach_groups(
        self,
        ctx: Ctx,
        resources: list[dict[str, Any]],
        known: Mapping[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        """Set the derived ``groups`` of each resource (RFC 7643 §4.1.2), in place; from
        ``known`` (``groups_of``'s answer, already read) when given.

        "value: The identifier of the User's group", "$ref: The URI of the corresponding
        'Group' resource", "display: A human-readable name", "type: [...] 'direct'".
        """
        if not resources:
            return
        found = known
        if found is None:
            found = self._backend.groups_of(ctx.tenant, [r["id"] for r in resources])
        if not found:
            return
        group_rt = self._by_name.get("Group")
        prefix = f"{ctx.base_url}{group_rt.endpoint if group_rt else '/Groups'}/"
        for res in resources:
            mine = found.get(res["id"])
            if mine:
                res["groups"] = [{**g, "$ref": prefix + g["value"], "type": "direct"} for g in mine]

    def resource_response(
        self,
        ctx: Ctx,
        rt: ResourceType,
        stored: dict[str, Any],
        status: int,
        *,
        location: bool = False,
        groups: list[dict[str, Any]] | None = None,
    ) -> Response:
        """One resource as a response, with its ``ETag`` (RFC 7644 §3.14) and, for a
        create, its ``Location`` (RFC 7644 §3.3). ``groups``: its derived groups, when
        read with it (:meth:`read_with_groups`)."""
        version = stored.get("meta", {}).get("version")
        known = None if groups is None else {stored["id"]: groups}
        projection = self.request_projection(ctx, rt)
        body = self.render_many(ctx, rt, [stored], projection, known)[0]
        headers: dict[str, str] = {}
        if isinstance(version, str):
            headers["ETag"] = version
        if location:
            headers["Location"] = f"{ctx.base_url}{rt.endpoint}/{stored['id']}"
        return json_response(status, body, headers)
