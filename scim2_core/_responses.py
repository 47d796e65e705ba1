"""The one place a response dict is built: JSON bodies and SCIM Error answers.

The engine answers through these, and so do the server adapters when they must answer before
the engine runs (a body over the limit, a path outside the mount), so every SCIM answer of an
app is encoded the same way.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

from ._errors import ScimError
from ._types import Response
from ._urns import SCIM_MEDIA_TYPE

__all__ = ["encode_json", "error_response", "json_response"]


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _compact_encoder(ascii_only: bool) -> Callable[[Any], str]:
    """``json.dumps(obj, separators=(",", ":"), ensure_ascii=ascii_only)``, with the C
    encoder built once.

    ``json.dumps`` with separators builds a ``JSONEncoder`` and its C encoder on every
    call, about as long as encoding a User; built once, a GET by id is encoded in 0.6x
    the time. The C encoder is CPython's (``json.encoder.c_make_encoder``); where it is
    missing, a ``JSONEncoder`` built once does the same. Responses are trees the engine
    built (no cycles), so the cycle check is off.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    name = "c_encode_basestring_ascii" if ascii_only else "c_encode_basestring"
    escape = getattr(json.encoder, name, None)
    if make is None or escape is None:  # pragma: no cover - CPython always has them
        return json.JSONEncoder(
            separators=(",", ":"), check_circular=False, ensure_ascii=ascii_only
        ).encode
    # (markers, default, encoder, indent, key_separator, item_separator, sort_keys,
    #  skipkeys, allow_nan), as json.encoder.JSONEncoder.iterencode passes them.
    encoder = make(None, _not_json, escape, None, ":", ",", False, False, True)

    def encode(obj: Any) -> str:
        return "".join(encoder(obj, 0))

    return encode


_encode_utf8: Callable[[Any], str] = _compact_encoder(ascii_only=False)
_encode_ascii: Callable[[Any], str] = _compact_encoder(ascii_only=True)


def encode_json_stdlib(obj: Any) -> bytes:
    """``obj`` as compact JSON in UTF-8 with the standard library: what :func:`encode_json`
    answers when orjson is not installed, byte for byte the same.

    RFC 8259 §8.1: "JSON text exchanged between systems [...] MUST be encoded using UTF-8";
    characters are written as themselves (§7: escaping is optional), except in a string
    holding a lone surrogate, which UTF-8 cannot encode: then the whole text is written in
    ASCII with ``\\u`` escapes (still valid JSON and valid UTF-8).
    """
    try:
        return _encode_utf8(obj).encode("utf-8")
    except UnicodeEncodeError:
        return _encode_ascii(obj).encode("ascii")


#: Numbers orjson writes as Python does in the versions used here (3.10+ writes exponents
#: of 1e16 and above as ``1e+16``); checked once at import, orjson is not used otherwise.
_PROBES = (
    [1e16, 1.2345678901234568e17, 1e300, 1.7976931348623157e308, 1e15, 123456.789],
    [0.1, 0.30000000000000004, 1.0, -0.0, 100.0, 0.00025, 2**63 - 1, -(2**63)],
    {"caf\u00e9": "\u2603 \U0001f600", "a": [True, False, {}]},
)


_DIGITS = frozenset(b"0123456789.")
_VALUE_START = frozenset(b":,[")


def _starts_value(out: bytes, at: int) -> bool:
    """Whether a JSON value starts at ``out[at]`` (compact JSON: at the start, or after
    ``:``, ``,`` or ``[``); a minus sign before ``at`` counts as part of the value."""
    if at > 0 and out[at - 1] == 45:  # "-"
        at -= 1
    return at == 0 or out[at - 1] in _VALUE_START


def _may_differ(out: bytes) -> bool:
    """Whether orjson's ``out`` may hold a value the standard library writes otherwise: a
    number below 1e-4 (``1.5e-7``, ``0.00001``) or ``null`` (NaN and infinities too).
    A string holding such text counts as well (rarely; it only costs the second encoding)."""
    at = out.find(b"e-")  # a uuid holds "e-" one time in four: check each one's token
    while at != -1:
        start = at
        while start > 0 and out[start - 1] in _DIGITS:
            start -= 1
        if start < at and _starts_value(out, start):
            return True
        at = out.find(b"e-", at + 2)
    for token in (b"0.0000", b"null"):
        at = out.find(token)
        while at != -1:
            if _starts_value(out, at):
                return True
            at = out.find(token, at + 1)
    return False


def _orjson_encoder() -> Callable[[Any], bytes] | None:
    """orjson's ``dumps`` (the ``fast-json`` extra), when installed and writing the
    probes as the standard library does."""
    try:
        import orjson
    except ImportError:
        return None
    dumps: Callable[[Any], bytes] = orjson.dumps
    if any(dumps(probe) != encode_json_stdlib(probe) for probe in _PROBES):
        return None  # pragma: no cover - an orjson that formats numbers otherwise
    return dumps


_orjson_dumps = _orjson_encoder()


def encode_json(obj: Any) -> bytes:
    """``obj`` (a JSON value: dicts, lists, strings, numbers, booleans, ``None``) as compact
    JSON in UTF-8, the same bytes with or without orjson (:func:`encode_json_stdlib`).

    With orjson (``pip install scim2-core[fast-json]``, about 10x faster on a User), its
    answer is kept unless the standard library's could differ: orjson refuses what it
    cannot write the same way (lone surrogates, integers past 64 bits), writes numbers
    below 1e-4 as ``1e-7``/``0.00001`` where Python writes ``1e-07``/``1e-05``, and NaN
    and infinities as ``null``; an output holding such a number or a ``null`` (a string
    may look like one too, rarely) is encoded again by the standard library.
    """
    if _orjson_dumps is not None:
        try:
            out = _orjson_dumps(obj)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
        else:
            if not _may_differ(out):
                return out
    return encode_json_stdlib(obj)


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    """A response whose body is ``obj`` encoded as ``application/scim+json`` (RFC 7644 §3.1:
    "SCIM requests and responses SHALL use the media type 'application/scim+json'")."""
    out = {"Content-Type": SCIM_MEDIA_TYPE}
    if headers:
        out.update(headers)
    return {"status": status, "headers": out, "body": encode_json(obj)}


def error_response(error: ScimError) -> Response:
    """The SCIM Error response for ``error``.

    RFC 7644 §3.12: "the HTTP status code [...] SHALL be used"; the body carries the Error
    schema, ``status`` as a string, ``scimType`` where Table 9 defines one and ``detail``
    (:meth:`ScimError.to_dict`); ``error.headers`` (``WWW-Authenticate``, ``Allow``) are added.
    """
    return json_response(error.status, error.to_dict(), error.headers)
