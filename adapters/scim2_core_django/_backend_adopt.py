"""The app's own changes, seen by :class:`~scim2_core_django.backend.DjangoModelBackend`:
its signals (``post_save``, ``post_delete``, ``m2m_changed``) and the adoption of rows it
made without them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db import connections, models  # type: ignore[import-untyped]
from django.db.models import Exists, F, Max, OuterRef  # type: ignore[import-untyped]
from django.db.models.functions import (  # type: ignore[import-untyped]
    Cast,
)

from scim2_core.schema import now

from ._backend_types import (
    _ANALYZE_AFTER,
    _INTEGER_PKS,
    _OWN_SAVE,
    _UNREAD,
    _hash,
    _ReadBk,
    _strip_meta,
    _Type,
    _visible,
)
from ._backend_writes import _Writes


class _Adoption(_Writes):
    """Following the app's changes to its rows and relations."""

    def _on_m2m_changed(
        self, sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kw: Any
    ) -> None:
        """The app changed a membership through a relation's manager: touch both sides."""
        if action not in ("post_add", "post_remove", "pre_clear"):
            return
        for group in self._types.values():
            rel = group.relation
            if rel is None or rel.through is not sender:
                continue
            member_t = self._types[rel.member_type]
            side_is_group = isinstance(instance, group.model) and not (
                group.model is member_t.model and reverse
            )
            own_type, other_type = (
                (group.name, rel.member_type) if side_is_group else (rel.member_type, group.name)
            )
            others = list(pk_set or ())
            if action == "pre_clear":
                mine, theirs = (
                    (rel.group_col, rel.member_col)
                    if side_is_group
                    else (rel.member_col, rel.group_col)
                )
                others = list(
                    rel.through.objects.using(self.using)
                    .filter(**{mine: instance.pk})
                    .values_list(theirs, flat=True)
                )
            when = now()
            self._touch(own_type, [instance.pk], when)
            self._touch(other_type, others, when)

    def _on_post_save(
        self,
        sender: Any,
        instance: Any,
        created: bool,
        using: str | None = None,
        update_fields: Any = None,
        **kw: Any,
    ) -> None:
        """The app saved a row: a new one gets its SCIM id and version at once (in the
        app's transaction); a change to a mapped field moves the version (RFC 7644 §3.14)
        and the values the uniqueness and ``userName eq`` lookups read."""
        if using != self.using or getattr(_OWN_SAVE, "active", False):
            return
        self._epoch += 1  # e.g. a group renamed: its display in groups changes
        for t in self._types.values():
            if t.model is not sender or t.bm is None:
                continue
            one = t.model.objects.using(self.using).filter(pk=instance.pk)
            if created:
                self._adopt_rows(t, one)
                continue
            if update_fields is not None and not set(update_fields) & set(t.fields):
                return  # e.g. last_login at each login
            row = next(iter(one.values("pk", *t.fields)), None)
            bk = self._resource.objects.using(self.using).filter(
                resource_type=t.name, object_pk=self._pk_text(t, instance.pk), deleted=False
            )
            found = next(iter(bk[:1]), None)
            if row is not None and found is not None:
                digest = _hash(row, t.fields)
                if digest != found.content_hash:
                    self._app_changed(t, found, row, digest)

    def _on_post_delete(self, sender: Any, instance: Any, **kw: Any) -> None:
        """The app deleted a row: its SCIM resource is gone (bookkeeping, cascade)."""
        self._epoch += 1
        for t in self._types.values():
            if t.model is sender:
                self._resource.objects.using(self.using).filter(
                    resource_type=t.name, object_pk=self._pk_text(t, instance.pk)
                ).delete()

    def _stored_row(self, t: _Type, pk: Any) -> dict[str, Any]:
        """The mapped fields of the app's row ``pk`` as the database gives them back."""
        found = t.model.objects.using(self.using).filter(pk=pk).values("pk", *t.fields)
        return next(iter(found), {"pk": pk})

    def _adopt(self, t: _Type, top: Any = _UNREAD) -> bool:
        """Give every app row without bookkeeping an id and version; True if it may have
        given some (a search already run should then run again).

        Rows the app saves get theirs at once (``post_save``); this catches the rows made
        without signals (``bulk_create``, fixtures, SQL). With an integer primary key, one
        ``MAX(pk)`` (``top``, when the caller read it with its own statement) tells whether
        rows were added since the last look, and only those are examined; otherwise two
        counts tell whether there is anything to do (the app's deletes remove the
        bookkeeping through ``post_delete``).
        """
        upto = self._adopted_upto.get(t.name)
        incremental = t.model._meta.pk.get_internal_type() in _INTEGER_PKS
        if incremental and upto is not None:
            sql = self._statements(t)
            if top is not _UNREAD:
                pass
            elif sql is not None:  # MAX(pk) on the primary key's index, no queryset built
                with sql.connection.cursor() as cursor:
                    cursor.execute(sql.top)
                    top = cursor.fetchone()[0]
            else:
                top = t.model.objects.using(self.using).aggregate(top=Max("pk"))["top"]
            if top is None or top <= upto:
                return False
            self._adopt_rows(t, t.model.objects.using(self.using).filter(pk__gt=upto))
            self._adopted_upto[t.name] = top
            return True
        top = None
        if incremental:  # PostgreSQL has no MAX() of a uuid
            top = t.model.objects.using(self.using).aggregate(top=Max("pk"))["top"]
        rows = self._resource.objects.using(self.using).filter(resource_type=t.name)
        have, want = rows.count(), t.model.objects.using(self.using).count()
        if have > want:  # rows deleted behind Django's back (raw SQL): forget them
            alive = (
                t.model.objects.using(self.using)
                .annotate(_pk_text=Cast("pk", models.CharField()))
                .filter(_pk_text=OuterRef("object_pk"))
            )
            rows.filter(~Exists(alive)).delete()
        if have != want:
            self._adopt_rows(t, t.model.objects.using(self.using))
        if incremental and top is not None:
            self._adopted_upto[t.name] = top
        return bool(have != want)

    def _adopt_rows(self, t: _Type, candidates: Any) -> None:
        """Bookkeeping for the rows of ``candidates`` that have none."""
        known = self._resource.objects.using(self.using).filter(
            resource_type=t.name, object_pk=OuterRef("_pk_text")
        )
        missing = list(
            candidates.annotate(_pk_text=Cast("pk", models.CharField()))
            .filter(~Exists(known))
            .values("pk", *t.fields)
        )
        for start in range(0, len(missing), 5000):  # SQLite's limit of parameters
            self._adopt_chunk(t, missing[start : start + 5000])
        if len(missing) >= _ANALYZE_AFTER:
            self._analyze()

    def _analyze(self) -> None:
        """Fresh planner statistics for the bookkeeping tables after many rows arrived at
        once: without them PostgreSQL may probe a row's bookkeeping through the listing
        index instead of the (type, primary key) one, a scan per row."""
        connection = connections[self.using]
        with connection.cursor() as cursor:
            for model in (self._resource, self._unique):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")

    def _adopt_chunk(self, t: _Type, missing: list[dict[str, Any]]) -> None:
        """Bookkeeping for app rows: the extras and value index a SCIM write of the row as
        read would store (so the first PATCH of an app-made row rewrites no index)."""
        if not missing:
            return
        when = now()
        fresh = []
        resources: dict[str, dict[str, Any]] = {}
        for row in missing:
            resource = t.bound.read(row, {})
            resource["meta"] = {"resourceType": t.name}  # as _read_rows gives it
            try:
                extras = _strip_meta(t.bound.write(resource)[1], {})
            except Exception:  # e.g. a to_model refusing a value the app stored
                extras = {}  # written by the row's first SCIM write instead
            bk = self._resource(
                scim_id=str(uuid.uuid4()),
                resource_type=t.name,
                object_pk=self._pk_text(t, row["pk"]),
                version=1,
                created=when,
                last_modified=when,
                content_hash=_hash(row, t.fields),
                extras=extras,
            )
            fresh.append(bk)
            resources[bk.scim_id] = resource
        self._resource.objects.using(self.using).bulk_create(fresh, ignore_conflicts=True)
        # the rows made here (not those another writer adopted at the same time)
        made = list(self._resource.objects.using(self.using).filter(scim_id__in=list(resources)))
        values = [v for bk in made for v in self._value_rows(t, bk, bk.extras)]
        if values:
            self._value.objects.using(self.using).bulk_create(values)
        if t.uniques:
            uniques = [
                self._unique(resource=bk, resource_type=t.name, attribute=u.label, value=key[:255])
                for bk in made
                for u in t.uniques
                for key in u.keys(resources[bk.scim_id])
            ]
            self._unique.objects.using(self.using).bulk_create(uniques, ignore_conflicts=True)

    def _app_changed(self, t: _Type, bk: Any, row: Mapping[str, Any], digest: str) -> None:
        """The app changed the mapped fields of ``row``: move the version of its
        bookkeeping row ``bk`` (a model instance, or a ``_ReadBk`` updated in place)."""
        if isinstance(bk, _ReadBk):
            instance = bk.row(self._resource, self.using)
            self._app_changed(t, instance, row, digest)
            for name in ("version", "last_modified", "content_hash", "extras", "deleted"):
                setattr(bk, name, getattr(instance, name))
            return
        when = now()
        done = (
            self._resource.objects.using(self.using)
            .filter(pk=bk.pk, content_hash=bk.content_hash)
            .update(version=F("version") + 1, last_modified=when, content_hash=digest)
        )
        if done:
            bk.version += 1
            bk.last_modified = when
            bk.content_hash = digest
            if t.uniques:
                resource = t.bound.read(*_visible(row, bk.extras))
                self._write_uniques(t, bk, resource, replace=True, strict=False)
        else:
            bk.refresh_from_db(using=self.using)
