"""The version is written once (``scim2_core.__version__``) and the changelog names it."""

from __future__ import annotations

import re
import tomllib

import scim2_core
from tests.docs.markdown_blocks import ROOT


def test_the_version_is_pep_440_and_read_by_pyproject() -> None:
    assert re.fullmatch(
        r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", scim2_core.__version__
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "scim2_core.__version__"


def test_the_changelog_has_a_section_for_this_version() -> None:
    headings = re.findall(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings[0] == "Unreleased"
    assert scim2_core.__version__ in headings


def test_every_extra_the_docs_site_and_release_need_is_declared() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert {"docs", "release"} <= set(extras)
    assert not any("docs" in r or "release" in r for r in extras["all"])
