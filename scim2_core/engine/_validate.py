"""The pure rules of a write (RFC 7643 §2, §3; RFC 7644 §3.3, §3.5.1): which schemas a body
must name, what the server drops (readOnly values, nulls), what must be present (required,
one primary), and how PUT keeps immutable and writeOnly values. No I/O: each function reads
the resource type and the data it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Final

from .._errors import InvalidSyntaxError, InvalidValueError, MutabilityError
from .._json import copy_json
from .._options import Options
from .._urns import ENTERPRISE_USER_URN, LEGACY_CORE_URN, LEGACY_ENTERPRISE_USER_URN
from ..schema import Attribute, ResourceType, normalize_attributes

__all__ = [
    "accept_legacy_urns",
    "check_primary",
    "check_required",
    "check_schemas",
    "drop_readonly_and_nulls",
    "member_values",
    "merge_for_replace",
    "normalize",
    "same_content",
    "schemas_for",
]

#: Pre-RFC URNs (draft-ietf-scim-core-schema) that OneLogin still sends in POST/PUT bodies,
#: lower-cased, with what each stands for: ``None`` is the endpoint's core schema.
_LEGACY_URNS: Final = {
    LEGACY_CORE_URN: None,
    LEGACY_ENTERPRISE_USER_URN: ENTERPRISE_USER_URN,
}

#: Top-level attributes the server owns: never taken from a request body.
_READONLY_TOP: Final = frozenset(("id", "meta", "groups"))


def accept_legacy_urns(
    rt: ResourceType, body: Mapping[str, Any], options: Options
) -> Mapping[str, Any]:
    """``body`` with the pre-RFC URNs OneLogin sends replaced by the RFC 7643 ones (unless
    strict): ``urn:scim:schemas:core:2.0`` by the endpoint's core schema (the endpoint
    fixes the resource type) and ``urn:scim:schemas:extension:enterprise:2.0`` by the
    enterprise extension, in ``schemas`` and as the key of the extension's attributes.

    RFC 7643 §3: "schemas [...] an array of Strings containing URIs that are used to
    indicate the namespaces of the SCIM schemas that define the attributes present in the
    current JSON structure": the legacy URNs name no schema of ours, so strict mode keeps
    answering such a body 400.
    """
    schemas = body.get("schemas")
    if options.strict or not isinstance(schemas, list):
        return body
    known = {sid.lower(): sid for sid in rt.schema_ids}
    rename: dict[str, str] = {}
    for urn, meaning in _LEGACY_URNS.items():
        target = rt.schema.id if meaning is None else known.get(meaning.lower())
        if target is not None:
            rename[urn] = target
    if not any(isinstance(s, str) and s.lower() in rename for s in schemas):
        return body
    out = {k: v for k, v in body.items() if not (isinstance(k, str) and k.lower() in rename)}
    for key, value in body.items():
        if isinstance(key, str) and key.lower() in rename:
            out.setdefault(rename[key.lower()], value)
    fixed = [rename.get(s.lower(), s) if isinstance(s, str) else s for s in schemas]
    out["schemas"] = list(dict.fromkeys(fixed))
    return out


def check_schemas(rt: ResourceType, body: Mapping[str, Any], options: Options) -> None:
    """RFC 7643 §3: "schemas [...] REQUIRED" and must name the resource's core schema.

    Extra URNs are tolerated unless strict (Entra ID adds its own on group creation).
    """
    schemas = body.get("schemas")
    if schemas is None:
        raise InvalidSyntaxError(
            f"The resource has no 'schemas' attribute; expected [{rt.schema.id!r}]."
        )
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise InvalidSyntaxError("'schemas' must be a list of URNs.")
    lowered = {s.lower() for s in schemas}
    if rt.schema.id.lower() not in lowered:
        raise InvalidValueError(f"'schemas' must include {rt.schema.id!r} for a {rt.name}.")
    if options.strict:
        known = {sid.lower() for sid in rt.schema_ids}
        unknown = sorted(s for s in schemas if s.lower() not in known)
        if unknown:
            raise InvalidValueError(f"Unknown schemas {unknown} for a {rt.name}.")


def normalize(rt: ResourceType, body: Mapping[str, Any], options: Options) -> dict[str, Any]:
    """The write payload in canonical form, without what the server owns."""
    strict = options.strict
    data = normalize_attributes(
        rt,
        body,
        tolerant=not strict,
        strict_unknown=strict or options.reject_unknown_attributes,
    )
    data.pop("schemas", None)
    # RFC 7644 §3.3: "[...] attributes whose mutability is "readOnly" [...] SHALL be
    # ignored"; RFC 7644 §3.5.1 likewise for PUT.
    for name in [k for k in data if k in _READONLY_TOP]:
        del data[name]
    drop_readonly_and_nulls(rt, data)
    return data


def drop_readonly_and_nulls(rt: ResourceType, data: dict[str, Any]) -> None:
    """Remove readOnly attributes/sub-attributes and unassigned values, in place.

    RFC 7643 §2.5: "Unassigned attributes, the null value, or empty array (in the case of
    a multi-valued attribute) SHALL be considered to be equivalent in "state"."
    """

    def clean(container: dict[str, Any], lookup: Callable[[str], Attribute | None]) -> None:
        for key in list(container):
            attr = lookup(key)
            if attr is None:
                continue
            if attr.mutability == "readOnly":
                del container[key]
                continue
            value = container[key]
            if attr.is_complex and value is not None:
                _drop_readonly_and_null_subs(attr, value)
            if value is None or value == [] or value == {}:
                del container[key]

    def top(name: str) -> Attribute | None:
        ref = rt.resolve(None, name)
        return ref.attribute if ref is not None else None

    clean(data, top)
    for ext, _ in rt.extensions:
        block = data.get(ext.id)
        if not isinstance(block, dict):
            data.pop(ext.id, None)
            continue
        clean(block, ext.attribute)
        if not block:
            del data[ext.id]


def _drop_readonly_and_null_subs(attr: Attribute, value: Any) -> None:
    """The sub-attribute half of :func:`drop_readonly_and_nulls`, for one complex value
    (or list of them): empty objects left behind leave the list too."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict):
            continue
        for sub_name in list(item):
            sub = attr.sub(sub_name)
            readonly = sub is not None and sub.mutability == "readOnly"
            if item[sub_name] is None or item[sub_name] == [] or readonly:
                del item[sub_name]
    if isinstance(value, list):
        value[:] = [v for v in value if not (isinstance(v, dict) and not v)]


