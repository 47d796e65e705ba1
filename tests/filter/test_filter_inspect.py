"""The filter inspection helpers: conjuncts, mentions, simple_eq."""

from __future__ import annotations

import pytest
from filter_helpers import USERS, filters
from hypothesis import given

from scim2_core.filter import (
    And,
    AttrPath,
    Filter,
    Not,
    Or,
    ValuePath,
    bind,
    conjuncts,
    mentions,
    parse_filter,
    simple_eq,
)


def _bound(text: str) -> Filter:
    return bind(parse_filter(text), USERS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "a"', ['userName eq "a"']),
        ('userName eq "a" and active eq true', ['userName eq "a"', "active eq true"]),
        (
            'userName eq "a" and (title pr or nickName pr) and not (active eq true)',
            ['userName eq "a"', "title pr or nickName pr", "not (active eq true)"],
        ),
        ('userName eq "a" or title pr', ['userName eq "a" or title pr']),
        ('emails[type eq "work" and value pr]', ['emails[type eq "work" and value pr]']),
    ],
)
def test_conjuncts_splits_only_the_top_and_chain(text: str, expected: list[str]) -> None:
    assert [str(part) for part in conjuncts(_bound(text))] == expected


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ('groups eq "g1"', "groups", True),
        ('userName eq "a" and groups.display sw "x"', "groups", True),
        ('userName eq "a" or not (groups pr)', "groups", True),
        ('groups[display eq "admins"]', "groups", True),
        ('userName eq "a"', "groups", False),
        # Inside brackets the paths are sub-attributes of emails, not resource attributes.
        ('emails[value eq "groups"]', "groups", False),
        ('emails[type eq "work"]', "type", False),
        # An extension attribute of that name is not the core one.
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager pr",
            "manager",
            False,
        ),
    ],
)
def test_mentions(text: str, name: str, expected: bool) -> None:
    assert mentions(_bound(text), name) is expected


def test_mentions_an_extension_attribute_by_urn() -> None:
    urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    tree = _bound(f'userName eq "a" and {urn}:department eq "x"')
    assert mentions(tree, "department", urn=urn)
    assert not mentions(tree, "department")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "bjensen"', (AttrPath(None, "userName"), "bjensen")),
        ('name.familyName eq ""', (AttrPath(None, "name", "familyName"), "")),
        ('userName ne "bjensen"', None),
        ("active eq true", None),
        ("userName eq null", None),
        ('userName eq "a" and title eq "b"', None),
        ('not (userName eq "a")', None),
        ('emails[value eq "a"]', None),
        ("userName pr", None),
    ],
)
def test_simple_eq(text: str, expected: tuple[AttrPath, str] | None) -> None:
    assert simple_eq(_bound(text)) == expected


def test_simple_eq_reads_the_inside_of_a_value_path() -> None:
    tree = parse_filter('members[value eq "2819c223"]')
    assert isinstance(tree, ValuePath)
    assert simple_eq(tree.filter) == (AttrPath(None, "value"), "2819c223")


def test_deep_trees_do_not_recurse() -> None:
    leaf = parse_filter('title eq "x"')
    deep: Filter = leaf
    for _ in range(5000):
        deep = Not(Or(deep, leaf))
    assert not mentions(deep, "groups")
    chain: Filter = leaf
    for _ in range(5000):
        chain = And(chain, leaf)
    assert len(conjuncts(chain)) == 5001


def _mentions_oracle(node: Filter, name: str) -> bool:
    if isinstance(node, (And, Or)):
        return _mentions_oracle(node.left, name) or _mentions_oracle(node.right, name)
    if isinstance(node, Not):
        return _mentions_oracle(node.operand, name)
    return node.path.urn is None and node.path.name == name


@given(filters())
def test_conjuncts_rebuild_the_and_chain(tree: Filter) -> None:
    parts = conjuncts(tree)
    assert parts
    assert not any(isinstance(p, And) for p in parts)
    rebuilt = parts[0]
    for part in parts[1:]:
        rebuilt = And(rebuilt, part)
    # Same operands in the same order; only the grouping of the and-chain may differ.
    assert conjuncts(rebuilt) == parts
    if not isinstance(tree, And):
        assert parts == [tree]


@given(filters())
def test_mentions_agrees_with_a_recursive_reading(tree: Filter) -> None:
    for name in ("a", "userName", "emails", "not"):
        assert mentions(tree, name) is _mentions_oracle(tree, name)
