"""SCIM resources stored in an application's own SQLAlchemy models.

::

    from scim2_core import Engine
    from scim2_core.mapping import Field, Members, ResourceMapping
    from scim2_core.sqlalchemy import SQLAlchemyBackend

    backend = SQLAlchemyBackend(
        engine,                       # the app's sqlalchemy Engine (or its sessionmaker)
        [
            ResourceMapping(resource_type="User", model="User",
                            fields=(Field(attribute="userName", field="username"),)),
            ResourceMapping(resource_type="Group", model="Team",
                            fields=(Field(attribute="displayName", field="name"),),
                            members=Members(relation="members")),
        ],
        models=[User, Team],
    )
    scim = Engine(backend)

The mapping is the ORM-neutral vocabulary of :mod:`scim2_core.mapping`; this backend
compiles it to SQLAlchemy Core. SQLAlchemy (2.0 or later, the ``sqlalchemy`` extra) is
imported only by this package, which lives beside scim2_core as the adapters do.
"""

from ._backend import SQLAlchemyBackend

__all__ = ["SQLAlchemyBackend"]
