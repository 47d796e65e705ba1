"""The query path (RFC 7644 §3.4): list and ``.search`` on one resource type, the root
search across every type, paging (index and RFC 9865 cursors), ``sortBy``, and the
queries on the derived ``User.groups`` that no backend can answer alone."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from itertools import islice
from operator import itemgetter
from typing import Any, Final

from .._errors import (
    InvalidCountError,
    InvalidCursorError,
    InvalidFilterError,
    InvalidSyntaxError,
    InvalidValueError,
    ScimError,
)
from .._types import Response
from .._urns import LIST_RESPONSE_URN, SEARCH_REQUEST_URN
from ..backends import Page, SearchQuery, Seek, SortSpec
from ..filter import (
    And,
    AttrPath,
    Compare,
    Filter,
    bind,
    compile_filter,
    conjuncts,
    mentions,
    parse_filter,
    sort_key,
)
from ..schema import AttrRef, ResourceType
from ._cursor import CursorState
from ._projection import split_attribute_list
from ._request import Ctx, has_urn, json_response, read_body
from ._state import EngineState

__all__ = ["list_resources", "query_params", "root_search", "search_params"]


def query_params(ctx: Ctx) -> dict[str, Any]:
    """RFC 7644 §3.4.2: the query parameters of a GET."""
    q = ctx.query
    return {
        "filter": q.get("filter"),
        "sortBy": q.get("sortBy"),
        "sortOrder": q.get("sortOrder"),
        "startIndex": q.get("startIndex"),
        "count": q.get("count"),
        "cursor": q.get("cursor"),
        "attributes": split_attribute_list(q.get("attributes")),
        "excludedAttributes": split_attribute_list(q.get("excludedAttributes")),
    }


def search_params(state: EngineState, ctx: Ctx) -> dict[str, Any]:
    """RFC 7644 §3.4.3: a SearchRequest body carries the query parameters."""
    # RFC 7643 §2.1: "Attribute names are case insensitive", message attributes
    # included; schema URNs are compared case-insensitively as for resources.
    body = {k.lower(): v for k, v in read_body(ctx, state.options).items() if isinstance(k, str)}
    if not has_urn(body.get("schemas"), SEARCH_REQUEST_URN):
        raise InvalidSyntaxError(
            f"A search request body must have schemas [{SEARCH_REQUEST_URN!r}]."
        )
    params: dict[str, Any] = {}
    for name in ("filter", "sortBy", "sortOrder", "startIndex", "count", "cursor"):
        value = body.get(name.lower())
        textual = name in ("filter", "sortBy", "sortOrder", "cursor")
        if value is not None and textual and not isinstance(value, str):
            raise InvalidValueError(f"{name} must be a string.")
        params[name] = value
    params["attributes"] = split_attribute_list(body.get("attributes"))
    params["excludedAttributes"] = split_attribute_list(body.get("excludedattributes"))
    return params


def _int_param(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidValueError(f"{name} must be an integer.")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidValueError(f"{name} must be an integer, got {value!r}.")


def _parse_filter(state: EngineState, text: str) -> Filter:
    return parse_filter(
        text,
        max_length=state.options.max_filter_length,
        max_depth=state.options.max_filter_depth,
        # Microsoft's SCIM validator sends unquoted values (docs/idp-notes.md, Filters).
        tolerant=not state.options.strict,
    )


#: The filter cache's bounds (see :func:`_bound_filter`).
_CACHE_ENTRIES: Final = 512
_CACHED_TEXT: Final = 1024

#: ``(id(rt), text, max length, max depth, strict)`` -> ``(rt, bound filter)``.
_BOUND: dict[tuple[int, str, int, int, bool], tuple[ResourceType, Filter]] = {}
#: ``(id(rt), attribute path as written, operator)`` -> ``(rt, bound path)``, for the
#: comparisons of a string attribute with a string (see :func:`_bind_compare`).
_PATHS: dict[tuple[int, AttrPath, str], tuple[ResourceType, AttrPath]] = {}


def _bound_filter(state: EngineState, rt: ResourceType, text: str) -> Filter:
    """The filter ``text`` parsed and bound to ``rt``.

    Identity providers send the same few filter shapes (``userName eq "x"`` before every
    create), so the work is cached per resource type and filter text: up to
    ``_CACHE_ENTRIES`` entries, only for texts of at most ``_CACHED_TEXT`` characters (a
    client sending long, ever-changing filters cannot grow it past a few megabytes). The
    nodes are frozen, so every request may share them. A filter that does not parse or
    bind raises as before, and is not cached.
    """
    options = state.options
    key = (id(rt), text, options.max_filter_length, options.max_filter_depth, options.strict)
    hit = _BOUND.get(key)
    if hit is not None and hit[0] is rt:
        return hit[1]
    parsed = _parse_filter(state, text)
    bound = None
    if type(parsed) is Compare and type(parsed.value) is str:
        bound = _bind_compare(rt, parsed)
    if bound is None:
        bound = bind(parsed, rt)
    if len(text) <= _CACHED_TEXT:
        _remember(_BOUND, key, (rt, bound))
    return bound


def _bind_compare(rt: ResourceType, node: Compare) -> Filter | None:
    """``bind(node, rt)`` for a comparison with a string, from the binding of its path.

    Each ``userName eq "..."`` of a sync names another user, so the whole filter rarely
    repeats, but its path does. For a ``string`` or ``reference`` attribute (or the
    ``value`` of a multi-valued complex one) binding checks only the path: the value
    passes unchanged. None: bind the whole filter (the first time, and for other types).
    """
    key = (id(rt), node.path, node.op)
    hit = _PATHS.get(key)
    if hit is not None and hit[0] is rt:
        return Compare(hit[1], node.op, node.value)
    bound = bind(node, rt)
    if isinstance(bound, Compare):
        path = bound.path
        ref = rt.resolve(path.urn, path.name, path.sub)
        if ref is not None and ref.target.type in ("string", "reference"):
            _remember(_PATHS, key, (rt, path))
    return bound


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_ENTRIES:
        cache.clear()
    cache[key] = value


def _sort_spec(rt: ResourceType, sort_by: str | None, order: str | None) -> SortSpec | None:
    """RFC 7644 §3.4.2.3: "sortOrder [...] "ascending" and "descending" [...] If
    sortBy is provided but sortOrder is not, the default is "ascending"."""
    descending = False
    if order is not None:
        low = order.strip().lower()
        if low not in ("ascending", "descending"):
            raise InvalidValueError("sortOrder must be 'ascending' or 'descending'.")
        descending = low == "descending"
    if sort_by is None or not sort_by.strip():
        return None
    try:
        ref = rt.resolve_path(sort_by.strip())
    except ScimError:
        raise InvalidValueError(f"Cannot sort by unknown attribute {sort_by!r}.") from None
    if ref.target.returned == "never":
        raise InvalidValueError(f"Cannot sort by {sort_by!r}.")
    # RFC 7644 §3.4.2.3: "If the attribute is complex, the attribute name must be a
    # path to a sub-attribute [...] e.g., "sortBy=name.givenName"". A complex attribute
    # with a "value" sub-attribute (emails, manager) is taken to mean its value, which
    # is how the RFC's "sorted by the value of the primary attribute" reads.
    if ref.target.is_complex and ref.target.sub("value") is None:
        raise InvalidValueError(
            f"Cannot sort by the complex attribute {sort_by!r}; name a sub-attribute."
        )
    return SortSpec(path=ref, descending=descending)


def _window(state: EngineState, params: Mapping[str, Any], digest: str) -> _Window:
    """The page asked for by startIndex/count/cursor.

    RFC 7644 §3.4.2.4: "A value less than 1 SHALL be interpreted as 1" (startIndex);
    "A negative value SHALL be interpreted as "0"" (count); count larger than the
    maximum is capped ("the service provider [...] SHALL return up to the maximum").
    """
    maximum = state.options.max_results
    count = _int_param("count", params.get("count"))
    cursor = params.get("cursor")
    if cursor is not None:
        if params.get("startIndex") is not None:
            raise InvalidValueError("startIndex and cursor cannot be used together.")
        if cursor == "":
            size = maximum if count is None else max(0, min(count, maximum))
            return _Window(0, size, CursorState(0, size))
        cstate = state.cursors.open(cursor, digest)
        if count is not None and max(0, min(count, maximum)) != cstate.count:
            raise InvalidCountError("count must stay the same across cursor pages.")
        return _Window(cstate.offset, cstate.count, cstate)
    start = _int_param("startIndex", params.get("startIndex"))
    offset = max(1, start if start is not None else 1) - 1
    size = maximum if count is None else max(0, min(count, maximum))
    return _Window(offset, size, None)


@dataclass(frozen=True, slots=True)
class _Window:
    """A page: ``offset`` and ``count``, and the cursor it was asked with (RFC 9865; an
    empty ``cursor=`` is a cursor at offset 0), None for index paging."""

    offset: int
    count: int
    cursor: CursorState | None

    def seek(self, state: EngineState, keyset: bool) -> Seek | None:
        """The keyset seek of this page, or None to page by offset.

        RFC 9865 cursors are positions when the backend can seek (``keyset_paging``) and
        the query is one it answers alone (``keyset``); a cursor minted as an offset (by an
        older version) is still honoured as one.
        """
        c = self.cursor
        if c is None or not keyset or not getattr(state.backend, "keyset_paging", False):
            if c is not None and c.position is not None:
                raise InvalidCursorError("The cursor cannot be used for this query.")
            return None
        if c.position is None and c.offset > 0:
            return None
        return Seek(position=c.position, backward=c.backward)


def list_resources(
    state: EngineState, ctx: Ctx, rt: ResourceType, params: Mapping[str, Any]
) -> Response:
    """RFC 7644 §3.4.2 GET on a resource type's endpoint, and §3.4.3 its ``.search``."""
    text = params.get("filter")
    bound: Filter | None = None
    if text is not None and text.strip():
        bound = _bound_filter(state, rt, text)
    sort = _sort_spec(rt, params.get("sortBy"), params.get("sortOrder"))
    # The query's digest binds cursors to it (RFC 9865); only a cursor request needs it.
    digest = ""
    if params.get("cursor") is not None:
        digest = state.cursors.query_digest(
            ctx.tenant or "",
            rt.name,
            str(bound) if bound else None,
            str(sort.path) if sort else None,
            "d" if sort and sort.descending else "a",
        )
    window = _window(state, params, digest)
    projection = state.renderer.projection(
        rt, params.get("attributes"), params.get("excludedAttributes")
    )
    query = SearchQuery(
        filter=bound,
        sort=sort,
        offset=window.offset,
        count=window.count,
        without_members=not projection.wants_members,
    )
    derived = _uses_groups(rt, query)
    seek = window.seek(state, not derived)
    if seek is not None:
        query = replace(query, offset=0, seek=seek)
    page = _search_type(state, ctx, rt, query, derived)
    items = state.renderer.render_many(ctx, rt, page.resources, projection, page.groups)
    if seek is not None:
        body = _keyset_body(state, page, items, window.count, seek, digest)
    else:
        body = _list_body(state, page, items, window, digest)
    return json_response(200, body)


