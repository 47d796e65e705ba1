"""A mapping checked against its resource type: reading and writing resources.

:func:`bind_mapping` resolves every :class:`~scim2_core.mapping.Field` against the
:class:`~scim2_core.ResourceType` and raises :class:`~scim2_core.ConfigurationError` naming
what does not fit. The :class:`BoundMapping` it returns splits a resource into the values of
the model's fields and the *extras* (everything no field holds, kept as JSON beside the row),
and joins them back; :meth:`BoundMapping.leaves` lists the scalar values of the extras, which
an ORM indexes so that filters on unmapped attributes also run in the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._errors import ConfigurationError, InvalidValueError, ScimError
from .._json import copy_json
from ..filter import And, Compare, Filter, bind_path, parse_path
from ..schema import Attribute, AttrRef, ResourceType, format_datetime, parse_datetime
from ._nodes import Field, ResourceMapping

__all__ = ["BoundField", "BoundMapping", "ElementGroup", "Leaf", "attr_key", "bind_mapping"]

#: Attributes the engine or the backend owns: no field may hold them.
_RESERVED: Final = frozenset(("id", "meta", "schemas", "groups", "members"))
#: Keys of a resource that are structure, not data: never "unmapped".
_STRUCTURE: Final = frozenset(("schemas", "meta", "externalId"))
#: The sub-attribute of an element that marks the element itself in :meth:`leaves`.
ELEMENT: Final = "$"


def attr_key(urn: str | None, name: str) -> str:
    """The key an attribute's values are indexed under: ``name`` or ``urn:name``."""
    return f"{urn}:{name}" if urn is not None else name


@dataclass(frozen=True, slots=True)
class Leaf:
    """One scalar of the extras: attribute ``key``, ``sub`` (``""`` for the value itself,
    ``"$"`` for an element of a multi-valued complex attribute), element ``index``."""

    key: str
    sub: str
    index: int
    value: Any


@dataclass(frozen=True, slots=True)
class BoundField:
    """A :class:`~scim2_core.mapping.Field` resolved against its resource type."""

    ref: AttrRef
    field: str
    #: For a value of a multi-valued attribute: the equality tests choosing it, by
    #: sub-attribute (``(("type", "work"),)`` for ``emails[type eq "work"].value``).
    where: tuple[tuple[str, Any], ...]
    label: str
    to_scim: Callable[[Any], Any] | None
    to_model: Callable[[Any], Any] | None

    @property
    def key(self) -> str:
        return attr_key(self.ref.urn, self.ref.attribute.name)

    def model_value(self, value: Any) -> Any:
        """The field value for a SCIM value (None: unassigned).

        A converter (``to_model``) that raises refuses the value: 400 ``invalidValue``
        naming the attribute (RFC 7644 §3.12 Table 9: "the attribute value [...] is
        incompatible"), whatever it raised, so that a client's value never becomes a 500;
        a :class:`~scim2_core.ScimError` it raises is passed on as it is."""
        if value is None or self.to_model is None:
            return value
        try:
            return self.to_model(value)
        except ScimError:
            raise
        except Exception:
            raise InvalidValueError(f"The value of {self.label!r} is not valid here.") from None


@dataclass(frozen=True, slots=True)
class ElementGroup:
    """The fields holding sub-attributes of one chosen value of a multi-valued attribute."""

    ref: AttrRef
    where: tuple[tuple[str, Any], ...]
    fields: tuple[BoundField, ...]

    def matches(self, element: Any) -> bool:
        """True if ``element`` passes every equality test (with each sub's caseExact)."""
        if not isinstance(element, dict):
            return False
        for name, want in self.where:
            have = element.get(name)
            sub = self.ref.attribute.sub(name)
            if (
                isinstance(want, str)
                and isinstance(have, str)
                and sub is not None
                and not sub.case_exact
                and have.lower() == want.lower()
            ):
                continue
            if have != want or type(have) is not type(want):
                return False
        return True

    def field_for(self, sub: str) -> BoundField | None:
        for f in self.fields:
            if f.ref.sub is not None and f.ref.sub.name == sub:
                return f
        return None


