"""The state of :class:`~scim2_core_django.backend.DjangoModelBackend` and the helpers
every part of it uses: its mapped types, transactions, primary keys and statements.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections, transaction  # type: ignore[import-untyped]

from scim2_core import ConfigurationError, NotImplementedScimError, ResourceType
from scim2_core.backends import check_tenant

from ._backend_events import DjangoEvents
from ._backend_statements import _Statements
from ._backend_types import _plain, _Type


class _Core:
    """The backend's state (set by ``DjangoModelBackend.__init__``) and shared helpers."""

    using: str
    _resource: Any
    _value: Any
    _unique: Any
    _display: Any
    _types: dict[str, _Type]
    _local: threading.local
    _adopted_upto: dict[str, int]
    _totals: dict[str, int]
    #: ``{(type, filter path): (field, caseExact, unique label)}`` of ``_probe_search``
    _probe_shapes: dict[tuple[str, Any], tuple[str, bool, str]]
    _epoch: int
    _events: DjangoEvents
    _sqlite_lock: threading.RLock

    def _tenant(self, tenant: str | None) -> None:
        check_tenant(tenant)
        if tenant is not None:
            raise NotImplementedScimError(
                "This server stores SCIM resources in the application's own tables, "
                "which have no tenants."
            )

    def _type(self, tenant: str | None, rt: ResourceType) -> _Type:
        self._tenant(tenant)
        t = self._types.get(rt.name)
        if t is None or t.bm is None:
            raise ConfigurationError(f"DjangoModelBackend has no mapping for {rt.name!r}.")
        return t

    def _groups_holding(self, member: _Type) -> list[_Type]:
        return [
            g
            for g in self._types.values()
            if g.relation is not None and g.relation.member_type == member.name
        ]

    @contextmanager
    def _write(self) -> Iterator[None]:
        if connections[self.using].vendor == "sqlite":
            with self._sqlite_lock, transaction.atomic(using=self.using):
                yield
        else:
            with transaction.atomic(using=self.using):
                yield

    def _pk_text(self, t: _Type, pk: Any) -> str:
        """The primary key as the database's text of it (what ``CAST(pk AS text)`` gives)."""
        if type(pk) is int:
            return str(pk)
        prepared = t.model._meta.pk.get_db_prep_value(pk, connections[self.using])
        return str(prepared)

    def _pk_value(self, t: _Type, text: str) -> Any:
        if t.int_pk:
            return int(text)
        return t.model._meta.pk.to_python(text)

    def _statements(self, t: _Type) -> _Statements | None:
        """The type's fixed statements for this thread's connection, or None where the
        ORM's path is kept: a database other than SQLite and PostgreSQL, a primary key
        that is not an integer, a model inheriting another's table, or a default manager
        that filters rows."""
        cache: dict[str, _Statements | None] | None = getattr(self._local, "statements", None)
        if cache is None:
            cache = self._local.statements = {}
        connection = connections[self.using]
        if t.name in cache:
            found = cache[t.name]
            if found is None or found.connection is connection:
                return found
        made = _Statements(self, t, connection) if _plain(t, connection) else None
        cache[t.name] = made
        return made
