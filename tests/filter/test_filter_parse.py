"""parse_filter / parse_path: RFC 7644 Figure 1 and Figure 7, as tables of cases."""

from __future__ import annotations

import contextlib
import json

import pytest
from filter_helpers import ENT, depth, filters, normal_form, ops
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim2_core import InvalidFilterError, InvalidPathError
from scim2_core.filter import (
    And,
    AttrPath,
    Compare,
    Filter,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
    parse_filter,
    parse_path,
)

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def P(name: str, sub: str | None = None, urn: str | None = None) -> AttrPath:
    return AttrPath(urn, name, sub)


def eq(path: AttrPath, value: object, op: str = "eq") -> Compare:
    return Compare(path, op, value)  # type: ignore[arg-type]


# RFC 7644 §3.4.2.2, Figure 2: every example filter, with the tree it parses to.
FIGURE_2: list[tuple[str, Filter]] = [
    ('userName eq "bjensen"', eq(P("userName"), "bjensen")),
    ('name.familyName co "O\'Malley"', eq(P("name", "familyName"), "O'Malley", "co")),
    ('userName sw "J"', eq(P("userName"), "J", "sw")),
    (f'{USER}:userName sw "J"', eq(P("userName", urn=USER), "J", "sw")),
    ("title pr", Present(P("title"))),
    (
        'meta.lastModified gt "2011-05-13T04:42:34Z"',
        eq(P("meta", "lastModified"), "2011-05-13T04:42:34Z", "gt"),
    ),
    (
        'meta.lastModified ge "2011-05-13T04:42:34Z"',
        eq(P("meta", "lastModified"), "2011-05-13T04:42:34Z", "ge"),
    ),
    (
        'meta.lastModified lt "2011-05-13T04:42:34Z"',
        eq(P("meta", "lastModified"), "2011-05-13T04:42:34Z", "lt"),
    ),
    (
        'meta.lastModified le "2011-05-13T04:42:34Z"',
        eq(P("meta", "lastModified"), "2011-05-13T04:42:34Z", "le"),
    ),
    (
        'title pr and userType eq "Employee"',
        And(Present(P("title")), eq(P("userType"), "Employee")),
    ),
    ('title pr or userType eq "Intern"', Or(Present(P("title")), eq(P("userType"), "Intern"))),
    (f'schemas eq "{ENT}"', eq(P("schemas"), ENT)),
    (
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        And(
            eq(P("userType"), "Employee"),
            Or(eq(P("emails"), "example.com", "co"), eq(P("emails", "value"), "example.org", "co")),
        ),
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        And(
            eq(P("userType"), "Employee", "ne"),
            Not(
                Or(
                    eq(P("emails"), "example.com", "co"),
                    eq(P("emails", "value"), "example.org", "co"),
                )
            ),
        ),
    ),
    (
        'userType eq "Employee" and (emails.type eq "work")',
        And(eq(P("userType"), "Employee"), eq(P("emails", "type"), "work")),
    ),
    (
        'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]',
        And(
            eq(P("userType"), "Employee"),
            ValuePath(
                P("emails"), And(eq(P("type"), "work"), eq(P("value"), "@example.com", "co"))
            ),
        ),
    ),
    (
        'emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co '
        '"@foo.com"]',
        Or(
            ValuePath(
                P("emails"), And(eq(P("type"), "work"), eq(P("value"), "@example.com", "co"))
            ),
            ValuePath(P("ims"), And(eq(P("type"), "xmpp"), eq(P("value"), "@foo.com", "co"))),
        ),
    ),
]

A, B, C, D = (Present(P(n)) for n in "abcd")

