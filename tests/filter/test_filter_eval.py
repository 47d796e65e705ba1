"""bind and compile_filter: what a filter means, as tables of (filter, resource) -> match."""

from __future__ import annotations

from typing import Any

import pytest
from filter_helpers import ENT, USERS, bjensen

from scim2_core import InvalidFilterError, InvalidPathError
from scim2_core.filter import (
    AttrPath,
    Compare,
    FilterVisitor,
    PatchPath,
    ValuePath,
    bind,
    bind_path,
    compile_filter,
    compile_value_filter,
    parse_filter,
    parse_path,
    sort_key,
)
from scim2_core.schema import GROUP_URN, resource_type_from_model

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def matches(text: str, resource: dict[str, Any]) -> bool:
    return compile_filter(parse_filter(text), USERS)(resource)


# RFC 7644 Figure 2 against RFC 7643 §8.2's bjensen.
FIGURE_2 = [
    ('userName eq "bjensen@example.com"', True),
    ('name.familyName co "O\'Malley"', False),
    ('name.familyName co "ense"', True),
    ('userName sw "J"', False),
    ('userName sw "B"', True),
    (f'{USER}:userName sw "b"', True),
    ("title pr", True),
    ('meta.lastModified gt "2011-05-13T04:42:34Z"', False),
    ('meta.lastModified ge "2011-05-13T04:42:34Z"', True),
    ('meta.lastModified lt "2011-05-13T04:42:34Z"', False),
    ('meta.lastModified le "2011-05-13T04:42:34Z"', True),
    ('title pr and userType eq "Employee"', True),
    ('title pr or userType eq "Intern"', True),
    (f'schemas eq "{ENT}"', True),
    ('userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")', True),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        False,
    ),
    ('userType eq "Employee" and (emails.type eq "work")', True),
    ('userType eq "Employee" and emails[type eq "work" and value co "@example.com"]', True),
    (
        'emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co '
        '"@foo.com"]',
        True,
    ),
    # The same value must satisfy the whole bracket (Table 5) ...
    ('emails[type eq "home" and value co "@example.com"]', False),
    # ... unlike two independent conditions on the multi-valued attribute.
    ('emails.type eq "home" and emails.value co "@example.com"', True),
]


@pytest.mark.parametrize(("text", "expected"), FIGURE_2, ids=[t for t, _ in FIGURE_2])
def test_figure_2(text: str, expected: bool) -> None:
    assert matches(text, bjensen()) is expected


def user(**attrs: Any) -> dict[str, Any]:
    return {"schemas": [USER], "id": "u", "userName": "u", **attrs}


