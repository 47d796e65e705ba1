"""docs/python-api.md's first example runs as printed (on SQLite, in a temporary folder)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from scim2_core import Engine


def test_the_python_api_guide_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guide = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"
    example = re.findall(r"```python\n(.*?)```", guide.read_text(), re.S)[0]
    monkeypatch.chdir(tmp_path)  # the example opens sqlite:///scim.db
    out = io.StringIO()
    namespace: dict[str, object] = {}
    with contextlib.redirect_stdout(out):
        exec(compile(example, "docs/python-api.md", "exec"), namespace)
    assert out.getvalue() == "409 uniqueness The value of 'userName' is already in use.\n"
    engine = namespace["engine"]
    assert isinstance(engine, Engine)
    try:
        assert engine.groups.search().resources[0]["displayName"] == "Administrators"
        assert engine.users.search().total == 0
    finally:
        engine.backend.close()  # type: ignore[attr-defined]
