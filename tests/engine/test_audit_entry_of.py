"""``AuditEntry.of``, the engine's way to make an entry for every request, makes the entry
the keyword constructor makes, for any values."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scim2_core.events import AuditEntry

_TEXT = st.one_of(st.none(), st.text(max_size=8))
_JSON = st.one_of(st.none(), st.dictionaries(st.text(max_size=4), st.integers(), max_size=3))


@given(
    time=st.text(max_size=30),
    principal=_TEXT,
    tenant=_TEXT,
    method=st.sampled_from(["GET", "POST", "PATCH"]),
    path=st.text(max_size=20),
    resource_type=_TEXT,
    resource_id=_TEXT,
    status=st.integers(100, 599),
    scim_type=_TEXT,
    request_id=_TEXT,
    duration_ms=st.floats(0, 1e6, allow_nan=False),
    change=_JSON,
    exchange=_JSON,
)
def test_of_is_the_keyword_constructor(**values: Any) -> None:
    names = [f.name for f in fields(AuditEntry) if f.name != "seq"]
    made = AuditEntry.of(*(values[n] for n in names))
    assert made == AuditEntry(**values)
    assert made.seq == 0
    assert made.to_dict() == AuditEntry(**values).to_dict()
    with pytest.raises(FrozenInstanceError):
        made.status = 500  # type: ignore[misc]
