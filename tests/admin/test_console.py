"""The operator console over plain dicts: what each page shows, its filters, its
authentication, and that no secret and no markup from a request ever reaches a page."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim2_core import ConfigurationError, Engine, Principal, bearer_tokens
from scim2_core.admin import COOKIE, OperatorConsole
from scim2_core.backends import MemoryBackend
from scim2_core.events import RetryPolicy
from tests.helpers import PATCH_OP, call, user_body

TOKEN = "operator-token-0123456789"
SCIM_TOKEN = "scim-bearer-token-0123456789"
PASSWORD = "Pa55-word-never-shown"
ROOT = "http://testserver/scim/admin"


class _Text(HTMLParser):
    """The visible text of a page (what a reader sees), and whether it parsed."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def text_of(body: bytes) -> str:
    parser = _Text()
    parser.feed(body.decode())
    return " ".join(" ".join(parser.parts).split())


def get(console: OperatorConsole, path: str, token: str | None = TOKEN, **query: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return console.handle(
        {"method": "GET", "path": path, "query": query, "headers": headers, "base_url": ROOT}
    )


@pytest.fixture
def engine() -> Iterator[Engine]:
    tenants = {
        SCIM_TOKEN: Principal("entra"),
        "okta-token-0123456789": Principal("okta", tenant="acme"),
    }
    eng = Engine(MemoryBackend(), authenticate=bearer_tokens(tenants))
    eng.audit.enable()
    yield eng
    eng.audit.stop()
    eng.events.stop()


def scim(engine: Engine, method: str, path: str, body: Any = None, token: str = SCIM_TOKEN) -> Any:
    return call(engine, method, path, body, headers={"Authorization": f"Bearer {token}"})


def provision(engine: Engine) -> dict[str, str]:
    """An Entra-like sequence: a user created, looked up, patched; a duplicate refused;
    a bad PATCH refused; a group created; one request with a wrong token."""
    uid = scim(engine, "POST", "/Users", user_body("bjensen@example.com", password=PASSWORD)).json[
        "id"
    ]
    scim(engine, "GET", "/Users", None)
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Replace", "path": "title", "value": "Boss"}],
    }
    scim(engine, "PATCH", f"/Users/{uid}", patch)
    scim(engine, "POST", "/Users", user_body("BJENSEN@example.com", password=PASSWORD))  # 409
    bad = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "nosuch[", "value": 1}]}
    scim(engine, "PATCH", f"/Users/{uid}", bad)  # 400 invalidPath
    scim(engine, "POST", "/Users", user_body("okta-user"), token="okta-token-0123456789")
    scim(engine, "GET", "/Users", None, token="wrong-token-0123456789")  # 401
    return {"user": uid}


def test_a_short_token_is_refused_at_start_up(engine: Engine) -> None:
    with pytest.raises(ConfigurationError, match="at least 16"):
        OperatorConsole(engine, token="short")


def test_without_credentials_the_page_sends_to_the_sign_in_form(engine: Engine) -> None:
    console = OperatorConsole(engine, token=TOKEN)
    answer = get(console, "/", token=None)
    assert answer["status"] == 303
    assert answer["headers"]["Location"] == "/scim/admin/login"
    form = get(console, "/login", token=None)
    assert form["status"] == 200 and b'type="password"' in form["body"]
    wrong = get(console, "/", token="not-the-operator-token")
    assert wrong["status"] == 401 and "Bearer" in wrong["headers"]["WWW-Authenticate"]
    # The SCIM bearer token does not open the console.
    assert get(console, "/", token=SCIM_TOKEN)["status"] == 401