SEMANTICS: list[tuple[str, str, dict[str, Any], bool]] = [
    # caseExact (RFC 7644 §3.4.2.2: "SHALL be determined by the attribute's caseExact").
    ("case-insensitive-eq", 'userName eq "BJENSEN@example.COM"', bjensen(), True),
    ("case-exact-id", 'id eq "2819C223-7F76-453A-919D-413861904646"', bjensen(), False),
    ("case-exact-id-match", 'id eq "2819c223-7f76-453a-919d-413861904646"', bjensen(), True),
    ("case-exact-externalId-co", 'externalId co "701"', bjensen(), True),
    ("case-insensitive-ordering", 'userName gt "BJENSEN"', bjensen(), True),
    ("case-insensitive-ew", 'displayName ew "JENSEN"', bjensen(), True),
    ("sw-identical", 'nickName sw "babs"', bjensen(), True),
    ("ew-identical", 'nickName ew "babs"', bjensen(), True),
    ("co-empty", 'nickName co ""', bjensen(), True),
    ("reference-case-exact", 'profileUrl eq "https://LOGIN.example.com/bjensen"', bjensen(), False),
    ("binary-eq", 'x509Certificates.value eq "aGVsbG8="', bjensen(), True),
    ("binary-case-exact", 'x509Certificates.value eq "AGVSBG8="', bjensen(), False),
    # pr: "If the attribute has a non-empty value, or if it contains a non-empty node".
    ("pr-missing", "nickName pr", user(), False),
    ("pr-null", "nickName pr", user(nickName=None), False),
    ("pr-empty-string", "nickName pr", user(nickName=""), False),
    ("pr-empty-list", "emails pr", user(emails=[]), False),
    ("pr-empty-object", "name pr", user(name={}), False),
    ("pr-object-of-empties", "name pr", user(name={"givenName": ""}), False),
    ("pr-object", "name pr", user(name={"givenName": "x"}), True),
    ("pr-false-is-a-value", "active pr", user(active=False), True),
    ("pr-multi-sub", "emails.value pr", user(emails=[{"type": "work"}]), False),
    ("pr-multi-sub-some", "emails.value pr", user(emails=[{"type": "w"}, {"value": "a"}]), True),
    ("pr-extension", f"{ENT}:manager pr", bjensen(), True),
    ("pr-extension-missing", f"{ENT}:manager pr", user(), False),
    # ne: unassigned is null, and null is "not identical" to any operator value.
    ("ne-missing", 'nickName ne "x"', user(), True),
    ("ne-other", 'nickName ne "x"', user(nickName="y"), True),
    ("ne-same", 'nickName ne "X"', user(nickName="x"), False),
    ("not-eq-missing", 'not (nickName eq "x")', user(), True),
    ("ne-multi-any-differs", 'emails.type ne "work"', bjensen(), True),
    ("ne-multi-all-same", 'emails.type ne "work"', user(emails=[{"type": "work"}]), False),
    ("ne-multi-none", 'emails.type ne "work"', user(), True),
    ("ne-multi-sub-missing", 'emails.type ne "work"', user(emails=[{"value": "a"}]), True),
    ("ne-number-missing", 'meta.created ne "2010-01-23T04:56:22Z"', user(), True),
    ("ne-boolean", "active ne true", user(active=False), True),
    ("ne-boolean-missing", "active ne true", user(), True),
    # Every other operator is false on an unassigned attribute.
    ("eq-missing", 'nickName eq "x"', user(), False),
    ("gt-missing", 'nickName gt "a"', user(), False),
    ("co-missing", 'nickName co ""', user(), False),
    # null literals.
    ("eq-null-missing", "nickName eq null", user(), True),
    ("eq-null-empty", "emails eq null", user(emails=[]), True),
    ("eq-null-present", "nickName eq null", user(nickName="x"), False),
    ("ne-null-present", "nickName ne null", user(nickName="x"), True),
    ("ne-null-missing", "nickName ne null", user(), False),
    # An empty string is assigned (RFC 7643 §2.5 lists only null and [] as unassigned),
    # though it is not "present".
    ("eq-null-empty-string", "nickName eq null", user(nickName=""), False),
    ("ne-null-empty-string", "nickName ne null", user(nickName=""), True),
    ("pr-vs-ne-null", "nickName pr", user(nickName=""), False),
    ("eq-null-multi-sub", "emails.value eq null", user(emails=[{"type": "work"}]), True),
    ("ne-null-multi-sub", "emails.value ne null", user(emails=[{"value": ""}]), True),
    # Multi-valued: "the filter matches if any of the values [...] match".
    ("multi-complex-no-sub", 'emails eq "babs@jensen.org"', bjensen(), True),
    ("multi-complex-co", 'emails co "JENSEN.ORG"', bjensen(), True),
    ("multi-none-match", 'emails eq "nobody@x"', bjensen(), False),
    ("schemas-multi-string", f'schemas eq "{USER}"', bjensen(), True),
    ("schemas-case-insensitive", f'schemas eq "{ENT.upper()}"', bjensen(), True),
    ("ext-attribute", f'{ENT}:employeeNumber eq "701984"', bjensen(), True),
    ("ext-urn-case-insensitive", f'{ENT.upper()}:EMPLOYEENUMBER eq "701984"', bjensen(), True),
    ("ext-missing", f'{ENT}:employeeNumber eq "701984"', user(), False),
    ("ext-not-an-object", f'{ENT}:employeeNumber eq "1"', user(**{ENT: "junk"}), False),
    # Value filters on single-valued complex attributes, in the core schema and an extension.
    ("value-path-single", 'name[givenName sw "B" and familyName eq "jensen"]', bjensen(), True),
    ("value-path-single-no", 'name[givenName sw "X"]', bjensen(), False),
    ("value-path-extension", f'{ENT}:manager[displayName eq "john"]', bjensen(), True),
    ("value-path-extension-missing", f"{ENT}:manager[displayName pr]", user(), False),
    ("not-value-path", 'not (emails[type eq "other"])', bjensen(), True),
    # Booleans.
    ("bool-eq", "active eq true", bjensen(), True),
    ("bool-eq-false", "active eq false", bjensen(), False),
    ("bool-string-literal", 'active eq "True"', bjensen(), True),
    ("bool-in-value-path", "emails[primary eq true]", bjensen(), True),
    ("bool-multi-sub", "roles.primary eq false", bjensen(), True),
    # dateTime: chronological, whatever the literal's spelling.
    ("dt-offset", 'meta.lastModified eq "2011-05-13T06:42:34+02:00"', bjensen(), True),
    ("dt-fraction", 'meta.lastModified eq "2011-05-13T04:42:34.000000Z"', bjensen(), True),
    ("dt-naive", 'meta.lastModified eq "2011-05-13T04:42:34"', bjensen(), True),
    ("dt-gt-offset", 'meta.lastModified gt "2011-05-13T05:00:00+01:00"', bjensen(), True),
    ("dt-ge-submilli", 'meta.lastModified ge "2011-05-13T04:42:34.0005Z"', bjensen(), False),
    ("dt-lt-submilli", 'meta.lastModified lt "2011-05-13T04:42:34.0005Z"', bjensen(), True),
    ("dt-gt-submilli", 'meta.lastModified gt "2011-05-13T04:42:33.9995Z"', bjensen(), True),
    ("dt-le-submilli", 'meta.lastModified le "2011-05-13T04:42:33.9995Z"', bjensen(), False),
    # More fractional digits than datetime keeps (.NET sends seven): still exact.
    ("dt-7-digits", 'meta.lastModified eq "2011-05-13T04:42:34.0000000Z"', bjensen(), True),
    ("dt-7-offset", 'meta.lastModified gt "2011-05-12T21:42:33.9999999-07:00"', bjensen(), True),
    ("dt-ge-7th-digit", 'meta.lastModified ge "2011-05-13T04:42:34.0000001Z"', bjensen(), False),
    ("dt-lt-7th-digit", 'meta.lastModified lt "2011-05-13T04:42:34.0000001Z"', bjensen(), True),
    ("dt-gt-7th-digit", 'meta.lastModified gt "2011-05-13T04:42:33.9999999Z"', bjensen(), True),
    ("dt-le-7th-digit", 'meta.lastModified le "2011-05-13T04:42:33.9999999Z"', bjensen(), False),
    ("dt-ge-9-zeros", 'meta.lastModified ge "2011-05-13T04:42:34.000000000Z"', bjensen(), True),
    (
        "dt-stored-noncanonical",
        'meta.created lt "2010-01-23T05:00:00Z"',
        user(meta={"created": "2010-01-23T04:56:22+00:00"}),
        True,
    ),
    (
        "dt-stored-garbage",
        'meta.created lt "2010-01-23T05:00:00Z"',
        user(meta={"created": "yesterday"}),
        False,
    ),
    # Logic and grouping.
    ("not", 'not (userName eq "u")', user(), False),
    ("and-or", 'userName eq "x" or userName eq "u" and nickName pr', user(), False),
    ("grouped", '(userName eq "x" or userName eq "u") and not (nickName pr)', user(), True),
    (
        "long-or",
        " or ".join(f'userName eq "{i}"' for i in range(50)) + ' or userName eq "u"',
        user(),
        True,
    ),
    ("long-and", " and ".join(["userName pr"] * 50), user(), True),
    # Stored values of the wrong type never match and never raise.
    ("wrong-type-string", 'userName eq "1"', user(userName=1), False),
    ("wrong-type-list", 'userName sw "a"', user(userName=["a"]), False),
    ("wrong-type-multi", 'emails.value eq "a"', user(emails={"value": "a"}), False),
    ("wrong-type-elements", 'emails.value eq "a"', user(emails=["a", None, 3]), False),
    ("wrong-type-bool", "active eq true", user(active="true"), False),
]


