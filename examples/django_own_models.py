"""A single-file Django project whose SCIM users are ``auth.User`` and groups ``auth.Group``,
plus the app's own ``Team`` model (a many-to-many to users) served as ``/Teams``.

Run:   python examples/django_own_models.py runserver 127.0.0.1:8000
Needs: pip install 'scim2-core[django]'

The SQLite file is $SCIM_EXAMPLE_DB (default ./example.db; a postgresql:// URL works too),
created and migrated at start;
the bearer token is $SCIM2_CORE_TOKEN (default "change-me"). SCIM is at /scim/v2/:

    curl -H "Authorization: Bearer change-me" http://127.0.0.1:8000/scim/v2/Users

A user provisioned over SCIM is an ``auth.User`` (``python examples/django_own_models.py
shell -c "from django.contrib.auth.models import User; print(User.objects.all())"``), and a
user made with ``createsuperuser`` shows up over SCIM. See docs/guide-django-models.md.
"""

import os
import sys

import django
from django.apps import AppConfig
from django.conf import settings
from django.http import HttpResponse
from django.urls import include, path

TOKEN = os.environ.get("SCIM2_CORE_TOKEN", "change-me")
DB = os.environ.get("SCIM_EXAMPLE_DB", "example.db")
TEAM_URN = "urn:example:params:scim:schemas:2.0:Team"


def database(spec: str) -> dict:
    """A SQLite file, or a ``postgresql://user@host:port/name`` URL.

    Either way a thread keeps its connection for a minute between requests
    (``CONN_MAX_AGE``): an IdP sends its requests on a kept-alive connection, which one thread
    serves, and a new PostgreSQL connection per request would cost more than the request.
    """
    if spec.startswith("postgresql://"):
        from urllib.parse import urlsplit

        url = urlsplit(spec)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": url.path.lstrip("/"),
            "USER": url.username or "",
            "PASSWORD": url.password or "",
            "HOST": url.hostname or "",
            "PORT": url.port or "",
            "CONN_MAX_AGE": 60,
        }
    # Writers take SQLite's lock when their transaction starts, not half-way through it.
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": spec,
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        "CONN_MAX_AGE": 60,
    }


class ExampleConfig(AppConfig):
    """This file is the app: its models (``Team``) live under the label ``example``."""

    name = "__main__"
    label = "example"
    default_auto_field = "django.db.models.BigAutoField"


settings.configure(
    DEBUG=False,
    SECRET_KEY="example-only",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ],
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "scim2_core_django",  # scim2-core's bookkeeping tables, beside the app's
        f"{__name__}.ExampleConfig",
    ],
    DATABASES={"default": database(DB)},
    USE_TZ=True,
    SCIM2_CORE_ENGINE=f"{__name__}.make_engine",
)
django.setup()

from django.apps import apps  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import models  # noqa: E402

from scim2_core import Engine, ResourceType, Schema, bearer_tokens  # noqa: E402
from scim2_core.mapping import Field, Members, ResourceMapping  # noqa: E402
from scim2_core_django.backend import DjangoModelBackend  # noqa: E402
from scim2_core_django.mapping import AUTH_GROUP, AUTH_USER  # noqa: E402


class Team(models.Model):
    """The app's own model: SCIM adds nothing to it."""

    name = models.CharField(max_length=150)
    members = models.ManyToManyField(User, related_name="teams", blank=True)

    class Meta:
        app_label = "example"


# A single-file project: this module is the app's models module (migrate creates its tables).
apps.get_app_config("example").models_module = sys.modules[__name__]


def make_engine() -> Engine:
    """Named by SCIM2_CORE_ENGINE; built on the first SCIM request."""
    from scim2_models import EnterpriseUser, Group
    from scim2_models import User as ScimUser

    from scim2_core.schema import resource_type_from_model

    group = resource_type_from_model(Group)
    team = ResourceType(
        name="Team",
        endpoint="/Teams",
        description="The app's teams",
        schema=Schema(
            id=TEAM_URN,
            name="Team",
            attributes=tuple(
                a for a in group.schema.attributes if a.name in ("displayName", "members")
            ),
        ),
    )
    teams = ResourceMapping(
        resource_type="Team",
        model="example.Team",
        fields=(Field(attribute="displayName", field="name"),),
        members=Members(relation="members", member_type="User"),
    )
    backend = DjangoModelBackend([AUTH_USER, AUTH_GROUP, teams])
    return Engine(
        backend,
        resource_types=[ScimUser[EnterpriseUser], Group, team],
        authenticate=bearer_tokens([TOKEN]),
    )


def home(request):
    return HttpResponse("The rest of your app. SCIM is at /scim/v2/\n", content_type="text/plain")


urlpatterns = [
    path("", home),
    path("scim/v2/", include("scim2_core_django.urls")),
]

if __name__ == "__main__":
    from django.core.management import call_command, execute_from_command_line

    call_command("migrate", verbosity=0)  # auth, scim2_core_django
    call_command("migrate", run_syncdb=True, verbosity=0)  # this file's Team (no migrations)
    make_engine()  # a mapping error stops here, at start-up, naming what is wrong
    execute_from_command_line(sys.argv)
