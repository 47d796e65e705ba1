"""The Python API: the engine's resources for the application's own code.

``engine.users.create({...})``, ``engine.groups.patch(id, [...])``,
``engine.directory(tenant="acme")["Device"].search(filter=...)``: seeding data, reading
what an identity provider provisioned, tests. Every call runs the very handlers that serve
HTTP (``_write.py``, ``_query.py``, ``_render.py``) with the same :class:`EngineState`, so
validation, uniqueness, versions, member checks, change events and the rendered resource
are those of the HTTP API; only the transport is gone (no headers, no status codes, no
encoded bodies), and there is no authentication: the application's own code is trusted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

from .._errors import ConfigurationError, InvalidSyntaxError
from .._types import Response
from .._urns import PATCH_OP_URN
from ..schema import ResourceType
from ._projection import split_attribute_list
from ._query import list_resources, root_search
from ._request import Ctx
from ._state import EngineState
from ._write import (
    create_resource,
    delete_resource,
    get_resource,
    patch_resource,
    replace_resource,
)

__all__ = ["Directory", "ResourceCollection", "SearchResult", "api_state"]

#: What a caller may give for ``attributes`` / ``excluded_attributes``.
AttributeList = str | Sequence[str] | None


def api_state(state: EngineState) -> EngineState:
    """The engine's state as the Python API uses it: identical, except that a PATCH always
    returns the resource (``Options.patch_returns_no_content`` shapes HTTP answers only)."""
    if not state.options.patch_returns_no_content:
        return state
    return replace(state, options=replace(state.options, patch_returns_no_content=False))


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResult:
    """One page of a search (RFC 7644 §3.4.2 ListResponse, RFC 9865 cursors).

    ``resources`` are the resources as the HTTP API shows them. ``total`` counts every
    match, not only this page. ``start_index`` is set for index paging, ``next_cursor`` and
    ``previous_cursor`` for cursor paging (``next_cursor`` is ``None`` on the last page).
    """

    total: int
    resources: list[dict[str, Any]]
    start_index: int | None = None
    next_cursor: str | None = None
    previous_cursor: str | None = None


def _json_body(value: Any, what: str) -> dict[str, Any]:
    """A private copy of ``value`` as it would arrive over HTTP: JSON only.

    Encoding is what an HTTP client would do, so what the engine stores never shares a
    list or dict with the caller, and what HTTP cannot carry fails here with the same error
    (RFC 8259 §8.1: JSON text "MUST be encoded using UTF-8"; a lone surrogate cannot be).
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping (a JSON object), not {type(value).__name__}")
    try:
        text = json.dumps(value, ensure_ascii=False)
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidSyntaxError(f"The {what} holds an unpaired surrogate.") from None
    except (TypeError, ValueError) as exc:
        # Python values JSON has no spelling for (datetime, set, bytes, circular data).
        raise TypeError(f"The {what} is not JSON: {exc}") from None
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def _body(response: Response) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(response["body"])
    return parsed


def _attributes(value: AttributeList) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return ",".join(value)


