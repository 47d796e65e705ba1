"""Shared data and hypothesis strategies of the filter tests."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import scim2_models
from hypothesis import strategies as st

from scim2_core.filter import (
    And,
    AttrPath,
    Compare,
    CompareOp,
    Filter,
    Not,
    Or,
    Present,
    Value,
    ValuePath,
)
from scim2_core.schema import (
    ENTERPRISE_USER_URN,
    USER_URN,
    format_datetime,
    resource_type_from_model,
)

USER_MODEL = scim2_models.User[scim2_models.EnterpriseUser]
USERS = resource_type_from_model(USER_MODEL)
ENT = ENTERPRISE_USER_URN


def bjensen() -> dict[str, Any]:
    """RFC 7643 §8.2's full User, in canonical form (trimmed to what the filters read)."""
    return {
        "schemas": [USER_URN, ENT],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {
            "formatted": "Ms. Barbara J Jensen, III",
            "familyName": "Jensen",
            "givenName": "Barbara",
        },
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "profileUrl": "https://login.example.com/bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "userType": "Employee",
        "title": "Tour Guide",
        "active": True,
        "roles": [{"value": "admin", "primary": False}],
        "x509Certificates": [{"value": "aGVsbG8="}],
        ENT: {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John"},
        },
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22.000Z",
            "lastModified": "2011-05-13T04:42:34.000Z",
            "version": 'W/"3"',
            "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
        },
    }


# --- Arbitrary ASTs (for the round trip) ------------------------------------------------

_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"


def _names() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["userName", "name", "emails", "meta", "title", "$ref", "value"]),
        st.builds(
            lambda first, rest: first + rest,
            st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            st.text(_NAME_CHARS, max_size=8),
        ),
    )


_keyword_names = st.sampled_from(["not", "and", "or", "eq", "pr", "true", "null", "NOT"])

urns = st.sampled_from(
    [USER_URN, ENT, "urn:ietf:params:scim:schemas:extension:Acme:2.0:x-y_z", "URN:a:b"]
)

values: st.SearchStrategy[Value] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)

ops: st.SearchStrategy[CompareOp] = st.sampled_from(
    ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
)


def attr_paths(relative: bool = False) -> st.SearchStrategy[AttrPath]:
    names = st.one_of(_names(), _keyword_names)
    if relative:
        return st.builds(AttrPath, st.none(), names, st.none())
    return st.builds(AttrPath, st.none() | urns, names, st.none() | _names())


def _leaves(relative: bool) -> st.SearchStrategy[Filter]:
    paths = attr_paths(relative)
    return st.one_of(st.builds(Compare, paths, ops, values), st.builds(Present, paths))