def test_signing_in_sets_a_strict_httponly_cookie_that_opens_the_pages(engine: Engine) -> None:
    console = OperatorConsole(engine, token=TOKEN)
    post = {"method": "POST", "path": "/login", "base_url": ROOT}
    refused = console.handle({**post, "body": b"token=guess"})
    assert refused["status"] == 401 and "Set-Cookie" not in refused["headers"]
    answer = console.handle({**post, "body": f"token={TOKEN}".encode()})
    assert answer["status"] == 303
    cookie = answer["headers"]["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/scim/admin" in cookie
    assert TOKEN not in cookie
    value = cookie.split(";", 1)[0]
    page = console.handle(
        {"method": "GET", "path": "/", "headers": {"Cookie": value}, "base_url": ROOT}
    )
    assert page["status"] == 200
    forged = value[:-4] + "0000"
    page = console.handle(
        {"method": "GET", "path": "/", "headers": {"Cookie": forged}, "base_url": ROOT}
    )
    assert page["status"] == 303
    https = console.handle(
        {**post, "body": f"token={TOKEN}".encode(), "base_url": "https://h/scim/admin"}
    )
    assert "; Secure" in https["headers"]["Set-Cookie"]


def test_an_expired_session_is_refused(engine: Engine) -> None:
    console = OperatorConsole(engine, token=TOKEN)
    old = console.session_cookie(now=1_000_000)
    page = console.handle(
        {"method": "GET", "path": "/", "headers": {"Cookie": f"{COOKIE}={old}"}, "base_url": ROOT}
    )
    assert page["status"] == 303


def test_the_console_is_read_only(engine: Engine) -> None:
    console = OperatorConsole(engine, token=TOKEN)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        answer = console.handle(
            {
                "method": method,
                "path": "/requests",
                "headers": {"Authorization": f"Bearer {TOKEN}"},
                "base_url": ROOT,
            }
        )
        assert answer["status"] == 405 and answer["headers"]["Allow"] == "GET, HEAD"


def test_every_page_forbids_scripts_and_framing(engine: Engine) -> None:
    console = OperatorConsole(engine, token=TOKEN)
    for path in ("/", "/requests", "/errors", "/history", "/outbox", "/login"):
        answer = get(console, path)
        csp = answer["headers"]["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert "frame-ancestors 'none'" in csp
        assert answer["headers"]["Cache-Control"] == "no-store"
        assert b"<script" not in answer["body"]
        assert b'<html lang="en">' in answer["body"]


def test_the_overview_shows_requests_errors_tenants_and_the_chart(engine: Engine) -> None:
    provision(engine)
    console = OperatorConsole(engine, token=TOKEN)
    answer = get(console, "/")
    assert answer["status"] == 200
    shown = text_of(answer["body"])
    assert "Requests 7" in shown and "Errors 3" in shown
    assert "<svg" in answer["body"].decode() and 'role="img"' in answer["body"].decode()
    # Per tenant: requests, errors, stored Groups, stored Users.
    assert re.search(r"\(default\) 6 3 0 1 acme 1 0 0 1", shown), shown
    assert "uniqueness" in shown and "invalidPath" in shown


def test_errors_are_grouped_with_the_request_and_the_answer(engine: Engine) -> None:
    provision(engine)
    console = OperatorConsole(engine, token=TOKEN)
    shown = text_of(get(console, "/errors")["body"])
    assert "uniqueness: 1 error (409×1)" in shown
    assert "invalidPath: 1 error (400×1)" in shown
    assert "HTTP 401 (no scimType): 1 error (401×1)" in shown
    assert "entra: 2 errors (400×1, 409×1)" in shown
    assert "(anonymous): 1 error (401×1)" in shown
    assert "(no User-Agent): 3 errors" in shown  # grouped by client too
    assert "BJENSEN@example.com" in shown  # the offending request
    assert "One or more of the attribute values are already in use" in shown or "409" in shown


def test_filters_select_requests(engine: Engine) -> None:
    ids = provision(engine)
    console = OperatorConsole(engine, token=TOKEN)
    rows = text_of(get(console, "/requests", status="4xx")["body"])
    assert "3 requests" in rows
    assert "3 requests" in text_of(get(console, "/requests", status="errors")["body"])
    assert "1 requests" in text_of(get(console, "/requests", status="409")["body"])
    assert "1 requests" in text_of(get(console, "/requests", principal="okta")["body"])
    assert "3 requests" in text_of(get(console, "/requests", resource=ids["user"])["body"])
    assert "1 requests" in text_of(get(console, "/requests", tenant="acme")["body"])
    assert "0 requests" in text_of(get(console, "/requests", until="2000-01-01T00:00")["body"])
    assert "7 requests" in text_of(get(console, "/requests", window="all")["body"])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"window": "1y"}, "window"),
        ({"status": "4x"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": "0001-01-01T00:00+14:00"}, "since"),
        ({"until": "9999-12-31T23:59-14:00"}, "until"),
        ({"until": "0001-01-01T00:00"}, "until"),
        ({"principal": "x" * 300}, "principal"),
    ],
)
def test_a_bad_filter_says_what_is_wrong(
    engine: Engine, query: dict[str, str], message: str
) -> None:
    answer = get(OperatorConsole(engine, token=TOKEN), "/requests", **query)
    assert answer["status"] == 400
    assert message in text_of(answer["body"])


