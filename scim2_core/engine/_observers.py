"""What the engine tells a request observer, and the rate gate it runs: the small hooks
``scim2_core.observe`` (logs, metrics, traces, rate limits) plugs into.

:class:`RequestRecord` holds the facts of one answered request, built without formatting
anything (the audit log's :class:`~scim2_core.events.AuditEntry` is made from it only when
the audit log is on). :func:`observed_handler` builds, once per :meth:`Engine.observe`,
the function that runs a request between its observers: with one observer that reads the
engine's own facts (:class:`ObserverHooks`, what ``scim2_core.observe.Observability``
gives), a request costs two clock reads and one call more, and no record is made unless
something reads it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from .._types import Request, Response
from ._events import principal_name

__all__ = [
    "Answered",
    "ObserverHooks",
    "RateGate",
    "RequestObserver",
    "RequestRecord",
    "observed_handler",
    "record_of",
]

logger = logging.getLogger("scim2_core")

#: ``gate(principal, tenant)``, run after authentication: raises a ScimError (429) to refuse.
RateGate = Callable[[Any, str | None], None]


@dataclass(slots=True, eq=False)
class RequestRecord:
    """One answered request: when it arrived (``arrived``, epoch seconds) and how long the
    engine took (``seconds``), who sent it (``principal``, ``tenant``), what it asked
    (``method``, ``path`` relative to the SCIM base: may hold an id, never the query), the
    resource concerned (``resource_type``, ``resource_id``), the ``status``, the error's
    ``scim_type`` and the ``request_id``. ``segments`` is the path split at ``/`` (empty
    for a request that could not be decoded). ``change`` is a write's diff: personal data,
    never to be logged.

    Made by the engine for every observed request, so it stores what it is given and
    works out the principal's name and the resource only when read (the metrics never
    read them): an observed request costs a few microseconds, not more.
    """

    #: ``time.perf_counter()`` when the request arrived (its epoch time: ``arrived``).
    begun: float
    seconds: float
    method: str
    path: str
    status: int
    scim_type: str | None
    request_id: str | None
    segments: list[str]
    tenant: str | None = None
    change: dict[str, Any] | None = None
    #: The authenticated principal as the application gave it (its name: ``principal``).
    principal_given: Any = None
    #: The engine's resource types by lower-cased endpoint, to name the resource.
    types: Mapping[str, Any] | None = field(default=None, repr=False)
    #: The id a write created or changed.
    written: str | None = None

    @property
    def arrived(self) -> float:
        """When the request arrived, in epoch seconds: worked out from the performance
        counter when read (the engine reads one clock per request, not two)."""
        return time.time() - (time.perf_counter() - self.begun)

    @property
    def principal(self) -> str | None:
        """The principal's name (its ``name`` if a string, else ``str()``), None if none."""
        return principal_name(self.principal_given)

    @property
    def resource(self) -> tuple[str | None, str | None]:
        """``(resource_type, resource_id)``, worked out once for both."""
        return self._resource()

    @property
    def resource_type(self) -> str | None:
        """The name of the resource type the path is about (``User`` for ``/Me``)."""
        return self._resource()[0]

    @property
    def resource_id(self) -> str | None:
        """The id written, else the id in the path (``/Users/{id}``), else None."""
        return self._resource()[1]

    def _resource(self) -> tuple[str | None, str | None]:
        seg = self.segments
        head = seg[0].lower() if seg else None
        rt = self.types.get(head) if head is not None and self.types is not None else None
        if rt is not None:
            in_path = seg[1] if len(seg) == 2 and seg[1] != ".search" else None
            return rt.name, self.written or in_path
        return ("User" if head == "me" else None), self.written


class RequestObserver(Protocol):
    """What :meth:`Engine.observe` takes: told when each request starts and how it ended
    (``scim2_core.observe.Observability`` is one: logs, metrics, traces).

    An observer that also has ``engine_hooks()`` (returning :class:`ObserverHooks`) is
    called through those instead, and is given the engine's own facts rather than a
    :class:`RequestRecord`: how ``Observability`` keeps a request's cost under a
    microsecond. That form is internal to scim2-core and may change.
    """

    def started(self, request: Request) -> Any:
        """Called before the engine reads ``request``; returns what :meth:`finished` gets."""

    def finished(self, started: Any, record: RequestRecord, response: Response) -> None:
        """Called with what :meth:`started` returned, the facts of the request and the
        response, on the thread that served it, before ``handle`` returns."""


