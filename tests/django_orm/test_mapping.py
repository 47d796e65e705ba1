"""scim2_core.mapping on its own (no ORM): binding errors, and write/read round trips."""

from __future__ import annotations

from typing import Any

import pytest
import scim2_models
from hypothesis import given
from hypothesis import strategies as st

from scim2_core import ConfigurationError, InvalidValueError
from scim2_core.mapping import Field, Members, ResourceMapping, bind_mapping
from scim2_core.schema import ENTERPRISE_USER_URN, USER_URN, resource_type_from_model

USER = resource_type_from_model(scim2_models.User[scim2_models.EnterpriseUser])
GROUP = resource_type_from_model(scim2_models.Group)
ENT = ENTERPRISE_USER_URN

FIELDS = (
    Field(attribute="userName", field="username"),
    Field(attribute="name.givenName", field="first_name"),
    Field(attribute='emails[type eq "work"].value', field="email"),
    Field(attribute="active", field="is_active"),
    Field(attribute=f"{ENT}:employeeNumber", field="employee_number"),
)


def mapping(*fields: Field, **options: Any) -> ResourceMapping:
    return ResourceMapping(resource_type="User", model="app.User", fields=fields, **options)


@pytest.mark.parametrize(
    ("fields", "options", "named"),
    [
        ((Field(attribute="userNam", field="u"),), {}, "'userNam'"),
        ((Field(attribute="emails", field="e"),), {}, "multi-valued"),
        ((Field(attribute="name", field="n"),), {}, "complex"),
        ((Field(attribute="id", field="pk"),), {}, "'id'"),
        ((Field(attribute="groups", field="g"),), {}, "'groups'"),
        ((Field(attribute='emails[type ne "work"].value', field="e"),), {}, "'sub eq value'"),
        ((Field(attribute='emails[type eq "work"]', field="e"),), {}, "sub-attribute"),
        ((Field(attribute='emails[type eq "work"].type', field="e"),), {}, "filtered"),
        (
            (Field(attribute="userName", field="u"), Field(attribute="USERNAME", field="v")),
            {},
            "twice",
        ),
        (
            (Field(attribute="userName", field="u"), Field(attribute="title", field="u")),
            {},
            "'u' is used twice",
        ),
        ((Field(attribute="userName", field="u"),), {"on_delete": "deactivate"}, "'active'"),
        ((Field(attribute=f"{ENT}:nope", field="x"),), {}, "nope"),
    ],
)
def test_a_mapping_that_does_not_fit_names_the_problem(
    fields: tuple[Field, ...], options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        bind_mapping(mapping(*fields, **options), USER)


def test_members_need_a_members_attribute() -> None:
    with pytest.raises(ConfigurationError, match="members"):
        bind_mapping(mapping(members=Members(relation="x")), USER)
    group = ResourceMapping(
        resource_type="Group", model="auth.Group", members=Members(relation="user_set")
    )
    assert bind_mapping(group, GROUP).has_members


def test_a_row_the_app_wrote_reads_as_a_resource() -> None:
    bound = bind_mapping(mapping(*FIELDS), USER)
    values = {"username": "ada", "first_name": "Ada", "email": "ada@example.com", "is_active": True}
    assert bound.read(values, {}) == {
        "schemas": [USER_URN],
        "userName": "ada",
        "name": {"givenName": "Ada"},
        "emails": [{"type": "work", "value": "ada@example.com"}],
        "active": True,
    }
    # an empty text field is an unassigned attribute
    assert bound.read({"username": "ada", "email": "", "first_name": ""}, {}) == {
        "schemas": [USER_URN],
        "userName": "ada",
    }


def test_unmapped_attributes_dropped_or_rejected() -> None:
    resource = {
        "schemas": [USER_URN],
        "userName": "ada",
        "title": "Boss",
        "externalId": "x1",
        "emails": [{"value": "a@example.com", "type": "work", "primary": True}],
    }
    dropped = bind_mapping(mapping(*FIELDS, unmapped="drop"), USER)
    values, extras = dropped.write(resource)
    assert extras == {
        "schemas": [USER_URN],
        "externalId": "x1",
        "emails": [{"type": "work", "primary": True}],
    }
    assert values["email"] == "a@example.com"
    rejected = bind_mapping(mapping(*FIELDS, unmapped="reject"), USER)
    with pytest.raises(InvalidValueError, match="title"):
        rejected.write(resource)
    del resource["title"]
    rejected.write(resource)  # externalId and the work email's `primary` are not "unmapped"


text = st.text(alphabet="aAbé%_ .", min_size=1, max_size=6)
email = st.fixed_dictionaries(
    {"value": text},
    optional={"type": st.sampled_from(["work", "home", "Work"]), "primary": st.booleans()},
)
users = st.fixed_dictionaries(
    {"schemas": st.just([USER_URN]), "userName": text},
    optional={
        "title": st.text(max_size=4),
        "active": st.booleans(),
        "name": st.fixed_dictionaries(
            {}, optional={"givenName": text, "familyName": st.text(max_size=3)}
        ).filter(bool),
        "emails": st.lists(email, min_size=1, max_size=3),
        "externalId": text,
    },
)


@given(resource=users, with_ext=st.booleans(), number=text)
def test_write_then_read_gives_the_resource_back(
    resource: dict[str, Any], with_ext: bool, number: str
) -> None:
    if with_ext:
        resource = {**resource, "schemas": [USER_URN, ENT], ENT: {"employeeNumber": number}}
    bound = bind_mapping(mapping(*FIELDS), USER)
    values, extras = bound.write(resource)
    assert set(values) == {f.field for f in FIELDS}
    assert "userName" not in extras
    assert bound.read(values, extras) == resource
    for leaf in bound.leaves(extras):
        assert leaf.key != "userName"


def test_the_mapping_imports_no_orm_and_no_framework() -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, json, scim2_core.mapping\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    loaded = set(json.loads(out.stdout))
    assert "scim2_core" in loaded
    assert loaded & {"django", "sqlalchemy", "flask", "starlette", "psycopg"} == set()
