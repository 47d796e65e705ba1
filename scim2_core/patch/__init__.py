"""SCIM PATCH (RFC 7644 §3.5.2): parse a PatchOp message once, then apply it to a resource dict.

:func:`parse_patch_request` validates the message and parses every path;
:func:`apply_patch` is a pure function from (resource, operations) to the new resource.
"""

from .._urns import PATCH_OP_URN
from ._apply import apply_patch
from ._members import patch_member_values
from ._message import PatchOperation, PatchOptions, parse_patch_request

__all__ = [
    "PATCH_OP_URN",
    "PatchOperation",
    "PatchOptions",
    "apply_patch",
    "parse_patch_request",
    "patch_member_values",
]
