"""``scim2-core serve``: a standalone SCIM server on the embedded default storage.

::

    scim2-core serve                                   # SQLite file ./scim.db, stored token
    SCIM2_CORE_TOKEN=... scim2-core serve --db memory://     # in memory, fixed token
    scim2-core serve --db postgresql://user@host/db --token-file /run/secrets/scim
    python -m scim2_core serve --help
    scim2-core serve --webhook https://app.example/scim-events --webhook-secret-file key.txt
    scim2-core events --db sqlite:///scim.db          # pending/failed counts per consumer
    scim2-core audit --db sqlite:///scim.db --since 2026-11-30T00:00:00Z   # JSON lines
    SCIM2_CORE_ADMIN_TOKEN=... scim2-core serve       # and the operator page at /scim/admin
    scim2-core serve --log-format json --metrics --rate-limit 50   # docs/observability.md

The engine is served as :class:`scim2_core.asgi.ASGIApp` mounted at ``/scim/v2`` (a raw ASGI
dispatch on the path prefix, no framework) over uvicorn. A bearer token is always required:
``--token``, ``--token-file`` or ``$SCIM2_CORE_TOKEN``; otherwise one is generated with
:func:`secrets.token_urlsafe`, printed once and, on SQLite, kept beside the database file
(mode 0600) so that a restart keeps it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import os
import secrets
import signal
import socket
import sqlite3
import stat
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .._errors import ConfigurationError
from .._options import Options
from ..asgi import ASGIApp, PrefixMount
from ..backends import Backend
from ..engine import Engine, bearer_tokens
from ..observe._serve import add_serve_flags, log_requests_to, observed_app
from . import checked_base_url
from ._import import add_import_command, import_command
from ._uvicorn import fastest_loop, protocol_class

if TYPE_CHECKING:
    from ..backends.sql._dialect import Dialect

__all__ = ["build_app", "main", "open_backend"]

MOUNT = "/scim/v2"
TOKEN_ENV = "SCIM2_CORE_TOKEN"
CURSOR_SECRET_ENV = "SCIM2_CORE_CURSOR_SECRET"
WEBHOOK_SECRET_ENV = "SCIM2_CORE_WEBHOOK_SECRET"
ADMIN_TOKEN_ENV = "SCIM2_CORE_ADMIN_TOKEN"
MIN_TOKEN_LENGTH = 16


def open_backend(db: str, schema: str | None = None) -> Backend:
    """The backend named by ``--db``: ``memory://``, ``sqlite:///path`` or ``postgresql://``;
    ``schema`` (``--db-schema``) is the PostgreSQL schema to keep the tables in."""
    if schema is not None and not db.lower().startswith(("postgresql:", "postgres:")):
        raise ConfigurationError("--db-schema applies to a postgresql:// database only")
    if db.rstrip("/") == "memory:":
        from ..backends import MemoryBackend

        return MemoryBackend()
    from ..backends import SQLBackend

    return SQLBackend(db, schema=schema)


def build_app(
    db: str,
    token: str,
    *,
    schema: str | None = None,
    base_url: str | None = None,
    body_timeout: float | None = 30.0,
    cursor_secret: str | None = None,
) -> tuple[Engine, PrefixMount]:
    """The engine over ``db`` guarded by ``token``, and the ASGI app serving it.

    ``base_url`` pins the public SCIM base URL (``Location``, ``meta.location``) instead of
    the client's ``Host``; ``body_timeout`` bounds how long a request body may take.
    ``cursor_secret`` signs RFC 9865 cursors (see :func:`cursor_key`).
    """
    options = Options(cursor_secret=cursor_key(token, cursor_secret))
    engine = Engine(open_backend(db, schema), authenticate=bearer_tokens([token]), options=options)
    return engine, PrefixMount(ASGIApp(engine, base_url=base_url, body_timeout=body_timeout))


def cursor_key(token: str, secret: str | None) -> bytes:
    """The key that signs cursors: from ``secret`` when given, else from the bearer token.

    RFC 9865 §2: a cursor identifies a page of results "for a given client"; a client
    may send it to any server behind the same address. Every ``serve`` given the same
    secret — or, by default, the same bearer token (the token of one deployment is shared
    by its servers: given, or kept beside the SQLite file) — accepts the cursors of every
    other, whatever process minted them. Derived with HMAC-SHA256, so the key reveals
    neither input.
    """
    source = f"secret:{secret}" if secret is not None else f"token:{token}"
    return hmac.new(source.encode(), b"scim2-core cursor key", hashlib.sha256).digest()


class _UsageError(Exception):
    """A flag, file or variable the command cannot run with (exit status 2)."""


def _checked_token(token: str, source: str) -> str:
    """``token`` when it is fit to guard the server; otherwise :class:`_UsageError`."""
    if len(token) < MIN_TOKEN_LENGTH:
        raise _UsageError(
            f"the token from {source} has {len(token)} characters; use at least "
            f"{MIN_TOKEN_LENGTH} (a short token can be guessed), or omit it to have one generated"
        )
    # RFC 6750 §2.1: the token travels in "Authorization: Bearer <token>".
    if not token.isascii() or not token.isprintable() or " " in token:
        raise _UsageError(
            f"the token from {source} must be printable ASCII without spaces "
            "(it is sent in an Authorization header)"
        )
    return token


def _sqlite_file(db: str) -> Path | None:
    """The database file of a ``sqlite:///path`` URL (``None`` for anything else)."""
    scheme, sep, rest = db.partition("://")
    if not sep or scheme.lower().split("+", 1)[0] != "sqlite":
        return None
    path = unquote((rest[1:] if rest.startswith("/") else rest).split("?", 1)[0])
    return None if path in ("", ":memory:") else Path(path)


