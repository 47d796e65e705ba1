"""The reads of :class:`~scim2_core_django.backend.DjangoModelBackend`: by id, searches
(the fixed statements, or querysets with the filter pushed down), members and groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from django.db import connections, models  # type: ignore[import-untyped]
from django.db.models import OuterRef, Subquery  # type: ignore[import-untyped]
from django.db.models.functions import (  # type: ignore[import-untyped]
    Cast,
)

from scim2_core.backends import Page, SearchQuery
from scim2_core.filter import Compare
from scim2_core.mapping import Cmp, Column, translate

from ._backend_adopt import _Adoption
from ._backend_statements import _groups_read, _Statements
from ._backend_types import (
    _MAX_WINDOW,
    _chunks,
    _convert,
    _Groups,
    _hash,
    _plain,
    _ReadBk,
    _Relation,
    _Type,
    _version,
    _visible,
)


class _Reads(_Adoption):
    """Reading resources, their members and their groups."""

    def _rows_of(self, ids: list[str]) -> dict[str, dict[str, str]]:
        """``{type: {app pk as text: id}}`` of the live resources ``ids``: from the rows
        this thread read last (the engine asks right after reading them), else queried."""
        seen: dict[str, tuple[str, str]] = getattr(self._local, "seen", {})
        by_type: dict[str, dict[str, str]] = {}
        if all(id in seen for id in ids):
            for id in ids:
                name, pk_text = seen[id]
                by_type.setdefault(name, {})[pk_text] = id
            return by_type
        rows = self._resource.objects.using(self.using).filter(scim_id__in=ids, deleted=False)
        for scim_id, name, pk_text in rows.values_list("scim_id", "resource_type", "object_pk"):
            by_type.setdefault(name, {})[pk_text] = scim_id
        return by_type

    def _memberships(
        self, group: _Type, rel: _Relation, member_pks: list[Any]
    ) -> list[tuple[Any, dict[str, Any]]]:
        """``[(member pk, {"value": group id, "display": displayName})]``: one query joining
        the relation, the group's row and its bookkeeping (RFC 7643 §4.1.2 ``groups``)."""
        sql = self._statements(group)
        if sql is not None and sql.memberships is not None:
            statement, converters = sql.memberships
            with sql.connection.cursor() as cursor:
                marks = ", ".join(["%s"] * len(member_pks))
                cursor.execute(statement.format(marks), [group.name, False, *member_pks])
                raw = cursor.fetchall()
            rows = [cast(Any, _convert(r, converters, sql.connection)) for r in raw]
        else:
            found = self._orm_memberships(group, rel, member_pks)
            if found is None:
                return self._links_memberships(group, rel, member_pks)
            rows = found
        if any(gid is None for _, gid, _ in rows):  # groups the app made, not adopted yet
            self._adopt(group)
            return self._memberships(group, rel, member_pks)
        out = []
        for mpk, gid, name in rows:
            entry: dict[str, Any] = {"value": gid}
            if isinstance(name, str) and name:
                entry["display"] = name
            out.append((mpk, entry))
        return out

    def _links_memberships(
        self, group: _Type, rel: _Relation, member_pks: list[Any]
    ) -> list[tuple[Any, dict[str, Any]]]:
        """:meth:`_memberships` of a group type whose displayName is kept beside the row."""
        links = list(
            rel.through.objects.using(self.using)
            .filter(**{f"{rel.member_col}__in": member_pks})
            .values_list(rel.member_col, rel.group_col)
        )
        entries = self._group_entries(group, {g for _, g in links}) if links else {}
        return [(m, dict(entries[g])) for m, g in links if g in entries]

    def _orm_memberships(
        self, group: _Type, rel: _Relation, member_pks: list[Any]
    ) -> list[tuple[Any, Any, Any]] | None:
        """``[(member pk, group id, displayName)]`` through the ORM (None: the
        displayName is not a field)."""
        display = group.bound.single(group.bound.rt.resolve_path("displayName"))
        if display is None:  # displayName kept beside the row: read with the bookkeeping
            return None
        scim_id = self._resource.objects.using(self.using).filter(
            resource_type=group.name,
            object_pk=Cast(OuterRef(rel.group_col), models.CharField()),
            deleted=False,
        )
        return list(
            rel.through.objects.using(self.using)
            .filter(**{f"{rel.member_col}__in": member_pks})
            .annotate(_gid=Subquery(scim_id.values("scim_id")[:1]))
            .values_list(rel.member_col, "_gid", f"{rel.group_field}__{display.field}")
        )

    def _existing_statement(self) -> tuple[str, list[Any]] | None:
        """``(statement, params)`` of :meth:`existing` for this thread's connection, when
        every mapped model is plain (see ``_plain``): ``{}`` takes the ids' placeholders,
        then params: the ids, False, ``params``."""
        connection = connections[self.using]
        cached = getattr(self._local, "existing", None)
        if cached is not None and cached[0] is connection:
            return cast(tuple[str, list[Any]] | None, cached[1])
        made: tuple[str, list[Any]] | None = None
        if all(_plain(t, connection) for t in self._types.values()):
            q = connection.ops.quote_name
            tests = []
            for t in self._types.values():
                pk = t.model._meta.pk
                tests.append(
                    f"EXISTS (SELECT 1 FROM {q(t.model._meta.db_table)} a "
                    f"WHERE b.{q('resource_type')} = %s AND a.{q(pk.column)} = "
                    f"CAST(b.{q('object_pk')} AS {pk.cast_db_type(connection)}))"
                )
            made = (
                f"SELECT b.{q('scim_id')}, b.{q('resource_type')} "
                f"FROM {q(self._resource._meta.db_table)} b "
                f"WHERE b.{q('scim_id')} IN ({{}}) AND b.{q('deleted')} = %s "
                f"AND ({' OR '.join(tests)})",
                list(self._types),
            )
        self._local.existing = (connection, made)
        return made

    def _fetch(
        self, sql: _Statements, statement: str, params: Sequence[Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]], _Groups]:
        """Run a read of bookkeeping and app rows: ``({object_pk: bookkeeping}, rows,
        groups)``, the rows as ``values("pk", *fields)`` gives them, in the statement's
        order; ``groups``: ``{pk: groups_of's entries}`` (see ``_groups_columns``)."""
        connection = sql.connection
        with connection.cursor() as cursor:
            cursor.execute(statement, [*sql.gparams, *params])
            raw = cursor.fetchall()
        bks: dict[str, Any] = {}
        rows: list[dict[str, Any]] = []
        groups: dict[Any, list[dict[str, Any]] | None] = {}
        width, names = sql.width, sql.row_names
        end = width + len(names)
        for r in raw:
            values = _convert(r, sql.read_conv, connection)
            bk = _ReadBk(sql.bk_names, values[:width])
            bks[bk.object_pk] = bk
            row = dict(zip(names, values[width:end], strict=True))
            rows.append(row)
            groups[row["pk"]] = _groups_read(values[end:])
        return bks, rows, (groups if sql.groups else None)

    def _probe_shape(self, t: _Type, f: Any) -> tuple[tuple[str, bool, str], str] | None:
        """``((field, caseExact, unique label), value)`` of a filter :meth:`_probe_search`
        answers (``eq`` of a string on a unique attribute held by a text field), from its
        translation; None for any other filter."""
        expr = translate(f, t.bound)
        if not isinstance(expr, Cmp) or expr.op != "eq" or not isinstance(expr.value, str):
            return None
        target = expr.target
        if not isinstance(target, Column):
            return None
        bound = next((b for b in t.bound.fields if b.field == target.field), None)
        unique = next((u for u in t.uniques if u.field == target.field), None)
        attr = target.attribute
        if bound is None or bound.to_model is not None or unique is None or attr.type != "string":
            return None
        if attr.case_exact != unique.ref.target.case_exact:
            return None
        return (target.field, attr.case_exact, unique.label), expr.value

    def _probe_search(self, t: _Type, query: SearchQuery) -> Page | None:
        """``attribute eq "value"`` on a unique attribute held by a text field (an IdP's
        ``userName eq`` before each create): one statement through the unique index, the
        field's own test deciding (RFC 7643 §2.1 caseExact); None for any other filter."""
        sql = self._statements(t)
        f = query.filter
        if sql is None or not sql.probe or f is None:
            return None
        # The filter's shape (an ``eq`` of a string on one path) decides whether it takes
        # this way and how its value becomes the parameters: known after the first request
        # of each shape, without translating the filter again.
        shape = (t.name, f.path) if type(f) is Compare and f.op == "eq" else None
        known = self._probe_shapes.get(shape) if shape is not None else None
        if known is not None and type(f.value) is str:  # type: ignore[union-attr]
            field, exact, label = known
            text: str = f.value  # type: ignore[union-attr]
        else:
            shaped = self._probe_shape(t, f)
            if shaped is None:
                return None
            (field, exact, label), text = shaped
            if shape is not None and text == getattr(f, "value", None):
                self._probe_shapes[shape] = (field, exact, label)
        statement = sql.probe.get(field)
        if statement is None or not text:  # empty: the general way (the statement assumes one)
            return None
        value = text if exact else text.lower()
        params = [t.name, label, value[:255], t.name, False, value]
        bks, rows, groups = self._fetch(sql, statement, params)
        if not rows and self._adopt(t):  # perhaps a row the app made without signals
            bks, rows, groups = self._fetch(sql, statement, params)
        total = len(rows)
        start = max(query.offset, 0)
        if query.count <= 0 or start >= total:
            return Page(total=total)
        window = rows[start : start + query.count]
        found = self._read_rows(t, rows=window, bks=bks, groups=groups, owned=True)
        return Page(total=total, resources=found)

    def _bk(self, t: _Type, id: str) -> Any:
        found = self._resource.objects.using(self.using).filter(
            scim_id=id, resource_type=t.name, deleted=False
        )
        return next(iter(found[:1]), None)  # scim_id is unique: no ORDER BY

    def _base(self, t: _Type) -> Any:
        """The app's rows that are SCIM resources, with their id and created time."""
        live = self._resource.objects.using(self.using).filter(
            resource_type=t.name, object_pk=OuterRef("_pk_text"), deleted=False
        )
        return (
            t.model.objects.using(self.using)
            .annotate(_pk_text=Cast("pk", models.CharField()))
            .annotate(
                _scim_id=Subquery(live.values("scim_id")[:1]),
                _created=Subquery(live.values("created")[:1]),
            )
        )

    def _default_page(self, t: _Type, query: SearchQuery) -> Page:
        """No filter, no sort: the window in (meta.created, id) order, from the
        bookkeeping's index alone (an IdP's full sync pages through everything)."""
        sql = self._statements(t)
        if sql is not None:
            return self._window(t, sql, query)
        self._adopt(t)
        live = self._resource.objects.using(self.using).filter(resource_type=t.name, deleted=False)
        total = live.count()
        if query.count <= 0 or query.offset >= total:
            return Page(total=total)
        start = max(query.offset, 0)
        window = live.order_by("created", "scim_id").values_list("object_pk", flat=True)
        stop = start + min(query.count, total - start)  # no LIMIT past what exists
        pks = [self._pk_value(t, p) for p in window[start:stop]]
        return Page(total=total, resources=self._read_rows(t, pks))

    def _window(self, t: _Type, sql: _Statements, query: SearchQuery) -> Page:
        """:meth:`_default_page` in one statement (two when the window is empty): the
        total, ``MAX(pk)`` for the adoption check (see :meth:`_adopt`), the rows and their
        groups."""
        start = max(query.offset, 0)
        connection = sql.connection
        if query.count > 0 and start < _MAX_WINDOW:
            # past the middle of the listing as last counted: walk the index from its end
            backward = sql.window_desc is not None and start > self._totals.get(t.name, 0) // 2
            statement = sql.window_desc if backward and sql.window_desc else sql.window
            limit = sql.window_limit(start, min(query.count, _MAX_WINDOW), backward)
            with connection.cursor() as cursor:
                params = [t.name, False, *sql.window_gparams, t.name, False]
                cursor.execute(statement.format(limit), params)
                raw = cursor.fetchall()
            if raw:
                total, top = raw[0][0], raw[0][1]
                self._totals[t.name] = total
                if self._adopt(t, top):  # app rows made without signals: read again
                    return self._window(t, sql, query)
                bks: dict[str, Any] = {}
                rows: list[dict[str, Any]] = []
                held: list[Sequence[Any]] = []
                width, names = sql.width, sql.row_names
                end = width + len(names)
                for r in raw:
                    values = _convert(r[2:], sql.read_conv, connection)
                    bk = _ReadBk(sql.bk_names, values[:width])
                    bks[bk.object_pk] = bk
                    rows.append(dict(zip(names, values[width:end], strict=True)))
                    held.append(values[end:])
                groups: dict[Any, list[dict[str, Any]] | None] | None = None
                if sql.group_keys:
                    groups = self._window_groups(sql, rows, held)
                elif sql.groups:
                    groups = {r["pk"]: _groups_read(h) for r, h in zip(rows, held, strict=True)}
                found = self._read_rows(t, rows=rows, bks=bks, groups=groups, owned=True)
                return Page(total=total, resources=found)
        with connection.cursor() as cursor:
            cursor.execute(sql.count_top, [t.name, False])
            total, top = cursor.fetchone()
        self._totals[t.name] = total
        if self._adopt(t, top):
            return self._window(t, sql, query)
        # RFC 7644 §3.4.2.4: past the last result, or count=0: the total alone (a window
        # that came back empty otherwise holds only rows the app deleted behind Django)
        return Page(total=total)

    def _window_groups(
        self, sql: _Statements, rows: Sequence[dict[str, Any]], held: Sequence[Sequence[Any]]
    ) -> dict[Any, list[dict[str, Any]] | None]:
        """``{pk: groups_of's entries, or None}`` of a window's rows from the primary keys
        of the groups holding each (``held``: per row, one array per group type; see
        ``_group_keys_columns``), resolved in one statement per group type for the whole
        window. None for a row when one of its groups has no bookkeeping yet
        (``groups_of`` then adopts it)."""
        per_type: list[list[list[Any]]] = [[] for _ in sql.group_names]
        for keys in held:
            for k, value in enumerate(keys):
                per_type[k].append(list(value or ()))
        found: list[dict[Any, tuple[Any, Any]]] = []
        with sql.connection.cursor() as cursor:
            for (name, statement), lists in zip(sql.group_names, per_type, strict=True):
                wanted = list(dict.fromkeys(pk for pks in lists for pk in pks))
                known: dict[Any, tuple[Any, Any]] = {}
                for chunk in _chunks(wanted):
                    marks = ", ".join(["%s"] * len(chunk))
                    cursor.execute(statement.format(marks), [name, False, *chunk])
                    known.update((pk, (gid, shown)) for pk, gid, shown in cursor.fetchall())
                found.append(known)
        out: dict[Any, list[dict[str, Any]] | None] = {}
        for i, row in enumerate(rows):
            entries: list[dict[str, Any]] | None = []
            for known, lists in zip(found, per_type, strict=True):
                for pk in lists[i]:
                    if pk not in known:
                        continue  # the group went away since the window was read
                    gid, shown = known[pk]
                    if gid is None or entries is None:
                        entries = None
                        break
                    entry: dict[str, Any] = {"value": gid}
                    if isinstance(shown, str) and shown:
                        entry["display"] = shown
                    entries.append(entry)
            if entries is not None:
                entries.sort(key=lambda e: str(e["value"]))
            out[row["pk"]] = entries
        return out

    def _read_rows(
        self,
        t: _Type,
        pks: Sequence[Any] = (),
        *,
        rows: Sequence[dict[str, Any]] | None = None,
        bks: Mapping[str, Any] | None = None,
        refresh: bool = True,
        members: bool = True,
        groups: _Groups = None,
        owned: bool = False,
    ) -> list[dict[str, Any]]:
        """The resources of the app's rows ``pks`` (in that order; missing ones skipped),
        or of ``rows`` already read (``values("pk", *fields)``). ``groups``: the groups
        holding each row, read with it; kept for the ``groups_of`` that follows.
        ``owned``: the bookkeeping rows ``bks`` were read for this call alone, so their
        extras become the resources instead of being copied (they are read here when
        ``bks`` is not given).

        With ``refresh``, a row whose mapped fields no longer have the hash SCIM last saw
        was changed by the app: its version and lastModified move first (RFC 7644 §3.14).
        """
        if rows is None:
            if not pks:
                return []
            rows = t.model.objects.using(self.using).filter(pk__in=pks).values("pk", *t.fields)
        by_pk = {r["pk"]: r for r in rows}
        order = list(pks) or list(by_pk)
        if not order:
            return []
        if bks is None:
            owned = True
            bks = {
                bk.object_pk: bk
                for bk in self._resource.objects.using(self.using).filter(
                    resource_type=t.name,
                    object_pk__in=[self._pk_text(t, pk) for pk in by_pk],
                    deleted=False,
                )
            }
        listed: dict[Any, list[dict[str, Any]]] = {}
        displays: dict[tuple[int, str], str] = {}
        if t.relation is not None and members:
            found = self._members_read(t, list(by_pk))
            listed = found if found is not None else self._members_of(t.relation, list(by_pk))
            if listed and found is None:
                displays = {
                    (r, m): d
                    for r, m, d in self._display.objects.using(self.using)
                    .filter(resource_id__in=[bk.pk for bk in bks.values()])
                    .values_list("resource_id", "member_id", "display")
                }
        out = []
        seen: dict[str, tuple[str, str]] = {}
        held: dict[str, list[dict[str, Any]]] = {}
        for pk in order:
            row = by_pk.get(pk)
            bk = bks.get(self._pk_text(t, pk)) if row is not None else None
            if row is None or bk is None:
                continue
            if refresh:
                digest = _hash(row, t.fields)
                if digest != bk.content_hash:
                    self._app_changed(t, bk, row, digest)
            stored_meta = bk.extras.get("meta")
            resource = t.bound.read(*_visible(row, bk.extras, owned=owned), owned=owned)
            resource["id"] = bk.scim_id
            if t.relation is not None and listed.get(pk):
                resource["members"] = [dict(m) for m in listed[pk]]
                for m in resource["members"]:
                    display = displays.get((bk.pk, m["value"]))
                    if display is not None:
                        m["display"] = display
            meta = dict(stored_meta or {})
            meta.setdefault("resourceType", t.name)
            meta["created"] = bk.created
            meta["lastModified"] = bk.last_modified
            meta["version"] = _version(bk.version)
            resource["meta"] = meta
            out.append(resource)
            seen[bk.scim_id] = (t.name, bk.object_pk)
            mine = groups.get(pk) if groups is not None else None
            if mine is not None:
                held[bk.scim_id] = mine
        self._local.seen = seen
        self._remember_groups(held if groups is not None else None)
        return out

    def _remember_groups(self, groups: Mapping[str, Any] | None) -> None:
        """Keep ``{id: groups_of's entries}`` for the next ``groups_of`` of this thread,
        with the membership epoch they were read at (``groups_of`` uses them only if it has
        not moved since)."""
        if groups is None:
            self._local.__dict__.pop("groups", None)
        else:
            self._local.groups = (self._epoch, dict(groups))

    def _members_read(
        self, t: _Type, group_pks: list[Any]
    ) -> dict[Any, list[dict[str, Any]]] | None:
        """:meth:`_members_of` with the members' displays, in one statement joining the
        relation and the bookkeeping (None: not for this model, or a member has no
        bookkeeping yet, which :meth:`_members_of` adopts)."""
        sql = self._statements(t)
        rel = t.relation
        if sql is None or sql.members_of is None or rel is None or not group_pks:
            return None
        out: dict[Any, list[dict[str, Any]]] = {}
        with sql.connection.cursor() as cursor:
            for chunk in _chunks(group_pks):
                marks = ", ".join(["%s"] * len(chunk))
                params = [rel.member_type, False, t.name, False, *chunk]
                cursor.execute(sql.members_of.format(marks), params)
                for gpk, id, display in cursor.fetchall():
                    if id is None:
                        return None
                    entry: dict[str, Any] = {"value": id, "type": rel.member_type}
                    if display is not None:
                        entry["display"] = display
                    out.setdefault(gpk, []).append(entry)
        return out

    def _members_of(self, rel: _Relation, group_pks: list[Any]) -> dict[Any, list[dict[str, Any]]]:
        """``{group pk: [{"value": id, "type": member type}, ...]}`` in joining order."""
        member_t = self._types[rel.member_type]
        links = list(
            rel.through.objects.using(self.using)
            .filter(**{f"{rel.group_col}__in": group_pks})
            .order_by("pk")
            .values_list(rel.group_col, rel.member_col)
        )
        if not links:
            return {}
        ids = self._scim_ids(member_t, {m for _, m in links})
        out: dict[Any, list[dict[str, Any]]] = {}
        for gpk, mpk in links:
            id = ids.get(mpk)
            if id is not None:
                out.setdefault(gpk, []).append({"value": id, "type": rel.member_type})
        return out

    def _scim_ids(self, t: _Type, pks: Iterable[Any]) -> dict[Any, str]:
        """SCIM ids of the app's rows ``pks`` (rows without bookkeeping are adopted)."""
        pks = list(pks)
        texts = {self._pk_text(t, pk): pk for pk in pks}
        found = dict(
            self._resource.objects.using(self.using)
            .filter(resource_type=t.name, object_pk__in=list(texts), deleted=False)
            .values_list("object_pk", "scim_id")
        )
        if len(found) < len(texts):
            self._adopt(t)
            found = dict(
                self._resource.objects.using(self.using)
                .filter(resource_type=t.name, object_pk__in=list(texts), deleted=False)
                .values_list("object_pk", "scim_id")
            )
        return {texts[k]: v for k, v in found.items()}

    def _group_entries(self, group: _Type, gpks: Iterable[Any]) -> dict[Any, dict[str, Any]]:
        """``{group pk: {"value": id, "display": displayName}}``."""
        gpks = list(gpks)
        ids = self._scim_ids(group, gpks)
        display_field = group.bound.single(group.bound.rt.resolve_path("displayName"))
        names: dict[Any, Any] = {}
        if display_field is not None:
            names = dict(
                group.model.objects.using(self.using)
                .filter(pk__in=gpks)
                .values_list("pk", display_field.field)
            )
        else:
            for bk in self._resource.objects.using(self.using).filter(
                resource_type=group.name, object_pk__in=[self._pk_text(group, p) for p in gpks]
            ):
                names[self._pk_value(group, bk.object_pk)] = bk.extras.get("displayName")
        out = {}
        for gpk, id in ids.items():
            entry: dict[str, Any] = {"value": id}
            name = names.get(gpk)
            if isinstance(name, str) and name:
                entry["display"] = name
            out[gpk] = entry
        return out
