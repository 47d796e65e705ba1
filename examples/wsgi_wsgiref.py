"""Raw WSGI on the standard library's wsgiref.   Run:  python examples/wsgi_wsgiref.py
Needs: pip install -e . from a checkout (once released: pip install scim2-core); nothing else,
the standard library serves it

SCIM 2.0 at http://127.0.0.1:8000/scim/v2, bearer token $SCIM_TOKEN (default "change-me"):

    curl -H "Authorization: Bearer change-me" http://127.0.0.1:8000/scim/v2/Users

Under gunicorn or mod_wsgi, serve ``app`` the same way: ``gunicorn wsgi_wsgiref:app``.
"""

import contextlib
import os
from wsgiref.simple_server import make_server

from scim2_core import Engine, bearer_tokens
from scim2_core.backends import MemoryBackend
from scim2_core.wsgi import PrefixMount, WSGIApp

TOKEN = os.environ.get("SCIM_TOKEN", "change-me")
scim = WSGIApp(Engine(MemoryBackend(), authenticate=bearer_tokens([TOKEN])))
# SCIM at /scim/v2 (PEP 3333: the prefix moves to SCRIPT_NAME), a 404 SCIM Error elsewhere.
app = PrefixMount(scim, "/scim/v2")


if __name__ == "__main__":
    with make_server("127.0.0.1", 8000, app) as server:
        print("SCIM 2.0 at http://127.0.0.1:8000/scim/v2")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