def _read_secret_file(path: Path, source: str, *, private: bool) -> str:
    """The stripped text of ``path``. Open to other users: refused when ``private`` (the
    token this command keeps), otherwise a warning (mounted secrets are often 0644)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        if private:
            raise _UsageError(f"{source} is open to other users; run: chmod 600 {path}")
        print(f"scim2-core: warning: {source} is open to other users", file=sys.stderr)
    return text.strip()


def given_token(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """The token given by ``--token``, ``--token-file`` or ``$SCIM2_CORE_TOKEN`` (in that
    order), checked; ``None`` when none was given."""
    if args.token is not None and args.token_file is not None:
        raise _UsageError("give --token or --token-file, not both")
    if args.token is not None:
        return _checked_token(args.token, "--token")
    if args.token_file is not None:
        path = Path(args.token_file)
        source = f"--token-file {path}"
        return _checked_token(_read_secret_file(path, source, private=False), source)
    if environ.get(TOKEN_ENV):
        return _checked_token(environ[TOKEN_ENV], f"${TOKEN_ENV}")
    return None


def kept_or_new_token(db: str) -> tuple[str, str, Path | None]:
    """The token kept beside a SQLite database (``scim.db.token``) or a new one, what to
    print about it, and where to keep it (the new one, on SQLite) once the storage opened."""
    db_file = _sqlite_file(db)
    if db_file is None:
        hint = f"generated, not stored: give it again with ${TOKEN_ENV} or --token-file"
        return secrets.token_urlsafe(32), hint, None
    kept = db_file.with_name(db_file.name + ".token")
    if kept.exists():
        token = _read_secret_file(kept, str(kept), private=True)
        return _checked_token(token, str(kept)), f"kept in {kept}", None
    hint = f"generated, kept in {kept} (mode 0600) for the next start"
    return secrets.token_urlsafe(32), hint, kept


def keep_token(path: Path, token: str) -> str:
    """Keep ``token`` in a new file at ``path`` readable by its owner only, and return it;
    if another ``serve`` on the same database kept one first, return that one instead.

    The file appears complete or not at all (written aside, then hard-linked into place),
    so a process starting at the same time never reads it half-written.
    """
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(token + "\n")
        os.link(aside, path)
    except FileExistsError:
        return _checked_token(_read_secret_file(path, str(path), private=True), str(path))
    except OSError as exc:
        raise _UsageError(f"cannot keep the generated token in {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            aside.unlink()
    return token


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
    serve.add_argument(
        "--token",
        default=None,
        help=f"bearer token, at least {MIN_TOKEN_LENGTH} characters (visible to ps: prefer "
        f"--token-file or ${TOKEN_ENV}); default: generated",
    )
    serve.add_argument(
        "--token-file", default=None, help="read the bearer token from this file (mode 0600)"
    )
    serve.add_argument(
        "--base-url",
        default=None,
        help="public SCIM base URL for Location and meta.location, e.g. "
        f"https://scim.example.com{MOUNT} (default: from the request's Host)",
    )
    serve.add_argument(
        "--limit-concurrency",
        type=int,
        default=100,
        help="most connections and requests at once; beyond it: 503 (default 100)",
    )
    serve.add_argument(
        "--timeout-keep-alive",
        type=int,
        default=5,
        help="seconds an idle keep-alive connection stays open (default 5)",
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds a client has to send a request's head (line and headers); then 408 "
        "and the connection closed (default 10)",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=30.0,
        help="seconds a client has to send a request body; then 408 (default 30)",
    )
    serve.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="log no line per request (the access log never has query strings)",
    )
    serve.add_argument(
        "--cursor-secret",
        default=None,
        help=f"secret that signs RFC 9865 cursors (or ${CURSOR_SECRET_ENV}); servers sharing "
        "it accept each other's cursors (default: derived from the bearer token)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes serving one port from one database (default 1; not with memory://)",
    )
    serve.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    add_serve_flags(serve)
    serve.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="URL",
        help="POST every change to URL as a signed RFC 9967 Security Event Token, after the "
        "commit, retried until delivered (repeatable; needs scim2-core[events])",
    )
    serve.add_argument(
        "--webhook-secret",
        default=None,
        help=f"shared secret signing the webhooks' SETs with HS256 (visible to ps: prefer "
        f"--webhook-secret-file or ${WEBHOOK_SECRET_ENV})",
    )
    serve.add_argument(
        "--webhook-secret-file", default=None, help="read the webhooks' shared secret from a file"
    )
    serve.add_argument(
        "--webhook-key-file",
        default=None,
        help="PEM private key signing the webhooks' SETs (RSA: RS256, EC P-256: ES256)",
    )
    serve.add_argument(
        "--webhook-issuer", default="scim2-core", help="the SETs' iss claim (default scim2-core)"
    )
    serve.add_argument(
        "--no-audit",
        dest="audit",
        action="store_false",
        help="keep no audit log (default: one entry per request, stored with the data)",
    )
    serve.add_argument(
        "--audit-retention-days",
        type=float,
        default=90.0,
        help="days audit entries are kept (default 90)",
    )
    _add_admin_flags(serve)
    audit = commands.add_parser("audit", help="print the audit log as JSON lines, oldest first")
    audit.add_argument("--db", default="sqlite:///scim.db", help="storage, as for serve")
    audit.add_argument("--db-schema", default=None, help="PostgreSQL schema, as for serve")
    audit.add_argument("--since", default=None, help="from this time on (RFC 3339, inclusive)")
    audit.add_argument("--until", default=None, help="before this time (RFC 3339, exclusive)")
    audit.add_argument("--resource-id", default=None, help="only requests on this resource")
    audit.add_argument("--principal", default=None, help="only requests by this principal")
    audit.add_argument("--status", type=int, default=None, help="only answers with this status")
    audit.add_argument(
        "--limit", type=int, default=100_000, help="print at most this many (default 100000)"
    )
    events = commands.add_parser(
        "events", help="print each event consumer's pending and failed counts as JSON lines"
    )
    events.add_argument("--db", default="sqlite:///scim.db", help="storage, as for serve")
    events.add_argument("--db-schema", default=None, help="PostgreSQL schema, as for serve")
    events.add_argument(
        "--failed", action="store_true", help="print the events parked as failed instead"
    )
    add_import_command(commands)
    return parser


def webhook_key(args: argparse.Namespace, environ: Mapping[str, str]) -> Any:
    """The signing key for ``--webhook``: a PEM key file, or a shared secret from
    ``--webhook-secret``, ``--webhook-secret-file`` or ``$SCIM2_CORE_WEBHOOK_SECRET``."""
    given = [
        name
        for name in ("webhook_secret", "webhook_secret_file", "webhook_key_file")
        if getattr(args, name) is not None
    ]
    if len(given) > 1:
        raise _UsageError("give one of --webhook-secret, --webhook-secret-file, --webhook-key-file")
    try:
        from ..events import load_signing_key

        if args.webhook_key_file is not None:
            path = Path(args.webhook_key_file)
            _read_secret_file(path, f"--webhook-key-file {path}", private=False)
            return load_signing_key(pem=path.read_bytes())
        if args.webhook_secret_file is not None:
            path = Path(args.webhook_secret_file)
            secret = _read_secret_file(path, f"--webhook-secret-file {path}", private=False)
        else:
            secret = args.webhook_secret or environ.get(WEBHOOK_SECRET_ENV, "")
        if len(secret) < MIN_TOKEN_LENGTH:
            raise _UsageError(
                f"--webhook needs a secret of at least {MIN_TOKEN_LENGTH} characters "
                f"(--webhook-secret, --webhook-secret-file, ${WEBHOOK_SECRET_ENV}) "
                "or --webhook-key-file"
            )
        return load_signing_key(secret)
    except ImportError:
        raise _UsageError("--webhook needs joserfc: pip install 'scim2-core[events]'") from None
    except ValueError as exc:
        raise _UsageError(f"cannot load the webhook key: {exc}") from None


def _where(args: argparse.Namespace) -> str:
    """``--db`` (its password hidden) and ``--db-schema``, as messages name them."""
    return _redact(args.db) + (f" schema {args.db_schema}" if args.db_schema else "")


def _reader(
    args: argparse.Namespace, tables: Sequence[str], what: str, made_by: str
) -> Dialect | None:
    """A read-only dialect over ``--db`` holding ``tables`` (see ``open_reader``: it
    creates nothing and changes no setting, so it may look at an application's own
    database); None, the reason printed on one line, when it cannot be opened or a table
    is missing."""
    from ..backends.sql._dialect import open_reader
    from ..backends.sql._outbox import missing_tables

    where = _where(args)
    if args.db.rstrip("/") == "memory:":
        print(
            f"scim2-core: memory:// keeps nothing between runs: there is no {what} to read; "
            "give --db the database the server writes to",
            file=sys.stderr,
        )
        return None
    dialect = None
    try:
        if args.db_schema is not None and not args.db.lower().startswith(
            ("postgresql:", "postgres:")
        ):
            raise ConfigurationError("--db-schema applies to a postgresql:// database only")
        dialect = open_reader(args.db, schema=args.db_schema)
        missing = missing_tables(dialect, tables)
    except _storage_errors() as exc:
        if dialect is not None:
            dialect.close()
        reason = _one_line(exc, args.db)
        print(f"scim2-core: cannot open storage {where}: {reason}", file=sys.stderr)
        return None
    if missing:
        dialect.close()
        print(
            f"scim2-core: no {what} in {where}: missing table{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} ({made_by})",
            file=sys.stderr,
        )
        return None
    return dialect


def _unreadable(what: str, args: argparse.Namespace, exc: BaseException) -> str:
    """The one line saying why the tables found could not be read."""
    return (
        f"scim2-core: cannot read the {what} in {_where(args)}: {_one_line(exc, args.db)} "
        "(tables of an older scim2-core are brought up to date when its server next starts)"
    )


def _audit_command(args: argparse.Namespace, out: TextIO) -> int:
    """``scim2-core audit``: the entries asked for, one JSON object a line, read from the
    audit table of any backend's database (SQLBackend's, or the app's own one of
    DjangoModelBackend or SQLAlchemyBackend) without changing it."""
    from ..backends.sql._outbox import AUDIT_TABLES, SQLAuditStore
    from ..engine._audit import _as_stamp
    from ..events import AuditQuery

    try:
        since, until = _as_stamp(args.since), _as_stamp(args.until)
    except ValueError as exc:
        print(f"scim2-core: --since/--until: {exc}", file=sys.stderr)
        return 2
    made_by = "the audit log is created when a server over this database keeps one"
    dialect = _reader(args, AUDIT_TABLES, "audit log", made_by)
    if dialect is None:
        return 1
    query = AuditQuery(
        resource_id=args.resource_id,
        principal=args.principal,
        status=args.status,
        since=since,
        until=until,
        limit=args.limit,
    )
    try:
        entries = SQLAuditStore(dialect).query(query)
    except _storage_errors() as exc:
        print(_unreadable("audit log", args, exc), file=sys.stderr)
        return 1
    finally:
        dialect.close()
    for entry in entries:
        print(entry.to_json(), file=out)
    return 0


def _storage(args: argparse.Namespace) -> tuple[Backend, Engine] | None:
    """The backend ``--db`` names and an engine over it; None, the reason printed, when
    it cannot be opened."""
    try:
        backend = open_backend(args.db, args.db_schema)
        return backend, Engine(backend)
    except _storage_errors() as exc:
        reason = _one_line(exc, args.db)
        print(f"scim2-core: cannot open storage {_redact(args.db)}: {reason}", file=sys.stderr)
        return None


def _import_command(args: argparse.Namespace, out: TextIO) -> int:
    """``scim2-core import`` (:mod:`._import`), on the storage ``--db`` names."""
    opened = _storage(args)
    if opened is None:
        return 1
    backend, engine = opened
    try:
        return import_command(args, out, engine)
    finally:
        close = getattr(backend, "close", None)
        if callable(close):
            close()


def _events_command(args: argparse.Namespace, out: TextIO) -> int:
    """``scim2-core events``: the outbox's consumers and how they stand, as JSON lines,
    read from the outbox tables of any backend's database (SQLBackend's, or the app's own
    one of DjangoModelBackend or SQLAlchemyBackend) without changing it."""
    import json

    from ..backends.sql._outbox import OUTBOX_TABLES, SQLEventStore

    made_by = "the outbox is created when an event consumer is first added over this database"
    dialect = _reader(args, OUTBOX_TABLES, "outbox", made_by)
    if dialect is None:
        return 1
    store = SQLEventStore(dialect)
    try:
        if args.failed:
            lines = [
                {
                    "consumer": item.consumer,
                    "seq": item.event.seq,
                    "eventId": item.event.event_id,
                    "kind": item.event.kind,
                    "resourceType": item.event.resource_type,
                    "id": item.event.id,
                    "attempts": item.attempts,
                    "error": item.error,
                }
                for item in store.failed(None, 1000)
            ]
        else:
            lines = [
                {"consumer": name, "pending": counts.pending, "failed": counts.failed}
                for name, counts in store.counts().items()
            ]
    except _storage_errors() as exc:
        print(_unreadable("outbox", args, exc), file=sys.stderr)
        return 1
    finally:
        dialect.close()
    for line in lines:
        print(json.dumps(line), file=out)
    return 0


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Entry point of ``scim2-core`` and ``python -m scim2_core``; returns the exit status."""
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    if args.command == "events":
        return _events_command(args, out)
    if args.command == "audit":
        return _audit_command(args, out)
    if args.command == "import":
        return _import_command(args, out)
    try:
        import uvicorn
    except ImportError:
        print("scim2-core serve needs uvicorn: pip install 'scim2-core[serve]'", file=sys.stderr)
        return 2
    try:
        _check_serve_args(args)
        token, shown, note, cannot_keep = _serve_token(args)
        key = webhook_key(args, os.environ) if args.webhook else None
        admin = admin_token(args, os.environ, token)
        try:
            # Opening the engine binds the storage: connects, creates or checks the schema.
            engine, app = _open_app(args, token)
        except _storage_errors() as exc:
            # A wrong --db (bad URL, unreachable server, unwritable folder, newer schema) is
            # a user's mistake, not a bug: one line naming the storage and the reason, exit 1.
            reason = _one_line(exc, args.db)
            print(f"scim2-core: cannot open storage {_redact(args.db)}: {reason}", file=sys.stderr)
            return 1
        if cannot_keep is not None:
            raise cannot_keep
        _enable_events(engine, args, key)
        served = _served(engine, app, args, admin)
    except _UsageError as exc:
        print(f"scim2-core: {exc}", file=sys.stderr)
        return 2
    _print_banner(args, shown, note, out)
    if args.access_log:
        log_requests_to(out, args.log_level, args.log_format)
    config = _uvicorn_config(uvicorn, served, args)
    if args.workers == 1:
        return _run_server(uvicorn.Server(config), engine)
    # Each worker opens the storage itself after the fork (no connection, no thread crosses
    # it); this process opened it first only to report a wrong --db or --webhook before
    # anything listens.
    engine.audit.stop()
    close = getattr(engine.backend, "close", None)
    if close is not None:
        close()
    return _run_workers(config.bind_socket(), args, token, key, admin)


