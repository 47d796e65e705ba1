"""The contract every :class:`~scim2_core.backends.Backend` passes.

Subclass :class:`BackendContract` and provide a ``backend`` fixture returning a fresh,
*unbound* backend::

    class TestMemory(BackendContract):
        @pytest.fixture
        def backend(self) -> Backend:
            return MemoryBackend()

Import it as ``from scim2_core.testing import BackendContract`` (register
``scim2_core.testing`` for assert rewriting in a ``conftest.py``). A slow backend may
lower ``model_examples`` (the random operation-sequence test) in its subclass.

The suite speaks only the protocol (:class:`scim2_core.backends.Backend`). Search results are
checked twice: against the ids written in the table (what a user of the RFC expects) and
against :func:`scim2_core.filter.compile_filter` applied in plain Python to the same
dicts, which is the reference semantics every backend must reproduce.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, Final, TypeVar

import pytest
import scim2_models
from hypothesis import given, settings
from hypothesis import strategies as st

from .._errors import (
    InvalidValueError,
    NotFoundError,
    PreconditionFailedError,
    ScimError,
    UniquenessError,
)
from ..backends import Backend, MemberRows, Page, SearchQuery, SortSpec
from ..filter import bind, compile_filter, parse_filter
from ..schema import (
    ENTERPRISE_USER_URN,
    GROUP_URN,
    USER_URN,
    Attribute,
    ResourceType,
    Schema,
    next_version,
    resource_type_from_model,
    version_number,
)

USER: Final = resource_type_from_model(scim2_models.User[scim2_models.EnterpriseUser])
GROUP: Final = resource_type_from_model(scim2_models.Group)

DEVICE_URN: Final = "urn:example:params:scim:schemas:2.0:Device"
#: A custom resource type with a ``global`` and a ``server`` unique attribute, to check the
#: two scopes and both case rules (the default types have no ``global`` attribute).
DEVICE: Final = ResourceType(
    name="Device",
    endpoint="/Devices",
    schema=Schema(
        id=DEVICE_URN,
        name="Device",
        attributes=(
            Attribute(name="serialNumber", case_exact=True, uniqueness="global"),
            Attribute(name="hostname", uniqueness="server"),
            Attribute(name="displayName"),
        ),
    ),
)
RESOURCE_TYPES: Final = (USER, GROUP, DEVICE)

ENT: Final = ENTERPRISE_USER_URN


def meta(rt: ResourceType, id: str, created: str, modified: str | None = None) -> dict[str, Any]:
    return {
        "resourceType": rt.name,
        "created": created,
        "lastModified": modified or created,
        "location": f"https://example.com/scim/v2{rt.endpoint}/{id}",
        "version": 'W/"1"',
    }


def user(
    id: str, user_name: str, *, created: str = "2020-01-01T00:00:00.000Z", **attrs: Any
) -> dict[str, Any]:
    """A canonical User dict, as the engine hands it to ``create``."""
    schemas = [USER_URN, ENT] if ENT in attrs else [USER_URN]
    modified = attrs.pop("modified", None)
    return {
        "schemas": schemas,
        "id": id,
        "userName": user_name,
        **attrs,
        "meta": meta(USER, id, created, modified),
    }


def group(
    id: str,
    display_name: str,
    member_ids: tuple[str, ...] = (),
    *,
    created: str = "2020-01-01T00:00:00.000Z",
    modified: str | None = None,
) -> dict[str, Any]:
    """A canonical Group dict listing ``member_ids``, as the engine hands it to ``create``."""
    out: dict[str, Any] = {"schemas": [GROUP_URN], "id": id, "displayName": display_name}
    if member_ids:
        out["members"] = [
            {"value": m, "type": "User", "$ref": f"https://example.com/scim/v2/Users/{m}"}
            for m in member_ids
        ]
    out["meta"] = meta(GROUP, id, created, modified)
    return out


def device(id: str, serial: str, hostname: str) -> dict[str, Any]:
    """A canonical Device dict (the custom type with a global and a server unique attribute)."""
    return {
        "schemas": [DEVICE_URN],
        "id": id,
        "serialNumber": serial,
        "hostname": hostname,
        "meta": meta(DEVICE, id, "2020-01-01T00:00:00.000Z"),
    }


def bumped(
    change: Callable[[dict[str, Any]], object],
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A ``change`` that applies ``change`` and bumps the version, as the engine does."""

    def apply(current: dict[str, Any]) -> dict[str, Any]:
        change(current)
        current["meta"]["version"] = next_version(current["meta"]["version"])
        return current

    return apply


def member_values(resource: dict[str, Any]) -> list[str]:
    """The ``members[].value`` of ``resource``, in order."""
    return [m["value"] for m in resource.get("members") or []]


# --- The directory the search tables run over -------------------------------------------
#
# Ids are deliberately out of creation order; b2 and d4 share meta.created (ties by id).
# Tricky data: userName/externalId case differences, `%` and `_` in values (SQL LIKE
# escaping), missing and empty values, several emails with a primary, extension attributes.