def test_a_resource_history_shows_who_changed_what(engine: Engine) -> None:
    ids = provision(engine)
    console = OperatorConsole(engine, token=TOKEN)
    shown = text_of(get(console, "/history", resource=ids["user"])["body"])
    assert "POST by entra → 201" in shown and "PATCH by entra → 200" in shown
    assert "title – Boss" in shown  # set by the PATCH: before nothing, after Boss
    assert "PATCH by entra → 400" in shown and "invalidPath" in shown
    assert "userName – bjensen@example.com" in shown


def test_a_group_change_shows_its_members(engine: Engine) -> None:
    uid = scim(engine, "POST", "/Users", user_body("alice")).json["id"]
    gid = scim(
        engine,
        "POST",
        "/Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "staff",
            "members": [{"value": uid}],
        },
    ).json["id"]
    shown = text_of(get(OperatorConsole(engine, token=TOKEN), "/history", resource=gid)["body"])
    assert f"members + {uid}" in shown


def test_the_outbox_shows_pending_and_failed_events(engine: Engine) -> None:
    def broken(event: Any) -> None:
        raise RuntimeError("the app's session store is down")

    engine.events.add_handler(
        broken, name="revoke-sessions", retry=RetryPolicy(max_attempts=2, first_delay=0.001)
    )
    engine.events.start()
    scim(engine, "POST", "/Users", user_body("alice"))
    assert engine.events.wait_idle(10)
    shown = text_of(get(OperatorConsole(engine, token=TOKEN), "/outbox")["body"])
    assert "revoke-sessions 0 1" in shown
    assert "the app's session store is down" in shown
    assert "created" in shown


def test_the_outbox_page_says_when_nothing_listens(engine: Engine) -> None:
    shown = text_of(get(OperatorConsole(engine, token=TOKEN), "/outbox")["body"])
    assert "No event consumer is configured" in shown


def test_an_engine_without_audit_log_says_so() -> None:
    engine = Engine(MemoryBackend())
    shown = text_of(get(OperatorConsole(engine, token=TOKEN), "/")["body"])
    assert "The audit log is off" in shown


def test_no_secret_and_no_markup_from_a_request_reaches_a_page(engine: Engine) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    uid = scim(engine, "POST", "/Users", user_body(evil, password=PASSWORD, title=evil)).json["id"]
    scim(engine, "POST", "/Users", user_body(evil, password=PASSWORD))  # 409, exchange kept
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "password", "value": PASSWORD}],
    }
    scim(engine, "PATCH", f"/Users/{uid}", patch)
    call(
        engine,
        "GET",
        f"/Users/{uid}",
        headers={"Authorization": f"Bearer {SCIM_TOKEN}", "X-Request-Id": evil[:60]},
    )
    console = OperatorConsole(engine, token=TOKEN)
    pages = [get(console, p, window="all") for p in ("/", "/requests", "/errors", "/outbox")]
    pages.append(get(console, "/history", resource=uid))
    pages.append(get(console, "/history", resource=evil))
    for page in pages:
        body = page["body"].decode()
        assert "<script" not in body and "<img" not in body
        for secret in (PASSWORD, SCIM_TOKEN, TOKEN):
            assert secret not in body
    assert "&lt;script&gt;" in pages[2]["body"].decode()  # shown, escaped