class ResourceCollection:
    """One resource type of one tenant: create, read, search, replace, patch, delete.

    Get one from an engine (``engine.users``, ``engine.groups``) or from a
    :class:`Directory` (``engine.directory(tenant="acme")["Device"]``). Each method
    behaves as the matching HTTP request does (RFC 7644 §3.3-§3.6) and raises the same
    :class:`~scim2_core.ScimError` subclass where HTTP would answer that error:
    :class:`~scim2_core.NotFoundError`, :class:`~scim2_core.UniquenessError`,
    :class:`~scim2_core.PreconditionFailedError`, :class:`~scim2_core.InvalidValueError`...
    Resources go in and come out as plain dicts, exactly as the HTTP API reads and shows
    them (``meta.location`` under the directory's ``base_url``, the derived ``groups`` of a
    User, never a password). Change listeners (:meth:`Engine.subscribe
    <scim2_core.Engine.subscribe>`) hear every change made here, with the directory's
    ``principal``.
    """

    __slots__ = ("_directory", "_rt")

    def __init__(self, directory: Directory, resource_type: ResourceType) -> None:
        self._directory = directory
        self._rt = resource_type

    def __repr__(self) -> str:
        tenant = self._directory.tenant
        where = f", tenant={tenant!r}" if tenant is not None else ""
        return f"<ResourceCollection {self._rt.name}{where}>"

    @property
    def resource_type(self) -> ResourceType:
        """The resource type served here (its name, endpoint and schemas)."""
        return self._rt

    def create(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """Create a resource, as ``POST /{endpoint}`` does (RFC 7644 §3.3), and return it.

        ``resource`` is the JSON object a client would send; ``schemas`` may be left out,
        it is then the core schema and each extension the resource has a key for. The
        server assigns ``id`` and ``meta``. Raises :class:`~scim2_core.UniquenessError`
        when a unique attribute (``userName``) is taken, :class:`~scim2_core.InvalidValueError`
        for a member that does not exist, and the other write errors HTTP answers.
        """
        body = self._with_schemas(_json_body(resource, "resource"))
        ctx = self._ctx("POST", (), body=body)
        with _scoped(self._state):
            return _body(create_resource(self._state, ctx, self._rt))

    def get(
        self,
        id: str,
        *,
        attributes: AttributeList = None,
        excluded_attributes: AttributeList = None,
    ) -> dict[str, Any]:
        """The resource with this ``id``, as ``GET /{endpoint}/{id}`` shows it (RFC 7644
        §3.4.1); :class:`~scim2_core.NotFoundError` if there is none.

        ``attributes`` / ``excluded_attributes`` (names or one comma-separated string)
        select what is returned, as the query parameters of RFC 7644 §3.9 do.
        """
        ctx = self._ctx("GET", (id,), attributes=attributes, excluded=excluded_attributes)
        with _scoped(self._state):
            return _body(get_resource(self._state, ctx, self._rt, id))

    def search(
        self,
        *,
        filter: str | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        start_index: int | None = None,
        count: int | None = None,
        cursor: str | None = None,
        attributes: AttributeList = None,
        excluded_attributes: AttributeList = None,
    ) -> SearchResult:
        """One page of the resources matching ``filter``, as ``GET /{endpoint}`` answers it
        (RFC 7644 §3.4.2).

        ``filter`` is a SCIM filter (``'userName eq "bjensen"'``); ``sort_by`` an attribute
        path and ``sort_order`` ``"ascending"`` (the default) or ``"descending"``. Page with
        ``start_index`` (1-based) and ``count`` (capped at ``Options.max_results``, which
        is also the default), or with RFC 9865 cursors: ``cursor=""`` starts, and each
        result's ``next_cursor`` continues. Raises :class:`~scim2_core.InvalidFilterError`
        for a filter the engine cannot parse or apply.
        """
        params = {
            "filter": filter,
            "sortBy": sort_by,
            "sortOrder": sort_order,
            "startIndex": start_index,
            "count": count,
            "cursor": cursor,
            "attributes": _attribute_list(attributes),
            "excludedAttributes": _attribute_list(excluded_attributes),
        }
        ctx = self._ctx("GET", ())
        with _scoped(self._state):
            return _result(_body(list_resources(self._state, ctx, self._rt, params)))

    def iterate(
        self,
        *,
        filter: str | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        page_size: int | None = None,
        attributes: AttributeList = None,
        excluded_attributes: AttributeList = None,
    ) -> Iterator[dict[str, Any]]:
        """Every resource matching ``filter``, read one page (``page_size``, at most
        ``Options.max_results``) at a time with RFC 9865 cursors.

        Changes made while iterating may shift resources across pages, as they would for
        an HTTP client paging through the same list.
        """
        cursor = ""
        while True:
            page = self.search(
                filter=filter,
                sort_by=sort_by,
                sort_order=sort_order,
                count=page_size,
                cursor=cursor,
                attributes=attributes,
                excluded_attributes=excluded_attributes,
            )
            yield from page.resources
            if page.next_cursor is None or not page.resources:
                return
            cursor = page.next_cursor

    def replace(
        self, id: str, resource: Mapping[str, Any], *, if_match: str | None = None
    ) -> dict[str, Any]:
        """Replace the resource's attributes, as ``PUT /{endpoint}/{id}`` does (RFC 7644
        §3.5.1), and return the result.

        ``if_match`` is a version (``meta.version``, e.g. ``'W/"3"'``) the stored resource
        must still have, checked atomically with the write:
        :class:`~scim2_core.PreconditionFailedError` otherwise (RFC 7644 §3.14).
        :class:`~scim2_core.NotFoundError` if there is no such resource.
        """
        body = self._with_schemas(_json_body(resource, "resource"))
        ctx = self._ctx("PUT", (id,), body=body, if_match=if_match)
        with _scoped(self._state):
            return _body(replace_resource(self._state, ctx, self._rt, id))

    def patch(
        self,
        id: str,
        operations: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        *,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        """Apply PATCH operations atomically, as ``PATCH /{endpoint}/{id}`` does (RFC 7644
        §3.5.2), and return the result.

        ``operations`` is the list of operations
        (``[{"op": "add", "path": "members", "value": [{"value": user_id}]}]``) or a whole
        PatchOp message. All apply or none does; ``if_match`` works as for
        :meth:`replace`. Raises :class:`~scim2_core.NoTargetError`,
        :class:`~scim2_core.InvalidPathError`, :class:`~scim2_core.MutabilityError`... as
        HTTP answers them.
        """
        if isinstance(operations, Mapping):
            message = _json_body(operations, "PatchOp message")
        elif isinstance(operations, (str, bytes)) or not isinstance(operations, Sequence):
            raise TypeError("operations must be a list of PATCH operations or a PatchOp message")
        else:
            ops = _json_body({"Operations": list(operations)}, "PATCH operations")
            message = {"schemas": [PATCH_OP_URN], **ops}
        ctx = self._ctx("PATCH", (id,), body=message, if_match=if_match)
        with _scoped(self._state):
            return _body(patch_resource(self._state, ctx, self._rt, id))

    def delete(self, id: str, *, if_match: str | None = None) -> None:
        """Delete the resource, as ``DELETE /{endpoint}/{id}`` does (RFC 7644 §3.6);
        :class:`~scim2_core.NotFoundError` if there is none. ``if_match`` works as for
        :meth:`replace`. Deleting a User removes it from every Group."""
        ctx = self._ctx("DELETE", (id,), if_match=if_match)
        with _scoped(self._state):
            delete_resource(self._state, ctx, self._rt, id)

    # -- internals ---------------------------------------------------------------------

    @property
    def _state(self) -> EngineState:
        return self._directory._state

    def _with_schemas(self, body: dict[str, Any]) -> dict[str, Any]:
        """``schemas`` when the caller left it out: the core schema and each extension
        the body has a key for (RFC 7643 §3: "schemas [...] REQUIRED")."""
        if "schemas" in body:
            return body
        rt = self._rt
        keys = {k.lower() for k in body}
        exts = [ext.id for ext, _ in rt.extensions if ext.id.lower() in keys]
        return {"schemas": [rt.schema.id, *exts], **body}

    def _ctx(
        self,
        method: str,
        rest: Sequence[str],
        *,
        body: dict[str, Any] | None = None,
        if_match: str | None = None,
        attributes: AttributeList = None,
        excluded: AttributeList = None,
    ) -> Ctx:
        query: dict[str, str] = {}
        wanted = _attributes(attributes)
        if wanted is not None:
            query["attributes"] = wanted
        unwanted = _attributes(excluded)
        if unwanted is not None:
            query["excludedAttributes"] = unwanted
        headers = {} if if_match is None else {"if-match": if_match}
        directory = self._directory
        return Ctx(
            method=method,
            segments=[self._rt.endpoint[1:], *rest],
            query=query,
            headers=headers,
            body=body,
            base_url=directory.base_url,
            principal=directory.principal,
            tenant=directory.tenant,
        )


def _scoped(state: EngineState) -> AbstractContextManager[Any]:
    """The backend's optional ``request_scope`` around one call, as ``Engine.handle``
    enters it around one request (see :mod:`scim2_core.backends`)."""
    scope = getattr(state.backend, "request_scope", None)
    return nullcontext() if scope is None else scope()


def _attribute_list(value: AttributeList) -> list[str] | None:
    if value is None or isinstance(value, str):
        return split_attribute_list(value)
    return split_attribute_list(list(value))


def _result(body: Mapping[str, Any]) -> SearchResult:
    start = body.get("startIndex")
    return SearchResult(
        total=body["totalResults"],
        resources=body["Resources"],
        start_index=start if isinstance(start, int) else None,
        next_cursor=body.get("nextCursor"),
        previous_cursor=body.get("previousCursor"),
    )


class Directory(Mapping[str, ResourceCollection]):
    """Every resource type of one tenant, by name: ``directory["User"]``,
    ``directory.users``, ``directory.groups``.

    Made by :meth:`Engine.directory <scim2_core.Engine.directory>`. ``tenant`` scopes every
    call, as a principal's tenant scopes an HTTP request; ``base_url`` prefixes
    ``meta.location`` and member ``$ref`` (``"https://example.com/scim/v2"``; by default
    empty, so they are paths such as ``/Users/2819c223``); ``principal`` is what change
    listeners see as the author of each change. A directory is immutable and may be shared
    between threads.
    """

    __slots__ = ("_collections", "_state", "base_url", "principal", "tenant")

    def __init__(
        self,
        state: EngineState,
        *,
        tenant: str | None = None,
        base_url: str = "",
        principal: Any = None,
    ) -> None:
        if tenant is not None and (not isinstance(tenant, str) or not tenant):
            raise ConfigurationError(f"A tenant is a non-empty string or None, not {tenant!r}")
        if not isinstance(base_url, str):
            raise ConfigurationError(f"base_url must be a string, not {base_url!r}")
        self._state = state
        #: The tenant every call is scoped to (None: the engine's single, default tenant).
        self.tenant = tenant
        #: What ``meta.location`` and ``$ref`` start with, without a trailing slash.
        self.base_url = base_url.rstrip("/")
        #: The author of changes, as change listeners see it (``ChangeEvent.principal``).
        self.principal = principal
        self._collections = {rt.name: ResourceCollection(self, rt) for rt in state.types}

    def __repr__(self) -> str:
        return f"<Directory tenant={self.tenant!r} types={list(self._collections)}>"

    def __getitem__(self, name: str) -> ResourceCollection:
        """The resource type named ``name`` (``"User"``, ``"Group"``, a custom type's
        name); :class:`KeyError` if the engine does not serve it."""
        return self._collections[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._collections)

    def __len__(self) -> int:
        return len(self._collections)

    @property
    def users(self) -> ResourceCollection:
        """The ``User`` resource type (:class:`KeyError` if the engine serves none)."""
        return self._collections["User"]

    @property
    def groups(self) -> ResourceCollection:
        """The ``Group`` resource type (:class:`KeyError` if the engine serves none)."""
        return self._collections["Group"]

    def search(
        self,
        *,
        filter: str | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        start_index: int | None = None,
        count: int | None = None,
        cursor: str | None = None,
        attributes: AttributeList = None,
        excluded_attributes: AttributeList = None,
    ) -> SearchResult:
        """One page of the resources of every type matching ``filter``, as a search at the
        server root answers it (RFC 7644 §3.4.2.1, §3.4.3); the parameters are those of
        :meth:`ResourceCollection.search`."""
        params = {
            "filter": filter,
            "sortBy": sort_by,
            "sortOrder": sort_order,
            "startIndex": start_index,
            "count": count,
            "cursor": cursor,
            "attributes": _attribute_list(attributes),
            "excludedAttributes": _attribute_list(excluded_attributes),
        }
        ctx = Ctx(
            method="GET",
            segments=[],
            query={},
            headers={},
            body=None,
            base_url=self.base_url,
            principal=self.principal,
            tenant=self.tenant,
        )
        with _scoped(self._state):
            return _result(_body(root_search(self._state, ctx, params)))
