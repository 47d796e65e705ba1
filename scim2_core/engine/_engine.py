"""The protocol engine: ``Engine.handle(request) -> response`` over plain dicts.

:class:`Engine` builds an :class:`~scim2_core.engine._state.EngineState` once and routes each
request to a plain function of the module that owns that part of RFC 7644:

* ``_request.py``: decoding the request dict, authentication, the JSON body, ``If-Match``
  parsing, and :func:`~._request.error_response`, the one place errors become responses;
* ``_query.py``: list, ``.search``, root search, paging, cursors, ``sortBy``, and filters
  or sorts on the derived ``User.groups``;
* ``_write.py``: GET by id, POST, PUT, PATCH, DELETE, ``If-Match``/``If-None-Match``,
  member checks and change events; ``_validate.py``: the pure write rules;
* ``_render.py``: projections, ``meta.location``, ``$ref``, derived ``groups``;
* ``_discovery.py``: ``/ServiceProviderConfig``, ``/Schemas``, ``/ResourceTypes``;
* ``_bulk.py``: ``/Bulk``, each operation routed back through :meth:`Engine._route`.

``handle`` is the only entry point and never raises: client mistakes are
:class:`~scim2_core.ScimError` subclasses turned into SCIM Error responses; anything else is
a bug, logged and answered with a 500 SCIM Error.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final

from .._errors import (
    ConfigurationError,
    InternalError,
    InvalidSyntaxError,
    InvalidValueError,
    MethodNotAllowedError,
    NotFoundError,
    NotImplementedScimError,
    PayloadTooLargeError,
    ScimError,
)
from .._options import Options
from .._types import Request, Response
from .._urns import BULK_REQUEST_URN
from ..backends import Backend
from ..events import AuditEntry
from ..schema import ResourceType, resource_type_from_model
from ._answers import AnswerCache
from ._api import Directory, ResourceCollection, api_state
from ._audit import Audit, entry_time, exchange_of
from ._bulk import run_bulk
from ._cursor import CursorCodec
from ._discovery import all_schemas, serve_discovery
from ._events import ChangeEvent, Events, Listener
from ._observers import RateGate, RequestObserver, RequestRecord, observed_handler
from ._passwords import verify_password
from ._query import list_resources, query_params, root_search, search_params
from ._render import Renderer
from ._request import (
    Authenticate,
    Ctx,
    authenticate,
    check_method,
    decode,
    error_response,
    has_urn,
    json_response,
    read_body,
)
from ._state import EngineState
from ._write import (
    create_resource,
    delete_resource,
    get_resource,
    patch_resource,
    replace_resource,
)

__all__ = ["ChangeEvent", "Engine", "RequestObserver", "verify_password"]

logger = logging.getLogger("scim2_core")

#: Endpoints RFC 7644 gives a meaning of its own: no resource type may take them.
_RESERVED = frozenset(
    ("/serviceproviderconfig", "/resourcetypes", "/schemas", "/bulk", "/me", "/.search")
)

#: The operations on one resource (RFC 7644 §3.4.1, §3.5.1, §3.5.2, §3.6).
_BY_ID: Final[Mapping[str, Callable[[EngineState, Ctx, ResourceType, str], Response]]] = {
    "GET": get_resource,
    "PUT": replace_resource,
    "PATCH": patch_resource,
    "DELETE": delete_resource,
}


#: What an incoming ``X-Request-Id`` may hold to be kept: it is echoed in a response header
#: and written to logs, so no space, quote, control or non-ASCII character (a UUID, a
#: W3C trace id, Entra's ``client-request-id`` all fit), and at most 128 characters.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_bits = random.getrandbits


def _request_id(given: str | None) -> str:
    """The client's ``X-Request-Id`` if it is a short token of safe characters, else a new
    one: the id of the request in its response header, the logs, events and audit log."""
    if given and _REQUEST_ID.fullmatch(given):
        return given
    # 128 random bits, like a UUID's. An id only tells requests apart, it guards nothing,
    # so it comes from ``random`` (reseeded in each forked worker) rather than from
    # ``os.urandom``: no system call on every request. 32 hex digits, written through
    # bytes (a third of the time of formatting the integer with ``:032x``).
    return _bits(128).to_bytes(16, "big").hex()


def _audit_entry(r: RequestRecord, request: Any, response: Response) -> AuditEntry:
    """The audit log's entry for a request (see :mod:`._audit`); for an error, what was
    asked and answered too (redacted, bounded)."""
    resource_type, resource_id = r.resource
    return AuditEntry.of(
        entry_time(r.arrived),
        r.principal,
        r.tenant,
        r.method,
        r.path,
        resource_type,
        resource_id,
        r.status,
        r.scim_type,
        r.request_id,
        r.seconds * 1000,
        r.change,
        exchange_of(request, response) if r.status >= 400 else None,
    )


def _build_types(types: Sequence[Any] | None) -> tuple[ResourceType, ...]:
    if types is None:
        from scim2_models import EnterpriseUser, Group, User

        types = (User[EnterpriseUser], Group)
    built = tuple(t if isinstance(t, ResourceType) else resource_type_from_model(t) for t in types)
    if not built:
        raise ConfigurationError("An Engine needs at least one resource type")
    names = [rt.name for rt in built]
    endpoints = [rt.endpoint.lower() for rt in built]
    if len(set(names)) != len(names) or len(set(endpoints)) != len(endpoints):
        raise ConfigurationError("Resource type names and endpoints must be unique")
    for rt in built:
        if rt.endpoint.lower() in _RESERVED:
            raise ConfigurationError(f"Endpoint {rt.endpoint} is reserved by RFC 7644")
    return built


class Engine:
    """A SCIM 2.0 service provider over a :class:`~scim2_core.backends.Backend`.

    ``resource_types`` takes scim2-models Resource classes (``User[EnterpriseUser]``) or
    :class:`~scim2_core.ResourceType` objects; by default User with the enterprise
    extension, and Group. ``authenticate(request) -> principal | None`` guards every
    endpoint (None → 401); the principal's ``tenant`` attribute, if any, scopes every
    backend call. Misconfiguration raises :class:`~scim2_core.ConfigurationError` here.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        resource_types: Sequence[Any] | None = None,
        authenticate: Authenticate | None = None,
        options: Options | None = None,
    ) -> None:
        if not isinstance(backend, Backend):
            raise ConfigurationError(f"{backend!r} does not implement the Backend protocol")
        self.backend = backend
        self.options = options or Options()
        self.authenticate = authenticate
        self.resource_types = _build_types(resource_types)
        self.never_blocks: bool = bool(getattr(backend, "never_blocks", False))
        #: Whether the backend's reads never block (its optional ``reads_never_block``; see
        #: :mod:`scim2_core.backends`): :class:`~scim2_core.asgi.ASGIApp` then answers
        #: reads on its event loop, sparing them the hop to a worker thread.
        self.reads_never_block: bool = self.never_blocks or bool(
            getattr(backend, "reads_never_block", False)
        )
        #: The backend's optional ``request_scope`` (see :mod:`scim2_core.backends`).
        self._request_scope: Callable[[], AbstractContextManager[Any]] | None = getattr(
            backend, "request_scope", None
        )
        token = getattr(backend, "change_token", None)
        #: Answers to repeated reads while the store has not changed (see ``_answers.py``).
        self._answers: AnswerCache | None = (
            AnswerCache(token, self.options.read_cache_bytes)
            if callable(token) and self.options.read_cache_bytes
            else None
        )
        self._cursors = CursorCodec(self.options.cursor_secret, self.options.cursor_ttl_seconds)
        schemas = tuple(all_schemas(self.resource_types))
        self._state = EngineState(
            backend=backend,
            options=self.options,
            types=self.resource_types,
            by_endpoint={rt.endpoint[1:].lower(): rt for rt in self.resource_types},
            by_name={rt.name: rt for rt in self.resource_types},
            schemas=schemas,
            schemas_by_lower={s.id.lower(): s for s in schemas},
            cursors=self._cursors,
            renderer=Renderer(backend, self.resource_types),
            events=Events(backend),
            audit=Audit(backend),
        )
        backend.bind(self.resource_types)
        self._api_state = api_state(self._state)
        self._default_directory = Directory(self._api_state)
        self._gate: RateGate | None = None
        self._observers: tuple[RequestObserver, ...] = ()
        self._observed = self._observed_by(())

    def observe(self, observer: RequestObserver) -> None:
        """Tell ``observer`` about every request (see :class:`RequestObserver`); what it
        raises is logged, never answered. With no observer and no audit log, a request
        costs nothing more."""
        self._observers = (*self._observers, observer)
        self._observed = self._observed_by(self._observers)

    def _observed_by(
        self, observers: tuple[RequestObserver, ...]
    ) -> Callable[[Request, list[Any]], Response]:
        """The request path run between ``observers`` and the audit log."""
        state = self._state
        return observed_handler(
            self._handle, observers, state.by_endpoint, state.audit, _audit_entry
        )

    def limit_rate(self, gate: RateGate | None) -> None:
        """Run ``gate(principal, tenant)`` after authentication and before anything else:
        it raises :class:`~scim2_core.ScimError` (429) to refuse the request, so nothing
        is read or written (``scim2_core.observe.RateLimit`` is one). None: no limit."""
        self._gate = gate

    @property
    def events(self) -> Events:
        """The engine's change events: consumers, delivery, counts (docs/events.md)."""
        return self._state.events

    @property
    def audit(self) -> Audit:
        """The engine's audit log: ``engine.audit.enable()``, then
        ``engine.audit.query(...)`` (docs/events.md)."""
        return self._state.audit

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every committed change (created, replaced, patched,
        deleted, touched), after the commit, on the event delivery thread: a thin layer
        over ``engine.events.add_handler`` that also starts delivery. A listener that
        raises is retried with back-off, then its event is parked as failed
        (``engine.events.failed()``); the request never waits for it."""
        self._state.events.subscribe(listener)

    # -- the Python API (``_api.py``) --------------------------------------------------------

    def directory(
        self, tenant: str | None = None, *, base_url: str = "", principal: Any = None
    ) -> Directory:
        """The resources of ``tenant`` for the application's own code (see
        :class:`~scim2_core.Directory`): ``engine.directory("acme").users.create({...})``.

        The same rules as HTTP requests, without authentication: the application's own
        code is trusted. ``base_url`` prefixes ``meta.location``; ``principal`` is what
        change listeners see as the author of each change.
        """
        if tenant is None and not base_url and principal is None:
            return self._default_directory
        return Directory(self._api_state, tenant=tenant, base_url=base_url, principal=principal)

    @property
    def users(self) -> ResourceCollection:
        """The Users of the default tenant: ``engine.users.create({"userName": "bjensen"})``
        (shorthand for ``engine.directory().users``)."""
        return self._default_directory.users

    @property
    def groups(self) -> ResourceCollection:
        """The Groups of the default tenant (shorthand for ``engine.directory().groups``)."""
        return self._default_directory.groups

    # -- entry point ---------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Serve one request. Never raises for anything a client sends.

        RFC 7644 §3.12: errors are returned as a SCIM Error message with the HTTP status.
        """
        seen: list[Any] = [None, None]  # the decoded request, the error's scimType
        if self._observers or self._state.audit.active:
            return self._observed(request, seen)
        return self._handle(request, seen)

    def _handle(self, request: Request, seen: list[Any]) -> Response:
        """The request path, one frame for everything up to the route (or the kept
        answer, see ``_answers.py``): a repeated ``GET`` runs nothing else."""
        rid: str | None = None
        try:
            ctx = decode(request)
            seen[0] = ctx
            rid = ctx.request_id = _request_id(ctx.headers.get("x-request-id"))
            authenticate(ctx, request, self.authenticate, self.options)
            if self._gate is not None:
                self._gate(ctx.principal, ctx.tenant)
            method = ctx.method
            if method == "GET":
                answers = self._answers
                if answers is not None and self._request_scope is None:
                    response = answers.answer(ctx, self._route)
                else:
                    response = self._routed(ctx)
            else:
                check_method(ctx)
                if method == "HEAD":
                    # RFC 9110 §9.3.2: HEAD is GET without the content. The response keeps
                    # the body so the transport can send GET's Content-Length; the adapters
                    # (and any HTTP server) drop the content itself.
                    ctx.method = "GET"
                response = self._routed(ctx)
        except ScimError as exc:
            seen[1] = exc.scim_type
            response = error_response(exc)
        except Exception:
            logger.exception("Unexpected error while serving a SCIM request")
            response = error_response(InternalError())
        # Every answer names its request, the client's id or a new one (docs/observability.md).
        response["headers"]["X-Request-Id"] = rid or _request_id(None)
        return response

    # -- routing ---------------------------------------------------------------------------

    def _routed(self, ctx: Ctx) -> Response:
        """:meth:`_route` in the backend's request scope, or for a ``GET`` the answer kept
        while nothing changed."""
        scope = self._request_scope
        if scope is None:
            return self._kept_or_routed(ctx)
        with scope():  # the backend's calls of this request share what it holds
            return self._kept_or_routed(ctx)

    def _kept_or_routed(self, ctx: Ctx) -> Response:
        answers = self._answers
        if answers is None or ctx.method != "GET":
            return self._route(ctx)
        return answers.answer(ctx, self._route)

    def _route(self, ctx: Ctx) -> Response:
        state = self._state
        seg = ctx.segments
        method = ctx.method
        if not seg:
            # RFC 7644 §3.2: the server root "/" accepts GET (Section 3.4.2), a query
            # across every resource type.
            if method == "GET":
                return root_search(state, ctx, query_params(ctx))
            raise MethodNotAllowedError(["GET"])
        head = seg[0].lower()
        rt = state.by_endpoint.get(head)
        if rt is not None:
            return self._route_type(ctx, rt)
        if head == ".search" and len(seg) == 1:
            if method == "POST":
                return root_search(state, ctx, search_params(state, ctx))
            raise MethodNotAllowedError(["POST"])
        discovery = serve_discovery(state, ctx)
        if discovery is not None:
            return discovery
        if head == "bulk" and len(seg) == 1:
            if method != "POST":
                raise MethodNotAllowedError(["POST"])
            return self._bulk(ctx)
        if head == "me":
            return self._me(ctx)
        raise NotFoundError(f"No SCIM endpoint at /{'/'.join(seg)}.")

    def _route_type(self, ctx: Ctx, rt: ResourceType) -> Response:
        """``/{endpoint}``, ``/{endpoint}/.search`` and ``/{endpoint}/{id}``."""
        state = self._state
        seg = ctx.segments
        method = ctx.method
        if len(seg) == 1:
            if method == "GET":
                return list_resources(state, ctx, rt, query_params(ctx))
            if method == "POST":
                return create_resource(state, ctx, rt)
            raise MethodNotAllowedError(["GET", "POST"])
        if len(seg) == 2:
            if seg[1] == ".search":
                if method == "POST":
                    return list_resources(state, ctx, rt, search_params(state, ctx))
                raise MethodNotAllowedError(["POST"])
            return self._route_resource(ctx, rt, seg[1])
        raise NotFoundError(f"No SCIM endpoint at /{'/'.join(seg)}.")

    def _me(self, ctx: Ctx) -> Response:
        """RFC 7644 §3.11 ``/Me``: the resource of the authenticated subject.

        Served when the principal has a ``resource_id`` attribute naming a User; "If the
        service provider does not support the "/Me" URI [...] it SHOULD respond with
        HTTP status code 501".
        """
        rid = getattr(ctx.principal, "resource_id", None)
        users = self._state.by_name.get("User")
        if not isinstance(rid, str) or users is None:
            raise NotImplementedScimError("/Me is not available for this principal.")
        if len(ctx.segments) != 1:
            raise NotFoundError("No SCIM endpoint there.")
        return self._route_resource(ctx, users, rid)

    def _route_resource(self, ctx: Ctx, rt: ResourceType, rid: str) -> Response:
        """``/{endpoint}/{id}`` and ``/Me``: one resource."""
        handler = _BY_ID.get(ctx.method)
        if handler is None:
            raise MethodNotAllowedError(list(_BY_ID))
        return handler(self._state, ctx, rt, rid)

    # -- bulk ------------------------------------------------------------------------------

    def _bulk(self, ctx: Ctx) -> Response:
        """RFC 7644 §3.7 Bulk, each operation dispatched through the same routes."""
        options = self.options
        raw = ctx.body
        size = len(raw) if isinstance(raw, (bytes, str)) else 0
        if size > options.bulk_max_payload_bytes:
            raise PayloadTooLargeError(
                # RFC 7644 §3.7.4, the example's wording.
                "The size of the bulk operation exceeds the maxPayloadSize "
                f"({options.bulk_max_payload_bytes})."
            )
        body = read_body(ctx, options)
        schemas = body.get("schemas")
        if not has_urn(schemas, BULK_REQUEST_URN):
            raise InvalidSyntaxError(f"A bulk request must have schemas [{BULK_REQUEST_URN!r}].")
        if isinstance(schemas, list) and BULK_REQUEST_URN not in schemas:
            # Schema URNs compare case-insensitively; hand run_bulk the canonical one.
            body = {**body, "schemas": [BULK_REQUEST_URN]}

        def dispatch(sub: Request) -> Response:
            sub_ctx = decode(sub)
            sub_ctx.principal = ctx.principal
            sub_ctx.tenant = ctx.tenant
            sub_ctx.base_url = ctx.base_url
            sub_ctx.request_id = ctx.request_id
            if sub_ctx.segments and sub_ctx.segments[0].lower() == "bulk":
                return error_response(InvalidValueError("Bulk operations cannot nest."))
            try:
                return self._route(sub_ctx)
            except ScimError as exc:
                return error_response(exc)
            except Exception:
                # RFC 7644 §3.7.3: each operation's outcome is reported in its own entry
                # of the BulkResponse; operations before this one are committed, so the
                # Bulk answers 200 with what was done, and this operation fails with 500.
                logger.exception("Unexpected error while serving a SCIM bulk operation")
                return error_response(InternalError())

        status, result = run_bulk(
            body,
            dispatch,
            max_operations=options.bulk_max_operations,
            max_payload_bytes=options.bulk_max_payload_bytes,
            payload_size=size,
            base_url=ctx.base_url,
        )
        return json_response(status, result)