def test_without_a_token_the_host_guards_the_console(engine: Engine) -> None:
    console = OperatorConsole(engine)
    assert get(console, "/", token=None)["status"] == 200
    assert console.handle({"method": "POST", "path": "/login", "base_url": ROOT})["status"] == 303


def test_an_unknown_page_is_404(engine: Engine) -> None:
    assert get(OperatorConsole(engine, token=TOKEN), "/nope")["status"] == 404


def test_a_failing_store_answers_500_without_details(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(**kwargs: Any) -> Any:
        raise OSError("disk on fire at /secret/path")

    monkeypatch.setattr(engine.audit, "query", down)
    answer = get(OperatorConsole(engine, token=TOKEN), "/")
    assert answer["status"] == 500 and b"/secret/path" not in answer["body"]
    assert b'href="/scim/admin/"' in answer["body"]


def test_the_host_application_can_decide_who_may_see_the_console(engine: Engine) -> None:
    def staff_only(request: Any) -> bool:
        user = (request.get("context") or {}).get("user")
        return bool(getattr(user, "is_staff", False))

    console = OperatorConsole(engine, authorize=staff_only)

    class User:
        def __init__(self, is_staff: bool) -> None:
            self.is_staff = is_staff

    def ask(user: Any) -> Any:
        return console.handle(
            {"method": "GET", "path": "/", "base_url": ROOT, "context": {"user": user}}
        )

    assert ask(User(True))["status"] == 200
    assert ask(User(False))["status"] == 403
    assert ask(None)["status"] == 403
    with pytest.raises(ConfigurationError, match="not both"):
        OperatorConsole(engine, token=TOKEN, authorize=staff_only)


def test_signing_out_clears_the_cookie(engine: Engine) -> None:
    console = OperatorConsole(engine, token=TOKEN)
    answer = console.handle({"method": "POST", "path": "/logout", "base_url": ROOT})
    assert answer["status"] == 303 and answer["headers"]["Location"] == "/scim/admin/login"
    assert (
        answer["headers"]["Set-Cookie"].startswith(f"{COOKIE}=;")
        and "Max-Age=0" in answer["headers"]["Set-Cookie"]
    )


def test_a_huge_sign_in_form_is_refused(engine: Engine) -> None:
    console = OperatorConsole(engine, token=TOKEN)
    answer = console.handle(
        {"method": "POST", "path": "/login", "base_url": ROOT, "body": b"token=" + b"x" * 10_000}
    )
    assert answer["status"] == 413 and "Set-Cookie" not in answer["headers"]
    put = console.handle({"method": "PUT", "path": "/login", "base_url": ROOT})
    assert put["status"] == 405


def test_with_authorize_there_is_no_sign_in_form(engine: Engine) -> None:
    console = OperatorConsole(engine, authorize=lambda request: True)
    answer = console.handle({"method": "GET", "path": "/login", "base_url": ROOT})
    assert answer["status"] == 303 and answer["headers"]["Location"] == "/scim/admin/"


def test_since_overrides_the_window_and_a_removal_shows_in_the_history(engine: Engine) -> None:
    uid = scim(engine, "POST", "/Users", user_body("bjensen", title="Boss")).json["id"]
    patch = {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "title"}]}
    assert scim(engine, "PATCH", f"/Users/{uid}", patch).status == 200
    console = OperatorConsole(engine, token=TOKEN)
    assert "2 requests" in text_of(
        get(console, "/requests", window="15m", since="2000-01-01T00:00")["body"]
    )
    assert "0 requests" in text_of(get(console, "/requests", since="2999-01-01T00:00Z")["body"])
    shown = text_of(get(console, "/history", resource=uid)["body"])
    assert "title Boss (removed)" in shown


