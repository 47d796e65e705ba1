"""An app's own SQLAlchemy models, as an app would write them (no SCIM in sight)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from scim2_core.mapping import Field, Members, ResourceMapping


class Base(DeclarativeBase):
    pass


team_members = sa.Table(
    "app_team_members",
    Base.metadata,
    sa.Column("team_id", sa.ForeignKey("app_team.id"), primary_key=True),
    sa.Column("account_id", sa.ForeignKey("app_account.id"), primary_key=True),
)


class Account(Base):
    __tablename__ = "app_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(150), unique=True)
    first_name: Mapped[str] = mapped_column(sa.String(150), default="")
    last_name: Mapped[str] = mapped_column(sa.String(150), default="")
    email: Mapped[str] = mapped_column(sa.String(254), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    employee_number: Mapped[int | None] = mapped_column(default=None)
    work_email: Mapped[str] = mapped_column(sa.String(200), default="")

    teams: Mapped[list[Team]] = relationship(secondary=team_members, back_populates="members")


class Team(Base):
    __tablename__ = "app_team"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(150))

    members: Mapped[list[Account]] = relationship(secondary=team_members, back_populates="teams")


MODELS = (Account, Team)

ACCOUNT = ResourceMapping(
    resource_type="User",
    model="Account",
    fields=(
        Field(attribute="userName", field="username"),
        Field(attribute="name.givenName", field="first_name"),
        Field(attribute="name.familyName", field="last_name"),
        Field(attribute='emails[type eq "work"].value', field="email"),
        Field(attribute="active", field="is_active"),
    ),
)
TEAM = ResourceMapping(
    resource_type="Group",
    model="Team",
    fields=(Field(attribute="displayName", field="name"),),
    members=Members(relation="members"),
)


def clean(engine: sa.Engine) -> None:
    """Empty the app's tables and scim2-core's, children first."""
    with engine.begin() as conn:
        names = set(sa.inspect(conn).get_table_names())
        for name in (
            "scim2_core_values",
            "scim2_core_member_display",
            "scim2_core_unique",
            "scim2_core_resources",
            "app_team_members",
            "app_team",
            "app_account",
        ):
            if name in names:
                conn.execute(sa.text(f'DELETE FROM "{name}"'))


#: What enabling the outbox and the audit log creates in the app's database.
EVENT_TABLES = (
    "scim_outbox",
    "scim_outbox_head",
    "scim_outbox_consumers",
    "scim_outbox_failed",
    "scim_audit",
    "scim_audit_head",
)