def _checks_subs(attr: Attribute) -> bool:
    """Whether :func:`check_required` has anything to check inside values of ``attr``: a
    required sub-attribute, or a complex one (the 10k members of a group have neither in
    the core schema, RFC 7643 §4.2)."""
    return any(
        (sub.required and sub.mutability != "readOnly" and sub.name != "$ref") or sub.is_complex
        for sub in attr.sub_attributes
    )


class _Required:
    """What :func:`check_required` checks in one container (a resource, an extension
    block, a complex value), worked out once per resource type: the names of the
    attributes that must be present, and the complex attributes whose values hold
    something to check (with their own plan)."""

    __slots__ = ("inside", "names")

    def __init__(self, attrs: Iterable[Attribute]) -> None:
        attrs = tuple(attrs)
        # "$ref" sub-attributes are references the server can derive from "value"
        # (RFC 7643 §4.3 marks manager.$ref REQUIRED, yet no IdP sends it); readOnly
        # attributes are the server's to set.
        self.names = tuple(
            a.name for a in attrs if a.required and a.mutability != "readOnly" and a.name != "$ref"
        )
        self.inside = tuple(
            (a.name, _Required(a.sub_attributes)) for a in attrs if a.is_complex and _checks_subs(a)
        )


class _WritePlan:
    """The per-resource-type plans of :func:`check_required` and :func:`check_primary`."""

    __slots__ = ("extensions", "primaries", "required", "rt")

    def __init__(self, rt: ResourceType) -> None:
        self.rt = rt
        self.required = _Required(rt.schema.attributes)
        self.extensions = tuple(
            (ext.id, required, _Required(ext.attributes)) for ext, required in rt.extensions
        )
        #: ``(extension urn or None, attribute name)`` of the multi-valued complex
        #: attributes with a ``primary`` sub-attribute.
        self.primaries = tuple(
            (urn, attr.name)
            for urn, attr in rt.iter_attributes()
            if attr.multi_valued and attr.is_complex and attr.sub("primary") is not None
        )


#: The plans by ``id`` of their resource type (checked by identity: an id may be reused
#: once a type is gone); a few types per engine, cleared past a bound.
_PLANS: dict[int, _WritePlan] = {}
_PLANS_BOUND: Final = 256


def _plan(rt: ResourceType) -> _WritePlan:
    plan = _PLANS.get(id(rt))
    if plan is None or plan.rt is not rt:
        if len(_PLANS) >= _PLANS_BOUND:
            _PLANS.clear()
        plan = _PLANS[id(rt)] = _WritePlan(rt)
    return plan


