"""Bulk (RFC 7644 §3.7): run the operations of a BulkRequest through the engine, one by one.

https://www.rfc-editor.org/rfc/rfc7644#section-3.7

:func:`run_bulk` knows nothing about resources: each operation becomes one plain
:class:`~scim2_core._types.Request` handed to ``dispatch`` (the engine's own router), and
each :class:`~scim2_core._types.Response` becomes one entry of the BulkResponse. What is
specific to Bulk lives here: limits, ``bulkId`` references and their order, ``version`` as
``If-Match``, ``failOnErrors``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .._errors import (
    ConflictError,
    InternalError,
    InvalidSyntaxError,
    InvalidValueError,
    PayloadTooLargeError,
    ScimError,
)
from .._types import Request, Response
from .._urns import BULK_REQUEST_URN, BULK_RESPONSE_URN, SCIM_MEDIA_TYPE

__all__ = ["BULK_REQUEST_URN", "BULK_RESPONSE_URN", "run_bulk"]

logger = logging.getLogger("scim2_core")

_METHODS: Final = frozenset(("POST", "PUT", "PATCH", "DELETE"))
#: ``bulkId:<id>`` inside a string: a whole value, a path segment, or a quoted filter value.
_REFERENCE: Final = re.compile(r"bulkId:([^\s\"'/\[\]]+)")


@dataclass(slots=True)
class _Op:
    index: int
    method: str
    path: str
    bulk_id: str | None
    version: str | None
    data: Any
    refs: frozenset[str] = field(default_factory=frozenset)
    error: ScimError | None = None


def run_bulk(
    body: Mapping[str, Any],
    dispatch: Callable[[Request], Response],
    *,
    max_operations: int,
    max_payload_bytes: int,
    payload_size: int,
    base_url: str,
) -> tuple[int, dict[str, Any]]:
    """Run a BulkRequest; return ``(status, BulkResponse dict)``.

    ``dispatch`` runs one sub-request through the engine and returns its response (it
    must turn every client error into an error response itself). Raises
    :class:`PayloadTooLargeError` when the request exceeds ``max_operations`` or
    ``max_payload_bytes``, :class:`InvalidSyntaxError` for a malformed message; every
    problem with one operation is reported in that operation's result.
    """
    raw_ops, fail_on_errors = _check_request(
        body,
        max_operations=max_operations,
        max_payload_bytes=max_payload_bytes,
        payload_size=payload_size,
    )
    ops = [_read_operation(i, raw) for i, raw in enumerate(raw_ops)]
    _check_bulk_ids(ops)
    results: dict[int, dict[str, Any]] = {}
    created: dict[str, str] = {}  # bulkId -> id of the resource its POST created
    failed: set[str] = set()  # bulkIds whose POST failed
    errors = 0

    def record(op: _Op, result: dict[str, Any]) -> None:
        nonlocal errors
        results[op.index] = result
        if int(result["status"]) >= 400:
            errors += 1
            if op.bulk_id is not None and op.method == "POST":
                failed.add(op.bulk_id)

    def stop() -> bool:
        return fail_on_errors is not None and errors >= fail_on_errors

    # §3.7.2: "The service provider MUST try to resolve circular cross-references between
    # resources in a single bulk job but MAY stop after a failed attempt and instead return
    # HTTP status code 409 (Conflict)." Operations run in request order, except that one
    # referencing a bulkId waits until the POST defining it has run (forward references).
    pending = list(ops)
    while pending and not stop():
        waiting: list[_Op] = []
        progressed = False
        for op in pending:
            if stop():
                break
            if op.error is None and any(
                ref not in created and ref not in failed for ref in op.refs
            ):
                waiting.append(op)
                continue
            progressed = True
            record(op, _run_one(op, dispatch, created, failed, base_url))
        if not progressed:
            for op in waiting:
                if stop():
                    break
                unresolved = sorted(r for r in op.refs if r not in created)
                record(
                    op,
                    _error_result(
                        op,
                        ConflictError(
                            "Circular bulkId reference: "
                            + ", ".join(f"bulkId:{r}" for r in unresolved)
                            + " cannot be resolved before this operation runs."
                        ),
                        base_url,
                    ),
                )
            break
        pending = waiting
    return 200, {
        "schemas": [BULK_RESPONSE_URN],
        "Operations": [results[i] for i in sorted(results)],
    }


def _check_request(
    body: Mapping[str, Any], *, max_operations: int, max_payload_bytes: int, payload_size: int
) -> tuple[list[Any], int | None]:
    """The operations and ``failOnErrors`` of a BulkRequest, after its limits and shape."""
    # RFC 7644 §3.7.4: "The service provider MUST define the maximum number of operations
    # and maximum payload size a client may send in a single request. [...] If either
    # limit is exceeded, the service provider MUST return HTTP response code 413 (Payload
    # Too Large)." with e.g. "detail": "The size of the bulk operation exceeds the
    # maxPayloadSize (1048576)."
    if payload_size <= 0 and isinstance(body, Mapping):
        # An already-parsed body (the plain-dict contract allows one) has no byte count;
        # measure it as compact JSON so the limit cannot be sidestepped.
        try:
            payload_size = len(json.dumps(body, separators=(",", ":")).encode())
        except (TypeError, ValueError):
            payload_size = 0
        except RecursionError:
            raise InvalidSyntaxError("The bulk request is nested too deeply.") from None
    if payload_size > max_payload_bytes:
        raise PayloadTooLargeError(
            f"The size of the bulk operation exceeds the maxPayloadSize ({max_payload_bytes})."
        )
    if not isinstance(body, Mapping):
        raise InvalidSyntaxError("The bulk request must be a JSON object.")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or BULK_REQUEST_URN not in schemas:
        raise InvalidSyntaxError(f"A bulk request must have schemas [{BULK_REQUEST_URN!r}].")
    raw_ops = body.get("Operations")
    if not isinstance(raw_ops, list):
        raise InvalidSyntaxError('A bulk request must have an "Operations" array.')
    if len(raw_ops) > max_operations:
        raise PayloadTooLargeError(
            f"The number of operations exceeds the maxOperations ({max_operations})."
        )
    # §3.7.3: "failOnErrors  An integer specifying the number of errors that the service
    # provider will accept before the operation is terminated and an error response is
    # returned. OPTIONAL in a request."
    fail_on_errors = body.get("failOnErrors")
    if fail_on_errors is not None and (
        not isinstance(fail_on_errors, int)
        or isinstance(fail_on_errors, bool)
        or fail_on_errors < 1
    ):
        raise InvalidValueError('"failOnErrors" must be a positive integer.')

    return raw_ops, fail_on_errors


def _read_operation(index: int, raw: Any) -> _Op:
    """Read one operation; problems are kept on the operation and reported in its result."""
    if not isinstance(raw, Mapping):
        return _Op(
            index,
            "",
            "",
            None,
            None,
            None,
            error=InvalidSyntaxError(f"Operations[{index}] must be a JSON object."),
        )
    method_raw = raw.get("method")
    method = method_raw.upper() if isinstance(method_raw, str) else ""
    bulk_id_raw = raw.get("bulkId")
    bulk_id = bulk_id_raw if isinstance(bulk_id_raw, str) and bulk_id_raw else None
    version_raw = raw.get("version")
    version = version_raw if isinstance(version_raw, str) and version_raw else None
    path_raw = raw.get("path")
    path = path_raw if isinstance(path_raw, str) else ""
    data = raw.get("data")
    op = _Op(index, method, path, bulk_id, version, data)
    if method not in _METHODS:
        op.error = InvalidSyntaxError(
            f'"method" must be one of POST, PUT, PATCH or DELETE, got {method_raw!r}.'
        )
    elif not path.startswith("/"):
        # §3.7: "path  The resource's relative path to the SCIM service provider's root.
        # [...] REQUIRED in a request."
        op.error = InvalidSyntaxError('"path" is required, e.g. "/Users" or "/Users/{id}".')
    elif method == "POST" and bulk_id is None:
        # §3.7: "bulkId  A transient identifier of a newly created resource, unique within a
        # bulk request and created by the client. [...] REQUIRED when "method" is "POST"."
        op.error = InvalidValueError('"bulkId" is required for POST operations.')
    elif method in ("POST", "PUT", "PATCH") and not isinstance(data, Mapping):
        # §3.7: "data  The resource data as it would appear for a single SCIM POST, PUT, or
        # PATCH operation. REQUIRED in a request when "method" is "POST", "PUT", or "PATCH"."
        op.error = InvalidSyntaxError(f'"data" must be a JSON object for {method} operations.')
    else:
        op.refs = frozenset(_references(path)) | frozenset(_references(data))
    return op


def _check_bulk_ids(ops: list[_Op]) -> None:
    """bulkIds are "unique within a bulk request"; references must name a POST's bulkId."""
    defined: dict[str, int] = {}
    for op in ops:
        if op.error is None and op.method == "POST" and op.bulk_id is not None:
            if op.bulk_id in defined:
                op.error = InvalidValueError(f"bulkId {op.bulk_id!r} is used by two operations.")
            else:
                defined[op.bulk_id] = op.index
    for op in ops:
        if op.error is None:
            unknown = sorted(r for r in op.refs if r not in defined)
            if unknown:
                op.error = InvalidValueError(
                    "No POST operation in this request has bulkId "
                    + ", ".join(repr(r) for r in unknown)
                    + "."
                )