def _uses_groups(rt: ResourceType, query: SearchQuery) -> bool:
    """Whether ``query`` filters or sorts on the derived ``User.groups`` (answered by
    :func:`_search_type` itself, not by the backend alone)."""
    return _derived_groups(rt) and (
        (query.filter is not None and mentions(query.filter, "groups"))
        or (
            query.sort is not None
            and query.sort.path.urn is None
            and query.sort.path.attribute.name == "groups"
        )
    )


def _search_type(
    state: EngineState,
    ctx: Ctx,
    rt: ResourceType,
    query: SearchQuery,
    derived: bool | None = None,
) -> Page:
    """``backend.search``, except when the query needs the derived ``groups``.

    ``User.groups`` is not stored: it is computed from group memberships on every
    read (RFC 7643 §4.1.2 "groups [...] readOnly"). A filter or sortBy naming it is
    still a filter on an attribute of the resource (RFC 7644 §3.4.2.2), so such a query
    is answered here: the conjuncts that do not name ``groups`` are pushed down, the
    candidates get their groups, and the rest is evaluated in memory. Slower than a
    pushed-down query, never wrong. ``derived``: :func:`_uses_groups`, when known.
    """
    if not (_uses_groups(rt, query) if derived is None else derived):
        return state.backend.search(ctx.tenant, rt, query)
    pushed: Filter | None = None
    rest: Filter | None = None
    if query.filter is not None:
        for part in conjuncts(query.filter):
            if mentions(part, "groups"):
                rest = part if rest is None else And(rest, part)
            else:
                pushed = part if pushed is None else And(pushed, part)
    rows: list[dict[str, Any]] = []
    while True:
        chunk = state.backend.search(
            ctx.tenant, rt, SearchQuery(filter=pushed, offset=len(rows), count=1000)
        )
        rows.extend(chunk.resources)
        if not chunk.resources or len(rows) >= chunk.total:
            break
    state.renderer.attach_groups(ctx, rows)
    if rest is not None:
        predicate = compile_filter(rest, rt)
        rows = [r for r in rows if predicate(r)]
    if query.sort is not None:
        descending = query.sort.descending
        rows.sort(key=sort_key(query.sort.path, descending=descending), reverse=descending)
    window = rows[query.offset : query.offset + max(query.count, 0)]
    return Page(len(rows), window)


