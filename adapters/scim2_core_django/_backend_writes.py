"""The write helpers of :class:`~scim2_core_django.backend.DjangoModelBackend`: locking,
the app's fields, the bookkeeping, uniqueness, the value index and the members relation.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from django.core.exceptions import (  # type: ignore[import-untyped]
    ValidationError,
)
from django.db import IntegrityError, connections, transaction  # type: ignore[import-untyped]
from django.db.models import F  # type: ignore[import-untyped]
from django.db.models.functions import (  # type: ignore[import-untyped]
    Lower,
)

from scim2_core import InvalidValueError, NotFoundError, UniquenessError
from scim2_core.backends import missing_members_error

from ._backend_filters import _Filters
from ._backend_statements import _groups_read
from ._backend_types import (
    _TEXT_FIELDS,
    _UNSET,
    _chunks,
    _convert,
    _Groups,
    _marker_column,
    _own_save,
    _Relation,
    _Type,
)


class _Writes(_Filters):
    """Writing rows: the app's, the bookkeeping's and the relation's."""

    def _save_bk(self, t: _Type, bk: Any, names: Sequence[str]) -> None:
        """Write the bookkeeping row's columns ``names`` (one UPDATE, no queryset built)."""
        statement = self._bk_update(t, bk, names)
        if statement is None:
            bk.save(using=self.using, update_fields=names)
            return
        with connections[self.using].cursor() as cursor:
            cursor.execute(*statement)

    def _bk_update(self, t: _Type, bk: Any, names: Sequence[str]) -> tuple[str, list[Any]] | None:
        """``(UPDATE, params)`` writing the bookkeeping row's columns ``names``, or None
        where the ORM's path is kept (see ``_statements``)."""
        sql = self._statements(t)
        if sql is None:
            return None
        opts = self._resource._meta
        connection = sql.connection
        q = connection.ops.quote_name
        params = [
            opts.get_field(name).get_db_prep_save(getattr(bk, name), connection) for name in names
        ]
        assignments = ", ".join(f"{q(opts.get_field(n).column)} = %s" for n in names)
        return sql.save_bk.format(assignments), [*params, bk.pk]

    def _lock(self, t: _Type, id: str) -> tuple[Any, Any, _Groups]:
        """The bookkeeping row and the app's instance of ``id``, locked for the write
        (row locks on PostgreSQL; on SQLite the write holds the database), and the
        groups holding it when the statement read them (see ``_groups_columns``)."""
        sql = self._statements(t)
        if sql is not None:  # both rows in one statement
            with sql.connection.cursor() as cursor:
                cursor.execute(sql.lock, [*sql.gparams, id, t.name, False])
                raw = cursor.fetchone()
            if raw is not None:
                values = _convert(raw, sql.lock_conv, sql.connection)
                bk = self._resource.from_db(self.using, sql.bk_names, values[: sql.width])
                end = sql.width + len(sql.all_names)
                instance = t.model.from_db(self.using, sql.all_names, values[sql.width : end])
                groups = {instance.pk: _groups_read(values[end:])} if sql.groups else None
                return bk, instance, groups
            # not found, or the app deleted its row: the ORM's path below tells which
        bk = (
            self._resource.objects.using(self.using)
            .select_for_update()
            .filter(scim_id=id, resource_type=t.name, deleted=False)
            .first()
        )
        if bk is None:
            raise NotFoundError(f"{t.name} {id!r} not found.")
        instance = (
            t.model.objects.using(self.using)
            .select_for_update()
            .filter(pk=self._pk_value(t, bk.object_pk))
            .first()
        )
        if instance is None:  # the app deleted the row
            bk.delete(using=self.using)
            raise NotFoundError(f"{t.name} {id!r} not found.")
        return bk, instance, None

    def _member_pks(
        self,
        rel: _Relation,
        ids: Iterable[str],
        *,
        strict: bool = True,
        known: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``{member id: app pk}``; with ``strict``, 400 ``invalidValue`` for ids that are
        not live resources of the member type (RFC 7643 §4.2: "Identifier of the member").
        ``known``: pks this write's transaction already read (see :meth:`_some_members`)."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        if known is not None and all(id in known for id in ids):
            return {id: known[id] for id in ids}
        member_t = self._types[rel.member_type]
        sql = self._statements(member_t)
        if sql is not None:  # one statement: the bookkeeping joined to the app's rows
            found: dict[str, Any] = {}
            with sql.connection.cursor() as cursor:
                for chunk in _chunks(ids):
                    marks = ", ".join(["%s"] * len(chunk))
                    cursor.execute(sql.pks_of.format(marks), [*chunk, rel.member_type, False])
                    found.update(cursor.fetchall())
            if all(id in found for id in ids) or not strict:
                return {id: found[id] for id in ids if id in found}
        rows = dict(
            self._resource.objects.using(self.using)
            .filter(scim_id__in=ids, resource_type=rel.member_type, deleted=False)
            .values_list("scim_id", "object_pk")
        )
        pks = {id: self._pk_value(member_t, text) for id, text in rows.items()}
        if pks:
            alive = set(
                member_t.model.objects.using(self.using)
                .filter(pk__in=list(pks.values()))
                .values_list("pk", flat=True)
            )
            # in the order asked (a group's members keep the order they were given in)
            pks = {id: pks[id] for id in ids if id in pks and pks[id] in alive}
        missing = [id for id in ids if id not in pks]
        if missing and strict:
            error: InvalidValueError = missing_members_error(missing)
            other = self._resource.objects.using(self.using).filter(scim_id__in=missing)
            if other.exclude(resource_type=rel.member_type).exists():
                error = InvalidValueError(
                    f"Members of this group must be {rel.member_type} resources "
                    f"(the relation holds only those): {', '.join(sorted(missing)[:5])}."
                )
            raise error
        return pks

    def _some_members(
        self, t: _Type, rel: _Relation, bk: Any, group_pk: Any, values: Collection[str]
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """The stored members of the group whose ``value`` is in ``values``, in stored
        order, each read by its id (one index probe each, whatever the group's size);
        and, when one statement read them, ``{id: app pk}`` of the live ones (members or
        not), for the write's :meth:`_member_pks`."""
        if not values:
            return [], None
        sql = self._statements(t)
        if sql is not None and sql.some_members is not None:
            links: list[tuple[Any, str, Any]] = []
            alive: dict[str, Any] = {}
            with sql.connection.cursor() as cursor:
                for chunk in _chunks(list(values)):
                    marks = ", ".join(["%s"] * len(chunk))
                    params = [group_pk, bk.pk, *chunk, rel.member_type, False]
                    cursor.execute(sql.some_members.format(marks), params)
                    for id, pk, link, display in cursor.fetchall():
                        alive[id] = pk
                        if link is not None:
                            links.append((link, id, display))
            entries = []
            for _, id, display in sorted(links):
                entry: dict[str, Any] = {"value": id, "type": rel.member_type}
                if display is not None:
                    entry["display"] = display
                entries.append(entry)
            return entries, alive
        return self._orm_some_members(rel, bk, group_pk, values), None

    def _orm_some_members(
        self, rel: _Relation, bk: Any, group_pk: Any, values: Collection[str]
    ) -> list[dict[str, Any]]:
        """:meth:`_some_members` through the ORM."""
        member_t = self._types[rel.member_type]
        rows = dict(
            self._resource.objects.using(self.using)
            .filter(scim_id__in=list(values), resource_type=rel.member_type, deleted=False)
            .values_list("object_pk", "scim_id")
        )
        if not rows:
            return []
        pks = {self._pk_value(member_t, text): id for text, id in rows.items()}
        links = (
            rel.through.objects.using(self.using)
            .filter(**{rel.group_col: group_pk, f"{rel.member_col}__in": list(pks)})
            .order_by("pk")
            .values_list(rel.member_col, flat=True)
        )
        displays = dict(
            self._display.objects.using(self.using)
            .filter(resource=bk, member_id__in=list(rows.values()))
            .values_list("member_id", "display")
        )
        out = []
        for mpk in links:
            entry: dict[str, Any] = {"value": pks[mpk], "type": rel.member_type}
            if pks[mpk] in displays:
                entry["display"] = displays[pks[mpk]]
            out.append(entry)
        return out

    def _write_displays(self, bk: Any, old: Mapping[str, str], new: Mapping[str, str]) -> None:
        """Write only the members' ``display`` values that changed."""
        gone = [m for m, d in old.items() if new.get(m) != d]
        if gone:
            self._display.objects.using(self.using).filter(resource=bk, member_id__in=gone).delete()
        fresh = [
            self._display(resource=bk, member_id=m, display=d)
            for m, d in new.items()
            if old.get(m) != d
        ]
        if fresh:
            self._display.objects.using(self.using).bulk_create(fresh)

    def _add_members(self, rel: _Relation, group_pk: Any, member_pks: Iterable[Any]) -> None:
        rows = [rel.through(**{rel.group_col: group_pk, rel.member_col: pk}) for pk in member_pks]
        rel.through.objects.using(self.using).bulk_create(rows, ignore_conflicts=True)

    def _remove_members(self, rel: _Relation, group_pk: Any, member_pks: Iterable[Any]) -> None:
        rel.through.objects.using(self.using).filter(
            **{rel.group_col: group_pk, f"{rel.member_col}__in": list(member_pks)}
        ).delete()

    def _touch(self, type_name: str, pks: Iterable[Any], when: str) -> None:
        """A membership changed: the member (or group) gets a new version and lastModified
        (RFC 7644 §3.14: ``groups`` is part of a User's representation)."""
        self._epoch += 1
        self._local.__dict__.pop("groups", None)
        t = self._types.get(type_name)
        pks = list(pks)
        if t is None or not pks or t.bm is None:
            return
        if t.bm.rt.schema.attribute("groups") is None and t.relation is None:
            return
        self._resource.objects.using(self.using).filter(
            resource_type=type_name,
            object_pk__in=[self._pk_text(t, pk) for pk in pks],
            deleted=False,
        ).update(version=F("version") + 1, last_modified=when)

    def _assign(
        self,
        t: _Type,
        instance: Any,
        values: Mapping[str, Any],
        *,
        creating: bool,
        unset: dict[str, Any] | None = None,
    ) -> list[str]:
        """Set the mapped fields; 400 ``invalidValue`` naming the SCIM attribute for a value
        the field refuses (too long, malformed email, a string for an integer...).

        A field that cannot hold "no value" (a ``BooleanField`` with a default) gets its
        default; ``unset`` records it, so that reading gives the attribute back unassigned
        while the app leaves the field as written (RFC 7643 §2.5).
        """
        changed = []
        by_field = {f.field: f for f in t.bound.fields}
        for name, value in values.items():
            field = t.fields[name]
            if value is None:
                if field.null:
                    stored = None
                elif field.get_internal_type() in _TEXT_FIELDS:
                    stored = ""
                elif field.has_default():
                    stored = field.get_default()
                    if unset is not None:
                        unset[name] = stored
                else:
                    stored = None
            else:
                stored = value
                held = getattr(instance, field.attname)
                if not creating and type(held) is type(value) and held == value:
                    continue  # what the row already holds: not validated again, not written
            if stored is not None:
                try:
                    stored = field.clean(stored, instance)
                except ValidationError as exc:
                    label = by_field[name].label
                    detail = "; ".join(str(m) for m in exc.messages)
                    raise InvalidValueError(
                        f"The value of {label!r} is not valid here: {detail}"
                    ) from None
                except (TypeError, ValueError):
                    raise InvalidValueError(
                        f"The value of {by_field[name].label!r} is not valid here."
                    ) from None
            if creating or getattr(instance, field.attname) != stored:
                setattr(instance, field.attname, stored)
                changed.append(name)
        if creating and hasattr(instance, "set_unusable_password"):
            instance.set_unusable_password()
        return changed

    def _save(
        self,
        t: _Type,
        instance: Any,
        fields: list[str] | None,
        ride: tuple[str, list[Any]] | None = None,
    ) -> bool:
        """The app's ``save()`` (its overrides and signals run). ``ride``: a statement of
        ours (the bookkeeping's UPDATE) sent in the round trip of the app row's UPDATE,
        where the connection can (:func:`_can_ride`); returns whether it was."""
        # No savepoint: every caller runs in the write's transaction (``_write``) and lets
        # the error end it, so the whole write is rolled back.
        rode: list[bool] = []
        try:
            with _own_save():
                if ride is None or fields is None or not _can_ride(connections[self.using]):
                    instance.save(using=self.using, update_fields=fields)
                else:
                    connection = connections[self.using]
                    table = connection.ops.quote_name(t.model._meta.db_table)
                    with connection.execute_wrapper(_Rider(table, ride, rode)):
                        instance.save(using=self.using, update_fields=fields)
        except IntegrityError:
            # The app's own unique constraints (e.g. auth.User.username) hold too.
            raise UniquenessError(
                f"A value of this {t.name} is already in use ({t.mapping.model})."
            ) from None
        return bool(rode)

    def _check_columns_unique(self, t: _Type, resource: Mapping[str, Any], exclude_pk: Any) -> None:
        """Unique attributes held by fields: also compare with the app's own rows (which
        may predate the bookkeeping), case-insensitively unless caseExact."""
        for u in t.uniques:
            if u.field is None:
                continue
            for key in u.keys(resource):
                qs = t.model.objects.using(self.using)
                if u.ref.target.case_exact:
                    qs = qs.filter(**{u.field: key})
                else:
                    qs = qs.annotate(_u=Lower(u.field)).filter(_u=key)
                if exclude_pk is not None:
                    qs = qs.exclude(pk=exclude_pk)
                # rows hidden from SCIM (deleted, deactivated) still hold their values
                if qs.exists():
                    raise UniquenessError(f"The value of {u.label!r} is already in use.")

    def _write_uniques(
        self,
        t: _Type,
        bk: Any,
        resource: Mapping[str, Any],
        *,
        replace: bool = False,
        strict: bool = True,
    ) -> None:
        """RFC 7643 §7 "uniqueness": "server" — "The value SHOULD be unique within the
        context of the current SCIM endpoint"; the unique constraint decides races."""
        if replace:
            self._unique.objects.using(self.using).filter(resource=bk).delete()
        rows = [
            self._unique(resource=bk, resource_type=t.name, attribute=u.label, value=key[:255])
            for u in t.uniques
            for key in u.keys(resource)
        ]
        if not rows:
            return
        if not strict:
            self._unique.objects.using(self.using).bulk_create(rows, ignore_conflicts=True)
            return
        try:
            with transaction.atomic(using=self.using):
                self._unique.objects.using(self.using).bulk_create(rows)
        except IntegrityError:
            label = next(iter(t.uniques)).label if len(t.uniques) == 1 else "a unique attribute"
            raise UniquenessError(f"The value of {label!r} is already in use.") from None

    def _write_values(
        self, t: _Type, bk: Any, extras: Mapping[str, Any], *, replace: bool = False
    ) -> None:
        if replace:
            self._value.objects.using(self.using).filter(resource=bk).delete()
        rows = self._value_rows(t, bk, extras)
        if rows:
            self._value.objects.using(self.using).bulk_create(rows)

    def _value_rows(self, t: _Type, bk: Any, extras: Mapping[str, Any]) -> list[Any]:
        """The value index's rows of ``extras`` (and of the fields left unassigned)."""
        rows = [
            self._value(
                resource=bk, key=_UNSET, sub=name, **{_marker_column(t.fields[name]): value}
            )
            for name, value in (bk.extras.get(_UNSET) or {}).items()
            if name in t.fields
        ]
        for leaf in t.bound.leaves(extras):
            v = leaf.value
            text = v if isinstance(v, str) else None
            rows.append(
                self._value(
                    resource=bk,
                    key=leaf.key[:255],
                    sub=leaf.sub,
                    index=leaf.index,
                    text=text,
                    folded=text.lower() if text is not None else None,
                    number=float(v)
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                    else None,
                    flag=v if isinstance(v, bool) else None,
                )
            )
        return rows


def _can_ride(connection: Any) -> bool:
    """Whether a statement may be sent in the round trip of another on ``connection``:
    PostgreSQL through psycopg 3 with client-side binding (Django's default), where
    ``execute`` sends its text in the simple query protocol, which takes several
    statements (server-side binding and SQLite take one)."""
    if connection.vendor != "postgresql":
        return False
    from django.db.backends.postgresql.psycopg_any import (  # type: ignore[import-untyped]
        is_psycopg3,
    )

    return bool(is_psycopg3 and not connection.settings_dict["OPTIONS"].get("server_side_binding"))


class _Rider:
    """A ``connection.execute_wrapper`` that sends ``statement`` after the first
    ``UPDATE`` of ``table`` in one ``execute`` (one round trip instead of two); the
    cursor reports the first statement's row count, which Django checks. ``rode`` gets
    an item once it was sent."""

    def __init__(self, table: str, statement: tuple[str, list[Any]], rode: list[bool]) -> None:
        self.prefix = f"UPDATE {table} SET "
        self.statement = statement
        self.rode = rode

    def __call__(
        self, execute: Any, sql: str, params: Any, many: bool, context: Mapping[str, Any]
    ) -> Any:
        if self.rode or many or not isinstance(params, (list, tuple)):
            return execute(sql, params, many, context)
        if not sql.startswith(self.prefix) or ";" in sql:
            return execute(sql, params, many, context)
        extra, extra_params = self.statement
        self.rode.append(True)
        return execute(f"{sql}; {extra}", [*params, *extra_params], many, context)
