"""The public pieces a backend author uses: the contract kit and the shared rules."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from typing import Any

import pytest

import scim2_core.backends
import scim2_core.testing
from scim2_core import InvalidValueError
from scim2_core.backends import (
    check_new_members,
    last_modified,
    member_ids,
    remove_member,
)


@pytest.mark.parametrize("module", [scim2_core.backends, scim2_core.testing])
def test_all_is_sorted_and_names_what_exists(module: Any) -> None:
    exported = list(module.__all__)

    def key(n: str) -> tuple[int, str]:
        return (0 if n.isupper() else 1 if n[0].isupper() else 2, n)

    assert exported == sorted(exported, key=key)
    for name in exported:
        assert hasattr(module, name), name
        value = getattr(module, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__doc__, f"{name} has no docstring"


def test_importing_scim2_core_imports_neither_the_kit_nor_pytest() -> None:
    code = (
        "import json, sys, scim2_core, scim2_core.backends; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.startswith(('pytest', 'hypothesis', 'scim2_core.testing')))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_check_new_members_names_only_the_missing_ids_the_caller_named() -> None:
    check_new_members({"u1", "u2"}, ["u1", "u2", "u3"], {"u1", "u2"})
    check_new_members(set(), ["gone"], set())  # nothing named: nothing checked
    with pytest.raises(InvalidValueError, match="u2") as caught:
        check_new_members(["u1", "u2"], ["u1", "u2", "u3"], {"u1"})
    assert "u3" not in str(caught.value)


def test_remove_member_drops_the_member_and_bumps_the_group() -> None:
    group: dict[str, Any] = {
        "members": [{"value": "u1"}, {"value": "u2"}],
        "meta": {"version": 'W/"3"', "lastModified": "2020-01-01T00:00:00.000Z"},
    }
    remove_member(group, "u1", "2024-05-05T00:00:00.000Z")
    assert group == {
        "members": [{"value": "u2"}],
        "meta": {"version": 'W/"4"', "lastModified": "2024-05-05T00:00:00.000Z"},
    }
    remove_member(group, "u2", "2024-05-06T00:00:00.000Z")
    assert "members" not in group
    assert group["meta"]["version"] == 'W/"5"'


def test_member_ids_and_last_modified_read_what_the_engine_wrote() -> None:
    doc = {"members": [{"value": "a"}, {"value": "b"}, {"display": "no value"}, "junk"]}
    assert member_ids(doc) == {"a", "b"}
    assert member_ids({}) == set()
    assert last_modified({"meta": {"lastModified": "2021-02-03T04:05:06.000Z"}}) == (
        "2021-02-03T04:05:06.000Z"
    )
    assert last_modified({}).endswith("Z")
