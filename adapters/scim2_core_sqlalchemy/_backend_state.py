"""What every part of :class:`~._backend.SQLAlchemyBackend` shares: the state its
constructor sets up (:class:`State`, for the type checker) and small helpers (the digest of
an app row's mapped columns, chunks of ids, the ``meta.version`` text)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ._backend_events import Events
from ._backend_expressions import Compiler
from ._backend_reads import GroupsOfPlan, Prepared, ReadPlan
from ._backend_tables import Tables
from ._models import ModelType

_CHUNK = 500


def _hash(values: Mapping[str, Any], fields: Iterable[str]) -> str:
    """A digest of the mapped columns' values, to notice the app's changes."""
    data = repr([values.get(f) for f in (fields if isinstance(fields, tuple) else sorted(fields))])
    return hashlib.blake2b(data.encode(), digest_size=16).hexdigest()


def _dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


def _version(number: int) -> str:
    return f'W/"{number}"'


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class State:
    """The state :class:`~._backend.SQLAlchemyBackend` sets up in its constructor and at
    binding, shared by the mixins each module of the backend holds (declared here for
    the type checker; assigned by the backend's constructor and ``bind``)."""

    engine: sa.Engine
    _tables: Tables
    _prefix: str
    _compiler: Compiler
    _sqlite: bool
    _types: dict[str, ModelType]
    _plans: dict[str, ReadPlan]
    _groups_plans: dict[str, list[GroupsOfPlan]]
    _member_reads: dict[str, Prepared]
    _write_lock: threading.RLock
    _listening: bool
    _events: Events
    _local: threading.local
    _reads: sa.Engine