SEARCH_USERS: Final = (
    user(
        "g7",
        "bJensen.admin",
        created="2009-06-01T08:00:00.000Z",
        displayName="Babs (admin)",
        active=True,
        emails=[{"value": "bjensen-admin@example.com", "type": "work"}],
    ),
    user(
        "e5",
        "mary_jones",
        created="2010-01-23T04:56:22.000Z",
        title="Manager",
        displayName="Mary%Jones",
        active=False,
        name={"givenName": "Mary", "familyName": "Jones"},
        emails=[{"value": "mary@EXAMPLE.com", "type": "work"}],
        **{ENT: {"department": "Sales"}},
    ),
    user(
        "c3",
        "bjensen",
        created="2011-05-13T04:42:34.000Z",
        modified="2015-01-01T00:00:00.000Z",
        externalId="EXT-1",
        name={
            "formatted": "Ms. Barbara J Jensen III",
            "familyName": "Jensen",
            "givenName": "Barbara",
        },
        displayName="Babs Jensen",
        title="Tour Guide",
        active=True,
        emails=[
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        **{
            ENT: {
                "employeeNumber": "701984",
                "department": "Tour Operations",
                "manager": {"value": "e5"},
            }
        },
    ),
    user(
        "a1",
        "JSmith",
        created="2012-01-01T00:00:00.000Z",
        externalId="ext-1",
        displayName="Jane_Smith",
        title="100% Manager",
        active=True,
        name={"familyName": "Smith", "givenName": "Jane"},
    ),
    user("b2", "nobody", created="2013-03-01T12:00:00.000Z"),
    user(
        "d4",
        "zed",
        created="2013-03-01T12:00:00.000Z",
        displayName="zed",
        title="manager",
        active=True,
        name={"givenName": "Zed", "familyName": ""},
        emails=[
            {"value": "z@other.org", "type": "home"},
            {"value": "alpha.zed@example.com", "type": "work", "primary": True},
        ],
        **{ENT: {"employeeNumber": "42", "department": "R&D"}},
    ),
    user(
        "f6",
        "sale%_2024",
        created="2014-02-28T23:59:59.999Z",
        externalId="50%",
        title="50%_off",
        displayName="Sale_Bot",
        active=False,
    ),
)
#: The default order of results: (meta.created, id).
DEFAULT_ORDER: Final = ["g7", "e5", "c3", "a1", "b2", "d4", "f6"]
ALL: Final = DEFAULT_ORDER

#: (filter, expected ids in default order).
USER_FILTERS: Final[list[tuple[str, list[str]]]] = [
    # eq on indexed attributes, with their case rules
    ('userName eq "bjensen"', ["c3"]),
    ('userName eq "BJENSEN"', ["c3"]),
    ('USERNAME Eq "jsmith"', ["a1"]),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "zed"', ["d4"]),
    ('userName eq "no such user"', []),
    ('externalId eq "EXT-1"', ["c3"]),
    ('externalId eq "ext-1"', ["a1"]),
    ('externalId eq "50%"', ["f6"]),
    ('id eq "e5"', ["e5"]),
    ('id eq "E5"', []),
    ('id eq "c3" or id eq "f6" or id eq "zz"', ["c3", "f6"]),
    ('userName eq "nobody" or userName eq "ZED"', ["b2", "d4"]),
    ('userName eq "bjensen" or externalId eq "50%"', ["c3", "f6"]),
    ('userName eq "bjensen" and title pr', ["c3"]),
    ('userName eq "bjensen" and active eq false', []),
    ('userName eq "bjensen" or title eq "manager"', ["e5", "c3", "d4"]),
    # substring operators: case-insensitive, and % / _ are literal characters
    ('userName sw "bjensen"', ["g7", "c3"]),
    ('userName sw "BJ"', ["g7", "c3"]),
    ('userName co "_"', ["e5", "f6"]),
    ('userName co "%"', ["f6"]),
    ('userName ew "_2024"', ["f6"]),
    ('title co "%"', ["a1", "f6"]),
    ('title co "%_"', ["f6"]),
    ('title sw "100%"', ["a1"]),
    ('displayName eq "Mary%Jones"', ["e5"]),
    ('displayName sw "Jane_"', ["a1"]),
    ('displayName sw "Jane%"', []),
    ('displayName co "y%J"', ["e5"]),
    ('displayName co "_"', ["a1", "f6"]),
    ('displayName eq "ZED"', ["d4"]),
    ('title eq "manager"', ["e5", "d4"]),
    # ordering comparisons on strings are case-insensitive too (caseExact false)
    ('userName gt "m"', ["e5", "b2", "d4", "f6"]),
    ('userName lt "C"', ["g7", "c3"]),
    # presence, missing and empty values, not
    ("title pr", ["e5", "c3", "a1", "d4", "f6"]),
    ("not (title pr)", ["g7", "b2"]),
    ("externalId pr", ["c3", "a1", "f6"]),
    ("name.familyName pr", ["e5", "c3", "a1"]),
    ('name.familyName eq "jensen"', ["c3"]),
    ("active eq false", ["e5", "f6"]),
    ("active eq true", ["g7", "c3", "a1", "d4"]),
    ("not (active eq true)", ["e5", "b2", "f6"]),
    ('(userName sw "b" or userName sw "j") and not (active eq false)', ["g7", "c3", "a1"]),
    # multi-valued complex attributes: any value; value paths: one value satisfies all
    ('emails.value co "example.com"', ["g7", "e5", "c3", "d4"]),
    ('emails.value eq "MARY@example.com"', ["e5"]),
    ('emails[type eq "work" and value ew "EXAMPLE.COM"]', ["g7", "e5", "c3", "d4"]),
    ('emails[type eq "home"]', ["c3", "d4"]),
    ('emails[type eq "home" and value ew "example.com"]', []),
    ('emails.type eq "home" and emails.value ew "example.com"', ["c3", "d4"]),
    ("emails.primary eq true", ["c3", "d4"]),
    # extension attributes
    (f'{ENT}:department eq "r&d"', ["d4"]),
    (f"{ENT}:employeeNumber pr", ["c3", "d4"]),
    (f'{ENT}:manager.value eq "e5"', ["c3"]),
    # dateTimes compare as instants, whatever the literal's precision or offset
    ('meta.created gt "2012-01-01T00:00:00Z"', ["b2", "d4", "f6"]),
    ('meta.created ge "2012-01-01T00:00:00Z"', ["a1", "b2", "d4", "f6"]),
    ('meta.created lt "2011-05-13T05:42:34+01:00"', ["g7", "e5"]),
    ('meta.created le "2011-05-13T05:42:34+01:00"', ["g7", "e5", "c3"]),
    ('meta.created eq "2014-02-28T23:59:59.999Z"', ["f6"]),
    ('meta.lastModified gt "2014-12-31T00:00:00Z"', ["c3"]),
    ('meta.resourceType eq "User"', ALL),
]

#: (sortBy, descending, expected ids) over SEARCH_USERS with no filter.
USER_SORTS: Final[list[tuple[str, bool, list[str]]]] = [
    # case-insensitive userName; "bjensen" sorts before its extension "bjensen.admin"
    ("userName", False, ["c3", "g7", "a1", "e5", "b2", "f6", "d4"]),
    ("userName", True, ["d4", "f6", "b2", "e5", "a1", "g7", "c3"]),
    # "Manager"/"manager" tie (by id ascending, in both directions); missing values last
    # ascending and first descending
    ("title", False, ["a1", "f6", "d4", "e5", "c3", "b2", "g7"]),
    ("title", True, ["b2", "g7", "c3", "d4", "e5", "f6", "a1"]),
    ("meta.created", False, ["g7", "e5", "c3", "a1", "b2", "d4", "f6"]),
    ("meta.created", True, ["f6", "b2", "d4", "a1", "c3", "e5", "g7"]),
    # multi-valued: the primary value, else the first
    ("emails.value", False, ["d4", "g7", "c3", "e5", "a1", "b2", "f6"]),
    (f"{ENT}:employeeNumber", False, ["d4", "c3", "a1", "b2", "e5", "f6", "g7"]),
]

#: (filter or None, sortBy or None, offset, count, expected total, expected ids).
USER_PAGES: Final[list[tuple[str | None, str | None, int, int, int, list[str]]]] = [
    (None, None, 0, 2, 7, ["g7", "e5"]),
    (None, None, 2, 3, 7, ["c3", "a1", "b2"]),
    (None, None, 6, 5, 7, ["f6"]),
    (None, None, 7, 5, 7, []),
    (None, None, 100, 5, 7, []),
    (None, None, 0, 0, 7, []),
    (None, None, 0, 100, 7, ALL),
    ("title pr", None, 1, 2, 5, ["c3", "a1"]),
    ("title pr", None, 0, 0, 5, []),
    ("title pr", "userName", 0, 10, 5, ["c3", "a1", "e5", "f6", "d4"]),
    (None, "userName", 1, 2, 7, ["g7", "a1"]),
    ('userName eq "bjensen"', None, 1, 10, 1, []),
    ('userName eq "bjensen"', None, 0, 0, 1, []),
]

GROUP_FILTERS: Final[list[tuple[str, list[str]]]] = [
    ('members.value eq "c3"', ["admins", "all"]),
    ('members[value eq "g7"]', ["admins", "all"]),
    ('members.value eq "C3"', []),
    ('members.value eq "nobody"', []),
    ('members.value eq "c3" and displayName eq "ADMINS"', ["admins"]),
    ('members.value eq "b2" or members.value eq "g7"', ["admins", "all"]),
    ("members pr", ["admins", "all"]),
    ("not (members pr)", ["empty"]),
    ('displayName sw "a"', ["admins", "all"]),
]


def search_ids(
    backend: Backend,
    rt: ResourceType,
    filter: str | None = None,
    *,
    tenant: str | None = None,
    sort: str | None = None,
    descending: bool = False,
    offset: int = 0,
    count: int = 100,
) -> tuple[int, list[str]]:
    """``(total, ids of the page)`` of a search with ``filter`` (text), sort and window."""
    query = SearchQuery(
        filter=bind(parse_filter(filter), rt) if filter is not None else None,
        sort=SortSpec(path=rt.resolve_path(sort), descending=descending) if sort else None,
        offset=offset,
        count=count,
    )
    page = backend.search(tenant, rt, query)
    assert isinstance(page, Page)
    return page.total, [r["id"] for r in page.resources]


def reference_ids(rt: ResourceType, filter: str, resources: list[dict[str, Any]]) -> list[str]:
    """What ``compile_filter`` selects, in plain Python, from resources in default order."""
    predicate = compile_filter(bind(parse_filter(filter), rt), rt)
    return [r["id"] for r in resources if predicate(r)]


# --- A model of the membership and uniqueness bookkeeping, for random operation sequences --

MODEL_USERS: Final = ("u0", "u1", "u2", "u3")
MODEL_GROUPS: Final = ("g0", "g1", "g2")
MODEL_NAMES: Final = ("alice", "ALICE", "Bob", "bob", "carol")

_member_lists = st.lists(st.sampled_from(MODEL_USERS + MODEL_GROUPS), unique=True, max_size=4)
MODEL_OPS: Final = st.lists(
    st.one_of(
        st.tuples(
            st.just("create_user"), st.sampled_from(MODEL_USERS), st.sampled_from(MODEL_NAMES)
        ),
        st.tuples(
            st.just("rename_user"), st.sampled_from(MODEL_USERS), st.sampled_from(MODEL_NAMES)
        ),
        st.tuples(st.just("create_group"), st.sampled_from(MODEL_GROUPS), _member_lists),
        st.tuples(st.just("set_members"), st.sampled_from(MODEL_GROUPS), _member_lists),
        st.tuples(st.just("delete"), st.sampled_from(MODEL_USERS + MODEL_GROUPS)),
    ),
    max_size=20,
)


_T = TypeVar("_T")


class _Model:
    """What a backend must hold after a sequence of operations, in plain Python."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # user id -> userName
        self.members: dict[str, list[str]] = {}  # group id -> member ids
        self.versions: dict[str, int] = {}

    def touch(self, member_ids: Iterable[str]) -> None:
        """Members that joined or left a group: the existing users get a new version."""
        for member_id in set(member_ids):
            if member_id in self.names:
                self.versions[member_id] += 1

    def name_taken(self, name: str, by_other_than: str) -> bool:
        return any(n.lower() == name.lower() and i != by_other_than for i, n in self.names.items())

    def apply(self, backend: Backend, tenant: str, op: tuple[Any, ...]) -> None:
        kind, id = op[0], op[1]
        exists = id in self.names or id in self.members
        if kind == "create_user":
            if exists or self.name_taken(op[2], id):
                with pytest.raises(ScimError) as caught:
                    backend.create(tenant, USER, user(id, op[2]))
                assert caught.value.status == 409
            else:
                backend.create(tenant, USER, user(id, op[2]))
                self.names[id], self.versions[id] = op[2], 1
        elif kind == "rename_user":
            rename = bumped(lambda r: r.update(userName=op[2]))
            if id not in self.names:
                with pytest.raises(NotFoundError):
                    backend.update(tenant, USER, id, rename)
            elif self.name_taken(op[2], id):
                with pytest.raises(UniquenessError):
                    backend.update(tenant, USER, id, rename)
            else:
                backend.update(tenant, USER, id, rename)
                self.names[id] = op[2]
                self.versions[id] += 1
        elif kind == "create_group":
            if exists:
                with pytest.raises(ScimError) as caught:
                    backend.create(tenant, GROUP, group(id, f"Group {id}", tuple(op[2])))
                assert caught.value.status == 409
            else:
                backend.create(tenant, GROUP, group(id, f"Group {id}", tuple(op[2])))
                self.members[id], self.versions[id] = list(op[2]), 1
                self.touch(op[2])
        elif kind == "set_members":
            entries = [{"value": m, "type": "User"} for m in op[2]]
            change = bumped(lambda r: r.update(members=entries))
            if id not in self.members:
                with pytest.raises(NotFoundError):
                    backend.update(tenant, GROUP, id, change)
            else:
                backend.update(tenant, GROUP, id, change)
                self.touch(set(self.members[id]) ^ set(op[2]))
                self.members[id] = list(op[2])
                self.versions[id] += 1
        else:
            rt = USER if id in MODEL_USERS else GROUP
            if not exists:
                with pytest.raises(NotFoundError):
                    backend.delete(tenant, rt, id)
                return
            backend.delete(tenant, rt, id)
            self.names.pop(id, None)
            self.touch(self.members.pop(id, ()))
            del self.versions[id]
            for group_id, members in self.members.items():
                if id in members:
                    members.remove(id)
                    self.versions[group_id] += 1

    def check(self, backend: Backend, tenant: str) -> None:
        ids = MODEL_USERS + MODEL_GROUPS
        assert backend.existing(tenant, ids) == {
            **dict.fromkeys(self.names, "User"),
            **dict.fromkeys(self.members, "Group"),
        }
        for name in {n.lower() for n in MODEL_NAMES}:
            found = search_ids(backend, USER, f'userName eq "{name}"', tenant=tenant)
            assert found[1] == [i for i, n in self.names.items() if n.lower() == name]
        groups_of = backend.groups_of(tenant, ids)
        for id in ids:
            holders = sorted(g for g, members in self.members.items() if id in members)
            found = search_ids(backend, GROUP, f'members.value eq "{id}"', tenant=tenant)
            assert sorted(found[1]) == holders
            # The protocol pins the order: by group id.
            listed = self.listed(groups_of.get(id, []))
            assert listed == [{"value": g, "display": f"Group {g}"} for g in holders]
        for id, name in self.names.items():
            got = backend.get(tenant, USER, id)
            assert got is not None
            assert (got["userName"], got["meta"]["version"]) == (name, f'W/"{self.versions[id]}"')
        for id, members in self.members.items():
            got = backend.get(tenant, GROUP, id)
            assert got is not None
            assert self.listed(member_values(got)) == self.listed(members)
            assert got["meta"]["version"] == f'W/"{self.versions[id]}"'

    @staticmethod
    def listed(items: list[_T]) -> list[_T]:
        """A list as :meth:`check` compares it: in its order here."""
        return items


class _Fixtures:
    """The fixtures every part of the contract uses: ``backend`` (a subclass provides it),
    ``db`` (bound to the suite's resource types) and ``directory`` (a known set of users
    and groups to search)."""

    #: Examples of the random operation-sequence test; a slow backend may lower it.
    model_examples: ClassVar[int] = 100

    @staticmethod
    def _as_stored(resource: dict[str, Any]) -> dict[str, Any]:
        """What of ``resource`` a write and a read give back unchanged: all of it here."""
        return resource

    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError("subclasses provide a fresh, unbound backend")

    @pytest.fixture
    def db(self, backend: Backend) -> Backend:
        assert isinstance(backend, Backend)
        backend.bind(RESOURCE_TYPES)
        return backend

    @pytest.fixture
    def directory(self, db: Backend) -> Backend:
        # The groups first, so that their users are stored as written (a group created
        # after its members touches them: a new version and lastModified).
        db.create(
            None,
            GROUP,
            group("all", "All", tuple(DEFAULT_ORDER), created="2021-01-01T00:00:00.000Z"),
        )
        db.create(None, GROUP, group("admins", "Admins", ("c3", "g7")))
        db.create(None, GROUP, group("empty", "Empty", created="2022-01-01T00:00:00.000Z"))
        # created out of meta.created order, so the default order is the backend's doing
        for u in sorted(SEARCH_USERS, key=lambda u: u["id"]):
            db.create(None, USER, u)
        return db


class WriteContract(_Fixtures):
    """Create, get, uniqueness, update and delete (RFC 7643 §2.3, RFC 7644 §3.3-§3.6, §3.14)."""

    # -- create / get --------------------------------------------------------------------

    def test_create_returns_and_stores_the_resource(self, db: Backend) -> None:
        resource = SEARCH_USERS[2]
        assert db.create(None, USER, resource) == resource
        assert db.get(None, USER, "c3") == resource

    def test_get_unknown_or_other_type_is_none(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "bjensen"))
        assert db.get(None, USER, "nope") is None
        assert db.get(None, GROUP, "u1") is None

    def test_never_shares_dicts_with_callers(self, db: Backend) -> None:
        given = user("u1", "bjensen", emails=[{"value": "b@example.com", "type": "work"}])
        created = db.create(None, USER, given)
        given["emails"][0]["value"] = "changed-given"
        created["emails"][0]["value"] = "changed-returned"
        got = db.get(None, USER, "u1")
        assert got is not None
        assert got["emails"][0]["value"] == "b@example.com"
        got["meta"]["version"] = "mutated"
        page = db.search(None, USER, SearchQuery())
        assert page.resources[0]["meta"]["version"] == 'W/"1"'
        page.resources[0]["userName"] = "mutated"
        seen: list[dict[str, Any]] = []

        def change(current: dict[str, Any]) -> dict[str, Any]:
            seen.append(current)
            current["displayName"] = "Babs"
            return current

        updated = db.update(None, USER, "u1", change)
        seen[0]["displayName"] = "mutated after update"
        updated["displayName"] = "mutated result"
        after = db.get(None, USER, "u1")
        assert after is not None
        assert (after["userName"], after["displayName"]) == ("bjensen", "Babs")
        assert after["meta"]["version"] == 'W/"1"'

    # -- uniqueness ----------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("first", "second", "conflict"),
        [
            ("bjensen", "bjensen", True),
            ("bjensen", "BJensen", True),  # userName is caseExact false
            ("BJENSEN", "bjensen", True),
            ("bjensen", "bjensen2", False),
            ("bjensen", "b_ensen", False),
        ],
    )
    def test_user_name_uniqueness_ignores_case(
        self, db: Backend, first: str, second: str, conflict: bool
    ) -> None:
        db.create(None, USER, user("u1", first))
        if conflict:
            with pytest.raises(UniquenessError) as caught:
                db.create(None, USER, user("u2", second))
            assert (caught.value.status, caught.value.scim_type) == (409, "uniqueness")
            assert "userName" in caught.value.detail
            assert db.get(None, USER, "u2") is None
            assert db.existing(None, ["u2"]) == {}
        else:
            db.create(None, USER, user("u2", second))
            assert db.get(None, USER, "u2") is not None

    def test_external_id_and_display_name_are_not_unique(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "a", externalId="x", displayName="Same"))
        db.create(None, USER, user("u2", "b", externalId="x", displayName="Same"))
        db.create(None, GROUP, group("g1", "Admins"))
        db.create(None, GROUP, group("g2", "Admins"))
        assert search_ids(db, USER, 'externalId eq "x"') == (2, ["u1", "u2"])

    def test_id_is_unique_across_resource_types(self, db: Backend) -> None:
        db.create(None, USER, user("same", "bjensen"))
        with pytest.raises(ScimError) as caught:
            db.create(None, GROUP, group("same", "Admins"))
        assert caught.value.status == 409
        assert db.get(None, GROUP, "same") is None

    def test_update_to_a_taken_user_name_conflicts_and_changes_nothing(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "bjensen"))
        db.create(None, USER, user("u2", "jsmith"))
        with pytest.raises(UniquenessError) as caught:
            db.update(None, USER, "u2", bumped(lambda r: r.update(userName="BJensen")))
        assert "userName" in caught.value.detail
        assert db.get(None, USER, "u2") == user("u2", "jsmith")
        assert search_ids(db, USER, 'userName eq "jsmith"') == (1, ["u2"])
        with pytest.raises(UniquenessError):
            db.create(None, USER, user("u3", "JSMITH"))

    def test_update_may_keep_or_recase_its_own_user_name(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "bjensen"))
        db.update(None, USER, "u1", bumped(lambda r: r.update(title="Boss")))
        db.update(None, USER, "u1", bumped(lambda r: r.update(userName="BJensen")))
        got = db.get(None, USER, "u1")
        assert got is not None
        assert (got["userName"], got["title"]) == ("BJensen", "Boss")

    def test_renamed_user_name_is_released_and_indexed(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "bjensen"))
        db.update(None, USER, "u1", bumped(lambda r: r.update(userName="babs")))
        assert search_ids(db, USER, 'userName eq "bjensen"') == (0, [])
        assert search_ids(db, USER, 'userName eq "BABS"') == (1, ["u1"])
        db.create(None, USER, user("u2", "BJENSEN"))
        assert search_ids(db, USER, 'userName eq "bjensen"') == (1, ["u2"])

    def test_deleted_user_name_is_released(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "bjensen"))
        db.delete(None, USER, "u1")
        db.create(None, USER, user("u2", "bjensen"))
        assert search_ids(db, USER, 'userName eq "bjensen"') == (1, ["u2"])

    @pytest.mark.parametrize(
        ("first", "second", "same_tenant", "conflict"),
        [
            # serialNumber: uniqueness global, caseExact true
            (("SN-1", "h1"), ("SN-1", "h2"), True, True),
            (("SN-1", "h1"), ("SN-1", "h2"), False, True),
            (("SN-1", "h1"), ("sn-1", "h2"), False, False),
            # hostname: uniqueness server (per tenant), caseExact false
            (("SN-1", "host"), ("SN-2", "HOST"), True, True),
            (("SN-1", "host"), ("SN-2", "HOST"), False, False),
        ],
    )
    def test_server_and_global_uniqueness(
        self,
        db: Backend,
        first: tuple[str, str],
        second: tuple[str, str],
        same_tenant: bool,
        conflict: bool,
    ) -> None:
        db.create("acme", DEVICE, device("d1", *first))
        tenant = "acme" if same_tenant else "globex"
        if conflict:
            with pytest.raises(UniquenessError):
                db.create(tenant, DEVICE, device("d2", *second))
            assert db.get(tenant, DEVICE, "d2") is None
        else:
            assert db.create(tenant, DEVICE, device("d2", *second))["id"] == "d2"

    def test_global_value_is_released_by_update_and_delete(self, db: Backend) -> None:
        db.create("acme", DEVICE, device("d1", "SN-1", "h1"))
        db.update("acme", DEVICE, "d1", bumped(lambda r: r.update(serialNumber="SN-9")))
        db.create("globex", DEVICE, device("d2", "SN-1", "h1"))
        db.delete("globex", DEVICE, "d2")
        db.create("initech", DEVICE, device("d3", "SN-1", "h1"))
        with pytest.raises(UniquenessError):
            db.create("globex", DEVICE, device("d4", "SN-9", "h1"))

    # -- update --------------------------------------------------------------------------

    def test_update_stores_what_change_returns(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "bjensen", title="Guide"))
        received: list[dict[str, Any]] = []

        def change(current: dict[str, Any]) -> dict[str, Any]:
            received.append(dict(current))
            new = user("u1", "bjensen", displayName="Babs")
            new["meta"]["version"] = 'W/"2"'
            return new

        result = db.update(None, USER, "u1", change)
        assert received == [user("u1", "bjensen", title="Guide")]
        expected = user("u1", "bjensen", displayName="Babs")
        expected["meta"]["version"] = 'W/"2"'
        assert result == expected
        assert db.get(None, USER, "u1") == expected

    def test_update_change_none_keeps_the_resource_and_version(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "bjensen"))

        def change(current: dict[str, Any]) -> None:
            current["userName"] = "scribbled on the copy"

        assert db.update(None, USER, "u1", change) == user("u1", "bjensen")
        assert db.get(None, USER, "u1") == user("u1", "bjensen")

    def test_update_change_raising_writes_nothing(self, db: Backend) -> None:
        db.create(None, GROUP, group("g1", "Admins", ("u1",)))

        def change(current: dict[str, Any]) -> dict[str, Any]:
            current["members"].append({"value": "u2"})
            current["displayName"] = "Changed"
            raise InvalidValueError("no")

        with pytest.raises(InvalidValueError):
            db.update(None, GROUP, "g1", change)
        assert db.get(None, GROUP, "g1") == group("g1", "Admins", ("u1",))
        assert db.groups_of(None, ["u2"]).get("u2", []) == []

    def test_update_missing_is_not_found(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "bjensen"))
        with pytest.raises(NotFoundError):
            db.update(None, USER, "nope", bumped(lambda r: None))
        with pytest.raises(NotFoundError):
            db.update(None, GROUP, "u1", bumped(lambda r: None))

    @pytest.mark.parametrize(
        ("if_match", "ok"),
        [
            (None, True),
            (['W/"1"'], True),
            (['W/"0"', 'W/"1"'], True),
            (['W/"2"'], False),
            (['"1"'], False),  # versions are compared exactly as stored
            ([], False),
        ],
    )
    def test_update_if_match_is_compare_and_set(
        self, db: Backend, if_match: list[str] | None, ok: bool
    ) -> None:
        db.create(None, USER, user("u1", "bjensen"))
        change = bumped(lambda r: r.update(title="Boss"))
        if ok:
            assert db.update(None, USER, "u1", change, if_match=if_match)["title"] == "Boss"
        else:
            with pytest.raises(PreconditionFailedError) as caught:
                db.update(None, USER, "u1", change, if_match=if_match)
            assert caught.value.status == 412
            assert db.get(None, USER, "u1") == user("u1", "bjensen")

    def test_stale_if_match_fails_after_a_concurrent_write(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "bjensen"))
        seen = db.get(None, USER, "u1")
        assert seen is not None
        db.update(None, USER, "u1", bumped(lambda r: r.update(title="A")))
        with pytest.raises(PreconditionFailedError):
            db.update(
                None,
                USER,
                "u1",
                bumped(lambda r: r.update(title="B")),
                if_match=[seen["meta"]["version"]],
            )
        with pytest.raises(PreconditionFailedError):
            db.delete(None, USER, "u1", if_match=[seen["meta"]["version"]])
        got = db.get(None, USER, "u1")
        assert got is not None
        assert (got["title"], got["meta"]["version"]) == ("A", 'W/"2"')

    # -- delete --------------------------------------------------------------------------

    def test_delete_returns_the_resource_and_forgets_it(self, db: Backend) -> None:
        stored = db.create(None, USER, user("u1", "bjensen"))
        assert db.delete(None, USER, "u1", if_match=['W/"1"']) == stored
        assert db.get(None, USER, "u1") is None
        assert db.existing(None, ["u1"]) == {}
        assert search_ids(db, USER) == (0, [])
        assert search_ids(db, USER, 'userName eq "bjensen"') == (0, [])
        with pytest.raises(NotFoundError):
            db.delete(None, USER, "u1")

    def test_delete_checks_type_and_version(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "bjensen"))
        with pytest.raises(NotFoundError):
            db.delete(None, GROUP, "u1")
        with pytest.raises(PreconditionFailedError):
            db.delete(None, USER, "u1", if_match=['W/"7"'])
        assert db.get(None, USER, "u1") is not None

    def test_delete_removes_memberships_and_touches_groups(self, db: Backend) -> None:
        for i in (1, 2, 3):
            db.create(None, USER, user(f"u{i}", f"user{i}"))
        db.create(None, GROUP, group("g1", "Admins", ("u1", "u2")))
        db.create(None, GROUP, group("g2", "Solo", ("u1",)))
        db.create(None, GROUP, group("g3", "Others", ("u3",)))
        db.delete(None, USER, "u1")
        g1, g2, g3 = (db.get(None, GROUP, g) for g in ("g1", "g2", "g3"))
        assert g1 is not None
        assert g2 is not None
        assert g3 is not None
        assert member_values(g1) == ["u2"]
        assert member_values(g2) == []
        assert self._as_stored(g3) == self._as_stored(group("g3", "Others", ("u3",)))
        for touched in (g1, g2):
            assert version_number(touched["meta"]["version"]) > 1
            assert touched["meta"]["lastModified"] > touched["meta"]["created"]
        assert db.groups_of(None, ["u1"]).get("u1", []) == []
        assert search_ids(db, GROUP, 'members.value eq "u1"') == (0, [])
        assert search_ids(db, GROUP, 'members.value eq "u2"') == (1, ["g1"])
        # the id may come back (a restore): re-adding it makes it a member again
        db.create(None, USER, user("u1", "user1"))
        db.update(None, GROUP, "g1", bumped(lambda r: r["members"].append({"value": "u1"})))
        assert db.groups_of(None, ["u1"]) == {"u1": [{"value": "g1", "display": "Admins"}]}
        assert search_ids(db, GROUP, 'members.value eq "u1"') == (1, ["g1"])

    def test_delete_group_leaves_users_and_their_other_groups(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "bjensen"))
        db.create(None, GROUP, group("g1", "Admins", ("u1",)))
        db.create(None, GROUP, group("g2", "Staff", ("u1", "g1")))
        db.delete(None, GROUP, "g1")
        u1 = db.get(None, USER, "u1")
        assert u1 is not None
        u1_meta = u1.pop("meta")
        assert u1 == {k: v for k, v in user("u1", "bjensen").items() if k != "meta"}
        assert u1_meta["version"] == 'W/"4"'  # joined g1, joined g2, left g1
        assert db.groups_of(None, ["u1"]) == {"u1": [{"value": "g2", "display": "Staff"}]}
        g2 = db.get(None, GROUP, "g2")
        assert g2 is not None
        assert member_values(g2) == ["u1"]


class MembershipContract(_Fixtures):
    """Group membership: touched members, member rows, ``groups_of``, ``existing``, ``members=``."""

    # -- a membership change is a change of the member (its derived ``groups``) -------------

    WHEN: ClassVar[str] = "2023-05-05T05:05:05.000Z"

    def _members_fixture(self, db: Backend) -> dict[str, dict[str, Any]]:
        for i in (1, 2, 3):
            db.create(None, USER, user(f"u{i}", f"user{i}"))
        db.create(None, DEVICE, device("d1", "SN1", "host1"))
        db.create(None, GROUP, group("g0", "Nested"))
        db.create(None, GROUP, group("g1", "Admins", ("u1", "g0", "d1")))
        return self._snapshot(db)

    @staticmethod
    def _snapshot(db: Backend) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for rt, id in ((USER, "u1"), (USER, "u2"), (USER, "u3"), (DEVICE, "d1"), (GROUP, "g0")):
            got = db.get(None, rt, id)
            assert got is not None
            out[id] = got
        return out

    def _write_g1(self, db: Backend, change: Callable[[dict[str, Any]], object]) -> None:
        def apply(current: dict[str, Any]) -> None:
            change(current)
            current["meta"]["lastModified"] = self.WHEN

        db.update(None, GROUP, "g1", bumped(apply), members=["u1", "u2", "g0", "d1"])

    def _assert_touched(
        self,
        before: dict[str, dict[str, Any]],
        after: dict[str, dict[str, Any]],
        touched: set[str],
        when: str | None,
    ) -> None:
        for id, old in before.items():
            new = after[id]
            if id not in touched:
                assert new == old, id
                continue
            assert (
                version_number(new["meta"]["version"]) == version_number(old["meta"]["version"]) + 1
            ), id
            if when is not None:
                assert new["meta"]["lastModified"] == when, id
            else:
                assert new["meta"]["lastModified"] > old["meta"]["lastModified"], id
            new.pop("meta"), old.pop("meta")
            assert new == old, id

    def test_creating_a_group_touches_its_members_with_the_groups_time(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "user1"))
        db.create(None, USER, user("u2", "user2"))
        db.create(None, GROUP, group("g1", "Admins", ("u1",), modified=self.WHEN))
        u1, u2 = db.get(None, USER, "u1"), db.get(None, USER, "u2")
        assert u1 is not None
        assert u2 is not None
        assert (u1["meta"]["version"], u1["meta"]["lastModified"]) == ('W/"2"', self.WHEN)
        assert u2 == user("u2", "user2")

    def test_adding_a_member_touches_that_member_only(self, db: Backend) -> None:
        before = self._members_fixture(db)
        assert before["u1"]["meta"]["version"] == 'W/"2"'  # the group's create touched it
        self._write_g1(db, lambda r: r["members"].append({"value": "u2", "type": "User"}))
        self._assert_touched(before, self._snapshot(db), {"u2"}, self.WHEN)

    def test_removing_a_member_touches_that_member_only(self, db: Backend) -> None:
        before = self._members_fixture(db)

        def remove(current: dict[str, Any]) -> None:
            current["members"] = [m for m in current["members"] if m["value"] != "u1"]

        self._write_g1(db, remove)
        self._assert_touched(before, self._snapshot(db), {"u1"}, self.WHEN)

    def test_replacing_members_touches_the_added_and_the_removed(self, db: Backend) -> None:
        before = self._members_fixture(db)

        def swap(current: dict[str, Any]) -> None:
            current["members"] = [{"value": "u2"}, {"value": "g0"}, {"value": "d1"}]

        self._write_g1(db, swap)
        self._assert_touched(before, self._snapshot(db), {"u1", "u2"}, self.WHEN)

    def test_a_group_write_keeping_its_members_touches_nobody(self, db: Backend) -> None:
        before = self._members_fixture(db)

        def rename(current: dict[str, Any]) -> None:
            current["displayName"] = "Operators"
            current["members"].reverse()  # the same set of members, in another order

        self._write_g1(db, rename)
        self._assert_touched(before, self._snapshot(db), set(), None)

    def test_deleting_a_group_touches_its_members(self, db: Backend) -> None:
        before = self._members_fixture(db)
        db.delete(None, GROUP, "g1")
        self._assert_touched(before, self._snapshot(db), {"u1"}, None)

    def test_deleting_a_member_touches_no_other_member(self, db: Backend) -> None:
        self._members_fixture(db)
        self._write_g1(db, lambda r: r["members"].append({"value": "u2", "type": "User"}))
        before = self._snapshot(db)
        db.delete(None, USER, "u1")
        db.create(None, USER, before["u1"])  # back, as it was, so that it can be compared
        self._assert_touched(before, self._snapshot(db), set(), None)

    # -- MemberRows: the optional member-only read and write ----------------------------

    @pytest.fixture
    def rows(self, db: Backend) -> MemberRows:
        """The backend, if it has the MemberRows capability (else the tests skip)."""
        if not isinstance(db, MemberRows):
            pytest.skip("this backend has no MemberRows capability")
        return db

    def test_get_without_members_is_get_minus_members(self, rows: MemberRows, db: Backend) -> None:
        self._members_fixture(db)
        whole = db.get(None, GROUP, "g1")
        assert whole is not None
        whole.pop("members")
        assert rows.get_without_members(None, GROUP, "g1") == whole
        assert rows.get_without_members(None, GROUP, "nope") is None
        assert rows.get_without_members(None, USER, "g1") is None

    def _rows_write(
        self,
        rows: MemberRows,
        values: set[str],
        change: Callable[[dict[str, Any]], object],
        **kw: Any,
    ) -> dict[str, Any]:
        def apply(current: dict[str, Any]) -> None:
            change(current)
            current["meta"]["lastModified"] = self.WHEN

        return rows.update_members(None, GROUP, "g1", values, bumped(apply), **kw)

    def _member_rows_group(self, db: Backend) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """The directory of the member-only writes: ``(snapshot, g1's members in stored
        order)``; u1 is g1's first member, u2 is in no group."""
        return self._members_fixture(db), ["u1", "g0", "d1"]

    #: Whether ``members[display eq ...]`` filters run on this backend.
    filters_member_display: ClassVar[bool] = True

    @staticmethod
    def _listed_after_add(stored: list[str], added: str) -> list[str]:
        """g1's members after ``added`` joined: after every stored member (the protocol)."""
        return [*stored, added]

    def test_update_members_sees_only_the_named_members(
        self, rows: MemberRows, db: Backend
    ) -> None:
        before, stored = self._member_rows_group(db)
        seen: list[Any] = []

        def add(current: dict[str, Any]) -> None:
            seen.append([m["value"] for m in current.get("members", [])])
            current.setdefault("members", []).append({"value": "u2", "type": "User"})

        result = self._rows_write(rows, {"u2", stored[-1]}, add, members=["u2"])
        assert seen == [[stored[-1]]]
        assert "members" not in result
        assert result["meta"]["version"] == 'W/"2"'
        g1 = db.get(None, GROUP, "g1")
        assert g1 is not None
        assert member_values(g1) == self._listed_after_add(stored, "u2")
        assert g1["meta"] == result["meta"]
        self._assert_touched(before, self._snapshot(db), {"u2"}, self.WHEN)

    def test_update_members_removes_and_replaces_in_place(
        self, rows: MemberRows, db: Backend
    ) -> None:
        before, stored = self._member_rows_group(db)
        kept: dict[str, Any] = {}

        def edit(current: dict[str, Any]) -> None:
            assert [m["value"] for m in current["members"]] == stored[:2]
            kept.update(current["members"][1], display="Nested")
            current["members"] = [dict(kept)]

        self._rows_write(rows, set(stored[:2]), edit)
        g1 = db.get(None, GROUP, "g1")
        assert g1 is not None
        assert g1["members"][:1] == [kept]
        assert member_values(g1) == stored[1:]
        if self.filters_member_display:
            assert search_ids(db, GROUP, 'members[display eq "NESTED"]') == (1, ["g1"])
        assert db.groups_of(None, [stored[0]]) == {}
        self._assert_touched(before, self._snapshot(db), {stored[0]}, self.WHEN)

    def test_update_members_checks_version_members_and_none(
        self, rows: MemberRows, db: Backend
    ) -> None:
        self._members_fixture(db)
        stored = db.get(None, GROUP, "g1")

        def add_ghost(current: dict[str, Any]) -> None:
            current.setdefault("members", []).append({"value": "ghost"})

        with pytest.raises(PreconditionFailedError):
            self._rows_write(rows, {"ghost"}, add_ghost, if_match=['W/"9"'])
        with pytest.raises(InvalidValueError, match="ghost"):
            self._rows_write(rows, {"ghost"}, add_ghost, members=["ghost"])
        unchanged = rows.update_members(None, GROUP, "g1", {"u1"}, lambda current: None)
        assert db.get(None, GROUP, "g1") == stored
        assert stored is not None
        assert unchanged == {k: v for k, v in stored.items() if k != "members"}
        with pytest.raises(NotFoundError):
            rows.update_members(None, GROUP, "nope", {"u1"}, lambda current: None)

    # -- groups_of / existing ------------------------------------------------------------

    def test_groups_of_lists_direct_memberships(self, db: Backend) -> None:
        for i in (1, 2, 3):
            db.create(None, USER, user(f"u{i}", f"user{i}"))
        db.create(None, GROUP, group("g1", "Admins", ("u1", "u2")))
        db.create(None, GROUP, group("g2", "Staff", ("u1", "g1")))
        found = db.groups_of(None, ["u1", "u2", "u3", "g1", "unknown"])
        assert {k: v for k, v in found.items() if v} == {
            "u1": [{"value": "g1", "display": "Admins"}, {"value": "g2", "display": "Staff"}],
            "u2": [{"value": "g1", "display": "Admins"}],
            "g1": [{"value": "g2", "display": "Staff"}],
        }

    def test_groups_of_lists_groups_by_id_whatever_their_creation_order(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "a"))
        db.create(None, GROUP, group("gz", "Zed", ("u1",), created="2019-01-01T00:00:00.000Z"))
        db.create(None, GROUP, group("gb", "Bee", ("u1",), created="2021-01-01T00:00:00.000Z"))
        db.create(None, GROUP, group("gA", "Ay", ("u1",), created="2020-01-01T00:00:00.000Z"))
        # Code point order of the ids: "gA" < "gb" < "gz" (upper case first).
        assert db.groups_of(None, ["u1"]) == {
            "u1": [
                {"value": "gA", "display": "Ay"},
                {"value": "gb", "display": "Bee"},
                {"value": "gz", "display": "Zed"},
            ]
        }

    def test_groups_of_follows_updates(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "a"))
        db.create(None, USER, user("u2", "b"))
        db.create(None, GROUP, group("g1", "Admins", ("u1",)))

        def swap(current: dict[str, Any]) -> None:
            current["members"] = [{"value": "u2", "type": "User"}]
            current["displayName"] = "Operators"

        db.update(None, GROUP, "g1", bumped(swap))
        assert db.groups_of(None, ["u1"]).get("u1", []) == []
        assert db.groups_of(None, ["u2"]) == {"u2": [{"value": "g1", "display": "Operators"}]}
        db.update(None, GROUP, "g1", bumped(lambda r: r.pop("members")))
        assert db.groups_of(None, ["u2"]).get("u2", []) == []

    def test_existing_names_the_resource_type(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "a"))
        db.create(None, GROUP, group("g1", "Admins"))
        assert db.existing(None, ["u1", "g1", "nope"]) == {"u1": "User", "g1": "Group"}
        assert db.existing(None, []) == {}

    # -- members= : new members must exist at the moment of the write ------------------

    def test_create_with_missing_members_stores_nothing(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "a"))
        db.create("acme", USER, user("u2", "b"))  # another tenant's: missing here
        for missing in ("nope", "u2"):
            with pytest.raises(InvalidValueError, match=missing):
                db.create(
                    None, GROUP, group("g1", "Admins", ("u1", missing)), members=["u1", missing]
                )
            assert db.get(None, GROUP, "g1") is None
            assert db.existing(None, ["g1"]) == {}
            assert db.groups_of(None, ["u1"]).get("u1", []) == []
            assert search_ids(db, GROUP, 'displayName eq "Admins"') == (0, [])

    def test_create_with_existing_members_stores_them(self, db: Backend) -> None:
        db.create(None, USER, user("u1", "a"))
        db.create(None, USER, user("u2", "b"))
        resource = group("g1", "Admins", ("u1", "u2"))
        stored = db.create(None, GROUP, resource, members=["u1", "u2"])
        assert self._as_stored(stored) == self._as_stored(resource)
        assert db.groups_of(None, ["u2"]) == {"u2": [{"value": "g1", "display": "Admins"}]}

    def test_update_with_missing_members_leaves_the_resource_unchanged(self, db: Backend) -> None:
        for id in ("u1", "u2", "gone"):
            db.create(None, USER, user(id, id))
        before = db.create(None, GROUP, group("g1", "Admins", ("u1",)))
        db.delete(None, USER, "gone")  # as if deleted after the engine checked it

        def add(current: dict[str, Any]) -> None:
            current["members"] += [{"value": "u2", "type": "User"}, {"value": "gone"}]
            current["displayName"] = "Operators"

        with pytest.raises(InvalidValueError, match="gone"):
            db.update(None, GROUP, "g1", bumped(add), members=["u2", "gone"])
        assert db.get(None, GROUP, "g1") == before
        assert db.groups_of(None, ["u2", "gone"]) == {}
        assert search_ids(db, GROUP, 'displayName eq "Operators"') == (0, [])

    def test_update_with_existing_members_stores_them(self, db: Backend) -> None:
        for id in ("u1", "u2"):
            db.create(None, USER, user(id, id))
        db.create(None, GROUP, group("g1", "Admins", ("u1",)))

        def add(current: dict[str, Any]) -> None:
            current["members"].append({"value": "u2", "type": "User"})

        stored = db.update(None, GROUP, "g1", bumped(add), members=["u1", "u2"])
        assert member_values(stored) == ["u1", "u2"]
        assert db.groups_of(None, ["u2"]) == {"u2": [{"value": "g1", "display": "Admins"}]}

    def test_without_members_nothing_is_checked(self, db: Backend) -> None:
        # The default () checks nothing: storing a group is not refused for its members.
        db.create(None, GROUP, group("g1", "Admins", ("ghost1",)))
        db.update(None, GROUP, "g1", bumped(lambda r: r["members"].append({"value": "ghost2"})))
        g1 = db.get(None, GROUP, "g1")
        assert g1 is not None
        assert member_values(g1) == ["ghost1", "ghost2"]


