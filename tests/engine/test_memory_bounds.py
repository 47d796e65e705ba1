"""What a client can make the engine keep: caches stay bounded whatever the requests hold."""

from __future__ import annotations

from tests.helpers import bytes_grown, call, make_engine, user_body


def test_long_ever_changing_attribute_lists_do_not_grow_the_engine() -> None:
    engine = make_engine()
    uid = call(engine, "POST", "/Users", user_body("alice")).json["id"]

    def ask(i: int) -> None:
        names = ",".join(f"urn:x:{i}:attr{j}" for j in range(150))
        answer = call(engine, "GET", f"/Users/{uid}", query={"attributes": f"userName,{names}"})
        assert answer.status == 200
        assert answer.json["userName"] == "alice"

    grown = bytes_grown(ask, 20, 300)
    # 300 distinct 4 KiB attribute lists: kept, they would hold several MiB.
    assert grown < 500_000, grown


def test_long_ever_changing_filters_do_not_grow_the_engine() -> None:
    # The answers kept for repeated reads have a budget of their own
    # (tests/backends/test_sql_read_cache.py); this measures the filter cache alone.
    engine = make_engine(read_cache_bytes=0)
    call(engine, "POST", "/Users", user_body("alice"))

    def ask(i: int) -> None:
        # Under the length the engine caches (1,024 characters), each one different.
        text = f'userName eq "{i:06d}{"x" * 960}"'
        answer = call(engine, "GET", "/Users", query={"filter": text})
        assert answer.status == 200
        assert answer.json["totalResults"] == 0

    grown = bytes_grown(ask, 20, 3000)
    # 3,000 distinct 1 KiB filters, each kept parsed and rendered: over 6 MiB.
    assert grown < 3_000_000, grown