def _derived_groups(rt: ResourceType) -> bool:
    attr = rt.schema.attribute("groups")
    return attr is not None and attr.mutability == "readOnly"


def _keyset_body(
    state: EngineState,
    page: Page,
    items: list[dict[str, Any]],
    count: int,
    seek: Seek,
    digest: str,
) -> dict[str, Any]:
    """The ListResponse of a keyset page: its cursors are the positions of its ends.

    RFC 9865 §2.2: "nextCursor: [...] MUST be included if there are more results";
    "previousCursor [...] MAY be included". A page walked forward has more after it when
    the backend says so, and one before it unless it is the first; backward, the reverse.
    """
    body: dict[str, Any] = {
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": page.total,
        "itemsPerPage": len(items),
    }
    more_after = page.more if not seek.backward else True
    more_before = page.more if seek.backward else seek.position is not None
    if count > 0 and more_after and page.last is not None:
        body["nextCursor"] = state.cursors.seal(CursorState(0, count, page.last), digest)
    if count > 0 and more_before and page.first is not None:
        previous = CursorState(0, count, page.first, backward=True)
        body["previousCursor"] = state.cursors.seal(previous, digest)
    body["Resources"] = items
    return body


def _list_body(
    state: EngineState,
    page: Page,
    items: list[dict[str, Any]],
    window: _Window,
    digest: str,
) -> dict[str, Any]:
    offset, count = window.offset, window.count
    body: dict[str, Any] = {
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": page.total,
        "itemsPerPage": len(items),
    }
    if window.cursor is not None:
        # RFC 9865 §2.2: "nextCursor: [...] MUST be included if there are more
        # results"; "previousCursor [...] MAY be included".
        if count > 0 and offset + len(items) < page.total:
            body["nextCursor"] = state.cursors.seal(CursorState(offset + count, count), digest)
        if count > 0 and offset > 0:
            prev = max(0, offset - count)
            body["previousCursor"] = state.cursors.seal(CursorState(prev, count), digest)
    else:
        body["startIndex"] = offset + 1
    body["Resources"] = items
    return body