def test_a_backend_that_cannot_count_shows_unknown(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    scim(engine, "GET", "/Users")

    def cannot(*args: Any) -> Any:
        raise NotImplementedError

    monkeypatch.setattr(engine.backend, "search", cannot)
    shown = text_of(get(OperatorConsole(engine, token=TOKEN), "/")["body"])
    assert re.search(r"\(default\) 1 0 \? \?", shown), shown


def _page_links(body: bytes) -> dict[str, dict[str, str]]:
    """The pager's links of a page: their text -> their query."""
    out = {}
    nav = body.decode().split('class="pager"', 1)[-1].split("</nav>", 1)[0]
    for href, label in re.findall(r'<a href="([^"]*)"[^>]*>([^<]*)</a>', nav):
        query = href.replace("&amp;", "&").split("?", 1)[1] if "?" in href else ""
        out[html.unescape(label)] = dict(parse_qsl(query))
    return out


def _request_ids(body: bytes) -> list[str]:
    """The request ids of a requests table, in the order shown (its last column)."""
    return re.findall(r"<td>([0-9a-f]{32})</td></tr>", body.decode())


def test_the_requests_list_pages_by_position_keeping_the_filters(engine: Engine) -> None:
    sent = []
    for i in range(520):
        answer = scim(engine, "GET", "/Users/nobody" if i % 2 else "/ServiceProviderConfig")
        if i % 2:
            sent.append(answer.headers["X-Request-Id"])
    newest_first = sent[::-1]
    console = OperatorConsole(engine, token=TOKEN)
    first = get(console, "/requests", status="4xx")["body"]
    assert _request_ids(first) == newest_first[:100]
    links = _page_links(first)
    assert set(links) == {"Older →"} and links["Older →"]["status"] == "4xx"
    for _ in range(5):  # new requests do not move the pages already linked
        scim(engine, "GET", "/Users/nobody")
    second = get(console, "/requests", **links["Older →"])["body"]
    assert _request_ids(second) == newest_first[100:200]
    third = get(console, "/requests", **_page_links(second)["Older →"])["body"]
    assert _request_ids(third) == newest_first[200:]
    assert set(_page_links(third)) == {"Newest", "← Newer"}
    back = get(console, "/requests", **_page_links(third)["← Newer"])["body"]
    assert _request_ids(back) == newest_first[100:200]
    newest = get(console, "/requests", **_page_links(third)["Newest"])["body"]
    assert len(_request_ids(newest)) == 100 and _request_ids(newest)[5:] == newest_first[:95]


def test_a_long_history_pages_and_keeps_its_before_values(engine: Engine) -> None:
    uid = scim(engine, "POST", "/Users", user_body("pat")).json["id"]
    for i in range(120):
        op = {"op": "replace", "path": "displayName", "value": f"name-{i}"}
        scim(engine, "PATCH", f"/Users/{uid}", {"schemas": [PATCH_OP], "Operations": [op]})
    console = OperatorConsole(engine, token=TOKEN)
    first = get(console, "/history", resource=uid)["body"]
    shown = text_of(first)
    assert "POST by entra → 201" in shown and "displayName – name-0" in shown
    assert "name-98 name-99" not in shown  # the 100th entry is the PATCH to name-98
    assert set(_page_links(first)) == {"Later →"}
    later = get(console, "/history", **_page_links(first)["Later →"])["body"]
    shown = text_of(later)
    assert "POST by entra" not in shown and later.count(b"<h3>") == 21
    assert "displayName name-98 name-99" in shown  # before: what page one left
    assert "displayName name-118 name-119" in shown
    assert set(_page_links(later)) == {"← Earlier", "Earliest"}
    earlier = get(console, "/history", **_page_links(later)["← Earlier"])["body"]
    assert _page_links(earlier).keys() == {"Later →", "Earliest"}
    assert text_of(earlier).count("PATCH by entra") == 99 and earlier.count(b"<h3>") == 100


def test_a_narrow_filter_reads_a_bounded_slice_and_links_on(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filling a page of a filter applied after reading (a status class) reads at most
    ROW_LIMIT entries; a page that found too few links on from where it stopped."""
    from scim2_core.admin import _data

    monkeypatch.setattr(_data, "ROW_LIMIT", 300)
    monkeypatch.setattr(_data, "_BATCH", 100)
    refused = [scim(engine, "GET", "/Users/nobody").headers["X-Request-Id"] for _ in range(5)]
    for _ in range(700):
        scim(engine, "GET", "/ServiceProviderConfig")
    console = OperatorConsole(engine, token=TOKEN)
    body = get(console, "/requests", status="4xx")["body"]
    empty_pages = 0
    while not _request_ids(body):
        assert "Nothing to show." in text_of(body)
        empty_pages += 1
        body = get(console, "/requests", **_page_links(body)["Older →"])["body"]
    assert 1 <= empty_pages <= 2  # about 300 of the 700 read per page
    assert _request_ids(body) == refused[::-1]
    assert "Older →" not in _page_links(body)


@pytest.mark.parametrize(
    "query",
    [
        {"before": "yesterday~1"},
        {"before": "2026-11-30T09:00:00Z"},
        {"after": "2026-11-30T09:00:00Z~-1"},
        {"before": "2026-11-30T09:00:00Z~1", "after": "2026-11-30T09:00:00Z~2"},
    ],
)
def test_a_bad_position_is_a_clear_400(engine: Engine, query: dict[str, str]) -> None:
    answer = get(OperatorConsole(engine, token=TOKEN), "/requests", **query)
    assert answer["status"] == 400 and "Bad filter" in text_of(answer["body"])


def test_a_webhook_url_secret_is_not_shown(engine: Engine) -> None:
    pytest.importorskip("joserfc")
    secret_url = f"https://user:{PASSWORD}@127.0.0.1:1/services/T0/B0/{PASSWORD}?token={PASSWORD}"
    engine.events.add_webhook(
        secret_url, key="webhook-signing-secret-0123", retry=RetryPolicy(max_attempts=1)
    )
    engine.events.start()
    scim(engine, "POST", "/Users", user_body("alice"))
    assert engine.events.wait_idle(15)
    body = get(OperatorConsole(engine, token=TOKEN), "/outbox")["body"].decode()
    assert PASSWORD not in body
    shown = text_of(body.encode())
    assert "webhook:https://127.0.0.1:1/… 0 1" in shown  # its host, and one event parked


_FILTER_KEYS = st.sampled_from(
    [
        "window",
        "since",
        "until",
        "status",
        "principal",
        "resource",
        "tenant",
        "before",
        "after",
        "other",
    ]
)
_POSITIONS = st.builds(
    lambda at, seq: f"{at.isoformat()}~{seq}",
    st.datetimes(timezones=st.timezones()),
    st.integers(-3, 10**20),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["/", "/requests", "/errors", "/history", "/outbox"]),
    query=st.dictionaries(
        _FILTER_KEYS,
        st.text(max_size=40)
        | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
        | _POSITIONS,
        max_size=4,
    ),
    inject=st.sampled_from([None, "principal", "resource", "tenant", "status", "since", "before"]),
)
def test_any_filter_gets_a_page_or_a_clear_400(
    engine: Engine, path: str, query: dict[str, str], inject: str | None
) -> None:
    if inject is not None:
        query[inject] = "<x-injected>" + query.get(inject, "")[:20]
    answer = get(OperatorConsole(engine, token=TOKEN), path, **query)
    assert answer["status"] in (200, 400)
    body = answer["body"].decode()
    assert "<x-injected>" not in body  # shown escaped, never as markup
    if answer["status"] == 400:
        assert "Bad filter" in body
