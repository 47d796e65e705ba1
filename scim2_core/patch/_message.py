"""Parsing a PatchOp message (RFC 7644 §3.5.2) into :class:`PatchOperation` values.

https://www.rfc-editor.org/rfc/rfc7644#section-3.5.2
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal

from .._errors import (
    InvalidFilterError,
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    NoTargetError,
)
from .._urns import PATCH_OP_URN
from ..filter import PatchPath, parse_path

OpName = Literal["add", "remove", "replace"]
_OPS: Final[dict[str, OpName]] = {"add": "add", "remove": "remove", "replace": "replace"}
MISSING: Final = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class PatchOptions:
    """How :func:`apply_patch` reads operations.

    ``strict`` turns off every identity-provider tolerance (docs/idp-notes.md).
    ``replace_creates_missing``: a ``replace`` whose value filter on a multi-valued complex
    attribute matches nothing adds the value (Entra ID's intent) instead of 400 noTarget;
    ignored in strict mode.
    """

    strict: bool = False
    replace_creates_missing: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class PatchOperation:
    """One parsed PATCH operation.

    ``path`` is the parsed path (None when the operation has none, or when the path is a
    bare extension schema URN, resolved against the resource type in :func:`apply_patch`);
    ``path_text`` the path as sent. ``has_value`` tells a ``null`` value from none.
    """

    op: OpName
    path: PatchPath | None = None
    path_text: str | None = None
    value: Any = None
    has_value: bool = False


def json_member(obj: Mapping[str, Any], name: str, strict: bool) -> Any:
    """``obj[name]``, or with ``strict`` off the first key equal to it ignoring case."""
    if name in obj:
        return obj[name]
    if not strict:
        low = name.lower()
        for key, value in obj.items():
            if isinstance(key, str) and key.lower() == low:
                return value
    return MISSING


def parse_patch_request(body: Mapping[str, Any], *, strict: bool) -> list[PatchOperation]:
    """Validate a PatchOp message (RFC 7644 §3.5.2) and parse its operations and paths.

    Raises :class:`InvalidSyntaxError` for a malformed message, :class:`InvalidValueError`
    for a missing value, :class:`InvalidPathError` for a malformed path and
    :class:`NoTargetError` for a ``remove`` without a path.
    """
    if not isinstance(body, Mapping):
        raise InvalidSyntaxError("The PATCH body must be a JSON object.")
    # "The body of each request MUST contain the "schemas" attribute with the URI value of
    # "urn:ietf:params:scim:api:messages:2.0:PatchOp"."
    schemas = json_member(body, "schemas", strict)
    if not isinstance(schemas, list) or not any(
        isinstance(s, str)
        and (s == PATCH_OP_URN or (not strict and s.lower() == PATCH_OP_URN.lower()))
        for s in schemas
    ):
        raise InvalidSyntaxError(f"The PATCH body must have schemas [{PATCH_OP_URN!r}].")
    # "The body of an HTTP PATCH request MUST contain the attribute "Operations", whose value
    # is an array of one or more PATCH operations."
    raw_ops = json_member(body, "Operations", strict)
    if not isinstance(raw_ops, list) or not raw_ops:
        raise InvalidSyntaxError('"Operations" must be an array of one or more operations.')
    return [_parse_operation(raw, i, strict) for i, raw in enumerate(raw_ops)]


def _parse_operation(raw: Any, index: int, strict: bool) -> PatchOperation:
    where = f"Operations[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidSyntaxError(f"{where} must be a JSON object.")
    name = _op_name(raw, where, strict)
    path_text = _path_text(raw, where, strict)
    value = json_member(raw, "value", strict)
    has_value = value is not MISSING
    if not has_value:
        value = None
    # "The "path" attribute is OPTIONAL for "add" and "replace" and is REQUIRED for
    # "remove" operations." §3.5.2.2: "If "path" is unspecified, the operation fails with
    # HTTP status code 400 and a "scimType" error code of "noTarget"."
    if name == "remove" and path_text is None:
        raise NoTargetError(f"{where}: remove requires a path.")
    # §3.5.2.1: "The operation MUST contain a "value" member whose content specifies the
    # value to be added." A replace needs one too (null unassigns the target).
    if name == "add" and value is None:
        raise InvalidValueError(f"{where}: add requires a non-null value.")
    if name == "replace" and not has_value:
        raise InvalidValueError(f"{where}: replace requires a value.")
    if path_text is None and name != "remove" and not isinstance(value, Mapping):
        # §3.5.2.1/§3.5.2.3: with no path "the "value" parameter contains a set of
        # attributes" (a JSON object).
        raise InvalidValueError(f"{where}: without a path, the value must be a JSON object.")
    return PatchOperation(
        op=name,
        path=None if path_text is None else _parsed_path(path_text, where),
        path_text=path_text,
        value=value,
        has_value=has_value,
    )


def _op_name(raw: Mapping[str, Any], where: str, strict: bool) -> OpName:
    """The operation's name, normalised once here (tolerant: ``"Replace"`` is ``replace``)."""
    # "Each PATCH operation object MUST have exactly one "op" member, whose value indicates
    # the operation to perform and MAY be one of "add", "remove", or "replace"."
    op = json_member(raw, "op", strict)
    if not isinstance(op, str):
        raise InvalidSyntaxError(f'{where} must have an "op" of add, remove or replace.')
    name = _OPS.get(op if strict else op.strip().lower())
    if name is None:
        raise InvalidSyntaxError(f"{where}: unknown op {op!r}; expected add, remove or replace.")
    return name


def _path_text(raw: Mapping[str, Any], where: str, strict: bool) -> str | None:
    """The operation's ``path`` as sent, or None (tolerant: ``""`` and ``null`` too)."""
    path_text = json_member(raw, "path", strict)
    if path_text is MISSING or (path_text is None and not strict):
        return None
    if not isinstance(path_text, str):
        raise InvalidPathError(f'{where}: "path" must be a string.')
    if not path_text.strip():
        if strict:
            raise InvalidPathError(f'{where}: "path" is empty.')
        return None
    return path_text


def _parsed_path(path_text: str, where: str) -> PatchPath | None:
    try:
        return parse_path_cached(path_text)
    except (InvalidPathError, InvalidFilterError) as exc:
        # A bare extension schema URN is a valid path (the extension object); only
        # the resource type can tell, so keep the text for apply_patch.
        if not (path_text.lower().startswith("urn:") and "[" not in path_text):
            raise InvalidPathError(f"{where}: {exc.detail}") from None
    return None


@lru_cache(maxsize=512)
def _parse_path_cached(text: str) -> PatchPath:
    return parse_path(text)


def parse_path_cached(text: str) -> PatchPath:
    """:func:`parse_path`, memoised for short paths: IdPs send the same few paths on every
    sync, and a parsed path is immutable."""
    if len(text) <= 200:
        return _parse_path_cached(text)
    return parse_path(text)
