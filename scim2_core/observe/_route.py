"""The route template of a request path: ``/Users/2819c223`` is ``/Users/{id}``.

Logs and metrics name requests by template, never by the path itself: a path may hold a
resource id or, mistyped, an e-mail address, and one label value per id would grow the
metrics without bound.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["RouteTemplates"]

#: RFC 7644 §3.2 endpoints of the protocol itself, lower-cased first segment -> spelling.
_FIXED = {
    "serviceproviderconfig": "/ServiceProviderConfig",
    "resourcetypes": "/ResourceTypes",
    "schemas": "/Schemas",
    "bulk": "/Bulk",
    "me": "/Me",
    ".search": "/.search",
}
#: RFC 9110 §9 methods; anything else is counted as ``OTHER``.
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"))
UNKNOWN = "/{unknown}"
#: How many path shapes a :class:`RouteTemplates` remembers (the first segment is the
#: client's: past this many, templates are worked out again each time, never stored).
_CACHED = 256


class RouteTemplates:
    """Turns request paths into the templates of one engine's endpoints."""

    def __init__(self, endpoints: Iterable[str]) -> None:
        #: ``"users"`` -> ``"/Users"`` for each resource type's endpoint.
        self._types = {e.strip("/").lower(): "/" + e.strip("/") for e in endpoints}
        #: (first segment as sent, segment count, second is ``.search``) -> template.
        self._known: dict[tuple[str, int, bool], str] = {}

    def route(self, path: str) -> str:
        """``path`` (relative to the SCIM base, query ignored) as a template."""
        if "?" in path:
            path = path.split("?", 1)[0]
        return self.of_segments([s for s in path.split("/") if s])

    def of_segments(self, segments: list[str]) -> str:
        """The template of a path already split at ``/`` (no empty segment); remembered
        per shape (first segment, how many, whether the second is ``.search``)."""
        if not segments:
            return "/"
        n = len(segments)
        shape = (segments[0], n, n > 1 and segments[1] == ".search")
        known = self._known.get(shape)
        if known is None:
            known = self._template(segments)
            if len(self._known) < _CACHED:
                self._known[shape] = known
        return known

    def _template(self, segments: list[str]) -> str:
        head = segments[0].lower()
        typed = self._types.get(head)
        if typed is not None:
            if len(segments) == 1:
                return typed
            if len(segments) == 2:
                return typed + ("/.search" if segments[1] == ".search" else "/{id}")
            return UNKNOWN
        fixed = _FIXED.get(head)
        if fixed is None:
            return UNKNOWN
        if len(segments) == 1:
            return fixed
        if len(segments) == 2 and head in ("resourcetypes", "schemas"):
            return fixed + "/{id}"
        return fixed if head == "me" else UNKNOWN

    @staticmethod
    def method(method: str) -> str:
        """``method`` when it is an HTTP method, else ``OTHER`` (labels stay bounded)."""
        return method if method in _METHODS else "OTHER"
