"""The contract suite for a backend over an application's own user and group models.

A backend that maps SCIM onto an app's own tables (``scim2_core_django.backend``,
``scim2_core_sqlalchemy``) cannot offer everything :class:`BackendContract` asks of a store
of documents: the app's tables have no tenant column, no model holds the suite's ``Device``
type, and a group's members are rows of a relation to the user model, so a member must
exist before it joins and only users can be members. :class:`OwnModelsContract` is the suite
with exactly those cases changed, each with its reason; everything else runs unchanged.
:class:`RelationModel` is the suite's random-operation model for such a backend.
"""

from __future__ import annotations

from typing import Any

import pytest

from .._errors import InvalidValueError
from ..backends import Backend, SearchQuery
from ..filter import bind, parse_filter
from ._contract import (
    DEFAULT_ORDER,
    GROUP,
    SEARCH_USERS,
    USER,
    USER_FILTERS,
    BackendContract,
    _Model,
    bumped,
    group,
    search_ids,
    user,
)

__all__ = ["OwnModelsContract", "RelationModel"]


def _no_refs(resource: dict[str, Any]) -> dict[str, Any]:
    out = dict(resource)
    if "members" in out:
        out["members"] = [{k: v for k, v in m.items() if k != "$ref"} for m in out["members"]]
    return out


def _without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "meta"}