@pytest.mark.parametrize(
    ("text", "resource", "expected"),
    [s[1:] for s in SEMANTICS],
    ids=[s[0] for s in SEMANTICS],
)
def test_semantics(text: str, resource: dict[str, Any], expected: bool) -> None:
    assert matches(text, resource) is expected


def test_numbers() -> None:
    import scim2_models

    class Widget(scim2_models.Resource[Any]):  # a resource with integer and decimal attributes
        __schema__ = scim2_models.URN("urn:example:2.0:Widget")
        size: int | None = None
        weight: float | None = None

    widgets = resource_type_from_model(Widget)
    item = {"id": "w", "size": 10, "weight": 2.5}
    cases = [
        ("size eq 10", True),
        ("size eq 10.0", True),
        ("size gt 9.5", True),
        ("size lt 10", False),
        ("weight ge 2.5", True),
        ("weight lt 3", True),
        ("weight ne 2.5", False),
    ]
    for text, expected in cases:
        assert compile_filter(parse_filter(text), widgets)(item) is expected, text
    for text in ('size eq "10"', "size co 1", "weight eq true"):
        with pytest.raises(InvalidFilterError):
            compile_filter(parse_filter(text), widgets)


BINDS = [
    ('USERNAME eq "x"', 'userName eq "x"'),
    (f'{USER}:NAME.GIVENNAME sw "x"', 'name.givenName sw "x"'),
    (f"{ENT.upper()}:MANAGER.VALUE pr", f"{ENT}:manager.value pr"),
    ('EMAILS co "x"', 'emails.value co "x"'),
    ('Emails[TYPE eq "work" and Primary eq "true"]', 'emails[type eq "work" and primary eq true]'),
    (
        'meta.LASTMODIFIED gt "2011-05-13T06:42:34+02:00"',
        'meta.lastModified gt "2011-05-13T04:42:34.000Z"',
    ),
    ('meta.created ge "2011-05-13T04:42:34.0001Z"', 'meta.created ge "2011-05-13T04:42:34.001Z"'),
    ("ID pr", "id pr"),
    ('Schemas eq "x"', 'schemas eq "x"'),
    ('active eq "FALSE"', "active eq false"),
    ("nickName eq null", "nickName eq null"),
]


