"""What a backend needs to know about the request behind a write, without a new argument
on every :class:`~scim2_core.backends.Backend` method: the engine sets it around each
write (a :class:`contextvars.ContextVar`, so it follows the thread or task of the write).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

__all__ = ["WriteContext", "current_write", "writing"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteContext:
    """The request behind the write in progress.

    ``kind`` tells an update that is a PUT (``replaced``) from a PATCH (``patched``);
    ``principal`` is the authenticated principal's name; ``request_id`` the request's
    ``X-Request-Id`` (or one the engine made up), shared with the audit log.
    """

    kind: Literal["replaced", "patched"] = "replaced"
    principal: str | None = None
    request_id: str | None = None


_CURRENT: ContextVar[WriteContext | None] = ContextVar("scim2_core_write", default=None)
_DEFAULT = WriteContext()


def current_write() -> WriteContext:
    """The context of the write in progress (defaults outside of an engine request)."""
    return _CURRENT.get() or _DEFAULT


@contextlib.contextmanager
def writing(context: WriteContext) -> Iterator[None]:
    """Make ``context`` the :func:`current_write` for the duration of the block."""
    token = _CURRENT.set(context)
    try:
        yield
    finally:
        _CURRENT.reset(token)
