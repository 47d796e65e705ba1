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


def _compact_encoder() -> Callable[[Any], str]:
    """``json.dumps(obj, separators=(",", ":"))``, with the C encoder built once.

    ``json.dumps`` with separators builds a ``JSONEncoder`` and its C encoder on every
    call, about as long as encoding a User; built once, a GET by id is encoded in 0.6x
    the time. The C encoder is CPython's (``json.encoder.c_make_encoder``); where it is
    missing, a ``JSONEncoder`` built once does the same. Responses are trees the engine
    built (no cycles), so the cycle check is off.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    escape = getattr(json.encoder, "c_encode_basestring_ascii", None)
    if make is None or escape is None:  # pragma: no cover - CPython always has them
        return json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
    # (markers, default, encoder, indent, key_separator, item_separator, sort_keys,
    #  skipkeys, allow_nan), as json.encoder.JSONEncoder.iterencode passes them.
    encoder = make(None, _not_json, escape, None, ":", ",", False, False, True)

    def encode(obj: Any) -> str:
        return "".join(encoder(obj, 0))

    return encode


_encode: Callable[[Any], str] = _compact_encoder()


def encode_json(obj: Any) -> bytes:
    """``obj`` as compact JSON bytes; ``ensure_ascii`` keeps the output valid UTF-8 whatever
    the stored strings hold."""
    return _encode(obj).encode("ascii")


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
