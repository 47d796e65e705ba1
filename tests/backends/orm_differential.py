"""What the ORM backends' differential tests share: random users whose mapped attributes
fit an app's model, the fields they map to, and the comparisons with MemoryBackend (the
tests themselves, with their database fixtures, live beside each backend:
``tests/django_orm/test_django_differential.py``, ``tests/sqlalchemy/test_sqlalchemy_differential.py``).

Two differences are by design and kept out of the data: an app's text column stores "no
value" as ``""``, so an empty string in a mapped attribute reads back unassigned; and
caseExact=false comparisons on the app's fields fold case with the database's ``lower()``
(ASCII-only on SQLite), so mapped values here are ASCII.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from test_sql_differential import stamps  # the same creation times as the SQL store's test

from scim2_core.backends import Backend, SearchQuery, SortSpec
from scim2_core.filter import Filter, bind, compile_filter, sort_key
from scim2_core.mapping import Field
from scim2_core.testing import ENT, USER, user

ASCII = "aAbBzZ%_!\\ ."
ANY = "aAbBzZ%_!\\ İıßΣσςé."
mapped_text = st.text(alphabet=ASCII, min_size=1, max_size=5)
extra_text = st.text(alphabet=ANY, max_size=5)

#: The user attributes held in the app's model (the rest are kept as extras).
USER_FIELDS = (
    Field(attribute="userName", field="username"),
    Field(attribute="name.givenName", field="first_name"),
    Field(attribute="name.familyName", field="last_name"),
    Field(attribute='emails[type eq "work"].value', field="work_email"),
    Field(attribute="active", field="is_active"),
)


@st.composite
def users(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(0, 6))):
        attrs: dict[str, Any] = {}
        for name in ("title", "displayName", "externalId", "nickName"):
            if draw(st.booleans()):
                attrs[name] = draw(extra_text)
        if draw(st.booleans()):
            attrs["active"] = draw(st.booleans())
        if draw(st.booleans()):
            emails = draw(
                st.lists(
                    st.fixed_dictionaries(
                        {"value": extra_text},
                        optional={
                            "type": st.sampled_from(["work", "home", "Work"]),
                            "primary": st.booleans(),
                        },
                    ),
                    min_size=1,  # the engine never stores an empty list
                    max_size=3,
                )
            )
            # The first work email is the field's: ASCII and not empty (see the docstring).
            for e in emails:
                if str(e.get("type", "")).lower() == "work":
                    e["value"] = draw(mapped_text)
                    break
            attrs["emails"] = emails
        if draw(st.booleans()):
            attrs["name"] = draw(
                st.fixed_dictionaries(
                    {}, optional={"givenName": mapped_text, "familyName": mapped_text}
                ).filter(bool)  # the engine never stores an empty complex value
            )
        if draw(st.booleans()):
            attrs[ENT] = draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "employeeNumber": extra_text,
                        "manager": st.fixed_dictionaries({"value": extra_text}),
                    },
                ).filter(bool)
            )
        name = draw(mapped_text) + f"#{i}"
        out.append(user(f"u{i}", name, created=draw(stamps), **attrs))
    return out


def assert_filter_equals_memory(
    backend: Backend, memory: Backend, resources: list[dict[str, Any]], filter: Filter
) -> None:
    """``filter`` finds in ``backend`` what it finds in ``memory`` and what
    ``compile_filter`` says, in creation order, with the right total."""
    bound = bind(filter, USER)
    predicate = compile_filter(bound, USER)
    in_order = sorted(resources, key=lambda r: (r["meta"]["created"], r["id"]))
    expected = [r["id"] for r in in_order if predicate(r)]
    query = SearchQuery(filter=bound, count=1000)
    got = backend.search(None, USER, query)
    assert [r["id"] for r in got.resources] == expected, str(bound)
    assert got.total == len(expected)
    assert [r["id"] for r in memory.search(None, USER, query).resources] == expected


def assert_page_equals_sorted(
    backend: Backend,
    resources: list[dict[str, Any]],
    sort: str,
    descending: bool,
    offset: int,
    count: int,
) -> None:
    """A sorted page of ``backend`` is that slice of the resources sorted by SCIM's rules."""
    ref = USER.resolve_path(sort)
    ordered = sorted(resources, key=sort_key(ref, descending=descending), reverse=descending)
    expected = [r["id"] for r in ordered][offset : offset + count]
    query = SearchQuery(sort=SortSpec(path=ref, descending=descending), offset=offset, count=count)
    got = backend.search(None, USER, query)
    assert got.total == len(resources)
    assert [r["id"] for r in got.resources] == expected, sort


def assert_reads_back(backend: Backend, resources: list[dict[str, Any]]) -> None:
    """Every resource written reads back as it was written."""
    for r in resources:
        assert backend.get(None, USER, r["id"]) == r
