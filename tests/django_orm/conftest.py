"""Django settings for the ORM backend tests: SQLite (``default``) and PostgreSQL (``pg``).

Settings are configured when this file is imported (collection time), before any test runs,
so that they hold for every test of the session; they include what the adapter tests need
(``tests/adapters/adapter_clients.py`` configures only when nobody has). Each test starts on
empty tables (:func:`clean_tables`).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import django
import pytest
from django.conf import settings

from tests.helpers import scratch_dir

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "backends"))  # test_sql_differential's random filters

PG_NAME = f"scim2dj_{uuid.uuid4().hex[:12]}"
PG_URL = os.environ.get("SCIM2_CORE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SQLITE_PATH = str(scratch_dir("scim2dj-") / "test.db")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "scim2_core_django",
    "scim2_django_testapp",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": SQLITE_PATH,
        "OPTIONS": {"timeout": 30},
    },
    "pg": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": PG_NAME,
        "HOST": "127.0.0.1",
        "PORT": 5432,
        "USER": "postgres",
    },
    # the same database, with server-side binding and psycopg's prepared statements on
    "pg_prepared": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": PG_NAME,
        "HOST": "127.0.0.1",
        "PORT": 5432,
        "USER": "postgres",
        "OPTIONS": {"server_side_binding": True, "prepare_threshold": 0},
    },
}

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="not-secret-tests-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="scim2_core_django.urls",
        MIDDLEWARE=[
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
        ],
        APPEND_SLASH=True,
        USE_TZ=True,
        INSTALLED_APPS=INSTALLED_APPS,
        DATABASES=DATABASES,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
else:
    # Another folder's conftest (tests/adapters, for its views) configured Django first, with
    # no apps and no database. Add ours before any connection is made; the rest stays theirs.
    from django.apps import apps
    from django.db import connections

    settings.DATABASES = DATABASES
    settings.DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
    connections._settings = None
    connections.__dict__.pop("settings", None)
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, *INSTALLED_APPS]
    apps.set_installed_apps(settings.INSTALLED_APPS)


def _migrate(alias: str) -> None:
    from django.core.management import call_command

    call_command("migrate", database=alias, run_syncdb=True, verbosity=0)


@pytest.fixture(scope="session")
def sqlite_db() -> str:
    _migrate("default")
    return "default"


@pytest.fixture(scope="session")
def pg_db(postgres_url: str) -> Iterator[str]:
    import psycopg
    from django.db import connections

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{PG_NAME}"')
    try:
        _migrate("pg")
        yield "pg"
    finally:
        connections["pg"].close()
        connections["pg_prepared"].close()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test once on SQLite and once on PostgreSQL, on empty tables."""
    name = request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")
    from django_orm_helpers import clean_tables

    clean_tables(name)
    yield name
    clean_tables(name)
