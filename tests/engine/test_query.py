"""Listing and searching (RFC 7644 §3.4.2, §3.4.3; RFC 9865 cursors)."""

from __future__ import annotations

from typing import Any

import pytest

from scim2_core import Engine, ExpiredCursorError
from tests.helpers import (
    ENTERPRISE,
    LIST,
    SEARCH,
    USER,
    assert_error,
    call,
    create_group,
    create_user,
    make_engine,
)


@pytest.fixture
def directory() -> Engine:
    engine = make_engine(max_results=50)
    for i in range(12):
        extra: dict[str, Any] = {
            "displayName": f"User {i:02d}",
            "active": i % 2 == 0,
            "emails": [{"value": f"u{i}@example.com", "type": "work"}],
        }
        if i % 3 == 0:
            extra[ENTERPRISE] = {"employeeNumber": str(1000 + i)}
        create_user(engine, f"user{i:02d}", **extra)
    return engine


def names(result: Any) -> list[str]:
    return [r["userName"] for r in result.json["Resources"]]


def test_list_response_shape(directory: Engine) -> None:
    result = call(directory, "GET", "/Users")
    assert result.status == 200
    body = result.json
    assert body["schemas"] == [LIST]
    assert body["totalResults"] == 12
    assert body["startIndex"] == 1
    assert body["itemsPerPage"] == 12
    assert len(body["Resources"]) == 12


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ('userName eq "USER03"', ["user03"]),
        ('userName sw "user1"', ["user10", "user11"]),
        (
            'active eq false and displayName co "0"',
            ["user01", "user03", "user05", "user07", "user09"],
        ),
        ('emails[type eq "work" and value ew "11@example.com"]', ["user11"]),
        (f"{ENTERPRISE}:employeeNumber pr", ["user00", "user03", "user06", "user09"]),
        ('not (userName lt "user10")', ["user10", "user11"]),
    ],
)
def test_filters(directory: Engine, flt: str, expected: list[str]) -> None:
    result = call(directory, "GET", "/Users", query={"filter": flt, "sortBy": "userName"})
    assert result.status == 200, result
    assert names(result) == expected
    assert result.json["totalResults"] == len(expected)


@pytest.mark.parametrize(
    "flt",
    ["userName eq", 'nosuchattr eq "x"', 'password eq "x"', "active gt true", '(userName eq "x"'],
)
def test_bad_filters_are_400_invalid_filter(directory: Engine, flt: str) -> None:
    assert_error(call(directory, "GET", "/Users", query={"filter": flt}), 400, "invalidFilter")


@pytest.mark.parametrize(
    ("start", "count", "expected_start", "expected_names"),
    [
        ("1", "3", 1, ["user00", "user01", "user02"]),
        ("11", "5", 11, ["user10", "user11"]),
        ("0", "2", 1, ["user00", "user01"]),  # startIndex < 1 is 1
        ("-5", "1", 1, ["user00"]),
        ("5", "0", 5, []),  # count 0: totals only
        ("2", "-3", 2, []),  # negative count is 0
        ("13", "5", 13, []),
    ],
)
def test_index_paging_edge_cases(
    directory: Engine, start: str, count: str, expected_start: int, expected_names: list[str]
) -> None:
    result = call(
        directory,
        "GET",
        "/Users",
        query={"startIndex": start, "count": count, "sortBy": "userName"},
    )
    assert result.status == 200
    assert result.json["startIndex"] == expected_start
    assert result.json["totalResults"] == 12
    assert result.json["itemsPerPage"] == len(expected_names)
    assert names(result) == expected_names


def test_count_above_the_maximum_is_capped() -> None:
    engine = make_engine(max_results=5)
    for i in range(7):
        create_user(engine, f"u{i}")
    result = call(engine, "GET", "/Users", query={"count": "1000"})
    assert result.json["itemsPerPage"] == 5
    assert result.json["totalResults"] == 7


@pytest.mark.parametrize("param", ["startIndex", "count"])
def test_non_integer_paging_is_400(directory: Engine, param: str) -> None:
    assert_error(call(directory, "GET", "/Users", query={param: "abc"}), 400, "invalidValue")


def test_sorting_descending(directory: Engine) -> None:
    result = call(
        directory,
        "GET",
        "/Users",
        query={"sortBy": "userName", "sortOrder": "descending", "count": "3"},
    )
    assert names(result) == ["user11", "user10", "user09"]


