"""The engine's cache of bound filters answers exactly what parsing and binding answer."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from scim2_core import InvalidFilterError
from scim2_core.engine._query import _bound_filter
from scim2_core.filter import bind, parse_filter
from tests.helpers import make_engine

ENGINE = make_engine()
STATE = ENGINE._state
PATHS = [
    "userName",
    "USERNAME",
    "emails",
    "emails.value",
    "Emails.Type",
    "name.familyName",
    "name",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "meta.created",
    "meta.lastModified",
    "active",
    "id",
    "externalId",
    "password",
    "groups",
    "groups.display",
    "schemas",
    "members.value",
    "displayName",
    "nosuch",
]
OPS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["2011-05-13T04:42:34Z", "2011-05-13T04:42:34.0005Z", "true", "True"]),
)


def _reference(text: str, type_name: str) -> object:
    try:
        return bind(parse_filter(text, tolerant=True), STATE.by_name[type_name])
    except InvalidFilterError as exc:
        return exc.detail


def _cached(text: str, type_name: str) -> object:
    try:
        return _bound_filter(STATE, STATE.by_name[type_name], text)
    except InvalidFilterError as exc:
        return exc.detail


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(PATHS),
            st.sampled_from(OPS),
            VALUES,
            st.sampled_from(["User", "Group"]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_cached_binding_is_the_binding(asked: list[tuple[str, str, str, str]]) -> None:
    # Each list asks again and again with other values: the answers never drift.
    for path, op, value, type_name in asked * 2:
        text = f"{path} {op} {json.dumps(value)}"
        assert _cached(text, type_name) == _reference(text, type_name), text