def _combine(children: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
    return st.one_of(
        st.builds(And, children, children),
        st.builds(Or, children, children),
        st.builds(Not, children),
    )


inner_filters = st.recursive(_leaves(True), _combine, max_leaves=6)


def filters() -> st.SearchStrategy[Filter]:
    value_paths = st.builds(
        ValuePath, st.builds(AttrPath, st.none() | urns, _names(), st.none()), inner_filters
    )
    return st.recursive(_leaves(False) | value_paths, _combine, max_leaves=12)


def normal_form(tree: Filter) -> Filter:
    """The tree the parser returns for a filter meaning ``tree``, written independently of
    the parser: ``not (not (x))`` is ``x``, and every chain of one operator (through any
    grouping) is the balanced tree of its operands."""
    if isinstance(tree, Not):
        inner = normal_form(tree.operand)
        return inner.operand if isinstance(inner, Not) else Not(inner)
    if isinstance(tree, (And, Or)):
        cls = type(tree)
        operands: list[Filter] = []
        for child in (tree.left, tree.right):
            child = normal_form(child)
            if isinstance(child, cls):
                operands.extend(_chain(child, cls))
            else:
                operands.append(child)
        return _balanced(operands, cls)
    if isinstance(tree, ValuePath):
        return ValuePath(tree.path, normal_form(tree.filter))
    return tree


def _balanced(operands: list[Filter], cls: type[And] | type[Or]) -> Filter:
    # Halves, the left one taking the odd operand: a and b and c is And(And(a, b), c).
    if len(operands) == 1:
        return operands[0]
    mid = (len(operands) + 1) // 2
    return cls(_balanced(operands[:mid], cls), _balanced(operands[mid:], cls))


def _chain(tree: Filter, cls: type[And] | type[Or]) -> list[Filter]:
    if isinstance(tree, cls):
        return [*_chain(tree.left, cls), *_chain(tree.right, cls)]
    return [tree]


def depth(tree: Filter) -> int:
    """The depth the parser bounds with ``max_depth``: a comparison is 1 deep."""
    if isinstance(tree, (And, Or)):
        return 1 + max(depth(tree.left), depth(tree.right))
    if isinstance(tree, Not):
        return 1 + depth(tree.operand)
    if isinstance(tree, ValuePath):
        return 1 + depth(tree.filter)
    return 1


# --- Valid filters and users over User[EnterpriseUser] (for the differential test) -------

_WORDS = [
    "",
    "a",
    "A",
    "ab",
    "Ab",
    "bjensen",
    "BJensen",
    "jensen",
    "é",
    "É",
    "ß",
    "SS",
    "İ",
    "x@example.com",
]
_DATES = [
    dt.datetime(2011, 5, 13, 4, 42, 34, tzinfo=dt.UTC),
    dt.datetime(2011, 5, 13, 4, 42, 34, 500000, tzinfo=dt.UTC),
    dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
]
# (attribute path, kind): the attributes the differential filters use.
STRING_PATHS = [
    "userName",
    "displayName",
    "nickName",
    "title",
    "userType",
    "externalId",
    "name.familyName",
    "name.givenName",
    "emails.type",
    "emails.display",
    "phoneNumbers.value",
    f"{ENT}:employeeNumber",
    f"{ENT}:manager.value",
    "roles.value",
]
words = st.sampled_from(_WORDS)
dates = st.sampled_from(_DATES)


def _string_compare() -> st.SearchStrategy[str]:
    return st.builds(
        lambda p, op, w: f"{p} {op} {json.dumps(w)}",
        st.sampled_from(STRING_PATHS),
        ops,
        words,
    )


def _valid_leaf() -> st.SearchStrategy[str]:
    date_text = st.builds(
        lambda d, form: d.isoformat() if form else format_datetime(d), dates, st.booleans()
    )
    return st.one_of(
        _string_compare(),
        st.builds(
            lambda p, op, d: f'{p} {op} "{d}"',
            st.sampled_from(["meta.lastModified", "meta.created"]),
            st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]),
            date_text,
        ),
        st.builds(
            lambda p, op, b: f"{p} {op} {'true' if b else 'false'}",
            st.sampled_from(["active", "emails.primary", "roles.primary"]),
            st.sampled_from(["eq", "ne"]),
            st.booleans(),
        ),
        st.builds(
            lambda p: f"{p} pr",
            st.sampled_from([*STRING_PATHS, "active", "name", "emails", "meta.lastModified"]),
        ),
        st.builds(
            lambda t, v: f'emails[type eq "{t}" and value co "{v}"]',
            st.sampled_from(["work", "home", "WORK"]),
            st.sampled_from(["example", "@x", "EXAMPLE"]),
        ),
        st.builds(
            lambda t: f'emails[type eq "{t}" or not (primary eq true)]',
            st.sampled_from(["work", "home"]),
        ),
        st.builds(
            lambda t, v: f'emails[type eq "{t}"].value eq "{v}"',
            st.sampled_from(["work", "home"]),
            st.sampled_from(["x@example.com", "X@example.com", "bjensen@example.com"]),
        ),
        st.builds(
            lambda op, w: f"{USER_URN}:userName {op} {json.dumps(w)}",
            st.sampled_from(["eq", "sw", "gt"]),
            words,
        ),
        st.builds(
            lambda p, op: f"{p} {op} null",
            st.sampled_from(["nickName", "name.givenName", f"{ENT}:employeeNumber", "active"]),
            st.sampled_from(["eq", "ne"]),
        ),
        # A multi-valued complex attribute without sub-attribute compares its "value".
        st.builds(
            lambda pv, op: f"{pv[0]} {op} {json.dumps(pv[1])}",
            st.one_of(
                st.tuples(
                    st.just("emails"),
                    st.sampled_from(["x@example.com", "X@EXAMPLE.com", "bjensen@example.com"]),
                ),
                st.tuples(st.just("roles"), words),
                st.tuples(st.just("schemas"), st.sampled_from([ENT, USER_URN, "urn:x", "URN"])),
            ),
            st.sampled_from(["eq", "co", "sw", "ew", "gt", "le"]),
        ),
        st.builds(
            lambda p, op: f"{p} {op}",
            st.sampled_from(["emails", "roles", "name", f"{ENT}:manager", "meta"]),
            st.just("pr"),
        ),
    )


