"""The Django app holding scim2-core's bookkeeping beside the app's own models.

Add ``"scim2_core_django"`` to ``INSTALLED_APPS`` (after ``django.contrib.auth``) and run
``migrate`` to use :class:`scim2_core_django.backend.DjangoModelBackend`.
"""

from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]


class Scim2CoreDjangoConfig(AppConfig):  # type: ignore[misc]
    """The ``scim2_core_django`` app: bookkeeping models and their migrations."""

    name = "scim2_core_django"
    label = "scim2_core_django"
    verbose_name = "SCIM 2.0 bookkeeping"
    default_auto_field = "django.db.models.BigAutoField"
