"""The console's pages, each a function of what :mod:`._data` read to the HTML bytes of a
page (built with :mod:`._html`, so every value is escaped)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ..events import AuditEntry
from ._chart import traffic_chart
from ._data import (
    EntryPage,
    ErrorGroup,
    Filters,
    Outbox,
    Position,
    TenantCounts,
    Traffic,
)
from ._html import Safe, el, fragment
from ._layout import filter_form, link
from ._layout import page as page_of

__all__ = [
    "error_page",
    "errors_page",
    "history_page",
    "login_page",
    "outbox_page",
    "overview_page",
    "requests_page",
]


def _pager(
    root: str,
    path: str,
    query: dict[str, str],
    page: EntryPage,
    *,
    newest_first: bool,
    paged: bool,
) -> Safe | None:
    """The links to the pages beside this one, keyed by the position of its first or last
    entry and keeping ``query`` (the filters): plain links, in the tab order, with
    ``rel="prev"``/``rel="next"`` in the order shown. None when there is one page."""
    if page.older is None and page.newer is None:
        return None

    def go(label: str, rel: str, key: str, at: Position) -> Safe:
        return el("a", {"href": link(root, path, {**query, key: at.token()}), "rel": rel}, label)

    items = []
    if newest_first:
        if paged:
            items.append(el("a", {"href": link(root, path, query)}, "Newest"))
        if page.newer is not None:
            items.append(go("← Newer", "prev", "after", page.newer))
        if page.older is not None:
            items.append(go("Older →", "next", "before", page.older))
    else:
        if page.older is not None:
            items.append(go("← Earlier", "prev", "before", page.older))
        if page.newer is not None:
            items.append(go("Later →", "next", "after", page.newer))
        if paged:
            items.append(el("a", {"href": link(root, path, query)}, "Earliest"))
    return el(
        "nav",
        {"class": "pager", "aria-label": "Pages of this list"},
        el("ul", None, [el("li", None, item) for item in items]),
    )


def _table(
    caption: str, head: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[int] = ()
) -> Safe:
    """A table with a caption and column headers, in a scrollable region that keyboard
    users can reach (it takes focus) when it is wider than a phone."""
    body = [
        el(
            "tr",
            None,
            [
                el("td", {"class": "num" if i in numeric else None}, cell)
                for i, cell in enumerate(row)
            ],
        )
        for row in rows
    ]
    if not body:
        body = [el("tr", None, el("td", {"colspan": len(head)}, "Nothing to show."))]
    table = el(
        "table",
        None,
        el("caption", None, caption),
        el(
            "thead",
            None,
            el(
                "tr",
                None,
                [
                    el("th", {"scope": "col", "class": "num" if i in numeric else None}, h)
                    for i, h in enumerate(head)
                ],
            ),
        ),
        el("tbody", None, body),
    )
    return el(
        "div", {"class": "scroll", "role": "region", "aria-label": caption, "tabindex": "0"}, table
    )


def _status(status: int) -> Safe:
    cls = (
        "s-err"
        if status >= 500 or status in (400, 401, 403, 409, 412, 413)
        else ("s-warn" if status >= 400 else "s-ok")
    )
    return el("span", {"class": cls}, status)


def _resource_link(root: str, entry: AuditEntry) -> Safe | str:
    if not entry.resource_id:
        return entry.resource_type or ""
    label = f"{entry.resource_type or ''} {entry.resource_id}".strip()
    return el("a", {"href": link(root, "/history", {"resource": entry.resource_id})}, label)


def _request_rows(root: str, entries: Iterable[AuditEntry]) -> list[list[object]]:
    return [
        [
            e.time.replace("T", " ")[:19],
            e.principal or "(anonymous)",
            e.tenant or "",
            f"{e.method} {e.path}",
            _status(e.status),
            e.scim_type or "",
            f"{e.duration_ms:.1f}",
            _resource_link(root, e),
            e.request_id or "",
        ]
        for e in entries
    ]


_REQUEST_HEAD = (
    "Time (UTC)",
    "Principal",
    "Tenant",
    "Request",
    "Status",
    "scimType",
    "ms",
    "Resource",
    "Request id",
)


def _percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def _cards(entries: Sequence[AuditEntry], outbox: Outbox) -> Safe:
    errors = sum(e.status >= 400 for e in entries)
    took = [e.duration_ms for e in entries]
    rate = f"{100 * errors / len(entries):.1f}%" if entries else "–"
    cards = [
        ("Requests", len(entries)),
        ("Errors", errors),
        ("Error rate", rate),
        ("Latency p50", f"{_percentile(took, 0.5):.1f} ms"),
        ("Latency p95", f"{_percentile(took, 0.95):.1f} ms"),
        ("Events pending", outbox.pending),
        ("Events failed", outbox.failures),
    ]
    return el(
        "div",
        {"class": "cards"},
        [el("div", {"class": "card"}, name, el("b", None, value)) for name, value in cards],
    )


def _cut_note(cut: bool) -> Safe | None:
    if not cut:
        return None
    return el(
        "p",
        {"class": "note"},
        "Only the newest requests of this window were read: narrow the filters to see more.",
    )


def _audit_off(active: bool) -> Safe | None:
    if active:
        return None
    return el(
        "p",
        {"class": "problem"},
        "The audit log is off: no request is recorded, so there is nothing to show. "
        "Turn it on with engine.audit.enable() (scim2-core serve keeps it unless --no-audit).",
    )


def _slot_title(size: timedelta) -> str:
    minutes = int(size.total_seconds() // 60)
    unit = f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"
    return f"Requests and errors per {unit}"


def overview_page(
    root: str,
    filters: Filters,
    entries: Sequence[AuditEntry],
    cut: bool,
    chart: Traffic,
    tenants: Sequence[TenantCounts],
    by_type: Sequence[ErrorGroup],
    outbox: Outbox,
    audit_active: bool,
) -> bytes:
    """The overview: totals, the traffic chart, counts per tenant, the latest requests
    and the commonest errors."""
    types = sorted({name for t in tenants for name in t.resources})
    tenant_rows = [
        [
            t.tenant,
            t.requests,
            t.errors,
            *[("?" if t.resources.get(n) is None else t.resources[n]) for n in types],
        ]
        for t in tenants
    ]
    numeric = range(1, 3 + len(types))
    error_rows = [
        [
            el("a", {"href": link(root, "/errors", {**filters.as_query()})}, g.key),
            g.count,
            ", ".join(f"{s}×{n}" for s, n in sorted(g.statuses.items())),
        ]
        for g in by_type[:5]
    ]
    return page_of(
        "Overview",
        root,
        "/",
        _audit_off(audit_active),
        filter_form(root, "/", filters),
        _cut_note(cut),
        el("h2", None, "At a glance"),
        _cards(entries, outbox),
        el("h2", None, "Traffic"),
        el(
            "figure",
            None,
            traffic_chart(chart.slots, title=_slot_title(chart.slot_size)),
            el(
                "figcaption",
                {"class": "note"},
                _slot_title(chart.slot_size),
                " (blue: requests, red: errors), times in UTC.",
            ),
        ),
        el("h2", None, "Tenants"),
        _table(
            "Requests, errors and stored resources per tenant",
            ["Tenant", "Requests", "Errors", *types],
            tenant_rows,
            numeric,
        ),
        el("h2", None, "Commonest errors"),
        _table("Errors by scimType", ["scimType", "Errors", "Statuses"], error_rows, (1,)),
        el("h2", None, "Latest requests"),
        _table("The latest 20 requests", _REQUEST_HEAD, _request_rows(root, entries[:20]), (6,)),
    )


def requests_page(
    root: str, filters: Filters, page: EntryPage, paged: bool, audit_active: bool
) -> bytes:
    """A page of the requests the filters select, newest first, with links to the older
    and newer ones (``paged``: this is not the first page)."""
    caption = f"{len(page.entries)} requests, newest first"
    if page.entries and (paged or page.older is not None):
        first, last = page.entries[0].time, page.entries[-1].time
        caption += f", {last.replace('T', ' ')[:19]} to {first.replace('T', ' ')[:19]}"
    pager = _pager(root, "/requests", filters.as_query(), page, newest_first=True, paged=paged)
    return page_of(
        "Requests",
        root,
        "/requests",
        _audit_off(audit_active),
        filter_form(root, "/requests", filters),
        pager,
        _table(caption, _REQUEST_HEAD, _request_rows(root, page.entries), (6,)),
        pager,
    )


def _pre(label: str, value: str | None) -> Safe | None:
    if not value:
        return None
    return fragment(el("h4", None, label), el("pre", None, value))


def _exchange(entry: AuditEntry) -> Safe:
    """One refused request: who, what, and what was asked and answered."""
    exchange = entry.exchange or {}
    query = exchange.get("query")
    facts = [
        ("Time (UTC)", entry.time.replace("T", " ")[:23]),
        ("Principal", entry.principal or "(anonymous)"),
        ("Tenant", entry.tenant or "(default)"),
        ("Request", f"{entry.method} {entry.path}"),
        ("Status", _status(entry.status)),
        ("scimType", entry.scim_type or "–"),
        ("Request id", entry.request_id or "–"),
        ("Client", exchange.get("userAgent") or "–"),
    ]
    return el(
        "article",
        {"class": "exchange"},
        el(
            "dl",
            {"class": "meta"},
            [fragment(el("dt", None, k), el("dd", None, v)) for k, v in facts],
        ),
        _pre("Query", json.dumps(query, ensure_ascii=False) if query else None),
        _pre("Request body", exchange.get("request")),
        _pre("Answer", exchange.get("answer")),
    )


def _groups(title: str, groups: Sequence[ErrorGroup], section: str) -> Safe:
    items = [
        el(
            "details",
            {"id": f"{section}-{n}"},
            el(
                "summary",
                None,
                f"{g.key}: {g.count} error{'s' if g.count != 1 else ''} (",
                ", ".join(f"{s}×{c}" for s, c in sorted(g.statuses.items())),
                ")",
            ),
            el(
                "p",
                {"class": "note"},
                f"The latest {len(g.latest)}, with what was asked and answered:",
            ),
            g.latest and [_exchange(e) for e in g.latest],
        )
        for n, g in enumerate(groups)
    ]
    return el(
        "section",
        {"aria-labelledby": f"{section}-title"},
        el("h2", {"id": f"{section}-title"}, title),
        items or el("p", None, "No errors."),
    )


def errors_page(
    root: str,
    filters: Filters,
    by_type: Sequence[ErrorGroup],
    by_principal: Sequence[ErrorGroup],
    by_client: Sequence[ErrorGroup],
    cut: bool,
    audit_active: bool,
) -> bytes:
    """Errors grouped by ``scimType``, by principal (the IdP's token) and by client (its
    ``User-Agent``), each group with its latest refused requests and their answers."""
    return page_of(
        "Errors",
        root,
        "/errors",
        _audit_off(audit_active),
        filter_form(root, "/errors", filters),
        _cut_note(cut),
        _groups("By scimType", by_type, "by-type"),
        _groups("By principal (identity provider)", by_principal, "by-principal"),
        _groups("By client (User-Agent)", by_client, "by-client"),
    )


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1) if not isinstance(value, str) else value


def _diff_rows(change: dict[str, Any], state: dict[str, Any]) -> list[list[object]]:
    """Rows ``attribute | before | after`` of one change, ``state`` the attributes as
    the history so far left them (updated)."""
    rows: list[list[object]] = []
    for key, new in sorted((change.get("set") or {}).items()):
        old = state.get(key)
        rows.append(
            [
                key,
                el("del", None, _value(old)) if old is not None else "–",
                el("ins", None, _value(new)),
            ]
        )
        state[key] = new
    for key in change.get("removed") or ():
        rows.append([key, el("del", None, _value(state.pop(key, "?"))), "(removed)"])
    for name, sign in (("membersAdded", "+"), ("membersRemoved", "−")):
        values = change.get(name) or ()
        if values:
            rows.append([f"members {sign}", "", ", ".join(values)])
    return rows


def history_page(
    root: str,
    filters: Filters,
    page: EntryPage,
    prior: Sequence[AuditEntry],
    paged: bool,
    audit_active: bool,
) -> bytes:
    """A page of the requests on one resource, oldest first: who, when, the answer and
    the diff; ``prior`` are the entries before the page (oldest first), whose changes
    give the "Before" values of its first ones."""
    form = filter_form(root, "/history", filters, resource_only=True)
    if not filters.resource:
        return page_of(
            "Resource history",
            root,
            "/history",
            _audit_off(audit_active),
            form,
            el("p", None, "Give a resource id to see every change made to it."),
        )
    state: dict[str, Any] = {}
    for entry in prior:
        if entry.change:
            _diff_rows(entry.change, state)
    items = []
    for entry in page.entries:
        change = entry.change
        rows = _diff_rows(change, state) if change else []
        heading = (
            f"{entry.time.replace('T', ' ')[:19]} · {entry.method} by "
            f"{entry.principal or '(anonymous)'} → {entry.status}"
        )
        items.append(
            el(
                "li",
                None,
                el("h3", None, heading),
                _table("What changed", ["Attribute", "Before", "After"], rows)
                if rows
                else (
                    _exchange(entry)
                    if entry.status >= 400
                    else el("p", {"class": "note"}, "No change.")
                ),
            )
        )
    body = (
        el("ol", {"class": "history", "start": len(prior) + 1 if prior else None}, items)
        if items
        else el("p", None, "No request on this resource is in the audit log.")
    )
    query = {"resource": filters.resource}
    for name in ("since", "until"):
        if name in (full := filters.as_query()):
            query[name] = full[name]
    pager = _pager(root, "/history", query, page, newest_first=False, paged=paged)
    return page_of(
        f"History of {filters.resource}",
        root,
        "/history",
        _audit_off(audit_active),
        form,
        pager,
        body,
        pager,
    )


def consumer_label(name: str) -> str:
    """A consumer's name as shown: a webhook's URL keeps only its scheme, host and port,
    since its user, path or query may hold the receiver's secret (many hook URLs do)."""
    kind, sep, url = name.partition(":")
    if kind != "webhook" or not sep:
        return name
    try:
        parts = urlsplit(url)
    except ValueError:
        return "webhook:(an unreadable URL)"
    host = parts.netloc.rpartition("@")[2]
    rest = "/…" if parts.path.strip("/") or parts.query else "/"
    return f"webhook:{parts.scheme}://{host}{rest}"