def _where(filter: Filter, parent: AttrRef, label: str) -> list[tuple[str, Any]]:
    if isinstance(filter, And):
        return _where(filter.left, parent, label) + _where(filter.right, parent, label)
    if isinstance(filter, Compare) and filter.op == "eq" and filter.value is not None:
        return [(filter.path.name, filter.value)]
    raise ConfigurationError(
        f"Mapping {label!r}: a value must be chosen by 'sub eq value' tests joined by 'and'."
    )


def _bind_field(rt: ResourceType, field: Field) -> BoundField:
    label = field.attribute
    try:
        path = bind_path(parse_path(field.attribute), rt)
    except ScimError as exc:
        raise ConfigurationError(
            f"Mapping of {rt.name}: no attribute {label!r} ({exc.detail})"
        ) from None
    ref = rt.resolve(path.attr.urn, path.attr.name, path.attr.sub)
    assert ref is not None  # bind_path resolved it
    if ref.urn is None and ref.attribute.name in _RESERVED:
        raise ConfigurationError(
            f"Mapping of {rt.name}: {label!r} is kept by scim2-core and cannot be mapped."
        )
    where: tuple[tuple[str, Any], ...] = ()
    if path.filter is not None:
        if path.sub is None:
            raise ConfigurationError(
                f"Mapping of {rt.name}: {label!r} must name a sub-attribute after the filter "
                f"(e.g. 'emails[type eq \"work\"].value')."
            )
        where = tuple(_where(path.filter, ref, label))
        sub = ref.attribute.sub(path.sub)
        assert sub is not None
        if any(name == sub.name for name, _ in where):
            raise ConfigurationError(f"Mapping of {rt.name}: {label!r} maps a filtered value.")
        ref = AttrRef(ref.urn, ref.attribute, sub)
    elif ref.attribute.multi_valued:
        raise ConfigurationError(
            f"Mapping of {rt.name}: {label!r} is multi-valued; map one of its values, "
            f"e.g. '{ref.attribute.name}[type eq \"work\"].value'."
        )
    if ref.target.is_complex:
        raise ConfigurationError(
            f"Mapping of {rt.name}: {label!r} is complex; map its sub-attributes."
        )
    return BoundField(
        ref=ref,
        field=field.field,
        where=where,
        label=label,
        to_scim=field.to_scim,
        to_model=field.to_model,
    )


def bind_mapping(mapping: ResourceMapping, rt: ResourceType) -> BoundMapping:
    """Check ``mapping`` against ``rt``; raise :class:`~scim2_core.ConfigurationError`
    naming the first attribute that does not exist or cannot be mapped."""
    if mapping.resource_type != rt.name:
        raise ConfigurationError(
            f"Mapping for {mapping.resource_type!r} given for resource type {rt.name!r}."
        )
    fields = tuple(_bind_field(rt, f) for f in mapping.fields)
    seen_fields: set[str] = set()
    seen_paths: set[tuple[str, tuple[tuple[str, Any], ...], str | None]] = set()
    for f in fields:
        path = (f.key, f.where, f.ref.sub.name if f.ref.sub is not None else None)
        if path in seen_paths:
            raise ConfigurationError(f"Mapping of {rt.name}: {f.label!r} is mapped twice.")
        if f.field in seen_fields:
            raise ConfigurationError(f"Mapping of {rt.name}: field {f.field!r} is used twice.")
        seen_paths.add(path)
        seen_fields.add(f.field)
    if mapping.members is not None:
        members = rt.schema.attribute("members")
        if members is None or not members.multi_valued or members.sub("value") is None:
            raise ConfigurationError(
                f"Mapping of {rt.name}: a members relation needs a 'members' attribute."
            )
    if mapping.on_delete == "deactivate" and not any(
        f.ref.urn is None and f.ref.attribute.name == "active" and f.ref.sub is None for f in fields
    ):
        raise ConfigurationError(
            f"Mapping of {rt.name}: on_delete='deactivate' needs a field mapped to 'active'."
        )
    return BoundMapping(mapping, rt, fields)


