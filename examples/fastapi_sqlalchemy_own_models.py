"""FastAPI + SQLAlchemy, SCIM onto the app's own models.   Run:  python examples/fastapi_sqlalchemy_own_models.py
Needs: pip install 'scim2-core[starlette,serve,sqlalchemy]' fastapi

The app keeps its users in its own ``User`` model and its teams in ``Team`` with a
``team_members`` association table; SCIM provisioning (Entra ID, Okta...) writes those rows.
scim2-core keeps its bookkeeping in tables of its own (``scim2_core_*``) in the same database.

    SCIM_EXAMPLE_DB    the SQLite file (default ./example.db), or a postgresql:// URL
    SCIM2_CORE_TOKEN   the bearer token identity providers send (default "change-me")
    PORT               the port (default 8000)

SCIM 2.0 at http://127.0.0.1:8000/scim/v2:

    curl -H "Authorization: Bearer change-me" http://127.0.0.1:8000/scim/v2/Users
"""

import os
from typing import Any

import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from scim2_core import Engine, bearer_tokens
from scim2_core.mapping import Field, Members, ResourceMapping
from scim2_core_sqlalchemy import SQLAlchemyBackend
from scim2_core_starlette import scim_app

DB = os.environ.get("SCIM_EXAMPLE_DB", "./example.db")
if DB.startswith("postgresql://"):
    DB_URL = DB.replace("postgresql://", "postgresql+psycopg://", 1)  # psycopg 3
else:
    DB_URL = f"sqlite:///{os.path.abspath(DB)}"
TOKEN = os.environ.get("SCIM2_CORE_TOKEN", "change-me")


class Base(DeclarativeBase):
    pass


# --- the app's own models, as the app already has them --------------------------------------

team_members = sa.Table(
    "team_members",
    Base.metadata,
    sa.Column("team_id", sa.ForeignKey("teams.id"), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), primary_key=True),
)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(255), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(255))
    first_name: Mapped[str | None] = mapped_column(sa.String(150))
    last_name: Mapped[str | None] = mapped_column(sa.String(150))
    display_name: Mapped[str | None] = mapped_column(sa.String(255))
    is_active: Mapped[bool] = mapped_column(default=True)

    teams: Mapped[list["Team"]] = relationship(secondary=team_members, back_populates="members")


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))

    members: Mapped[list[User]] = relationship(secondary=team_members, back_populates="teams")


db = sa.create_engine(DB_URL)
Base.metadata.create_all(db)  # the app's own tables, as the app creates them

# --- SCIM: which SCIM attribute lives in which column ----------------------------------------

USERS = ResourceMapping(
    resource_type="User",
    model="User",
    fields=(
        Field(attribute="userName", field="username"),
        Field(attribute='emails[type eq "work"].value', field="email"),
        Field(attribute="name.givenName", field="first_name"),
        Field(attribute="name.familyName", field="last_name"),
        Field(attribute="displayName", field="display_name"),
        Field(attribute="active", field="is_active"),
    ),
)
TEAMS = ResourceMapping(
    resource_type="Group",
    model="Team",
    fields=(Field(attribute="displayName", field="name"),),
    members=Members(relation="members"),
)
backend = SQLAlchemyBackend(db, [USERS, TEAMS], models=[User, Team])
engine = Engine(backend, authenticate=bearer_tokens([TOKEN]))

app = FastAPI()
app.mount("/scim/v2", scim_app(engine))


@app.get("/")
def home() -> dict[str, Any]:
    """The rest of the app: it reads its own tables as it always did."""
    with Session(db) as session:
        users = session.scalars(sa.select(User).order_by(User.id)).all()
        teams = session.scalars(sa.select(Team).order_by(Team.id)).all()
        return {
            "scim": "/scim/v2",
            "users": [{"username": u.username, "active": u.is_active} for u in users],
            "teams": [{"name": t.name, "members": [m.username for m in t.members]} for t in teams],
        }


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