@pytest.mark.parametrize(("text", "bound"), BINDS, ids=[t for t, _ in BINDS])
def test_bind_canonical(text: str, bound: str) -> None:
    tree = bind(parse_filter(text), USERS)
    assert str(tree) == bound
    assert bind(tree, USERS) == tree  # binding is idempotent


def test_bind_trees() -> None:
    assert bind(parse_filter(f"{USER}:userName pr"), USERS) == parse_filter("userName pr")
    vp = bind(parse_filter('EMAILS[Value eq "x"]'), USERS)
    assert vp == ValuePath(AttrPath(None, "emails"), Compare(AttrPath(None, "value"), "eq", "x"))
    ext = bind(parse_filter(f'{ENT.upper()}:costcenter eq "x"'), USERS)
    assert ext == Compare(AttrPath(ENT, "costCenter"), "eq", "x")


BIND_ERRORS = [
    ("foo pr", "Unknown attribute 'foo'"),
    ("name.foo pr", "Unknown attribute 'name.foo'"),
    ("urn:example:Other:userName pr", "Unknown attribute"),
    (f"{ENT}:userName pr", "Unknown attribute"),
    ("password pr", "'password' cannot be used in a filter"),
    ('password eq "secret"', "'password' cannot be used in a filter"),
    ("active gt true", "'gt' cannot be used with boolean attribute 'active'"),
    ('x509Certificates.value lt "a"', "'lt' cannot be used with binary"),
    ('active co "t"', "compare it with true or false"),
    ("active eq 1", "compare it with true or false"),
    ("userName eq 1", "compare it with a quoted string"),
    ("userName eq true", "compare it with a quoted string"),
    ('meta.created eq "yesterday"', "not an xsd:dateTime"),
    ("meta.created eq 1", "compare it with a quoted string"),
    ('meta.created co "2011"', "'co' applies to strings"),
    ('name eq "x"', "'name' is complex"),
    ('meta eq "x"', "'meta' is complex"),
    # "For complex attributes, a fully qualified sub-attribute MUST be specified".
    (f'{ENT}:manager eq "x"', "manager' is complex"),
    ("userName gt null", "with null using 'gt'"),
    ('userName[value eq "x"]', "needs a complex attribute"),
    ('name.givenName eq "x" and emails[foo eq "x"]', "Unknown attribute 'foo' in the value filter"),
    ('emails[value.x eq "x"]', "in the value filter of 'emails'"),
    ("emails[primary gt true]", "'gt' cannot be used with boolean"),
]


