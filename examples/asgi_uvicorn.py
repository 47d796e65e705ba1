"""Raw ASGI on uvicorn, no framework.   Run:  python examples/asgi_uvicorn.py
Needs: pip install -e '.[serve]' from a checkout (once released: pip install 'scim2-core[serve]')

SCIM 2.0 at http://127.0.0.1:8000/scim/v2, bearer token $SCIM_TOKEN (default "change-me"):

    curl -H "Authorization: Bearer change-me" http://127.0.0.1:8000/scim/v2/Users
"""

import os

import uvicorn

from scim2_core import Engine, bearer_tokens
from scim2_core.asgi import ASGIApp, PrefixMount
from scim2_core.backends import MemoryBackend

TOKEN = os.environ.get("SCIM_TOKEN", "change-me")
engine = Engine(MemoryBackend(), authenticate=bearer_tokens([TOKEN]))
app = PrefixMount(ASGIApp(engine), "/scim/v2")

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=8000)
