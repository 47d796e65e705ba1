"""The Django app of ``benchmarks/django_models.py``: the models django-scim2 0.23 needs.

django-scim2 cannot serve a stock ``auth.User`` (every operation answers 500: it needs
``scim_id`` on the model), so, as its own test suite does, the user model is swapped for one
with its mixins, and its groups are a model with its group mixin. scim2-core's
``DjangoModelBackend`` maps the same user model (its extra columns are ignored) and
``auth.Group``, in a database of its own, so that neither side sees the other's writes.
"""