def _references(value: Any) -> Iterator[str]:
    """Every ``bulkId`` referenced in ``value``, at any depth (iterative: a client's data
    may nest deeper than Python's recursion limit)."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            if "bulkId:" in item:
                yield from _REFERENCE.findall(item)
        elif isinstance(item, Mapping):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)


def _substitute(value: Any, created: Mapping[str, str]) -> Any:
    """A copy of ``value`` with every ``bulkId:<id>`` replaced by the created resource's id.

    §3.7.2: "the service provider [...] MUST replace the string "bulkId:qwerty" with the
    resource id" of the resource the operation with that bulkId created. Iterative, so
    data nested deeper than Python's recursion limit is copied, not a RecursionError.
    """

    def replace(text: str) -> str:
        if "bulkId:" not in text:
            return text
        return _REFERENCE.sub(lambda m: created.get(m.group(1), m.group(0)), text)

    root: list[Any] = [None]
    # (source value, container of its copy, key or index of the copy in that container)
    todo: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while todo:
        item, into, at = todo.pop()
        if isinstance(item, str):
            into[at] = replace(item)
        elif isinstance(item, Mapping):
            copy: dict[Any, Any] = dict.fromkeys(item)  # keeps the client's key order
            into[at] = copy
            todo.extend((v, copy, k) for k, v in item.items())
        elif isinstance(item, list):
            items: list[Any] = [None] * len(item)
            into[at] = items
            todo.extend((v, items, i) for i, v in enumerate(item))
        else:
            into[at] = item
    return root[0]


def _run_one(
    op: _Op,
    dispatch: Callable[[Request], Response],
    created: dict[str, str],
    failed: set[str],
    base_url: str,
) -> dict[str, Any]:
    if op.error is not None:
        return _error_result(op, op.error, base_url)
    broken = sorted(r for r in op.refs if r in failed)
    if broken:
        return _error_result(
            op,
            ConflictError(
                "The operation creating "
                + ", ".join(f"bulkId:{r}" for r in broken)
                + " failed, so this operation cannot refer to it."
            ),
            base_url,
        )
    path = _substitute(op.path, created)
    headers = {"Content-Type": SCIM_MEDIA_TYPE, "Accept": SCIM_MEDIA_TYPE}
    if op.version is not None and op.method != "POST":
        # §3.7: "version  The current resource version. Version MAY be used if the service
        # provider supports entity-tags (ETags) (Section 2.3 of [RFC7232]) and "method" is
        # "PUT", "PATCH", or "DELETE"."
        headers["If-Match"] = op.version
    request: Request = {"method": op.method, "path": path, "headers": headers}
    if op.data is not None and op.method != "DELETE":
        request["body"] = _substitute(op.data, created)
    if base_url:
        request["base_url"] = base_url
    try:
        response = dispatch(request)
    except ScimError as exc:
        return _error_result(op, exc, base_url, path)
    return _result(op, response, path, base_url, created, failed)


def _result(
    op: _Op,
    response: Response,
    path: str,
    base_url: str,
    created: dict[str, str],
    failed: set[str],
) -> dict[str, Any]:
    """The BulkResponse entry of one operation from its response."""
    status = response["status"]
    parsed = _json_body(response["body"])
    resp_headers = {k.lower(): v for k, v in response["headers"].items()}
    meta = parsed.get("meta") if isinstance(parsed, dict) else None
    location = resp_headers.get("location") or (
        meta.get("location") if isinstance(meta, dict) else None
    )
    if location is None and op.method != "POST":
        location = f"{base_url}{path}"
    if status >= 400:
        if not isinstance(parsed, dict):  # pragma: no cover - the engine always renders errors
            logger.error("A bulk operation failed with status %s and no SCIM Error", status)
            return _error_result(op, InternalError(), base_url, path)
        # §3.7: "location [...] REQUIRED in a response, except in the event of a POST
        # failure." / "response [...] When indicating a response with an HTTP status other
        # than a 200-series response, the response body MUST be included."
        result: dict[str, Any] = {"method": op.method}
        if op.bulk_id is not None:
            result["bulkId"] = op.bulk_id
        if op.method != "POST" and location is not None:
            result["location"] = location
        result["status"] = str(status)
        result["response"] = parsed
        return result
    result = {"method": op.method}
    if op.bulk_id is not None:
        result["bulkId"] = op.bulk_id
    if location is not None:
        result["location"] = location
    version = resp_headers.get("etag") or (meta.get("version") if isinstance(meta, dict) else None)
    if isinstance(version, str):
        result["version"] = version
    # §3.7: "status  The HTTP response status code for the requested operation." The RFC
    # examples send it as a string ("201"); scim2-models reads both and writes a string.
    result["status"] = str(status)
    if op.method == "POST" and op.bulk_id is not None:
        new_id = parsed.get("id") if isinstance(parsed, dict) else None
        if not isinstance(new_id, str) and isinstance(location, str):
            new_id = location.rstrip("/").rsplit("/", 1)[-1]
        if isinstance(new_id, str) and new_id:
            created[op.bulk_id] = new_id
        else:  # pragma: no cover - the engine always returns the created resource
            failed.add(op.bulk_id)
    return result


def _json_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _error_result(
    op: _Op, exc: ScimError, base_url: str, path: str | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = {"method": op.method or "UNKNOWN"}
    if op.bulk_id is not None:
        result["bulkId"] = op.bulk_id
    if op.method not in ("", "POST") and op.path:
        result["location"] = f"{base_url}{path or op.path}"
    result["status"] = str(exc.status)
    result["response"] = exc.to_dict()
    return result
