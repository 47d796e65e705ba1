"""MkDocs hook: the docstrings' Sphinx roles (``:class:`~scim2_core.Engine```) as links.

The docstrings are written for ``help()`` and editors too, in the Sphinx spelling; mkdocstrings
renders the role's name literally. This hook turns each role into a cross-reference that
mkdocs-autorefs resolves (a link to the API reference when the name is documented there,
the name as code otherwise) and, as Sphinx does, shows ``~a.b.C`` as ``C``.
"""

from __future__ import annotations

import html
import re
from typing import Any

_ROLE = re.compile(
    r":(?:class|func|meth|attr|mod|data|exc|obj):<code>"
    r"(?:(?P<title>[^<&]+?)\s*&lt;(?P<target>[\w.]+)&gt;|(?P<short>~?)(?P<name>[\w.]+)(?P<call>\(\))?)"
    r"</code>",
    re.S,
)


def _reference(match: re.Match[str]) -> str:
    if match["target"]:  # :meth:`Engine.directory <scim2_core.Engine.directory>`
        name, shown = match["target"], match["title"]
    else:
        name = match["name"]
        shown = (name.rsplit(".", 1)[-1] if match["short"] else name) + (match["call"] or "")
    return (
        f'<autoref identifier="{html.escape(name)}" optional>'
        f"<code>{html.escape(shown)}</code></autoref>"
    )


def on_page_content(html_text: str, **_: Any) -> str:
    """Replace every rendered role in the page's HTML."""
    return _ROLE.sub(_reference, html_text)
