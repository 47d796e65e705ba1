"""A list of objects is normalised once per shape of object (its keys), not key by key per
object (a 10k-member group): the result, and the error, are those of the general way."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scim2_core import Attribute, InvalidValueError
from scim2_core.schema import normalize_value

MEMBERS = Attribute(
    name="members",
    type="complex",
    multi_valued=True,
    sub_attributes=(
        Attribute(name="value", case_exact=True),
        Attribute(name="$ref", type="reference"),
        Attribute(name="type"),
        Attribute(name="display"),
        Attribute(name="weight", type="integer"),
        Attribute(name="tags", multi_valued=True),
    ),
)

KEYS = st.sampled_from(
    ["value", "Value", "VALUE", "$ref", "type", "display", "weight", "tags", "x"]
)
SCALARS = st.one_of(
    st.text(max_size=3),
    st.integers(-3, 3),
    st.booleans(),
    st.none(),
    st.lists(st.text(), max_size=2),
)


def _one_by_one(attr: Attribute, items: list[Any]) -> list[Any] | str:
    """The general way: each object alone (a list of one never meets a shape twice, and
    the shape's plan is only taken for objects of strings)."""
    out: list[Any] = []
    for item in items:
        try:
            out.extend(normalize_value(attr, [dict(item)] if isinstance(item, dict) else [item]))
        except InvalidValueError as exc:
            return str(exc)
    return out


@settings(deadline=None)  # deterministic: a time limit per example would time the machine
@given(st.lists(st.one_of(st.dictionaries(KEYS, SCALARS, max_size=4), st.none()), max_size=8))
def test_objects_of_one_shape_normalise_as_each_alone(items: list[Any]) -> None:
    try:
        got: list[Any] | str = normalize_value(MEMBERS, items)
    except InvalidValueError as exc:
        got = str(exc)
    assert got == _one_by_one(MEMBERS, items)


def test_a_shape_seen_before_with_another_kind_of_value_goes_the_general_way() -> None:
    got = normalize_value(
        MEMBERS, [{"Value": "a", "weight": "2"}, {"Value": "b", "weight": 3}, {"x": "y"}]
    )
    assert got == [{"value": "a", "weight": 2}, {"value": "b", "weight": 3}]
    renamed = normalize_value(MEMBERS, [{"VALUE": "a", "x": "drop", "$REF": "u"}] * 2)
    assert renamed == [{"value": "a", "$ref": "u"}] * 2
