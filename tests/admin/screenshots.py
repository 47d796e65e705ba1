"""Regenerate the operator page's screenshots in docs/img/ (embedded in docs/operator.md).

    python -m tests.admin.screenshots [FOLDER]

Runs the browser tests (tests/admin/test_browser.py: a real headless Chromium against
``scim2-core serve``) with ``SCIM2_CORE_SCREENSHOTS`` naming the folder, so the images
are those the tests checked; then lists them. Needs Chromium, chromedriver and selenium.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from .browser import SCREENSHOTS_ENV

VIEWS = ("login", "overview", "errors", "history", "outbox", "phone-overview")


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "docs/img").resolve()
    os.environ[SCREENSHOTS_ENV] = str(folder)
    print(f"Running the browser tests, saving screenshots into {folder} ...", flush=True)
    code = int(
        pytest.main(
            [
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:xdist",
                str(Path(__file__).with_name("test_browser.py")),
            ]
        )
    )
    if code != 0:
        print("The browser tests failed: the screenshots may be incomplete.", file=sys.stderr)
        return code
    missing = [v for v in VIEWS if not (folder / f"{v}.png").exists()]
    for view in VIEWS:
        if view not in missing:
            print(f"  {folder / f'{view}.png'}")
    if missing:
        print(f"Missing: {', '.join(missing)} (were the browser tests skipped?)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
