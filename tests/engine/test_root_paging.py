"""The root search (RFC 7644 §3.4.2.1) sorted across resource types, paged anywhere.

Pages must be the windows of one merged order, and any ``startIndex`` is answered: past the end,
an empty page with the right ``totalResults`` (RFC 7644 §3.4.2.4), never a 500."""

from __future__ import annotations

import pytest

from scim2_core import Engine
from scim2_core.engine import _query
from tests.helpers import GROUP, call, make_backend, user_body


@pytest.fixture
def engine() -> Engine:
    backend = make_backend()  # MemoryBackend and SQLite in turn (tests/engine/conftest.py)
    engine = Engine(backend)
    # Users and groups whose names interleave, so the merge order matters.
    for i in range(23):
        assert (
            call(engine, "POST", "/Users", user_body(f"n{i:02d}u", displayName=f"n{i:02d}u")).status
            == 201
        )
        if i % 2 == 0:
            made = call(
                engine, "POST", "/Groups", {"schemas": [GROUP], "displayName": f"n{i:02d}g"}
            )
            assert made.status == 201
    return engine


def _names(answer: dict[str, object]) -> list[str]:
    return [r["displayName"] for r in answer.get("Resources", [])]  # type: ignore[attr-defined, index]


@pytest.mark.parametrize("order", ["ascending", "descending"])
@pytest.mark.parametrize("chunk", [1, 3, 500])
def test_sorted_pages_are_windows_of_one_merged_order(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, order: str, chunk: int
) -> None:
    monkeypatch.setattr(_query, "_ROOT_CHUNK", chunk)
    everything = sorted(
        [f"n{i:02d}u" for i in range(23)] + [f"n{i:02d}g" for i in range(0, 23, 2)],
        reverse=order == "descending",
    )
    assert len(everything) == 35
    for start, count in [(1, 5), (4, 7), (30, 10), (35, 1), (36, 5), (1, 100)]:
        query = {
            "sortBy": "displayName",
            "sortOrder": order,
            "startIndex": str(start),
            "count": str(count),
        }
        answer = call(engine, "GET", "/", query=query)
        assert answer.status == 200, answer
        assert answer.json["totalResults"] == 35
        assert _names(answer.json) == everything[start - 1 : start - 1 + count], (start, count)


@pytest.mark.parametrize("start", [str(2**31), str(2**63), str(2**64 + 7), "9" * 40])
@pytest.mark.parametrize("path", ["/", "/Users", "/Groups"])
def test_a_start_index_past_the_end_is_an_empty_page(engine: Engine, start: str, path: str) -> None:
    for query in ({"startIndex": start}, {"startIndex": start, "sortBy": "displayName"}):
        answer = call(engine, "GET", path, query=query)
        assert answer.status == 200, answer
        assert answer.json.get("Resources", []) == []
        assert answer.json["totalResults"] == {"/": 35, "/Users": 23, "/Groups": 12}[path]
        assert answer.json["itemsPerPage"] == 0
