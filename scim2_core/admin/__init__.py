"""The operator console: a read-only HTML page over the audit log and the event outbox.

Recent requests with status and latency, errors grouped by ``scimType`` and by principal
(the identity provider) with the offending request and the answer, a resource's history
(every change, who made it, the diff), the event outbox (pending, failed), counts per
tenant, and a traffic chart drawn as inline SVG: server-rendered, no script, nothing
fetched from elsewhere. Framework-free like the engine: :meth:`OperatorConsole.handle`
takes a plain request dict and returns ``{"status", "headers", "body"}``, so the engine's
own ASGI and WSGI apps (and every adapter) serve it. See docs/operator.md.
"""

from ._console import COOKIE, OperatorConsole
from ._mount import (
    ADMIN_MOUNT,
    ConsoleBesideASGI,
    ConsoleBesideWSGI,
    console_asgi,
    console_wsgi,
)

__all__ = [
    "ADMIN_MOUNT",
    "COOKIE",
    "ConsoleBesideASGI",
    "ConsoleBesideWSGI",
    "OperatorConsole",
    "console_asgi",
    "console_wsgi",
]
