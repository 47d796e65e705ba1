"""A small HTML builder that escapes everything it is not told is markup.

Every page of the operator console is built with :func:`el`: text and attribute values
are escaped (``&``, ``<``, ``>``, ``"``, ``'``), so a value from a request (a userName, a
filter, an error's detail) can never become markup. Only what :func:`el` itself returns
(:class:`Safe`) is inserted as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape

__all__ = ["Safe", "el", "fragment", "text"]


class Safe(str):
    """A string of markup built by :func:`el`: inserted without escaping."""

    __slots__ = ()


#: Elements with no content and no end tag (HTML Living Standard, "void elements").
_VOID = frozenset(("br", "hr", "img", "input", "link", "meta", "col", "source"))


def text(value: object) -> Safe:
    """``value`` as escaped text (a :class:`Safe` passes unchanged)."""
    if isinstance(value, Safe):
        return value
    return Safe(escape(str(value), quote=True))


def _flatten(children: Iterable[object], out: list[str]) -> None:
    for child in children:
        if child is None or child is False:
            continue
        if isinstance(child, str | int | float):
            out.append(text(child))
        else:
            _flatten(child, out)  # type: ignore[arg-type]


def fragment(*children: object) -> Safe:
    """The children, escaped where they are text, one after the other."""
    out: list[str] = []
    _flatten(children, out)
    return Safe("".join(out))


def el(tag: str, attrs: Mapping[str, object] | None = None, *children: object) -> Safe:
    """``<tag attrs>children</tag>``: attribute values and text children escaped.

    An attribute whose value is ``True`` is written bare (``hidden``); ``None`` or
    ``False`` leaves it out. A trailing ``_`` in a name is dropped (``class_``).
    """
    parts = [tag]
    for name, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        key = name.rstrip("_").replace("_", "-")
        parts.append(key if value is True else f'{key}="{text(value)}"')
    head = "<" + " ".join(parts) + ">"
    if tag in _VOID:
        return Safe(head)
    return Safe(f"{head}{fragment(*children)}</{tag}>")