# Precedence, grouping, literals, leniencies.
MORE: list[tuple[str, Filter]] = [
    # RFC 7644 §3.4.2.2: "Attribute names and attribute operators used in filters are case
    # insensitive": names are kept as written (bind canonicalises them), operators are not.
    ('Username EQ "john"', eq(P("Username"), "john")),
    ("a PR AND b Pr", And(A, B)),
    # Table 4 precedence: not > and > or.
    ("a pr or b pr and c pr", Or(A, And(B, C))),
    ("a pr and b pr or c pr", Or(And(A, B), C)),
    ("not (a pr) and b pr", And(Not(A), B)),
    ("(a pr or b pr) and c pr", And(Or(A, B), C)),
    ("a pr and b pr and c pr", And(And(A, B), C)),
    ("a pr and b pr and c pr and d pr", And(And(A, B), And(C, D))),
    # A chain of one operator is one balanced chain however it is grouped, and
    # not (not (x)) is x: the tree is as shallow as the meaning allows.
    ("a pr and (b pr and c pr)", And(And(A, B), C)),
    ("(a pr and b pr) and (c pr and d pr)", And(And(A, B), And(C, D))),
    ("a pr or (b pr or (c pr or d pr))", Or(Or(A, B), Or(C, D))),
    ("a pr or (b pr and c pr) or d pr", Or(Or(A, And(B, C)), D)),
    ("a pr and (b pr or c pr) and d pr", And(And(A, Or(B, C)), D)),
    ("(a pr or b pr) and (c pr or d pr)", And(Or(A, B), Or(C, D))),
    ("not (not (a pr))", A),
    ("not (not (not (a pr)))", Not(A)),
    ("not ((not (a pr)))", A),
    ("a pr and not (not (b pr and c pr))", And(And(A, B), C)),
    ("a pr or not (not (b pr or c pr))", Or(Or(A, B), C)),
    ("not (a pr and not (b pr))", Not(And(A, Not(B)))),
    ("x[(a pr or b pr) or not (not (c pr))]", ValuePath(P("x"), Or(Or(A, B), C))),
    ("((a pr))", A),
    ("not(a pr)", Not(A)),
    ("not   (  a pr )", Not(A)),
    ("  a    pr  ", A),
    # compValue = false / null / true / number / string
    ("x eq true", eq(P("x"), True)),
    ("x eq FALSE", eq(P("x"), False)),
    ("x eq null", eq(P("x"), None)),
    ("x eq 42", eq(P("x"), 42)),
    ("x eq -1.5e3", eq(P("x"), -1500.0)),
    ("x eq 0.25", eq(P("x"), 0.25)),
    (r'x eq "a\"b\\c\/d\n\u00e9"', eq(P("x"), 'a"b\\c/d\né')),
    ('x eq ""', eq(P("x"), "")),
    ('x eq "and or not ) ( ] ["', eq(P("x"), "and or not ) ( ] [")),
    ('x eq"y"', eq(P("x"), "y")),
    # Names that look like keywords are attribute names where an attribute is expected.
    ("not pr", Present(P("not"))),
    ("and eq 1 or or pr", Or(eq(P("and"), 1), Present(P("or")))),
    ('groups[$ref eq "x"]', ValuePath(P("groups"), eq(P("$ref"), "x"))),
    ("never pr", Present(P("never"))),
    # Schema-URN-qualified paths.
    (f"{ENT}:manager.value pr", Present(P("manager", "value", ENT))),
    (f"{ENT.upper()}:employeeNumber pr", Present(P("employeeNumber", urn=ENT.upper()))),
    # Microsoft Entra ID: emails[type eq "work"].value eq "x" ≡ emails[type eq "work" and
    # value eq "x"].
    (
        'emails[type eq "work"].value eq "x@y"',
        ValuePath(P("emails"), And(eq(P("type"), "work"), eq(P("value"), "x@y"))),
    ),
    (
        'emails[type eq "work"].value pr',
        ValuePath(P("emails"), And(eq(P("type"), "work"), Present(P("value")))),
    ),
    # ... and the added comparison joins the bracket's "and" chain.
    (
        "x[a pr and b pr and c pr].d pr",
        ValuePath(P("x"), And(And(A, B), And(C, Present(P("d"))))),
    ),
    ("x[a pr or b pr].c pr", ValuePath(P("x"), And(Or(A, B), C))),
    ("x[not (y pr)]", ValuePath(P("x"), Not(Present(P("y"))))),
]


