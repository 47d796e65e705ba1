"""The page shell every view shares: the document, its stylesheet, the navigation and
the filter form. Plain HTML and CSS: no script, no web font, nothing fetched from
elsewhere; readable from a phone's width up (CSS media queries), with a skip link,
visible keyboard focus, labelled fields and contrast above WCAG AA.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from urllib.parse import urlencode

from ._data import WINDOWS, Filters
from ._html import Safe, el, fragment

__all__ = ["CSP", "SECTIONS", "filter_form", "link", "page"]

_CSS = """
:root{--fg:#1b1f24;--muted:#4a5560;--bg:#fff;--panel:#f4f6f8;--line:#c9d1d9;
--accent:#0b57d0;--err:#b3261e;--ok:#1e6b2f;--warn:#8a5300}
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,
summary:focus-visible,[tabindex]:focus-visible{outline:3px solid #f0b400;outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5rem}
.skip:focus{left:.5rem;z-index:2}
header{background:#14202e;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;
align-items:center;gap:.5rem 1.5rem}
header h1{font-size:1.1rem;margin:0}
header a{color:#fff}
nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:.25rem 1rem;margin:0;padding:0}
nav a[aria-current=page]{font-weight:700;text-decoration-thickness:3px}
main{padding:1rem;max-width:80rem;margin:0 auto}
h2{font-size:1.25rem;margin:1.5rem 0 .5rem}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end;
background:var(--panel);padding:.75rem;border:1px solid var(--line);border-radius:6px}
form.filters label{display:flex;flex-direction:column;font-size:.9rem;color:var(--muted)}
input,select,button{font:inherit;padding:.35rem .5rem;border:1px solid #6b7682;
border-radius:4px;background:#fff;color:var(--fg)}
button{background:var(--accent);color:#fff;border-color:var(--accent);cursor:pointer}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:.75rem}
.card{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:.6rem}
.card b{display:block;font-size:1.5rem}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:.92rem}
caption{text-align:left;font-weight:600;padding:.4rem .5rem}
th,td{padding:.35rem .5rem;border-top:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--panel)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.s-err{color:var(--err);font-weight:600}.s-ok{color:var(--ok)}.s-warn{color:var(--warn)}
pre{white-space:pre-wrap;word-break:break-word;background:var(--panel);padding:.5rem;
border:1px solid var(--line);border-radius:4px;font-size:.85rem;margin:.25rem 0}
details{border:1px solid var(--line);border-radius:6px;margin:.5rem 0;padding:.25rem .6rem}
summary{cursor:pointer;font-weight:600;padding:.25rem 0}
dl.meta{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.1rem .75rem;
margin:.25rem 0}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;overflow-wrap:anywhere}
h3,summary{overflow-wrap:anywhere}
.note{color:var(--muted)}
.problem{border-left:4px solid var(--err);padding:.5rem .75rem;background:#fdf0ef}
.chart{width:100%;height:auto;max-height:16rem}
.chart .req{fill:#7aa7e6}.chart .err{fill:var(--err)}
.chart .grid{stroke:var(--line)}.chart .axis{fill:var(--muted);font-size:11px}
nav.pager ul{margin:.75rem 0}
nav.pager a{display:inline-block;padding:.35rem .7rem;border:1px solid var(--line);
border-radius:4px;background:var(--panel)}
ins{background:#e3f4e6;text-decoration:none}del{background:#fbe3e1}
@media (max-width:40rem){
 body{font-size:15px}main{padding:.6rem}
 header{padding:.5rem .6rem}
 form.filters label{flex:1 1 45%}
 .hide-narrow{display:none}
}
"""

#: The Content-Security-Policy of every page: nothing but this stylesheet (by its hash)
#: and same-origin form posts; no script at all, no frames.
CSP = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()}'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

#: The sections of the console: (path under the mount, title).
SECTIONS = (
    ("/", "Overview"),
    ("/requests", "Requests"),
    ("/errors", "Errors"),
    ("/history", "Resource history"),
    ("/outbox", "Event outbox"),
)


def link(root: str, path: str, query: Mapping[str, str] | None = None) -> str:
    """The URL of ``path`` under the console's mount, with ``query``."""
    target = root.rstrip("/") + (path if path != "/" else "/")
    return f"{target}?{urlencode(dict(query))}" if query else target


def page(title: str, root: str, current: str, *content: object, signed_in: bool = True) -> bytes:
    """A whole HTML document: the header and navigation, then ``content``."""
    nav = el(
        "nav",
        {"aria-label": "Sections"},
        el(
            "ul",
            None,
            [
                el(
                    "li",
                    None,
                    el(
                        "a",
                        {
                            "href": link(root, path),
                            "aria-current": "page" if path == current else None,
                        },
                        name,
                    ),
                )
                for path, name in SECTIONS
            ],
        ),
    )
    logout = el(
        "form",
        {"method": "post", "action": link(root, "/logout")},
        el("button", {"type": "submit"}, "Sign out"),
    )
    doc = fragment(
        Safe("<!DOCTYPE html>"),
        el(
            "html",
            {"lang": "en"},
            el(
                "head",
                None,
                el("meta", {"charset": "utf-8"}),
                el("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
                el("meta", {"name": "referrer", "content": "no-referrer"}),
                el("title", None, f"{title} · scim2-core operator"),
                el("style", None, Safe(_CSS)),
            ),
            el(
                "body",
                None,
                el("a", {"class": "skip", "href": "#main"}, "Skip to content"),
                el(
                    "header",
                    None,
                    el("h1", None, "scim2-core operator"),
                    nav if signed_in else None,
                    logout if signed_in else None,
                ),
                el("main", {"id": "main", "tabindex": "-1"}, el("h2", None, title), *content),
            ),
        ),
    )
    return doc.encode("utf-8")


def _field(label: str, control: Safe) -> Safe:
    return el("label", None, label, control)


def filter_form(root: str, path: str, filters: Filters, *, resource_only: bool = False) -> Safe:
    """The filter form (a plain GET: works with no script), filled with ``filters``."""
    q = filters.as_query()
    resource = _field(
        "Resource id",
        el(
            "input",
            {"name": "resource", "value": q.get("resource", ""), "size": 20, "autocomplete": "off"},
        ),
    )
    submit = el("button", {"type": "submit"}, "Apply")
    if resource_only:
        return el(
            "form",
            {"class": "filters", "method": "get", "action": link(root, path)},
            resource,
            submit,
        )
    window = _field(
        "Time window",
        el(
            "select",
            {"name": "window"},
            [
                el(
                    "option",
                    {"value": w, "selected": w == filters.window},
                    "everything kept" if w == "all" else f"last {w}",
                )
                for w in WINDOWS
            ],
        ),
    )
    fields = [
        window,
        _field(
            "From (UTC)",
            el("input", {"type": "datetime-local", "name": "since", "value": q.get("since", "")}),
        ),
        _field(
            "Until (UTC)",
            el("input", {"type": "datetime-local", "name": "until", "value": q.get("until", "")}),
        ),
        _field(
            "Status (409, 4xx, errors)",
            el(
                "input",
                {
                    "name": "status",
                    "size": 7,
                    "value": q.get("status", ""),
                    "list": "statuses",
                    "autocomplete": "off",
                },
            ),
        ),
        el(
            "datalist",
            {"id": "statuses"},
            [el("option", {"value": v}) for v in ("errors", "2xx", "4xx", "5xx", "401", "409")],
        ),
        _field(
            "Principal (IdP)",
            el(
                "input",
                {
                    "name": "principal",
                    "size": 14,
                    "value": q.get("principal", ""),
                    "autocomplete": "off",
                },
            ),
        ),
        resource,
        _field(
            "Tenant",
            el(
                "input",
                {"name": "tenant", "size": 10, "value": q.get("tenant", ""), "autocomplete": "off"},
            ),
        ),
        submit,
    ]
    return el(
        "form",
        {"class": "filters", "method": "get", "action": link(root, path), "aria-label": "Filters"},
        *fields,
    )
