"""Many adds to one multi-valued attribute: the index kept between operations.

A PATCH of N adds must cost O(N) (a hostile client sent 17,959 email adds in 1 MiB), and
the index that makes it so must never change a result: the same operations applied in one
PATCH (the index kept from one operation to the next) and one per PATCH (rebuilt each
time) give the same resource, or the same error. Speed is measured in
benchmarks/patch.py, not here.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from patch_helpers import GROUPS, USERS, body, group, user

from scim2_core import ScimError
from scim2_core.patch import PatchOptions, apply_patch, parse_patch_request
from scim2_core.schema import ResourceType

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPTIONS = PatchOptions()

# emails.value and emails.type are not caseExact: "A@X.org" is "a@x.org".
addresses = st.sampled_from(["a@x.org", "A@X.org", "b@x.org", "B@x.ORG", "c@y.org", "d@y.org"])
email_values = st.fixed_dictionaries(
    {"value": addresses},
    optional={
        "type": st.sampled_from(["work", "WORK", "home"]),
        "primary": st.just(False),
        "display": st.sampled_from(["D", "d"]),
    },
)
# A value without ``value`` is compared whole.
valueless_emails = st.fixed_dictionaries(
    {"type": st.sampled_from(["work", "home"])}, optional={"display": st.just("D")}
)


@st.composite
def email_adds(draw: st.DrawFn) -> dict[str, Any]:
    """An add of a few emails, the first maybe primary (two would be a 400)."""
    items = draw(st.lists(email_values | valueless_emails, min_size=1, max_size=6))
    if draw(st.booleans()):
        items[0] = {**items[0], "primary": True}
    return {"op": "add", "path": "emails", "value": items}


other_email_ops = st.sampled_from(
    [
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "a@x.org"},
        {"op": "replace", "path": 'emails[value eq "A@x.org"].value', "value": "e@x.org"},
        {"op": "replace", "path": 'emails[value eq "b@x.org"].primary', "value": True},
        {"op": "remove", "path": 'emails[value eq "a@x.org"]'},
        {"op": "remove", "path": "emails", "value": [{"value": "c@y.org"}]},
        {"op": "replace", "path": "emails.display", "value": "E"},
        {"op": "replace", "path": "emails", "value": [{"value": "z@x.org", "primary": True}]},
        {"op": "remove", "path": "emails"},
    ]
)
member_ids = st.sampled_from(["m1", "M1", "m2", "m3", "m4", "m5", "m6"])  # caseExact
member_adds = st.builds(
    lambda ids: {"op": "add", "path": "members", "value": [{"value": i} for i in ids]},
    st.lists(member_ids, min_size=1, max_size=6),
)
other_member_ops = st.sampled_from(
    [
        {"op": "remove", "path": 'members[value eq "m2"]'},
        {"op": "remove", "path": "members", "value": [{"value": "m3"}]},
        {"op": "replace", "path": 'members[value eq "m1"].display', "value": "One"},
        {"op": "add", "path": 'members[value eq "m9"]', "value": {"display": "Nine"}},
    ]
)


def _apply(rt: ResourceType, resource: dict[str, Any], ops: list[dict[str, Any]]) -> Any:
    """The resource after one PATCH of ``ops``, or the type of the error it answers."""
    try:
        parsed = parse_patch_request(body(*ops), strict=False)
        result = apply_patch(rt, resource, parsed, options=OPTIONS)
    except ScimError as exc:
        return type(exc)
    return resource if result is None else result


def _one_per_patch(rt: ResourceType, resource: dict[str, Any], ops: list[dict[str, Any]]) -> Any:
    for op in ops:
        after = _apply(rt, resource, [op])
        if isinstance(after, type):
            return after
        resource = after
    return resource


@SETTINGS
@given(ops=st.lists(email_adds() | other_email_ops, min_size=1, max_size=40), start=st.booleans())
# A moved primary changes a value without ``value``, which is compared whole.
@example(
    ops=[
        {"op": "add", "path": "emails", "value": [{"type": "home", "primary": True}]},
        *[{"op": "add", "path": "emails", "value": [{"display": f"{i}"}]} for i in range(5)],
        {"op": "add", "path": "emails", "value": [{"value": "a@x.org", "primary": True}]},
        {"op": "add", "path": "emails", "value": [{"type": "home", "primary": True}]},
    ],
    start=False,
)
def test_emails_in_one_patch_as_one_per_patch(ops: list[dict[str, Any]], start: bool) -> None:
    resource = user() if start else user(emails=None)
    assert _apply(USERS, resource, ops) == _one_per_patch(USERS, resource, ops)


@SETTINGS
@given(ops=st.lists(member_adds | other_member_ops, min_size=1, max_size=40), start=st.booleans())
def test_members_in_one_patch_as_one_per_patch(ops: list[dict[str, Any]], start: bool) -> None:
    resource = group() if start else group(members=None)
    assert _apply(GROUPS, resource, ops) == _one_per_patch(GROUPS, resource, ops)


def _same_email(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Every sub-attribute of ``new`` already in ``old`` (strings ignoring case)."""
    for key, value in new.items():
        have = old.get(key)
        if isinstance(value, str) and isinstance(have, str):
            if value.lower() != have.lower():
                return False
        elif key not in old or have != value:
            return False
    return True


