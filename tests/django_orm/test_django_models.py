"""DjangoModelBackend on Django's own ``auth.User`` and ``auth.Group``, through the Engine.

What a Django app sees: SCIM writes land in its models, rows the app creates or changes are
visible over SCIM with versions that move, bad input is a 400 naming the attribute, bad
configuration fails at start-up naming what is missing.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from scim2_core import ConfigurationError, Engine
from scim2_core.mapping import Field, Members, ResourceMapping
from scim2_core_django.backend import DjangoModelBackend
from scim2_core_django.mapping import AUTH_GROUP, group_mapping, user_mapping
from tests.helpers import GROUP, PATCH_OP, assert_error, call, create_user, user_body


@pytest.fixture
def engine(alias: str) -> Engine:
    return Engine(DjangoModelBackend(using=alias))


def _user(alias: str, **lookup: Any) -> Any:
    from django.contrib.auth.models import User

    return User.objects.using(alias).get(**lookup)


# -- configuration errors, at construction --------------------------------------------------


@pytest.mark.parametrize(
    ("mappings", "named"),
    [
        ([user_mapping("auth.Nope"), AUTH_GROUP], "auth.Nope"),
        ([user_mapping(given_name="first"), AUTH_GROUP], "'first'"),
        ([user_mapping(), group_mapping(relation="groupz")], "'groupz'"),
        ([user_mapping()], "'Group'"),
        (
            [
                user_mapping(extra=(Field(attribute="nickNam", field="last_login"),)),
                AUTH_GROUP,
            ],
            "'nickNam'",
        ),
    ],
)
def test_a_mapping_naming_what_does_not_exist_fails_at_start_up(
    mappings: list[ResourceMapping], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Engine(DjangoModelBackend(mappings))


# -- writes land in the app's models ------------------------------------------------------


def test_a_created_user_is_an_auth_user(engine: Engine, alias: str) -> None:
    created = create_user(
        engine,
        "bjensen",
        name={"givenName": "Barbara", "familyName": "Jensen"},
        emails=[{"value": "bjensen@example.com", "type": "work", "primary": True}],
        title="Tour Guide",
    )
    row = _user(alias, username="bjensen")
    assert (row.first_name, row.last_name, row.email, row.is_active) == (
        "Barbara",
        "Jensen",
        "bjensen@example.com",
        True,
    )
    assert not row.has_usable_password()
    got = call(engine, "GET", f"/Users/{created['id']}").json
    assert got["title"] == "Tour Guide"  # kept beside the row
    assert got["emails"] == [{"value": "bjensen@example.com", "type": "work", "primary": True}]


def test_active_false_deactivates_the_row(engine: Engine, alias: str) -> None:
    created = create_user(engine, "bjensen")
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],  # Entra ID
    }
    assert call(engine, "PATCH", f"/Users/{created['id']}", patch).status == 200
    assert _user(alias, username="bjensen").is_active is False


def test_delete_may_deactivate_instead(alias: str) -> None:
    engine = Engine(
        DjangoModelBackend([user_mapping(on_delete="deactivate"), AUTH_GROUP], using=alias)
    )
    created = create_user(engine, "bjensen")
    assert call(engine, "DELETE", f"/Users/{created['id']}").status == 204
    assert _user(alias, username="bjensen").is_active is False
    assert call(engine, "GET", f"/Users/{created['id']}").status == 404
    listed = call(engine, "GET", "/Users").json
    assert listed["totalResults"] == 0


def test_groups_are_relation_rows(engine: Engine, alias: str) -> None:
    from django.contrib.auth.models import Group

    a = create_user(engine, "alice")
    b = create_user(engine, "bob")
    group = call(
        engine,
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Staff", "members": [{"value": a["id"]}]},
    ).json
    assert list(
        Group.objects.using(alias).get(name="Staff").user_set.values_list("username", flat=True)
    ) == ["alice"]
    add = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": b["id"]}]}],
    }
    assert call(engine, "PATCH", f"/Groups/{group['id']}", add).status == 200
    assert sorted(_user(alias, username="bob").groups.values_list("name", flat=True)) == ["Staff"]
    got = call(engine, "GET", f"/Users/{b['id']}").json
    assert got["groups"][0]["value"] == group["id"]
    found = call(engine, "GET", "/Groups", query={"filter": f'members.value eq "{b["id"]}"'}).json
    assert [r["id"] for r in found["Resources"]] == [group["id"]]
    assert call(engine, "DELETE", f"/Users/{a['id']}").status == 204
    members = call(engine, "GET", f"/Groups/{group['id']}").json["members"]
    assert [m["value"] for m in members] == [b["id"]]


# -- the app's own rows and changes ---------------------------------------------------------


def test_a_user_the_app_creates_is_visible_with_an_id_and_version(
    engine: Engine, alias: str
) -> None:
    from django.contrib.auth.models import User

    User.objects.db_manager(alias).create_user("admin", email="admin@example.com", first_name="Ada")
    found = call(engine, "GET", "/Users", query={"filter": 'userName eq "ADMIN"'}).json
    [resource] = found["Resources"]
    assert resource["emails"] == [{"type": "work", "value": "admin@example.com"}]
    assert resource["name"] == {"givenName": "Ada"}
    assert resource["meta"]["version"] == 'W/"1"'
    assert call(engine, "GET", f"/Users/{resource['id']}").json["id"] == resource["id"]


def test_rows_the_app_bulk_creates_after_a_search_are_found_by_the_next(
    engine: Engine, alias: str
) -> None:
    from django.contrib.auth.models import User

    create_user(engine, "first")
    assert call(engine, "GET", "/Users").json["totalResults"] == 1
    User.objects.using(alias).bulk_create([User(username=f"bulk{i}") for i in range(3)])
    listed = call(engine, "GET", "/Users").json
    assert listed["totalResults"] == 4
    found = call(engine, "GET", "/Users", query={"filter": 'userName eq "BULK2"'}).json
    assert [r["userName"] for r in found["Resources"]] == ["bulk2"]


def test_user_name_eq_follows_a_rename_the_app_saves(engine: Engine, alias: str) -> None:
    created = create_user(engine, "bjensen")
    row = _user(alias, username="bjensen")
    row.username = "Barbara"
    row.save()
    found = call(engine, "GET", "/Users", query={"filter": 'userName eq "barbara"'}).json
    assert [r["id"] for r in found["Resources"]] == [created["id"]]
    assert found["Resources"][0]["meta"]["version"] != created["meta"]["version"]
    gone = call(engine, "GET", "/Users", query={"filter": 'userName eq "bjensen"'}).json
    assert gone["totalResults"] == 0
    taken = call(engine, "POST", "/Users", user_body("BARBARA"))
    assert_error(taken, 409, "uniqueness")


def test_a_change_the_app_makes_moves_the_version(engine: Engine, alias: str) -> None:
    created = create_user(engine, "bjensen")
    first = call(engine, "GET", f"/Users/{created['id']}")
    etag = first.headers["ETag"]
    row = _user(alias, username="bjensen")
    row.first_name = "Babs"
    row.save()
    again = call(engine, "GET", f"/Users/{created['id']}", headers={"If-None-Match": etag})
    assert again.status == 200  # never a 304 for data the app changed
    assert again.json["name"] == {"givenName": "Babs"}
    assert again.headers["ETag"] != etag
    stale = call(
        engine,
        "PUT",
        f"/Users/{created['id']}",
        user_body("bjensen", title="x"),
        headers={"If-Match": etag},
    )
    assert_error(stale, 412)


def test_a_membership_the_app_changes_moves_the_users_version(engine: Engine, alias: str) -> None:
    from django.contrib.auth.models import Group

    created = create_user(engine, "bjensen")
    before = call(engine, "GET", f"/Users/{created['id']}").json["meta"]["version"]
    staff = Group.objects.using(alias).create(name="Staff")
    _user(alias, username="bjensen").groups.add(staff)
    after = call(engine, "GET", f"/Users/{created['id']}").json
    assert after["meta"]["version"] != before
    assert [g["display"] for g in after["groups"]] == ["Staff"]


# -- bad input: 400 naming the attribute, never a 500 or database text ----------------------


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (user_body("x" * 200), "userName"),
        (user_body("bad name!"), "userName"),  # auth.User's username validator
        (user_body("ok", emails=[{"value": "not an email", "type": "work"}]), "emails"),
        (user_body("ok", name={"givenName": "g" * 151}), "name.givenName"),
    ],
)
def test_a_value_the_field_refuses_is_invalid_value(
    engine: Engine, body: dict[str, Any], named: str
) -> None:
    result = call(engine, "POST", "/Users", body)
    assert_error(result, 400, "invalidValue")
    assert named in result.json["detail"]
    assert "sqlite" not in result.raw.decode().lower()
    assert call(engine, "GET", "/Users").json["totalResults"] == 0


def test_a_string_for_an_integer_field_is_invalid_value(alias: str) -> None:
    ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    mapping = ResourceMapping(
        resource_type="User",
        model="scim2_django_testapp.Account",
        fields=(
            Field(attribute="userName", field="username"),
            # a SCIM string in an integer field: the converter gives SCIM its string back
            Field(attribute=f"{ent}:employeeNumber", field="employee_number", to_scim=str),
        ),
    )
    teams = ResourceMapping(
        resource_type="Group",
        model="scim2_django_testapp.Team",
        fields=(Field(attribute="displayName", field="name"),),
        members=Members(relation="members"),
    )
    engine = Engine(DjangoModelBackend([mapping, teams], using=alias))
    result = call(engine, "POST", "/Users", user_body("ok", **{ent: {"employeeNumber": "A-12"}}))
    assert_error(result, 400, "invalidValue")
    assert "employeeNumber" in result.json["detail"]
    ok = call(engine, "POST", "/Users", user_body("ok", **{ent: {"employeeNumber": "12"}}))
    assert ok.status == 201, ok
    assert ok.json[ent]["employeeNumber"] == "12"


# -- uniqueness is the database's -------------------------------------------------------------


def test_concurrent_creates_of_one_user_name_one_wins(engine: Engine, alias: str) -> None:
    from django.db import connections

    statuses: list[int] = []
    start = threading.Barrier(6)

    def create(i: int) -> None:
        try:
            start.wait()
            name = "bjensen" if i % 2 else "BJENSEN"
            statuses.append(call(engine, "POST", "/Users", user_body(name)).status)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 409, 409, 409, 409, 409]
    assert call(engine, "GET", "/Users").json["totalResults"] == 1


# -- a custom user model with email as the login (docs/guide-django-models.md) --------------


def test_a_custom_user_model_with_email_as_the_login(alias: str) -> None:
    from scim2_django_testapp.models import EmailUser
    from scim2_models import EnterpriseUser
    from scim2_models import User as ScimUser

    backend = DjangoModelBackend(
        [user_mapping("scim2_django_testapp.EmailUser", user_name="email", email=None)],
        using=alias,
    )
    engine = Engine(backend, resource_types=[ScimUser[EnterpriseUser]])
    created = create_user(
        engine,
        "Alice@Contoso.com",
        emails=[{"value": "alice@contoso.com", "type": "work", "primary": True}],
    )
    row = EmailUser.objects.using(alias).get()
    assert (row.email, row.is_active, row.has_usable_password()) == (
        "Alice@Contoso.com",
        True,
        False,
    )
    found = call(engine, "GET", "/Users", query={"filter": 'userName eq "alice@contoso.com"'})
    assert [r["id"] for r in found.json["Resources"]] == [created["id"]]
    assert found.json["Resources"][0]["emails"][0]["value"] == "alice@contoso.com"
    refused = call(engine, "POST", "/Users", user_body("not-an-email"))
    assert_error(refused, 400, "invalidValue")
    assert "userName" in refused.json["detail"]


# -- members are rows ----------------------------------------------------------------------


def _writes_of_adding_one_member(engine: Engine, alias: str, size: int) -> list[str]:
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    ids = [create_user(engine, f"user{size}-{i}")["id"] for i in range(size + 1)]
    body = {
        "schemas": [GROUP],
        "displayName": f"G{size}",
        "members": [{"value": i} for i in ids[:-1]],
    }
    group = call(engine, "POST", "/Groups", body).json
    add = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": ids[-1]}]}],
    }
    with CaptureQueriesContext(connections[alias]) as queries:
        answer = call(
            engine,
            "PATCH",
            f"/Groups/{group['id']}",
            add,
            query={"excludedAttributes": "members"},
        )
    assert answer.status == 200
    assert "members" not in answer.json
    after = call(engine, "GET", f"/Groups/{group['id']}").json
    assert [m["value"] for m in after["members"]] == ids
    # No statement lists the group's members: each one names the member it reads (by its
    # primary key or its SCIM id).
    assert not any(
        "auth_user_groups" in q["sql"]
        and '"user_id" IN' not in q["sql"]
        and '"scim_id" IN' not in q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT")
    )
    return [
        q["sql"].split(" ")[0] + " " + q["sql"].split('"')[1]
        for q in queries.captured_queries
        if q["sql"].startswith(("SELECT", "INSERT", "UPDATE", "DELETE"))
    ]


def test_adding_a_member_reads_and_writes_the_same_rows_whatever_the_groups_size(
    engine: Engine, alias: str
) -> None:
    small = _writes_of_adding_one_member(engine, alias, 3)
    large = _writes_of_adding_one_member(engine, alias, 120)
    assert small == large
    assert "INSERT auth_user_groups" in small
    assert not any(w.startswith("DELETE auth_user_groups") for w in small)


# -- a user's groups come with its row -----------------------------------------------------


def _selects(alias: str, run: Any) -> tuple[Any, list[str]]:
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connections[alias]) as queries:
        answer = run()
    return answer, [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]


def _group_ids(resource: dict[str, Any]) -> list[str]:
    return sorted(g["value"] for g in resource.get("groups", []))


def test_a_read_gives_the_users_groups_in_the_statement_that_reads_the_user(
    engine: Engine, alias: str
) -> None:
    from django.contrib.auth.models import Group
    from django.db import connections

    users = [create_user(engine, f"member{i}") for i in range(3)]
    sales = call(engine, "POST", "/Groups", {"schemas": [GROUP], "displayName": "Sales"}).json
    call(engine, "GET", "/Users")  # the page adopts nothing more from here on
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": users[0]["id"]}]}],
    }
    assert call(engine, "PATCH", f"/Groups/{sales['id']}", patch).status == 200
    expected = [{"value": sales["id"], "display": "Sales"}]

    got, selects = _selects(alias, lambda: call(engine, "GET", f"/Users/{users[0]['id']}"))
    assert [{k: g[k] for k in ("value", "display")} for g in got.json["groups"]] == expected
    assert len(selects) == 1
    eq = {"filter": 'userName eq "MEMBER0"'}
    found, selects = _selects(alias, lambda: call(engine, "GET", "/Users", query=eq))
    assert _group_ids(found.json["Resources"][0]) == [sales["id"]]
    assert len(selects) == 1
    listed, selects = _selects(alias, lambda: call(engine, "GET", "/Users"))
    by_id = {r["id"]: _group_ids(r) for r in listed.json["Resources"]}
    assert by_id == {users[0]["id"]: [sales["id"]], users[1]["id"]: [], users[2]["id"]: []}
    # on PostgreSQL the page reads its rows' group keys, then those groups in one more
    # statement for the whole page (never one per user)
    pg = connections[alias].vendor == "postgresql"
    assert len(selects) == (2 if pg else 1)

    # the app changes the membership and the group's name: the next read shows both
    group = Group.objects.using(alias).get(name="Sales")
    _user(alias, username="member1").groups.add(group)
    group.name = "Sales EMEA"
    group.save(using=alias)
    again = call(engine, "GET", f"/Users/{users[1]['id']}").json
    assert [(g["value"], g["display"]) for g in again["groups"]] == [(sales["id"], "Sales EMEA")]


def test_a_patch_answers_with_the_groups_the_apps_signals_gave_the_user(
    engine: Engine, alias: str
) -> None:
    from django.contrib.auth.models import Group, User
    from django.db.models.signals import post_save

    user = create_user(engine, "leaver")
    created = call(engine, "POST", "/Groups", {"schemas": [GROUP], "displayName": "Leavers"})
    leavers = Group.objects.using(alias).get(name="Leavers")

    def file_leavers(sender: Any, instance: Any, **kw: Any) -> None:
        if not instance.is_active:
            instance.groups.add(leavers)

    post_save.connect(file_leavers, sender=User)
    try:
        patch = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        }
        answer = call(engine, "PATCH", f"/Users/{user['id']}", patch)
    finally:
        post_save.disconnect(file_leavers, sender=User)
    assert answer.status == 200
    assert answer.json["active"] is False
    assert _group_ids(answer.json) == [created.json["id"]]


@pytest.mark.postgres
def test_with_prepared_statements_on_postgresql_the_answers_are_the_same(pg_db: str) -> None:
    """Django's ``server_side_binding`` with psycopg's ``prepare_threshold``: the backend's
    fixed statements (read by id, ``userName eq``, a page, the locked read of a PATCH) are
    prepared once and run again with the same answers."""
    from django.db import connections
    from django_orm_helpers import clean_tables

    clean_tables(pg_db)
    try:
        engine = Engine(DjangoModelBackend(using="pg_prepared"))
        users = [create_user(engine, f"prep{i}") for i in range(3)]
        sales = call(engine, "POST", "/Groups", {"schemas": [GROUP], "displayName": "Sales"}).json
        add = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": users[0]["id"]}]}],
        }
        assert call(engine, "PATCH", f"/Groups/{sales['id']}", add).status == 200
        for active in (False, True):  # the second round runs the prepared statements
            got = call(engine, "GET", f"/Users/{users[0]['id']}").json
            assert _group_ids(got) == [sales["id"]]
            eq = {"filter": 'userName eq "PREP1"'}
            found = call(engine, "GET", "/Users", query=eq).json
            assert [r["id"] for r in found["Resources"]] == [users[1]["id"]]
            page = call(engine, "GET", "/Users", query={"startIndex": "2", "count": "1"}).json
            assert page["totalResults"] == 3
            assert [r["id"] for r in page["Resources"]] == [users[1]["id"]]
            flip = {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "active", "value": active}],
            }
            patched = call(engine, "PATCH", f"/Users/{users[2]['id']}", flip)
            assert patched.status == 200
            assert patched.json["active"] is active
        assert _user(pg_db, username="prep2").is_active is True
        with connections["pg_prepared"].cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            prepared = [row[0] for row in cursor.fetchall()]
        assert any("INNER JOIN" in s and "scim2_core_django_scimresource" in s for s in prepared)
    finally:
        connections["pg_prepared"].close()
        clean_tables(pg_db)


# -- fewer round trips, the same answers ----------------------------------------------------


def test_a_patch_writes_the_app_row_and_the_version_in_one_round_trip_on_postgresql(
    engine: Engine, alias: str
) -> None:
    """The bookkeeping's UPDATE rides in the round trip of the UPDATE that the app's own
    ``save()`` sends (PostgreSQL with Django's client-side binding); the version still
    moves, the app's ``post_save`` receivers still run, If-Match still compares."""
    from django.contrib.auth.models import User
    from django.db import connections
    from django.db.models.signals import post_save
    from django.test.utils import CaptureQueriesContext

    user = create_user(engine, "rider")
    saved: list[tuple[bool, Any]] = []

    def receiver(sender: Any, instance: Any, update_fields: Any = None, **kw: Any) -> None:
        saved.append((instance.is_active, update_fields))

    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    post_save.connect(receiver, sender=User)
    try:
        with CaptureQueriesContext(connections[alias]) as queries:
            answer = call(engine, "PATCH", f"/Users/{user['id']}", patch)
    finally:
        post_save.disconnect(receiver, sender=User)
    assert answer.status == 200
    assert answer.json["active"] is False
    assert answer.json["meta"]["version"] != user["meta"]["version"]
    assert saved == [(False, frozenset({"is_active"}))]
    assert _user(alias, username="rider").is_active is False
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    if connections[alias].vendor == "postgresql":
        [both] = updates
        assert "scim2_core_django_scimresource" in both
    else:
        assert len(updates) == 2
    got = call(engine, "GET", f"/Users/{user['id']}")
    assert got.json["meta"]["version"] == answer.json["meta"]["version"]
    assert got.json["active"] is False
    stale = call(
        engine,
        "PATCH",
        f"/Users/{user['id']}",
        {**patch, "Operations": [{"op": "replace", "path": "active", "value": True}]},
        headers={"if-match": user["meta"]["version"]},
    )
    assert stale.status == 412
    assert _user(alias, username="rider").is_active is False


def test_a_patch_whose_save_sends_statements_of_its_own_moves_the_version(
    engine: Engine, alias: str
) -> None:
    """An app whose ``pre_save`` receiver (or ``save()`` override) sends statements of its
    own: only the app row's UPDATE carries the bookkeeping's, exactly once."""
    from django.contrib.auth.models import Group, User
    from django.db.models.signals import pre_save

    user = create_user(engine, "busy")
    Group.objects.using(alias).create(name="Audit")

    def receiver(sender: Any, instance: Any, **kw: Any) -> None:
        Group.objects.using(alias).filter(name="Audit").update(name="Audit")

    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "name.givenName", "value": "Busy"}],
    }
    pre_save.connect(receiver, sender=User)
    try:
        answer = call(engine, "PATCH", f"/Users/{user['id']}", patch)
    finally:
        pre_save.disconnect(receiver, sender=User)
    assert answer.status == 200
    got = call(engine, "GET", f"/Users/{user['id']}").json
    assert got["meta"]["version"] == answer.json["meta"]["version"] != user["meta"]["version"]
    assert got["name"]["givenName"] == "Busy"
    assert _user(alias, username="busy").first_name == "Busy"


