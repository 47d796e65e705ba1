"""The stored form of an event round-trips, and redaction removes every secret."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scim2_models import User

from scim2_core import ChangeEvent
from scim2_core.backends import change_events
from scim2_core.engine._audit import change_of, entry_time
from scim2_core.events import MEMBERS_INLINE, new_event_id, redact
from scim2_core.events._model import stored_event
from scim2_core.schema import resource_type_from_model

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
DOCS = st.none() | st.dictionaries(st.text(max_size=8), JSON, max_size=5)
IDS = st.lists(st.text(min_size=1, max_size=6), max_size=3).map(tuple)


@given(
    kind=st.sampled_from(["created", "replaced", "patched", "deleted", "touched"]),
    rid=st.text(min_size=1, max_size=10),
    tenant=st.none() | st.text(min_size=1, max_size=5),
    before=DOCS,
    after=DOCS,
    principal=st.none() | st.text(max_size=5),
    added=IDS,
    removed=IDS,
    seq=st.integers(min_value=1, max_value=2**62),
)
def test_an_event_round_trips_through_its_stored_form(
    kind: Any,
    rid: str,
    tenant: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    principal: str | None,
    added: tuple[str, ...],
    removed: tuple[str, ...],
    seq: int,
) -> None:
    event = ChangeEvent(
        kind=kind,
        resource_type="User",
        id=rid,
        tenant=tenant,
        before=before,
        after=after,
        principal=principal,
        version='W/"1"',
        event_id="e-1",
        seq=seq,
        time="2026-11-30T00:00:00Z",
        request_id="r",
        cause=None,
        members_added=added,
        members_removed=removed,
    )
    assert ChangeEvent.from_json(event.to_json(), seq=seq) == event


USER = resource_type_from_model(User)


@given(doc=st.dictionaries(st.text(max_size=8), JSON, max_size=5), secret=st.text(max_size=12))
def test_redaction_removes_the_password_and_copies(doc: dict[str, Any], secret: str) -> None:
    doc = {**doc, "password": secret}
    out = redact(USER, doc)
    assert out is not None
    assert "password" not in out
    assert {k: v for k, v in doc.items() if k != "password"} == out
    for value in out.values():
        if isinstance(value, (dict, list)):
            assert all(value is not v for v in doc.values())


def test_a_long_member_list_is_left_out() -> None:
    group = {"id": "g", "members": [{"value": str(n)} for n in range(MEMBERS_INLINE + 1)]}
    assert redact(None, group) == {"id": "g"}
    small = {"id": "g", "members": [{"value": "1"}]}
    assert redact(None, small) == small


@given(
    kind=st.sampled_from(["created", "replaced", "patched", "deleted", "touched"]),
    rid=st.text(min_size=1, max_size=10),
    tenant=st.none() | st.text(max_size=5),
    before=DOCS,
    after=DOCS,
    added=IDS,
    seq=st.integers(min_value=1, max_value=2**62),
    as_bytes=st.booleans(),
)
def test_an_event_read_from_the_outbox_is_the_event_written(
    kind: Any,
    rid: str,
    tenant: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    added: tuple[str, ...],
    seq: int,
    as_bytes: bool,
) -> None:
    """What the delivery thread hands a consumer (the outbox row's columns, its JSON
    decoded when first needed) compares, prints, copies and pickles as the event."""
    event = ChangeEvent(
        kind=kind,
        resource_type="Group",
        id=rid,
        tenant=tenant,
        before=before,
        after=after,
        principal="p",
        event_id="e-2",
        seq=seq,
        time="2026-11-30T00:00:00Z",
        members_added=added,
    )
    text = event.to_json()

    def read() -> ChangeEvent:
        return stored_event(seq, "e-2", "Group", rid, kind, text.encode() if as_bytes else text)

    assert read() == event and event == read()
    assert repr(read()) == repr(event)
    assert pickle.loads(pickle.dumps(read())) == event
    assert copy.copy(read()) == event
    assert dataclasses.replace(read(), seq=1) == dataclasses.replace(event, seq=1)
    assert dataclasses.asdict(read()) == dataclasses.asdict(event)
    assert (read().after, read().tenant, read().members_added) == (after, tenant, added)
    with pytest.raises(dataclasses.FrozenInstanceError):
        read().after = {}  # type: ignore[misc]


@given(doc=st.dictionaries(st.text(max_size=8), JSON, max_size=5), secret=st.text(max_size=12))
def test_an_event_without_copies_encodes_as_the_copying_one(
    doc: dict[str, Any], secret: str
) -> None:
    """``change_events(copy=False)`` (a backend encoding its events at once) stores the
    same JSON, without the password, as the copying form."""
    doc = {**doc, "id": "u1", "password": secret}
    copied = change_events(None, USER, "created", None, doc)
    shared = change_events(None, USER, "created", None, doc, copy=False)
    assert shared[0].after == copied[0].after
    assert "password" not in (shared[0].after or {})
    assert doc["password"] == secret  # the caller's document is untouched


@given(at=st.floats(min_value=0, max_value=2**32, allow_nan=False))
def test_an_audit_time_is_the_instant_as_datetime_formats_it(at: float) -> None:
    expected = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert entry_time(at) == expected


@given(doc=st.dictionaries(st.text(max_size=8), JSON, max_size=5), secret=st.text(max_size=12))
def test_the_audit_diff_of_a_create_keeps_its_values(doc: dict[str, Any], secret: str) -> None:
    """A create's diff sets every attribute but ``id``/``meta``/``schemas``, the password
    as redacted, and keeps its values when the caller changes the document afterwards
    (the engine renders it in place)."""
    doc = {k: v for k, v in doc.items() if k not in ("id", "meta", "schemas", "members")}
    stored = {**copy.deepcopy(doc), "id": "u1", "password": secret}
    change = change_of(USER, None, stored)
    visible = {k: v for k, v in doc.items() if v is not None}
    assert change.get("set", {}) == {**visible, "password": "(redacted)"}
    for value in stored.values():
        if isinstance(value, dict):
            value["$ref"] = "changed"
        elif isinstance(value, list):
            value.append("changed")
    assert change.get("set", {}) == {**visible, "password": "(redacted)"}


def test_event_ids_are_distinct_random_uuids() -> None:
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