class SearchContract(_Fixtures):
    """Tenants kept apart, and search: filters, sorting, paging (RFC 7644 §3.4.2)."""

    # -- tenants -------------------------------------------------------------------------

    def test_empty_tenant_name_is_refused_not_merged_with_no_tenant(self, db: Backend) -> None:
        # Tenant None is the single-tenant deployment; "" is no tenant name at all. A
        # backend that stored None as "" would show one's data to the other: refuse "".
        db.create(None, USER, user("u1", "bjensen"))
        calls: list[Callable[[], object]] = [
            lambda: db.create("", USER, user("u2", "other")),
            lambda: db.get("", USER, "u1"),
            lambda: db.search("", USER, SearchQuery()),
            lambda: db.update("", USER, "u1", bumped(lambda r: None)),
            lambda: db.delete("", USER, "u1"),
            lambda: db.groups_of("", ["u1"]),
            lambda: db.existing("", ["u1"]),
        ]
        for call in calls:
            with pytest.raises(ValueError, match="tenant"):
                call()
        assert search_ids(db, USER) == (1, ["u1"])
        u1 = db.get(None, USER, "u1")
        assert u1 is not None
        assert u1["meta"]["version"] == 'W/"1"'

    def test_tenants_are_isolated(self, db: Backend) -> None:
        db.create("acme", USER, user("u1", "bjensen", title="Acme"))
        db.create("acme", GROUP, group("g1", "Admins", ("u1",)))
        # the same userName and even the same ids in another tenant and in no tenant
        db.create("globex", USER, user("u1", "BJensen", title="Globex"))
        db.create(None, USER, user("u9", "bjensen"))
        acme = db.get("acme", USER, "u1")
        globex = db.get("globex", USER, "u1")
        assert acme is not None
        assert globex is not None
        assert (acme["title"], globex["title"]) == ("Acme", "Globex")
        assert db.get(None, USER, "u1") is None
        assert db.get("globex", GROUP, "g1") is None
        assert search_ids(db, USER, tenant="acme") == (1, ["u1"])
        assert search_ids(db, USER, 'userName eq "bjensen"', tenant="globex") == (1, ["u1"])
        assert search_ids(db, USER, 'userName eq "bjensen"') == (1, ["u9"])
        assert search_ids(db, USER, tenant="initech") == (0, [])
        assert search_ids(db, GROUP, 'members.value eq "u1"', tenant="globex") == (0, [])
        assert db.existing("globex", ["u1", "g1", "u9"]) == {"u1": "User"}
        assert db.existing("initech", ["u1"]) == {}
        assert db.groups_of("globex", ["u1"]).get("u1", []) == []
        with pytest.raises(NotFoundError):
            db.update("globex", GROUP, "g1", bumped(lambda r: None))
        with pytest.raises(NotFoundError):
            db.delete("initech", USER, "u1")
        db.delete("globex", USER, "u1")
        assert db.get("acme", USER, "u1") == acme
        g1 = db.get("acme", GROUP, "g1")
        assert g1 is not None
        assert (member_values(g1), g1["meta"]["version"]) == (["u1"], 'W/"1"')
        assert db.groups_of("acme", ["u1"]) == {"u1": [{"value": "g1", "display": "Admins"}]}

    # -- search --------------------------------------------------------------------------

    @pytest.mark.parametrize(("filter", "expected"), USER_FILTERS)
    def test_search_users(self, directory: Backend, filter: str, expected: list[str]) -> None:
        assert search_ids(directory, USER, filter) == (len(expected), expected)
        assert reference_ids(USER, filter, list(_in_default_order(SEARCH_USERS))) == expected

    @pytest.mark.parametrize(("filter", "expected"), GROUP_FILTERS)
    def test_search_groups(self, directory: Backend, filter: str, expected: list[str]) -> None:
        assert search_ids(directory, GROUP, filter) == (len(expected), expected)
        groups = [directory.get(None, GROUP, g) for g in ("admins", "all", "empty")]
        assert reference_ids(GROUP, filter, [g for g in groups if g is not None]) == expected

    @pytest.mark.parametrize(("sort", "descending", "expected"), USER_SORTS)
    def test_sort(
        self, directory: Backend, sort: str, descending: bool, expected: list[str]
    ) -> None:
        assert search_ids(directory, USER, sort=sort, descending=descending) == (7, expected)

    @pytest.mark.parametrize(("filter", "sort", "offset", "count", "total", "expected"), USER_PAGES)
    def test_paging(
        self,
        directory: Backend,
        filter: str | None,
        sort: str | None,
        offset: int,
        count: int,
        total: int,
        expected: list[str],
    ) -> None:
        found = search_ids(directory, USER, filter, sort=sort, offset=offset, count=count)
        assert found == (total, expected)

    @pytest.mark.parametrize(
        ("offset", "count", "expected"),
        [
            (2**63, 10, []),
            (2**64, 2**64, []),
            (0, 2**63, ALL),
            (5, 2**63 - 1, ALL[5:]),
            (2**63 - 1, 0, []),
        ],
    )
    def test_huge_paging_numbers_are_an_empty_or_a_full_page(
        self, directory: Backend, offset: int, count: int, expected: list[str]
    ) -> None:
        # RFC 7644 §3.4.2.4: a startIndex past the results gives an empty page; a count
        # larger than the results gives them all. No number overflows the store.
        assert search_ids(directory, USER, offset=offset, count=count) == (7, expected)
        found = search_ids(directory, USER, "userName pr", offset=offset, count=count)
        assert found == (7, expected)
        by_id = sorted(ALL)[offset : offset + count]
        found = search_ids(directory, USER, sort="id", offset=offset, count=count)
        assert found == (7, by_id)

    def test_search_sees_writes(self, directory: Backend) -> None:
        directory.update(None, USER, "b2", bumped(lambda r: r.update(title="manager")))
        directory.delete(None, USER, "d4")
        assert search_ids(directory, USER, 'title eq "MANAGER"') == (2, ["e5", "b2"])
        assert search_ids(directory, USER, sort="title", count=2) == (6, ["a1", "f6"])

    def test_search_returns_complete_resources(self, directory: Backend) -> None:
        page = directory.search(
            None, USER, SearchQuery(filter=bind(parse_filter('id eq "c3"'), USER))
        )
        assert page.resources == [SEARCH_USERS[2]]


