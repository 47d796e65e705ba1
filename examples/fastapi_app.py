"""FastAPI.   Run:  python examples/fastapi_app.py
Needs: pip install -e '.[fastapi,serve]' from a checkout (once released: pip install 'scim2-core[fastapi,serve]')

SCIM 2.0 at http://127.0.0.1:8000/scim/v2, bearer token $SCIM_TOKEN (default "change-me"):

    curl -H "Authorization: Bearer change-me" http://127.0.0.1:8000/scim/v2/Users
"""

import os

import uvicorn
from fastapi import FastAPI

from scim2_core import Engine, bearer_tokens
from scim2_core.backends import MemoryBackend
from scim2_core_starlette import scim_app

TOKEN = os.environ.get("SCIM_TOKEN", "change-me")
engine = Engine(MemoryBackend(), authenticate=bearer_tokens([TOKEN]))

app = FastAPI()
app.mount("/scim/v2", scim_app(engine))


@app.get("/")
def home() -> dict[str, str]:
    return {"scim": "/scim/v2"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=8000)