def _uvicorn_config(uvicorn: Any, app: Any, args: argparse.Namespace) -> Any:
    """uvicorn's settings for ``serve``: the fastest parser and loop installed."""
    return uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        # uvicorn's own access log prints each query string (filter values): off.
        access_log=False,
        timeout_keep_alive=args.timeout_keep_alive,
        # httptools (else h11) with a head timeout, and SCIM Errors for the requests uvicorn
        # cannot parse and those beyond the concurrency limit (enforced there, not by uvicorn).
        http=protocol_class(args.header_timeout, args.limit_concurrency),
        loop=fastest_loop(),
    )


def _run_server(server: Any, engine: Engine, sockets: list[socket.socket] | None = None) -> int:
    """Run one uvicorn server until SIGINT or SIGTERM; the engine's threads around it."""
    # uvicorn stops gracefully on SIGINT (Ctrl-C) and SIGTERM, then re-raises the signal.
    # Delivery runs on threads of its own, never on uvicorn's event loop.
    engine.events.start()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=sockets)
    finally:
        engine.events.stop()
        engine.audit.stop()
    return 0


def _run_workers(
    sock: socket.socket, args: argparse.Namespace, token: str, key: Any, admin: str | None
) -> int:
    """``--workers N``: N forked processes serving the listening ``sock``, each with its own
    engine on the one database; SIGINT and SIGTERM reach every worker, which stops
    gracefully. When one worker ends, the others are stopped: the command ends with the
    first worker's status, for a supervisor (systemd, a container runtime) to restart.
    """
    children: list[int] = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the worker's own process
            os._exit(_worker(sock, args, token, key, admin))
        children.append(pid)
    sock.close()

    def stop(signum: int, frame: Any) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    first, status = os.wait()
    children.remove(first)
    stop(signal.SIGTERM, None)
    for pid in children:
        os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else 1


