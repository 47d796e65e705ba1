"""Every code block of README.md and docs/ runs as printed, or says why it cannot.

How a block is run, and how to mark one that cannot run, is in ``markdown_blocks.py`` (and in
CONTRIBUTING.md, "Code blocks in the docs").
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import tomllib
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.docs.markdown_blocks import (
    PYTHON,
    ROOT,
    SHELL,
    SHOWN,
    Block,
    blocks,
    pages,
    shell_script,
)
from tests.helpers import SERVER_DEADLINE

PAGES = pages()
IDS = [str(page.relative_to(ROOT)) for page in PAGES]


def _pages_with(wanted: Callable[[Block], bool]) -> object:
    """Parametrize a test over the pages that have at least one block ``wanted``."""
    chosen = [page for page in PAGES if any(map(wanted, blocks(page)))]
    return pytest.mark.parametrize(
        "page", chosen, ids=[str(page.relative_to(ROOT)) for page in chosen]
    )


def _runs_in_python(block: Block) -> bool:
    return block.language in PYTHON and block.fragment is None and block.file_target is None


def _is_file(block: Block) -> bool:
    return block.file_target is not None and block.fragment is None


def _runs_in_shell(block: Block) -> bool:
    return block.language in SHELL and block.fragment is None


EXTRAS = frozenset(
    tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
)
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_block_says_what_it_is(page: Path) -> None:
    unknown = [
        f"{block.where}: ```{block.language}"
        for block in blocks(page)
        if block.language not in PYTHON | SHELL | SHOWN
    ]
    assert not unknown, (
        "name the language of each block: python or sh (run by the tests), or text/json/... "
        f"(shown): {unknown}"
    )
    assert all(block.fragment != "" for block in blocks(page)), "a fragment needs its reason"


def test_pages_are_found() -> None:
    names = {page.name for page in PAGES}
    assert {"README.md", "python-api.md", "walkthrough.md"} <= names


# --- Python ------------------------------------------------------------------------------


def _close_engines(namespace: dict[str, Any]) -> None:
    """Close what the page opened (SQLite files), so no ResourceWarning escapes later."""
    for value in namespace.values():
        close = getattr(getattr(value, "backend", None), "close", None)
        if callable(close):
            close()
    gc.collect()


@_pages_with(_runs_in_python)
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runnable = [block for block in blocks(page) if _runs_in_python(block)]
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("SCIM2_CORE_")]:
        monkeypatch.delenv(name)
    module = types.ModuleType(f"docs_{page.stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # for dataclasses and pickling
    namespace = module.__dict__
    logging_as_it_was = _logging_state()
    try:
        for block in runnable:
            code = compile(block.text, block.where, "exec")
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    exec(code, namespace)
                except Exception as exc:
                    raise AssertionError(f"{block.where} fails: {exc!r}") from exc
    finally:
        _close_engines(namespace)
        _restore_logging(logging_as_it_was)


_LoggingState = list[tuple[logging.Logger, list[logging.Handler], bool, int, bool]]


def _logging_state() -> _LoggingState:
    """Each logger's handlers, propagation, level and disabled flag: a page may configure
    logging as an app would (docs/observability.md installs serve's request log handler),
    which must not reach the tests that run after it in this process."""
    loggers = [logging.getLogger()] + [
        x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger)
    ]
    return [(x, list(x.handlers), x.propagate, x.level, x.disabled) for x in loggers]


def _restore_logging(state: _LoggingState) -> None:
    for logger, handlers, propagate, level, disabled in state:
        logger.handlers = handlers
        logger.propagate = propagate
        logger.setLevel(level)
        logger.disabled = disabled


@_pages_with(_is_file)
def test_file_blocks_compile(page: Path) -> None:
    for block in filter(_is_file, blocks(page)):
        compile(block.text, block.where, "exec")


# --- shell -------------------------------------------------------------------------------

PIP_STUB = """\
#!{python}
# The docs' `pip install`, checked rather than run: the packages are installed beside the
# tests already; what matters is that every name the docs give exists.
import importlib.metadata, re, sys
EXTRAS = {extras!r}
args = sys.argv[1:]
if args[:1] != ["install"]:
    sys.exit(f"docs harness: only `pip install` is understood, not {{args}}")
for arg in args[1:]:
    if arg.startswith("-"):
        continue
    match = re.fullmatch(r"(\\.|scim2-core|scim2_core)(?:\\[([\\w,-]*)\\])?(?:[=<>!~].*)?", arg)
    if match:
        missing = sorted(set(filter(None, (match[2] or "").split(","))) - EXTRAS)
        if missing:
            sys.exit(f"docs harness: pyproject.toml has no extra {{missing}} ({{arg}})")
        continue
    name = re.split(r"[\\[=<>!~;]", arg, maxsplit=1)[0]
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        sys.exit(f"docs harness: {{name}} is not installed beside the tests")
"""

PYTHON_STUB = """\
#!/usr/bin/env bash
# `python3 -m venv DIR` makes a stand-in venv: its pip is the checking stub, the rest is the
# tests' own interpreter and commands.
if [ "${{1:-}}" = "-m" ] && [ "${{2:-}}" = "venv" ]; then
    mkdir -p "$3/bin"
    for tool in {bin}/*; do ln -sf "$tool" "$3/bin/"; done
    ln -sf {stubs}/pip "$3/bin/pip"
    exit 0
fi
exec {python} "$@"
"""

PRELUDE = """\
set -euo pipefail
docs_serve() {{ # docs_serve PORT COMMAND: run a server in the background until its port answers
    local port=$1 log="{logs}/server-$1.log" i
    set -m
    ( eval "$2" ) >"$log" 2>&1 &
    echo $! >>"{logs}/pids"
    set +m
    for i in $(seq {tries}); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        if ! kill -0 $! 2>/dev/null; then
            echo "docs harness: the server exited:" >&2; cat "$log" >&2; return 1
        fi
        sleep 0.1
    done
    echo "docs harness: nothing answered on port $port within {deadline} s:" >&2; cat "$log" >&2
    return 1
}}
curl() {{ command curl --silent --show-error --fail-with-body --max-time 30 "$@"; echo; }}
"""


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _stop_servers(pids_file: Path) -> None:
    if not pids_file.exists():
        return
    for pid in map(int, pids_file.read_text().split()):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    for pid in map(int, pids_file.read_text().split()):
        for _ in range(50):
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def _stubs(folder: Path) -> Path:
    stubs = folder / "stubs"
    stubs.mkdir()
    python = sys.executable
    (stubs / "pip").write_text(PIP_STUB.format(python=python, extras=set(EXTRAS)))
    for name in ("python", "python3"):
        (stubs / name).write_text(PYTHON_STUB.format(bin=BIN, stubs=stubs, python=python))
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    (stubs / "pip3").symlink_to(stubs / "pip")
    return stubs


@pytest.mark.slow
@_pages_with(_runs_in_shell)
def test_shell_blocks_run(page: Path, tmp_path: Path) -> None:
    page_blocks = blocks(page)
    work, harness = tmp_path / "work", tmp_path / "harness"
    work.mkdir()
    harness.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")  # `python examples/...` from a checkout
    # A server that exits is seen at once; the deadlines only guard against a hang.
    prelude = PRELUDE.format(
        logs=harness, tries=int(SERVER_DEADLINE * 10), deadline=int(SERVER_DEADLINE)
    )
    script = prelude + shell_script(page_blocks, _free_ports(8))
    (harness / "script.sh").write_text(script)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SCIM2_CORE_", "PYTEST_", "COV_CORE_"))
    }
    env |= {
        "PATH": f"{_stubs(harness)}:{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(work),
    }
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), str(ROOT / "adapters"), env.get("PYTHONPATH")])
    )
    try:
        done = subprocess.run(
            ["bash", str(harness / "script.sh")],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=3 * SERVER_DEADLINE,
            check=False,
        )
    finally:
        _stop_servers(harness / "pids")
    numbered = "\n".join(f"{n:4} {line}" for n, line in enumerate(script.splitlines(), 1))
    assert done.returncode == 0, (
        f"the shell blocks of {page.name} failed (exit {done.returncode})\n--- stderr\n"
        f"{done.stderr[-4000:]}\n--- stdout\n{done.stdout[-4000:]}\n--- script\n{numbered}"
    )


# --- install lines -----------------------------------------------------------------------

_INSTALL = re.compile(r"pip install\s+(?P<args>[^\n`#]*)")


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_install_lines_name_real_extras(page: Path) -> None:
    """Every ``pip install`` a page mentions (also in prose and comments) names real extras."""
    wrong = []
    for match in _INSTALL.finditer(page.read_text(encoding="utf-8")):
        for extras in re.findall(r"(?:\.|scim2-core)\[([\w,-]+)\]", match["args"]):
            wrong += [
                f"{extra} in {match[0]!r}" for extra in extras.split(",") if extra not in EXTRAS
            ]
    assert not wrong, f"no such extra in pyproject.toml: {wrong}"


def test_published_install_lines_stand_beside_a_checkout_line() -> None:
    """Until a release is published, each `pip install 'scim2-core...'` has a checkout line."""
    for page in PAGES:
        for block in blocks(page):
            published = re.findall(r"^\s*pip install '?scim2-core", block.text, re.M)
            if published and block.fragment is None:
                pytest.fail(
                    textwrap.dedent(f"""\
                    {block.where}: `pip install scim2-core...` cannot work before the first
                    release; run `pip install -e '.[...]'` (from a checkout) and keep the
                    published line as a comment beside it""")
                )
