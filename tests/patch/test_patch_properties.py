"""Hypothesis properties: PATCH never corrupts a resource and raises nothing but ScimError."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from patch_helpers import ENT, GROUPS, USERS, group, user
from pydantic import ValidationError
from scim2_models import EnterpriseUser, Group, User

from scim2_core import ScimError
from scim2_core._patch import PATCH_OP_URN, PatchOptions, apply_patch, parse_patch_request
from scim2_core._schema import GROUP_URN, USER_URN

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.sampled_from(
        ["", "x", "True", "False", "work", "home", "2819c223", "a@b.c", "2020-01-01T00:00:00Z"]
    )
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["value", "type", "primary", "display", "givenName", "id", "schemas", "$ref", "X"]
            ),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)
ids = st.text(alphabet="abcdef0123456789", min_size=1, max_size=6)
emails = st.lists(
    st.fixed_dictionaries(
        {"value": st.sampled_from(["a@x.org", "b@x.org", "c@y.org"])},
        optional={"type": st.sampled_from(["work", "home"]), "display": st.just("D")},
    ),
    max_size=3,
    unique_by=lambda e: e["value"],
)


@st.composite
def users(draw: st.DrawFn) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "schemas": [USER_URN],
        "id": draw(ids),
        "userName": draw(st.sampled_from(["bjensen", "alice"])),
        "meta": {"resourceType": "User", "version": 'W/"1"'},
    }
    for key, strategy in (
        ("displayName", st.sampled_from(["Babs", "B J"])),
        ("title", st.just("Guide")),
        ("active", st.booleans()),
        (
            "name",
            st.fixed_dictionaries(
                {}, optional={"givenName": st.just("B"), "familyName": st.just("J")}
            ),
        ),
        ("emails", emails),
    ):
        if draw(st.booleans()):
            value = draw(strategy)
            if value not in ({}, []):
                resource[key] = value
    if resource.get("emails") and draw(st.booleans()):
        resource["emails"][0]["primary"] = True
    if draw(st.booleans()):
        resource["schemas"].append(ENT)
        resource[ENT] = {"employeeNumber": "1", "manager": {"value": draw(ids)}}
    return resource


@st.composite
def groups(draw: st.DrawFn) -> dict[str, Any]:
    members = draw(st.lists(ids, max_size=5, unique=True))
    resource: dict[str, Any] = {
        "schemas": [GROUP_URN],
        "id": draw(ids),
        "displayName": "G",
        "meta": {"resourceType": "Group", "version": 'W/"1"'},
    }
    if members:
        resource["members"] = [{"value": m, "type": "User"} for m in members]
    return resource


PATHS = [
    "displayName",
    "title",
    "active",
    "name",
    "name.givenName",
    "emails",
    "emails.value",
    'emails[type eq "work"]',
    'emails[type eq "work"].value',
    'emails[value co "x"].primary',
    "members",
    'members[value eq "2819c223"]',
    'members[value eq "2819c223"].display',
    f"{ENT}:manager",
    f"{ENT}:manager.value",
    ENT,
    "userName",
    "id",
    "meta.version",
    "nickName",
    "unknownAttr",
    "emails[",
    "groups",
    "x509Certificates",
    "addresses[type eq 1]",
]
operations = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "Replace", "ADD", "move"])},
    optional={
        "path": st.sampled_from(PATHS) | st.text(max_size=12),
        "value": json_values,
    },
)

# Well-typed operations, so that many op lists succeed and the results get checked.
PLAUSIBLE: list[tuple[str | None, Any]] = [
    ("displayName", st.sampled_from(["Babs", "New"])),
    ("title", st.just("Guide")),
    ("active", st.booleans() | st.sampled_from(["True", "False"])),
    ("name", st.fixed_dictionaries({}, optional={"givenName": st.just("X")})),
    ("name.givenName", st.just("Y")),
    (
        "emails",
        st.lists(
            st.fixed_dictionaries(
                {"value": st.sampled_from(["a@x.org", "n@x.org"])},
                optional={"type": st.sampled_from(["work", "home"]), "primary": st.booleans()},
            ),
            max_size=2,
        ),
    ),
    ('emails[type eq "work"].value', st.sampled_from(["w@x.org", "a@x.org"])),
    ('emails[value eq "a@x.org"].primary', st.booleans()),
    ('emails[type eq "home"]', st.fixed_dictionaries({"display": st.just("H")})),
    ("emails.display", st.just("E")),
    ("members", st.lists(st.fixed_dictionaries({"value": ids}), max_size=3)),
    ('members[value eq "2819c223"].display', st.just("M")),
    (f"{ENT}:manager", ids),
    (f"{ENT}:manager.value", ids),
    (ENT, st.fixed_dictionaries({}, optional={"costCenter": st.just("1")})),
    (
        None,
        st.fixed_dictionaries(
            {},
            optional={
                "displayName": st.just("Q"),
                "name.familyName": st.just("F"),
                f"{ENT}:department": st.just("D"),
                "id": st.just("zz"),
                "active": st.booleans(),
            },
        ),
    ),
]
plausible_operations = st.sampled_from(PLAUSIBLE).flatmap(
    lambda pv: st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "replace", "remove"]), "value": pv[1]}
    ).map(lambda op: {**op, "path": pv[0]} if pv[0] is not None else op)
)
operations = plausible_operations | operations


def _run(rt: Any, resource: dict[str, Any], ops: list[dict[str, Any]], strict: bool) -> Any:
    parsed = parse_patch_request({"schemas": [PATCH_OP_URN], "Operations": ops}, strict=strict)
    return apply_patch(rt, resource, parsed, options=PatchOptions(strict=strict))


def _check_valid(model: Any, result: dict[str, Any]) -> None:
    text = json.dumps(result)  # plain JSON, nothing else
    for key, value in result.items():
        assert value not in (None, [], {}), key  # unassigned attributes are absent
        if isinstance(value, list):
            primaries = [v for v in value if isinstance(v, dict) and v.get("primary") is True]
            assert len(primaries) <= 1, key
    # scim2-models, the schema authority, accepts the result. It also checks the syntax
    # of email addresses, which the engine leaves to the application (RFC 7643 §4.1.2:
    # "Email addresses for the User"; no syntax is required of the service provider).
    try:
        model.model_validate(json.loads(text))
    except ValidationError as exc:
        others = [e for e in exc.errors() if "email address" not in e["msg"]]
        assert not others, others


@SETTINGS
@given(
    resource=users() | groups(),
    ops=st.lists(operations, min_size=1, max_size=4),
    strict=st.booleans(),
)
def test_patch_returns_valid_result_or_scim_error_and_never_mutates(
    resource: dict[str, Any], ops: list[dict[str, Any]], strict: bool
) -> None:
    is_user = resource["schemas"][0] == USER_URN
    rt = USERS if is_user else GROUPS
    before = json.dumps(resource, sort_keys=True)
    try:
        result = _run(rt, resource, ops, strict)
    except ScimError:
        pass
    else:
        if result is not None:
            _check_valid(User[EnterpriseUser] if is_user else Group, result)
    assert json.dumps(resource, sort_keys=True) == before


@SETTINGS
@given(resource=groups(), member=ids)
def test_add_then_remove_member_restores_group(resource: dict[str, Any], member: str) -> None:
    resource["members"] = [m for m in resource.get("members", []) if m["value"] != member]
    if not resource["members"]:
        del resource["members"]
    ops = [
        {"op": "add", "path": "members", "value": [{"value": member}]},
        {"op": "remove", "path": f"members[value eq {json.dumps(member)}]"},
    ]
    assert _run(GROUPS, resource, ops, strict=True) is None
    added = _run(GROUPS, resource, ops[:1], strict=True)
    assert added is not None
    assert _run(GROUPS, added, ops[1:], strict=True) == resource


@SETTINGS
@given(resource=users(), address=st.sampled_from(["new@x.org", "other@y.org"]))
def test_add_then_remove_email_restores_user(resource: dict[str, Any], address: str) -> None:
    ops = [
        {"op": "add", "path": "emails", "value": [{"value": address, "type": "other"}]},
        {"op": "remove", "path": f"emails[value eq {json.dumps(address)}]"},
    ]
    assert _run(USERS, resource, ops, strict=True) is None


@SETTINGS
@given(
    message=json_values
    | st.dictionaries(
        st.sampled_from(["schemas", "Operations", "operations"]),
        json_values | st.lists(json_values),
    )
)
def test_any_body_raises_only_scim_error(message: Any) -> None:
    for strict in (False, True):
        try:
            ops = parse_patch_request(message, strict=strict)
            apply_patch(USERS, user(), ops, options=PatchOptions(strict=strict))
            apply_patch(GROUPS, group(), ops, options=PatchOptions(strict=strict))
        except ScimError:
            pass


@SETTINGS
@given(ops=st.lists(operations, min_size=1, max_size=4))
def test_any_operations_in_a_valid_message_raise_only_scim_error(
    ops: list[dict[str, Any]],
) -> None:
    for strict in (False, True):
        for rt, resource in ((USERS, user()), (GROUPS, group())):
            with contextlib.suppress(ScimError):
                _run(rt, resource, ops, strict)
