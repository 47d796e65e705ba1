"""The protocol engine: ``Engine.handle(request) -> response`` over plain dicts.

This module owns routing, the RFC 7644 operations, conditional requests, paging and
rendering. Filters, PATCH and Bulk live in their own modules; storage behind the
:class:`~scim2_core.backends.Backend` protocol. ``handle`` is the only entry point and never
raises: client mistakes are :class:`~scim2_core.ScimError` subclasses turned into SCIM Error
responses in :meth:`Engine._error_response`; anything else is a bug, logged and answered
with a 500 SCIM Error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ._cursor import CursorCodec, CursorState
from ._discovery import all_schemas, list_response, service_provider_config
from ._errors import (
    ConfigurationError,
    ForbiddenError,
    InternalError,
    InvalidCountError,
    InvalidFilterError,
    InvalidSyntaxError,
    InvalidValueError,
    MethodNotAllowedError,
    MutabilityError,
    NotFoundError,
    NotImplementedScimError,
    PayloadTooLargeError,
    PreconditionFailedError,
    ScimError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from ._json import copy_json
from ._meta import first_version, next_version, now, parse_etags
from ._options import Options
from ._projection import Projection, split_attribute_list
from ._schema import (
    Attribute,
    ResourceType,
    Schema,
    normalize_attributes,
    resource_type_from_model,
)
from ._types import Request, Response
from .backends._base import Backend, Page, SearchQuery, SortSpec
from .filter import And, Filter, Not, Or

__all__ = ["ChangeEvent", "Engine"]

logger = logging.getLogger("scim2_core")

SCIM_JSON: Final = "application/scim+json"
LIST_RESPONSE: Final = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST: Final = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST: Final = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"

_JSON_TYPES: Final = ("application/scim+json", "application/json")
_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")

Authenticate = Callable[[Request], Any]
Listener = Callable[["ChangeEvent"], None]


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """A committed change: the one place provisioning hooks and audit logs hang off.

    ``before`` is None for ``created``, ``after`` None for ``deleted``. Both are private
    copies of the stored resource (password hashes included: never log them as they are).
    """

    kind: Literal["created", "replaced", "patched", "deleted"]
    resource_type: str
    id: str
    tenant: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    principal: Any = None


@dataclass(slots=True)
class _Ctx:
    """One request, decoded once."""

    method: str
    segments: list[str]
    query: Mapping[str, str]
    headers: dict[str, str]
    body: bytes | str | dict[str, Any] | None
    base_url: str
    principal: Any = None
    tenant: str | None = None
    parsed: dict[str, Any] | None = field(default=None)


def _header_map(headers: Any) -> dict[str, str]:
    if not headers:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for key, value in items:
        out[str(key).lower()] = value if isinstance(value, str) else str(value)
    return out


def _encode(obj: Any) -> bytes:
    # ensure_ascii keeps the output valid UTF-8 whatever the stored strings hold.
    return json.dumps(obj, separators=(",", ":")).encode("ascii")


def _password_hash(clear: str) -> str:
    """Hash a cleartext password for storage (RFC 7643 §4.1.1: "the service provider
    SHOULD NOT return the password [...] and SHOULD store it hashed")."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(clear.encode("utf-8", "surrogatepass"), salt=salt, n=2**14, r=8, p=1)
    return f"$scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def verify_password(stored: str, clear: str) -> bool:
    """True if ``clear`` is the password whose hash is ``stored`` (for host applications)."""
    try:
        _, scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            clear.encode("utf-8", "surrogatepass"),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


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
        self.resource_types = self._build_types(resource_types)
        self._by_endpoint = {rt.endpoint[1:].lower(): rt for rt in self.resource_types}
        self._by_name = {rt.name: rt for rt in self.resource_types}
        self._schemas = all_schemas(self.resource_types)
        self._schemas_by_lower = {s.id.lower(): s for s in self._schemas}
        self._cursors = CursorCodec(self.options.cursor_secret, self.options.cursor_ttl_seconds)
        self._projections: dict[tuple[str, str | None, str | None], Projection] = {}
        self._listeners: list[Listener] = []
        self._ref_fills = {rt.name: self._single_refs(rt) for rt in self.resource_types}
        self.never_blocks: bool = bool(getattr(backend, "never_blocks", False))
        backend.bind(self.resource_types)

    @staticmethod
    def _build_types(types: Sequence[Any] | None) -> tuple[ResourceType, ...]:
        if types is None:
            from scim2_models import EnterpriseUser, Group, User

            types = (User[EnterpriseUser], Group)
        built = tuple(
            t if isinstance(t, ResourceType) else resource_type_from_model(t) for t in types
        )
        if not built:
            raise ConfigurationError("An Engine needs at least one resource type")
        names = [rt.name for rt in built]
        endpoints = [rt.endpoint.lower() for rt in built]
        if len(set(names)) != len(names) or len(set(endpoints)) != len(endpoints):
            raise ConfigurationError("Resource type names and endpoints must be unique")
        reserved = {
            "/serviceproviderconfig",
            "/resourcetypes",
            "/schemas",
            "/bulk",
            "/me",
            "/.search",
        }
        for rt in built:
            if rt.endpoint.lower() in reserved:
                raise ConfigurationError(f"Endpoint {rt.endpoint} is reserved by RFC 7644")
        return built

    def _single_refs(self, rt: ResourceType) -> tuple[tuple[str | None, str, str, str], ...]:
        """Singular references whose ``$ref`` the server derives from ``value``.

        RFC 7643 §4.3 enterprise ``manager``: "$ref: The URI of the SCIM resource
        representing the User's manager. REQUIRED." IdPs send only ``value``; a singular
        complex attribute with ``value`` and a ``$ref`` naming exactly one configured
        resource type gets ``$ref`` filled on output when that resource exists (a dangling
        id stays as the client sent it): ``(urn, attribute, type name, endpoint)``.
        """
        endpoints = {t.name: t.endpoint for t in self.resource_types}
        out: list[tuple[str | None, str, str, str]] = []
        for urn, attr in rt.iter_attributes():
            ref = attr.sub("$ref")
            if attr.multi_valued or ref is None or attr.sub("value") is None:
                continue
            targets = [t for t in ref.reference_types if t in endpoints]
            if len(targets) == 1 and attr.mutability != "readOnly":
                out.append((urn, attr.name, targets[0], endpoints[targets[0]]))
        return tuple(out)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event)`` after every committed change (created, replaced,
        patched, deleted). A listener's exception is logged, never sent to the client."""
        self._listeners.append(listener)

    # -- entry point ---------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Serve one request. Never raises for anything a client sends.

        RFC 7644 §3.12: errors are returned as a SCIM Error message with the HTTP status.
        """
        try:
            ctx = self._decode(request)
            self._authenticate(ctx, request)
            if ctx.method == "HEAD":
                # RFC 9110 §9.3.2: HEAD is GET without the content. The response keeps the
                # body so the transport can send GET's Content-Length; the adapters (and any
                # HTTP server) drop the content itself.
                ctx.method = "GET"
            return self._route(ctx)
        except ScimError as exc:
            return self._error_response(exc)
        except Exception:
            logger.exception("Unexpected error while serving a SCIM request")
            return self._error_response(InternalError())

    def _error_response(self, exc: ScimError) -> Response:
        headers = {"Content-Type": SCIM_JSON, **exc.headers}
        return {"status": exc.status, "headers": headers, "body": _encode(exc.to_dict())}

    # -- request decoding ------------------------------------------------------------------

    def _decode(self, request: Any) -> _Ctx:
        if not isinstance(request, Mapping):
            raise InvalidSyntaxError("The request must be a mapping.")
        method = request.get("method")
        path = request.get("path")
        if not isinstance(method, str) or not isinstance(path, str):
            raise InvalidSyntaxError("The request needs a method and a path.")
        query_in = request.get("query") or {}
        if not isinstance(query_in, Mapping):
            raise InvalidSyntaxError("The query must be a mapping.")
        query = {str(k): v if isinstance(v, str) else str(v) for k, v in query_in.items()}
        base_url = request.get("base_url") or ""
        if not isinstance(base_url, str):
            base_url = ""
        path = path.split("?", 1)[0]
        segments = [s for s in path.split("/") if s]
        return _Ctx(
            method=method.upper(),
            segments=segments,
            query=query,
            headers=_header_map(request.get("headers")),
            body=request.get("body"),
            base_url=base_url.rstrip("/"),
        )

    def _authenticate(self, ctx: _Ctx, request: Request) -> None:
        if self.authenticate is None:
            return
        discovery = bool(ctx.segments) and ctx.segments[0].lower() in (
            "serviceproviderconfig",
            "resourcetypes",
            "schemas",
        )
        principal = self.authenticate(request)
        if principal is None:
            if discovery and not self.options.discovery_requires_auth:
                return
            raise UnauthorizedError()
        ctx.principal = principal
        tenant = getattr(principal, "tenant", None)
        ctx.tenant = tenant if isinstance(tenant, str) else None

    def _read_body(self, ctx: _Ctx) -> dict[str, Any]:
        """The JSON object of a POST/PUT/PATCH body (RFC 7644 §3.1, §3.12 invalidSyntax)."""
        if ctx.parsed is not None:
            return ctx.parsed
        ctype = ctx.headers.get("content-type")
        if ctype is not None and ctype.strip():
            media = ctype.split(";", 1)[0].strip().lower()
            # RFC 7644 §3.1: clients use application/scim+json; "Service providers SHOULD
            # accept "application/json"".
            if media not in _JSON_TYPES:
                raise UnsupportedMediaTypeError(
                    f"Content-Type {media!r} is not supported; use application/scim+json."
                )
        body = ctx.body
        if isinstance(body, dict):
            ctx.parsed = body
            return body
        if body is None or body == b"" or body == "":
            raise InvalidSyntaxError("The request body is empty.")
        if isinstance(body, str):
            body = body.encode("utf-8", "surrogatepass")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise InvalidSyntaxError("The request body must be JSON.")
        raw = bytes(body)
        if len(raw) > self.options.max_body_bytes:
            raise PayloadTooLargeError(
                f"The request body exceeds {self.options.max_body_bytes} bytes."
            )
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise InvalidSyntaxError(f"The request body is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise InvalidSyntaxError("The request body must be a JSON object.")
        if _SURROGATE_ESCAPE.search(raw):
            try:
                json.dumps(parsed, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidSyntaxError("The request body holds an unpaired surrogate.") from None
        ctx.parsed = parsed
        return parsed

    # -- routing ---------------------------------------------------------------------------

    def _route(self, ctx: _Ctx) -> Response:
        seg = ctx.segments
        method = ctx.method
        if not seg:
            # RFC 7644 §3.2: the server root "/" accepts GET (Section 3.4.2), a query
            # across every resource type.
            if method == "GET":
                return self._root_search(ctx, self._query_params(ctx))
            raise MethodNotAllowedError(["GET"])
        head = seg[0].lower()
        rt = self._by_endpoint.get(head)
        if rt is not None:
            if len(seg) == 1:
                if method == "GET":
                    return self._list(ctx, rt, self._query_params(ctx))
                if method == "POST":
                    return self._create(ctx, rt)
                raise MethodNotAllowedError(["GET", "POST"])
            if len(seg) == 2:
                if seg[1] == ".search":
                    if method == "POST":
                        return self._list(ctx, rt, self._search_params(ctx))
                    raise MethodNotAllowedError(["POST"])
                rid = seg[1]
                if method == "GET":
                    return self._get(ctx, rt, rid)
                if method == "PUT":
                    return self._replace(ctx, rt, rid)
                if method == "PATCH":
                    return self._patch(ctx, rt, rid)
                if method == "DELETE":
                    return self._delete(ctx, rt, rid)
                raise MethodNotAllowedError(["GET", "PUT", "PATCH", "DELETE"])
            raise NotFoundError(f"No SCIM endpoint at /{'/'.join(seg)}.")
        if head == ".search" and len(seg) == 1:
            if method == "POST":
                return self._root_search(ctx, self._search_params(ctx))
            raise MethodNotAllowedError(["POST"])
        if head == "serviceproviderconfig" and len(seg) == 1:
            self._discovery_get(ctx)
            return self._json(200, self._spc(ctx))
        if head == "resourcetypes" and len(seg) <= 2:
            self._discovery_get(ctx)
            return self._resource_types(ctx, seg[1] if len(seg) == 2 else None)
        if head == "schemas" and len(seg) <= 2:
            self._discovery_get(ctx)
            return self._schema_docs(ctx, seg[1] if len(seg) == 2 else None)
        if head == "bulk" and len(seg) == 1:
            if method != "POST":
                raise MethodNotAllowedError(["POST"])
            return self._bulk(ctx)
        if head == "me":
            return self._me(ctx)
        raise NotFoundError(f"No SCIM endpoint at /{'/'.join(seg)}.")

    @staticmethod
    def _discovery_get(ctx: _Ctx) -> None:
        """Discovery endpoints answer GET only, and refuse filters.

        RFC 7644 §4: "Query parameters described in Section 3.4.2, such as filtering,
        sorting, and pagination, SHALL be ignored. If a "filter" is provided, the service
        provider SHOULD respond with HTTP status code 403 (Forbidden) to ensure that
        clients cannot incorrectly assume that any matching conditions specified in a
        filter are true."
        """
        if ctx.method != "GET":
            raise MethodNotAllowedError(["GET"])
        if "filter" in ctx.query:
            raise ForbiddenError("Discovery endpoints cannot be filtered (RFC 7644 §4).")

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
        out = {"Content-Type": SCIM_JSON}
        if headers:
            out.update(headers)
        return {"status": status, "headers": out, "body": _encode(obj)}

    # -- discovery -------------------------------------------------------------------------

    def _spc(self, ctx: _Ctx) -> dict[str, Any]:
        schemes = [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Authentication with a bearer token (RFC 6750).",
                "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
                "primary": True,
            }
        ]
        return service_provider_config(
            self.options, ctx.base_url, bulk=_bulk_available(), auth_schemes=schemes
        )

    def _resource_types(self, ctx: _Ctx, name: str | None) -> Response:
        if name is None:
            return self._json(
                200, list_response([rt.to_dict(ctx.base_url) for rt in self.resource_types])
            )
        for rt in self.resource_types:
            if rt.name.lower() == name.lower():
                return self._json(200, rt.to_dict(ctx.base_url))
        raise NotFoundError(f"No resource type {name!r}.")

    def _schema_docs(self, ctx: _Ctx, urn: str | None) -> Response:
        if urn is None:
            return self._json(200, list_response([s.to_dict(ctx.base_url) for s in self._schemas]))
        schema: Schema | None = self._schemas_by_lower.get(urn.lower())
        if schema is None:
            raise NotFoundError(f"No schema {urn!r}.")
        return self._json(200, schema.to_dict(ctx.base_url))

    def _me(self, ctx: _Ctx) -> Response:
        """RFC 7644 §3.11 ``/Me``: the resource of the authenticated subject.

        Served when the principal has a ``resource_id`` attribute naming a User; "If the
        service provider does not support the "/Me" URI [...] it SHOULD respond with
        HTTP status code 501".
        """
        rid = getattr(ctx.principal, "resource_id", None)
        users = self._by_name.get("User")
        if not isinstance(rid, str) or users is None:
            raise NotImplementedScimError("/Me is not available for this principal.")
        if len(ctx.segments) != 1:
            raise NotFoundError("No SCIM endpoint there.")
        handlers = {
            "GET": self._get,
            "PUT": self._replace,
            "PATCH": self._patch,
            "DELETE": self._delete,
        }
        handler = handlers.get(ctx.method)
        if handler is None:
            raise MethodNotAllowedError(list(handlers))
        return handler(ctx, users, rid)

    # -- rendering -------------------------------------------------------------------------

    def _projection(
        self, rt: ResourceType, attrs: list[str] | None, excl: list[str] | None
    ) -> Projection:
        key = (rt.name, ",".join(attrs) if attrs else None, ",".join(excl) if excl else None)
        proj = self._projections.get(key)
        if proj is None:
            proj = Projection(rt, attrs, excl)
            if len(self._projections) > 512:
                self._projections.clear()
            self._projections[key] = proj
        return proj

    def _request_projection(self, ctx: _Ctx, rt: ResourceType) -> Projection:
        attrs = split_attribute_list(ctx.query.get("attributes"))
        excl = split_attribute_list(ctx.query.get("excludedAttributes"))
        return self._projection(rt, attrs, excl)

    def _render_many(
        self,
        ctx: _Ctx,
        rt: ResourceType,
        resources: list[dict[str, Any]],
        projection: Projection,
    ) -> list[dict[str, Any]]:
        if projection.wants_groups and rt.schema.attribute("groups") is not None:
            self._attach_groups(ctx, resources)
        self._fill_refs(ctx, rt, resources)
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

    def _fill_refs(self, ctx: _Ctx, rt: ResourceType, resources: list[dict[str, Any]]) -> None:
        """Derive ``$ref`` of singular references (``manager``) that name an existing
        resource of the referenced type (see :meth:`_single_refs`), in place."""
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
        found = self.backend.existing(ctx.tenant, sorted({p[1] for p in pending}))
        for value, target, type_name, endpoint in pending:
            if found.get(target) == type_name:
                value["$ref"] = f"{ctx.base_url}{endpoint}/{target}"

    def _resource_response(
        self,
        ctx: _Ctx,
        rt: ResourceType,
        stored: dict[str, Any],
        status: int,
        *,
        location: bool = False,
    ) -> Response:
        version = stored.get("meta", {}).get("version")
        body = self._render_many(ctx, rt, [stored], self._request_projection(ctx, rt))[0]
        headers: dict[str, str] = {}
        if isinstance(version, str):
            headers["ETag"] = version
        if location:
            headers["Location"] = f"{ctx.base_url}{rt.endpoint}/{stored['id']}"
        return self._json(status, body, headers)

    # -- read ------------------------------------------------------------------------------

    def _get(self, ctx: _Ctx, rt: ResourceType, rid: str) -> Response:
        stored = self.backend.get(ctx.tenant, rt, rid)
        if stored is None:
            raise NotFoundError(f"{rt.name} {rid!r} not found.")
        # RFC 7644 §3.14: "If-None-Match [...] the service provider [...] SHALL return an
        # HTTP 304 (Not Modified) [...] if the resource has not changed".
        inm = ctx.headers.get("if-none-match")
        version = stored.get("meta", {}).get("version")
        # RFC 7232 §3.1 (which RFC 7644 §3.14 builds on): when no If-Match tag matches,
        # "the origin server MUST NOT perform the requested method" and answers 412.
        if_match = self._if_match(ctx)
        if if_match is not None and version not in if_match:
            raise PreconditionFailedError(
                "The resource has changed on the server (If-Match does not match meta.version)."
            )
        if inm is not None and version is not None:
            tags = parse_etags(inm)
            if tags is None or version in tags:
                return {"status": 304, "headers": {"ETag": version}, "body": b""}
        return self._resource_response(ctx, rt, stored, 200)

    # -- query -----------------------------------------------------------------------------

    def _query_params(self, ctx: _Ctx) -> dict[str, Any]:
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

    def _search_params(self, ctx: _Ctx) -> dict[str, Any]:
        """RFC 7644 §3.4.3: a SearchRequest body carries the query parameters."""
        # RFC 7643 §2.1: "Attribute names are case insensitive", message attributes
        # included; schema URNs are compared case-insensitively as for resources.
        body = {k.lower(): v for k, v in self._read_body(ctx).items() if isinstance(k, str)}
        if not _has_urn(body.get("schemas"), SEARCH_REQUEST):
            raise InvalidSyntaxError(
                f"A search request body must have schemas [{SEARCH_REQUEST!r}]."
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

    @staticmethod
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

    def _parse_filter(self, text: str) -> Filter:
        from .filter import parse_filter

        return parse_filter(
            text,
            max_length=self.options.max_filter_length,
            max_depth=self.options.max_filter_depth,
        )

    def _sort_spec(
        self, rt: ResourceType, sort_by: str | None, order: str | None
    ) -> SortSpec | None:
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

    def _window(self, params: Mapping[str, Any], digest: str) -> tuple[int, int, bool]:
        """``(offset, count, cursor_mode)`` from startIndex/count/cursor.

        RFC 7644 §3.4.2.4: "A value less than 1 SHALL be interpreted as 1" (startIndex);
        "A negative value SHALL be interpreted as "0"" (count); count larger than the
        maximum is capped ("the service provider [...] SHALL return up to the maximum").
        """
        maximum = self.options.max_results
        count = self._int_param("count", params.get("count"))
        cursor = params.get("cursor")
        if cursor is not None:
            if params.get("startIndex") is not None:
                raise InvalidValueError("startIndex and cursor cannot be used together.")
            if cursor == "":
                size = maximum if count is None else max(0, min(count, maximum))
                return 0, size, True
            state = self._cursors.open(cursor, digest)
            if count is not None and max(0, min(count, maximum)) != state.count:
                raise InvalidCountError("count must stay the same across cursor pages.")
            return state.offset, state.count, True
        start = self._int_param("startIndex", params.get("startIndex"))
        offset = max(1, start if start is not None else 1) - 1
        size = maximum if count is None else max(0, min(count, maximum))
        return offset, size, False

    def _list(self, ctx: _Ctx, rt: ResourceType, params: Mapping[str, Any]) -> Response:
        from .filter import bind

        text = params.get("filter")
        bound = None
        if text is not None and text.strip():
            bound = bind(self._parse_filter(text), rt)
        sort = self._sort_spec(rt, params.get("sortBy"), params.get("sortOrder"))
        digest = self._cursors.query_digest(
            ctx.tenant or "",
            rt.name,
            str(bound) if bound else None,
            str(sort.path) if sort else None,
            "d" if sort and sort.descending else "a",
        )
        offset, count, cursor_mode = self._window(params, digest)
        page = self._search_type(
            ctx, rt, SearchQuery(filter=bound, sort=sort, offset=offset, count=count)
        )
        projection = self._projection(
            rt, params.get("attributes"), params.get("excludedAttributes")
        )
        items = self._render_many(ctx, rt, page.resources, projection)
        return self._json(200, self._list_body(page, items, offset, count, cursor_mode, digest))

    def _search_type(self, ctx: _Ctx, rt: ResourceType, query: SearchQuery) -> Page:
        """``backend.search``, except when the query needs the derived ``groups``.

        ``User.groups`` is not stored: it is computed from group memberships on every
        read (RFC 7643 §4.1.2 "groups [...] readOnly"). A filter or sortBy naming it is
        still a filter on an attribute of the resource (RFC 7644 §3.4.2.2), so such a query
        is answered here: the conjuncts that do not name ``groups`` are pushed down, the
        candidates get their groups, and the rest is evaluated in memory. Slower than a
        pushed-down query, never wrong.
        """
        derived = self._derived_groups(rt)
        uses_groups = derived and (
            (query.filter is not None and _mentions(query.filter, "groups"))
            or (
                query.sort is not None
                and query.sort.path.urn is None
                and query.sort.path.attribute.name == "groups"
            )
        )
        if not uses_groups:
            return self.backend.search(ctx.tenant, rt, query)
        from .filter import compile_filter, sort_key

        pushed: Filter | None = None
        rest: Filter | None = None
        if query.filter is not None:
            for part in _conjuncts(query.filter):
                if _mentions(part, "groups"):
                    rest = part if rest is None else And(rest, part)
                else:
                    pushed = part if pushed is None else And(pushed, part)
        rows: list[dict[str, Any]] = []
        while True:
            chunk = self.backend.search(
                ctx.tenant, rt, SearchQuery(filter=pushed, offset=len(rows), count=1000)
            )
            rows.extend(chunk.resources)
            if not chunk.resources or len(rows) >= chunk.total:
                break
        self._attach_groups(ctx, rows)
        if rest is not None:
            predicate = compile_filter(rest, rt)
            rows = [r for r in rows if predicate(r)]
        if query.sort is not None:
            descending = query.sort.descending
            rows.sort(key=sort_key(query.sort.path, descending=descending), reverse=descending)
        window = rows[query.offset : query.offset + max(query.count, 0)]
        return Page(len(rows), window)

    def _derived_groups(self, rt: ResourceType) -> bool:
        attr = rt.schema.attribute("groups")
        return attr is not None and attr.mutability == "readOnly"

    def _attach_groups(self, ctx: _Ctx, resources: list[dict[str, Any]]) -> None:
        """Set the derived ``groups`` of each resource (RFC 7643 §4.1.2), in place.

        "value: The identifier of the User's group", "$ref: The URI of the corresponding
        'Group' resource", "display: A human-readable name", "type: [...] 'direct'".
        """
        if not resources:
            return
        found = self.backend.groups_of(ctx.tenant, [r["id"] for r in resources])
        if not found:
            return
        group_rt = self._by_name.get("Group")
        prefix = f"{ctx.base_url}{group_rt.endpoint if group_rt else '/Groups'}/"
        for res in resources:
            mine = found.get(res["id"])
            if mine:
                res["groups"] = [{**g, "$ref": prefix + g["value"], "type": "direct"} for g in mine]

    def _list_body(
        self,
        page: Page,
        items: list[dict[str, Any]],
        offset: int,
        count: int,
        cursor_mode: bool,
        digest: str,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schemas": [LIST_RESPONSE],
            "totalResults": page.total,
            "itemsPerPage": len(items),
        }
        if cursor_mode:
            # RFC 9865 §2.2: "nextCursor: [...] MUST be included if there are more
            # results"; "previousCursor [...] MAY be included".
            if count > 0 and offset + len(items) < page.total:
                body["nextCursor"] = self._cursors.seal(CursorState(offset + count, count), digest)
            if count > 0 and offset > 0:
                prev = max(0, offset - count)
                body["previousCursor"] = self._cursors.seal(CursorState(prev, count), digest)
        else:
            body["startIndex"] = offset + 1
        body["Resources"] = items
        return body

    def _root_search(self, ctx: _Ctx, params: Mapping[str, Any]) -> Response:
        """RFC 7644 §3.4.3 POST /.search, and GET on the root, across every resource type.

        RFC 7644 §3.4.2.1: "A query against a server root indicates that all resources
        within the server SHALL be included, subject to filtering"; when searching several
        resource types, a filter naming an attribute one type lacks matches nothing of
        that type (it is not an error unless no type knows it). With ``sortBy`` the
        resource types are merged into one order (§3.4.2.3); a type without the attribute
        has no value for it and sorts as such.
        """
        from .filter import bind

        text = params.get("filter")
        parsed = self._parse_filter(text) if text is not None and text.strip() else None
        targets: list[tuple[ResourceType, Filter | None]] = []
        first_error: ScimError | None = None
        for rt in self.resource_types:
            try:
                targets.append((rt, bind(parsed, rt) if parsed is not None else None))
            except InvalidFilterError as exc:
                first_error = first_error or exc
        if not targets:
            assert first_error is not None
            raise first_error
        sort_by = params.get("sortBy")
        order = params.get("sortOrder")
        sorts: dict[str, SortSpec | None] = {}
        if sort_by is not None and sort_by.strip():
            sort_error: ScimError | None = None
            for rt, _ in targets:
                try:
                    sorts[rt.name] = self._sort_spec(rt, sort_by, order)
                except InvalidValueError as exc:
                    sort_error = sort_error or exc
                    sorts[rt.name] = None
            if all(spec is None for spec in sorts.values()):
                assert sort_error is not None
                raise sort_error
        else:
            self._sort_spec(targets[0][0], None, order)  # validates sortOrder alone
        digest = self._cursors.query_digest(
            ctx.tenant or "", "*", str(parsed) if parsed else None, sort_by, order
        )
        offset, count, cursor_mode = self._window(params, digest)
        attrs, excl = params.get("attributes"), params.get("excludedAttributes")
        if sorts:
            total, items = self._root_sorted(ctx, targets, sorts, offset, count, attrs, excl)
        else:
            total, items = self._root_concatenated(ctx, targets, offset, count, attrs, excl)
        return self._json(
            200, self._list_body(Page(total, []), items, offset, count, cursor_mode, digest)
        )

    def _root_concatenated(
        self,
        ctx: _Ctx,
        targets: list[tuple[ResourceType, Filter | None]],
        offset: int,
        count: int,
        attrs: list[str] | None,
        excl: list[str] | None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Unsorted root search: each resource type in turn, paged as one list."""
        totals = [
            self._search_type(ctx, rt, SearchQuery(filter=bound, count=0)).total
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
            page = self._search_type(ctx, rt, SearchQuery(filter=bound, offset=skip, count=want))
            skip = 0
            want -= len(page.resources)
            projection = self._projection(rt, attrs, excl)
            items.extend(self._render_many(ctx, rt, page.resources, projection))
        return sum(totals), items

    def _root_sorted(
        self,
        ctx: _Ctx,
        targets: list[tuple[ResourceType, Filter | None]],
        sorts: Mapping[str, SortSpec | None],
        offset: int,
        count: int,
        attrs: list[str] | None,
        excl: list[str] | None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Sorted root search: the first ``offset + count`` of each type, merged."""
        from .filter import sort_key

        specs = [spec for spec in sorts.values() if spec is not None]
        descending = specs[0].descending
        # A resource of a type without the attribute has no value for it: any type's key
        # function says so, and keeps the same id tie-break.
        fallback = sort_key(specs[0].path, descending=descending)
        merged: list[tuple[Any, int, ResourceType, dict[str, Any]]] = []
        total = 0
        for rank, (rt, bound) in enumerate(targets):
            spec = sorts.get(rt.name)
            page = self._search_type(
                ctx, rt, SearchQuery(filter=bound, sort=spec, offset=0, count=offset + count)
            )
            total += page.total
            key = sort_key(spec.path, descending=descending) if spec is not None else fallback
            merged.extend((key(res), rank, rt, res) for res in page.resources)
        try:
            merged.sort(key=lambda item: item[0], reverse=descending)
        except TypeError:  # one attribute name, different types in different schemas
            merged.sort(key=lambda item: (item[0][0], str(item[0][1])), reverse=descending)
        items = []
        for _, _, rt, res in merged[offset : offset + count]:
            items.extend(self._render_many(ctx, rt, [res], self._projection(rt, attrs, excl)))
        return total, items

    # -- write helpers ---------------------------------------------------------------------

    def _check_schemas(self, rt: ResourceType, body: Mapping[str, Any]) -> None:
        """RFC 7643 §3: "schemas [...] REQUIRED" and must name the resource's core schema.

        Extra URNs are tolerated unless strict (Entra ID adds its own on group creation).
        """
        schemas = body.get("schemas")
        if schemas is None:
            raise InvalidSyntaxError(
                f"The resource has no 'schemas' attribute; expected [{rt.schema.id!r}]."
            )
        if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
            raise InvalidSyntaxError("'schemas' must be a list of URNs.")
        lowered = {s.lower() for s in schemas}
        if rt.schema.id.lower() not in lowered:
            raise InvalidValueError(f"'schemas' must include {rt.schema.id!r} for a {rt.name}.")
        if self.options.strict:
            known = {sid.lower() for sid in rt.schema_ids}
            unknown = sorted(s for s in schemas if s.lower() not in known)
            if unknown:
                raise InvalidValueError(f"Unknown schemas {unknown} for a {rt.name}.")

    def _normalize(self, rt: ResourceType, body: Mapping[str, Any]) -> dict[str, Any]:
        strict = self.options.strict
        data = normalize_attributes(
            rt,
            body,
            tolerant=not strict,
            strict_unknown=strict or self.options.reject_unknown_attributes,
        )
        data.pop("schemas", None)
        # RFC 7644 §3.3: "[...] attributes whose mutability is "readOnly" [...] SHALL be
        # ignored"; RFC 7644 §3.5.1 likewise for PUT.
        for name in [k for k in data if k in _READONLY_TOP]:
            del data[name]
        _drop_readonly_and_nulls(rt, data)
        return data

    def _member_types(self, ctx: _Ctx, rt: ResourceType, values: Iterable[str]) -> dict[str, str]:
        """Resource type of each referenced member; 400 invalidValue if one does not exist.

        RFC 7643 §4.2: members "value: Identifier of the member of this Group"; a member
        must be a resource of this service provider. The write passes the ids found as
        ``members=`` to the backend, which checks them again atomically with the write (a
        member deleted in between is refused, not left dangling).
        """
        wanted = sorted({v for v in values if isinstance(v, str)})
        if not wanted:
            return {}
        found = dict(self.backend.existing(ctx.tenant, wanted))
        missing = [v for v in wanted if v not in found]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise InvalidValueError(f"Members do not exist: {shown}.")
        return found

    def _finish(
        self,
        rt: ResourceType,
        data: dict[str, Any],
        before: Mapping[str, Any] | None,
        member_types: Mapping[str, str],
    ) -> None:
        """Server-side completion of a resource about to be stored (in place).

        Member objects carried over unchanged from ``before`` (the same objects: PATCH
        shares what it does not change) were completed and checked when they were stored,
        so a 1-member change to a 10k-member group costs one pass of identity checks, not
        10k rebuilt and re-validated members.
        """
        members = data.get("members")
        kept: set[int] = set()
        if isinstance(members, list) and rt.schema.attribute("members") is not None:
            seen: set[str] = set()
            clean = []
            old_members = [m for m in (before or {}).get("members") or () if isinstance(m, dict)]
            kept = {id(m) for m in old_members}
            old_types: dict[Any, Any] | None = None
            for m in members:
                value = m.get("value")
                if not isinstance(value, str) or value in seen:
                    continue
                seen.add(value)
                if id(m) in kept:
                    clean.append(m)
                    continue
                m = {k: v for k, v in m.items() if k != "$ref"}
                kind = member_types.get(value)
                if kind is None:
                    if old_types is None:
                        old_types = {m.get("value"): m.get("type") for m in old_members}
                    kind = old_types.get(value)
                if kind is None:
                    # Every member added by this request was checked to exist; a value
                    # that was neither checked nor already a member is refused.
                    raise InvalidValueError(f"Member {value!r} does not exist.")
                m["type"] = kind
                clean.append(m)
            if clean:
                data["members"] = clean
            else:
                data.pop("members", None)
        pwd = data.get("password")
        if isinstance(pwd, str):
            old = (before or {}).get("password")
            if pwd != old:
                data["password"] = _password_hash(pwd)
        _check_required(rt, data, kept)
        _check_primary(rt, data)

    def _schemas_for(self, rt: ResourceType, data: Mapping[str, Any]) -> list[str]:
        return [rt.schema.id, *(ext.id for ext, _ in rt.extensions if ext.id in data)]

    def _if_match(self, ctx: _Ctx) -> list[str] | None:
        header = ctx.headers.get("if-match")
        if header is None:
            return None
        return parse_etags(header)

    def _emit(self, event: ChangeEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("A SCIM change listener failed")

    # -- create / replace / patch / delete -------------------------------------------------

    def _create(self, ctx: _Ctx, rt: ResourceType) -> Response:
        """RFC 7644 §3.3: "the server SHALL [...] return [...] 201 Created" with the
        resource and its Location."""
        body = self._read_body(ctx)
        self._check_schemas(rt, body)
        data = self._normalize(rt, body)
        member_types = self._member_types(ctx, rt, _member_values(data.get("members")))
        self._finish(rt, data, None, member_types)
        stamp = now()
        rid = str(uuid.uuid4())
        resource: dict[str, Any] = {"schemas": self._schemas_for(rt, data), "id": rid, **data}
        resource["meta"] = {
            "resourceType": rt.name,
            "created": stamp,
            "lastModified": stamp,
            "version": first_version(),
        }
        # The backend checks the new members again atomically with the write: one deleted
        # since existing() answered is refused rather than left dangling.
        stored = self.backend.create(ctx.tenant, rt, resource, members=member_types.keys())
        if self._listeners:  # each gets a copy of its own; none, no copy
            self._emit(
                ChangeEvent(
                    "created", rt.name, rid, ctx.tenant, None, copy_json(stored), ctx.principal
                )
            )
        return self._resource_response(ctx, rt, stored, 201, location=True)

    def _replace(self, ctx: _Ctx, rt: ResourceType, rid: str) -> Response:
        """RFC 7644 §3.5.1 PUT: replace the resource's attributes."""
        body = self._read_body(ctx)
        self._check_schemas(rt, body)
        incoming = self._normalize(rt, body)
        member_types = self._member_types(ctx, rt, _member_values(incoming.get("members")))

        def edit(current: dict[str, Any]) -> dict[str, Any]:
            data = copy_json(incoming)
            _merge_for_replace(rt, current, data)
            self._finish(rt, data, current, member_types)
            return {"schemas": self._schemas_for(rt, data), "id": current["id"], **data}

        stored = self._update(ctx, rt, rid, "replaced", member_types, edit)
        return self._resource_response(ctx, rt, stored, 200)

    def _update(
        self,
        ctx: _Ctx,
        rt: ResourceType,
        rid: str,
        kind: Literal["replaced", "patched"],
        member_types: Mapping[str, str],
        edit: Callable[[dict[str, Any]], dict[str, Any] | None],
    ) -> dict[str, Any]:
        """The atomic write shared by PUT and PATCH: ``edit`` turns the stored resource (the
        request's own copy) into the new one, or None for no change; a result differing only
        in ``meta`` is no change either (the version stays). Otherwise ``meta.version`` and
        ``lastModified`` move (RFC 7644 §3.14), and listeners hear of it as ``kind``."""
        captured: dict[str, Any] = {}

        def change(current: dict[str, Any]) -> dict[str, Any] | None:
            if self._listeners:  # they get a "before" of their own
                captured["before"] = copy_json(current)
            new = edit(current)
            if new is None or _same_content(current, new):
                return None
            meta = dict(current.get("meta") or {})
            meta["lastModified"] = now()
            meta["version"] = next_version(meta.get("version"))
            new["meta"] = meta
            return new

        stored = self.backend.update(
            ctx.tenant,
            rt,
            rid,
            change,
            if_match=self._if_match(ctx),
            members=member_types.keys(),
        )
        before = captured.get("before")
        if before is not None and stored.get("meta") != before.get("meta"):
            self._emit(
                ChangeEvent(
                    kind, rt.name, rid, ctx.tenant, before, copy_json(stored), ctx.principal
                )
            )
        return stored

    def _patch(self, ctx: _Ctx, rt: ResourceType, rid: str) -> Response:
        """RFC 7644 §3.5.2 PATCH: apply the operations atomically (all or nothing)."""
        from ._patch import PatchOptions, apply_patch, parse_patch_request, patch_member_values

        body = self._read_body(ctx)
        operations = parse_patch_request(body, strict=self.options.strict)
        options = PatchOptions(
            strict=self.options.strict,
            replace_creates_missing=self.options.patch_replace_creates_missing,
        )
        member_types = self._member_types(
            ctx, rt, patch_member_values(rt, operations, strict=self.options.strict)
        )

        def edit(current: dict[str, Any]) -> dict[str, Any] | None:
            # apply_patch never mutates ``current`` and shares what it leaves unchanged
            # with its result, so _finish can tell carried-over members by identity.
            new = apply_patch(rt, current, operations, options=options)
            if new is not None:
                self._finish(rt, new, current, member_types)
                new["schemas"] = self._schemas_for(rt, new)
            return new

        stored = self._update(ctx, rt, rid, "patched", member_types, edit)
        if self.options.patch_returns_no_content:
            version = (stored.get("meta") or {}).get("version")
            headers = {"ETag": version} if isinstance(version, str) else {}
            return {"status": 204, "headers": headers, "body": b""}
        return self._resource_response(ctx, rt, stored, 200)

    def _delete(self, ctx: _Ctx, rt: ResourceType, rid: str) -> Response:
        """RFC 7644 §3.6: "the service provider [...] returns [...] 204 (No Content)"."""
        before = self.backend.delete(ctx.tenant, rt, rid, if_match=self._if_match(ctx))
        self._emit(ChangeEvent("deleted", rt.name, rid, ctx.tenant, before, None, ctx.principal))
        return {"status": 204, "headers": {}, "body": b""}

    # -- bulk ------------------------------------------------------------------------------

    def _bulk(self, ctx: _Ctx) -> Response:
        """RFC 7644 §3.7 Bulk, each operation dispatched through the same routes."""
        if not _bulk_available():
            raise NotImplementedScimError("Bulk is not supported.")
        from ._bulk import run_bulk

        raw = ctx.body
        size = len(raw) if isinstance(raw, (bytes, str)) else 0
        if size > self.options.bulk_max_payload_bytes:
            raise PayloadTooLargeError(
                # RFC 7644 §3.7.4, the example's wording.
                "The size of the bulk operation exceeds the maxPayloadSize "
                f"({self.options.bulk_max_payload_bytes})."
            )
        body = self._read_body(ctx)
        schemas = body.get("schemas")
        if not _has_urn(schemas, BULK_REQUEST):
            raise InvalidSyntaxError(f"A bulk request must have schemas [{BULK_REQUEST!r}].")
        if isinstance(schemas, list) and BULK_REQUEST not in schemas:
            # Schema URNs compare case-insensitively; hand run_bulk the canonical one.
            body = {**body, "schemas": [BULK_REQUEST]}

        def dispatch(sub: Request) -> Response:
            sub_ctx = self._decode(sub)
            sub_ctx.principal = ctx.principal
            sub_ctx.tenant = ctx.tenant
            sub_ctx.base_url = ctx.base_url
            if sub_ctx.segments and sub_ctx.segments[0].lower() == "bulk":
                return self._error_response(InvalidValueError("Bulk operations cannot nest."))
            try:
                return self._route(sub_ctx)
            except ScimError as exc:
                return self._error_response(exc)

        status, result = run_bulk(
            body,
            dispatch,
            max_operations=self.options.bulk_max_operations,
            max_payload_bytes=self.options.bulk_max_payload_bytes,
            payload_size=size,
            base_url=ctx.base_url,
        )
        return self._json(status, result)


# -- module helpers ---------------------------------------------------------------------------

_READONLY_TOP: Final = frozenset(("id", "meta", "groups"))


def _bulk_available() -> bool:
    try:
        from . import _bulk  # noqa: F401
    except ImportError:
        return False
    return True


def _mentions(node: Filter, name: str) -> bool:
    """True if the bound filter names the core attribute ``name`` anywhere."""
    if isinstance(node, (And, Or)):
        return _mentions(node.left, name) or _mentions(node.right, name)
    if isinstance(node, Not):
        return _mentions(node.operand, name)
    return node.path.urn is None and node.path.name == name


def _conjuncts(node: Filter) -> list[Filter]:
    """The operands of a chain of ``and`` (the node itself if it is not one)."""
    if isinstance(node, And):
        return [*_conjuncts(node.left), *_conjuncts(node.right)]
    return [node]


def _has_urn(schemas: Any, urn: str) -> bool:
    """True if ``schemas`` is a list naming ``urn`` (compared case-insensitively)."""
    if not isinstance(schemas, list):
        return False
    low = urn.lower()
    return any(isinstance(s, str) and s.lower() == low for s in schemas)


def _drop_readonly_and_nulls(rt: ResourceType, data: dict[str, Any]) -> None:
    """Remove readOnly attributes/sub-attributes and unassigned values, in place.

    RFC 7643 §2.5: "Unassigned attributes, the null value, or empty array (in the case of
    a multi-valued attribute) SHALL be considered to be equivalent in "state"."
    """

    def clean(container: dict[str, Any], lookup: Callable[[str], Attribute | None]) -> None:
        for key in list(container):
            attr = lookup(key)
            if attr is None:
                continue
            if attr.mutability == "readOnly":
                del container[key]
                continue
            value = container[key]
            if attr.is_complex and value is not None:
                items = value if isinstance(value, list) else [value]
                for item in items:
                    if not isinstance(item, dict):
                        continue
                    for sub_name in list(item):
                        sub = attr.sub(sub_name)
                        readonly = sub is not None and sub.mutability == "readOnly"
                        if item[sub_name] is None or item[sub_name] == [] or readonly:
                            del item[sub_name]
                if isinstance(value, list):
                    value[:] = [v for v in value if not (isinstance(v, dict) and not v)]
            if value is None or value == [] or value == {}:
                del container[key]

    def top(name: str) -> Attribute | None:
        ref = rt.resolve(None, name)
        return ref.attribute if ref is not None else None

    clean(data, top)
    for ext, _ in rt.extensions:
        block = data.get(ext.id)
        if not isinstance(block, dict):
            data.pop(ext.id, None)
            continue
        clean(block, ext.attribute)
        if not block:
            del data[ext.id]


def _check_required(
    rt: ResourceType, data: Mapping[str, Any], checked: Collection[int] = ()
) -> None:
    """RFC 7643 §2.2 "required": 400 invalidValue when a required attribute is missing.

    RFC 7644 §3.3: "[...] if [...] required attributes are missing [...] the service
    provider [...] SHALL return [...] 400 [...] invalidValue". readOnly attributes are
    the server's to set and are not checked. Complex values whose ``id()`` is in
    ``checked`` were checked when stored and are skipped.
    """

    def check(container: Mapping[str, Any], attrs: Iterable[Attribute], where: str) -> None:
        for attr in attrs:
            # "$ref" sub-attributes are references the server can derive from "value"
            # (RFC 7643 §4.3 marks manager.$ref REQUIRED, yet no IdP sends it).
            if not attr.required or attr.mutability == "readOnly" or attr.name == "$ref":
                continue
            value = container.get(attr.name)
            if value is None or value == "" or value == [] or value == {}:
                raise InvalidValueError(f"Required attribute {where}{attr.name!r} is missing.")
        for attr in attrs:
            if not attr.is_complex:
                continue
            value = container.get(attr.name)
            items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
            for item in items:
                if isinstance(item, dict) and id(item) not in checked:
                    check(item, attr.sub_attributes, f"{attr.name}.")

    check(data, rt.schema.attributes, "")
    for ext, required in rt.extensions:
        block = data.get(ext.id)
        if block is None:
            if required:
                raise InvalidValueError(f"The extension {ext.id!r} is required.")
            continue
        check(block, ext.attributes, f"{ext.id}:")


def _check_primary(rt: ResourceType, data: Mapping[str, Any]) -> None:
    """RFC 7643 §2.4: "The primary attribute value "true" MUST appear no more than once."

    A POST or PUT body breaking it is 400 invalidValue (PATCH demotes the other values
    itself, RFC 7644 §3.5.2, so its result never reaches here with two).
    """
    for urn, attr in rt.iter_attributes():
        if not (attr.multi_valued and attr.is_complex and attr.sub("primary") is not None):
            continue
        container = data if urn is None else data.get(urn)
        values = container.get(attr.name) if isinstance(container, dict) else None
        if not isinstance(values, list) or len(values) < 2:
            continue
        if sum(1 for v in values if isinstance(v, dict) and v.get("primary") is True) > 1:
            raise InvalidValueError(
                f"Only one value of {attr.name!r} may be primary (RFC 7643 §2.4)."
            )


def _merge_for_replace(rt: ResourceType, current: Mapping[str, Any], data: dict[str, Any]) -> None:
    """Apply RFC 7644 §3.5.1 mutability rules of PUT to ``data`` (in place).

    "immutable - If one or more values are already set for the attribute, the input
    value(s) MUST match, or HTTP status code 400 SHOULD be returned with a "scimType"
    error code of "mutability". If the service provider has no existing values, the new
    value(s) SHALL be applied." Omitted immutable and writeOnly values are kept (a PUT
    from an IdP that never knew the password must not erase it).
    """

    def apply(
        cur: Mapping[str, Any], new: dict[str, Any], attrs: Iterable[Attribute], label: str
    ) -> None:
        for attr in attrs:
            old = cur.get(attr.name)
            if attr.mutability == "immutable" and old not in (None, [], {}, ""):
                given = new.get(attr.name)
                if given is None:
                    new[attr.name] = copy_json(old)
                elif given != old:
                    raise MutabilityError(f"Attribute {label}{attr.name!r} is immutable.")
            elif attr.mutability == "writeOnly" and attr.name not in new and old is not None:
                new[attr.name] = old
            elif attr.is_complex and not attr.multi_valued and isinstance(old, dict):
                # The same rule for the immutable sub-attributes of a singular complex
                # attribute (RFC 7643 §2.2 characteristics apply to sub-attributes too).
                for sub in attr.sub_attributes:
                    old_sub = old.get(sub.name)
                    if sub.mutability != "immutable" or old_sub in (None, "", [], {}):
                        continue
                    given_parent = new.get(attr.name)
                    given = given_parent.get(sub.name) if isinstance(given_parent, dict) else None
                    if given is None:
                        new.setdefault(attr.name, {})[sub.name] = copy_json(old_sub)
                    elif given != old_sub:
                        shown = f"{label}{attr.name}.{sub.name}"
                        raise MutabilityError(f"Attribute {shown!r} is immutable.")

    apply(current, data, rt.schema.attributes, "")
    for ext, _ in rt.extensions:
        cur_block = current.get(ext.id) or {}
        new_block = data.get(ext.id)
        if new_block is None:
            if any(
                a.mutability in ("immutable", "writeOnly") and a.name in cur_block
                for a in ext.attributes
            ):
                new_block = {}
            else:
                continue
        apply(cur_block, new_block, ext.attributes, f"{ext.id}:")
        if new_block:
            data[ext.id] = new_block


def _same_content(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True if the two resources differ in nothing but ``meta``."""
    keys = (set(old) | set(new)) - {"meta"}
    return all(old.get(k) == new.get(k) for k in keys)


def _member_values(members: Any) -> list[str]:
    if not isinstance(members, list):
        return []
    return [m["value"] for m in members if isinstance(m, dict) and isinstance(m.get("value"), str)]
