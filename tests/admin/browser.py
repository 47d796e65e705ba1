"""A real headless Chromium driven by Selenium, and ``scim2-core serve`` with the operator
page, for the browser tests of the console.

Chromium comes from the system (Debian: ``apt-get install -y chromium chromium-driver``),
never downloaded. Without it (or without ``selenium``) the browser tests skip and say
why, except under ``CI=true``, where they fail: CI never passes without having run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.compliance.served import Served, free_port

SCIM_TOKEN = "browser-scim-token-0123456789"
ADMIN_TOKEN = "browser-admin-token-0123456789"
#: Where the tests keep their screenshots: the folder named by this variable (the docs'
#: images: ``python -m tests.admin.screenshots``), else the test's temporary folder.
SCREENSHOTS_ENV = "SCIM2_CORE_SCREENSHOTS"
_BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(
            f"{reason}, and CI=true: install it (apt-get install -y chromium chromium-driver)"
        )
    pytest.skip(reason)


def chrome(width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium through chromedriver, both found on ``PATH``."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install selenium)")
    browser = next((p for p in map(shutil.which, _BROWSERS) if p), None)
    driver_path = shutil.which("chromedriver")
    if browser is None or driver_path is None:
        _missing("Chromium or chromedriver is not on PATH")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--lang=en-US",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(driver_path))


def screenshot(driver: Any, name: str, fallback: Path) -> Path:
    """Save the whole page as ``name``.png (in ``$SCIM2_CORE_SCREENSHOTS`` if set)."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or fallback)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    width = driver.execute_script("return document.documentElement.scrollWidth")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    size = driver.get_window_size()
    driver.set_window_size(max(size["width"], width), min(max(height + 120, 400), 4000))
    driver.save_screenshot(str(path))
    driver.set_window_size(size["width"], size["height"])
    return path


class Server(Served):
    """``scim2-core serve`` on a free port with the operator page and a webhook to a
    receiver that is down (so the outbox has pending events); tokens from the environment,
    as an operator would give them."""

    def __init__(self, workdir: Path) -> None:
        self.db = f"sqlite:///{workdir / 'scim.db'}"
        self.workdir = workdir
        self.log_path = workdir / "serve.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base = self.url + "/scim/v2"
        dead = f"http://127.0.0.1:{free_port()}/events"
        command = [sys.executable, "-m", "scim2_core", "serve", "--port", str(self.port)]
        command += ["--db", self.db, "--log-level", "warning", "--webhook", dead]
        command += ["--webhook-secret", "webhook-secret-0123456789"]
        env = {**os.environ, "SCIM2_CORE_TOKEN": SCIM_TOKEN, "SCIM2_CORE_ADMIN_TOKEN": ADMIN_TOKEN}
        self._log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, cwd=workdir, env=env
        )
        self.wait_ready()


def navigate(driver: Any, action: Callable[[], object]) -> None:
    """Run ``action`` (Enter on a form field or a link) and wait until the browser has loaded
    the next page: a key press returns before the navigation it starts has loaded it.

    The old page is recognised by a mark left on its ``window``, not by an element handle:
    asking Chromium about an element of a page that is being replaced can fail with an
    "unknown error" (the node no longer belongs to the document) instead of the stale-element
    error Selenium's ``staleness_of`` expects. While the navigation is under way every such
    error only means "not yet"."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    driver.execute_script("window.__scim2_core_old_page = true")
    action()

    def loaded(driver: Any) -> bool:
        return bool(
            driver.execute_script(
                "return window.__scim2_core_old_page === undefined"
                " && document.readyState === 'complete'"
            )
        )

    WebDriverWait(driver, 60, ignored_exceptions=(WebDriverException,)).until(loaded)