def test_sort_by_unknown_attribute_or_order_is_400(directory: Engine) -> None:
    assert_error(call(directory, "GET", "/Users", query={"sortBy": "nope"}), 400, "invalidValue")
    assert_error(
        call(directory, "GET", "/Users", query={"sortBy": "userName", "sortOrder": "up"}),
        400,
        "invalidValue",
    )


def test_attributes_and_excluded_attributes(directory: Engine) -> None:
    only = call(
        directory,
        "GET",
        "/Users",
        query={"attributes": "userName,emails.value", "count": "1", "sortBy": "userName"},
    )
    first = only.json["Resources"][0]
    assert set(first) == {"schemas", "id", "userName", "emails"}
    assert first["emails"] == [{"value": "u0@example.com"}]
    excluded = call(
        directory,
        "GET",
        "/Users",
        query={"excludedAttributes": "emails,meta", "count": "1", "sortBy": "userName"},
    )
    first = excluded.json["Resources"][0]
    assert "emails" not in first and "meta" not in first
    assert first["userName"] == "user00"
    ext = call(
        directory,
        "GET",
        "/Users",
        query={"attributes": f"{ENTERPRISE}:employeeNumber", "filter": 'userName eq "user03"'},
    )
    assert ext.json["Resources"][0][ENTERPRISE] == {"employeeNumber": "1003"}
    assert ext.json["Resources"][0]["schemas"] == [USER, ENTERPRISE]


def test_attributes_apply_to_single_reads_and_writes() -> None:
    engine = make_engine()
    created = call(
        engine,
        "POST",
        "/Users",
        {"schemas": [USER], "userName": "a", "title": "t"},
        query={"attributes": "title"},
    )
    assert created.status == 201
    assert set(created.json) == {"schemas", "id", "title"}


def test_excluded_members_on_group_reads() -> None:
    engine = make_engine()
    user = create_user(engine, "a")
    group = create_group(engine, "G", [user["id"]])
    got = call(engine, "GET", f"/Groups/{group['id']}", query={"excludedAttributes": "members"})
    assert "members" not in got.json
    assert got.json["displayName"] == "G"


def test_post_search_matches_get(directory: Engine) -> None:
    body = {
        "schemas": [SEARCH],
        "filter": 'userName sw "user0"',
        "sortBy": "userName",
        "startIndex": 2,
        "count": 3,
        "attributes": ["userName"],
    }
    result = call(directory, "POST", "/Users/.search", body)
    assert result.status == 200
    assert names(result) == ["user01", "user02", "user03"]
    assert result.json["totalResults"] == 10
    assert set(result.json["Resources"][0]) == {"schemas", "id", "userName"}


def test_post_search_requires_search_request_schema(directory: Engine) -> None:
    result = call(directory, "POST", "/Users/.search", {"filter": 'userName eq "x"'})
    assert_error(result, 400, "invalidSyntax")


def test_root_search_spans_resource_types(directory: Engine) -> None:
    create_group(directory, "Admins")
    everything = call(directory, "POST", "/.search", {"schemas": [SEARCH]})
    assert everything.json["totalResults"] == 13
    by_name = call(
        directory, "POST", "/.search", {"schemas": [SEARCH], "filter": 'displayName eq "Admins"'}
    )
    assert by_name.json["totalResults"] == 1
    assert by_name.json["Resources"][0]["displayName"] == "Admins"
    users_only = call(
        directory, "POST", "/.search", {"schemas": [SEARCH], "filter": 'userName eq "user01"'}
    )
    assert users_only.json["totalResults"] == 1


