"""The fenced code blocks of the docs, and how each one is run by ``test_doc_blocks.py``.

Every page under ``docs/`` (found afresh on each run, so a new page is covered the day it
lands) and ``README.md`` is read; every fenced block must say its language:

- ``python``: run. A block whose first line is ``# some/file.py`` is that file: it is written
  (``# some/file.py: add`` appends to it) where the page's shell commands run, for them to use.
  Any other Python block runs in the page's own namespace, in page order, in a fresh
  temporary folder (a ``sqlite:///scim.db`` there is a new database).
- ``sh`` (``bash``, ``shell``; ``console`` runs its ``$ `` lines): run, in page order, as one
  bash script per page in a fresh temporary folder, with ``set -euo pipefail``. A server
  command (``scim2-core serve``, ``uvicorn``, ``gunicorn``, ``flask run``, ``manage.py
  runserver``, ``python examples/x.py``) starts in the background on a free port, and the page's ``127.0.0.1:8000``
  (or ``:5000`` for Flask) becomes that port; ``curl`` fails on an HTTP error status.
  ``pip install`` and ``python3 -m venv`` are checked, not run: every extra named must exist
  in pyproject.toml and every other package must be installed beside the tests.
- ``text`` (output), ``json``, ``jsonc``, ``http``, ``nginx``, ``caddyfile``, ``toml``,
  ``yaml``, ``ini``: shown, not run.

A block that cannot run here (it needs an identity provider's console, a PostgreSQL server
named in the text, a secret file in ``/run``...) is marked on the line above its fence with
``<!-- fragment: the reason -->``; the reason is required.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PYTHON = frozenset({"python", "py"})
SHELL = frozenset({"sh", "bash", "shell", "console"})
SHOWN = frozenset(
    {"text", "json", "jsonc", "http", "nginx", "caddyfile", "toml", "yaml", "ini", "html"}
)

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*fragment:(?P<reason>.*?)-->\s*$")
_FILE_HEADER = re.compile(r"^#\s*(?P<path>[\w./-]+\.(?:py|toml|txt|cfg))(?P<add>:\s*add\b.*)?$")


def pages() -> list[Path]:
    """Every Markdown page whose blocks the tests run: README.md and all of docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@dataclass(frozen=True, kw_only=True)
class Block:
    """One fenced block of a page: where it starts, its language, its text, its marker."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str  # "" when the fence names none
    text: str
    fragment: str | None  # the reason given by <!-- fragment: ... -->, or None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def file_target(self) -> tuple[str, bool] | None:
        """``(path, append)`` when this Python block is a file (first line ``# path``)."""
        first = self.text.split("\n", 1)[0].strip()
        match = _FILE_HEADER.match(first)
        if self.language not in PYTHON or match is None:
            return None
        return match["path"], match["add"] is not None


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, in order (indented ones, in lists, included)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        body = [line.removeprefix(indent) for line in lines[i + 1 : end]]
        above = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = _MARKER.match(above)
        found.append(
            Block(
                page=page,
                line=i + 1,
                language=opening["info"].strip().split(" ")[0].lower(),
                text="\n".join(body) + "\n",
                fragment=marker["reason"].strip() if marker else None,
            )
        )
        i = end + 1
    return found


# --- shell blocks: one bash script per page ---------------------------------------------

_SERVER_KINDS: list[tuple[re.Pattern[str], int]] = [
    (re.compile(r"(^|[\s/;&|])scim2-core\s+serve\b|-m\s+scim2_core\s+serve\b"), 8000),
    (re.compile(r"(^|[\s/;&|])uvicorn\s"), 8000),
    (re.compile(r"(^|[\s/;&|])gunicorn\s"), 8000),
    (re.compile(r"(^|[\s/;&|])flask\s.*\brun\b"), 5000),
    (re.compile(r"\brunserver\b"), 8000),
    (re.compile(r"^\s*python3?\s+examples/\S+\.py\s*$"), 8000),  # examples read $PORT
]
_TRAILING_COMMENT = re.compile(r"\s+#\s.*$")


def _with_port(command: str, kind: int, port: int) -> tuple[str, int]:
    """``command`` listening on ``port`` instead of what it names, and the port it named."""
    if kind == 4:  # manage.py runserver [addr:]port
        match = re.search(r"\brunserver\s+(?:[\w.]+:)?(\d+)\b", command)
        if match:
            return command[: match.start(1)] + str(port) + command[match.end(1) :], int(match[1])
        return command.replace("runserver", f"runserver 127.0.0.1:{port}", 1), 8000
    if kind == 5:
        return f"PORT={port} {command}", 8000
    option = {0: "--port", 1: "--port", 2: "--bind", 3: "--port"}[kind]
    match = re.search(r"(--port|--bind|-b)[ =](?:[\w.]+:)?(\d+)\b", command)
    if match:
        return command[: match.start(2)] + str(port) + command[match.end(2) :], int(match[2])
    value = f"127.0.0.1:{port}" if option == "--bind" else str(port)
    return f"{command} {option} {value}", _SERVER_KINDS[kind][1]


def shell_script(page_blocks: list[Block], ports: list[int]) -> str:
    """The bash script that runs a page's shell blocks and writes its file blocks, in order.

    Server commands become ``docs_serve PORT COMMAND`` (defined by the test's prelude), each
    on the next of ``ports``; the URLs after it name that port.
    """
    out: list[str] = []
    ports = list(ports)
    renames: dict[int, int] = {}
    for block in page_blocks:
        if block.fragment is not None:
            continue
        target = block.file_target
        if target is not None:
            path, append = target
            delimiter = "DOCS_FILE_END"
            out.append(f"# {block.where}")
            out.append(f"mkdir -p \"$(dirname '{path}')\"")
            out.append(f"cat {'>>' if append else '>'} '{path}' <<'{delimiter}'")
            out.append(block.text.rstrip("\n"))
            out.append(delimiter)
            continue
        if block.language not in SHELL:
            continue
        out.append(f"# {block.where}")
        lines = block.text.splitlines()
        if block.language == "console":
            lines = [line[2:] for line in lines if line.startswith("$ ")]
        for line in lines:
            for old, new in renames.items():
                line = re.sub(rf"(127\.0\.0\.1|localhost):{old}\b", f"127.0.0.1:{new}", line)
            command = _TRAILING_COMMENT.sub("", line)
            kind = next(
                (k for k, (pattern, _) in enumerate(_SERVER_KINDS) if pattern.search(command)),
                None,
            )
            if kind is None or command.lstrip().startswith("#"):
                out.append(line)
                continue
            port = ports.pop(0)
            served, named = _with_port(command, kind, port)
            renames[named] = port
            out.append(f"docs_serve {port} {shlex.quote(served)}")
    return "\n".join(out) + "\n"
