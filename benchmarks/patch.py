"""PATCH cost beside scim2-models' ``PatchOp[...].patch(...)``, in one process, same data.

    .venv/bin/python benchmarks/patch.py
    .venv/bin/python benchmarks/patch.py --members 10000 --seconds 1

Two workloads, each measured for scim2-core (``parse_patch_request`` + ``apply_patch`` on
resource dicts) and scim2-models 0.12.3 (``PatchOp[Model].model_validate(body)`` +
``.patch(resource)`` on a model instance), both starting from the request body as a dict:

* a 3-operation User PATCH (replace displayName, replace ``emails[type eq "work"].value``,
  add title): what Entra ID and Okta send on a profile sync;
* adding 1 member to a group of 10k members;

and, unless ``--no-server``, the same group change through each whole server in memory
(scim2-core's ``Engine.handle`` beside scim2-server 0.8.3's ``ScimHandler``): parsing, the
member check, the atomic write and a new version included (see ``server_workloads``).

Both sides run interleaved in rounds, and the best round of each is kept, so the ratio is
meaningful on a noisy machine. Targets: >= 10x on both.

Then, unless ``--no-scaling``, how adds scale (``scaling_ratios``): N distinct values added
to a User's ``emails`` or a Group's ``members``, in one operation or one per operation,
parsed and applied, for N = 1,000 and N = 16,000. The ratio is time(16k) / (16 x
time(1k)): 1 when adding is linear, 16 when it is quadratic. Target: <= 2 (near 1: on a
busy machine, and with caches, each of 16k values costs a little more than each of 1k).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scim2_models import EnterpriseUser, Group, PatchOp, User

from scim2_core.patch import PatchOptions, apply_patch, parse_patch_request
from scim2_core.schema import GROUP_URN, USER_URN, resource_type_from_model

PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_MODEL: Any = User[EnterpriseUser]
USERS = resource_type_from_model(USER_MODEL)
GROUPS = resource_type_from_model(Group)
OPTIONS = PatchOptions()

USER: dict[str, Any] = {
    "schemas": [USER_URN],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "userName": "bjensen@example.com",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "displayName": "Babs Jensen",
    "active": True,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
    "meta": {"resourceType": "User", "version": 'W/"1"'},
}
USER_PATCH: dict[str, Any] = {
    "schemas": [PATCH_URN],
    "Operations": [
        {"op": "replace", "path": "displayName", "value": "Barbara Jensen"},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "b@example.com"},
        {"op": "add", "path": "title", "value": "Tour Guide"},
    ],
}


def group_with(members: int) -> dict[str, Any]:
    return {
        "schemas": [GROUP_URN],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Everyone",
        "members": [
            {"value": f"{i:08x}-0000-4000-8000-000000000000", "type": "User"}
            for i in range(members)
        ],
        "meta": {"resourceType": "Group", "version": 'W/"1"'},
    }


def add_member(i: int) -> dict[str, Any]:
    return {
        "schemas": [PATCH_URN],
        "Operations": [
            {"op": "add", "path": "members", "value": [{"value": f"new-member-{i}"}]},
        ],
    }


def _calibrate(fn: Callable[[int], object]) -> int:
    """Calls of ``fn`` that take about 50 ms."""
    fn(0)  # warm up
    start = time.perf_counter()
    calls = 1
    while time.perf_counter() - start < 0.05:
        fn(calls)
        calls += 1
    return calls


def best_per_call(
    ours: Callable[[int], object], theirs: Callable[[int], object], seconds: float
) -> tuple[float, float]:
    """Best-of-rounds seconds per call of each, rounds interleaved over ``seconds``."""
    fns = (ours, theirs)
    rounds = [_calibrate(fn) for fn in fns]
    best = [float("inf"), float("inf")]
    i = max(rounds) + 1
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for k, fn in enumerate(fns):
            gc.disable()
            t0 = time.perf_counter()
            for _ in range(rounds[k]):
                fn(i)
                i += 1
            elapsed = time.perf_counter() - t0
            gc.enable()
            best[k] = min(best[k], elapsed / rounds[k])
    return best[0], best[1]


def server_workloads(members: int) -> tuple[Callable[[int], object], Callable[[int], object]]:
    """The same group PATCH through each whole server, in memory: scim2-core's
    ``Engine(MemoryBackend()).handle`` and scim2-server 0.8.3's ``ScimHandler`` over its
    ``InMemoryStorage``. Both hold ``members`` users in one group; each call alternately adds
    one more existing user and removes it again (``members[value eq "..."]``), and answers
    with ``excludedAttributes=members``, as Entra ID asks. Every call changes the group: it is
    checked, written and versioned, not only patched."""
    from scim2_server.handler import ScimHandler
    from scim2_server.memory import InMemoryStorage
    from scim2_server.requests import ScimRequest
    from scim2_server.service import ScimService
    from scim2_server.utils import load_default_provider

    from scim2_core import Engine
    from scim2_core.backends import MemoryBackend

    base = "https://example.com/scim/v2"
    json_headers = {"Content-Type": "application/scim+json"}
    engine = Engine(MemoryBackend())
    handler = ScimHandler(ScimService(load_default_provider()), InMemoryStorage())

    def ours_call(method: str, path: str, body: Any, query: dict[str, str]) -> tuple[int, Any]:
        r = engine.handle(
            {
                "method": method,
                "path": path,
                "query": query,
                "headers": json_headers,
                "body": json.dumps(body).encode(),
                "base_url": base,
            }
        )
        return r["status"], json.loads(r["body"]) if r["body"] else None

    def theirs_call(method: str, path: str, body: Any, query: dict[str, str]) -> tuple[int, Any]:
        request = ScimRequest(
            method=method,
            base_url=base,
            path=path,
            query=query,
            headers=json_headers,
            body=json.dumps(body).encode(),
        )
        response = handler.handle(request)
        return int(response.status), response.body

    sides = []
    for call in (ours_call, theirs_call):
        ids = []
        for i in range(members + 1):
            status, body = call("POST", "/Users", {"schemas": [USER_URN], "userName": f"u{i}"}, {})
            assert status == 201, body
            ids.append(body["id"])
        group = {
            "schemas": [GROUP_URN],
            "displayName": "Everyone",
            "members": [{"value": uid} for uid in ids[:members]],
        }
        status, body = call("POST", "/Groups", group, {})
        assert status == 201, body
        sides.append((call, body["id"], ids[members]))

    def workload(side: tuple[Any, str, str]) -> Callable[[int], object]:
        call, gid, extra = side
        calls = iter(range(10**12))  # this side's own count: add, remove, add, ...

        def run(_: int) -> object:
            op = (
                {"op": "add", "path": "members", "value": [{"value": extra}]}
                if next(calls) % 2 == 0
                else {"op": "remove", "path": f'members[value eq "{extra}"]'}
            )
            status, body = call(
                "PATCH",
                f"/Groups/{gid}",
                {"schemas": [PATCH_URN], "Operations": [op]},
                {"excludedAttributes": "members"},
            )
            assert status in (200, 204), body
            return body

        return run

    ours_run, theirs_run = workload(sides[0]), workload(sides[1])
    return ours_run, theirs_run


def adds_workload(attribute: str, n: int, one_op: bool) -> Callable[[], object]:
    """Parse and apply a PATCH adding ``n`` distinct ``emails`` to a User (not caseExact)
    or ``members`` to a Group (caseExact), in one operation or ``n``."""
    if attribute == "emails":
        rt, resource = USERS, USER
        values = [{"value": f"user{i}@example.com", "type": "work"} for i in range(n)]
    else:
        rt, resource = GROUPS, group_with(0)
        values = [{"value": f"{i:08x}-0000-4000-8000-000000000000"} for i in range(n)]
    if one_op:
        ops = [{"op": "add", "path": attribute, "value": values}]
    else:
        ops = [{"op": "add", "path": attribute, "value": [v]} for v in values]
    patch = {"schemas": [PATCH_URN], "Operations": ops}

    def run() -> object:
        result = apply_patch(
            rt, resource, parse_patch_request(patch, strict=False), options=OPTIONS
        )
        assert result is not None
        assert len(result[attribute]) >= n
        return result

    return run


def scaling_ratios(seconds: float) -> list[tuple[str, float, float, float]]:
    """(workload, seconds for 1k adds, seconds for 16k adds, ratio) per workload.

    A round times 16 PATCHes of 1k adds, then one PATCH of 16k adds (the same work if
    adding is linear), with the garbage collector off. Rounds repeat for ``seconds`` per
    workload (at least one, however slow); the best of each side is kept."""
    rows = []
    for attribute in ("emails", "members"):
        for one_op in (False, True):
            small = adds_workload(attribute, 1_000, one_op)
            large = adds_workload(attribute, 16_000, one_op)
            small()  # warm up
            best = [float("inf"), float("inf")]
            deadline = time.perf_counter() + seconds
            while best[1] == float("inf") or time.perf_counter() < deadline:
                for k, (fn, calls) in enumerate(((small, 16), (large, 1))):
                    gc.collect()
                    gc.disable()
                    t0 = time.perf_counter()
                    for _ in range(calls):
                        fn()
                    best[k] = min(best[k], time.perf_counter() - t0)
                    gc.enable()
            form = "in 1 operation" if one_op else "1 per operation"
            rows.append((f"add {attribute}, {form}", best[0] / 16, best[1], best[1] / best[0]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=4.0, help="per workload")
    parser.add_argument(
        "--no-server", action="store_true", help="skip the whole-server workload (slow to load)"
    )
    parser.add_argument(
        "--no-scaling", action="store_true", help="skip how 1k and 16k adds compare"
    )
    args = parser.parse_args()

    # -- 3-operation user PATCH --
    user_model = USER_MODEL.model_validate(USER)
    user_patch_model: Any = PatchOp[USER_MODEL]

    def ours_user(_: int) -> object:
        ops = parse_patch_request(USER_PATCH, strict=False)
        return apply_patch(USERS, USER, ops, options=OPTIONS)

    def theirs_user(_: int) -> object:
        return user_patch_model.model_validate(USER_PATCH).patch(user_model)

    # Same result on both sides.
    ours_result: Any = ours_user(0)
    assert ours_result is not None
    probe = USER_MODEL.model_validate(USER)
    user_patch_model.model_validate(USER_PATCH).patch(probe)
    assert probe.display_name == ours_result["displayName"] == "Barbara Jensen"
    assert probe.emails[0].value == ours_result["emails"][0]["value"] == "b@example.com"

    # -- 1-member add to a big group --
    group = group_with(args.members)
    group_model = Group.model_validate(group)
    group_patch_model: Any = PatchOp[Group]

    def ours_group(i: int) -> object:
        ops = parse_patch_request(add_member(i), strict=False)
        result = apply_patch(GROUPS, group, ops, options=OPTIONS)
        assert result is not None
        return result

    def theirs_group(i: int) -> object:
        return group_patch_model.model_validate(add_member(i)).patch(group_model)

    assert len(ours_group(0)["members"]) == args.members + 1  # type: ignore[index]

    workloads: list[tuple[str, Callable[[int], object], Callable[[int], object], float]] = [
        ("3-operation User PATCH", ours_user, theirs_user, 10.0),
        (f"add 1 member to a {args.members}-member group", ours_group, theirs_group, 10.0),
    ]
    if not args.no_server:
        ours_server, theirs_server = server_workloads(args.members)
        workloads.append(
            (f"server: 1-member PATCH, {args.members} members", ours_server, theirs_server, 10.0)
        )
    rows = []
    for name, ours, theirs, target in workloads:
        t_ours, t_theirs = best_per_call(ours, theirs, args.seconds)
        rows.append((name, t_ours, t_theirs, t_theirs / t_ours, target))

    print(f"{'workload':<42} {'scim2-core':>12} {'theirs':>14} {'ratio':>8}  target")
    for name, t_ours, t_theirs, ratio, target in rows:
        ok = "ok" if ratio >= target else "MISSED"
        print(
            f"{name:<42} {t_ours * 1e6:>10.1f}us {t_theirs * 1e6:>12.1f}us {ratio:>7.1f}x"
            f"  >= {target:.0f}x {ok}"
        )

    if args.no_scaling:
        return
    print()
    print(f"{'adds (parse + apply)':<42} {'1k adds':>12} {'16k adds':>14} {'ratio':>8}  target")
    for name, t_small, t_large, ratio in scaling_ratios(args.seconds):
        ok = "ok" if ratio <= 2 else "MISSED"
        print(
            f"{name:<42} {t_small * 1e3:>10.1f}ms {t_large * 1e3:>12.1f}ms {ratio:>7.2f}"
            f"   <= 2 {ok}"
        )


if __name__ == "__main__":
    main()