#: ``answered(begun, request, response, seen, started, took)``: what an observer inside
#: scim2-core is told once a request is answered, without a :class:`RequestRecord`: what its
#: ``start`` returned (None without one), the request and response, the engine's ``seen``
#: (``[Ctx or None, scimType or None]``), ``time.perf_counter()`` at arrival and the
#: seconds the engine took. :func:`record_of` makes the record from them when needed.
Answered = Callable[[Any, Request, Response, list[Any], float, float], None]


class ObserverHooks(NamedTuple):
    """What an observer that defines ``engine_hooks()`` asks the engine to call instead of
    ``started``/``finished``: ``start(request)`` before the engine reads a request (None:
    nothing), ``answered`` (see :data:`Answered`) after."""

    start: Callable[[Request], Any] | None
    answered: Answered


def record_of(
    request: Any,
    response: Response,
    seen: list[Any],
    started: float,
    took: float,
    types: Mapping[str, Any],
) -> RequestRecord:
    """The facts of one answered request, for the audit log and the observers: what is at
    hand, the rest worked out only if read (see :class:`RequestRecord`)."""
    ctx = seen[0]
    status = response["status"]
    rid = response["headers"].get("X-Request-Id")
    if ctx is None:  # not even a request: nothing more is known
        method = path = "?"
        if isinstance(request, Mapping):
            method = str(request.get("method", "?"))[:16]
            path = str(request.get("path", "?"))[:512]
        return RequestRecord(started, took, method, path, status, seen[1], rid, [])
    method, path = request["method"], request["path"]  # strings: decode checked them
    if len(method) > 16 or len(path) > 512:
        method, path = method[:16], path[:512]
    return RequestRecord(
        started,
        took,
        method,
        path,
        status,
        seen[1],
        rid,
        ctx.segments,
        ctx.tenant,
        ctx.change,
        ctx.principal,
        types,
        ctx.written_id,
    )


class _Audit(Protocol):
    @property
    def active(self) -> bool: ...

    def record(self, entry: Any) -> None: ...


def _start(start: Callable[[Request], Any] | None, request: Request) -> Any:
    if start is None:
        return None
    try:
        return start(request)
    except Exception:
        logger.exception("A request observer failed")
        return None


def observed_handler(
    handle: Callable[[Request, list[Any]], Response],
    observers: Sequence[RequestObserver],
    types: Mapping[str, Any],
    audit: _Audit,
    audit_entry: Callable[[RequestRecord, Any, Response], Any],
) -> Callable[[Request, list[Any]], Response]:
    """``handle`` (the engine's request path: ``handle(request, seen)``) run between
    ``observers`` and, when it is on, the audit log (``audit.record(audit_entry(record,
    request, response))``). An exception in an observer is logged, never answered.

    Built once per :meth:`Engine.observe`: the common case, one observer with no ``start``
    that reads the engine's facts itself (``Observability`` with metrics), gets a path of
    its own with no list, no loop and no :class:`RequestRecord`.
    """
    clock = time.perf_counter
    hooks: list[tuple[Callable[[Request], Any] | None, Answered | None, Any]] = []
    for observer in observers:
        engine_hooks = getattr(observer, "engine_hooks", None)
        if callable(engine_hooks):
            given: ObserverHooks = engine_hooks()
            hooks.append((given.start, given.answered, None))
        else:
            hooks.append((observer.started, None, observer.finished))

    def audited(
        request: Any, response: Response, seen: list[Any], started: float, took: float
    ) -> RequestRecord:
        record = record_of(request, response, seen, started, took, types)
        audit.record(audit_entry(record, request, response))
        return record

    if len(hooks) == 1 and hooks[0][0] is None and hooks[0][1] is not None:
        answered = hooks[0][1]

        def one(request: Request, seen: list[Any]) -> Response:
            started = clock()
            response = handle(request, seen)
            took = clock() - started
            if audit.active:
                audited(request, response, seen, started, took)
            try:
                answered(None, request, response, seen, started, took)
            except Exception:
                logger.exception("A request observer failed")
            return response

        return one

    any_plain = any(finished is not None for _, _, finished in hooks)

    def every(request: Request, seen: list[Any]) -> Response:
        started = clock()
        begun = [_start(start, request) for start, _, _ in hooks]
        response = handle(request, seen)
        took = clock() - started
        record = None
        if audit.active:
            record = audited(request, response, seen, started, took)
        elif any_plain:
            record = record_of(request, response, seen, started, took, types)
        for (_, answered, finished), begun_by in zip(hooks, begun, strict=True):
            try:
                if answered is not None:
                    answered(begun_by, request, response, seen, started, took)
                else:
                    finished(begun_by, record, response)
            except Exception:
                logger.exception("A request observer failed")
        return response

    return every