def test_every_window_of_a_listing_is_the_same_read_from_either_end(
    engine: Engine, alias: str
) -> None:
    """Past the middle of the listing, PostgreSQL reads the window walking the index from
    its end: every window (RFC 7644 §3.4.2.4) is the one a walk from the start gives."""
    created = [create_user(engine, f"walker{i}")["id"] for i in range(7)]
    listed = call(engine, "GET", "/Users", query={"count": "100"}).json
    order = [r["id"] for r in listed["Resources"]]
    assert sorted(order) == sorted(created)
    for start in range(1, 10):
        for count in (1, 2, 3, 7):
            page = call(
                engine, "GET", "/Users", query={"startIndex": str(start), "count": str(count)}
            ).json
            assert page["totalResults"] == 7
            assert [r["id"] for r in page.get("Resources", [])] == order[
                start - 1 : start - 1 + count
            ], (start, count)


def test_user_name_eq_an_empty_text_answers_like_any_other_value(
    engine: Engine, alias: str
) -> None:
    """The unique index's statement runs for a value that is not empty; ``eq ""`` goes
    the general way and finds no one here (RFC 7644 §3.4.2.2)."""
    create_user(engine, "bjensen")
    found = call(engine, "GET", "/Users", query={"filter": 'userName eq ""'})
    assert found.status == 200
    assert found.json["totalResults"] == 0
    named = call(engine, "GET", "/Users", query={"filter": 'userName eq "BJensen"'}).json
    assert named["totalResults"] == 1