def _missing(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _check(
    container: Mapping[str, Any], plan: _Required, where: str, checked: Collection[int]
) -> None:
    for name in plan.names:
        if _missing(container.get(name)):
            raise InvalidValueError(f"Required attribute {where}{name!r} is missing.")
    for name, inner in plan.inside:
        value = container.get(name)
        items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        for item in items:
            if isinstance(item, dict) and id(item) not in checked:
                _check(item, inner, f"{name}.", checked)


def check_required(
    rt: ResourceType, data: Mapping[str, Any], checked: Collection[int] = ()
) -> None:
    """RFC 7643 §2.2 "required": 400 invalidValue when a required attribute is missing.

    RFC 7644 §3.3: "[...] if [...] required attributes are missing [...] the service
    provider [...] SHALL return [...] 400 [...] invalidValue". readOnly attributes are
    the server's to set and are not checked. Complex values whose ``id()`` is in
    ``checked`` were checked when stored and are skipped.
    """
    plan = _plan(rt)
    _check(data, plan.required, "", checked)
    for urn, required, inner in plan.extensions:
        block = data.get(urn)
        if block is None:
            if required:
                raise InvalidValueError(f"The extension {urn!r} is required.")
            continue
        _check(block, inner, f"{urn}:", checked)


def check_primary(rt: ResourceType, data: Mapping[str, Any]) -> None:
    """RFC 7643 §2.4: "The primary attribute value "true" MUST appear no more than once."

    A POST or PUT body breaking it is 400 invalidValue (PATCH demotes the other values
    itself, RFC 7644 §3.5.2, so its result never reaches here with two).
    """
    for urn, name in _plan(rt).primaries:
        container = data if urn is None else data.get(urn)
        values = container.get(name) if isinstance(container, dict) else None
        if not isinstance(values, list) or len(values) < 2:
            continue
        if sum(1 for v in values if isinstance(v, dict) and v.get("primary") is True) > 1:
            raise InvalidValueError(f"Only one value of {name!r} may be primary (RFC 7643 §2.4).")


def merge_for_replace(rt: ResourceType, current: Mapping[str, Any], data: dict[str, Any]) -> None:
    """Apply RFC 7644 §3.5.1 mutability rules of PUT to ``data`` (in place).

    "immutable - If one or more values are already set for the attribute, the input
    value(s) MUST match, or HTTP status code 400 SHOULD be returned with a "scimType"
    error code of "mutability". If the service provider has no existing values, the new
    value(s) SHALL be applied." Omitted immutable and writeOnly values are kept (a PUT
    from an IdP that never knew the password must not erase it).
    """

    def apply(
        cur: Mapping[str, Any], new: dict[str, Any], attrs: Iterable[Attribute], label: str
    ) -> None:
        for attr in attrs:
            old = cur.get(attr.name)
            if attr.mutability == "immutable" and old not in (None, [], {}, ""):
                given = new.get(attr.name)
                if given is None:
                    new[attr.name] = copy_json(old)
                elif given != old:
                    raise MutabilityError(f"Attribute {label}{attr.name!r} is immutable.")
            elif attr.mutability == "writeOnly" and attr.name not in new and old is not None:
                new[attr.name] = old
            elif attr.is_complex and not attr.multi_valued and isinstance(old, dict):
                _keep_immutable_subs(attr, old, new, label)

    apply(current, data, rt.schema.attributes, "")
    for ext, _ in rt.extensions:
        cur_block = current.get(ext.id) or {}
        new_block = data.get(ext.id)
        if new_block is None:
            if any(
                a.mutability in ("immutable", "writeOnly") and a.name in cur_block
                for a in ext.attributes
            ):
                new_block = {}
            else:
                continue
        apply(cur_block, new_block, ext.attributes, f"{ext.id}:")
        if new_block:
            data[ext.id] = new_block


def _keep_immutable_subs(
    attr: Attribute, old: Mapping[str, Any], new: dict[str, Any], label: str
) -> None:
    """The immutable rule of :func:`merge_for_replace` for the sub-attributes of a singular
    complex attribute (RFC 7643 §2.2 characteristics apply to sub-attributes too)."""
    for sub in attr.sub_attributes:
        old_sub = old.get(sub.name)
        if sub.mutability != "immutable" or old_sub in (None, "", [], {}):
            continue
        given_parent = new.get(attr.name)
        given = given_parent.get(sub.name) if isinstance(given_parent, dict) else None
        if given is None:
            new.setdefault(attr.name, {})[sub.name] = copy_json(old_sub)
        elif given != old_sub:
            shown = f"{label}{attr.name}.{sub.name}"
            raise MutabilityError(f"Attribute {shown!r} is immutable.")


def same_content(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True if the two resources differ in nothing but ``meta``."""
    keys = (set(old) | set(new)) - {"meta"}
    return all(old.get(k) == new.get(k) for k in keys)


def member_values(members: Any) -> list[str]:
    """The string ``value`` of each member object (the ids a write refers to)."""
    if not isinstance(members, list):
        return []
    return [m["value"] for m in members if isinstance(m, dict) and isinstance(m.get("value"), str)]


def schemas_for(rt: ResourceType, data: Mapping[str, Any]) -> list[str]:
    """RFC 7643 §3 ``schemas``: the core schema, then each extension the data holds."""
    return [rt.schema.id, *(ext.id for ext, _ in rt.extensions if ext.id in data)]
