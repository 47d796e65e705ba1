"""The sans-IO SCIM protocol engine: :meth:`Engine.handle` turns a plain request dict into a
plain response dict (RFC 7644), over any :class:`~scim2_core.backends.Backend`.

Where things are: routing in ``_engine.py``; the request, its body and ``If-Match`` parsing
in ``_request.py``; list/search/paging/sort and the derived ``User.groups`` filters in
``_query.py``; GET by id, POST/PUT/PATCH/DELETE, the ``If-Match`` compare-and-set and
member checks in ``_write.py``; the pure write rules in ``_validate.py``; rendering
(projections, ``$ref``, attaching ``User.groups``) in ``_render.py``; discovery in
``_discovery.py``; Bulk in ``_bulk.py``; change events in ``_events.py``; password hashing in
``_passwords.py``; cursors in ``_cursor.py``; bearer tokens in ``_auth.py``; the Python API
(``engine.users.create(...)``, :class:`Directory`) over those same handlers in ``_api.py``.
"""

from ._api import Directory, ResourceCollection, SearchResult
from ._auth import Principal, bearer_tokens
from ._engine import ChangeEvent, Engine, verify_password

__all__ = [
    "ChangeEvent",
    "Directory",
    "Engine",
    "Principal",
    "ResourceCollection",
    "SearchResult",
    "bearer_tokens",
    "verify_password",
]