@pytest.mark.parametrize(("text", "tree"), FIGURE_2 + MORE, ids=[t for t, _ in FIGURE_2 + MORE])
def test_parse(text: str, tree: Filter) -> None:
    assert parse_filter(text) == tree
    assert parse_filter(str(tree)) == tree


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ('userName  Eq "bjensen"', 'userName eq "bjensen"'),
        ("a pr and b pr and c pr and d pr and e pr", "a pr and b pr and c pr and d pr and e pr"),
        ("a pr or b pr and c pr", "a pr or b pr and c pr"),
        ("(a pr or b pr) and c pr", "(a pr or b pr) and c pr"),
        ("a pr and (b pr and c pr)", "a pr and b pr and c pr"),
        ("a pr or (b pr or c pr) and d pr", "a pr or (b pr or c pr) and d pr"),
        ("not (not (a pr or b pr))", "a pr or b pr"),
        ("not(a pr or b pr)", "not (a pr or b pr)"),
        ('x eq "\\u00e9\\t"', 'x eq "é\\t"'),
        ("x eq 1.0", "x eq 1.0"),
        ("x eq NULL", "x eq null"),
    ],
)
def test_render(text: str, rendered: str) -> None:
    assert str(parse_filter(text)) == rendered


# Each bad filter and a fragment of the message the client reads.
ERRORS = [
    ("", "empty"),
    ("   ", "empty"),
    ("userName", "expected an operator"),
    ('userName eq "bjensen" userName', "expected 'and', 'or'"),
    ("userName eq", "expected a value"),
    ("userName eq bjensen", "expected a value"),
    ("userName xx 1", "expected an operator"),
    ('userName eq "bjensen', "unterminated string"),
    ('userName eq "\\x"', "bad escape"),
    ('userName eq "\\u12"', "bad escape"),
    ("(a pr", "is not closed"),
    ("a pr)", "expected 'and', 'or'"),
    ("()", "expected an attribute path"),
    ("a pr and", "expected an attribute path"),
    ("a pr or or b pr", "after 'or' at position 11"),
    ("not a pr", "expected an operator"),
    ("not (a pr", "is not closed"),
    ("emails[type pr", "is not closed"),
    ("emails[type pr]]", "unexpected ']'"),
    ("emails[]", "expected an attribute path"),
    ("a[b[c pr]]", "cannot be nested"),
    ("name.givenName[x pr]", "not to the sub-attribute"),
    ("a.b.c pr", "not a valid attribute path"),
    ("1abc pr", "'1abc' is not a valid number at position 0"),
    ("a eq 1e999", "out of range"),
    ("a eq 01x", "got '01x', which is not quoted"),
    ("userName eq bjensen@example.com", "got 'bjensen@example.com', which is not quoted"),
    ("foo:bar pr", "not a URN"),
    ("urn:x: pr", "not a valid attribute path"),
    ("a pr & b pr", "unexpected character '&'"),
    ('emails[type eq "work"].value', "expected 'and', 'or'"),
    ('emails[type eq "work"] eq "x"', "expected 'and', 'or'"),
    ("a eq 'x'", "unexpected character"),
    # The tree is at most max_depth (16) deep; brackets nest at most HARD_MAX_DEPTH deep.
    ("a pr and (b pr or " * 8 + "c pr" + ")" * 8, "nested more than 16"),
    ("x[" + "a pr and (b pr or " * 8 + "c pr" + ")" * 8 + "]", "nested more than 16"),
    ("not (a pr and " * 16 + "b pr" + ")" * 16, "nested more than 16"),
    ("(" * 200 + "a pr" + ")" * 200, "brackets nested more than 200"),
    ("not (" * 200 + "a pr" + ")" * 200, "brackets nested more than 200"),
    ("x" * 4097, "longer than 4096"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[t[:40] for t, _ in ERRORS])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidFilterError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_filter(text)


def test_error_is_400_invalid_filter() -> None:
    with pytest.raises(InvalidFilterError) as info:
        parse_filter("userName eq")
    assert (info.value.status, info.value.scim_type) == (400, "invalidFilter")
    assert "position 11" in info.value.detail


def test_non_string_input() -> None:
    with pytest.raises(InvalidFilterError):
        parse_filter(None)  # type: ignore[arg-type]


def test_limits_are_configurable() -> None:
    assert parse_filter("a pr and (b pr or c pr)", max_depth=3) == And(A, Or(B, C))
    with pytest.raises(InvalidFilterError, match="nested more than 2"):
        parse_filter("a pr and (b pr or c pr)", max_depth=2)
    # Grouping that leaves no trace in the tree costs no depth.
    assert parse_filter("((a pr))", max_depth=1) == A
    assert parse_filter("not (not (" * 20 + "a pr" + "))" * 20, max_depth=1) == A
    assert parse_filter("a pr or (" * 30 + "a pr" + ")" * 30, max_depth=6) is not None
    with pytest.raises(InvalidFilterError, match="longer than 5"):
        parse_filter("a eq 1", max_length=5)


def test_long_chains_stay_shallow() -> None:
    """A long "or" list (clients batch lookups by id) parses into a balanced tree, so
    every walk over it (rendering, binding, compiling) stays far from the recursion
    limit."""
    text = " or ".join(f'id eq "{i}"' for i in range(400))
    tree = parse_filter(text, max_length=100_000)
    depth, todo = 0, [(tree, 1)]
    while todo:
        node, d = todo.pop()
        depth = max(depth, d)
        if isinstance(node, (And, Or)):
            todo += [(node.left, d + 1), (node.right, d + 1)]
    assert depth <= 10
    assert str(tree) == text
    assert parse_filter(str(tree), max_length=100_000) == tree


@pytest.mark.parametrize(
    "text",
    [
        "(" * 100_000,
        "not (" * 20_000,
        "a[" * 20_000,
        "a pr and " * 10_000 + "a pr",
        '"' * 100_000,
        "\\" * 100_000,
        "a eq " + "9" * 50_000,
    ],
    ids=["parens", "nots", "brackets", "and-chain", "quotes", "backslashes", "huge-number"],
)
def test_hostile_input_only_raises_invalid_filter(text: str) -> None:
    # Parsed with limits far above the defaults: still a clean error or a tree.
    with contextlib.suppress(InvalidFilterError):
        parse_filter(text, max_length=1_000_000, max_depth=10_000)


# --- PATCH paths (RFC 7644 §3.5.2, Figure 7) -------------------------------------------

PATHS: list[tuple[str, PatchPath]] = [
    ("members", PatchPath(P("members"))),
    ("name.givenName", PatchPath(P("name", "givenName"))),
    (f"{ENT}:manager", PatchPath(P("manager", urn=ENT))),
    (f"{ENT}:manager.value", PatchPath(P("manager", "value", ENT))),
    (f"{USER}:name.familyName", PatchPath(P("name", "familyName", USER))),
    (
        'members[value eq "2819c223-7f76-453a-919d-413861904646"]',
        PatchPath(P("members"), eq(P("value"), "2819c223-7f76-453a-919d-413861904646")),
    ),
    (
        'emails[type eq "work"].value',
        PatchPath(P("emails"), eq(P("type"), "work"), "value"),
    ),
    (
        'addresses[type eq "work" and not (primary eq false)].streetAddress',
        PatchPath(
            P("addresses"),
            And(eq(P("type"), "work"), Not(eq(P("primary"), False))),
            "streetAddress",
        ),
    ),
    ('roles[primary eq "True"]', PatchPath(P("roles"), eq(P("primary"), "True"))),
]


@pytest.mark.parametrize(("text", "path"), PATHS, ids=[t for t, _ in PATHS])
def test_parse_path(text: str, path: PatchPath) -> None:
    assert parse_path(text) == path
    assert parse_path(str(path)) == path


PATH_ERRORS = [
    ("", "empty"),
    ("members[", "expected an attribute path"),
    ('members[value eq "x"', "is not closed"),
    ('members[value eq "x"].', "unexpected character"),
    ('members[value eq "x"].value.x', "expected the end of the path at position 27"),
    ('members[value eq "x"] x', "expected the end of the path"),
    ("members value", "unexpected"),
    ("members[a[b pr]]", "cannot be nested"),
    ("name.givenName[x pr]", "not to the sub-attribute"),
    ("a.b.c", "not a valid attribute path"),
    ('"x"', "expected an attribute name"),
    ("members[value eq]", "expected a value"),
]


@pytest.mark.parametrize(("text", "message"), PATH_ERRORS, ids=[t for t, _ in PATH_ERRORS])
def test_parse_path_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidPathError, match=message.replace("[", r"\[")) as info:
        parse_path(text)
    assert (info.value.status, info.value.scim_type) == (400, "invalidPath")


