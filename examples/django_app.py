"""A single-file Django project.   Run:  python examples/django_app.py runserver 8000
Needs: pip install -e '.[django]' from a checkout (once released: pip install 'scim2-core[django]')

SCIM 2.0 at http://127.0.0.1:8000/scim/v2/, bearer token $SCIM_TOKEN (default "change-me"):

    curl -H "Authorization: Bearer change-me" http://127.0.0.1:8000/scim/v2/Users

In a real project: put SCIM2_CORE_ENGINE in settings.py and
``path("scim/v2/", include("scim2_core_django.urls"))`` in urls.py.
"""

import os
import sys

from django.conf import settings
from django.http import HttpResponse
from django.urls import include, path

from scim2_core import Engine, bearer_tokens
from scim2_core.backends import MemoryBackend

TOKEN = os.environ.get("SCIM_TOKEN", "change-me")


def make_engine() -> Engine:
    """Named by SCIM2_CORE_ENGINE; called once, on the first SCIM request."""
    return Engine(MemoryBackend(), authenticate=bearer_tokens([TOKEN]))


settings.configure(
    DEBUG=True,
    SECRET_KEY="example-only",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ],
    SCIM2_CORE_ENGINE=f"{__name__}.make_engine",
)


def home(request):
    return HttpResponse("The rest of your app. SCIM is at /scim/v2/\n", content_type="text/plain")


urlpatterns = [
    path("", home),
    path("scim/v2/", include("scim2_core_django.urls")),
]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
