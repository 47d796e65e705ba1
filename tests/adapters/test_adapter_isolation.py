"""The engine imports no web framework; adapters stay thin and never encode JSON."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = {"django", "fastapi", "flask", "starlette", "uvicorn", "werkzeug", "anyio", "httpx"}


def test_core_and_raw_servers_import_no_framework() -> None:
    code = (
        "import sys, json\n"
        "import scim2_core, scim2_core.asgi, scim2_core.wsgi, scim2_core.backends\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    loaded = set(json.loads(out.stdout))
    assert "scim2_core" in loaded
    assert loaded & FRAMEWORKS == set()


#: (module file, most lines allowed). The raw ASGI/WSGI apps are the HTTP edge of
#: ``scim2-core serve`` and of framework-free deployments, so they also hold its defences
#: (framing, request targets, raw-path routing, body timeout) and a prefix mount each.
ADAPTER_FILES = [
    ("scim2_core/asgi.py", 300),
    ("scim2_core/wsgi.py", 225),
    ("adapters/scim2_core_starlette/__init__.py", 150),
    ("adapters/scim2_core_flask/__init__.py", 150),
    ("adapters/scim2_core_django/__init__.py", 150),
    ("adapters/scim2_core_django/urls.py", 150),
]


def test_shared_serving_helpers_stay_small() -> None:
    # scim2_core.serving is core, not an adapter: it renders SCIM Errors (JSON) for the adapters.
    assert len((ROOT / "scim2_core/serving/__init__.py").read_text().splitlines()) <= 150


@pytest.mark.parametrize(("name", "most"), ADAPTER_FILES)
def test_adapter_is_thin_and_never_encodes_json(name: str, most: int) -> None:
    source = (ROOT / name).read_text()
    assert len(source.splitlines()) <= most
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.add(node.module.split(".")[0])
    assert imported.isdisjoint({"json", "orjson", "ujson", "simplejson", "pydantic"})
    assert "jsonify" not in source
    assert "JsonResponse" not in source
