"""What the operator console shows, read from the engine: the filters a page was asked
for (:class:`Filters`, from the query string), and the audit entries, traffic, errors,
tenants and outbox they select (:class:`Overview`, :class:`ErrorGroup`, ...).

Nothing here writes: the console is read-only.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..backends import SearchQuery
from ..events import AuditEntry, Counts, FailedEvent
from ._chart import Slot

__all__ = [
    "PAGE_ROWS",
    "ROW_LIMIT",
    "WINDOWS",
    "EntryPage",
    "ErrorGroup",
    "FilterError",
    "Filters",
    "Outbox",
    "Position",
    "TenantCounts",
    "Traffic",
    "client_of",
    "error_groups",
    "outbox_of",
    "parse_time",
    "principal_of",
    "read_entries",
    "read_page",
    "scim_type_of",
    "tenant_counts",
    "traffic",
]

#: The time windows offered by the filter form, and how far back each reaches.
WINDOWS: Mapping[str, timedelta | None] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}
#: The most audit entries one page reads (the newest); the page says when it stopped there.
ROW_LIMIT = 5000
#: Rows a page of requests or of a resource's history shows; "older"/"newer" links page on.
PAGE_ROWS = 100
#: Entries read from the audit log per look-up while filling a page.
_BATCH = 500
_STATUS = re.compile(r"^(?:[1-5]xx|errors|[1-5][0-9][0-9])$")
_TEXT_LIMIT = 256


class FilterError(ValueError):
    """A filter the page cannot apply, with what is wrong (shown to the operator)."""


def _time(value: str, name: str) -> datetime:
    """``value`` from a ``datetime-local`` field or RFC 3339 (no offset: UTC)."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        parsed = parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise FilterError(f"{name}: {value!r} is not a time such as 2026-11-30T09:00") from None
    if not 1970 <= parsed.year <= 9000:
        raise FilterError(f"{name}: {value!r} is not between the years 1970 and 9000")
    return parsed


def _short(query: Mapping[str, str], name: str) -> str | None:
    value = (query.get(name) or "").strip()
    if len(value) > _TEXT_LIMIT:
        raise FilterError(f"{name}: longer than {_TEXT_LIMIT} characters")
    return value or None


@dataclass(frozen=True, slots=True)
class Filters:
    """The filters of one page, from its query string (plain GET form fields).

    ``window`` is one of :data:`WINDOWS`; ``since``/``until`` (a ``datetime-local`` value
    or RFC 3339, UTC when no offset is given) override it. ``status`` is a code
    (``409``), a class (``4xx``) or ``errors`` (400 and above).
    """

    window: str = "24h"
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None
    principal: str | None = None
    resource: str | None = None
    tenant: str | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> Filters:
        """The filters in ``query``; :class:`FilterError` names the first bad one."""
        window = (query.get("window") or "24h").strip()
        if window not in WINDOWS:
            raise FilterError(f"window: {window!r} is not one of {', '.join(WINDOWS)}")
        status = _short(query, "status")
        if status is not None and not _STATUS.match(status.lower()):
            raise FilterError(f"status: {status!r} is not a code (409), a class (4xx) or errors")
        since = _short(query, "since")
        until = _short(query, "until")
        return cls(
            window=window,
            since=_time(since, "since") if since else None,
            until=_time(until, "until") if until else None,
            status=status.lower() if status else None,
            principal=_short(query, "principal"),
            resource=_short(query, "resource"),
            tenant=_short(query, "tenant"),
        )

    def start(self, now: datetime) -> datetime | None:
        """The earliest time the page covers (None: everything kept)."""
        if self.since is not None:
            return self.since
        span = WINDOWS[self.window]
        return None if span is None else now - span

    def status_matches(self, status: int) -> bool:
        """Whether an answer with ``status`` passes the status filter."""
        wanted = self.status
        if wanted is None:
            return True
        if wanted == "errors":
            return status >= 400
        if wanted.endswith("xx"):
            return str(status)[0] == wanted[0]
        return str(status) == wanted

    def as_query(self) -> dict[str, str]:
        """The filters as query parameters (for links that keep them)."""
        out = {"window": self.window}
        for name in ("status", "principal", "resource", "tenant"):
            value = getattr(self, name)
            if value:
                out[name] = value
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        return out


def read_entries(audit: Any, filters: Filters, now: datetime) -> tuple[list[AuditEntry], bool]:
    """The audit entries ``filters`` select, newest first, and whether :data:`ROW_LIMIT`
    cut them (only the newest are read then)."""
    exact = filters.status if filters.status and filters.status.isdigit() else None
    entries: list[AuditEntry] = audit.query(
        resource_id=filters.resource,
        principal=filters.principal,
        status=int(exact) if exact else None,
        since=filters.start(now),
        until=filters.until,
        limit=ROW_LIMIT,
        newest_first=True,
    )
    cut = len(entries) >= ROW_LIMIT
    kept = [
        e
        for e in entries
        if filters.status_matches(e.status)
        and (filters.tenant is None or (e.tenant or "") == _no_tenant(filters.tenant))
    ]
    return kept, cut


