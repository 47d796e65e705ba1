"""An app's own user and team models, as an app would write them (no SCIM in sight)."""

from __future__ import annotations

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models


class Account(models.Model):
    username = models.CharField(max_length=150, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    email = models.EmailField(blank=True)
    is_active = models.BooleanField(default=True)
    employee_number = models.IntegerField(null=True, blank=True)
    work_email = models.CharField(max_length=200, blank=True)

    class Meta:
        app_label = "scim2_django_testapp"


class Team(models.Model):
    name = models.CharField(max_length=150)
    members = models.ManyToManyField(Account, related_name="teams", blank=True)

    class Meta:
        app_label = "scim2_django_testapp"


class EmailUser(AbstractBaseUser):
    """A custom user model with email as the login (as docs/guide-django-models.md shows)."""

    email = models.EmailField(unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)

    objects = BaseUserManager()

    USERNAME_FIELD = "email"

    class Meta:
        app_label = "scim2_django_testapp"


class Member(models.Model):
    """A user model with a UUID primary key (which the backend reads through the ORM)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    username = models.CharField(max_length=150, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    email = models.EmailField(blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        app_label = "scim2_django_testapp"


class Club(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=150)
    members = models.ManyToManyField(Member, related_name="clubs", blank=True)

    class Meta:
        app_label = "scim2_django_testapp"