# --- Hypothesis -------------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(filters())
def test_round_trip(tree: Filter) -> None:
    """Any tree renders to a filter that parses back to its normal form, and a tree in
    normal form (what the parser returns) parses back to an equal tree."""
    normal = normal_form(tree)
    assert parse_filter(str(tree), max_length=100_000, max_depth=200) == normal
    assert parse_filter(str(normal), max_length=100_000, max_depth=200) == normal


_ALPHABET = st.sampled_from(
    [*list('abcdeqnotrplsw ()[]."\\:$-_019eE+urnIETF\t\x00é\u2028'), "and", "or", "not", " eq "]
)


@settings(max_examples=1000)
@given(st.one_of(st.text(max_size=60), st.lists(_ALPHABET, max_size=40).map("".join)))
def test_fuzz_filter(text: str) -> None:
    """Arbitrary text yields a Filter or InvalidFilterError, and nothing else."""
    try:
        tree = parse_filter(text)
    except InvalidFilterError:
        return
    assert normal_form(tree) == tree
    assert depth(tree) <= 16
    assert parse_filter(str(tree)) == tree
    # Grouping bypasses the parser's fast path for simple filters: both paths agree.
    assert parse_filter(f"({text})") == tree


@pytest.mark.parametrize(
    "text",
    [
        'userName eq "bjensen"',
        "title PR",
        'NAME.givenName Sw ""',
        f'{ENT}:manager.value eq "x"',
        'a  eq  "x"',
        "not pr",
        'x eq "a\\"b"',
        "a.b.c pr",
        "foo:bar pr",
        'a eq "x" ',
    ],
)
def test_fast_path_agrees_with_general_parser(text: str) -> None:
    def outcome(text: str) -> Filter | str:
        try:
            return parse_filter(text)
        except InvalidFilterError as exc:
            return exc.detail.split(" at position")[0]

    assert outcome(text) == outcome(f"({text})")