@pytest.mark.parametrize(("text", "message"), BIND_ERRORS, ids=[t for t, _ in BIND_ERRORS])
def test_bind_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidFilterError, match=message.replace("(", r"\(")) as info:
        compile_filter(parse_filter(text), USERS)
    assert (info.value.status, info.value.scim_type) == (400, "invalidFilter")


PATH_BINDS = [
    ("EMAILS", "emails"),
    ("name.GIVENNAME", "name.givenName"),
    (f"{USER}:name.givenName", "name.givenName"),
    (f"{ENT.upper()}:Manager", f"{ENT}:manager"),
    ("password", "password"),
    ('emails[TYPE eq "work"].VALUE', 'emails[type eq "work"].value'),
    ('roles[primary eq "True"]', "roles[primary eq true]"),
]


@pytest.mark.parametrize(("text", "bound"), PATH_BINDS, ids=[t for t, _ in PATH_BINDS])
def test_bind_path(text: str, bound: str) -> None:
    path = bind_path(parse_path(text), USERS)
    assert str(path) == bound
    assert isinstance(path, PatchPath)


@pytest.mark.parametrize(
    "text",
    [
        "foo",
        "name.foo",
        'emails[foo eq "x"]',
        'emails[type eq "x"].foo',
        "userName[value pr]",
        "urn:example:x:y",
    ],
)
def test_bind_path_errors(text: str) -> None:
    with pytest.raises(InvalidPathError):
        bind_path(parse_path(text), USERS)


def test_value_filter_for_patch() -> None:
    groups = resource_type_from_model(__import__("scim2_models").Group)
    members = groups.resolve(None, "members")
    assert members is not None
    pick = compile_value_filter(parse_filter('value eq "2819c223"'), members.attribute)
    assert pick({"value": "2819c223", "display": "Babs"})
    assert not pick({"value": "other"})
    assert not pick({})
    roles = USERS.resolve(None, "roles")
    assert roles is not None
    # Okta sends roles[primary eq "True"].
    primary = compile_value_filter(parse_filter('primary eq "True"'), roles.attribute)
    assert primary({"value": "a", "primary": True})
    assert not primary({"value": "a", "primary": False})
    with pytest.raises(InvalidFilterError, match="Unknown attribute 'foo'"):
        compile_value_filter(parse_filter("foo pr"), roles.attribute)
    assert GROUP_URN in groups.schema_ids


