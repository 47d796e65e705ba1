"""The WSGI app test_real_servers.py runs under a real gunicorn: ``gunicorn_app:app``."""

from __future__ import annotations

import os

from scim2_core import Engine, Options, bearer_tokens
from scim2_core.backends import MemoryBackend
from scim2_core.wsgi import PrefixMount, WSGIApp

engine = Engine(
    MemoryBackend(),
    authenticate=bearer_tokens([os.environ["SCIM_TEST_TOKEN"]]),
    options=Options(max_body_bytes=int(os.environ["SCIM_TEST_LIMIT"])),
)
app = PrefixMount(WSGIApp(engine), os.environ["SCIM_TEST_PREFIX"])