def root_search(state: EngineState, ctx: Ctx, params: Mapping[str, Any]) -> Response:
    """RFC 7644 §3.4.3 POST /.search, and GET on the root, across every resource type.

    RFC 7644 §3.4.2.1: "A query against a server root indicates that all resources
    within the server SHALL be included, subject to filtering"; when searching several
    resource types, a filter naming an attribute one type lacks matches nothing of
    that type (it is not an error unless no type knows it). With ``sortBy`` the
    resource types are merged into one order (§3.4.2.3); a type without the attribute
    has no value for it and sorts as such.
    """
    text = params.get("filter")
    parsed = _parse_filter(state, text) if text is not None and text.strip() else None
    targets: list[tuple[ResourceType, Filter | None]] = []
    first_error: ScimError | None = None
    for rt in state.types:
        try:
            targets.append((rt, bind(parsed, rt) if parsed is not None else None))
        except InvalidFilterError as exc:
            first_error = first_error or exc
    if not targets:
        assert first_error is not None
        raise first_error
    sort_by = params.get("sortBy")
    order = params.get("sortOrder")
    sorts = _root_sorts(targets, sort_by, order)
    digest = state.cursors.query_digest(
        ctx.tenant or "", "*", str(parsed) if parsed else None, sort_by, order
    )
    window = _window(state, params, digest)
    window.seek(state, keyset=False)  # refuses a positioned cursor: root pages are offsets
    offset, count = window.offset, window.count
    attrs, excl = params.get("attributes"), params.get("excludedAttributes")
    if sorts:
        total, items = _root_sorted(state, ctx, targets, sorts, offset, count, attrs, excl)
    else:
        total, items = _root_concatenated(state, ctx, targets, offset, count, attrs, excl)
    return json_response(200, _list_body(state, Page(total, []), items, window, digest))


def _root_sorts(
    targets: list[tuple[ResourceType, Filter | None]], sort_by: str | None, order: str | None
) -> dict[str, SortSpec | None]:
    """The sort of each resource type; empty when unsorted. 400 only if no type can sort
    by the attribute."""
    sorts: dict[str, SortSpec | None] = {}
    if sort_by is not None and sort_by.strip():
        sort_error: ScimError | None = None
        for rt, _ in targets:
            try:
                sorts[rt.name] = _sort_spec(rt, sort_by, order)
            except InvalidValueError as exc:
                sort_error = sort_error or exc
                sorts[rt.name] = None
        if all(spec is None for spec in sorts.values()):
            assert sort_error is not None
            raise sort_error
    else:
        _sort_spec(targets[0][0], None, order)  # validates sortOrder alone
    return sorts


