"""A user's derived ``groups`` read with the user (RFC 7643 §4.1.2) are what ``groups_of``
answers: by ``get_with_groups`` (one statement), and with the pages of a ``userName eq``
search and of a page without filter (``Page.groups``), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import scim2_models
import sqlalchemy as sa
from sa_app import ACCOUNT, MODELS, TEAM
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from test_sqlalchemy_models import GROUP, USER, call

from scim2_core import Engine
from scim2_core.backends import SearchQuery
from scim2_core.filter import bind, parse_filter
from scim2_core.mapping import Field, Members, ResourceMapping
from scim2_core.schema import resource_type_from_model
from scim2_core_sqlalchemy import SQLAlchemyBackend

USERS = resource_type_from_model(scim2_models.User[scim2_models.EnterpriseUser])
GROUPS = resource_type_from_model(scim2_models.Group)


@pytest.fixture
def backend(engine: sa.Engine) -> Iterator[SQLAlchemyBackend]:
    found = SQLAlchemyBackend(engine, (ACCOUNT, TEAM), models=MODELS)
    yield found
    found.close()


def _people(scim: Engine, names: list[str]) -> list[str]:
    return [
        call(scim, "POST", "/Users", {"schemas": [USER], "userName": n})[1]["id"] for n in names
    ]


def _group(scim: Engine, name: str, members: list[str]) -> str:
    body = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]}
    status, group, _ = call(scim, "POST", "/Groups", body)
    assert status == 201
    return str(group["id"])


def _by_name(backend: SQLAlchemyBackend, name: str) -> Any:
    query = SearchQuery(filter=bind(parse_filter(f'userName eq "{name}"'), USERS))
    return backend.search(None, USERS, query)


def test_get_with_groups_is_get_and_groups_of(backend: SQLAlchemyBackend) -> None:
    scim = Engine(backend)
    ann, bob, cy = _people(scim, ["ann", "bob", "cy"])
    ops, dev = _group(scim, "Ops", [ann, bob]), _group(scim, "Dev", [ann])
    assert call(scim, "DELETE", f"/Groups/{_group(scim, 'Gone', [ann])}")[0] == 204
    for uid, expected in ((ann, {ops, dev}), (bob, {ops}), (cy, set())):
        read = backend.get_with_groups(None, USERS, uid)
        assert read is not None
        user, groups = read
        assert user == backend.get(None, USERS, uid)
        assert groups == backend.groups_of(None, [uid]).get(uid, [])
        assert {g["value"] for g in groups} == expected
    assert next(g for g in backend.get_with_groups(None, USERS, bob)[1])["display"] == "Ops"  # type: ignore[index]
    assert backend.get_with_groups(None, USERS, "no-such-id") is None
    # Through the engine: the same groups as a GET renders them.
    _, shown, _ = call(scim, "GET", f"/Users/{ann}")
    assert sorted(g["display"] for g in shown["groups"]) == ["Dev", "Ops"]


def test_pages_carry_the_groups_of_their_users(backend: SQLAlchemyBackend) -> None:
    scim = Engine(backend)
    ids = _people(scim, ["ann", "bob", "cy", "dee"])
    _group(scim, "Ops", ids[:2])
    _group(scim, "Dev", ids[1:3])
    page = _by_name(backend, "BOB")
    assert [r["id"] for r in page.resources] == [ids[1]]
    assert page.groups == backend.groups_of(None, [ids[1]])
    page = backend.search(None, USERS, SearchQuery(offset=1, count=2))
    listed = [r["id"] for r in page.resources]
    assert listed == ids[1:3]
    assert page.groups is not None
    assert page.groups == {uid: backend.groups_of(None, [uid]).get(uid, []) for uid in listed}
    # What the engine renders from them: each user's groups, none for one in none.
    _, found, _ = call(scim, "GET", "/Users?startIndex=1&count=10")
    assert [len(r.get("groups", [])) for r in found["Resources"]] == [1, 2, 1, 0]


def test_a_user_type_in_no_group_type_has_no_groups(engine: sa.Engine) -> None:
    backend = SQLAlchemyBackend(engine, (ACCOUNT,), models=MODELS)
    try:
        scim = Engine(backend, resource_types=[USERS])
        (ann,) = _people(scim, ["ann"])
        read = backend.get_with_groups(None, USERS, ann)
        assert read is not None
        assert read[1] == []
        assert _by_name(backend, "ann").groups is None
    finally:
        backend.close()


class _Base(DeclarativeBase):
    pass


_links = sa.Table(
    "gr_links",
    _Base.metadata,
    sa.Column("crew_id", sa.ForeignKey("gr_crew.id"), primary_key=True),
    sa.Column("person_id", sa.ForeignKey("gr_person.id"), primary_key=True),
)


class _Person(_Base):
    __tablename__ = "gr_person"
    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(sa.String(80), unique=True)


class _Crew(_Base):
    """A group with no column for its name: ``displayName`` lives in scim2-core's extras."""

    __tablename__ = "gr_crew"
    id: Mapped[int] = mapped_column(primary_key=True)
    people: Mapped[list[_Person]] = relationship(secondary=_links)


