"""A group rename and its members' ``groups[].display`` (RFC 7643 §4.1.2).

Decision: a rename does not move its members' versions. Each member shows the new
``display`` on its next read (``groups`` is derived from the membership rows and the group's
name when read, never stored with the member), but its ``meta.version`` stays: versions are
weak entity tags (RFC 7644 §3.14, RFC 7232 §2.1: "semantically equivalent" representations
may share one), and a group's label is a cosmetic part of a member's representation, where
joining or leaving a group is not (those move the member's version). Moving them would
turn a one-row rename of a 100k-member group into 100k row writes. See docs/benchmarks.md,
"Large groups".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scim2_core import Engine
from scim2_core.backends import Backend, MemoryBackend, SQLBackend
from tests.helpers import PATCH_OP, call, create_group, create_user


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    backend: Backend = (
        MemoryBackend() if request.param == "memory" else SQLBackend(f"sqlite:///{tmp_path}/s.db")
    )
    yield Engine(backend)
    if isinstance(backend, SQLBackend):
        backend.close()


def test_a_rename_shows_in_members_groups_without_moving_their_versions(engine: Engine) -> None:
    alice = create_user(engine, "alice")
    staff = create_group(engine, "Staff", [alice["id"]])
    joined = call(engine, "GET", f"/Users/{alice['id']}")
    assert [(g["value"], g["display"]) for g in joined.json["groups"]] == [(staff["id"], "Staff")]
    # Joining moved alice's version; the rename does not.
    assert joined.json["meta"]["version"] != alice["meta"]["version"]
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Employees"}],
    }
    renamed = call(engine, "PATCH", f"/Groups/{staff['id']}", rename)
    assert renamed.status == 200 and renamed.json["meta"]["version"] != staff["meta"]["version"]
    after = call(engine, "GET", f"/Users/{alice['id']}")
    assert after.json["groups"][0]["display"] == "Employees"
    assert after.json["meta"]["version"] == joined.json["meta"]["version"]
    assert after.headers["ETag"] == joined.headers["ETag"]
    # Filters see the new name at once.
    found = call(engine, "GET", "/Users", query={"filter": 'groups.display eq "Employees"'})
    assert [u["id"] for u in found.json["Resources"]] == [alice["id"]]
