"""Paging the requests list in a real headless Chromium against ``scim2-core serve``: the
"older"/"newer" links are plain links reached with the keyboard, keep the filters, and
stay put while new requests arrive (they are keyed by a position, not an offset)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .browser import ADMIN_TOKEN, SCIM_TOKEN, Server, chrome, navigate

MISSING = "/Users/00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def paged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    driver = chrome()  # skips (or fails under CI=true) before anything starts
    server = Server(tmp_path_factory.mktemp("paging"))
    try:
        headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
        missing: list[str] = []
        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as scim:
            for i in range(230):
                answer = scim.get(MISSING if i % 2 else "/ServiceProviderConfig")
                if i % 2:
                    assert answer.status_code == 404
                    missing.append(answer.headers["X-Request-Id"])
            yield {
                "driver": driver,
                "root": server.url + "/scim/admin",
                "scim": scim,
                "missing": missing[::-1],
            }
    finally:
        driver.quit()
        server.stop()
        assert "Traceback" not in server.log(), server.log()


def _ids(driver: Any) -> list[str]:
    """The request ids of the table, in the order shown (its last column), read in one
    round trip to the browser rather than two per row."""
    ids: list[str] = driver.execute_script(
        "return Array.from(document.querySelectorAll('table tbody tr'),"
        " row => row.lastElementChild.innerText.trim())"
    )
    return ids


def _tab_to(driver: Any, label: str) -> Any:
    """Press Tab until the focus is on the link reading ``label``: that it is reachable
    with the keyboard, in the tab order."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    for _ in range(60):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        focused = driver.switch_to.active_element
        if focused.text == label:
            return focused
    raise AssertionError(f"the keyboard never reached {label!r}")


def test_the_requests_list_pages_with_the_keyboard(paged: dict[str, Any]) -> None:
    from selenium.webdriver.common.keys import Keys

    driver, newest_first = paged["driver"], paged["missing"]
    driver.get(paged["root"] + "/login")
    field = driver.switch_to.active_element
    navigate(driver, lambda: field.send_keys(ADMIN_TOKEN + Keys.ENTER))
    driver.get(paged["root"] + "/requests?status=4xx")
    assert _ids(driver) == newest_first[:100]
    for _ in range(3):  # arriving meanwhile: they do not shift the next page
        paged["scim"].get(MISSING)
    older = _tab_to(driver, "Older →")
    navigate(driver, lambda: older.send_keys(Keys.ENTER))
    assert "before=" in driver.current_url and "status=4xx" in driver.current_url
    assert driver.find_element("name", "status").get_attribute("value") == "4xx"
    assert _ids(driver) == newest_first[100:]
    assert driver.find_elements("link text", "Older →") == []
    newer = _tab_to(driver, "← Newer")
    navigate(driver, lambda: newer.send_keys(Keys.ENTER))
    assert "after=" in driver.current_url
    assert _ids(driver) == newest_first[:100]  # the page it came from, not the newest
    newest = _tab_to(driver, "Newest")
    navigate(driver, lambda: newest.send_keys(Keys.ENTER))
    assert driver.current_url.endswith("/requests?window=24h&status=4xx")
    assert len(_ids(driver)) == 100 and _ids(driver)[3:] == newest_first[:97]
