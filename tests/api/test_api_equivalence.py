"""Hypothesis: any sequence of creates, patches and searches gives the same answers through the
Python API as through ``Engine.handle``.

Two engines start empty; one is driven through the API, the other through HTTP-shaped
requests, with the same steps. After each step both answers must agree once timestamps are
dropped; an error must be the same ScimError (status and scimType) on both sides. Each engine
draws resource ids from a counter of its own, so the k-th resource either creates gets the
same id, and orders that ids decide (sort ties, a User's groups) are the same on both sides.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim2_core import Engine, ScimError
from scim2_core.backends import Backend, MemoryBackend, SQLBackend
from tests.helpers import BASE, GROUP, PATCH_OP, USER, call

NAMES = st.sampled_from(["ann", "ANN", "bob", "cy", "dee"])
TEXT = st.sampled_from(["x", "Dr", "ops", "ann", ""])
EMAILS = st.lists(
    st.fixed_dictionaries(
        {"value": st.sampled_from(["a@x.com", "b@y.org", "c@x.com"])},
        optional={"type": st.sampled_from(["work", "home"]), "primary": st.booleans()},
    ),
    max_size=3,
)
USER_BODIES = st.fixed_dictionaries(
    {"userName": NAMES},
    optional={
        "displayName": TEXT,
        "title": TEXT,
        "active": st.one_of(st.booleans(), st.sampled_from(["False", "True"])),
        "emails": EMAILS,
    },
)
USER_OPS = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "op": st.sampled_from(["add", "replace", "Replace"]),
                "path": st.sampled_from(["title", "displayName", "userName", "nickName"]),
                "value": TEXT,
            }
        ),
        st.fixed_dictionaries(
            {"op": st.just("remove"), "path": st.sampled_from(["title", "emails", "nope[", "id"])}
        ),
        st.fixed_dictionaries(
            {
                "op": st.sampled_from(["add", "replace"]),
                "path": st.just("emails"),
                "value": EMAILS,
            }
        ),
        st.fixed_dictionaries({"op": st.just("remove"), "path": st.just('emails[type eq "work"]')}),
    ),
    min_size=1,
    max_size=3,
)
FILTERS = st.sampled_from(
    [
        None,
        'userName eq "ann"',
        'title pr and not (title eq "")',
        'emails[type eq "work"].value co "x"',
        'displayName sw "o" or userName gt "b"',
        "active eq true",
        "members pr",
        'groups.display eq "ops"',
        "userName eq",
    ]
)
# An index into the resources created so far (wrapped), or a member that does not exist.
REF = st.one_of(st.integers(0, 20), st.just("ghost"))

STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("create_user"), USER_BODIES),
        st.tuples(
            st.just("create_group"),
            st.fixed_dictionaries({"displayName": TEXT, "members": st.lists(REF, max_size=3)}),
        ),
        st.tuples(st.just("patch_user"), st.tuples(st.integers(0, 20), USER_OPS)),
        st.tuples(
            st.just("patch_group"),
            st.tuples(
                st.integers(0, 20),
                st.sampled_from(["add", "remove", "replace"]),
                st.lists(REF, max_size=2),
            ),
        ),
        st.tuples(
            st.just("search"),
            st.tuples(
                st.sampled_from(["Users", "Groups"]),
                FILTERS,
                st.sampled_from([None, "userName", "displayName", "title"]),
                st.sampled_from([None, 0, 2, 50]),
            ),
        ),
    ),
    min_size=1,
    max_size=12,
)


class _Ids:
    """``uuid.uuid4`` for the duration of a test: ``side`` picks the engine's counter."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.counters = [itertools.count(1), itertools.count(1)]
        self.side = 0

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=next(self.counters[self.side]))


_IDS = _Ids()


