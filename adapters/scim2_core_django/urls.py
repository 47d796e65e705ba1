"""``include("scim2_core_django.urls")``: serves ``settings.SCIM2_CORE_ENGINE``.

The setting is resolved on the first request and cached, so importing the URLconf never
builds the engine.
"""

from __future__ import annotations

from . import scim_urlpatterns, settings_engine

app_name = "scim2_core"
urlpatterns = scim_urlpatterns(settings_engine)
