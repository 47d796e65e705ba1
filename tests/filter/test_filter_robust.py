"""Compiled predicates read stored data defensively: any JSON shape, never an exception."""

from __future__ import annotations

from typing import Any

from filter_helpers import (
    ENT,
    USERS,
    attr_paths,
    bjensen,
    filters,
    inner_filters,
    normal_form,
    valid_filters,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim2_core import InvalidFilterError, InvalidPathError
from scim2_core.filter import (
    AttrPath,
    Filter,
    PatchPath,
    bind,
    bind_path,
    compile_filter,
    parse_filter,
    parse_path,
    sort_key,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["value", "type", "primary", "givenName", "lastModified"]),
            children,
            max_size=3,
        )
    ),
    max_leaves=8,
)
KEYS = ["userName", "name", "emails", "roles", "active", "meta", "schemas", "title", ENT, "id"]
junk_resources = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(valid_filters, junk_resources)
def test_predicates_never_raise(text: str, resource: dict[str, Any]) -> None:
    result = compile_filter(parse_filter(text), USERS)(resource)
    assert result is True or result is False


@settings(max_examples=200)
@given(
    st.sampled_from(
        [
            "userName",
            "name.givenName",
            "emails",
            "emails.value",
            "active",
            "meta.lastModified",
            f"{ENT}:manager.value",
            "id",
        ]
    ),
    st.booleans(),
    st.lists(junk_resources, max_size=6),
)
def test_sort_key_never_raises(path: str, descending: bool, rows: list[dict[str, Any]]) -> None:
    key = sort_key(USERS.resolve_path(path), descending=descending)
    ordered = sorted(rows, key=key, reverse=descending)
    assert len(ordered) == len(rows)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(filters())
def test_any_tree_binds_or_fails_cleanly(tree: Filter) -> None:
    """Random trees (unknown names, odd values, any operator): bind and compile either
    succeed or raise InvalidFilterError; a compiled predicate answers a bool."""
    try:
        predicate = compile_filter(tree, USERS)
    except InvalidFilterError:
        return
    assert predicate(bjensen()) in (True, False)
    assert bind(bind(tree, USERS), USERS) == bind(tree, USERS)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(attr_paths(), st.none() | inner_filters, st.none() | st.sampled_from(["value", "x"]))
def test_any_patch_path_binds_or_fails_cleanly(
    attr: AttrPath, inner: Filter | None, sub: str | None
) -> None:
    path = PatchPath(attr, inner, sub if inner is not None else None)
    try:
        bound = bind_path(path, USERS)
    except InvalidPathError:
        return
    assert bind_path(bound, USERS) == bound
    normal = (
        bound if bound.filter is None else PatchPath(bound.attr, normal_form(bound.filter), sub)
    )
    assert parse_path(str(bound), max_depth=200) == normal
