"""What every part of :class:`~._backend.SQLAlchemyBackend` shares: the state its
constructor sets up (:class:`State`, for the type checker) and small helpers (the digest of
an app row's mapped columns, chunks of ids, the ``meta.version`` text, a deep copy of a
resource)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ._backend_events import Events
from ._backend_expressions import Compiler
from ._backend_kept import KeptReads
from ._backend_reads import GroupsOfPlan, Prepared, ReadPlan
from ._backend_tables import Tables
from ._models import ModelType

_CHUNK = 500


def _hash(values: Mapping[str, Any], fields: Iterable[str]) -> str:
    """A digest of the mapped columns' values, to notice the app's changes."""
    return hash_text(
        repr([values.get(f) for f in (fields if isinstance(fields, tuple) else sorted(fields))])
    )


def hash_text(data: str) -> str:
    """The digest :func:`_hash` makes of the ``repr`` of the list of the values."""
    return hashlib.blake2b(data.encode(), digest_size=16).hexdigest()


def _dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


def _version(number: int) -> str:
    return f'W/"{number}"'


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (``dict`` and ``list`` exactly, as :func:`json.loads`
    builds them, around immutable scalars): what a write hands to the engine's ``change``
    function, which may change it in place. A shallow copy of each container, then only the
    nested containers are replaced: several times faster than :func:`copy.deepcopy` (no
    memo, no dispatch on arbitrary types), which shows on a large group."""
    kind = type(value)
    if kind is dict:
        out = value.copy()
        for key, item in value.items():
            if type(item) is dict or type(item) is list:
                out[key] = copy_json(item)
        return out
    if kind is list:
        return [
            copy_json(item) if type(item) is dict or type(item) is list else item for item in value
        ]
    return value


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
    #: The same reads without the order keys: the members' ids alone, in that order.
    _member_id_reads: dict[str, Prepared]
    _group_reads: dict[str, Prepared]
    #: The statements of writes compiled once (:meth:`Connections._prepared`), by key.
    _statements: dict[tuple[Any, ...], Prepared]
    _write_lock: threading.RLock
    _listening: bool
    _events: Events
    _local: threading.local
    _reads: sa.Engine
    #: The read connections kept per thread (:mod:`._backend_kept`), when used.
    _kept: KeptReads | None
