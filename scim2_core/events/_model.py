"""The change event: what the outbox stores and every consumer receives."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from .._json import copy_json
from ..schema import ResourceType

__all__ = ["MEMBERS_INLINE", "ChangeEvent", "EventKind", "new_event_id", "redact"]

#: One encoder for every event: ``json.dumps`` with options builds a new one per call.
_ENCODE: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_DECODE: Final = json.JSONDecoder().decode

#: ``created``/``replaced``/``patched``/``deleted`` describe the resource a request wrote;
#: ``touched`` a resource whose representation changed as a side effect of another write
#: (a User whose derived ``groups`` changed because a group gained or lost it, or a group
#: that lost a deleted member). ``cause`` names the resource whose write touched it.
EventKind: TypeAlias = Literal["created", "replaced", "patched", "deleted", "touched"]

#: A group's ``before``/``after`` keep their ``members`` list only up to this many
#: entries; beyond it the list is left out of the event (``members_added`` and
#: ``members_removed`` still say what changed), so that one PUT of a 10k-member group
#: stores one event of bounded size, not two copies of the whole list.
MEMBERS_INLINE: Final = 1000


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """A committed change, as stored in the outbox and handed to every consumer.

    ``before`` is None for ``created``, ``after`` None for ``deleted``; for ``touched``
    both are None and ``version`` is the touched resource's new version. Attributes with
    ``returned: never`` (``password``) are never included (RFC 7643 §7: "never" — "the
    attribute [...] SHALL NOT be returned"). ``id`` is the resource's id; ``event_id`` is
    unique per event and stays the same when a crash makes a consumer receive the event
    twice (delivery is at least once: deduplicate on it). ``seq`` orders the outbox: a
    consumer receives the events of one resource in ``seq`` order.
    """

    kind: EventKind
    resource_type: str
    id: str
    tenant: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    #: The name of the authenticated principal that made the change (None: no hook).
    principal: str | None = None
    version: str | None = None
    event_id: str = ""
    seq: int = 0
    #: When the change committed (the resource's ``meta.lastModified``, RFC 3339).
    time: str = ""
    request_id: str | None = None
    #: For ``touched``: the id of the resource whose write touched this one.
    cause: str | None = None
    #: For a write that changed a group's members: the ids that joined and left.
    members_added: tuple[str, ...] = ()
    members_removed: tuple[str, ...] = ()

    def to_json(self) -> str:
        """The event as one JSON object (the stored form; :meth:`from_json` reverses it)."""
        data: dict[str, Any] = {
            "kind": self.kind,
            "resourceType": self.resource_type,
            "id": self.id,
            "tenant": self.tenant,
            "version": self.version,
            "eventId": self.event_id,
            "time": self.time,
            "principal": self.principal,
            "requestId": self.request_id,
        }
        if self.before is not None:
            data["before"] = self.before
        if self.after is not None:
            data["after"] = self.after
        if self.cause is not None:
            data["cause"] = self.cause
        if self.members_added:
            data["membersAdded"] = list(self.members_added)
        if self.members_removed:
            data["membersRemoved"] = list(self.members_removed)
        return _ENCODE(data)

    @classmethod
    def from_json(cls, text: str | bytes, *, seq: int = 0) -> ChangeEvent:
        """The event :meth:`to_json` wrote, with its outbox position ``seq``."""
        data = _DECODE(text) if isinstance(text, str) else json.loads(text)
        return cls(
            kind=data["kind"],
            resource_type=data["resourceType"],
            id=data["id"],
            tenant=data.get("tenant"),
            before=data.get("before"),
            after=data.get("after"),
            principal=data.get("principal"),
            version=data.get("version"),
            event_id=data.get("eventId", ""),
            seq=seq,
            time=data.get("time", ""),
            request_id=data.get("requestId"),
            cause=data.get("cause"),
            members_added=tuple(data.get("membersAdded", ())),
            members_removed=tuple(data.get("membersRemoved", ())),
        )


#: The fields of a stored event that its JSON holds and the outbox's columns do not (or
#: not exactly: ``tenant`` is stored as ``""`` for none): read from the JSON when first
#: used (see :func:`stored_event`).
_FROM_TEXT: Final = (
    "tenant",
    "before",
    "after",
    "principal",
    "version",
    "time",
    "request_id",
    "cause",
    "members_added",
    "members_removed",
)
_SLOTS: Final = {name: ChangeEvent.__dict__[name] for name in ChangeEvent.__dataclass_fields__}


class _StoredEvent(ChangeEvent):
    """A :class:`ChangeEvent` read from the outbox, its JSON decoded only when one of
    :data:`_FROM_TEXT` is first read: a consumer that looks only at ``kind``,
    ``resource_type``, ``id``, ``event_id`` and ``seq`` (the outbox's columns) never pays
    for decoding the documents. Otherwise the same event in every way (equal to the
    :class:`ChangeEvent` of the same fields, printed, copied and pickled as one)."""

    __slots__ = ("_text",)

    def _decode(self) -> None:
        text = getattr(self, "_text", None)
        if text is None:
            return
        data = _DECODE(text) if isinstance(text, str) else json.loads(text)
        for name, value in (
            ("tenant", data.get("tenant")),
            ("before", data.get("before")),
            ("after", data.get("after")),
            ("principal", data.get("principal")),
            ("version", data.get("version")),
            ("time", data.get("time", "")),
            ("request_id", data.get("requestId")),
            ("cause", data.get("cause")),
            ("members_added", tuple(data.get("membersAdded", ()))),
            ("members_removed", tuple(data.get("membersRemoved", ()))),
        ):
            _SLOTS[name].__set__(self, value)
        # Last: another thread reading meanwhile decodes again, never sees a field unset.
        _StoredEvent._text.__set__(self, None)  # type: ignore[attr-defined]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChangeEvent):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _SLOTS)

    __hash__ = ChangeEvent.__hash__

    def __repr__(self) -> str:
        return "ChangeEvent" + ChangeEvent.__repr__(self).removeprefix("_StoredEvent")


def _from_text(name: str) -> property:
    slot = _SLOTS[name]

    def get(self: _StoredEvent) -> Any:
        self._decode()
        return slot.__get__(self, ChangeEvent)

    def set_(self: _StoredEvent, value: Any) -> None:  # the dataclass's __init__ and copy
        slot.__set__(self, value)

    return property(get, set_)


for _name in _FROM_TEXT:
    setattr(_StoredEvent, _name, _from_text(_name))


def stored_event(
    seq: int, event_id: str, resource_type: str, id: str, kind: str, text: str | bytes
) -> ChangeEvent:
    """The event stored in an outbox row (its columns and its JSON ``text``, as
    :meth:`ChangeEvent.to_json` wrote it), decoding ``text`` only when needed: equal to
    ``ChangeEvent.from_json(text, seq=seq)``."""
    event = _StoredEvent.__new__(_StoredEvent)
    for name, value in (
        ("kind", kind),
        ("resource_type", resource_type),
        ("id", id),
        ("event_id", event_id),
        ("seq", seq),
    ):
        _SLOTS[name].__set__(event, value)
    _StoredEvent._text.__set__(event, text)  # type: ignore[attr-defined]
    return event


def new_event_id() -> str:
    """A fresh, unique event id: a random (version 4) UUID, as ``str(uuid.uuid4())``
    spells it (formatted from the random bytes directly: a third of the time)."""
    h = os.urandom(16).hex()
    # RFC 9562 §5.4: version 4 in the 13th hex digit, variant 10xx in the 17th.
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_VARIANT: Final = "89ab"


#: The secret attributes of each resource type seen, by ``id()`` (the type is kept, so
#: that its id is not reused): ``(core names, {extension URN: names})``.
_SECRETS: dict[int, tuple[ResourceType | None, frozenset[str], dict[str, frozenset[str]]]] = {}


def secret_names(rt: ResourceType | None) -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """The names of ``rt``'s ``returned: never`` attributes (``password`` always), in the
    core schema and per extension; computed once per type."""
    known = _SECRETS.get(id(rt))
    if known is not None and known[0] is rt:
        return known[1], known[2]
    core = {"password"}
    ext: dict[str, set[str]] = {}
    if rt is not None:
        for urn, attr in rt.iter_attributes():
            if attr.returned == "never":
                if urn is None:
                    core.add(attr.name)
                else:
                    ext.setdefault(urn, set()).add(attr.name)
    found = (frozenset(core), {urn: frozenset(names) for urn, names in ext.items()})
    _SECRETS[id(rt)] = (rt, *found)
    return found


def redact(
    rt: ResourceType | None, resource: Mapping[str, Any] | None, *, copy: bool = True
) -> dict[str, Any] | None:
    """A copy of ``resource`` without its secrets, for an event or an audit entry.

    Every attribute whose schema says ``returned: never`` (RFC 7643 §7; ``password``,
    RFC 7643 §4.1.1) is left out, in the core schema and in extensions; ``password`` is
    left out even without a schema. A ``members`` list longer than
    :data:`MEMBERS_INLINE` is left out too (see there).

    ``copy=False`` copies only the top level (the values are ``resource``'s own): for a
    caller that encodes the result at once and lets it go, such as a backend writing an
    event in the write's transaction.
    """
    if resource is None:
        return None
    secret_core, secret_ext = secret_names(rt)
    out: dict[str, Any] = {}
    for key, value in resource.items():
        if key in secret_core:
            continue
        if key in secret_ext and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in secret_ext[key]}
        if key == "members" and isinstance(value, list) and len(value) > MEMBERS_INLINE:
            continue
        out[key] = value
    return copy_json(out) if copy else out
