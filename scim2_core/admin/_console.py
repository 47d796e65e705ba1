"""The operator console: ``OperatorConsole.handle(request) -> response`` over plain dicts,
like :meth:`scim2_core.Engine.handle`; the mounts in :mod:`._mount` and the adapters only
translate.

Read-only: every page is a GET. The one POST is the sign-in form (and signing out),
which changes no data. Signing in with the operator token sets a session cookie that is
``HttpOnly`` (no script can read it) and ``SameSite=Strict`` (no other site's page can
send it), so the console needs no CSRF token; a ``Bearer`` header works too, for tools.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .._errors import ConfigurationError
from .._options import Options
from .._types import Request, Response
from ._data import (
    ROW_LIMIT,
    EntryPage,
    FilterError,
    Filters,
    Position,
    client_of,
    error_groups,
    outbox_of,
    principal_of,
    read_entries,
    read_page,
    scim_type_of,
    tenant_counts,
    traffic,
)
from ._layout import CSP, link
from ._views import (
    error_page,
    errors_page,
    history_page,
    login_page,
    outbox_page,
    overview_page,
    requests_page,
)

__all__ = ["COOKIE", "MIN_TOKEN_LENGTH", "OperatorConsole"]


def _positions(query: Mapping[str, str]) -> tuple[Position | None, Position | None]:
    """The page asked for: ``before`` (older than) or ``after`` (newer than) a position."""
    before, after = query.get("before"), query.get("after")
    if before and after:
        raise FilterError("before and after: give one of them")
    return (
        Position.parse(before, "before") if before else None,
        Position.parse(after, "after") if after else None,
    )


logger = logging.getLogger("scim2_core.admin")

#: The session cookie's name.
COOKIE = "scim2_core_operator"
MIN_TOKEN_LENGTH = 16
#: How long a sign-in lasts (seconds).
SESSION_SECONDS = 12 * 3600
#: The largest sign-in form accepted (bytes).
FORM_LIMIT = 4096

_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _html(status: int, body: bytes, extra: Mapping[str, str] | None = None) -> Response:
    headers = {"Content-Type": "text/html; charset=utf-8", **_HEADERS, **(extra or {})}
    return {"status": status, "headers": headers, "body": body}


def _redirect(to: str, extra: Mapping[str, str] | None = None) -> Response:
    return {"status": 303, "headers": {"Location": to, **_HEADERS, **(extra or {})}, "body": b""}


class OperatorConsole:
    """The read-only operator console of ``engine``: recent requests, errors grouped by
    ``scimType`` and by principal with what was asked and answered, a resource's
    history, the event outbox, counts per tenant and a traffic chart.

    ``token`` (16 characters at least) guards it: a ``Bearer`` header, or the sign-in
    form's session cookie. Or ``authorize(request) -> bool`` decides, from the request
    dict whose ``context`` the adapter fills with the framework's request and user (the
    host application's own sign-in; False: 403). With neither, the console has no
    authentication of its own: mount it only behind the host's (Django's
    ``staff_member_required``, the default of ``scim2_core_django.operator_urlpatterns``);
    see docs/operator.md.

    It reads ``engine.audit`` (turn it on with ``engine.audit.enable()``) and
    ``engine.events``. :meth:`handle` never raises for anything a client sends.
    """

    def __init__(
        self,
        engine: Any,
        *,
        token: str | None = None,
        authorize: Callable[[Request], bool] | None = None,
    ) -> None:
        if token is not None and authorize is not None:
            raise ConfigurationError("give the operator console a token or authorize, not both")
        if token is not None and (len(token) < MIN_TOKEN_LENGTH or not token.isprintable()):
            raise ConfigurationError(
                f"the operator token must have at least {MIN_TOKEN_LENGTH} printable characters"
            )
        self.engine = engine
        #: For the transports (:class:`~scim2_core.asgi.ASGIApp`): the largest body read,
        #: a sign-in form's.
        self.options = Options(max_body_bytes=FORM_LIMIT)
        #: The console reads the backend: the ASGI app runs it on a worker thread.
        self.never_blocks = False
        self._token = token
        self._authorize = authorize
        self._key = (
            hmac.new(token.encode(), b"scim2-core operator session", hashlib.sha256).digest()
            if token is not None
            else b""
        )
        self._pages: Mapping[str, Callable[[str, Mapping[str, str]], bytes]] = {
            "/": self._overview,
            "/requests": self._requests,
            "/errors": self._errors,
            "/history": self._history,
            "/outbox": self._outbox,
        }

    # -- authentication ------------------------------------------------------------------

    def session_cookie(self, now: float | None = None) -> str:
        """A fresh session value: its expiry and an HMAC of it under a key derived from
        the token (the token itself never travels in the cookie)."""
        expires = int((now or time.time()) + SESSION_SECONDS)
        mac = hmac.new(self._key, str(expires).encode(), hashlib.sha256).hexdigest()
        return f"{expires}.{mac}"

    def _valid_session(self, value: str) -> bool:
        expires, _, mac = value.partition(".")
        if not expires.isdigit() or int(expires) < time.time():
            return False
        good = hmac.new(self._key, expires.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(mac.encode(), good.encode())

    def _signed_in(self, headers: Mapping[str, str]) -> bool:
        if self._token is None:
            return True
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return hmac.compare_digest(auth[7:].strip().encode(), self._token.encode())
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and self._valid_session(value):
                return True
        return False

    def _cookie(self, value: str, root: str, secure: bool, max_age: int) -> str:
        flags = f"; Path={root or '/'}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
        return f"{COOKIE}={value}{flags}{'; Secure' if secure else ''}"

    def _login(self, root: str, body: Any, secure: bool) -> Response:
        if self._token is None:
            return _redirect(link(root, "/"))
        raw = body if isinstance(body, bytes | str) else b""
        if len(raw) > FORM_LIMIT:
            return _html(413, login_page(root, "The form is too large."))
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        given = dict(parse_qsl(text)).get("token", "")
        if not hmac.compare_digest(given.encode(), self._token.encode()):
            return _html(401, login_page(root, "That is not the operator token."))
        cookie = self._cookie(self.session_cookie(), root, secure, SESSION_SECONDS)
        return _redirect(link(root, "/"), {"Set-Cookie": cookie})

    # -- entry point ---------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Serve one request to the console. ``path`` is relative to the console's mount
        (``/``, ``/errors``...), ``base_url`` the mount's URL or path (``/scim/admin``),
        ``query`` and ``headers`` as for the engine, ``body`` only for the sign-in form."""
        try:
            return self._handle(request)
        except Exception:  # a bug, or a store that is down: say so, without details
            logger.exception("The operator console failed")
            problem = "The console could not read the data; the server log has the details."
            root = urlsplit(str(request.get("base_url") or "")).path.rstrip("/")
            return _html(500, error_page(root, "Error", problem))

    def _handle(self, request: Request) -> Response:
        base = urlsplit(str(request.get("base_url") or ""))
        root = base.path.rstrip("/")
        secure = base.scheme == "https"
        method = str(request.get("method", "GET")).upper()
        path = "/" + str(request.get("path", "/")).strip("/")
        headers = {str(k).lower(): str(v) for k, v in (request.get("headers") or {}).items()}
        if self._authorize is not None:
            if path in ("/login", "/logout"):
                return _redirect(link(root, "/"))
            if not self._authorize(request):
                return _html(403, error_page(root, "Not allowed", "You may not see this page."))
        if path == "/login":
            if method == "POST":
                return self._login(root, request.get("body"), secure)
            if method in ("GET", "HEAD"):
                return _html(200, login_page(root))
            return _html(
                405,
                error_page(root, "Not allowed", "Use GET or POST."),
                {"Allow": "GET, HEAD, POST"},
            )
        if path == "/logout":
            if method != "POST":  # a link elsewhere must not sign the operator out
                return _html(405, error_page(root, "Not allowed", "Use POST."), {"Allow": "POST"})
            cookie = self._cookie("", root, secure, 0)
            return _redirect(link(root, "/login"), {"Set-Cookie": cookie})
        if not self._signed_in(headers):
            if "authorization" in headers:
                return _html(
                    401,
                    login_page(root, "That is not the operator token."),
                    {"WWW-Authenticate": 'Bearer realm="scim2-core operator"'},
                )
            return _redirect(link(root, "/login"))
        view = self._pages.get(path)
        if view is None:
            return _html(404, error_page(root, "Not found", f"No page at {path}."))
        if method not in ("GET", "HEAD"):
            return _html(
                405,
                error_page(root, "Not allowed", "The console is read-only: GET."),
                {"Allow": "GET, HEAD"},
            )
        query = {str(k): str(v) for k, v in (request.get("query") or {}).items()}
        try:
            return _html(200, view(root, query))
        except FilterError as exc:
            return _html(400, error_page(root, "Bad filter", str(exc)))

    # -- pages -----------------------------------------------------------------------------

    def _read(self, query: Mapping[str, str]) -> tuple[Filters, list[Any], bool, datetime]:
        filters = Filters.parse(query)
        now = datetime.now(UTC)
        entries, cut = read_entries(self.engine.audit, filters, now)
        return filters, entries, cut, now

    def _overview(self, root: str, query: Mapping[str, str]) -> bytes:
        filters, entries, cut, now = self._read(query)
        return overview_page(
            root,
            filters,
            entries,
            cut,
            traffic(entries, filters.start(now), filters.until or now),
            tenant_counts(entries, self.engine.backend, self.engine.resource_types),
            error_groups(entries, scim_type_of),
            outbox_of(self.engine.events),
            self.engine.audit.active,
        )

    def _requests(self, root: str, query: Mapping[str, str]) -> bytes:
        filters = Filters.parse(query)
        before, after = _positions(query)
        page = read_page(self.engine.audit, filters, datetime.now(UTC), before=before, after=after)
        paged = before is not None or after is not None
        return requests_page(root, filters, page, paged, self.engine.audit.active)

    def _errors(self, root: str, query: Mapping[str, str]) -> bytes:
        filters, entries, cut, _ = self._read(query)
        return errors_page(
            root,
            filters,
            error_groups(entries, scim_type_of),
            error_groups(entries, principal_of),
            error_groups(entries, client_of),
            cut,
            self.engine.audit.active,
        )

    def _history(self, root: str, query: Mapping[str, str]) -> bytes:
        # The whole history of the resource (between since and until): no time window.
        filters = Filters.parse(query)
        filters = Filters(
            window="all", since=filters.since, until=filters.until, resource=filters.resource
        )
        before, after = _positions(query)
        page, prior = EntryPage([], None, None), []
        if filters.resource:
            audit, now = self.engine.audit, datetime.now(UTC)
            page = read_page(audit, filters, now, before=before, after=after, newest_first=False)
            if page.older is not None and page.entries:
                # What the earlier changes left, for the "Before" column of this page.
                first = Position.of(page.entries[0])
                prior = read_page(
                    audit, filters, now, before=first, newest_first=False, rows=ROW_LIMIT
                ).entries
        paged = before is not None or after is not None
        return history_page(root, filters, page, prior, paged, self.engine.audit.active)

    def _outbox(self, root: str, query: Mapping[str, str]) -> bytes:
        return outbox_page(root, outbox_of(self.engine.events))
