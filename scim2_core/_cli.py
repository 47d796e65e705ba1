"""``scim2-core serve``: a standalone SCIM server on the embedded default storage.

::

    scim2-core serve                                   # SQLite file ./scim.db, random token
    scim2-core serve --db memory:// --token SECRET     # in memory, fixed token
    scim2-core serve --db postgresql://user@host/db    # PostgreSQL
    python -m scim2_core serve --help

The engine is served as :class:`scim2_core.asgi.ASGIApp` mounted at ``/scim/v2`` (a raw ASGI
dispatch on the path prefix, no framework) over uvicorn. A bearer token is always required:
one is generated with :func:`secrets.token_urlsafe` and printed when ``--token`` is absent.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sqlite3
import sys
from collections.abc import Sequence
from typing import TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._auth import bearer_tokens
from ._engine import Engine
from ._errors import ConfigurationError
from .asgi import ASGIApp, PrefixMount
from .backends import Backend

__all__ = ["build_app", "main", "open_backend"]

MOUNT = "/scim/v2"


def open_backend(db: str, schema: str | None = None) -> Backend:
    """The backend named by ``--db``: ``memory://``, ``sqlite:///path`` or ``postgresql://``;
    ``schema`` (``--db-schema``) is the PostgreSQL schema to keep the tables in."""
    if schema is not None and not db.lower().startswith(("postgresql:", "postgres:")):
        raise ConfigurationError("--db-schema applies to a postgresql:// database only")
    if db.rstrip("/") == "memory:":
        from .backends import MemoryBackend

        return MemoryBackend()
    from .backends import SQLBackend

    return SQLBackend(db, schema=schema)


def build_app(db: str, token: str, *, schema: str | None = None) -> tuple[Engine, PrefixMount]:
    """The engine over ``db`` guarded by ``token``, and the ASGI app serving it."""
    engine = Engine(open_backend(db, schema), authenticate=bearer_tokens([token]))
    return engine, PrefixMount(ASGIApp(engine))


def _redact(url: str) -> str:
    """``url`` with its password (``user:PASSWORD@`` or ``?password=``) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL at all: nothing to find a password in
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    in_query = any(k.lower() == "password" for k, _ in query)
    if password is None and not in_query:
        return url
    if password is not None:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        parts = parts._replace(netloc=f"{user}:***@{hostport}")
    if in_query:
        safe = [(k, "***" if k.lower() == "password" else v) for k, v in query]
        parts = parts._replace(query=urlencode(safe, safe="*"))
    return urlunsplit(parts)


def _secrets_of(url: str) -> list[str]:
    """The password spellings in ``url`` (to scrub from driver error messages)."""
    try:
        parts = urlsplit(url)
        found = [parts.password] if parts.password else []
    except ValueError:
        return []
    found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    return found


def _storage_errors() -> tuple[type[BaseException], ...]:
    """What opening the storage raises for a wrong ``--db``: our own configuration error, the
    drivers' errors (connection refused, unknown database, unwritable file), OS errors."""
    errors: list[type[BaseException]] = [ConfigurationError, OSError, sqlite3.Error]
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        errors.append(psycopg.Error)
    return tuple(errors)


def _one_line(exc: BaseException, url: str) -> str:
    """A driver error as one line with no password in it."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for secret in _secrets_of(url):
        text = text.replace(secret, "***")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scim2-core", description="scim2-core SCIM 2.0 server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help=f"serve SCIM 2.0 at {MOUNT} over HTTP")
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument(
        "--db",
        default="sqlite:///scim.db",
        help="storage: sqlite:///path (default sqlite:///scim.db), postgresql://..., memory://",
    )
    serve.add_argument(
        "--db-schema",
        default=None,
        help="PostgreSQL schema for the tables, created if missing (default: the search_path)",
    )
    serve.add_argument("--token", default=None, help="bearer token (default: generated)")
    serve.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Entry point of ``scim2-core`` and ``python -m scim2_core``; returns the exit status."""
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    try:
        import uvicorn
    except ImportError:
        print("scim2-core serve needs uvicorn: pip install 'scim2-core[serve]'", file=sys.stderr)
        return 2
    token: str = args.token or secrets.token_urlsafe(32)
    try:
        _, app = build_app(args.db, token, schema=args.db_schema)
    except _storage_errors() as exc:
        # A wrong --db (bad URL, unreachable server, unwritable folder, newer schema) is a
        # user's mistake, not a bug: one line naming the storage and the reason, exit 1.
        reason = _one_line(exc, args.db)
        print(f"scim2-core: cannot open storage {_redact(args.db)}: {reason}", file=sys.stderr)
        return 1
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"SCIM 2.0 endpoint: http://{host}:{args.port}{MOUNT}", file=out)
    print(f"Storage:           {_redact(args.db)}", file=out)
    print(f"Bearer token:      {token}", file=out)
    out.flush()
    server = uvicorn.Server(
        uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level)
    )
    # uvicorn stops gracefully on SIGINT (Ctrl-C) and SIGTERM, then re-raises the signal.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0