@settings(max_examples=1000)
@given(st.one_of(st.text(max_size=60), st.lists(_ALPHABET, max_size=40).map("".join)))
def test_fuzz_path(text: str) -> None:
    """Arbitrary text yields a PatchPath or InvalidPathError, and nothing else."""
    try:
        path = parse_path(text)
    except InvalidPathError:
        return
    assert parse_path(str(path)) == path


# --- Lone surrogates ---------------------------------------------------------------------
# RFC 7643 §2.1: strings are Unicode characters in UTF-8; a lone surrogate is not a
# character (RFC 3629 §3), cannot be stored, and is rejected before any backend sees it.

SURROGATES = [
    (r'userName eq "\ud800"', r"the string at position 12 holds the lone surrogate \\ud800"),
    (r'userName eq "a\uDFFFb"', r"lone surrogate \\udfff"),
    (r'userName eq "\ude00\ud83d"', r"lone surrogate \\ude00"),
    (r'emails[value eq "\udc00"]', r"the string at position 16 holds the lone surrogate"),
    ('userName eq "\ud800"', r"the lone surrogate \\ud800 at position 13"),
    ("userName\udc80 pr", r"the lone surrogate \\udc80 at position 8"),
]


@pytest.mark.parametrize(("text", "message"), SURROGATES, ids=[t for t, _ in SURROGATES])
@pytest.mark.parametrize("tolerant", [False, True])
def test_lone_surrogates_are_invalid_filters(text: str, message: str, tolerant: bool) -> None:
    with pytest.raises(InvalidFilterError, match=message) as info:
        parse_filter(text, tolerant=tolerant)
    assert (info.value.status, info.value.scim_type) == (400, "invalidFilter")


