"""Ready mappings for Django's ``auth.User`` and ``auth.Group`` (and models shaped like them).

::

    from scim2_core_django.backend import DjangoModelBackend
    from scim2_core_django.mapping import AUTH_GROUP, AUTH_USER

    backend = DjangoModelBackend([AUTH_USER, AUTH_GROUP])     # the default

A custom user model with email as the login maps ``userName`` to its email field::

    user_mapping("accounts.User", user_name="email", email=None)

and a ``Team`` with ``members = ManyToManyField(User)`` is a group type of its own::

    ResourceMapping(resource_type="Group", model="teams.Team",
                    fields=(Field(attribute="displayName", field="name"),),
                    members=Members(relation="members"))
"""

from __future__ import annotations

from scim2_core.mapping import Field, Members, OnDelete, ResourceMapping, Unmapped

__all__ = ["AUTH_GROUP", "AUTH_USER", "group_mapping", "user_mapping"]


def user_mapping(
    model: str = "auth.User",
    *,
    user_name: str = "username",
    given_name: str | None = "first_name",
    family_name: str | None = "last_name",
    email: str | None = "email",
    active: str | None = "is_active",
    extra: tuple[Field, ...] = (),
    unmapped: Unmapped = "keep",
    on_delete: OnDelete = "delete",
) -> ResourceMapping:
    """The SCIM ``User`` onto a model shaped like ``auth.User`` (None leaves one out).

    ``emails[type eq "work"].value`` goes to ``email``; the other emails, and every other
    attribute no field holds, are kept beside the row (``unmapped="keep"``).
    """
    fields = [Field(attribute="userName", field=user_name)]
    if given_name:
        fields.append(Field(attribute="name.givenName", field=given_name))
    if family_name:
        fields.append(Field(attribute="name.familyName", field=family_name))
    if email:
        fields.append(Field(attribute='emails[type eq "work"].value', field=email))
    if active:
        fields.append(Field(attribute="active", field=active))
    return ResourceMapping(
        resource_type="User",
        model=model,
        fields=(*fields, *extra),
        unmapped=unmapped,
        on_delete=on_delete,
    )


def group_mapping(
    model: str = "auth.Group",
    *,
    display_name: str = "name",
    relation: str = "user_set",
    member_type: str = "User",
    unmapped: Unmapped = "keep",
) -> ResourceMapping:
    """The SCIM ``Group`` onto a model with a name and a many-to-many to the members."""
    return ResourceMapping(
        resource_type="Group",
        model=model,
        fields=(Field(attribute="displayName", field=display_name),),
        members=Members(relation=relation, member_type=member_type),
        unmapped=unmapped,
    )


#: ``auth.User``: userName, name.givenName, name.familyName, the work email, active.
AUTH_USER = user_mapping()
#: ``auth.Group``: displayName, and members through ``User.groups``.
AUTH_GROUP = group_mapping()