# --- sortBy (RFC 7644 §3.4.2.3) ---------------------------------------------------------

PEOPLE = [
    {
        "id": "1",
        "userName": "bob",
        "name": {"givenName": "Zed"},
        "emails": [{"value": "b@x", "primary": False}, {"value": "a@x", "primary": True}],
    },
    {
        "id": "2",
        "userName": "Alice",
        "emails": [{"value": "c@x"}],
        "meta": {"created": "2011-01-01T00:00:00.000Z"},
    },
    {
        "id": "3",
        "userName": "carol",
        "name": {"givenName": "amy"},
        "meta": {"created": "2010-01-01T00:00:00+00:00"},
    },
    {"id": "4", "userName": "dave", "name": {"givenName": "Zed"}, "active": True},
    {"id": "0", "userName": "eve", "active": False},
]


@pytest.mark.parametrize(
    ("path", "descending", "ids"),
    [
        ("userName", False, ["2", "1", "3", "4", "0"]),  # caseExact false: Alice < bob
        ("userName", True, ["0", "4", "3", "1", "2"]),
        # Missing values last ascending, first descending; ties by id ascending.
        ("name.givenName", False, ["3", "1", "4", "0", "2"]),
        ("name.givenName", True, ["0", "2", "1", "4", "3"]),
        # Multi-valued: the primary value, else the first.
        ("emails.value", False, ["1", "2", "0", "3", "4"]),
        ("emails", False, ["1", "2", "0", "3", "4"]),
        ("meta.created", False, ["3", "2", "0", "1", "4"]),
        ("active", False, ["0", "4", "1", "2", "3"]),
        ("id", True, ["4", "3", "2", "1", "0"]),
    ],
)
def test_sort_key(path: str, descending: bool, ids: list[str]) -> None:
    key = sort_key(USERS.resolve_path(path), descending=descending)
    ordered = sorted(PEOPLE, key=key, reverse=descending)
    assert [p["id"] for p in ordered] == ids


# --- The pushdown visitor ----------------------------------------------------------------


class ToText(FilterVisitor[str]):
    """A toy backend: translates comparisons and 'and' only."""

    def visit_compare(self, node: Compare) -> str:
        ref = self.resolve(node.path)
        return f"{'/'.join(ref.keys)} {node.op} {node.value!r}"

    def visit_and(self, node: Any) -> str:
        return f"({self.visit(node.left)} AND {self.visit(node.right)})"

    def visit_value_path(self, node: ValuePath) -> str:
        parent = self.resolve(node.path)
        inner = node.filter
        assert isinstance(inner, Compare)
        ref = self.resolve(inner.path, parent=parent)
        return f"ANY {'/'.join(ref.keys)} {inner.op} {inner.value!r}"


def test_visitor_translates_what_it_overrides() -> None:
    tree = bind(parse_filter(f'USERNAME eq "x" and {ENT}:MANAGER.value eq "m"'), USERS)
    assert ToText(USERS).visit(tree) == f"(userName eq 'x' AND {ENT}/manager/value eq 'm')"
    vp = bind(parse_filter('emails[TYPE eq "work"]'), USERS)
    assert ToText(USERS).visit(vp) == "ANY emails/type eq 'work'"


@pytest.mark.parametrize(
    "text", ["userName pr", 'userName eq "x" or nickName pr', 'not (userName eq "x")']
)
def test_visitor_refuses_the_rest(text: str) -> None:
    from scim2_core.filter import Untranslatable

    with pytest.raises(Untranslatable) as info:
        ToText(USERS).visit(bind(parse_filter(text), USERS))
    # A client sees 400 invalidFilter naming the part, never a silent full scan.
    assert isinstance(info.value, InvalidFilterError)
    assert (info.value.status, info.value.scim_type) == (400, "invalidFilter")
    assert "cannot evaluate" in info.value.detail