class BoundMapping:
    """A mapping checked against its resource type; see the module docstring."""

    def __init__(
        self, mapping: ResourceMapping, rt: ResourceType, fields: tuple[BoundField, ...]
    ) -> None:
        self.mapping = mapping
        self.rt = rt
        self.fields = fields
        self.singles = tuple(f for f in fields if not f.where)
        groups: dict[tuple[str, tuple[tuple[str, Any], ...]], list[BoundField]] = {}
        for f in fields:
            if f.where:
                groups.setdefault((f.key, f.where), []).append(f)
        self.groups = tuple(
            ElementGroup(ref=AttrRef(fs[0].ref.urn, fs[0].ref.attribute), where=w, fields=tuple(fs))
            for (_, w), fs in groups.items()
        )
        self.has_members = mapping.members is not None
        self._plan = _ReadPlan(self)

    # -- lookups -------------------------------------------------------------------------

    def single(self, ref: AttrRef) -> BoundField | None:
        """The field holding the single-valued ``ref`` (attribute or sub-attribute)."""
        for f in self.singles:
            if f.ref == ref:
                return f
        return None

    def groups_of(self, urn: str | None, name: str) -> tuple[ElementGroup, ...]:
        key = attr_key(urn, name)
        return tuple(g for g in self.groups if attr_key(g.ref.urn, g.ref.attribute.name) == key)

    # -- reading -------------------------------------------------------------------------

    def read(
        self, values: Mapping[str, Any], extras: Mapping[str, Any], *, owned: bool = False
    ) -> dict[str, Any]:
        """The resource (without ``id`` and ``meta``'s bookkeeping) from field values and
        the stored extras. Neither argument is changed, and neither is kept unless
        ``owned``: then ``extras`` (a dict the caller just decoded and gives away) becomes
        the result instead of being copied.

        Runs the plan made once at binding (:class:`_ReadPlan`): per row, one pass over
        the fields, no lookups by name."""
        out: dict[str, Any] = extras if owned and type(extras) is dict else copy_json(dict(extras))
        stored_exts = [urn for urn in self._plan.ext_urns if urn in out]
        self._plan.fill(values, out)
        schemas = out.get("schemas")
        ids = list(schemas) if isinstance(schemas, list) else [self.rt.schema.id]
        for urn in self._plan.ext_urns:
            ext_value = out.get(urn)
            if ext_value is None:
                continue
            if isinstance(ext_value, dict) and not ext_value and urn not in stored_exts:
                del out[urn]  # made for fields that turned out empty
            elif urn not in ids:
                ids.append(urn)
        out["schemas"] = ids
        return out

    # -- writing -------------------------------------------------------------------------

    def write(self, resource: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split ``resource`` into ``(field values, extras)``.

        Every mapped field gets a value (None where the resource has none, so that the
        field is cleared). ``id``, the derived ``groups`` and a relation's ``members`` are
        not extras. Applies the mapping's ``unmapped`` rule: ``"reject"`` raises
        :class:`~scim2_core.InvalidValueError` (400 ``invalidValue``) naming the attributes
        no field holds (RFC 7644 Table 9: "the value specified was not compatible with
        [...] resource schema").
        """
        extras: dict[str, Any] = copy_json(dict(resource))
        extras.pop("id", None)
        extras.pop("groups", None)
        if self.has_members:
            extras.pop("members", None)
        values: dict[str, Any] = {}
        for f in self.singles:
            container = _container(extras, f.ref.urn, create=False)
            value: Any = None
            if container is not None:
                name = f.ref.attribute.name
                if f.ref.sub is None:
                    value = container.pop(name, None)
                else:
                    parent = container.get(name)
                    if isinstance(parent, dict):
                        value = parent.pop(f.ref.sub.name, None)
                        if not parent:
                            del container[name]
            values[f.field] = f.model_value(value)
        for g in self.groups:
            container = _container(extras, g.ref.urn, create=False)
            items = container.get(g.ref.attribute.name) if container is not None else None
            found = None
            if isinstance(items, list):
                found = next((el for el in items if g.matches(el)), None)
            for f in g.fields:
                assert f.ref.sub is not None
                value = found.pop(f.ref.sub.name, None) if found is not None else None
                values[f.field] = f.model_value(value)
        policy = self.mapping.unmapped
        if policy != "keep":
            unmapped = self._prune(extras, drop=policy == "drop")
            if unmapped and policy == "reject":
                shown = ", ".join(sorted(unmapped)[:5])
                raise InvalidValueError(f"This server does not store the attributes: {shown}.")
        return values, extras

    def _prune(self, extras: dict[str, Any], *, drop: bool) -> list[str]:
        """The labels of the unmapped values in ``extras``; removed from it if ``drop``."""
        found: list[str] = []

        def visit(container: dict[str, Any], urn: str | None) -> None:
            for name in list(container):
                if urn is None and (name in _STRUCTURE or self.rt.extension(name) is not None):
                    continue
                label = attr_key(urn, name)
                value = container[name]
                groups = self.groups_of(urn, name)
                kept_subs = {
                    f.ref.sub.name
                    for f in self.singles
                    if f.ref.sub is not None and attr_key(f.ref.urn, f.ref.attribute.name) == label
                }
                if groups and isinstance(value, list):
                    keep = []
                    for el in value:
                        g = next((g for g in groups if g.matches(el)), None)
                        if g is None:
                            found.append(label)
                            continue
                        allowed = {k for k, _ in g.where} | {"primary"}
                        extra = [k for k in el if k not in allowed]
                        found.extend(f"{label}.{k}" for k in extra)
                        if drop:
                            for k in extra:
                                del el[k]
                        keep.append(el)
                    if drop:
                        container[name] = keep
                elif kept_subs and isinstance(value, dict):
                    found.extend(f"{label}.{k}" for k in value)
                    if drop:
                        del container[name]
                else:
                    found.append(label)
                    if drop:
                        del container[name]

        visit(extras, None)
        for ext, _ in self.rt.extensions:
            value = extras.get(ext.id)
            if isinstance(value, dict):
                visit(value, ext.id)
        return found

    # -- the value index -----------------------------------------------------------------

    def leaves(self, extras: Mapping[str, Any]) -> Iterator[Leaf]:
        """Every scalar of ``extras`` that a filter may test, for the ORM's value index.

        dateTime values are given in the canonical UTC text of
        :func:`~scim2_core.schema.format_datetime`, whose text order is instant order.
        """
        for key, raw in extras.items():
            if key == "meta":
                continue
            if key == "schemas":
                if isinstance(raw, list):
                    yield from (Leaf("schemas", "", i, v) for i, v in enumerate(raw))
                continue
            ext = self.rt.extension(key)
            if ext is not None:
                if isinstance(raw, dict):
                    for name, value in raw.items():
                        attr = ext.attribute(name)
                        if attr is not None:
                            yield from _attr_leaves(attr_key(ext.id, attr.name), attr, value)
                continue
            top = self.rt.top_level(key)
            if top is not None and isinstance(top[1], Attribute):
                yield from _attr_leaves(key, top[1], raw)


def _container(resource: dict[str, Any], urn: str | None, *, create: bool) -> Any:
    if urn is None:
        return resource
    value = resource.get(urn)
    if isinstance(value, dict):
        return value
    if create:
        value = resource[urn] = {}
        return value
    return None


def _scalar(attr: Attribute, value: Any) -> Any:
    if attr.type == "dateTime" and isinstance(value, str):
        try:
            return format_datetime(parse_datetime(value))
        except (ValueError, TypeError, OverflowError):
            return value
    return value


def _attr_leaves(key: str, attr: Attribute, value: Any) -> Iterator[Leaf]:
    if value is None:
        return
    if attr.is_complex:
        items = value if attr.multi_valued and isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            if attr.multi_valued:
                yield Leaf(key, ELEMENT, i, None)
            for name, sub_value in item.items():
                sub = attr.sub(name)
                if (
                    sub is not None
                    and sub_value is not None
                    and not isinstance(sub_value, (dict, list))
                ):
                    yield Leaf(key, sub.name, i, _scalar(sub, sub_value))
        return
    items = value if attr.multi_valued and isinstance(value, list) else [value]
    for i, item in enumerate(items):
        if item is not None and not isinstance(item, (dict, list)):
            yield Leaf(key, "", i, _scalar(attr, item))


class _ReadPlan:
    """How :meth:`BoundMapping.read` puts field values into a resource, made once per
    mapping: per single field ``(field, urn, attribute name, sub name, to_scim)``, per
    value-filtered group its container, name, tests and fields."""

    __slots__ = ("ext_urns", "groups", "singles")

    def __init__(self, bm: BoundMapping) -> None:
        self.singles = tuple(
            (
                f.field,
                f.ref.urn,
                f.ref.attribute.name,
                f.ref.sub.name if f.ref.sub is not None else None,
                f.to_scim,
            )
            for f in bm.singles
        )
        self.groups = tuple(
            (
                g,
                g.ref.urn,
                g.ref.attribute.name,
                dict(g.where),
                tuple((f.field, f.ref.sub.name if f.ref.sub else "", f.to_scim) for f in g.fields),
            )
            for g in bm.groups
        )
        self.ext_urns = tuple(ext.id for ext, _ in bm.rt.extensions)

    def fill(self, values: Mapping[str, Any], out: dict[str, Any]) -> None:
        """Each field's SCIM value into ``out`` (see :meth:`BoundField.scim_value`)."""
        self._fill_singles(values, out)
        if self.groups:
            self._fill_groups(values, out)

    def _fill_singles(self, values: Mapping[str, Any], out: dict[str, Any]) -> None:
        for field, urn, name, sub, to_scim in self.singles:
            value = values.get(field)
            if value is None:
                continue
            if to_scim is not None:
                value = to_scim(value)
                if value is None:
                    continue
            if value == "":
                continue
            container = out if urn is None else _container(out, urn, create=True)
            if sub is None:
                container[name] = value
            else:
                parent = container.get(name)
                if type(parent) is not dict:
                    parent = container[name] = {}
                parent[sub] = value

    def _fill_groups(self, values: Mapping[str, Any], out: dict[str, Any]) -> None:
        """The one element each value-filtered group of fields holds
        (``emails[type eq "work"]``), merged into its multi-valued attribute."""
        for g, urn, name, where, fields in self.groups:
            got = {}
            for field, sub, to_scim in fields:
                value = values.get(field)
                if value is not None and to_scim is not None:
                    value = to_scim(value)
                if value is not None and value != "":
                    got[sub] = value
            container = out if urn is None else _container(out, urn, create=bool(got))
            if container is None:
                continue
            items = container.get(name)
            if not isinstance(items, list) or not items:
                if got:
                    container[name] = [{**where, **got}]
                else:
                    container.pop(name, None)
                continue
            found = next((el for el in items if g.matches(el)), None)
            if found is not None:
                found.update(got)
                if not got and all(k in where or k == "primary" for k in found):
                    items.remove(found)  # the field was emptied: the value is gone
            elif got:
                items.append({**where, **got})
            if not items:
                container.pop(name, None)