def _valid_combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, b: f"({a}) and ({b})", children, children),
        st.builds(lambda a, b: f"({a}) or ({b})", children, children),
        st.builds(lambda a: f"not ({a})", children),
    )


valid_filters = st.recursive(_valid_leaf(), _valid_combine, max_leaves=5)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | value


def _multi(item: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    # Canonical resources hold no empty values ({} is unassigned, RFC 7643 §2.5).
    return st.none() | st.lists(item.filter(bool), max_size=3)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


_typed_values = st.builds(
    lambda v, t, p, d: _drop_none({"value": v, "type": t, "primary": p, "display": d}),
    _maybe(words.filter(bool)),
    _maybe(st.sampled_from(["work", "home", "Work"])),
    _maybe(st.booleans()),
    _maybe(words.filter(bool)),
)
_emails = st.builds(
    lambda local, t, p: _drop_none(
        {"value": f"{local}@example.com" if local else None, "type": t, "primary": p}
    ),
    _maybe(st.sampled_from(["x", "bjensen", "X"])),
    _maybe(st.sampled_from(["work", "home", "Work"])),
    _maybe(st.booleans()),
)

users = st.builds(
    lambda user_name, display, nick, title, user_type, ext_id, name, emails, phones, roles, active, created, modified, ent: (
        _drop_none(
            {
                "schemas": [USER_URN, ENT] if ent else [USER_URN],
                "id": "u1",
                "userName": user_name,
                "displayName": display,
                "nickName": nick,
                "title": title,
                "userType": user_type,
                "externalId": ext_id,
                "name": name,
                "emails": emails,
                "phoneNumbers": phones,
                "roles": roles,
                "active": active,
                "meta": _drop_none(
                    {
                        "resourceType": "User",
                        "created": format_datetime(created) if created else None,
                        "lastModified": format_datetime(modified) if modified else None,
                    }
                ),
                ENT: ent,
            }
        )
    ),
    words.filter(bool),
    _maybe(words),
    _maybe(words),
    _maybe(words),
    _maybe(words),
    _maybe(words),
    _maybe(
        st.builds(
            lambda f, g: _drop_none({"familyName": f, "givenName": g}) or None,
            _maybe(words),
            _maybe(words),
        )
    ),
    _multi(_emails),
    _multi(_typed_values),
    _multi(_typed_values),
    _maybe(st.booleans()),
    _maybe(dates),
    _maybe(dates),
    _maybe(
        st.builds(
            lambda n, m: _drop_none({"employeeNumber": n, "manager": m}) or None,
            _maybe(words),
            _maybe(st.builds(lambda v: {"value": v}, words.filter(bool))),
        )
    ),
)
