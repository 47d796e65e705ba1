"""Time spent in the storage during one request, for the request's span.

:func:`time_backend` wraps the :class:`~scim2_core.backends.Backend` methods of one backend
object in place (the engine, its renderer and its events share that object), adding each
call's duration to a per-thread total; the engine serves a request on one thread. A call
made from inside another timed call is not counted twice. Only installed when tracing is
on, and only counting for a request that gets a span: for the others a call costs one
thread-local look-up more.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["backend_seconds", "reset_backend_time", "time_backend"]

_TIMED = (
    "create",
    "get",
    "search",
    "update",
    "delete",
    "groups_of",
    "existing",
    "get_without_members",
    "update_members",
)
_MARK = "_scim2_core_backend_timed"
_local = threading.local()


def reset_backend_time() -> None:
    """Start counting from zero on this thread (a request with a span starts)."""
    _local.seconds = 0.0
    _local.depth = 0


def backend_seconds() -> float:
    """Seconds spent in the backend on this thread since :func:`reset_backend_time`; stops
    counting until the next reset."""
    seconds: float | None = getattr(_local, "seconds", None)
    _local.seconds = None
    return 0.0 if seconds is None else seconds


def _timed(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        if getattr(_local, "seconds", None) is None:  # not counting: a request without a span
            return method(*args, **kwargs)
        depth = _local.depth
        _local.depth = depth + 1
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            _local.depth = depth
            if depth == 0:
                _local.seconds += time.perf_counter() - started

    return call


def time_backend(backend: Any) -> bool:
    """Time ``backend``'s calls from now on; False if its class does not allow it
    (``__slots__``): the spans then carry no backend time."""
    if getattr(backend, _MARK, False):
        return True
    try:
        for name in _TIMED:
            method = getattr(backend, name, None)
            if callable(method):
                setattr(backend, name, _timed(method))
        setattr(backend, _MARK, True)
    except AttributeError:
        return False
    return True
