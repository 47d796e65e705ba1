"""Keyset paging over a list already in a search's order (RFC 9865 cursors as positions):
how :class:`~scim2_core.backends.MemoryBackend` answers :attr:`SearchQuery.seek`, and what
any backend that sorts in Python can reuse.

The order is that of :class:`~scim2_core.backends.SortSpec`: by key (no value sorts last
ascending, first descending), ties by ``id`` ascending in both directions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._base import Page, Position, Seek

__all__ = ["follows", "seek_page"]


def follows(key: Any, rid: str, position: Position, descending: bool) -> bool:
    """Whether a resource with sort key ``key`` and id ``rid`` comes strictly after
    ``position`` in the order (``descending`` or not)."""
    other = position.key
    if key is None or other is None:
        if key is None and other is None:
            return rid > position.id
        # "no value" is after every value ascending, before every value descending.
        return (key is None) != descending
    if key != other:
        return bool(key > other) != descending
    return rid > position.id


def seek_page(
    total: int,
    rows: Sequence[dict[str, Any]],
    position_of: Callable[[dict[str, Any]], Position],
    seek: Seek,
    count: int,
    descending: bool,
) -> Page:
    """The page of ``seek`` over ``rows`` (every match, in the query's order): at most
    ``count`` resources right after ``seek.position`` (or right before it, ``backward``),
    with the positions of the first and last and whether more lie beyond. The resources
    are ``rows``' own dicts (the caller copies them)."""
    start = seek.position
    if start is None:
        cut = 0
    else:
        # The first row after the position (rows before it, or at it, precede it).
        cut = len(rows)
        for at, row in enumerate(rows):
            here = position_of(row)
            if follows(here.key, here.id, start, descending):
                cut = at
                break
    if seek.backward and start is not None:
        # Rows strictly before the position: those before ``cut``, minus the one at it.
        stop = cut
        if stop > 0 and position_of(rows[stop - 1]) == start:
            stop -= 1
        begin = max(0, stop - max(count, 0))
        window = list(rows[begin:stop])
        more = begin > 0
    else:
        window = list(rows[cut : cut + max(count, 0)])
        more = cut + len(window) < len(rows)
    first = position_of(window[0]) if window else None
    last = position_of(window[-1]) if window else None
    return Page(total=total, resources=window, first=first, last=last, more=more)
