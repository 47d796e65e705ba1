"""Mutability rules of RFC 7644 §3.5.2 shared by every kind of PATCH operation.

https://www.rfc-editor.org/rfc/rfc7644#section-3.5.2
"""

from __future__ import annotations

from typing import Any

from .._errors import MutabilityError
from ..schema import Attribute
from ._overlay import unassigned


def read_only(attr: Attribute, what: str, tolerant: bool) -> bool:
    """True if an add/replace of ``attr`` is to be ignored (tolerant) — else raises."""
    if attr.mutability != "readOnly":
        return False
    if tolerant:
        return True
    # RFC 7644 §3.5.2: "a client MUST NOT modify an attribute that has mutability
    # "readOnly" or "immutable"."
    raise MutabilityError(f"Attribute {what!r} is readOnly.")


def check_immutable(attr: Attribute, old: Any, new: Any, what: str) -> None:
    # RFC 7644 §3.5.2: "a client MAY "add" a value to an "immutable" attribute if the
    # attribute had no previous value."
    if attr.mutability == "immutable" and old is not None and old != new:
        raise MutabilityError(f"Attribute {what!r} is immutable and already has a value.")


def check_removable(attr: Attribute, old: Any, what: str | None = None) -> None:
    # §3.5.2.2: "If an attribute is removed or becomes unassigned and is defined as a
    # required attribute or a read-only attribute, the server SHALL return [...] a
    # "scimType" error code of "mutability"."
    if unassigned(old):
        return
    label = what or attr.name
    if attr.required:
        raise MutabilityError(f"Attribute {label!r} is required and cannot be removed.")
    if attr.mutability in ("readOnly", "immutable"):
        raise MutabilityError(f"Attribute {label!r} is {attr.mutability}.")


def clean_complex(
    attr: Attribute, value: dict[str, Any], what: str, tolerant: bool
) -> dict[str, Any]:
    """Drop (tolerant) or reject (strict) readOnly sub-attributes of a new complex value."""
    for sub in attr.sub_attributes:
        if sub.mutability == "readOnly" and sub.name in value:
            if not tolerant:
                raise MutabilityError(f"Attribute {what}.{sub.name!r} is readOnly.")
            value = {k: v for k, v in value.items() if k != sub.name}
    return value
