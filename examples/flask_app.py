"""Flask.   Run:  python examples/flask_app.py
Needs: pip install -e '.[flask]' from a checkout (once released: pip install 'scim2-core[flask]')

SCIM 2.0 at http://127.0.0.1:8000/scim/v2, bearer token $SCIM_TOKEN (default "change-me"):

    curl -H "Authorization: Bearer change-me" http://127.0.0.1:8000/scim/v2/Users
"""

import os

from flask import Flask

from scim2_core import Engine, bearer_tokens
from scim2_core.backends import MemoryBackend
from scim2_core_flask import scim_blueprint

TOKEN = os.environ.get("SCIM_TOKEN", "change-me")
engine = Engine(MemoryBackend(), authenticate=bearer_tokens([TOKEN]))

app = Flask(__name__)
app.register_blueprint(scim_blueprint(engine), url_prefix="/scim/v2")


@app.get("/")
def home() -> str:
    return "The rest of your app. SCIM is at /scim/v2\n"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8000)
