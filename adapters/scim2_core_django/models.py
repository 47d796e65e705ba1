"""scim2-core's bookkeeping, in tables of its own, joined to the app's rows by primary key.

The app's models are never changed. For every app row that is a SCIM resource,
:class:`ScimResource` keeps its SCIM ``id``, ``meta.version`` (a counter), ``meta.created``
and ``meta.lastModified``, a hash of the mapped field values as last written or seen (a
change made by the app moves the version, see the backend), and the *extras*: everything the
mapping holds in no field, as JSON. :class:`ScimValue` indexes the scalars of the extras so
that filters on them run in the database; :class:`ScimUnique` holds the normalised values of
``uniqueness: server`` attributes under a unique constraint, so that the database, not a
read-then-write race, decides which of two concurrent creates wins.
:class:`ScimMemberDisplay` keeps the ``display`` a client gave a group member.
"""

from __future__ import annotations

from django.db import models  # type: ignore[import-untyped]


class ScimResource(models.Model):  # type: ignore[misc]
    """One SCIM resource: an app row (``resource_type``, ``object_pk``) and its SCIM state."""

    scim_id = models.CharField(max_length=255, unique=True)
    resource_type = models.CharField(max_length=64)
    object_pk = models.CharField(max_length=255)
    version = models.BigIntegerField(default=1)
    created = models.CharField(max_length=32)
    last_modified = models.CharField(max_length=32)
    content_hash = models.CharField(max_length=64, default="")
    extras = models.JSONField(default=dict)
    #: Deleted over SCIM but the row kept (``on_delete="deactivate"``): hidden from SCIM.
    deleted = models.BooleanField(default=False)

    class Meta:
        app_label = "scim2_core_django"
        constraints = [
            models.UniqueConstraint(
                fields=["resource_type", "object_pk"], name="scim2_core_resource_row"
            )
        ]
        indexes = [
            # the default order of a listing: meta.created, then id
            models.Index(
                fields=["resource_type", "deleted", "created", "scim_id"],
                name="scim2_core_resource_order",
            )
        ]


class ScimValue(models.Model):  # type: ignore[misc]
    """One scalar of a resource's extras: attribute ``key``, ``sub``, element ``index``."""

    resource = models.ForeignKey(ScimResource, on_delete=models.CASCADE, related_name="values")
    key = models.CharField(max_length=255)
    sub = models.CharField(max_length=64)
    index = models.IntegerField(default=0)
    text = models.TextField(null=True)
    folded = models.TextField(null=True)
    number = models.FloatField(null=True)
    flag = models.BooleanField(null=True)

    class Meta:
        app_label = "scim2_core_django"
        indexes = [
            models.Index(fields=["resource", "key", "sub"], name="scim2_core_value_owner"),
            models.Index(fields=["key", "sub", "folded"], name="scim2_core_value_folded"),
        ]


class ScimUnique(models.Model):  # type: ignore[misc]
    """A taken value of a unique attribute (lowercased unless the attribute is caseExact)."""

    resource = models.ForeignKey(ScimResource, on_delete=models.CASCADE, related_name="uniques")
    resource_type = models.CharField(max_length=64)
    attribute = models.CharField(max_length=255)
    value = models.CharField(max_length=255)

    class Meta:
        app_label = "scim2_core_django"
        constraints = [
            models.UniqueConstraint(
                fields=["resource_type", "attribute", "value"], name="scim2_core_unique_value"
            )
        ]


class ScimMemberDisplay(models.Model):  # type: ignore[misc]
    """A member's ``display`` as the client wrote it in a group (the relation row has no
    room for it); one row per member that has one, so adding a member writes one row."""

    resource = models.ForeignKey(
        ScimResource, on_delete=models.CASCADE, related_name="member_displays"
    )
    member_id = models.CharField(max_length=255)
    display = models.TextField()

    class Meta:
        app_label = "scim2_core_django"
        constraints = [
            models.UniqueConstraint(
                fields=["resource", "member_id"], name="scim2_core_member_display"
            )
        ]
        indexes = [models.Index(fields=["member_id"], name="scim2_core_member_display_id")]