def _worker(  # pragma: no cover - runs in the forked worker, which ends with os._exit
    sock: socket.socket, args: argparse.Namespace, token: str, key: Any, admin: str | None
) -> int:
    """One ``--workers`` process: its own engine over the shared database, served on ``sock``
    (with the operator page beside it when ``admin`` is its token)."""
    import uvicorn

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    refusals: tuple[type[BaseException], ...] = (_UsageError, *_storage_errors())
    try:
        engine, app = _open_app(args, token)
        _enable_events(engine, args, key)
        served = _served(engine, app, args, admin)
    except refusals as exc:
        print(f"scim2-core worker {os.getpid()}: {exc}", file=sys.stderr)
        return 1
    config = _uvicorn_config(uvicorn, served, args)
    return _run_server(uvicorn.Server(config), engine, [sock])


def _open_app(args: argparse.Namespace, token: str) -> tuple[Engine, PrefixMount]:
    """:func:`build_app` with the ``serve`` flags (opening the engine binds the storage)."""
    return build_app(
        args.db,
        token,
        schema=args.db_schema,
        base_url=args.base_url,
        body_timeout=args.body_timeout,
        cursor_secret=args.cursor_secret or os.environ.get(CURSOR_SECRET_ENV) or None,
    )


def _check_serve_args(args: argparse.Namespace) -> None:
    """Refuse, before anything is opened, the ``serve`` flags no server can run with."""
    for name in (
        "limit_concurrency",
        "timeout_keep_alive",
        "header_timeout",
        "body_timeout",
        "workers",
    ):
        if getattr(args, name) <= 0:
            raise _UsageError(f"--{name.replace('_', '-')} must be above 0")
    if args.workers > 1 and not hasattr(os, "fork"):
        raise _UsageError("--workers above 1 needs os.fork (Linux, macOS); run one per process")
    if args.workers > 1 and args.db.rstrip("/") == "memory:":
        raise _UsageError(
            "--workers above 1 needs a database the workers share (sqlite:/// or "
            "postgresql://): memory:// lives inside one process"
        )
    if args.base_url is not None:
        try:
            checked_base_url(args.base_url)
        except ConfigurationError as exc:
            raise _UsageError(f"--base-url: {exc}") from None


