"""Binding: resolve a parsed filter against a resource type, with canonical spellings.

A bound tree has exactly the shape of the parsed one, but every :class:`AttrPath` is
spelled as the schema spells it: ``urn`` is the canonical extension URN or None for core and
common attributes (a core-schema URN prefix is dropped), ``name``/``sub`` canonical. Inside
a :class:`ValuePath` the paths stay relative (``AttrPath(None, "<sub name>")``). Values are
canonical too (``"True"`` for a boolean becomes ``True``; a ``dateTime`` literal becomes the
fixed-width UTC text of :func:`~scim2_core._schema.format_datetime`), so a backend can
compare stored values and columns directly. Binding a bound tree returns an equal tree.

Every semantic mistake raises :class:`~scim2_core.InvalidFilterError` (or
:class:`~scim2_core.InvalidPathError` from :func:`bind_path`) naming the attribute.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Final

from .._errors import InvalidFilterError, InvalidPathError, ScimError
from ..schema import Attribute, AttrRef, ResourceType, format_datetime, parse_datetime
from ._ast import (
    And,
    AttrPath,
    Compare,
    CompareOp,
    Filter,
    Not,
    Or,
    PatchPath,
    Present,
    Value,
    ValuePath,
)

__all__ = ["SCHEMAS_ATTRIBUTE", "bind", "bind_path", "bind_value_filter", "resolve_bound"]

#: ``schemas`` is no schema's attribute (RFC 7643 §3: it is in every resource), yet RFC
#: 7644 Figure 2 filters on it: ``filter=schemas eq "urn:...:enterprise:2.0:User"``.
SCHEMAS_ATTRIBUTE: Final = Attribute(
    name="schemas",
    type="reference",
    multi_valued=True,
    required=True,
    mutability="readOnly",
    returned="always",
    description="The schema URNs of the resource.",
)

_ORDER_OPS: Final = frozenset(("gt", "ge", "lt", "le"))
_STRING_OPS: Final = frozenset(("co", "sw", "ew"))
_BOOLEAN_STRINGS: Final = {"true": True, "false": False}
# The fractional-second digits after the sixth (the ones datetime drops).
_FRACTION: Final = re.compile(r"T[0-9:]+\.[0-9]{6}([0-9]+)")


def resolve_bound(path: AttrPath, rt: ResourceType) -> AttrRef | None:
    """The :class:`AttrRef` a (bound or unbound) top-level path names, or None."""
    if path.urn is None and path.sub is None and path.name.lower() == "schemas":
        return AttrRef(None, SCHEMAS_ATTRIBUTE)
    return rt.resolve(path.urn, path.name, path.sub)


def _resolve_top(
    path: AttrPath, rt: ResourceType, err: type[ScimError], check_returned: bool = True
) -> AttrRef:
    ref = resolve_bound(path, rt)
    if ref is None:
        raise err(f"Unknown attribute {str(path)!r} for resource type {rt.name}.")
    if check_returned and (
        ref.attribute.returned == "never" or (ref.sub is not None and ref.sub.returned == "never")
    ):
        # An attribute that is never returned must not be filterable either: a filter on
        # it would be an oracle for its value (e.g. ``password sw "a"``).
        raise err(f"Attribute {str(ref)!r} cannot be used in a filter.")
    return ref


def _check_value(
    attr: Attribute, op: CompareOp, value: Value, label: AttrRef, err: type[ScimError]
) -> Value:
    """Check that ``value`` can be compared with ``attr`` by ``op``; return it canonical."""
    if value is None:
        # RFC 7643 §2.5: "Unassigned attributes, the null value, or empty array [...] SHALL
        # be considered to be equivalent in "state"." We accept ``eq null`` (unassigned) and
        # ``ne null`` (assigned); ordering or substring tests against null mean nothing.
        if op not in ("eq", "ne"):
            raise err(f"Cannot compare '{label}' with null using {op!r}; use eq, ne or pr.")
        return None
    t = attr.type
    if op in _ORDER_OPS and t in ("boolean", "binary"):
        # RFC 7644 §3.4.2.2, Table 3 ("gt"): "Boolean and Binary attributes SHALL cause a
        # failed response (HTTP status code 400) with "scimType" of "invalidFilter"."
        raise err(f"Operator {op!r} cannot be used with {t} attribute '{label}'.")
    if t == "boolean":
        if isinstance(value, str) and value.strip().lower() in _BOOLEAN_STRINGS:
            # Okta sends roles[primary eq "True"]: a boolean spelled as a string.
            value = _BOOLEAN_STRINGS[value.strip().lower()]
        if not isinstance(value, bool):
            raise err(f"Attribute '{label}' is a boolean; compare it with true or false.")
        if op not in ("eq", "ne"):
            raise err(f"Operator {op!r} cannot be used with boolean attribute '{label}'.")
        return value
    if t in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise err(f"Attribute '{label}' is a number; compare it with a number.")
        if op in _STRING_OPS:
            raise err(f"Operator {op!r} applies to strings, not to {t} attribute '{label}'.")
        return value
    if not isinstance(value, str):
        raise err(f"Attribute '{label}' is a {t}; compare it with a quoted string.")
    if t == "dateTime":
        if op in _STRING_OPS:
            raise err(f"Operator {op!r} applies to strings, not to dateTime attribute '{label}'.")
        return _canonical_datetime(value, op, label, err)
    if t == "complex":  # pragma: no cover - _bind_compare rewrites or rejects complex first
        raise err(f"Attribute '{label}' is complex; compare one of its sub-attributes.")
    return value


def _beyond_microseconds(value: str) -> bool:
    fraction = _FRACTION.search(value)
    return fraction is not None and fraction.group(1).strip("0") != ""


def _canonical_datetime(value: str, op: CompareOp, label: AttrRef, err: type[ScimError]) -> str:
    """An xsd:dateTime literal as the fixed-width text stored dateTimes have.

    RFC 7644 §3.4.2.2 ("gt"): "for DateTime types, it is a chronological comparison".
    Stored values have millisecond precision (``format_datetime``), so a literal is
    rounded to the millisecond in the direction that keeps every comparison exact:
    down for gt/le/eq/ne, up for ge/lt (x >= 1.0005 ⟺ x >= 1.001 for whole milliseconds).
    xsd:dateTime allows any number of fractional digits (.NET sends seven:
    ``2015-10-10T14:38:21.8617979-07:00``); Python keeps six, so a non-zero digit beyond
    them counts as a remainder too.
    """
    try:
        when = parse_datetime(value)
        if op in ("ge", "lt") and (when.microsecond % 1000 or _beyond_microseconds(value)):
            when += _dt.timedelta(microseconds=1000 - when.microsecond % 1000)
        return format_datetime(when)
    except (ValueError, TypeError, OverflowError):
        raise err(
            f"Attribute '{label}' is a dateTime; {value!r} is not an xsd:dateTime "
            "(e.g. 2011-05-13T04:42:34Z)."
        ) from None


def _bind_leaf(
    node: Compare | Present, ref: AttrRef, bound: AttrPath, err: type[ScimError]
) -> Filter:
    if isinstance(node, Present):
        return Present(bound)
    target = ref.target
    if target.is_complex:
        # RFC 7644 §3.4.2.2: "For complex attributes, a fully qualified sub-attribute MUST
        # be specified using standard attribute notation" — yet its Figure 2 compares
        # ``emails co "example.com"``: a *multi-valued* complex attribute with a ``value``
        # sub-attribute is compared by that sub-attribute. A single-valued one (``name``,
        # the enterprise ``manager``) must name its sub-attribute.
        value_attr = target.sub("value") if ref.sub is None and target.multi_valued else None
        if value_attr is None:
            raise err(
                f"Attribute '{ref}' is complex; compare one of its sub-attributes "
                f"(e.g. {ref}.<name>)."
            )
        bound = AttrPath(bound.urn, bound.name, value_attr.name)
        target = value_attr
        ref = AttrRef(ref.urn, ref.attribute, value_attr)
    # ``ref`` is only rendered (str) when an error is raised.
    value = _check_value(target, node.op, node.value, ref, err)
    return Compare(bound, node.op, value)


def _bind_inner(node: Filter, parent: Attribute, label: str, err: type[ScimError]) -> Filter:
    """Bind a filter whose paths are relative to the complex attribute ``parent``."""
    if isinstance(node, (Compare, Present)):
        path = node.path
        sub = parent.sub(path.name) if path.urn is None and path.sub is None else None
        if sub is None:
            raise err(f"Unknown attribute {str(path)!r} in the value filter of {label!r}.")
        if sub.returned == "never":
            raise err(f"Attribute '{label}.{sub.name}' cannot be used in a filter.")
        # (``ref`` names the parent too, for error messages: "emails.type".)
        return _bind_leaf(node, AttrRef(None, parent, sub), AttrPath(None, sub.name), err)
    if isinstance(node, And):
        return And(
            _bind_inner(node.left, parent, label, err), _bind_inner(node.right, parent, label, err)
        )
    if isinstance(node, Or):
        return Or(
            _bind_inner(node.left, parent, label, err), _bind_inner(node.right, parent, label, err)
        )
    if isinstance(node, Not):
        return Not(_bind_inner(node.operand, parent, label, err))
    if isinstance(node, ValuePath):
        raise err(f"Value filters cannot be nested (inside {label!r}).")
    raise err(f"Not a filter node: {node!r}.")  # pragma: no cover - typed input


def _bind(node: Filter, rt: ResourceType, err: type[ScimError]) -> Filter:
    if isinstance(node, (Compare, Present)):
        ref = _resolve_top(node.path, rt, err)
        bound = AttrPath(ref.urn, ref.attribute.name, ref.sub.name if ref.sub is not None else None)
        return _bind_leaf(node, ref, bound, err)
    if isinstance(node, And):
        return And(_bind(node.left, rt, err), _bind(node.right, rt, err))
    if isinstance(node, Or):
        return Or(_bind(node.left, rt, err), _bind(node.right, rt, err))
    if isinstance(node, Not):
        return Not(_bind(node.operand, rt, err))
    if isinstance(node, ValuePath):
        ref = _resolve_top(node.path, rt, err)
        if ref.sub is not None or not ref.attribute.is_complex:
            raise err(
                f"A value filter needs a complex attribute; {str(ref)!r} is not one "
                "(RFC 7644 §3.4.2.2, Table 5)."
            )
        inner = _bind_inner(node.filter, ref.attribute, str(ref), err)
        return ValuePath(AttrPath(ref.urn, ref.attribute.name), inner)
    raise err(f"Not a filter node: {node!r}.")  # pragma: no cover - typed input


def bind(filter: Filter, rt: ResourceType) -> Filter:
    """Resolve ``filter`` against ``rt`` and return it with canonical spellings.

    Raises :class:`~scim2_core.InvalidFilterError` naming the attribute for unknown
    attributes, for ``returned: never`` attributes (no oracle on ``password``), for
    gt/ge/lt/le on boolean or binary attributes, and for a value whose type cannot be
    compared with the attribute's type.
    """
    return _bind(filter, rt, InvalidFilterError)


def bind_value_filter(filter: Filter, attr: Attribute) -> Filter:
    """Bind a filter relative to one value of the complex attribute ``attr``
    (``members[value eq "x"]``'s ``value eq "x"``)."""
    if not attr.is_complex:
        raise InvalidFilterError(f"A value filter needs a complex attribute; {attr.name!r} is not.")
    return _bind_inner(filter, attr, attr.name, InvalidFilterError)


def bind_path(path: PatchPath, rt: ResourceType) -> PatchPath:
    """Resolve a PATCH path against ``rt``, with canonical spellings.

    Raises :class:`~scim2_core.InvalidPathError` for unknown attributes and for a value
    filter on an attribute that is not complex. ``returned: never`` attributes may be
    targeted (``"path": "password"``), but not filtered on.
    """
    err = InvalidPathError
    ref = _resolve_top(path.attr, rt, err, check_returned=path.filter is not None)
    bound = AttrPath(ref.urn, ref.attribute.name, ref.sub.name if ref.sub is not None else None)
    if path.filter is None:
        if path.sub is not None:  # pragma: no cover - parse_path never builds this
            raise err(f"Invalid path {str(path)!r}.")
        return PatchPath(bound)
    if ref.sub is not None or not ref.attribute.is_complex:
        raise err(f"A value filter needs a complex attribute; {str(ref)!r} is not one.")
    inner = _bind_inner(path.filter, ref.attribute, str(ref), err)
    sub: str | None = None
    if path.sub is not None:
        sub_attr = ref.attribute.sub(path.sub)
        if sub_attr is None:
            raise err(f"Unknown attribute {ref!s}.{path.sub!r} for resource type {rt.name}.")
        sub = sub_attr.name
    return PatchPath(bound, inner, sub)
