"""Helpers of the Django ORM backend tests."""

from __future__ import annotations


def clean_tables(alias: str) -> None:
    """Empty every table the tests write, children first."""
    from django.contrib.auth.models import Group, User
    from scim2_django_testapp.models import Account, Club, EmailUser, Member, Team

    from scim2_core_django.models import ScimMemberDisplay, ScimResource, ScimUnique, ScimValue

    for model in (
        ScimMemberDisplay,
        ScimValue,
        ScimUnique,
        ScimResource,
        Team.members.through,
        Team,
        Club.members.through,
        Club,
        Member,
        Account,
        EmailUser,
        User.groups.through,
        Group,
        User,
    ):
        model.objects.using(alias).all()._raw_delete(alias)
