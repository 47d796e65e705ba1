"""django-scim2's models, shaped as its test suite's (``tests/models.py`` of django-scim2)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django_scim.models import AbstractSCIMGroupMixin, AbstractSCIMUserMixin


class ScimGroup(AbstractSCIMGroupMixin):
    name = models.CharField(max_length=80, unique=True)

    class Meta:
        app_label = "django_models_app"


class User(AbstractSCIMUserMixin, AbstractUser):
    scim_groups = models.ManyToManyField(ScimGroup, related_name="user_set")

    class Meta:
        app_label = "django_models_app"
