"""Values in canonical form (RFC 7643 §2.3): type checks, normalisation, dateTime text.

Resources inside the engine are plain JSON dicts in *canonical form*: attribute names spelled
as the schema spells them, extension attributes under their schema URN, values of the JSON
type the attribute's type calls for, and ``dateTime`` values normalised by
:func:`format_datetime`. Every inbound body goes through :func:`normalize_attributes` first,
so everything downstream can index dicts with canonical names.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from .._errors import InvalidPathError, InvalidSyntaxError, InvalidValueError
from ._definitions import Attribute, AttrRef, ResourceType, Schema

__all__ = [
    "format_datetime",
    "normalize_attributes",
    "normalize_value",
    "parse_datetime",
]


def format_datetime(value: _dt.datetime) -> str:
    """Canonical ``dateTime`` text: UTC, millisecond precision, ``Z`` suffix.

    RFC 7643 §2.3.5: "A DateTime value (e.g., 2008-01-23T04:56:22Z)" encoded as xsd:dateTime.
    A fixed width makes text order equal instant order, which lets SQL backends compare
    and sort the stored text directly.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    value = value.astimezone(_dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_datetime(text: str) -> _dt.datetime:
    """Parse an xsd:dateTime (RFC 7643 §2.3.5) into an aware datetime; naive means UTC.

    Raises ValueError on anything else.
    """
    if not isinstance(text, str) or len(text) < 10 or len(text) > 64:
        raise ValueError("not a dateTime")
    value = _dt.datetime.fromisoformat(text.replace("z", "Z"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return value


_TRUE_STRINGS: Final = {"true": True, "false": False}


def normalize_value(
    attr: Attribute, value: Any, *, tolerant: bool = True, where: str | None = None
) -> Any:
    """Check ``value`` against ``attr``'s type and return it in canonical form.

    A multi-valued attribute takes a list (a lone value is wrapped when ``tolerant``);
    complex values are normalised with :func:`normalize_attributes` (unknown
    sub-attributes dropped). ``tolerant`` accepts the strings ``"True"``/``"False"`` for
    booleans (Entra ID sends them) and numeric strings for numbers. ``None`` passes
    through (it means "unassigned", RFC 7643 §2.5). Raises :class:`InvalidValueError`.
    """
    label = where or attr.name
    if value is None:
        return None
    if attr.multi_valued:
        if not isinstance(value, list):
            # A lone object where a list of objects is expected is wrapped (some clients
            # send a single email); a lone scalar is refused.
            if not (tolerant and attr.is_complex and isinstance(value, dict)):
                raise InvalidValueError(f"Attribute {label!r} is multi-valued; expected a list.")
            value = [value]
        return _normalize_many(attr, value, tolerant, label)
    if isinstance(value, list):
        raise InvalidValueError(f"Attribute {label!r} is single-valued; got a list.")
    return _normalize_single(attr, value, tolerant, label)


def _normalize_many(attr: Attribute, value: list[Any], tolerant: bool, label: str) -> list[Any]:
    """The values of the multi-valued ``attr``, each normalised (empty ones dropped)."""
    out = []
    # Per shape of object (its keys in order), the canonical name of each key, when
    # every key names a single-valued string sub-attribute or none (dropped): such an
    # object of strings is renamed in one step (a 10k-member group is 10k objects of
    # one shape), anything else goes the general way.
    shapes: dict[tuple[Any, ...], tuple[str | None, ...] | None] = {}
    is_complex = attr.is_complex
    for item in value:
        if item is None:
            continue
        if is_complex:
            if not isinstance(item, dict):
                raise InvalidValueError(f"Values of {label!r} must be objects.")
            keys = tuple(item)
            names = shapes.get(keys, _UNSEEN)
            if names is _UNSEEN:
                names = shapes[keys] = _string_shape(attr, keys)
            if names is not None:
                renamed: dict[str, Any] = {}
                for name, v in zip(names, item.values(), strict=True):
                    if type(v) is not str:
                        break
                    if name is not None:
                        renamed[name] = v
                else:
                    if renamed:
                        out.append(renamed)
                    continue
        one = _normalize_single(attr, item, tolerant, label)
        if one is not None and one != {}:
            out.append(one)
    return out


#: Marks a shape :func:`_normalize_many` has not planned yet (None: no plan).
_UNSEEN: Final[Any] = object()

#: The sub-attribute types whose string values :func:`_string` keeps as they are.
_STRING_TYPES: Final = frozenset(("string", "reference"))


def _string_shape(attr: Attribute, keys: tuple[Any, ...]) -> tuple[str | None, ...] | None:
    """The canonical name of each of ``keys`` (None: not a sub-attribute of ``attr``, so
    dropped), if each is a single-valued string sub-attribute or none; else None. Then an
    object with these keys whose values are all strings normalises to the same object
    renamed, as :func:`_normalize_complex` would make it, key by key."""
    names: list[str | None] = []
    for key in keys:
        sub = attr.sub(key) if isinstance(key, str) else None
        if sub is None:
            names.append(None)
        elif sub.type in _STRING_TYPES and not sub.multi_valued:
            names.append(sub.name)
        else:
            return None
    return tuple(names)


def _normalize_single(attr: Attribute, value: Any, tolerant: bool, label: str) -> Any:
    if attr.type == "complex":
        if not isinstance(value, dict):
            if tolerant and attr.sub("value") is not None and not isinstance(value, list):
                # Entra ID sends e.g. the enterprise ``manager`` as a bare id string.
                value = {"value": value}
            else:
                raise InvalidValueError(f"Attribute {label!r} is complex; expected an object.")
        return _normalize_complex(attr, value, tolerant, label)
    return _SCALARS[attr.type](value, tolerant, label)


def _string(value: Any, tolerant: bool, label: str) -> str:
    # RFC 7643 §2.3.1: "A sequence of zero or more Unicode characters encoded using
    # UTF-8". A JSON number is refused even when tolerant: its text is not what was sent
    # (1e999 would read as "inf", 1.50 as "1.5"), so storing it would change the data.
    if isinstance(value, str):
        return value
    raise InvalidValueError(f"Attribute {label!r} must be a string.")


def _boolean(value: Any, tolerant: bool, label: str) -> bool:
    # RFC 7643 §2.3.2: "The literal "true" or "false""; Entra ID sends "True"/"False".
    if isinstance(value, bool):
        return value
    if tolerant and isinstance(value, str) and value.strip().lower() in _TRUE_STRINGS:
        return _TRUE_STRINGS[value.strip().lower()]
    raise InvalidValueError(f"Attribute {label!r} must be a boolean.")


def _integer(value: Any, tolerant: bool, label: str) -> int:
    # RFC 7643 §2.3.4: "A decimal number with no fractional digits".
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if tolerant and isinstance(value, str) and _INTEGER_TEXT.match(value.strip()):
        return int(value.strip())
    raise InvalidValueError(f"Attribute {label!r} must be an integer.")


def _decimal(value: Any, tolerant: bool, label: str) -> int | float:
    # RFC 7643 §2.3.3: "A real number with at least one digit to the left and right of the
    # period"; JSON has no infinity or NaN, so neither is a decimal.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidValueError(f"Attribute {label!r} must be a finite number.")
        return value
    if tolerant and isinstance(value, str) and _DECIMAL_TEXT.match(value.strip()):
        number = float(value.strip())
        if math.isfinite(number):
            return number
    raise InvalidValueError(f"Attribute {label!r} must be a decimal number.")


def _date_time(value: Any, tolerant: bool, label: str) -> str:
    # RFC 7643 §2.3.5: "A DateTime value (e.g., 2008-01-23T04:56:22Z)", xsd:dateTime.
    try:
        return format_datetime(parse_datetime(value))
    except (ValueError, TypeError, OverflowError):
        raise InvalidValueError(f"Attribute {label!r} must be an xsd:dateTime.") from None


def _binary(value: Any, tolerant: bool, label: str) -> str:
    # RFC 7643 §2.3.6: "Arbitrary binary data [...] base64 encoded".
    if isinstance(value, str):
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
        else:
            return value
    raise InvalidValueError(f"Attribute {label!r} must be base64-encoded binary.")


#: Numeric text accepted in tolerant mode: ASCII digits only (``int()`` alone would also take
#: ``1_000`` and non-ASCII digits, which no identity provider means).
_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+\Z")
_DECIMAL_TEXT: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")

_SCALARS: Final[dict[str, Callable[[Any, bool, str], Any]]] = {
    "string": _string,
    "reference": _string,
    "boolean": _boolean,
    "integer": _integer,
    "decimal": _decimal,
    "dateTime": _date_time,
    "binary": _binary,
}


def _normalize_complex(
    attr: Attribute, value: Mapping[str, Any], tolerant: bool, label: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        sub = attr.sub(key) if isinstance(key, str) else None
        if sub is None:
            continue  # unknown sub-attributes are dropped, like unknown attributes
        norm = normalize_value(sub, item, tolerant=tolerant, where=f"{label}.{sub.name}")
        if norm is not None:
            out[sub.name] = norm
    return out


def normalize_attributes(
    rt: ResourceType,
    body: Mapping[str, Any],
    *,
    tolerant: bool = True,
    strict_unknown: bool = False,
    unknown: list[str] | None = None,
) -> dict[str, Any]:
    """Return ``body`` in canonical form for resource type ``rt``.

    Keys are matched case-insensitively (RFC 7643 §2.1) and respelled canonically;
    extension objects are keyed by their canonical URN; a URN-qualified top-level key
    (``urn:...:enterprise:2.0:User:employeeNumber``) is moved under its extension.
    ``schemas`` is kept as given. Unknown attributes are dropped and their names
    appended to ``unknown``, or, with ``strict_unknown``, rejected with 400
    ``invalidSyntax``. ``null`` values are kept as ``None`` (the caller decides what
    unassigned means). readOnly attributes are kept: the caller decides what to ignore.
    """
    if not isinstance(body, Mapping):
        raise InvalidSyntaxError("The resource must be a JSON object.")
    out: dict[str, Any] = {}

    def drop(name: str) -> None:
        if strict_unknown:
            raise InvalidSyntaxError(f"Unknown attribute {name!r} for resource type {rt.name}.")
        if unknown is not None:
            unknown.append(name)

    for key, value in body.items():
        if not isinstance(key, str):
            drop(str(key))
        elif key == "schemas":
            out["schemas"] = value
        elif (found := rt.top_level(key)) is not None:
            target = found[1]
            if isinstance(target, Schema):
                _normalize_extension(out, target, value, tolerant, drop)
            else:
                if target.is_complex and not target.multi_valued and isinstance(value, Mapping):
                    for k in value:
                        if isinstance(k, str) and target.sub(k) is None:
                            drop(f"{target.name}.{k}")
                out[target.name] = normalize_value(target, value, tolerant=tolerant)
        elif (ref := _urn_qualified(rt, key)) is not None:
            _assign_ref(out, ref, value, tolerant)
        else:
            drop(key)
    return out


def _urn_qualified(rt: ResourceType, key: str) -> AttrRef | None:
    """The attribute a URN-qualified top-level key names
    (``urn:...:enterprise:2.0:User:employeeNumber``), or None."""
    if not key.lower().startswith("urn:"):
        return None
    try:
        urn, rest = rt.split_urn(key)
    except InvalidPathError:
        return None
    if not rest:
        return None
    name, _, sub = rest.partition(".")
    return rt.resolve(urn, name, sub or None)


def _normalize_extension(
    out: dict[str, Any],
    ext: Schema,
    value: Any,
    tolerant: bool,
    drop: Callable[[str], None],
) -> None:
    """An extension object (RFC 7643 §3.3), keyed by its canonical URN in ``out``."""
    if value is None:
        out[ext.id] = None
        return
    if not isinstance(value, Mapping):
        raise InvalidValueError(f"Extension {ext.id!r} must be a JSON object.")
    ext_out = out.setdefault(ext.id, {})
    if not isinstance(ext_out, dict):
        ext_out = out[ext.id] = {}
    for ekey, evalue in value.items():
        attr = ext.attribute(ekey) if isinstance(ekey, str) else None
        if attr is None:
            drop(f"{ext.id}:{ekey}")
            continue
        ext_out[attr.name] = normalize_value(
            attr, evalue, tolerant=tolerant, where=f"{ext.id}:{attr.name}"
        )


def _assign_ref(out: dict[str, Any], ref: AttrRef, value: Any, tolerant: bool) -> None:
    container = out if ref.urn is None else out.setdefault(ref.urn, {})
    if ref.sub is None:
        container[ref.attribute.name] = normalize_value(
            ref.attribute, value, tolerant=tolerant, where=str(ref)
        )
        return
    parent = container.setdefault(ref.attribute.name, {})
    if not isinstance(parent, dict):
        raise InvalidValueError(f"Attribute {str(ref)!r} conflicts with another value.")
    parent[ref.sub.name] = normalize_value(ref.sub, value, tolerant=tolerant, where=str(ref))