def _serve_token(args: argparse.Namespace) -> tuple[str, str, str, _UsageError | None]:
    """``(token, shown, note, cannot_keep)``: the given token, else the kept one, else a new
    one kept beside a SQLite database. ``shown`` is what the banner prints: the token only
    when it was generated (a given or kept token is never echoed to logs)."""
    shown, note, cannot_keep = "(given)", "", None
    token = given_token(args, os.environ)
    if token is None:
        token, note, keep_at = kept_or_new_token(args.db)
        if keep_at is not None:
            kept = token
            try:
                kept = keep_token(keep_at, token)
            except _UsageError as exc:  # e.g. no such folder: the storage says it better
                cannot_keep = exc
            if kept != token:  # another serve on this database kept one a moment earlier
                token, note = kept, f"kept in {keep_at}"
        shown = token if note.startswith("generated") else "(kept)"
    return token, shown, note, cannot_keep


def _enable_events(engine: Engine, args: argparse.Namespace, key: Any) -> None:
    """The audit log and the webhooks ``serve`` was asked for."""
    if args.audit:
        days = args.audit_retention_days
        engine.audit.enable(retention=timedelta(days=days) if days > 0 else None)
    for url in args.webhook:
        try:
            engine.events.add_webhook(url, key=key, issuer=args.webhook_issuer)
        except ValueError as exc:
            raise _UsageError(f"--webhook: {exc}") from None


