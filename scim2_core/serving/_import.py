"""``scim2-core import``: load a directory into the storage ``serve`` uses.

The input is JSON lines (one SCIM resource a line; its resource type from its core schema
URN, or ``--type``) or an RFC 7644 §3.7 Bulk request file (its ``POST`` operations; a
``"bulkId:..."`` value names the resource an earlier operation created, §3.7.2). Every
resource goes through the checks of a create through the API (schemas, attribute values,
mutability, members that exist: :func:`scim2_core.engine._write.new_resource`), gets its
``id`` and ``meta`` as a POST would, and is stored with the same uniqueness.

Resources are stored in batches, one transaction each: the batch's ids and unique values
looked up with one statement each, then the rows written straight into their tables, with
COPY on PostgreSQL, one prepared INSERT per table on SQLite (:meth:`SQLBackend.load_new`);
a group with members is created on its own, after the batch
before it, so that its members are checked as the API checks them. A line that cannot be
stored is not lost: it goes to the rejects file, one JSON object a line with its line
number, its SCIM Error (RFC 7644 §3.12) and the input as given. No change events are
written for imported resources.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .._errors import InvalidSyntaxError, InvalidValueError, ScimError
from .._urns import BULK_REQUEST_URN
from ..engine import Engine
from ..engine._request import _SURROGATE_ESCAPE, Ctx
from ..engine._write import new_resource
from ..schema import ResourceType

__all__ = ["ImportReport", "Importer", "add_import_command", "import_command", "records"]


@dataclass(frozen=True, slots=True)
class Record:
    """One resource to import: where it was (line or operation number), the endpoint it
    was sent to (a Bulk operation's ``path``; None: from its schemas), its ``bulkId``, and
    the JSON as given (or the error that made it unreadable)."""

    number: int
    endpoint: str | None
    bulk_id: str | None
    body: Any
    error: ScimError | None = None


@dataclass(slots=True)
class ImportReport:
    """What an import did: resources stored and refused, and how long it took."""

    stored: int = 0
    rejected: int = 0
    seconds: float = 0.0


def records(path: Path) -> Iterator[Record]:
    """The resources of a JSON lines file or of a Bulk request file, in order."""
    with path.open("rb") as f:
        first = f.readline()
        try:
            head = json.loads(first) if first.strip() else None
        except (ValueError, RecursionError):
            head = None
        if head is not None and not _is_bulk(head):
            f.seek(0)
            yield from _json_lines(f)
            return
        f.seek(0)
        raw = f.read()
        try:
            whole = json.loads(raw.decode("utf-8"))  # strictly, as _json_lines decodes
        except (ValueError, RecursionError) as exc:
            raise InvalidSyntaxError(f"{path} is neither JSON lines nor JSON: {exc}") from None
    if not _is_bulk(whole):
        raise InvalidSyntaxError(
            f"{path} is neither JSON lines nor a Bulk request (schemas [{BULK_REQUEST_URN!r}])"
        )
    yield from _bulk_operations(whole, check_text=_SURROGATE_ESCAPE.search(raw) is not None)


def _is_bulk(value: Any) -> bool:
    schemas = value.get("schemas") if isinstance(value, dict) else None
    return isinstance(schemas, list) and BULK_REQUEST_URN.lower() in (
        s.lower() for s in schemas if isinstance(s, str)
    )


def _check_text(value: Any) -> None:
    """400 invalidSyntax if ``value`` holds an unpaired surrogate (a ``\\ud800`` escape):
    RFC 8259 §8.1 "JSON text [...] MUST be encoded using UTF-8", which cannot hold one, and
    no database stores one. The API refuses such a body the same way (``read_body``)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidSyntaxError("The resource holds an unpaired surrogate.") from None


def _json_lines(lines: Any) -> Iterator[Record]:
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            # Decoded strictly, as the API decodes a body: json.loads(bytes) would let
            # CESU-8 surrogates (ED A0 80) through (UnicodeDecodeError is a ValueError).
            body = json.loads(raw.decode("utf-8"))
            if _SURROGATE_ESCAPE.search(raw):
                _check_text(body)
        except (ValueError, RecursionError, InvalidSyntaxError) as exc:
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            error = (
                exc
                if isinstance(exc, InvalidSyntaxError)
                else InvalidSyntaxError(f"Not JSON: {exc}")
            )
            yield Record(number, None, None, text, error)
            continue
        yield Record(number, None, None, body)


def _bulk_operations(request: dict[str, Any], *, check_text: bool) -> Iterator[Record]:
    operations = request.get("Operations")
    if not isinstance(operations, list):
        raise InvalidSyntaxError("The Bulk request has no Operations list.")
    for number, op in enumerate(operations, start=1):
        if not isinstance(op, dict):
            yield Record(number, None, None, op, InvalidSyntaxError("Not an operation."))
            continue
        method, path = op.get("method"), op.get("path")
        bulk_id = op.get("bulkId") if isinstance(op.get("bulkId"), str) else None
        if not isinstance(method, str) or method.upper() != "POST":
            # RFC 7644 §3.7: import creates; a PUT, PATCH or DELETE has nothing to act on.
            error = InvalidValueError(f"Only POST operations are imported, not {method!r}.")
            yield Record(number, None, bulk_id, op, error)
            continue
        if not isinstance(path, str):
            yield Record(number, None, bulk_id, op, InvalidValueError("The operation has no path."))
            continue
        data = op.get("data")
        try:
            if check_text:
                _check_text(data)
        except InvalidSyntaxError as exc:
            yield Record(number, path, bulk_id, op, exc)
            continue
        yield Record(number, path, bulk_id, data)


@dataclass(slots=True)
class _Pending:
    """Resources checked and waiting for their batch, by resource type."""

    by_type: dict[str, list[tuple[Record, dict[str, Any]]]] = field(default_factory=dict)
    size: int = 0


class Importer:
    """Loads records through ``engine``'s checks into its backend, ``batch`` at a time.

    ``rejects`` receives one JSON line per record refused; ``progress`` (a terminal,
    usually stderr) a line after every batch.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        batch: int = 10_000,
        rejects: TextIO,
        progress: TextIO | None = None,
        type_name: str | None = None,
    ) -> None:
        self._state = engine._state
        self._backend = self._state.backend
        self._batch = max(1, batch)
        self._rejects = rejects
        self._progress = progress
        self._pending = _Pending()
        #: ``bulkId`` -> the id its operation's resource got (RFC 7644 §3.7.2).
        self._bulk_ids: dict[str, str] = {}
        self._forced = self._type(type_name) if type_name is not None else None
        self.report = ImportReport()
        self._started = time.perf_counter()

    def _type(self, name: str) -> ResourceType:
        for rt in self._state.types:
            if name.lower() in (rt.name.lower(), rt.endpoint.strip("/").lower()):
                return rt
        known = ", ".join(rt.name for rt in self._state.types)
        raise InvalidValueError(f"Unknown resource type {name!r} (known: {known}).")

    def _type_of(self, record: Record) -> ResourceType:
        if record.endpoint is not None:
            endpoint = record.endpoint.strip().rstrip("/").lower()
            for rt in self._state.types:
                if rt.endpoint.lower() == endpoint:
                    return rt
            raise InvalidValueError(f"No resource type at {record.endpoint!r}.")
        if self._forced is not None:
            return self._forced
        schemas = record.body.get("schemas") if isinstance(record.body, dict) else None
        given = (
            {s.lower() for s in schemas if isinstance(s, str)}
            if isinstance(schemas, list)
            else set()
        )
        for rt in self._state.types:
            if rt.schema.id.lower() in given:
                return rt
        raise InvalidValueError("The resource names no known core schema in 'schemas'.")

    def add(self, record: Record) -> None:
        """Check ``record`` and queue it (or store it now: a group with members)."""
        try:
            if record.error is not None:
                raise record.error
            rt = self._type_of(record)
            if isinstance(record.body, dict) and record.body.get("members"):
                self.flush()  # its members (and their bulkIds) may be in the batch
            # RFC 7644 §3.7.2: only a Bulk operation's data may name another's bulkId.
            body = self._resolve(record.body) if record.endpoint is not None else record.body
            ctx = Ctx(
                method="POST",
                segments=[rt.endpoint.strip("/")],
                query={},
                headers={},
                body=body,
                base_url="",
            )
            resource, member_types = new_resource(self._state, ctx, rt)
            if resource.get("members"):
                stored = self._backend.create(None, rt, resource, members=member_types.keys())
                self._stored(record, stored["id"], 1)
                return
        except ScimError as exc:
            self._reject(record, exc)
            return
        self._pending.by_type.setdefault(rt.name, []).append((record, resource))
        self._pending.size += 1
        if self._pending.size >= self._batch:
            self.flush()

    def _resolve(self, value: Any) -> Any:
        """``value`` with each ``"bulkId:x"`` replaced by the id ``x``'s resource got."""
        if isinstance(value, str) and value.startswith("bulkId:"):
            found = self._bulk_ids.get(value[7:])
            if found is None:
                raise InvalidValueError(f"{value!r} names no earlier operation's bulkId.")
            return found
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self._resolve(v) for k, v in value.items()}
        return value

    def flush(self) -> None:
        """Store the queued resources, one transaction per resource type."""
        pending, self._pending = self._pending, _Pending()
        for name, queued in pending.by_type.items():
            rt = self._type(name)
            load = getattr(self._backend, "load_new", None)
            if callable(load):
                stored, refused = load(None, rt, [(i, res) for i, (_, res) in enumerate(queued)])
                self.report.stored += stored
                for i, (record, resource) in enumerate(queued):
                    if i in refused:
                        self._reject(record, refused[i])
                    elif record.bulk_id is not None:
                        self._bulk_ids[record.bulk_id] = resource["id"]
                continue
            for record, resource in queued:  # a backend without a bulk path
                try:
                    self._stored(record, self._backend.create(None, rt, resource)["id"], 1)
                except ScimError as exc:
                    self._reject(record, exc)
        if pending.size and self._progress is not None:
            r = self.report
            rate = r.stored / max(time.perf_counter() - self._started, 1e-9)
            print(
                f"imported {r.stored:,}, rejected {r.rejected:,} ({rate:,.0f}/s)",
                file=self._progress,
                flush=True,
            )

    def _stored(self, record: Record, rid: str, n: int) -> None:
        self.report.stored += n
        if record.bulk_id is not None:
            self._bulk_ids[record.bulk_id] = rid

    def _reject(self, record: Record, error: ScimError) -> None:
        self.report.rejected += 1
        line = {"line": record.number, "error": error.to_dict(), "input": record.body}
        text = json.dumps(line, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # an unpaired surrogate, kept as the escape it was given
            text = json.dumps(line)
        self._rejects.write(text + "\n")

    def finish(self) -> ImportReport:
        """Store what is queued; the report of the whole import."""
        self.flush()
        analyze = getattr(getattr(self._backend, "_dialect", None), "analyze", None)
        if callable(analyze):
            analyze()
        self.report.seconds = time.perf_counter() - self._started
        return self.report


def add_import_command(commands: Any) -> None:
    """Register ``scim2-core import`` on the CLI's subcommands."""
    command = commands.add_parser(
        "import", help="load SCIM resources (JSON lines or a Bulk request file) into storage"
    )
    command.add_argument("file", type=Path, help="JSON lines of resources, or a Bulk request")
    command.add_argument("--db", default="sqlite:///scim.db", help="storage, as for serve")
    command.add_argument("--db-schema", default=None, help="PostgreSQL schema, as for serve")
    command.add_argument(
        "--type", default=None, help="resource type of every line (default: from its schemas)"
    )
    command.add_argument(
        "--batch", type=int, default=10_000, help="resources per transaction (default 10000)"
    )
    command.add_argument(
        "--rejects",
        type=Path,
        default=None,
        help="where refused lines go, with their SCIM error (default: FILE.rejected.jsonl)",
    )


def import_command(args: argparse.Namespace, out: TextIO, engine: Engine) -> int:
    """``scim2-core import``: 0 when every resource was stored, 1 when some were refused
    (listed in the rejects file), 2 when the input cannot be read."""
    rejects_path: Path = args.rejects or args.file.with_name(args.file.name + ".rejected.jsonl")
    try:
        with rejects_path.open("w", encoding="utf-8") as rejects:
            importer = Importer(
                engine, batch=args.batch, rejects=rejects, progress=sys.stderr, type_name=args.type
            )
            for record in records(args.file):
                importer.add(record)
            report = importer.finish()
    except (OSError, ScimError) as exc:
        print(f"scim2-core import: {getattr(exc, 'detail', exc)}", file=sys.stderr)
        return 2
    print(
        f"imported {report.stored:,} resources in {report.seconds:.1f} s; "
        f"rejected {report.rejected:,}" + (f" (see {rejects_path})" if report.rejected else ""),
        file=out,
    )
    if not report.rejected:
        rejects_path.unlink(missing_ok=True)
    return 1 if report.rejected else 0
