"""SQLAlchemyBackend through the Engine, as an app and an identity provider see it.

The app's tables are read directly (not through SCIM) to show where the data went; rows and
changes the app makes through its own session show up over SCIM with moving versions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sa_app import ACCOUNT, MODELS, TEAM, Account, Team, team_members
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from scim2_core import ConfigurationError, Engine, InvalidValueError
from scim2_core.mapping import Field, Members, ResourceMapping
from scim2_core_sqlalchemy import SQLAlchemyBackend

ROOT = Path(__file__).resolve().parents[2]
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def call(scim: Engine, method: str, path: str, body: Any = None, **headers: str) -> Any:
    request: dict[str, Any] = {"method": method, "path": path, "headers": dict(headers)}
    if body is not None:
        request["body"] = json.dumps(body).encode()
        request["headers"]["Content-Type"] = "application/scim+json"
    if "?" in path:
        path, _, qs = path.partition("?")
        request["path"] = path
        request["query"] = dict(p.split("=", 1) for p in qs.split("&"))
    response = scim.handle(request)  # type: ignore[arg-type]
    body_out = json.loads(response["body"]) if response["body"] else None
    return response["status"], body_out, response["headers"]


@pytest.fixture(autouse=True)
def _close_backends() -> Any:
    yield
    while OPENED:
        OPENED.pop().close()


OPENED: list[SQLAlchemyBackend] = []


def scim_on(engine: sa.Engine, *mappings: ResourceMapping) -> Engine:
    backend = SQLAlchemyBackend(engine, mappings or (ACCOUNT, TEAM), models=MODELS)
    OPENED.append(backend)
    return Engine(backend)


def test_import_scim2_core_does_not_import_sqlalchemy() -> None:
    code = (
        "import sys, scim2_core, scim2_core.backends, scim2_core.mapping\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            ResourceMapping(
                resource_type="User",
                model="Account",
                fields=(Field(attribute="userName", field="login"),),
            ),
            "no column 'login'",
        ),
        (
            ResourceMapping(
                resource_type="User",
                model="Nobody",
                fields=(Field(attribute="userName", field="username"),),
            ),
            "no model 'Nobody'",
        ),
    ],
)
def test_a_mapping_naming_what_does_not_exist_fails_at_start_up(
    engine: sa.Engine, mapping: ResourceMapping, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SQLAlchemyBackend(engine, [mapping, TEAM], models=MODELS)


def test_a_missing_relationship_fails_at_start_up(engine: sa.Engine) -> None:
    team = ResourceMapping(resource_type="Group", model="Team", members=Members(relation="people"))
    with pytest.raises(ConfigurationError, match="no relationship 'people'"):
        SQLAlchemyBackend(engine, [ACCOUNT, team], models=MODELS)


def test_a_missing_scim_attribute_fails_when_the_engine_binds(engine: sa.Engine) -> None:
    bad = ResourceMapping(
        resource_type="User",
        model="Account",
        fields=(
            Field(attribute="userName", field="username"),
            Field(attribute="nope", field="email"),
        ),
    )
    with pytest.raises(ConfigurationError, match="nope"):
        scim_on(engine, bad, TEAM)


def test_provisioning_writes_the_apps_own_rows(engine: sa.Engine) -> None:
    before = {t: [c["name"] for c in sa.inspect(engine).get_columns(t)] for t in ("app_account",)}
    scim = scim_on(engine)
    status, u, _ = call(
        scim,
        "POST",
        "/Users",
        {
            "schemas": [USER],
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
            "title": "Tour Guide",
            "externalId": "entra-1",
        },
    )
    assert status == 201
    status, g, _ = call(
        scim,
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Admins", "members": [{"value": u["id"]}]},
    )
    assert status == 201
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(Account.username, Account.first_name, Account.email, Account.is_active)
        ).one()
        assert tuple(row) == ("bjensen", "Barbara", "bjensen@example.com", True)
        team = conn.execute(sa.select(Team.id, Team.name)).one()
        assert team.name == "Admins"
        links = conn.execute(sa.select(team_members)).all()
        assert [(link.team_id) for link in links] == [team.id]
    # The app's tables are as the app made them.
    assert before == {
        t: [c["name"] for c in sa.inspect(engine).get_columns(t)] for t in ("app_account",)
    }
    # Unmapped attributes round-trip; User.groups is derived from the association table.
    status, got, _ = call(scim, "GET", f"/Users/{u['id']}")
    assert status == 200
    assert got["title"] == "Tour Guide"
    assert got["externalId"] == "entra-1"
    assert [x["value"] for x in got["groups"]] == [g["id"]]


def test_member_add_and_remove_are_row_inserts_and_deletes(engine: sa.Engine) -> None:
    scim = scim_on(engine)
    ids = [
        call(scim, "POST", "/Users", {"schemas": [USER], "userName": f"u{i}"})[1]["id"]
        for i in range(3)
    ]
    _, g, _ = call(scim, "POST", "/Groups", {"schemas": [GROUP], "displayName": "Team"})
    for member in ids:
        status, _, _ = call(
            scim,
            "PATCH",
            f"/Groups/{g['id']}",
            {
                "schemas": [PATCH],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": member}]}],
            },
        )
        assert status in (200, 204)
    status, _, _ = call(
        scim,
        "PATCH",
        f"/Groups/{g['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "remove", "path": f'members[value eq "{ids[0]}"]'}],
        },
    )
    assert status in (200, 204)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(team_members)).scalar() == 2
    # Deleting a user deletes its membership rows in the same transaction.
    assert call(scim, "DELETE", f"/Users/{ids[1]}")[0] == 204
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(team_members)).scalar() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(Account)).scalar() == 2
    _, got, _ = call(scim, "GET", f"/Groups/{g['id']}")
    assert [m["value"] for m in got["members"]] == [ids[2]]


def test_rows_the_app_creates_and_changes_are_visible_with_moving_versions(
    engine: sa.Engine,
) -> None:
    scim = scim_on(engine)
    with Session(engine) as session:
        session.add(Account(username="app.made", first_name="Ann"))
        session.commit()
    status, page, _ = call(scim, "GET", '/Users?filter=userName eq "APP.MADE"')
    assert status == 200
    assert page["totalResults"] == 1
    found = page["Resources"][0]
    assert found["name"] == {"givenName": "Ann"}
    old_version = found["meta"]["version"]
    with Session(engine) as session:
        account = session.scalars(sa.select(Account)).one()
        account.first_name = "Anna"
        session.commit()
    status, got, _ = call(scim, "GET", f"/Users/{found['id']}")
    assert status == 200
    assert got["name"] == {"givenName": "Anna"}
    assert got["meta"]["version"] != old_version
    # An If-Match with the version SCIM saw before the app's change fails.
    status, _, _ = call(
        scim,
        "PATCH",
        f"/Users/{found['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "x"}]},
        **{"If-Match": old_version},
    )
    assert status == 412
    # The app deletes its row: gone for SCIM too.
    with Session(engine) as session:
        session.execute(sa.delete(Account))
        session.commit()
    assert call(scim, "GET", f"/Users/{found['id']}")[0] == 404


def test_rows_written_with_raw_sql_are_found_by_the_next_read(engine: sa.Engine) -> None:
    scim = scim_on(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO app_account (username, first_name, last_name, email, is_active, work_email) VALUES ('raw', 'R', '', '', 1 = 1, '')"
            )
        )
    _, page, _ = call(scim, "GET", '/Users?filter=userName eq "RAW"')
    assert page["totalResults"] == 1
    found = page["Resources"][0]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE app_account SET first_name = 'Ray'"))
    status, got, _ = call(scim, "GET", f"/Users/{found['id']}")
    assert status == 200
    assert got["name"] == {"givenName": "Ray"}
    assert got["meta"]["version"] != found["meta"]["version"]
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM app_account"))
    assert call(scim, "GET", f"/Users/{found['id']}")[0] == 404
    assert call(scim, "GET", "/Users")[1]["totalResults"] == 0


def test_the_apps_orm_writes_are_seen_at_once(engine: sa.Engine) -> None:
    scim = scim_on(engine)
    _, u, _ = call(scim, "POST", "/Users", {"schemas": [USER], "userName": "old.name"})
    with Session(engine) as session:
        account = session.scalars(sa.select(Account)).one()
        account.username = "new.name"
        session.add(Account(username="fresh"))
        session.commit()
    # No SCIM read of the renamed user happened in between: the filter finds the new name.
    _, page, _ = call(scim, "GET", '/Users?filter=userName eq "NEW.NAME"')
    assert [r["id"] for r in page["Resources"]] == [u["id"]]
    assert page["Resources"][0]["meta"]["version"] != u["meta"]["version"]
    _, page, _ = call(scim, "GET", '/Users?filter=userName eq "old.name"')
    assert page["totalResults"] == 0
    # The old name is free again, the new one taken.
    assert call(scim, "POST", "/Users", {"schemas": [USER], "userName": "old.name"})[0] == 201
    assert call(scim, "POST", "/Users", {"schemas": [USER], "userName": "Fresh"})[0] == 409
    with Session(engine) as session:
        session.delete(
            session.scalars(sa.select(Account).where(Account.username == "new.name")).one()
        )
        session.commit()
    assert call(scim, "GET", f"/Users/{u['id']}")[0] == 404


def test_a_value_that_does_not_fit_a_column_is_invalid_value_naming_it(
    engine: sa.Engine,
) -> None:
    scim = scim_on(engine)
    status, body, _ = call(scim, "POST", "/Users", {"schemas": [USER], "userName": "x" * 151})
    assert status == 400
    assert body["scimType"] == "invalidValue"
    assert "userName" in body["detail"]
    for word in ("INSERT", "SELECT", "sqlite", "psycopg", "app_account"):
        assert word not in body["detail"]


def test_an_integer_out_of_the_columns_range_is_invalid_value_naming_it(
    engine: sa.Engine,
) -> None:
    number = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
    mapping = ResourceMapping(
        resource_type="User",
        model="Account",
        fields=(
            *ACCOUNT.fields,
            Field(attribute=number, field="employee_number", to_model=int, to_scim=str),
        ),
    )
    scim = scim_on(engine, mapping, TEAM)
    ext = number.rsplit(":", 1)[0]
    body = {"schemas": [USER, ext], "userName": "n", ext: {"employeeNumber": str(2**40)}}
    status, answer, _ = call(scim, "POST", "/Users", body)
    assert (status, answer["scimType"]) == (400, "invalidValue")
    assert "employeeNumber" in answer["detail"]
    body[ext] = {"employeeNumber": "forty-two"}  # the converter (int) refuses it
    status, answer, _ = call(scim, "POST", "/Users", body)
    assert (status, answer["scimType"]) == (400, "invalidValue")
    assert "employeeNumber" in answer["detail"]
    body[ext] = {"employeeNumber": "42"}
    status, created, _ = call(scim, "POST", "/Users", body)
    assert status == 201
    assert created[ext] == {"employeeNumber": "42"}
    with engine.connect() as conn:
        assert conn.execute(sa.select(Account.employee_number)).scalar() == 42


def test_a_mapping_takes_the_model_class_and_a_failing_converter_is_a_400(
    engine: sa.Engine,
) -> None:
    def refuse_odd(value: str) -> str:
        if value.startswith("!"):  # a converter's own SCIM error is the answer as it is
            raise InvalidValueError("A given name cannot start with '!'.")
        if len(value) % 2:
            raise RuntimeError("odd length")  # any exception a converter raises
        return value

    users = ResourceMapping(
        resource_type="User",
        model=Account,  # the class itself: no ``models=`` needed
        fields=(
            *(f for f in ACCOUNT.fields if f.attribute != "name.givenName"),
            Field(attribute="name.givenName", field="first_name", to_model=refuse_odd),
        ),
    )
    teams = ResourceMapping(
        resource_type="Group", model=Team, fields=TEAM.fields, members=TEAM.members
    )
    backend = SQLAlchemyBackend(engine, [users, teams])
    try:
        scim = Engine(backend)
        body = {"schemas": [USER], "userName": "odd", "name": {"givenName": "Bob"}}
        status, answer, _ = call(scim, "POST", "/Users", body)
        assert (status, answer["scimType"]) == (400, "invalidValue")
        assert "name.givenName" in answer["detail"]
        assert "odd length" not in answer["detail"]
        body["name"] = {"givenName": "!Bobby"}
        status, answer, _ = call(scim, "POST", "/Users", body)
        assert (status, answer["scimType"]) == (400, "invalidValue")
        assert answer["detail"] == "A given name cannot start with '!'."
        body["name"] = {"givenName": "Bobby!"}
        status, created, _ = call(scim, "POST", "/Users", body)
        assert status == 201
        assert created["name"]["givenName"] == "Bobby!"
    finally:
        backend.close()


def test_user_name_is_unique_ignoring_case_in_the_database(engine: sa.Engine) -> None:
    scim = scim_on(engine)
    assert call(scim, "POST", "/Users", {"schemas": [USER], "userName": "bjensen"})[0] == 201
    status, body, _ = call(scim, "POST", "/Users", {"schemas": [USER], "userName": "BJensen"})
    assert (status, body["scimType"]) == (409, "uniqueness")
    _, page, _ = call(scim, "GET", '/Users?filter=userName eq "BJENSEN"')
    assert page["totalResults"] == 1


def test_user_name_eq_answers_each_value_with_its_statement_built_once(
    engine: sa.Engine,
) -> None:
    # The page of a `userName eq` filter is compiled once and reused with other values:
    # each value still finds its own user (any case), a page past it is empty with the
    # right total, and an absent name finds nothing.
    scim = scim_on(engine)
    ids = {}
    for name in ("alice", "Bob", "carol"):
        status, u, _ = call(scim, "POST", "/Users", {"schemas": [USER], "userName": name})
        assert status == 201
        ids[name] = u["id"]
    status, g, _ = call(
        scim,
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Ops", "members": [{"value": ids["Bob"]}]},
    )
    assert status == 201
    for _ in range(2):
        for name, asked in (("alice", "ALICE"), ("Bob", "bob"), ("carol", "Carol")):
            _, page, _ = call(scim, "GET", f'/Users?filter=userName eq "{asked}"')
            assert page["totalResults"] == 1
            assert [r["id"] for r in page["Resources"]] == [ids[name]]
            assert [x["value"] for x in page["Resources"][0].get("groups", [])] == (
                [g["id"]] if name == "Bob" else []
            )
        _, page, _ = call(scim, "GET", '/Users?filter=userName eq "dave"')
        assert page["totalResults"] == 0
        _, page, _ = call(scim, "GET", '/Users?filter=userName eq "BOB"&startIndex=2')
        assert (page["totalResults"], page.get("Resources", [])) == (1, [])
    # Several users in one list: each gets its own groups.
    _, page, _ = call(scim, "GET", "/Users")
    groups = {r["id"]: [x["value"] for x in r.get("groups", [])] for r in page["Resources"]}
    assert groups == {ids["alice"]: [], ids["Bob"]: [g["id"]], ids["carol"]: []}


def test_delete_can_deactivate_the_apps_row(engine: sa.Engine) -> None:
    mapping = ResourceMapping(
        resource_type="User",
        model="Account",
        fields=ACCOUNT.fields,
        on_delete="deactivate",
    )
    scim = scim_on(engine, mapping, TEAM)
    _, u, _ = call(scim, "POST", "/Users", {"schemas": [USER], "userName": "leaver"})
    assert call(scim, "DELETE", f"/Users/{u['id']}")[0] == 204
    assert call(scim, "GET", f"/Users/{u['id']}")[0] == 404
    with engine.connect() as conn:
        assert tuple(conn.execute(sa.select(Account.username, Account.is_active)).one()) == (
            "leaver",
            False,
        )


def test_active_maps_to_the_apps_flag(engine: sa.Engine) -> None:
    scim = scim_on(engine)
    _, u, _ = call(scim, "POST", "/Users", {"schemas": [USER], "userName": "a", "active": True})
    status, _, _ = call(
        scim,
        "PATCH",
        f"/Users/{u['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "Replace", "value": {"active": "False"}}]},
    )
    assert status in (200, 204)
    with engine.connect() as conn:
        assert conn.execute(sa.select(Account.is_active)).scalar() is False


def test_the_apps_open_session_is_never_committed(engine: sa.Engine) -> None:
    scim = scim_on(engine)
    with Session(engine) as session:
        session.add(Account(username="pending"))  # not flushed, not committed
        assert call(scim, "POST", "/Users", {"schemas": [USER], "userName": "scim"})[0] == 201
        session.rollback()
    with engine.connect() as conn:
        assert conn.execute(sa.select(Account.username)).scalars().all() == ["scim"]


def test_sqlite_journal_mode_is_left_as_the_app_set_it(tmp_path: Path) -> None:
    from sa_app import Base

    engine = sa.create_engine(f"sqlite:///{tmp_path}/app.db")
    Base.metadata.create_all(engine)
    with engine.connect() as conn:
        before = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    scim = scim_on(engine)
    assert call(scim, "POST", "/Users", {"schemas": [USER], "userName": "x"})[0] == 201
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == before == "delete"
    engine.dispose()


def test_flask_sqlalchemy_models_work(tmp_path: Path) -> None:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    class Base(DeclarativeBase):
        pass

    db = SQLAlchemy(model_class=Base)
    links = db.Table(
        "fs_team_user",
        sa.Column("team_id", sa.ForeignKey("fs_team.id"), primary_key=True),
        sa.Column("user_id", sa.ForeignKey("fs_user.id"), primary_key=True),
    )

    class User(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "fs_user"
        id: Mapped[int] = mapped_column(primary_key=True)
        login: Mapped[str] = mapped_column(sa.String(80), unique=True)

    class Crew(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "fs_team"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(sa.String(80))
        people: Mapped[list[User]] = relationship(secondary=links)

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/flask.db"
    db.init_app(app)
    with app.app_context():
        db.create_all()
        backend = SQLAlchemyBackend(
            db.engine,
            [
                ResourceMapping(
                    resource_type="User",
                    model="User",
                    fields=(Field(attribute="userName", field="login"),),
                ),
                ResourceMapping(
                    resource_type="Group",
                    model="Crew",
                    fields=(Field(attribute="displayName", field="title"),),
                    members=Members(relation="people"),
                ),
            ],
            models=[User, Crew],
        )
        scim = Engine(backend)
        _, u, _ = call(scim, "POST", "/Users", {"schemas": [USER], "userName": "kim"})
        status, _, _ = call(
            scim,
            "POST",
            "/Groups",
            {"schemas": [GROUP], "displayName": "Ops", "members": [{"value": u["id"]}]},
        )
        assert status == 201
        crew = db.session.scalars(sa.select(Crew)).one()
        assert [p.login for p in crew.people] == ["kim"]
        db.session.remove()  # its connection back to the pool, which dispose() then closes
        db.engine.dispose()


def test_an_index_added_to_the_bookkeeping_is_created_on_an_existing_database(
    engine: sa.Engine,
) -> None:
    scim_on(engine)
    with engine.begin() as conn:  # as an earlier release left it
        conn.execute(sa.text("DROP INDEX scim2_core_resource_page"))
        conn.execute(
            sa.text(
                "CREATE INDEX scim2_core_resource_order ON scim2_core_resources "
                "(resource_type, deleted, created, scim_id)"
            )
        )
    scim_on(engine)  # the tables exist: the new index is created, the one it replaced dropped
    names = {i["name"] for i in sa.inspect(engine).get_indexes("scim2_core_resources")}
    assert "scim2_core_resource_page" in names
    assert "scim2_core_resource_order" not in names


def test_the_member_index_is_made_on_an_existing_sqlite_database_only(engine: sa.Engine) -> None:
    scim_on(engine)
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        with engine.begin() as conn:  # as an earlier release left it
            conn.execute(sa.text("DROP INDEX scim2_core_resource_member"))
    scim = scim_on(engine)
    names = {i["name"] for i in sa.inspect(engine).get_indexes("scim2_core_resources")}
    assert ("scim2_core_resource_member" in names) == sqlite
    uid = call(scim, "POST", "/Users", {"schemas": [USER], "userName": "ann"})[1]["id"]
    group = {"schemas": [GROUP], "displayName": "Ops", "members": [{"value": uid}]}
    gid = call(scim, "POST", "/Groups", group)[1]["id"]
    assert [m["value"] for m in call(scim, "GET", f"/Groups/{gid}")[1]["members"]] == [uid]


def test_a_groups_members_come_in_the_order_scim_made_or_adopted_them(engine: sa.Engine) -> None:
    """The documented order of ``members``: the order in which SCIM created the members or
    adopted the app's rows, whichever way the group is read (alone, in a page, in a page
    of several groups), whatever the order they were added in."""
    scim = scim_on(engine)
    made = [
        call(scim, "POST", "/Users", {"schemas": [USER], "userName": f"u{i}"})[1]["id"]
        for i in range(6)
    ]
    with engine.begin() as conn:  # a row of the app's own, adopted by the next read
        conn.execute(sa.insert(MODELS[0]), [{"username": "app1"}])
    _, page, _ = call(scim, "GET", '/Users?filter=userName eq "app1"')
    ids = [*made, page["Resources"][0]["id"]]
    shuffled = [ids[6], ids[3], ids[0], ids[5]]
    group = {"schemas": [GROUP], "displayName": "Ops", "members": [{"value": i} for i in shuffled]}
    gid = call(scim, "POST", "/Groups", group)[1]["id"]
    add = {
        "schemas": [PATCH],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": ids[1]}]}],
    }
    assert call(scim, "PATCH", f"/Groups/{gid}", add)[0] == 200
    expected = [i for i in ids if i in {*shuffled, ids[1]}]
    other = {"schemas": [GROUP], "displayName": "Dev", "members": [{"value": ids[2]}]}
    call(scim, "POST", "/Groups", other)
    alone = call(scim, "GET", f"/Groups/{gid}")[1]
    paged = call(scim, "GET", "/Groups?startIndex=1&count=10")[1]["Resources"]
    found = call(scim, "GET", '/Groups?filter=displayName eq "Ops"')[1]["Resources"]
    for read in (alone, *(g for g in paged if g["id"] == gid), *found):
        assert [m["value"] for m in read["members"]] == expected
