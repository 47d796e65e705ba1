"""The operator page in a real headless Chromium, against ``scim2-core serve``, after an
Entra-style provisioning run that succeeds and one that fails: what the page shows (rows,
grouped errors, a resource's diff, outbox counts), its filters (no script), keyboard
navigation, a phone's width, contrast, and that no secret is on any page.

Screenshots of the main views are saved by these tests: into docs/img/ with
``python -m tests.admin.screenshots``, else into the test's temporary folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import GROUP, PATCH_OP, USER

from .browser import ADMIN_TOKEN, SCIM_TOKEN, Server, chrome, navigate, screenshot

pytestmark = pytest.mark.slow

PASSWORD = "Entra-initial-Pa55word!"
ENTRA = {"User-Agent": "Azure AD SCIM Provisioning", "Content-Type": "application/scim+json"}


def _entra_succeeds(scim: httpx.Client) -> dict[str, str]:
    """What Entra ID sends for a new user in a group, then a deactivation."""
    assert (
        scim.get("/Users", params={"filter": 'userName eq "alice@contoso.com"'}).status_code == 200
    )
    user = {
        "schemas": [USER],
        "userName": "alice@contoso.com",
        "active": True,
        "displayName": "Alice Smith",
        "password": PASSWORD,
        "emails": [{"type": "work", "value": "alice@contoso.com", "primary": True}],
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "externalId": "alice",
    }
    created = scim.post("/Users", json=user)
    assert created.status_code == 201, created.text
    uid = created.json()["id"]
    found = scim.get(
        "/Groups", params={"filter": 'displayName eq "Sales"', "excludedAttributes": "members"}
    )
    assert found.status_code == 200
    group = scim.post(
        "/Groups", json={"schemas": [GROUP], "displayName": "Sales", "externalId": "sales"}
    )
    assert group.status_code == 201
    gid = group.json()["id"]
    add = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Add", "path": "members", "value": [{"value": uid}]}],
    }
    assert scim.patch(f"/Groups/{gid}", json=add).status_code in (200, 204)
    off = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    assert scim.patch(f"/Users/{uid}", json=off).status_code == 200
    return {"user": uid, "group": gid}


def _entra_fails(scim: httpx.Client, uid: str) -> None:
    """What a misconfigured Entra app sends: a duplicate, a bad path, a bad filter, a
    user that does not exist, and the wrong token."""
    dup = {"schemas": [USER], "userName": "ALICE@contoso.com", "password": PASSWORD}
    assert scim.post("/Users", json=dup).status_code == 409
    bad = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Replace", "path": "emails[type eq ", "value": "x"}],
    }
    assert scim.patch(f"/Users/{uid}", json=bad).status_code == 400
    assert scim.get("/Users", params={"filter": "userName eq"}).status_code == 400
    missing = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Replace", "path": "active", "value": "True"}],
    }
    assert (
        scim.patch("/Users/00000000-0000-0000-0000-000000000000", json=missing).status_code == 404
    )
    wrong = httpx.get(
        str(scim.base_url).rstrip("/") + "/Users",
        headers={**ENTRA, "Authorization": "Bearer not-the-token-0123456789"},
    )
    assert wrong.status_code == 401


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    driver = chrome()  # skips (or fails under CI=true) before anything starts
    workdir = tmp_path_factory.mktemp("operator")
    server = Server(workdir)
    try:
        headers = {**ENTRA, "Authorization": f"Bearer {SCIM_TOKEN}"}
        with httpx.Client(base_url=server.url + "/scim/v2", headers=headers, timeout=30) as scim:
            ids = _entra_succeeds(scim)
            _entra_fails(scim, ids["user"])
        yield {
            "driver": driver,
            "root": server.url + "/scim/admin",
            "ids": ids,
            "shots": workdir / "img",
        }
    finally:
        driver.quit()
        server.stop()
        assert "Traceback" not in server.log(), server.log()


def _open(site: dict[str, Any], path: str) -> Any:
    driver = site["driver"]
    driver.get(site["root"] + path)
    if driver.current_url.endswith("/login"):
        _sign_in(driver)
        driver.get(site["root"] + path)
    return driver


def _sign_in(driver: Any) -> None:
    from selenium.webdriver.common.keys import Keys

    field = driver.switch_to.active_element  # the token field has the focus
    assert field.get_attribute("name") == "token"
    navigate(driver, lambda: field.send_keys(ADMIN_TOKEN + Keys.ENTER))


def _text(driver: Any) -> str:
    return " ".join(driver.find_element("tag name", "body").text.split())


def test_signing_in_lands_on_the_overview(site: dict[str, Any]) -> None:
    driver = site["driver"]
    driver.delete_all_cookies()
    driver.get(site["root"])
    assert driver.current_url.endswith("/scim/admin/login")
    screenshot(driver, "login", site["shots"])
    _sign_in(driver)
    assert driver.title.startswith("Overview")
    cookie = driver.get_cookie("scim2_core_operator")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_the_overview_counts_both_runs(site: dict[str, Any]) -> None:
    driver = _open(site, "/")
    shown = _text(driver)
    # 6 requests succeeded, 5 failed (the 401 included).
    assert "Requests 11" in shown and "Errors 5" in shown, shown
    bars = driver.find_elements("css selector", "svg.chart rect.err")
    assert any(float(b.get_attribute("height")) > 0 for b in bars)
    tenants = driver.find_element(
        "css selector", "[aria-label^='Requests, errors and stored']"
    ).text
    assert re.search(r"\(default\) 11 5 1 1", " ".join(tenants.split())), tenants
    screenshot(driver, "overview", site["shots"])


def test_errors_are_grouped_and_open_with_the_keyboard(site: dict[str, Any]) -> None:
    from selenium.webdriver.common.keys import Keys

    driver = _open(site, "/errors")
    shown = _text(driver)
    for group in (
        "Azure AD SCIM Provisioning: 5 errors",
        "uniqueness: 1 error (409×1)",
        "invalidPath: 1 error (400×1)",
        "invalidFilter: 1 error (400×1)",
        "token-1: 4 errors",
        "(anonymous): 1 error (401×1)",
    ):
        assert group in shown, shown
    summary = next(
        s
        for s in driver.find_elements("css selector", "#by-type-0 summary, details summary")
        if s.text.startswith("uniqueness")
    )
    request = summary.find_element("xpath", "..").find_element("css selector", "pre")
    assert not request.is_displayed()
    summary.send_keys(Keys.ENTER)  # a <summary> opens with the keyboard, no script
    assert request.is_displayed()
    details = summary.find_element("xpath", "..").text
    assert "ALICE@contoso.com" in details and '"scimType": "uniqueness"' in details
    assert "Azure AD SCIM Provisioning" in details
    screenshot(driver, "errors", site["shots"])


def test_a_resource_history_shows_the_diff(site: dict[str, Any]) -> None:
    from selenium.webdriver.common.keys import Keys

    driver = _open(site, "/history")
    field = driver.find_element("name", "resource")
    navigate(driver, lambda: field.send_keys(site["ids"]["user"] + Keys.ENTER))  # a GET form
    assert f"resource={site['ids']['user']}" in driver.current_url
    shown = _text(driver)
    assert "POST by token-1 → 201" in shown
    assert "active true false" in shown  # Entra's "False" deactivated her: before, after
    assert "PATCH by token-1 → 400" in shown and "invalidPath" in shown
    screenshot(driver, "history", site["shots"])
    group = _open(site, f"/history?resource={site['ids']['group']}")
    assert f"members + {site['ids']['user']}" in _text(group)


def test_the_outbox_counts_what_the_dead_webhook_has_not_received(site: dict[str, Any]) -> None:
    driver = _open(site, "/outbox")
    table = driver.find_element("css selector", "[aria-label='Consumers']").text
    match = re.search(r"webhook:\S+ (\d+) (\d+)", " ".join(table.split()))
    assert match, table
    # User created, group created, member added (group + touched user), user patched.
    assert int(match.group(1)) >= 4 and match.group(2) == "0"
    screenshot(driver, "outbox", site["shots"])


def test_filters_work_without_script(site: dict[str, Any]) -> None:
    from selenium.webdriver.common.keys import Keys

    driver = _open(site, "/requests")
    assert driver.execute_script("return document.scripts.length") == 0
    status = driver.find_element("name", "status")
    navigate(driver, lambda: status.send_keys("errors" + Keys.ENTER))
    assert "status=errors" in driver.current_url
    rows = driver.find_elements("css selector", "table tbody tr")
    assert len(rows) == 5
    statuses = [int(r.find_elements("tag name", "td")[4].text) for r in rows]
    assert all(s >= 400 for s in statuses)
    principal = _open(site, "/requests?principal=token-1&status=4xx")
    assert len(principal.find_elements("css selector", "table tbody tr")) == 4


def test_keyboard_reaches_everything_in_order_with_a_visible_focus(site: dict[str, Any]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver = _open(site, "/")  # a fresh page: the focus is on the document
    ActionChains(driver).send_keys(Keys.TAB).perform()
    skip = driver.switch_to.active_element
    assert skip.text == "Skip to content"
    outline = driver.execute_script("return getComputedStyle(arguments[0]).outlineStyle", skip)
    assert outline != "none"
    ActionChains(driver).send_keys(Keys.TAB).perform()
    assert driver.switch_to.active_element.text == "Overview"
    for name in ("Requests", "Errors", "Resource history", "Event outbox"):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        assert driver.switch_to.active_element.text == name
    navigate(driver, ActionChains(driver).send_keys(Keys.ENTER).perform)
    assert driver.title.startswith("Event outbox")


def test_every_field_has_a_label_and_every_table_headers(site: dict[str, Any]) -> None:
    for path in ("/", "/requests", "/errors", "/history", "/outbox"):
        driver = _open(site, path)
        assert driver.find_element("tag name", "html").get_attribute("lang") == "en"
        unlabelled = driver.execute_script(
            "return [...document.querySelectorAll('input,select')]"
            ".filter(e => e.labels.length === 0).map(e => e.name)"
        )
        assert unlabelled == [], (path, unlabelled)
        for table in driver.find_elements("tag name", "table"):
            assert table.find_elements("css selector", "caption")
            assert table.find_elements("css selector", "thead th[scope=col]")


def _luminance(rgb: str) -> float:
    channels = [int(v) / 255 for v in re.findall(r"\d+", rgb)[:3]]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(fg: str, bg: str) -> float:
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def test_text_contrast_meets_wcag_aa(site: dict[str, Any]) -> None:
    driver = _open(site, "/requests?window=all")
    script = (
        "const bg = e => { for (; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor;"
        " if (c !== 'rgba(0, 0, 0, 0)') return c; } return 'rgb(255, 255, 255)'; };"
        "return [...document.querySelectorAll('td span, td a, th, td, label, nav a, h1, h2, caption, .card')]"
        ".map(e => [e.tagName + '.' + e.className, getComputedStyle(e).color, bg(e)]);"
    )
    for name, fg, bg in driver.execute_script(script):
        assert _contrast(fg, bg) >= 4.5, (name, fg, bg)


def test_a_phone_reads_every_page_without_sideways_scrolling(site: dict[str, Any]) -> None:
    driver = site["driver"]
    size = driver.get_window_size()
    driver.set_window_size(390, 844)
    try:
        for path in (
            "/",
            "/requests",
            "/errors",
            f"/history?resource={site['ids']['user']}",
            "/outbox",
        ):
            _open(site, path)
            wide = driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert wide <= 0, (path, wide)
        _open(site, "/")
        screenshot(driver, "phone-overview", site["shots"])
    finally:
        driver.set_window_size(size["width"], size["height"])


def test_no_secret_is_on_any_page(site: dict[str, Any]) -> None:
    for path in (
        "/",
        "/requests?window=all",
        "/errors",
        f"/history?resource={site['ids']['user']}",
        "/outbox",
    ):
        source = _open(site, path).page_source
        for secret in (SCIM_TOKEN, ADMIN_TOKEN, PASSWORD, "webhook-secret-0123456789"):
            assert secret not in source, (path, secret)
        assert "Bearer " not in source
