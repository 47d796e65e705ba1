"""PATCH (RFC 7644 §3.5.2) applied to resource dicts in canonical form.

https://www.rfc-editor.org/rfc/rfc7644#section-3.5.2

:func:`parse_patch_request` validates a PatchOp message and parses every path once;
:func:`apply_patch` is a pure function from (resource, operations) to the new resource, or
None when nothing changed. The engine calls it inside ``Backend.update`` and bumps
``meta.version``/``meta.lastModified`` only when the result is not None.

RFC 7644 §3.5.2: "A patch request, regardless of the number of operations, SHALL be treated
as atomic. If a single operation encounters an error condition, the original SCIM resource
MUST be restored, and a failure status SHALL be returned." The input dict is never mutated:
changed top-level attributes are built copy-on-write in a dict of overrides and merged into
a shallow copy of the resource at the end, so a failure leaves nothing to restore and a
1-member add to a 10k-member group copies one list, not the group.

Identity-provider tolerances (on unless ``PatchOptions.strict``) are listed, with example
requests, in docs/idp-notes.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from .._errors import (
    InvalidFilterError,
    InvalidPathError,
    InvalidValueError,
    MutabilityError,
    NoTargetError,
    ScimError,
)
from ..filter import Filter, PatchPath, compile_value_filter
from ..schema import Attribute, AttrRef, ResourceType, Schema, normalize_value
from ._message import OpName, PatchOperation, PatchOptions, parse_path_cached
from ._mutability import check_immutable, check_removable, clean_complex, read_only
from ._overlay import Overlay
from ._values import add_values, add_values_to, apply_filtered, remove_values, seed_from_filter

#: Keys of a no-path value object that name no schema attribute but are part of every
#: resource; ignored when tolerant (Okta sends ``id`` and ``schemas`` back in renames).
_RESOURCE_KEYS: Final[frozenset[str]] = frozenset(("schemas",))


def apply_patch(
    rt: ResourceType,
    resource: dict[str, Any],
    operations: Sequence[PatchOperation],
    *,
    options: PatchOptions,
) -> dict[str, Any] | None:
    """Apply ``operations`` in order to ``resource`` (canonical form) for resource type ``rt``.

    Returns the new resource in canonical form, or None if the operations changed nothing.
    ``resource`` is never mutated. Does not touch ``meta``. Raises a :class:`ScimError`
    subclass (the whole PATCH fails) when any operation fails.
    """
    run = _Run(rt, resource, options)
    for index, operation in enumerate(operations):
        try:
            run.apply(operation)
        except ScimError as exc:
            if len(operations) > 1 and not exc.detail.startswith("Operations["):
                exc.detail = f"Operations[{index}]: {exc.detail}"
                exc.args = (exc.detail,)
            raise
    return run.view.result()


class _Run:
    """One :func:`apply_patch` call: dispatches each operation by the form of its path and
    writes through a copy-on-write :class:`Overlay` of the resource."""

    __slots__ = ("options", "rt", "tolerant", "view")

    def __init__(self, rt: ResourceType, resource: dict[str, Any], options: PatchOptions):
        self.rt = rt
        self.options = options
        self.tolerant = not options.strict
        self.view = Overlay(resource)

    # -- dispatch --

    def apply(self, operation: PatchOperation) -> None:
        op = operation.op
        if operation.path_text is None:
            self._apply_object(op, None, operation.value)
            return
        ext = self.rt.extension(operation.path_text.strip())
        if ext is not None:
            # A bare extension schema URN names the extension object.
            if op == "remove" or operation.value is None:
                self._remove_extension(ext)
                return
            self._apply_extension(op, ext, operation.value)
            return
        path = operation.path
        if path is None:  # an unparseable "urn:..." that is no known extension
            raise InvalidPathError(f"Unknown attribute path {operation.path_text!r}.")
        self._apply_path(
            op,
            path,
            operation.path_text.strip(),
            operation.value,
            operation.has_value,
            from_path=True,
        )

    def _apply_path(
        self,
        op: OpName,
        path: PatchPath,
        text: str,
        value: Any,
        has_value: bool,
        *,
        from_path: bool,
    ) -> None:
        """Apply an operation at ``path``: the operation's own path (``from_path``) or a
        filtered key of a no-path value object (tolerance 16 of docs/idp-notes.md)."""
        ref = self._resolve(str(path.attr))
        attr = ref.attribute
        sub_attr: Attribute | None = None
        if path.filter is not None and path.sub is not None and ref.sub is None:
            sub_attr = attr.sub(path.sub)
            if sub_attr is None:
                raise InvalidPathError(f"Unknown attribute path {text!r}.")
        if from_path and op != "remove":
            _refuse_read_only(ref, sub_attr, text)
        if path.filter is None:
            # parse_path puts a sub-attribute after a filter only (``name.givenName`` is
            # all in ``path.attr``).
            self._apply_ref(op, ref, value, has_value)
            return
        if ref.sub is None and attr.is_complex and not attr.multi_valued and self.tolerant:
            self._apply_filtered_single(op, ref, path.filter, sub_attr, value, has_value, text)
            return
        if ref.sub is not None or not (attr.multi_valued and attr.is_complex):
            raise InvalidPathError(
                f"A value filter needs a multi-valued complex attribute: {text!r}."
            )
        apply_filtered(self.view, self.options, op, ref, path.filter, sub_attr, value, text)

    def _resolve(self, text: str) -> AttrRef:
        """:meth:`ResourceType.resolve_path`; tolerant, a name that is no core attribute
        may name an attribute of exactly one extension without its URN.

        Entra ID sends ``"path": "manager"`` for the enterprise extension's manager
        (Microsoft Learn, "Develop and plan provisioning for a SCIM endpoint", example 5).
        RFC 7644 §3.10 reads an unqualified name in the core schema only, so strict mode
        refuses it with 400 invalidPath.
        """
        try:
            return self.rt.resolve_path(text)
        except InvalidPathError:
            if not self.tolerant or text.lower().startswith("urn:"):
                raise
            name, _, sub = text.partition(".")
            found = [
                ref
                for ext, _required in self.rt.extensions
                if (ref := self.rt.resolve(ext.id, name, sub or None)) is not None
            ]
            if len(found) != 1:
                raise
            return found[0]

    def _apply_object(self, op: OpName, urn: str | None, value: Mapping[str, Any]) -> None:
        """``add``/``replace`` with no path: "the "value" parameter contains a set of
        attributes to be added to the resource" (§3.5.2.1) / "a list of one or more
        attributes that are to be replaced" (§3.5.2.3).
        """
        for key, item in value.items():
            if not isinstance(key, str):
                self._unknown(str(key))
                continue
            if key in _RESOURCE_KEYS or key.lower() in _RESOURCE_KEYS:
                if self.tolerant:
                    continue
                raise MutabilityError(f"{key!r} cannot be changed with PATCH.")
            found = self.rt.top_level(key)
            if found is not None:
                target_urn, target = found
                if isinstance(target, Schema):
                    if item is None and op == "replace":
                        self._remove_extension(target)
                    elif isinstance(item, Mapping):
                        self._apply_extension(op, target, item)
                    else:
                        raise InvalidValueError(f"Extension {target.id!r} must be a JSON object.")
                    continue
                self._apply_ref(op, AttrRef(target_urn, target), item, True)
                continue
            # Keys may be attribute paths: dotted (``name.givenName``, Entra ID) or
            # URN-qualified (``urn:...:enterprise:2.0:User:employeeNumber``, RFC 7644 §3.10).
            if "[" in key and self.tolerant:
                # Tolerance: a key that is a filtered path (``emails[type eq "work"].value``)
                # is applied as that path; the RFC allows attribute names only here.
                try:
                    parsed = parse_path_cached(key)
                except (InvalidPathError, InvalidFilterError):
                    self._unknown(key)
                    continue
                self._apply_path(op, parsed, key, item, True, from_path=False)
                continue
            try:
                ref = self._resolve(key)
            except InvalidPathError:
                self._unknown(key)
                continue
            self._apply_ref(op, ref, item, True)

    def _apply_extension(self, op: OpName, ext: Schema, value: Any) -> None:
        if not isinstance(value, Mapping):
            raise InvalidValueError(f"Extension {ext.id!r} must be a JSON object.")
        for key, item in value.items():
            attr = ext.attribute(key) if isinstance(key, str) else None
            if attr is None:
                self._unknown(f"{ext.id}:{key}")
                continue
            self._apply_ref(op, AttrRef(ext.id, attr), item, True)

    def _remove_extension(self, ext: Schema) -> None:
        for attr in ext.attributes:
            check_removable(attr, self.view.get(ext.id, attr.name))
        self.view.unassign_extension(ext.id)

    def _unknown(self, name: str) -> None:
        if self.tolerant:
            return
        raise InvalidPathError(f"Unknown attribute {name!r} for resource type {self.rt.name}.")

    # -- a path without a value filter --

    def _apply_ref(self, op: OpName, ref: AttrRef, value: Any, has_value: bool) -> None:
        attr, sub = ref.attribute, ref.sub
        what = str(ref)
        if op != "remove" and (
            read_only(attr, what, self.tolerant) or (sub and read_only(sub, what, self.tolerant))
        ):
            return
        current = self.view.get(ref.urn, attr.name)
        if sub is not None:
            self._apply_sub(op, ref, current, value, has_value)
            return
        if (
            self.tolerant
            and not attr.multi_valued
            and isinstance(value, list)
            and len(value) == 1
            and op != "remove"
        ):
            # Tolerance: a one-item array for a single-valued attribute is that item. Entra
            # ID adds a manager as ``"value": [{"$ref": "...", "value": "<id>"}]``.
            value = value[0]
        if op == "remove" or value is None:
            if op == "remove" and has_value and value is not None and attr.multi_valued:
                remove_values(self.view, ref, current, value, self.tolerant)
                return
            # §3.5.2.2: "If the target location is a single-value attribute, the attribute
            # and its associated value is removed [...] If the target location is a
            # multi-valued attribute and no filter is specified, the attribute and all
            # values are removed". A replace with null unassigns too (RFC 7643 §2.5).
            check_removable(attr, current, what)
            self.view.set(ref.urn, attr.name, None)
            return
        new = normalize_value(attr, value, tolerant=self.tolerant, where=what)
        if attr.multi_valued:
            items = [
                clean_complex(attr, v, what, self.tolerant) if attr.is_complex else v for v in new
            ]
            if op == "add":
                # §3.5.2.1: "If the target location specifies a multi-valued attribute, a
                # new value is added to the attribute." "If the target location already
                # contains the value specified, no changes SHOULD be made".
                add_values(self.view, ref, current, items)
            else:
                # §3.5.2.3: "If the target location is a multi-valued attribute and no
                # filter is specified, the attribute and all values are replaced."
                merged: list[Any] = []
                add_values_to(merged, attr, items, what)
                if not merged:
                    check_removable(attr, current, what)
                check_immutable(attr, current or None, merged or None, what)
                self.view.set(ref.urn, attr.name, merged)
            return
        if attr.is_complex:
            # §3.5.2.3: "If the target location specifies a complex attribute, a set of
            # sub-attributes SHALL be specified in the "value" parameter, which replaces
            # any existing values or adds where an attribute did not previously exist.
            # Sub-attributes that are not specified in the "value" parameter are left
            # unchanged." Add reads the same way (§3.5.2.1, "the value is replaced").
            new = clean_complex(attr, new, what, self.tolerant)
            obj: dict[str, Any] = dict(current) if isinstance(current, dict) else {}
            for key, item in new.items():
                sub_attr = attr.sub(key)
                if sub_attr is not None:
                    check_immutable(sub_attr, obj.get(key), item, f"{what}.{key}")
                obj[key] = item
            self.view.set(ref.urn, attr.name, obj)
            return
        # §3.5.2.1: "If the target location specifies a single-valued attribute, the
        # existing value is replaced." §3.5.2.3: "the attributes value is replaced."
        check_immutable(attr, current, new, what)
        self.view.set(ref.urn, attr.name, new)

    def _apply_sub(
        self, op: OpName, ref: AttrRef, current: Any, value: Any, has_value: bool
    ) -> None:
        """``name.givenName`` or ``emails.value`` (no filter)."""
        attr, sub = ref.attribute, ref.sub
        assert sub is not None
        what = str(ref)
        remove = op == "remove" or value is None
        new = None if remove else normalize_value(sub, value, tolerant=self.tolerant, where=what)
        if attr.multi_valued:
            # No filter: the sub-attribute of every value.
            items = self.view.own_list(current)
            if not items and not remove:
                items.append({sub.name: new})
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    continue
                old = item.get(sub.name)
                if remove:
                    check_removable(sub, old, what)
                    if old is None:
                        continue
                    item = {k: v for k, v in item.items() if k != sub.name}
                else:
                    check_immutable(sub, old, new, what)
                    item = {**item, sub.name: new}
                items[i] = item
            items = [i for i in items if i != {}]
            if not remove and sub.name == "primary" and new is True and len(items) > 1:
                raise InvalidValueError(f"Only one value of {attr.name!r} may be primary.")
            self.view.set(ref.urn, attr.name, items)
            return
        obj = current if isinstance(current, dict) else {}
        old = obj.get(sub.name)
        if remove:
            check_removable(sub, old, what)
            if old is None:
                return
            self.view.set(ref.urn, attr.name, {k: v for k, v in obj.items() if k != sub.name})
            return
        check_immutable(sub, old, new, what)
        self.view.set(ref.urn, attr.name, {**obj, sub.name: new})

    # -- a value filter on a single-valued attribute --

    def _apply_filtered_single(
        self,
        op: OpName,
        ref: AttrRef,
        flt: Filter,
        sub: Attribute | None,
        value: Any,
        has_value: bool,
        what: str,
    ) -> None:
        """Tolerance: a value filter on a single-valued complex attribute.

        Entra ID removes a manager with ``{"op": "remove", "path":
        "urn:...:enterprise:2.0:User:manager[value eq \"<id>\"]"}``. RFC 7644 §3.5.2
        (Figure 7, ``valuePath``) and §3.5.2.2 define filters on multi-valued attributes
        only; the intent is unambiguous: the one value is selected when it matches. A
        remove that matches nothing changes nothing (the manager is already another one
        or none); an add/replace that matches nothing is 400 noTarget (§3.5.2.3), except
        an add to an absent attribute, which creates it from the filter's ``eq``
        comparisons (§3.5.2.1, "If the target location does not exist, the attribute and
        value are added").
        """
        attr = ref.attribute
        try:
            predicate: Callable[[Any], bool] = compile_value_filter(flt, attr)
        except InvalidFilterError as exc:
            raise InvalidPathError(exc.detail) from None
        current = self.view.get(ref.urn, attr.name)
        matched = isinstance(current, dict) and predicate(current)
        target = AttrRef(ref.urn, attr, sub) if sub is not None else ref
        if op == "remove" or value is None:
            if matched:
                self._apply_ref("remove", target, None, False)
            return
        if matched:
            self._apply_ref(op, target, value, has_value)
            return
        seed = (
            seed_from_filter(flt, attr, self.tolerant) if op == "add" and current is None else None
        )
        if seed is None:
            raise NoTargetError(f"The filter of {what!r} matched no value.")
        self._apply_ref("add", ref, seed, True)
        self._apply_ref(op, target, value, has_value)


def _refuse_read_only(ref: AttrRef, sub: Attribute | None, text: str) -> None:
    """Refuse an ``add``/``replace`` whose path names a readOnly attribute, in both modes.

    RFC 7644 §3.5.2: "Each operation against an attribute MUST be compatible with the
    attribute's mutability and schema as defined in Sections 2.2 and 2.3 of [RFC7643].
    For example, a client MUST NOT modify an attribute that has mutability "readOnly" or
    "immutable". [...] An operation that is not compatible with an attribute's mutability
    or schema SHALL return the appropriate HTTP response status code and a JSON detail
    error response as defined in Section 3.12" (Table 9: 400, scimType "mutability").
    No identity provider is documented to send such a path (docs/idp-notes.md), so none
    is tolerated. A readOnly key inside a no-path value object is another matter: Okta
    echoes the group's ``id`` there on every rename, and that key is ignored when tolerant.
    """
    for attr in (ref.attribute, ref.sub, sub):
        if attr is not None and attr.mutability == "readOnly":
            raise MutabilityError(f"Attribute {text!r} is readOnly.")
