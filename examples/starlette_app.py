"""Starlette, with its own authentication.   Run:  python examples/starlette_app.py
Needs: pip install -e '.[starlette,serve]' from a checkout (once released: pip install 'scim2-core[starlette,serve]')

SCIM 2.0 at http://127.0.0.1:8000/scim/v2. Starlette's AuthenticationMiddleware checks the
bearer token and sets ``request.user``; ``starlette_user_hook`` lets the engine trust it:

    curl -H "Authorization: Bearer change-me" http://127.0.0.1:8000/scim/v2/Users
"""

import hmac
import os

import uvicorn
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from scim2_core import Engine
from scim2_core.backends import MemoryBackend
from scim2_core_starlette import scim_mount, starlette_user_hook

TOKEN = os.environ.get("SCIM_TOKEN", "change-me")


class BearerAuth(AuthenticationBackend):
    async def authenticate(self, conn):
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), TOKEN.encode()):
            return AuthCredentials(["scim"]), SimpleUser("entra-id")
        return None


async def home(request):
    return PlainTextResponse("The rest of your app. SCIM is at /scim/v2\n")


engine = Engine(MemoryBackend(), authenticate=starlette_user_hook)
app = Starlette(
    routes=[Route("/", home), scim_mount(engine, "/scim/v2")],
    middleware=[Middleware(AuthenticationMiddleware, backend=BearerAuth())],
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=8000)