def test_lone_surrogates_are_invalid_paths() -> None:
    with pytest.raises(InvalidPathError, match=r"lone surrogate \\udc00"):
        parse_path(r'members[value eq "\udc00"]')
    with pytest.raises(InvalidPathError, match=r"lone surrogate \\udc00"):
        parse_path('members[value eq "\udc00"]')


def test_escaped_surrogate_pairs_are_characters() -> None:
    assert parse_filter(r'x eq "\ud83d\ude00"') == eq(P("x"), "\U0001f600")
    assert parse_filter(r'x eq "\uD83D\uDE00!"') == eq(P("x"), "\U0001f600!")


@settings(max_examples=300)
@given(
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    st.text("ab é", max_size=3),
    st.text("ab é", max_size=3),
)
def test_no_lone_surrogate_reaches_a_tree(lone: str, before: str, after: str) -> None:
    escaped = f"\\u{ord(lone):04x}"
    for text in (
        f'x eq "{before}{escaped}{after}"',
        f'x eq "{before}{lone}{after}"',
        f"x[y eq {json.dumps(before + lone + after)}]",
    ):
        with pytest.raises(InvalidFilterError, match="lone surrogate"):
            parse_filter(text)


# --- Bare (unquoted) values: tolerant mode -----------------------------------------------
# Microsoft's SCIM validator sends them; the engine parses with tolerant=not Options.strict.

BARE: list[tuple[str, Filter]] = [
    ("userName sw O", eq(P("userName"), "O", "sw")),
    (
        "name.familyName eq Employee and (emails.value co example.com or emails.value co "
        "example.org)",
        And(
            eq(P("name", "familyName"), "Employee"),
            Or(
                eq(P("emails", "value"), "example.com", "co"),
                eq(P("emails", "value"), "example.org", "co"),
            ),
        ),
    ),
    (
        "meta.created gt 2015-10-10T14:38:21.8617979-07:00",
        eq(P("meta", "created"), "2015-10-10T14:38:21.8617979-07:00", "gt"),
    ),
    ("userName eq bjensen@example.com", eq(P("userName"), "bjensen@example.com")),
    ("externalId eq 01x", eq(P("externalId"), "01x")),
    (
        "id eq 2819c223-7f76-453a-919d-413861904646",
        eq(P("id"), "2819c223-7f76-453a-919d-413861904646"),
    ),
    ("displayName eq Ärzte", eq(P("displayName"), "Ärzte")),
    ("title eq O'Malley", eq(P("title"), "O'Malley")),
    ("userName eq and", eq(P("userName"), "and")),
    ("userName eq x and title pr", And(eq(P("userName"), "x"), Present(P("title")))),
    ("(userName eq x)", eq(P("userName"), "x")),
    ("x eq .A{", eq(P("x"), ".A{")),
    ("emails[value eq x@y.z]", ValuePath(P("emails"), eq(P("value"), "x@y.z"))),
    (
        "emails[type eq work].value eq x@y.z",
        ValuePath(P("emails"), And(eq(P("type"), "work"), eq(P("value"), "x@y.z"))),
    ),
]
# Keywords and numbers keep their JSON meaning; quoted strings are unchanged.
TOLERANT = [
    *BARE,
    ("active eq True", eq(P("active"), True)),
    ("x eq null", eq(P("x"), None)),
    ("x eq 42", eq(P("x"), 42)),
    ("x eq -1.5", eq(P("x"), -1.5)),
    ("x eq -", eq(P("x"), "-")),
    ('x eq "42"', eq(P("x"), "42")),
]