def _observed(engine: Engine, app: Any, args: argparse.Namespace) -> Any:
    """The request log, ``/metrics``, OpenTelemetry and rate limits the flags ask for
    (``scim2_core.observe``, docs/observability.md)."""
    try:
        return observed_app(engine, app, args, os.environ, mount=MOUNT)
    except ConfigurationError as exc:
        raise _UsageError(str(exc)) from None


def _print_banner(args: argparse.Namespace, shown: str, note: str, out: TextIO) -> None:
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"SCIM 2.0 endpoint: http://{host}:{args.port}{MOUNT}", file=out)
    print(f"Storage:           {_redact(args.db)}", file=out)
    print(f"Bearer token:      {shown}", file=out)
    if note:
        print(f"                   ({note})", file=out)
    if args.base_url:
        print(f"Public base URL:   {args.base_url}", file=out)
    if args.workers > 1:
        print(f"Workers:           {args.workers} processes", file=out)
    for url in args.webhook:
        print(f"Webhook:           {url}", file=out)
    if args.admin_token or args.admin_token_file or os.environ.get(ADMIN_TOKEN_ENV):
        print(f"Operator page:     http://{host}:{args.port}/scim/admin", file=out)
        if not args.audit:
            print("                   (--no-audit: the page has no request to show)", file=out)
    out.flush()