def test_groups_named_only_in_the_bookkeeping_keep_their_display(engine: sa.Engine) -> None:
    _Base.metadata.create_all(engine)
    backend = SQLAlchemyBackend(
        engine,
        [
            ResourceMapping(
                resource_type="User",
                model=_Person,
                fields=(Field(attribute="userName", field="login"),),
            ),
            ResourceMapping(resource_type="Group", model=_Crew, members=Members(relation="people")),
        ],
        table_prefix="gr_scim_",
    )
    try:
        scim = Engine(backend)
        kim, lee = _people(scim, ["kim", "lee"])
        named = _group(scim, "Night shift", [kim])
        # A crew the app made itself, with no name anywhere, adopted by a search.
        with engine.begin() as conn:
            crew = conn.execute(sa.insert(_Crew).returning(_Crew.id)).scalar_one()
            people = conn.execute(sa.select(_Person.id)).scalars().all()
            conn.execute(sa.insert(_links), [{"crew_id": crew, "person_id": p} for p in people])
        groups = backend.search(None, GROUPS, SearchQuery()).resources
        (unnamed,) = [g["id"] for g in groups if g["id"] != named]
        read = backend.get_with_groups(None, USERS, kim)
        assert read is not None
        assert read[1] == backend.groups_of(None, [kim])[kim]
        assert sorted(read[1], key=lambda g: g["value"] != named) == [
            {"value": named, "display": "Night shift"},
            {"value": unnamed},
        ]
        assert _by_name(backend, "lee").groups == {lee: [{"value": unnamed}]}
    finally:
        backend.close()
        backend._tables.metadata.drop_all(engine)
        _Base.metadata.drop_all(engine)


def test_reads_by_id_and_user_name_see_raw_sql_changes_and_give_back_their_connection(
    engine: sa.Engine, backend: SQLAlchemyBackend
) -> None:
    # A GET by id and a `userName eq` take a short way when they write nothing; a row the
    # app changed behind SCIM's back (raw SQL, no ORM event) still gets a new version first
    # (RFC 7644 §3.14), the same one for both reads, and every connection goes back to the
    # app's pool, inside a request or not.
    scim = Engine(backend)
    (ann,) = _people(scim, ["ann"])
    before = backend.get(None, USERS, ann)
    assert before is not None
    assert _by_name(backend, "ANN").resources == [before]
    assert backend.get_without_members(None, USERS, ann) == before
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE app_account SET first_name = 'Annie'"))
    found = _by_name(backend, "ann").resources
    assert [r["name"]["givenName"] for r in found] == ["Annie"]
    assert found[0]["meta"]["version"] != before["meta"]["version"]
    assert backend.get(None, USERS, ann) == found[0]
    _, shown, _ = call(scim, "GET", f"/Users/{ann}")
    assert shown["meta"]["version"] == found[0]["meta"]["version"]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE app_account SET last_name = 'Lee'"))
    _, shown, _ = call(scim, "GET", f"/Users/{ann}")
    assert shown["name"]["familyName"] == "Lee"
    assert shown["meta"]["version"] != found[0]["meta"]["version"]
    assert _by_name(backend, "nobody").total == 0
    assert backend.get(None, USERS, "no-such-id") is None
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
