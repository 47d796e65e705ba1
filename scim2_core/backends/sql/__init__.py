"""SQL storage: :class:`SQLBackend` on SQLite (stdlib) or PostgreSQL (psycopg 3), and the
outbox and audit log another SQL-backed backend (an ORM's, over an app's own database)
reuses instead of writing its own.

A backend that keeps the outbox and audit log in its database:

1. creates the tables, with the names and layout these statements give:
   :data:`OUTBOX_DDL` (and, on PostgreSQL, :data:`OUTBOX_SEQUENCE_DDL`), :data:`AUDIT_DDL`
   then :data:`AUDIT_EXCHANGE_DDL`;
2. writes a write's events last in that write's own transaction, on its DB-API
   connection: :func:`write_change` (the resource's own events, then one ``touched`` event
   per resource whose ``groups`` the write changed), or :func:`write_events` for events
   it built itself;
3. hands the delivery worker and the audit writer :class:`SQLEventStore` and
   :class:`SQLAuditStore` (its ``enable_outbox`` and ``enable_audit``), over a
   :class:`Dialect` subclass that opens connections of its own to the same database:
   it sets :attr:`Dialect.name` (``"sqlite"`` or ``"postgresql"``), the ``BEGIN``
   statements (:attr:`Dialect.begin_write`, :attr:`Dialect.begin_read`), and overrides
   :meth:`Dialect.connect` (a new DB-API connection in autocommit: the stores send
   ``BEGIN`` and ``COMMIT`` themselves) and :meth:`Dialect.sql` (the stores write ``?``
   placeholders; psycopg takes ``%s``). A connection is a :class:`Connection`.

``scim2_core_django`` and ``scim2_core_sqlalchemy`` do exactly this.
"""

from ._backend import SQLBackend
from ._dialect import Connection, Dialect
from ._outbox import (
    AUDIT_DDL,
    AUDIT_EXCHANGE_DDL,
    OUTBOX_DDL,
    OUTBOX_SEQUENCE_DDL,
    SQLAuditStore,
    SQLEventStore,
    write_change,
    write_events,
)

__all__ = [
    "AUDIT_DDL",
    "AUDIT_EXCHANGE_DDL",
    "OUTBOX_DDL",
    "OUTBOX_SEQUENCE_DDL",
    "Connection",
    "Dialect",
    "SQLAuditStore",
    "SQLBackend",
    "SQLEventStore",
    "write_change",
    "write_events",
]
