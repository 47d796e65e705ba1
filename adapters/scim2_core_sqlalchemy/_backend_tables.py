"""scim2-core's bookkeeping tables on the app's database, beside (never inside) its tables.

For every app row that is a SCIM resource, ``<prefix>resources`` keeps its SCIM ``id``, the
version counter, ``meta.created`` and ``meta.lastModified``, a hash of the mapped field values
as SCIM last saw them (a change the app makes moves the version) and the *extras* (what no
field holds, as JSON). ``<prefix>values`` indexes the scalars of the extras so that filters on
them run in the database; ``<prefix>unique`` holds the normalised values of ``uniqueness:
server`` attributes under a unique constraint, so that the database decides which of two
concurrent creates wins; ``<prefix>member_display`` keeps the ``display`` a client gave a
group member. ``<prefix>schema`` records the layout's version, for migrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

#: The layout's version; ``<prefix>schema`` holds the one a database has.
LAYOUT_VERSION: Final = 1

#: Indexes of earlier releases that a newer one replaced (dropped when found).
REPLACED_INDEXES: Final = ("resource_order",)

#: The name (after the prefix) of the SQLite index a group's member read probes once per
#: association row: the app row's integer key first (an integer compared first, not the
#: type's text), covering the read (``deleted``, ``scim_id``; the row id is the rowid).
#: A 10k-member group's read took 6.7 ms with it, 9.3 ms on ``resource_int``.
MEMBER_INDEX: Final = "resource_member"

_ID = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True, slots=True)
class Tables:
    metadata: MetaData
    resource: Table
    value: Table
    unique: Table
    schema: Table
    display: Table


def make_tables(prefix: str) -> Tables:
    """The bookkeeping tables, named ``<prefix>resources`` and so on."""
    md = MetaData()
    resource = Table(
        f"{prefix}resources",
        md,
        Column("id", _ID, primary_key=True, autoincrement=True),
        Column("scim_id", String(255), nullable=False, unique=True),
        Column("resource_type", String(64), nullable=False),
        # The app row's primary key as text, and as an integer when it is one (joined
        # through an index both ways).
        Column("object_pk", String(255), nullable=False),
        Column("object_int", BigInteger, nullable=True),
        Column("version", BigInteger, nullable=False, default=1),
        Column("created", String(32), nullable=False),
        Column("last_modified", String(32), nullable=False),
        Column("content_hash", String(64), nullable=False, default=""),
        Column("extras", JSON, nullable=False),
        # Deleted over SCIM but the row kept (on_delete="deactivate"): hidden from SCIM.
        Column("deleted", Boolean, nullable=False, default=False),
        UniqueConstraint("resource_type", "object_pk", name=f"{prefix}resource_row"),
        Index(f"{prefix}resource_int", "resource_type", "object_int"),
        # The default order of a type's live resources, with the app row's key: a page and
        # its total walk this index alone (and probe the app's table by primary key).
        Index(
            f"{prefix}resource_page", "resource_type", "deleted", "created", "scim_id", "object_int"
        ),
        # SQLite only (the member read names it, ``INDEXED BY``); made on a database of an
        # earlier release at the backend's start, like every index of this table.
        Index(
            f"{prefix}{MEMBER_INDEX}", "object_int", "resource_type", "deleted", "scim_id"
        ).ddl_if(dialect="sqlite"),
    )
    value = Table(
        f"{prefix}values",
        md,
        Column("id", _ID, primary_key=True, autoincrement=True),
        Column("resource_id", _ID, ForeignKey(resource.c.id), nullable=False),
        Column("key", String(255), nullable=False),
        Column("sub", String(64), nullable=False),
        Column("position", Integer, nullable=False, default=0),
        Column("text", Text, nullable=True),
        Column("folded", Text, nullable=True),
        Column("number", Float, nullable=True),
        Column("flag", Boolean, nullable=True),
        Index(f"{prefix}value_owner", "resource_id", "key", "sub"),
        Index(f"{prefix}value_folded", "key", "sub", "folded"),
    )
    unique = Table(
        f"{prefix}unique",
        md,
        Column("id", _ID, primary_key=True, autoincrement=True),
        Column("resource_id", _ID, ForeignKey(resource.c.id), nullable=False),
        Column("resource_type", String(64), nullable=False),
        Column("attribute", String(255), nullable=False),
        Column("value", String(255), nullable=False),
        UniqueConstraint("resource_type", "attribute", "value", name=f"{prefix}unique_value"),
        Index(f"{prefix}unique_owner", "resource_id"),
    )
    # A member's ``display`` as the client wrote it in a group (the association row has no
    # room for it): one row per member that has one, so adding a member writes one row.
    display = Table(
        f"{prefix}member_display",
        md,
        Column("id", _ID, primary_key=True, autoincrement=True),
        Column("resource_id", _ID, ForeignKey(resource.c.id), nullable=False),
        Column("member_id", String(255), nullable=False),
        Column("display", Text, nullable=False),
        UniqueConstraint("resource_id", "member_id", name=f"{prefix}member_display_row"),
        Index(f"{prefix}member_display_id", "member_id"),
    )
    schema = Table(f"{prefix}schema", md, Column("version", Integer, nullable=False))
    return Tables(md, resource, value, unique, schema, display)