def test_the_extras_read_as_the_json_field_reads_them() -> None:
    """The fixed statements' JSON reader gives what ``JSONField.from_db_value`` gives,
    texts orjson refuses and texts that are not JSON included."""
    from django.db import models

    from scim2_core_django._backend_types import _json_from_db

    field = models.JSONField()
    texts = ['{"title": "x", "n": 1.5}', "[1, NaN]", '"\\ud800"', "not json", "1e400", "-0"]
    texts += [str(n) for n in (1 << 63, -(1 << 63), 1 << 64, 1 << 70, -(1 << 70))]
    texts += ['{"id": "' + str(1 << 70) + '"}', "[0.1, 1e-320, 123456789012345678]"]
    for text in [None, *texts]:
        mine, theirs = _json_from_db(text, None, None), field.from_db_value(text, None, None)
        assert repr(mine) == repr(theirs), text


def test_user_name_eq_answers_the_same_on_every_request_of_its_shape(
    engine: Engine, alias: str
) -> None:
    """After the first ``userName eq``, later ones of that shape skip the filter's
    translation: other values, other cases, the full path, other attributes (RFC 7644
    §3.4.2.2, userName caseExact false) answer as before."""
    ids = {n: create_user(engine, n, name={"familyName": n.upper()})["id"] for n in ("ann", "bob")}
    urn = "urn:ietf:params:scim:schemas:core:2.0:User:userName"
    for _ in range(2):
        for text, expected in [
            ('userName eq "ANN"', ["ann"]),
            ('userName eq "bob"', ["bob"]),
            (f'{urn} eq "Bob"', ["bob"]),
            ('userName eq "carl"', []),
            ('userName eq ""', []),
            ('name.familyName eq "ANN"', ["ann"]),
            ('userName eq "ann" or userName eq "bob"', ["ann", "bob"]),
        ]:
            found = call(engine, "GET", "/Users", query={"filter": text}).json
            assert sorted(r["id"] for r in found.get("Resources", [])) == sorted(
                ids[n] for n in expected
            ), text