@pytest.mark.parametrize(("text", "tree"), TOLERANT, ids=[t[:50] for t, _ in TOLERANT])
def test_bare_values_when_tolerant(text: str, tree: Filter) -> None:
    assert parse_filter(text, tolerant=True) == tree
    # Rendered quoted, so the RFC grammar reads it back.
    assert parse_filter(str(tree)) == tree


@pytest.mark.parametrize("text", [t for t, _ in BARE], ids=[t[:50] for t, _ in BARE])
def test_bare_values_are_invalid_when_strict(text: str) -> None:
    with pytest.raises(InvalidFilterError, match="expected a value") as info:
        parse_filter(text)
    assert (info.value.status, info.value.scim_type) == (400, "invalidFilter")


TOLERANT_ERRORS = [
    ("userName eq", "expected a value"),
    ("userName eq )", "expected a value"),
    ("userName eq 'x'", 'unexpected character "\'"'),
    ("x eq 1e999", "out of range"),
    ('x eq "unterminated', "unterminated string"),
    ("userName eq x y", "expected 'and', 'or'"),
]


@pytest.mark.parametrize(("text", "message"), TOLERANT_ERRORS, ids=[t for t, _ in TOLERANT_ERRORS])
def test_tolerant_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidFilterError, match=message.replace("(", r"\(")):
        parse_filter(text, tolerant=True)


def test_bare_values_in_patch_paths_when_tolerant() -> None:
    assert parse_path("members[value eq 2819c223]", tolerant=True) == PatchPath(
        P("members"), eq(P("value"), "2819c223")
    )
    with pytest.raises(InvalidPathError, match="expected a value"):
        parse_path("members[value eq 2819c223]")


_BARE_CHARS = st.characters(
    blacklist_categories=["Cs", "Zs", "Zl", "Zp", "Cc"], blacklist_characters="()[]\"'"
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(_BARE_CHARS, min_size=1, max_size=12), ops, st.booleans())
def test_bare_word_round_trip(word: str, op: str, grouped: bool) -> None:
    """A bare word is the string it spells unless it is a keyword or a number; the tree
    renders quoted and parses back (strict) to the same tree."""
    text = f"x {op} {word}"
    tree = _outcome(f"({text})" if grouped else text, tolerant=True)
    rfc = _outcome(text)  # a keyword or a number: the RFC reading, or its error
    if isinstance(rfc, str) and "out of range" not in rfc:
        assert tree == Compare(P("x"), op, word)  # type: ignore[arg-type]
    else:
        assert tree == rfc
    if not isinstance(tree, str):
        assert parse_filter(str(tree)) == tree


def _outcome(text: str, *, tolerant: bool = False) -> Filter | str:
    try:
        return parse_filter(text, tolerant=tolerant)
    except InvalidFilterError as exc:
        return exc.detail.split(" at position")[0]


@settings(max_examples=1000)
@given(st.one_of(st.text(max_size=60), st.lists(_ALPHABET, max_size=40).map("".join)))
def test_fuzz_tolerant(text: str) -> None:
    """Tolerant parsing: a Filter or InvalidFilterError, nothing else; it accepts all the
    strict parser accepts, identically; its trees render to RFC filters."""
    strict = _outcome(text)
    tree = _outcome(text, tolerant=True)
    if isinstance(tree, str):
        assert isinstance(strict, str)
        return
    assert isinstance(strict, str) or strict == tree
    assert normal_form(tree) == tree
    assert parse_filter(str(tree)) == tree
