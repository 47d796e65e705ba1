"""Versions and timestamps: the one place that says how ``meta.version`` evolves.

RFC 7644 §3.14: "the service provider MUST [...] return an ETag [...] weak entity-tags" and
RFC 7643 §3.1 ``meta.version``: "The version of the resource being returned. This value must
be the same as the entity-tag (ETag) HTTP response header". Versions here are weak ETags
over a per-resource counter, ``W/"7"``: every write increments it, so compare-and-set on
the stored version is exact. Backends use :func:`touch` when a write of theirs changes a
resource the engine did not hand them (a deleted user leaving its groups; a user joining or
leaving a group, which changes its derived ``groups``).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from ._values import format_datetime

__all__ = ["first_version", "next_version", "now", "parse_etags", "touch", "version_number"]


def now() -> str:
    """The current instant in canonical ``dateTime`` form."""
    return format_datetime(_dt.datetime.now(_dt.UTC))


def first_version() -> str:
    return 'W/"1"'


def version_number(version: str | None) -> int:
    """The counter inside a version tag; 0 for anything unparseable."""
    if not version:
        return 0
    text = version[2:] if version.startswith("W/") else version
    text = text.strip('"')
    return int(text) if text.isdigit() else 0


def next_version(version: str | None) -> str:
    return f'W/"{version_number(version) + 1}"'


def touch(resource: dict[str, Any], when: str | None = None) -> None:
    """Bump ``meta.version`` and set ``meta.lastModified`` of ``resource`` in place."""
    meta = resource.setdefault("meta", {})
    meta["version"] = next_version(meta.get("version"))
    meta["lastModified"] = when or now()


def parse_etags(header: str) -> list[str] | None:
    """Parse an ``If-Match``/``If-None-Match`` value (RFC 7232 §3.1) into version tags.

    Returns None for ``*``; otherwise each entity-tag normalised to the weak form
    ``W/"x"`` that ``meta.version`` uses (SCIM compares versions weakly, RFC 7644 §3.14
    shows ``If-Match: W/"e180ee84f0671b1"``). Unquoted tokens are accepted as tags.
    """
    text = header.strip()
    if text == "*":
        return None
    tags: list[str] = []
    for part in text.split(","):
        tag = part.strip()
        if not tag:
            continue
        if tag[:2] in ("W/", "w/"):
            tag = tag[2:]
        tag = tag.strip()
        if len(tag) >= 2 and tag[0] == '"' and tag[-1] == '"':
            tag = tag[1:-1]
        tags.append(f'W/"{tag}"')
    return tags