def _expected_emails(adds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """RFC 7644 §3.5.2.1 by hand, one email per operation: an address already there (in
    any case) is merged into, not duplicated; ``primary: true`` moves the primary."""
    emails: list[dict[str, Any]] = []
    for new in adds:
        at = next(
            (i for i, e in enumerate(emails) if e["value"].lower() == new["value"].lower()), None
        )
        if at is None:
            emails.append(new)
            at = len(emails) - 1
        elif _same_email(emails[at], new):
            continue
        else:
            emails[at] = {**emails[at], **new}
        if new.get("primary") is True:
            emails = [
                {**e, "primary": False} if i != at and e.get("primary") is True else e
                for i, e in enumerate(emails)
            ]
    return emails


@SETTINGS
@given(adds=st.lists(email_values, min_size=1, max_size=60))
def test_one_email_per_operation_follows_rfc_7644_add(adds: list[dict[str, Any]]) -> None:
    ops = [{"op": "add", "path": "emails", "value": [e]} for e in adds]
    after = _apply(USERS, user(emails=None), ops)
    assert after["emails"] == _expected_emails(adds)


@pytest.mark.parametrize("per_op", [1, 7, 2000])
def test_thousands_of_adds_keep_each_address_once_and_one_primary(per_op: int) -> None:
    """2,000 adds: 1,000 addresses, every 10th primary, then each again in upper case."""
    emails = [{"value": f"u{i}@x.org", "primary": i % 10 == 0} for i in range(1000)]
    emails += [{"value": f"U{i}@X.ORG", "type": "work"} for i in range(1000)]
    ops = [
        {"op": "add", "path": "emails", "value": emails[i : i + per_op]}
        for i in range(0, len(emails), per_op)
    ]
    after = _apply(USERS, user(emails=None), ops)
    if per_op == 2000:
        # Two primaries in one operation: RFC 7643 §2.4, 400 invalidValue.
        assert after.__name__ == "InvalidValueError"
        return
    assert [e["value"] for e in after["emails"]] == [f"u{i}@x.org".upper() for i in range(1000)]
    assert all(e["type"] == "work" for e in after["emails"])
    assert [i for i, e in enumerate(after["emails"]) if e["primary"]] == [990]


def test_thousands_of_member_adds_in_separate_operations() -> None:
    ops = [
        {"op": "add", "path": "members", "value": [{"value": f"m{i % 3000}"}]} for i in range(6000)
    ]
    after = _apply(GROUPS, group(members=None), ops)
    assert [m["value"] for m in after["members"]] == [f"m{i}" for i in range(3000)]


def test_a_value_sent_twice_in_one_add_is_one_primary() -> None:
    """RFC 7643 §2.4 limits primary to one *value*: an address sent twice in one add (the
    second time in upper case, so it merges into the first) is one value, not two."""
    ops = [
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "a@x.org", "primary": True}, {"value": "A@X.ORG", "type": "work"}],
        }
    ]
    after = _apply(USERS, user(), ops)
    assert after["emails"] == [
        {"value": "bjensen@example.com", "type": "work", "primary": False},
        {"value": "babs@jensen.org", "type": "home"},
        {"value": "A@X.ORG", "primary": True, "type": "work"},
    ]
    # Two values, each primary, in one add stay a client error.
    two = [
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "a@x.org", "primary": True}, {"value": "b@x.org", "primary": True}],
        }
    ]
    assert _apply(USERS, user(), two).__name__ == "InvalidValueError"