def test_cursor_paging_walks_every_result_once(directory: Engine) -> None:
    seen: list[str] = []
    query = {"cursor": "", "count": "5", "sortBy": "userName"}
    pages = 0
    while True:
        result = call(directory, "GET", "/Users", query=query)
        assert result.status == 200, result
        assert "startIndex" not in result.json
        assert result.json["totalResults"] == 12
        seen.extend(names(result))
        pages += 1
        nxt = result.json.get("nextCursor")
        if nxt is None:
            break
        assert all(c.isalnum() or c in "-._~" for c in nxt)  # RFC 3986 unreserved
        query = {"cursor": nxt, "count": "5", "sortBy": "userName"}
    assert pages == 3
    assert seen == [f"user{i:02d}" for i in range(12)]
    assert "previousCursor" in result.json
    back = call(
        directory,
        "GET",
        "/Users",
        query={"cursor": result.json["previousCursor"], "sortBy": "userName"},
    )
    assert names(back) == ["user05", "user06", "user07", "user08", "user09"]


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "eyJhIjoxfQ.AAAA", "....", "%%%"],
)
def test_forged_cursors_are_invalid_cursor(directory: Engine, cursor: str) -> None:
    result = call(directory, "GET", "/Users", query={"cursor": cursor})
    assert_error(result, 400, "invalidCursor")


def test_cursor_of_another_query_or_altered_is_rejected(directory: Engine) -> None:
    first = call(directory, "GET", "/Users", query={"cursor": "", "count": "2"})
    nxt = first.json["nextCursor"]
    other = call(directory, "GET", "/Users", query={"cursor": nxt, "filter": "active eq true"})
    assert_error(other, 400, "invalidCursor")
    tampered = nxt[:-2] + ("AA" if not nxt.endswith("AA") else "BB")
    assert_error(call(directory, "GET", "/Users", query={"cursor": tampered}), 400, "invalidCursor")
    changed_count = call(directory, "GET", "/Users", query={"cursor": nxt, "count": "3"})
    assert_error(changed_count, 400, "invalidCount")


def test_cursor_expires() -> None:
    engine = make_engine(cursor_ttl_seconds=600)
    for i in range(3):
        create_user(engine, f"u{i}")
    first = call(engine, "GET", "/Users", query={"cursor": "", "count": "1"})
    cursor = first.json["nextCursor"]
    # Seal a cursor that expired long ago with the engine's own codec.
    from scim2_core.engine._cursor import CursorState

    digest = engine._cursors.query_digest("", "User", None, None, "a")
    old = engine._cursors.seal(CursorState(1, 1), digest, now=0.0)
    assert_error(call(engine, "GET", "/Users", query={"cursor": old}), 400, "expiredCursor")
    assert call(engine, "GET", "/Users", query={"cursor": cursor}).status == 200


def test_cursor_lives_its_whole_time_to_live() -> None:
    """A cursor sealed late in a second is not cut short by rounding its expiry down."""
    from scim2_core.engine._cursor import CursorCodec, CursorState

    codec = CursorCodec(b"k" * 32, ttl_seconds=1)
    sealed = codec.seal(CursorState(0, 1), "d", now=100.9)
    assert codec.open(sealed, "d", now=101.8).count == 1
    with pytest.raises(ExpiredCursorError):
        codec.open(sealed, "d", now=102.5)


def test_user_name_eq_finds_among_many() -> None:
    engine = make_engine()
    for i in range(300):
        create_user(engine, f"person{i}")
    result = call(engine, "GET", "/Users", query={"filter": 'userName eq "Person123"'})
    assert names(result) == ["person123"]


def test_a_filter_means_the_same_whatever_was_asked_before() -> None:
    # The same text, answered by engines of other settings and for other resource types
    # in between: each answer is the one its own engine and type give.
    tolerant, strict = make_engine(), make_engine(strict=True)
    for engine in (tolerant, strict):
        create_user(engine, "bjensen", displayName="Babs")
        create_group(engine, "Babs")
    for _ in range(2):
        # Microsoft's unquoted value: accepted when tolerant, refused when strict.
        found = call(tolerant, "GET", "/Users", query={"filter": "userName eq bjensen"})
        assert found.status == 200 and found.json["totalResults"] == 1
        refused = call(strict, "GET", "/Users", query={"filter": "userName eq bjensen"})
        assert refused.status == 400 and refused.json["scimType"] == "invalidFilter"
        # displayName is a User's and a Group's attribute; userName only a User's.
        for path in ("/Users", "/Groups"):
            hits = call(tolerant, "GET", path, query={"filter": 'displayName eq "Babs"'})
            assert hits.json["totalResults"] == 1
            assert hits.json["Resources"][0]["meta"]["resourceType"] == path[1:-1]
        wrong = call(tolerant, "GET", "/Groups", query={"filter": 'userName eq "bjensen"'})
        assert wrong.status == 400 and wrong.json["scimType"] == "invalidFilter"