class OwnModelsContract(BackendContract):
    """:class:`BackendContract` for a backend over the app's own ``User``/``Group`` models.

    Subclass it with a ``backend`` fixture (fresh, unbound) mapping the suite's ``User``
    (``userName``, ``name``, a work email, ``active``) and ``Group`` (``displayName``, a
    ``members`` relation to users); the ``db`` fixture binds those two types only.
    """

    @pytest.fixture
    def db(self, backend: Backend) -> Backend:
        # Only the mapped types: a resource type needs a model (the suite's Device has none).
        backend.bind((USER, GROUP))
        return backend

    @pytest.fixture
    def directory(self, db: Backend) -> Backend:
        # The suite stores its groups before their members (a store of documents can hold
        # an id that does not exist yet); a relation row needs its member's row: the users
        # come first here, so that creating the groups touches them.
        for u in sorted(SEARCH_USERS, key=lambda u: u["id"]):
            db.create(None, USER, u)
        db.create(
            None,
            GROUP,
            group("all", "All", tuple(DEFAULT_ORDER), created="2021-01-01T00:00:00.000Z"),
        )
        db.create(None, GROUP, group("admins", "Admins", ("c3", "g7")))
        db.create(None, GROUP, group("empty", "Empty", created="2022-01-01T00:00:00.000Z"))
        return db

    def test_search_returns_complete_resources(self, directory: Backend) -> None:
        # As the suite's, but c3 was touched by joining two groups (see ``directory``).
        page = directory.search(
            None, USER, SearchQuery(filter=bind(parse_filter('id eq "c3"'), USER))
        )
        [found] = page.resources
        expected = SEARCH_USERS[2]
        assert found["meta"]["version"] == 'W/"3"'
        assert _without_meta(found) == _without_meta(expected)
        assert found["meta"]["created"] == expected["meta"]["created"]

    # -- what a mapping onto the app's tables cannot offer, each with its reason ------------

    def test_server_and_global_uniqueness(self, *args: Any, **kwargs: Any) -> None:
        pytest.skip("needs the suite's Device type and tenants: no app model holds a Device")

    def test_global_value_is_released_by_update_and_delete(self, *args: Any, **kwargs: Any) -> None:
        pytest.skip("needs the suite's Device type and tenants: no app model holds a Device")

    def test_tenants_are_isolated(self, *args: Any, **kwargs: Any) -> None:
        pytest.skip("the app's tables have no tenant column: one tenant only (others get 501)")

    def test_random_operations_keep_indexes_consistent(self, *args: Any, **kwargs: Any) -> None:
        pytest.skip(
            "its model runs each example in a tenant of its own and stores groups as members "
            "and members that do not exist; RelationModel is the model for this backend"
        )

    def test_without_members_nothing_is_checked(self, db: Backend) -> None:
        # A relation row needs its member's row: an id that is no resource is refused even
        # when the engine did not ask for the check (it always does).
        with pytest.raises(InvalidValueError, match="ghost1"):
            db.create(None, GROUP, group("g1", "Admins", ("ghost1",)))
        assert db.get(None, GROUP, "g1") is None

    def test_update_change_raising_writes_nothing(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "a"))
        db.create(None, USER, user("u2", "b"))
        db.create(None, GROUP, group("g1", "Admins", ("u1",)))
        before = db.get(None, GROUP, "g1")

        def change(current: dict[str, Any]) -> dict[str, Any]:
            current["members"].append({"value": "u2"})
            current["displayName"] = "Changed"
            raise InvalidValueError("no")

        with pytest.raises(InvalidValueError):
            db.update(None, GROUP, "g1", change)
        assert db.get(None, GROUP, "g1") == before
        assert db.groups_of(None, ["u2"]).get("u2", []) == []

    @staticmethod
    def _as_stored(resource: dict[str, Any]) -> dict[str, Any]:
        # Members are relation rows: their ``$ref`` is rendered by the engine, not stored.
        return _no_refs(resource)

    def test_delete_group_leaves_users_and_their_other_groups(self, db: Backend) -> None:
        # As the suite's, without g1 as a member of g2 (the relation holds users only).
        db.create(None, USER, user("u1", "bjensen"))
        db.create(None, GROUP, group("g1", "Admins", ("u1",)))
        db.create(None, GROUP, group("g2", "Staff", ("u1",)))
        db.delete(None, GROUP, "g1")
        u1 = db.get(None, USER, "u1")
        assert u1 is not None
        assert u1.pop("meta")["version"] == 'W/"4"'  # joined g1, joined g2, left g1
        assert u1 == {k: v for k, v in user("u1", "bjensen").items() if k != "meta"}
        assert db.groups_of(None, ["u1"]) == {"u1": [{"value": "g2", "display": "Staff"}]}

    def _members_fixture(self, db: Backend) -> dict[str, dict[str, Any]]:
        # As the suite's, without the nested group and the Device among g1's members.
        for i in (1, 2, 3):
            db.create(None, USER, user(f"u{i}", f"user{i}"))
        db.create(None, GROUP, group("g0", "Nested"))
        db.create(None, GROUP, group("g1", "Admins", ("u1",)))
        return self._snapshot(db)

    @staticmethod
    def _snapshot(db: Backend) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for rt, id in ((USER, "u1"), (USER, "u2"), (USER, "u3"), (GROUP, "g0")):
            got = db.get(None, rt, id)
            assert got is not None
            out[id] = got
        return out

    def _write_g1(self, db: Backend, change: Any) -> None:
        def apply(current: dict[str, Any]) -> None:
            change(current)
            current["meta"]["lastModified"] = self.WHEN

        db.update(None, GROUP, "g1", bumped(apply), members=["u1", "u2"])

    def test_replacing_members_touches_the_added_and_the_removed(self, db: Backend) -> None:
        before = self._members_fixture(db)
        self._write_g1(db, lambda current: current.update(members=[{"value": "u2"}]))
        self._assert_touched(before, self._snapshot(db), {"u1", "u2"}, self.WHEN)

    def test_groups_of_lists_direct_memberships(self, db: Backend) -> None:
        for i in (1, 2, 3):
            db.create(None, USER, user(f"u{i}", f"user{i}"))
        db.create(None, GROUP, group("g1", "Admins", ("u1", "u2")))
        db.create(None, GROUP, group("g2", "Staff", ("u1",)))
        found = db.groups_of(None, ["u1", "u2", "u3", "g1", "unknown"])
        assert {k: sorted(v, key=lambda g: g["value"]) for k, v in found.items() if v} == {
            "u1": [{"value": "g1", "display": "Admins"}, {"value": "g2", "display": "Staff"}],
            "u2": [{"value": "g1", "display": "Admins"}],
        }

    def test_create_with_missing_members_stores_nothing(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "a"))
        with pytest.raises(InvalidValueError, match="nope"):
            db.create(None, GROUP, group("g1", "Admins", ("u1", "nope")), members=["u1", "nope"])
        assert db.get(None, GROUP, "g1") is None
        assert db.existing(None, ["g1"]) == {}
        assert db.groups_of(None, ["u1"]).get("u1", []) == []
        assert search_ids(db, GROUP, 'displayName eq "Admins"') == (0, [])

    @pytest.mark.parametrize(
        ("filter", "expected"),
        [(f, e) for f, e in USER_FILTERS if not f.startswith("meta.lastModified")],
    )
    def test_search_users(self, directory: Backend, filter: str, expected: list[str]) -> None:
        assert search_ids(directory, USER, filter) == (len(expected), expected)

    def test_search_last_modified(self, directory: Backend) -> None:
        # The suite's directory stores users untouched; here joining "All" (2021) touched
        # every user, then joining "Admins" (written at 2020) touched c3 and g7 again.
        assert search_ids(directory, USER, 'meta.lastModified gt "2020-06-01T00:00:00Z"') == (
            5,
            ["e5", "a1", "b2", "d4", "f6"],
        )
        assert search_ids(directory, USER, 'meta.lastModified lt "2021-01-01T00:00:00Z"') == (
            2,
            ["g7", "c3"],
        )

    # -- MemberRows, with members that are users (the suite's g1 holds a group and a Device)

    #: The relation holds no ``display`` column to filter on (it is kept beside it).
    filters_member_display = False

    def _member_rows_group(self, db: Backend) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """g1 holds u1 and u3; u2 is in no group."""
        for i in (1, 2, 3):
            db.create(None, USER, user(f"u{i}", f"user{i}"))
        db.create(None, GROUP, group("g0", "Nested"))
        db.create(None, GROUP, group("g1", "Admins", ("u1", "u3")))
        return self._snapshot(db), ["u1", "u3"]

    @staticmethod
    def _listed_after_add(stored: list[str], added: str) -> list[str]:
        """The relation lists members in the order the users were created (u1, u2, u3)."""
        return sorted([*stored, added])


class RelationModel(_Model):
    """The suite's model of memberships, uniqueness and versions, for a relation: group
    members are the users that exist, and members list in the order they joined.

    Run it as the suite's ``test_random_operations_keep_indexes_consistent`` does, in the
    one tenant (``None``) on fresh tables: ``model.apply(backend, None, op)`` for each
    operation drawn from ``scim2_core.testing.MODEL_OPS``, then ``model.check(backend, None)``.
    """

    def apply(self, backend: Backend, tenant: Any, op: tuple[Any, ...]) -> None:
        if op[0] in ("create_group", "set_members"):
            op = (op[0], op[1], [m for m in op[2] if m in self.names])
        super().apply(backend, tenant, op)

    @staticmethod
    def listed(items: list[Any]) -> list[Any]:
        """A relation has no order of its own: lists compare sorted."""
        return sorted(items, key=str)