def _scrubbed(text: str, consumer: str) -> str:
    """An error message with its consumer's full name (a webhook's URL) replaced."""
    _, _, url = consumer.partition(":")
    return text.replace(url, consumer_label(consumer)) if url else text


def outbox_page(root: str, outbox: Outbox) -> bytes:
    """The event outbox: each consumer's pending and failed counts, and the events
    parked as failed with their error."""
    consumers = [
        [consumer_label(name), c.pending, c.failed] for name, c in sorted(outbox.counts.items())
    ]
    failed = [
        [
            consumer_label(f.consumer),
            f.event.seq,
            f.event.kind,
            f"{f.event.resource_type} {f.event.id}",
            f.attempts,
            datetime.fromtimestamp(f.failed_at, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            _scrubbed(f.error, f.consumer)[:500],
        ]
        for f in outbox.failed
    ]
    note = (
        None
        if outbox.counts
        else el(
            "p",
            {"class": "note"},
            "No event consumer is configured (add a handler or --webhook): nothing is queued.",
        )
    )
    return page_of(
        "Event outbox",
        root,
        "/outbox",
        note,
        el(
            "p",
            {"class": "note"},
            "Pending events are being delivered, retried with back-off while their consumer "
            "fails; after the last attempt an event is parked as failed, below.",
        ),
        _table("Consumers", ["Consumer", "Pending", "Failed"], consumers, (1, 2)),
        el("h2", None, "Parked as failed"),
        _table(
            "Events parked as failed (latest 50)",
            ["Consumer", "Seq", "Kind", "Resource", "Attempts", "Failed at (UTC)", "Error"],
            failed,
            (1, 4),
        ),
    )


def login_page(root: str, problem: str | None = None) -> bytes:
    """The sign-in form: the operator token, posted once to set the session cookie."""
    return page_of(
        "Sign in",
        root,
        "",
        el("p", {"class": "problem", "role": "alert"}, problem) if problem else None,
        el(
            "form",
            {"method": "post", "action": link(root, "/login")},
            el("p", None, el("label", {"for": "token"}, "Operator token")),
            el(
                "p",
                None,
                el(
                    "input",
                    {
                        "id": "token",
                        "name": "token",
                        "type": "password",
                        "autocomplete": "current-password",
                        "required": True,
                        "size": 40,
                        "autofocus": True,
                    },
                ),
            ),
            el("p", None, el("button", {"type": "submit"}, "Sign in")),
        ),
        signed_in=False,
    )


def error_page(root: str, title: str, problem: str) -> bytes:
    """A page saying what is wrong (a bad filter, no such page)."""
    return page_of(
        title,
        root,
        "",
        el("p", {"class": "problem", "role": "alert"}, problem),
        el("p", None, el("a", {"href": link(root, "/")}, "Back to the overview")),
    )
