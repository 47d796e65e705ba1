"""Storage backends: the :class:`Backend` protocol, its implementations, and the rules every
backend applies (:func:`check_version`, :func:`check_new_members`, :func:`remove_member`, ...),
public so that a backend for another store inherits them instead of re-implementing them.
Its test suite is :mod:`scim2_core.testing`.
"""

from ._base import Backend, Change, MemberRows, Page, Position, SearchQuery, Seek, SortSpec
from ._memory import MemoryBackend
from ._outbox import change_events, touched_event
from ._rules import (
    check_new_members,
    check_tenant,
    check_version,
    derives_groups,
    last_modified,
    lists_members,
    member_ids,
    missing_members_error,
    now,
    remove_member,
    stored_version,
    touch,
)
from .sql import SQLBackend

__all__ = [
    "Backend",
    "Change",
    "MemberRows",
    "MemoryBackend",
    "Page",
    "Position",
    "SQLBackend",
    "SearchQuery",
    "Seek",
    "SortSpec",
    "change_events",
    "check_new_members",
    "check_tenant",
    "check_version",
    "derives_groups",
    "last_modified",
    "lists_members",
    "member_ids",
    "missing_members_error",
    "now",
    "remove_member",
    "stored_version",
    "touch",
    "touched_event",
]