def _no_tenant(value: str) -> str:
    """The tenant filter as stored: ``(default)`` names the single-tenant case."""
    return "" if value == "(default)" else value


def parse_time(stamp: str) -> datetime:
    """An entry's ``time`` (RFC 3339, UTC) as an aware datetime."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


_SLOT_SIZES = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
)


@dataclass(frozen=True, slots=True)
class Traffic:
    """The chart's data: equal time slots from ``start`` to ``end``."""

    slots: list[Slot]
    slot_size: timedelta


def traffic(entries: Iterable[AuditEntry], start: datetime | None, end: datetime) -> Traffic:
    """Requests and errors per slot, about 30 slots between ``start`` (or the oldest
    entry) and ``end``."""
    times = [(parse_time(e.time), e.status >= 400) for e in entries]
    first = start or min((t for t, _ in times), default=end - timedelta(hours=1))
    span = max(end - first, timedelta(minutes=1))
    size = next((s for s in _SLOT_SIZES if span / s <= 36), _SLOT_SIZES[-1])
    count = min(int(span / size) + 1, 400)
    # Slots start on multiples of their size (09:00, 09:15...), the last one holding ``end``.
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    last = epoch + size * int((end - epoch) / size)
    origin = last - size * (count - 1)
    requests = [0] * count
    errors = [0] * count
    for at, failed in times:
        n = int((at - origin) / size)
        if 0 <= n < count:
            requests[n] += 1
            errors[n] += failed
    fmt = "%m-%d" if size >= timedelta(days=1) else "%H:%M"
    slots = [Slot((origin + size * n).strftime(fmt), requests[n], errors[n]) for n in range(count)]
    return Traffic(slots, size)


@dataclass(slots=True)
class ErrorGroup:
    """The errors sharing one key (a ``scimType``, or a principal): how many, and the
    latest ones with what was asked and answered."""

    key: str
    count: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latest: list[AuditEntry] = field(default_factory=list)


def error_groups(
    entries: Iterable[AuditEntry], key: Callable[[AuditEntry], str], keep: int = 5
) -> list[ErrorGroup]:
    """The error answers (400 and above) of ``entries`` (newest first) grouped by ``key``,
    the largest group first; each keeps its ``keep`` latest entries."""
    groups: dict[str, ErrorGroup] = {}
    for entry in entries:
        if entry.status < 400:
            continue
        name = key(entry)
        group = groups.setdefault(name, ErrorGroup(name))
        group.count += 1
        group.statuses[entry.status] += 1
        if len(group.latest) < keep:
            group.latest.append(entry)
    return sorted(groups.values(), key=lambda g: (-g.count, g.key))


def scim_type_of(entry: AuditEntry) -> str:
    """An error's group on the errors page: its ``scimType``, or its status without one."""
    return entry.scim_type or f"HTTP {entry.status} (no scimType)"


def principal_of(entry: AuditEntry) -> str:
    """Who sent a request, as shown: the principal, or ``(anonymous)`` (refused at 401)."""
    return entry.principal or "(anonymous)"


def client_of(entry: AuditEntry) -> str:
    """The software that sent a refused request: its ``User-Agent`` (``Azure AD SCIM
    Provisioning``, ``Okta SCIM Client``...), which tells identity providers apart even
    when they share one token."""
    agent = (entry.exchange or {}).get("userAgent")
    return str(agent) if agent else "(no User-Agent)"


@dataclass(slots=True)
class TenantCounts:
    """One tenant's line: requests and errors in the window, resources stored per type."""

    tenant: str
    requests: int = 0
    errors: int = 0
    resources: dict[str, int | None] = field(default_factory=dict)


def tenant_counts(
    entries: Iterable[AuditEntry], backend: Any, types: Iterable[Any]
) -> list[TenantCounts]:
    """Counts per tenant seen in ``entries`` (``(default)``: no tenant), with each
    resource type's stored total (None when the backend cannot say)."""
    by: dict[str, TenantCounts] = {}
    raw: dict[str, str | None] = {}
    for entry in entries:
        name = entry.tenant or "(default)"
        raw[name] = entry.tenant
        line = by.setdefault(name, TenantCounts(name))
        line.requests += 1
        line.errors += entry.status >= 400
    types = list(types)
    for name, line in by.items():
        for rt in types:
            try:
                line.resources[rt.name] = backend.search(raw[name], rt, SearchQuery(count=0)).total
            except Exception:  # a backend that cannot count: shown as unknown
                line.resources[rt.name] = None
    return sorted(by.values(), key=lambda t: (-t.requests, t.tenant))


@dataclass(frozen=True, slots=True)
class Outbox:
    """The event outbox as the page shows it: each consumer's counts, the parked events."""

    counts: Mapping[str, Counts]
    failed: list[FailedEvent]

    @property
    def pending(self) -> int:
        """Events not yet delivered, summed over the consumers."""
        return sum(c.pending for c in self.counts.values())

    @property
    def failures(self) -> int:
        """Events parked as failed, summed over the consumers."""
        return sum(c.failed for c in self.counts.values())