def _root_concatenated(
    state: EngineState,
    ctx: Ctx,
    targets: list[tuple[ResourceType, Filter | None]],
    offset: int,
    count: int,
    attrs: list[str] | None,
    excl: list[str] | None,
) -> tuple[int, list[dict[str, Any]]]:
    """Unsorted root search: each resource type in turn, paged as one list."""
    totals = [
        _search_type(state, ctx, rt, SearchQuery(filter=bound, count=0)).total
        for rt, bound in targets
    ]
    items: list[dict[str, Any]] = []
    skip = offset
    want = count
    for (rt, bound), type_total in zip(targets, totals, strict=True):
        if want <= 0:
            break
        if skip >= type_total:
            skip -= type_total
            continue
        page = _search_type(state, ctx, rt, SearchQuery(filter=bound, offset=skip, count=want))
        skip = 0
        want -= len(page.resources)
        projection = state.renderer.projection(rt, attrs, excl)
        items.extend(state.renderer.render_many(ctx, rt, page.resources, projection))
    return sum(totals), items


def _root_sorted(
    state: EngineState,
    ctx: Ctx,
    targets: list[tuple[ResourceType, Filter | None]],
    sorts: Mapping[str, SortSpec | None],
    offset: int,
    count: int,
    attrs: list[str] | None,
    excl: list[str] | None,
) -> tuple[int, list[dict[str, Any]]]:
    """Sorted root search: each type's sorted results, merged into one order.

    Each type is read in chunks of at most ``_ROOT_CHUNK`` and merged lazily, so memory stays
    bounded whatever ``startIndex`` asks for; a window past the end reads nothing at all.
    """
    totals = [
        _search_type(state, ctx, rt, SearchQuery(filter=bound, count=0)).total
        for rt, bound in targets
    ]
    total = sum(totals)
    if count == 0 or offset >= total:
        return total, []
    specs = [spec for spec in sorts.values() if spec is not None]
    descending = specs[0].descending
    # A resource of a type without the attribute has no value for it: any type's key
    # function says so, and keeps the same id tie-break.
    fallback = sort_key(specs[0].path, descending=descending)
    # One attribute name may have different types in different schemas: then every key
    # compares as (has value, text), one total order for the whole merge.
    as_text = len({_sorted_type(spec.path) for spec in specs}) > 1
    chunk = max(1, min(offset + count, _ROOT_CHUNK))
    streams = []
    for rank, ((rt, bound), type_total) in enumerate(zip(targets, totals, strict=True)):
        if type_total == 0:
            continue
        spec = sorts.get(rt.name)
        key = sort_key(spec.path, descending=descending) if spec is not None else fallback
        query = SearchQuery(filter=bound, sort=spec, count=chunk)
        streams.append(_sorted_stream(state, ctx, rt, query, key, rank, as_text))
    merged = heapq.merge(*streams, key=itemgetter(0), reverse=descending)
    items = []
    for _, _, rt, res in islice(merged, offset, offset + count):
        projection = state.renderer.projection(rt, attrs, excl)
        items.extend(state.renderer.render_many(ctx, rt, [res], projection))
    return total, items


#: How many resources of one type the sorted root search reads at a time.
_ROOT_CHUNK: Final = 500


def _sorted_type(ref: AttrRef) -> str:
    """The type a ``sortBy`` on ``ref`` compares (a complex attribute sorts by ``value``)."""
    target = ref.sub
    if target is None and ref.attribute.is_complex:
        target = ref.attribute.sub("value")
    return (target or ref.attribute).type


def _sorted_stream(
    state: EngineState,
    ctx: Ctx,
    rt: ResourceType,
    query: SearchQuery,
    key: Callable[[Mapping[str, Any]], Any],
    rank: int,
    as_text: bool,
) -> Iterator[tuple[Any, int, ResourceType, dict[str, Any]]]:
    """One type's results in sort order, read ``query.count`` at a time."""
    start = 0
    while True:
        page = _search_type(state, ctx, rt, replace(query, offset=start))
        for res in page.resources:
            k = key(res)
            yield ((k[0], str(k[1])) if as_text else k), rank, rt, res
        if len(page.resources) < query.count:
            return
        start += query.count