class Twins:
    """The API engine and the HTTP engine, and the ids each created, in order."""

    def __init__(self, api_engine: Engine, http_engine: Engine) -> None:
        self.api = api_engine.directory(base_url=BASE)
        self.http = http_engine
        self.ids: dict[str, tuple[list[str], list[str]]] = {"Users": ([], []), "Groups": ([], [])}

    def pick(self, kind: str, index: int) -> tuple[str, str] | None:
        api_ids, http_ids = self.ids[kind]
        if not api_ids:
            return None
        return api_ids[index % len(api_ids)], http_ids[index % len(http_ids)]

    def members(self, refs: list[Any]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        api: list[dict[str, str]] = []
        http: list[dict[str, str]] = []
        for ref in refs:
            pair = None if ref == "ghost" else self.pick("Users", ref)
            api.append({"value": pair[0] if pair else "ghost"})
            http.append({"value": pair[1] if pair else "ghost"})
        return api, http

    def normal(self, value: Any, side: int) -> Any:
        """``value`` with each id replaced by its kind and creation order, no timestamps."""
        text = json.dumps(value, sort_keys=True)
        for kind, pair in self.ids.items():
            for order, rid in enumerate(pair[side]):
                text = text.replace(rid, f"{kind}#{order}")
        out = json.loads(text)
        _drop_timestamps(out)
        return out


def _drop_timestamps(value: Any) -> None:
    if isinstance(value, dict):
        meta = value.get("meta")
        if isinstance(meta, dict):
            meta.pop("created", None)
            meta.pop("lastModified", None)
        for item in value.values():
            _drop_timestamps(item)
    elif isinstance(value, list):
        for item in value:
            _drop_timestamps(item)


def _outcome(action: Any) -> tuple[str, Any]:
    _IDS.side = 0
    try:
        return "ok", action()
    except ScimError as exc:
        return "error", (exc.status, exc.scim_type)


def _http(*args: Any, **kw: Any) -> Any:
    _IDS.side = 1
    return call(*args, **kw)


def _http_outcome(result: Any) -> tuple[str, Any]:
    if result.status >= 400:
        return "error", (result.status, result.json.get("scimType"))
    return "ok", result.json


def _run(twins: Twins, step: str, arg: Any) -> None:
    api, http = twins.api, twins.http
    if step == "create_user":
        got = _outcome(lambda: api.users.create(arg))
        want = _http_outcome(_http(http, "POST", "/Users", {"schemas": [USER], **arg}))
        kind = "Users"
    elif step == "create_group":
        api_members, http_members = twins.members(arg["members"])
        group = {"displayName": arg["displayName"]}
        got = _outcome(lambda: api.groups.create({**group, "members": api_members}))
        body = {"schemas": [GROUP], **group, "members": http_members}
        want = _http_outcome(_http(http, "POST", "/Groups", body))
        kind = "Groups"
    elif step in ("patch_user", "patch_group"):
        kind = "Users" if step == "patch_user" else "Groups"
        pair = twins.pick(kind, arg[0])
        if pair is None:
            return
        if step == "patch_user":
            api_ops = http_ops = arg[1]
        else:
            api_members, http_members = twins.members(arg[2])
            api_ops = [{"op": arg[1], "path": "members", "value": api_members}]
            http_ops = [{"op": arg[1], "path": "members", "value": http_members}]
        collection = api.users if kind == "Users" else api.groups
        got = _outcome(lambda: collection.patch(pair[0], api_ops))
        body = {"schemas": [PATCH_OP], "Operations": http_ops}
        want = _http_outcome(_http(http, "PATCH", f"/{kind}/{pair[1]}", body))
    else:
        endpoint, filter_, sort_by, count = arg
        collection = api.users if endpoint == "Users" else api.groups
        got = _outcome(
            lambda: collection.search(filter=filter_, sort_by=sort_by, count=count).resources
        )
        query = {
            k: str(v)
            for k, v in {"filter": filter_, "sortBy": sort_by, "count": count}.items()
            if v is not None
        }
        result = _http(http, "GET", f"/{endpoint}", query=query)
        want = _http_outcome(result)
        if want[0] == "ok":
            want = ("ok", want[1]["Resources"])
        kind = ""
    if step.startswith("create") and got[0] == want[0] == "ok":
        assert got[1]["id"] == want[1]["id"]  # the k-th resource of each engine
        twins.ids[kind][0].append(got[1]["id"])
        twins.ids[kind][1].append(want[1]["id"])
    assert got[0] == want[0], (step, arg, got, want)
    assert twins.normal(got[1], 0) == twins.normal(want[1], 1), (step, arg)


@contextmanager
def _backends(kind: str) -> Iterator[tuple[Backend, Backend]]:
    if kind == "memory":
        yield MemoryBackend(), MemoryBackend()
        return
    first, second = SQLBackend("sqlite:///:memory:"), SQLBackend("sqlite:///:memory:")
    try:
        yield first, second
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize(("kind", "examples"), [("memory", 120), ("sqlite", 40)])
def test_api_and_http_agree_on_any_sequence(
    kind: str, examples: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uuid, "uuid4", _IDS.uuid4)

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=STEPS)
    def check(steps: list[tuple[str, Any]]) -> None:
        _IDS.reset()
        with _backends(kind) as (one, two):
            twins = Twins(Engine(one), Engine(two))
            for step, arg in steps:
                _run(twins, step, arg)

    check()