class BehaviourContract(_Fixtures):
    """Random operation sequences against a model, and concurrent writers."""

    # -- random operation sequences against a model ----------------------------------------

    def test_random_operations_keep_indexes_consistent(self, db: Backend) -> None:
        # Creates, renames, membership changes and deletes with colliding ids and names;
        # afterwards every lookup (uniqueness, userName eq, members.value eq, groups_of,
        # existing, versions) agrees with the model. Each example has its own tenant.
        @settings(max_examples=self.model_examples, deadline=None)
        @given(ops=MODEL_OPS)
        def run(ops: list[tuple[Any, ...]]) -> None:
            tenant = uuid.uuid4().hex
            model = _Model()
            for op in ops:
                model.apply(db, tenant, op)
            model.check(db, tenant)

        run()

    # -- concurrency ---------------------------------------------------------------------

    def test_concurrent_member_additions_are_all_kept(self, db: Backend) -> None:
        threads, per_thread = 8, 20
        ids = [f"m{t}-{i}" for t in range(threads) for i in range(per_thread)]
        for id in ids:
            db.create(None, USER, user(id, id))
        db.create(None, GROUP, group("g1", "Everyone"))
        errors: list[BaseException] = []
        start = threading.Barrier(threads)

        def add_members(t: int) -> None:
            try:
                start.wait()
                for i in range(per_thread):
                    new = {"value": f"m{t}-{i}", "type": "User"}

                    def change(current: dict[str, Any], new: dict[str, Any] = new) -> None:
                        members = current.setdefault("members", [])
                        time.sleep(0)  # invite a thread switch between read and write
                        members.append(new)

                    db.update(None, GROUP, "g1", bumped(change))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        workers = [threading.Thread(target=add_members, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert errors == []
        g1 = db.get(None, GROUP, "g1")
        assert g1 is not None
        assert sorted(member_values(g1)) == sorted(ids)
        assert g1["meta"]["version"] == f'W/"{1 + len(ids)}"'
        assert set(db.groups_of(None, ids)) == set(ids)


def _in_default_order(resources: tuple[dict[str, Any], ...]) -> Iterator[dict[str, Any]]:
    by_id = {r["id"]: r for r in resources}
    return (by_id[i] for i in DEFAULT_ORDER)


class BackendContract(WriteContract, MembershipContract, SearchContract, BehaviourContract):
    """Every method of the Backend protocol, as its docstring specifies it: subclass it with a
    ``backend`` fixture that returns a fresh, unbound backend (see docs/backends.md)."""
