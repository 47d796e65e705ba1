"""Member-only PATCHes on a backend with the MemberRows capability answer exactly what the
whole-group path answers: same status, same members in the same order, same versions of
the group and of the members touched (RFC 7644 §3.5.2, §3.14)."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scim2_core import Engine
from scim2_core.backends import (
    Backend,
    Change,
    MemberRows,
    MemoryBackend,
    Page,
    SearchQuery,
    SQLBackend,
)
from scim2_core.schema import ResourceType

GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USERS = 6


class WholeGroups:
    """A MemoryBackend seen through the Backend protocol only (no MemberRows)."""

    def __init__(self) -> None:
        self.inner = MemoryBackend()
        self.never_blocks = True

    def bind(self, resource_types: Sequence[ResourceType]) -> None:
        self.inner.bind(resource_types)

    def create(
        self,
        tenant: str | None,
        rt: ResourceType,
        resource: dict[str, Any],
        *,
        members: Collection[str] = (),
    ) -> dict[str, Any]:
        return self.inner.create(tenant, rt, resource, members=members)

    def get(self, tenant: str | None, rt: ResourceType, id: str) -> dict[str, Any] | None:
        return self.inner.get(tenant, rt, id)

    def search(self, tenant: str | None, rt: ResourceType, query: SearchQuery) -> Page:
        return self.inner.search(tenant, rt, query)

    def update(
        self,
        tenant: str | None,
        rt: ResourceType,
        id: str,
        change: Change,
        *,
        if_match: Collection[str] | None = None,
        members: Collection[str] = (),
    ) -> dict[str, Any]:
        return self.inner.update(tenant, rt, id, change, if_match=if_match, members=members)

    def delete(
        self,
        tenant: str | None,
        rt: ResourceType,
        id: str,
        *,
        if_match: Collection[str] | None = None,
    ) -> dict[str, Any]:
        return self.inner.delete(tenant, rt, id, if_match=if_match)

    def groups_of(
        self, tenant: str | None, member_ids: Iterable[str]
    ) -> Mapping[str, list[dict[str, Any]]]:
        return self.inner.groups_of(tenant, member_ids)

    def existing(self, tenant: str | None, ids: Iterable[str]) -> Mapping[str, str]:
        return self.inner.existing(tenant, ids)


def _call(engine: Engine, method: str, path: str, body: Any = None, **query: str) -> Any:
    return engine.handle(
        {"method": method, "path": path, "query": query, "body": body if body else b""}
    )


class World:
    """One engine with ``USERS`` users and one group holding the first three."""

    def __init__(self, backend: Backend) -> None:
        self.engine = Engine(backend)
        self.users = []
        for i in range(USERS):
            body = {"schemas": [USER_URN], "userName": f"user{i}"}
            self.users.append(json.loads(_call(self.engine, "POST", "/Users", body)["body"])["id"])
        body = {
            "schemas": [GROUP_URN],
            "displayName": "g",
            "members": [{"value": u, "display": f"U{n}"} for n, u in enumerate(self.users[:3])],
        }
        self.group = json.loads(_call(self.engine, "POST", "/Groups", body)["body"])["id"]

    def id(self, n: int) -> str:
        return self.users[n] if n < USERS else f"missing-{n}"

    def operation(self, spec: tuple[Any, ...]) -> dict[str, Any]:
        kind, ns, display = spec
        members = [{"value": self.id(n), **({"display": display} if display else {})} for n in ns]
        if kind == "add":
            return {"op": "add", "path": "members", "value": members}
        if kind == "Add-nopath":
            return {"op": "Add", "value": {"members": members}}
        if kind == "remove-eq":
            return {"op": "remove", "path": f'members[value eq "{self.id(ns[0])}"]'}
        if kind == "Remove-list":
            return {"op": "Remove", "path": "members", "value": members}
        return {"op": "replace", "path": "displayName", "value": display or "renamed"}

    def patch(self, specs: list[tuple[Any, ...]]) -> tuple[int, Any]:
        body = {"schemas": [PATCH_URN], "Operations": [self.operation(s) for s in specs]}
        response = _call(self.engine, "PATCH", f"/Groups/{self.group}", body)
        return response["status"], json.loads(response["body"])

    def state(self) -> Any:
        group = json.loads(_call(self.engine, "GET", f"/Groups/{self.group}")["body"])
        names = {u: n for n, u in enumerate(self.users)}
        members = [(names[m["value"]], m.get("display")) for m in group.get("members", [])]
        versions = []
        for u in self.users:
            user = json.loads(_call(self.engine, "GET", f"/Users/{u}")["body"])
            versions.append(user["meta"]["version"])
        return group["meta"]["version"], group["displayName"], members, versions


def _comparable(world: World, status: int, body: Any) -> Any:
    if status >= 300:
        return status, body.get("scimType")
    names = {u: n for n, u in enumerate(world.users)}
    members = [(names[m["value"]], m.get("display")) for m in body.get("members", [])]
    return status, body["meta"]["version"], members


specs = st.tuples(
    st.sampled_from(["add", "Add-nopath", "remove-eq", "Remove-list", "replace-name"]),
    st.lists(st.integers(0, USERS), min_size=1, max_size=3),
    st.sampled_from([None, "X", "U1"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(specs, min_size=1, max_size=3), min_size=1, max_size=4))
def test_member_only_patches_match_the_whole_group_path(
    requests: list[list[tuple[Any, ...]]],
) -> None:
    sql = SQLBackend("sqlite:///:memory:")
    worlds = [World(WholeGroups()), World(MemoryBackend()), World(sql)]
    assert not isinstance(worlds[0].engine.backend, MemberRows)
    try:
        for specs_ in requests:
            answers = [_comparable(w, *w.patch(specs_)) for w in worlds]
            assert answers[1] == answers[0]
            assert answers[2] == answers[0]
            states = [w.state() for w in worlds]
            assert states[1] == states[0]
            assert states[2] == states[0]
    finally:
        sql.close()
