"""Raw WSGI on the standard library's wsgiref.   Run:  python examples/wsgi_wsgiref.py
Needs: pip install scim2-core   (nothing else: the standard library serves it)

SCIM 2.0 at http://127.0.0.1:8000/scim/v2, bearer token $SCIM_TOKEN (default "change-me"):

    curl -H "Authorization: Bearer change-me" http://127.0.0.1:8000/scim/v2/Users

Behind gunicorn or mod_wsgi, serve ``scim`` itself: the server's SCRIPT_NAME is the mount.
"""

import contextlib
import os
from wsgiref.simple_server import make_server

from scim2_core import Engine, bearer_tokens
from scim2_core.backends import MemoryBackend
from scim2_core.wsgi import WSGIApp

TOKEN = os.environ.get("SCIM_TOKEN", "change-me")
PREFIX = "/scim/v2"
scim = WSGIApp(Engine(MemoryBackend(), authenticate=bearer_tokens([TOKEN])))


def app(environ, start_response):
    """Mount ``scim`` at PREFIX: move the prefix from PATH_INFO to SCRIPT_NAME (PEP 3333)."""
    path = environ.get("PATH_INFO", "")
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"SCIM is at /scim/v2\n"]
    environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + PREFIX
    environ["PATH_INFO"] = path[len(PREFIX) :]
    return scim(environ, start_response)


if __name__ == "__main__":
    with make_server("127.0.0.1", 8000, app) as server:
        print("SCIM 2.0 at http://127.0.0.1:8000/scim/v2")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
