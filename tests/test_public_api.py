"""The public surface: sorted ``__all__`` lists naming things that exist."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "scim2_core",
    "scim2_core.filter",
    "scim2_core.backends",
    "scim2_core.backends.sql",
    "scim2_core.asgi",
    "scim2_core.wsgi",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)

    # isort-style order, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions.
    def key(n: str) -> tuple[int, str]:
        return (0 if n.isupper() else 1 if n[0].isupper() else 2, n)

    assert exported == sorted(exported, key=key), f"{name}.__all__ is not sorted"
    assert len(set(exported)) == len(exported)
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr!r}"


def test_the_readme_example_runs() -> None:
    from scim2_core import Engine
    from scim2_core.backends import MemoryBackend

    engine = Engine(MemoryBackend())
    response = engine.handle(
        {
            "method": "POST",
            "path": "/Users",
            "headers": {"Content-Type": "application/scim+json"},
            "body": b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bjensen"}',
            "base_url": "https://example.com/scim/v2",
        }
    )
    assert response["status"] == 201
    assert response["headers"]["Location"].startswith("https://example.com/scim/v2/Users/")


def test_the_readme_example_runs_as_printed() -> None:
    import contextlib
    import io
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = re.findall(r"```python\n(.*?)```", readme, re.S)[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, "README.md", "exec"), {})
    status, location, body = out.getvalue().splitlines()
    assert status == "201"
    assert location.startswith("https://example.com/scim/v2/Users/")
    assert '"totalResults":1' in body and '"userName":"bjensen"' in body
