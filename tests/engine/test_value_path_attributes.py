"""``attributes`` naming a value path (``emails[type eq "work"]``), as Microsoft's SCIM
validator sends it: only the matching values are returned."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scim2_core.engine._projection import split_attribute_list
from tests.helpers import ENTERPRISE, call, create_user, make_engine

WORK = {"value": "work@example.com", "type": "work"}
HOME = {"value": "home@example.com", "type": "home", "primary": True}


@pytest.mark.parametrize(
    ("attributes", "emails"),
    [
        ('emails[type eq "work"]', [WORK]),
        ('emails[value eq "home@example.com"]', [HOME]),
        ('emails[type eq "work"].value', [{"value": "work@example.com"}]),
        ('emails[type eq "work" or primary eq true]', [WORK, HOME]),
        ('emails[type eq "work"],emails[type eq "home"]', [WORK, HOME]),
        ('emails[type eq "work"],emails', [WORK, HOME]),
        ('EMAILS[TYPE eq "WORK"]', [WORK]),  # names and caseExact=false values ignore case
        ('emails[type eq "other"]', None),
    ],
)
def test_value_path_in_attributes(attributes: str, emails: list[dict[str, Any]] | None) -> None:
    engine = make_engine()
    user = create_user(engine, "bjensen", emails=[WORK, HOME], nickName="Babs")
    single = call(engine, "GET", f"/Users/{user['id']}", query={"attributes": attributes}).json
    listed = call(engine, "GET", "/Users", query={"attributes": attributes}).json
    for body in (single, listed["Resources"][0]):
        assert body.get("emails") == emails
        assert "nickName" not in body and "userName" not in body
        assert body["id"] == user["id"]


def test_value_path_beside_plain_names_and_extensions() -> None:
    engine = make_engine()
    user = create_user(
        engine, "bjensen", emails=[WORK, HOME], **{ENTERPRISE: {"department": "Tour"}}
    )
    query = {"attributes": f'userName,emails[type eq "home"].value,{ENTERPRISE}:department'}
    body = call(engine, "GET", f"/Users/{user['id']}", query=query).json
    assert body["userName"] == "bjensen"
    assert body["emails"] == [{"value": "home@example.com"}]
    assert body[ENTERPRISE] == {"department": "Tour"}


@pytest.mark.parametrize(
    "attributes", ["emails[bogus", 'userName[value eq "x"]', 'nope[value eq "x"]']
)
def test_invalid_value_paths_are_ignored_like_unknown_names(attributes: str) -> None:
    engine = make_engine()
    user = create_user(engine, "bjensen", emails=[WORK])
    result = call(engine, "GET", f"/Users/{user['id']}", query={"attributes": attributes})
    assert result.status == 200
    assert "emails" not in result.json and result.json["id"] == user["id"]


def test_excluded_attributes_ignore_value_paths() -> None:
    engine = make_engine()
    user = create_user(engine, "bjensen", emails=[WORK, HOME])
    query = {"excludedAttributes": 'emails[type eq "work"]'}
    body = call(engine, "GET", f"/Users/{user['id']}", query=query).json
    assert body["emails"] == [WORK, HOME]


def test_commas_inside_a_value_filter_do_not_split_the_list() -> None:
    assert split_attribute_list('emails[value eq "a,b"],userName') == [
        'emails[value eq "a,b"]',
        "userName",
    ]
    assert split_attribute_list('emails[value eq "a\\",b"], name') == [
        'emails[value eq "a\\",b"]',
        "name",
    ]
    assert split_attribute_list("userName, name.givenName") == ["userName", "name.givenName"]


_types = st.sampled_from(["work", "home", "other", "Work"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(_types, st.booleans()), min_size=1, max_size=5),
    _types,
)
def test_only_the_matching_values_come_back(kinds: list[tuple[str, bool]], wanted: str) -> None:
    engine = make_engine()
    emails = [{"value": f"u{i}@example.com", "type": t} for i, (t, _) in enumerate(kinds)]
    user = create_user(engine, "bjensen", emails=emails)
    query = {"attributes": f'emails[type eq "{wanted}"].value'}
    body = call(engine, "GET", f"/Users/{user['id']}", query=query).json
    # RFC 7643 §4.1.2: emails.type is caseExact false, so "Work" matches "work".
    expected = [{"value": e["value"]} for e in emails if e["type"].lower() == wanted.lower()]
    assert body.get("emails", []) == expected