def outbox_of(events: Any, limit: int = 50) -> Outbox:
    """The outbox of ``engine.events``: counts per consumer and the latest failures."""
    return Outbox(dict(events.counts()), list(events.failed(None, limit)))


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a page of audit entries starts or ends: an entry's ``time`` and ``seq``, the
    order the audit log keeps (a keyset position: pages stay put while new requests are
    recorded, unlike an offset). Written in links as ``<time>~<seq>``."""

    time: str
    seq: int

    @classmethod
    def of(cls, entry: AuditEntry) -> Position:
        """The position of ``entry``."""
        return cls(entry.time, entry.seq)

    @classmethod
    def parse(cls, value: str, name: str) -> Position:
        """A position from a link; :class:`FilterError` when it is not one."""
        stamp, sep, seq = value.strip().rpartition("~")
        if not sep or not seq.isdigit() or len(seq) > 18 or len(stamp) > 40:
            raise FilterError(f"{name}: {value[:60]!r} is not a position in the list")
        _time(stamp, name)  # a time, else FilterError
        return cls(stamp, int(seq))

    def token(self) -> str:
        """The position as a link writes it."""
        return f"{self.time}~{self.seq}"


@dataclass(frozen=True, slots=True)
class EntryPage:
    """One page of audit entries, in the order shown, and the positions the "older" and
    "newer" links start from (None: no such link, nothing there)."""

    entries: list[AuditEntry]
    older: Position | None
    newer: Position | None


def _key(entry: AuditEntry) -> tuple[str, int]:
    return entry.time, entry.seq


def _scan(
    audit: Any,
    filters: Filters,
    start: datetime | None,
    *,
    beyond: Position | None,
    older: bool,
    want: int,
) -> tuple[list[AuditEntry], Position | None]:
    """Up to ``want`` entries ``filters`` select, going from ``beyond`` (excluded; None:
    from the newest, or the oldest) towards older ones (``older``) or newer ones, in that
    order. Reads the audit log in batches, at most :data:`ROW_LIMIT` entries a page: the
    position it stopped at when it read that many before finding ``want`` (else None)."""
    exact = filters.status if filters.status and filters.status.isdigit() else None
    kept: list[AuditEntry] = []
    read = 0
    while len(kept) < want and read < ROW_LIMIT:
        since, until = start, filters.until
        if beyond is not None:
            at = _time(beyond.time, "position")
            if older:  # ``until`` is exclusive: one microsecond on keeps the position's time
                after = at + timedelta(microseconds=1)
                until = after if until is None else min(until, after)
            else:
                since = at if since is None else max(since, at)
        batch: list[AuditEntry] = audit.query(
            resource_id=filters.resource,
            principal=filters.principal,
            status=int(exact) if exact else None,
            since=since,
            until=until,
            limit=_BATCH,
            newest_first=older,
        )
        full = len(batch) >= _BATCH  # else the log holds nothing more this way
        batch.sort(key=_key, reverse=older)
        if beyond is not None:
            edge = (beyond.time, beyond.seq)
            batch = [e for e in batch if (_key(e) < edge if older else _key(e) > edge)]
        if not batch:
            break
        read += len(batch)
        for entry in batch:
            if filters.status_matches(entry.status) and (
                filters.tenant is None or (entry.tenant or "") == _no_tenant(filters.tenant)
            ):
                kept.append(entry)
                if len(kept) == want:
                    break
        beyond = Position.of(batch[-1])
        if not full:
            return kept, None
    stopped = beyond if len(kept) < want and read >= ROW_LIMIT else None
    return kept, stopped


def read_page(
    audit: Any,
    filters: Filters,
    now: datetime,
    *,
    before: Position | None = None,
    after: Position | None = None,
    newest_first: bool = True,
    rows: int = PAGE_ROWS,
) -> EntryPage:
    """A page of the audit entries ``filters`` select: the ``rows`` just older than
    ``before``, or just newer than ``after``, or (neither) the newest (``newest_first``)
    or the oldest; shown newest first, or oldest first without ``newest_first``."""
    start = filters.start(now)
    if after is None and (before is not None or newest_first):
        # Towards older entries: from ``before``, or from the newest.
        found, stopped = _scan(audit, filters, start, beyond=before, older=True, want=rows + 1)
        shown = found[:rows]
        more = len(found) > rows
        older = Position.of(shown[-1]) if more and shown else stopped
        newer = Position.of(shown[0]) if before is not None and shown else None
        if before is not None and not shown:
            newer = before
        if not newest_first:
            shown.reverse()
        return EntryPage(shown, older, newer)
    found, stopped = _scan(audit, filters, start, beyond=after, older=False, want=rows + 1)
    shown = found[:rows]
    more = len(found) > rows
    newer = Position.of(shown[-1]) if more and shown else stopped
    older = Position.of(shown[0]) if after is not None and shown else None
    if after is not None and not shown:
        older = after
    if newest_first:
        shown.reverse()
    return EntryPage(shown, older, newer)