# -- the operator page (scim2_core.admin) --------------------------------------------------


def _add_admin_flags(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--admin-token",
        default=None,
        help=f"serve the read-only operator page at /scim/admin, guarded by this token of "
        f"{MIN_TOKEN_LENGTH}+ characters (visible to ps: prefer --admin-token-file or "
        f"${ADMIN_TOKEN_ENV}); default: no operator page",
    )
    serve.add_argument(
        "--admin-token-file", default=None, help="read the operator page's token from this file"
    )


def admin_token(
    args: argparse.Namespace, environ: Mapping[str, str], scim_token: str | None
) -> str | None:
    """The operator page's token from ``--admin-token``, ``--admin-token-file`` or
    ``$SCIM2_CORE_ADMIN_TOKEN``, checked; None (no page) when none is given. It must
    differ from the SCIM bearer token: an IdP's token must not open the page."""
    if args.admin_token is not None and args.admin_token_file is not None:
        raise _UsageError("give --admin-token or --admin-token-file, not both")
    if args.admin_token is not None:
        token = _checked_token(args.admin_token, "--admin-token")
    elif args.admin_token_file is not None:
        path = Path(args.admin_token_file)
        source = f"--admin-token-file {path}"
        token = _checked_token(_read_secret_file(path, source, private=False), source)
    elif environ.get(ADMIN_TOKEN_ENV):
        token = _checked_token(environ[ADMIN_TOKEN_ENV], f"${ADMIN_TOKEN_ENV}")
    else:
        return None
    if scim_token is not None and hmac.compare_digest(token, scim_token):
        raise _UsageError("the operator token must differ from the SCIM bearer token")
    return token


def _served(engine: Engine, app: Any, args: argparse.Namespace, admin: str | None) -> Any:
    """What ``serve`` runs: the SCIM app with what the flags ask for around it (request
    log, ``/metrics``, rate limits; :func:`_observed`) and the operator page beside it."""
    return _with_admin(_observed(engine, app, args), engine, admin)


def _with_admin(app: Any, engine: Engine, token: str | None) -> Any:
    """``app`` with the operator page at /scim/admin beside it, when a token is given."""
    if token is None:
        return app
    from ..admin import ConsoleBesideASGI, OperatorConsole

    return ConsoleBesideASGI(app, OperatorConsole(engine, token=token))
