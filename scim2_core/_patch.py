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
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from operator import itemgetter
from typing import Any, Final, Literal

from ._errors import (
    InvalidFilterError,
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    MutabilityError,
    NoTargetError,
    ScimError,
)
from ._schema import Attribute, AttrRef, ResourceType, Schema, normalize_value
from .filter import And, Compare, Filter, PatchPath, compile_value_filter, parse_path

__all__ = [
    "PATCH_OP_URN",
    "PatchOperation",
    "PatchOptions",
    "apply_patch",
    "parse_patch_request",
    "patch_member_values",
]

PATCH_OP_URN: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

OpName = Literal["add", "remove", "replace"]
_OPS: Final[frozenset[str]] = frozenset(("add", "remove", "replace"))
_MISSING: Final = object()
_GET_VALUE: Final = itemgetter("value")
#: Keys of a no-path value object that name no schema attribute but are part of every
#: resource; ignored when tolerant (Okta sends ``id`` and ``schemas`` back in renames).
_RESOURCE_KEYS: Final[frozenset[str]] = frozenset(("schemas",))


@dataclass(frozen=True, slots=True, kw_only=True)
class PatchOptions:
    """How :func:`apply_patch` reads operations.

    ``strict`` turns off every identity-provider tolerance (docs/idp-notes.md).
    ``replace_creates_missing``: a ``replace`` whose value filter on a multi-valued complex
    attribute matches nothing adds the value (Entra ID's intent) instead of 400 noTarget;
    ignored in strict mode.
    """

    strict: bool = False
    replace_creates_missing: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class PatchOperation:
    """One parsed PATCH operation.

    ``path`` is the parsed path (None when the operation has none, or when the path is a
    bare extension schema URN, resolved against the resource type in :func:`apply_patch`);
    ``path_text`` the path as sent. ``has_value`` tells a ``null`` value from none.
    """

    op: OpName
    path: PatchPath | None = None
    path_text: str | None = None
    value: Any = None
    has_value: bool = False


# --- Parsing the message -------------------------------------------------------------------


def _member(obj: Mapping[str, Any], name: str, strict: bool) -> Any:
    """``obj[name]``, or with ``strict`` off the first key equal to it ignoring case."""
    if name in obj:
        return obj[name]
    if not strict:
        low = name.lower()
        for key, value in obj.items():
            if isinstance(key, str) and key.lower() == low:
                return value
    return _MISSING


def parse_patch_request(body: Mapping[str, Any], *, strict: bool) -> list[PatchOperation]:
    """Validate a PatchOp message (RFC 7644 §3.5.2) and parse its operations and paths.

    Raises :class:`InvalidSyntaxError` for a malformed message, :class:`InvalidValueError`
    for a missing value, :class:`InvalidPathError` for a malformed path and
    :class:`NoTargetError` for a ``remove`` without a path.
    """
    if not isinstance(body, Mapping):
        raise InvalidSyntaxError("The PATCH body must be a JSON object.")
    # "The body of each request MUST contain the "schemas" attribute with the URI value of
    # "urn:ietf:params:scim:api:messages:2.0:PatchOp"."
    schemas = _member(body, "schemas", strict)
    if not isinstance(schemas, list) or not any(
        isinstance(s, str)
        and (s == PATCH_OP_URN or (not strict and s.lower() == PATCH_OP_URN.lower()))
        for s in schemas
    ):
        raise InvalidSyntaxError(f"The PATCH body must have schemas [{PATCH_OP_URN!r}].")
    # "The body of an HTTP PATCH request MUST contain the attribute "Operations", whose value
    # is an array of one or more PATCH operations."
    raw_ops = _member(body, "Operations", strict)
    if not isinstance(raw_ops, list) or not raw_ops:
        raise InvalidSyntaxError('"Operations" must be an array of one or more operations.')
    return [_parse_operation(raw, i, strict) for i, raw in enumerate(raw_ops)]


def _parse_operation(raw: Any, index: int, strict: bool) -> PatchOperation:
    where = f"Operations[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidSyntaxError(f"{where} must be a JSON object.")
    # "Each PATCH operation object MUST have exactly one "op" member, whose value indicates
    # the operation to perform and MAY be one of "add", "remove", or "replace"."
    op = _member(raw, "op", strict)
    if not isinstance(op, str):
        raise InvalidSyntaxError(f'{where} must have an "op" of add, remove or replace.')
    name = op if strict else op.strip().lower()
    if name not in _OPS:
        raise InvalidSyntaxError(f"{where}: unknown op {op!r}; expected add, remove or replace.")
    path_text = _member(raw, "path", strict)
    if path_text is _MISSING or (path_text is None and not strict):
        path_text = None
    elif not isinstance(path_text, str):
        raise InvalidPathError(f'{where}: "path" must be a string.')
    elif not path_text.strip():
        if strict:
            raise InvalidPathError(f'{where}: "path" is empty.')
        path_text = None
    value = _member(raw, "value", strict)
    has_value = value is not _MISSING
    if not has_value:
        value = None
    # "The "path" attribute is OPTIONAL for "add" and "replace" and is REQUIRED for
    # "remove" operations." §3.5.2.2: "If "path" is unspecified, the operation fails with
    # HTTP status code 400 and a "scimType" error code of "noTarget"."
    if name == "remove" and path_text is None:
        raise NoTargetError(f"{where}: remove requires a path.")
    # §3.5.2.1: "The operation MUST contain a "value" member whose content specifies the
    # value to be added." A replace needs one too (null unassigns the target).
    if name == "add" and value is None:
        raise InvalidValueError(f"{where}: add requires a non-null value.")
    if name == "replace" and not has_value:
        raise InvalidValueError(f"{where}: replace requires a value.")
    if path_text is None and name != "remove" and not isinstance(value, Mapping):
        # §3.5.2.1/§3.5.2.3: with no path "the "value" parameter contains a set of
        # attributes" (a JSON object).
        raise InvalidValueError(f"{where}: without a path, the value must be a JSON object.")
    parsed: PatchPath | None = None
    if path_text is not None:
        try:
            parsed = _parse_path(path_text)
        except (InvalidPathError, InvalidFilterError) as exc:
            # A bare extension schema URN is a valid path (the extension object); only
            # the resource type can tell, so keep the text for apply_patch.
            if not (path_text.lower().startswith("urn:") and "[" not in path_text):
                raise InvalidPathError(f"{where}: {exc.detail}") from None
    return PatchOperation(
        op=name,  # type: ignore[arg-type]
        path=parsed,
        path_text=path_text,
        value=value,
        has_value=has_value,
    )


@lru_cache(maxsize=512)
def _parse_path_cached(text: str) -> PatchPath:
    return parse_path(text)


def _parse_path(text: str) -> PatchPath:
    """:func:`parse_path`, memoised for short paths: IdPs send the same few paths on every
    sync, and a parsed path is immutable."""
    if len(text) <= 200:
        return _parse_path_cached(text)
    return parse_path(text)


# --- Member ids a PATCH may add ---------------------------------------------------------------


def patch_member_values(
    rt: ResourceType, operations: Sequence[PatchOperation], *, strict: bool
) -> list[str]:
    """Every ``members`` value (a resource id) that ``operations`` may add to a Group.

    The engine checks that these exist before the write (RFC 7643 §4.2: a member is a
    resource of this service provider). It reads the *parsed* operations, so every form
    :func:`apply_patch` accepts is covered: any op and key case, ``"path": ""``, URN-
    qualified paths and keys (``urn:...:core:2.0:Group:members``), dotted keys
    (``members.value``), a lone object instead of an array, ``Value`` keys inside member
    objects, filters whose ``eq`` comparisons name the member (``members[value eq "x"]``)
    and filtered keys of a no-path value object. The result may hold ids that end up not
    added (a superset); it never misses one. Operations that are malformed are skipped
    here: :func:`apply_patch` rejects them.
    """
    members = rt.schema.attribute("members")
    if members is None or not members.is_complex:
        return []
    out: list[str] = []
    for operation in operations:
        if operation.op == "remove":
            continue
        if operation.path_text is None:
            if isinstance(operation.value, Mapping):
                for key, item in operation.value.items():
                    if isinstance(key, str):
                        _member_values_at(rt, key, item, strict, out)
            continue
        _member_values_at(rt, operation.path_text.strip(), operation.value, strict, out)
    return out


def _member_values_at(
    rt: ResourceType, text: str, value: Any, strict: bool, out: list[str]
) -> None:
    """Collect into ``out`` the member ids ``value`` puts at path ``text``, if it is
    (a part of) the core ``members`` attribute."""
    try:
        path = _parse_path(text)
        ref = rt.resolve_path(str(path.attr))
    except ScimError:
        return
    if ref.urn is not None or ref.attribute.name != "members":
        return
    attr = ref.attribute
    value_attr = attr.sub("value")
    if path.filter is not None:
        seed = _seed_from_filter(path.filter, attr, not strict)
        if seed is not None and isinstance(seed.get("value"), str):
            out.append(seed["value"])
    sub = ref.sub if ref.sub is not None else (attr.sub(path.sub) if path.sub else None)
    if sub is not None:
        if sub is value_attr and isinstance(value, str):
            out.append(value)
        return
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Mapping):
            found = _member(item, "value", False)
            if isinstance(found, str):
                out.append(found)


# --- Applying operations ---------------------------------------------------------------------


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
    return run.result()


class _Run:
    """The state of one :func:`apply_patch` call: copy-on-write overrides of top-level keys."""

    __slots__ = ("exts_touched", "options", "original", "overrides", "owned", "rt", "tolerant")

    def __init__(self, rt: ResourceType, resource: dict[str, Any], options: PatchOptions):
        self.rt = rt
        self.original = resource
        self.options = options
        self.tolerant = not options.strict
        #: top-level key -> new value (None: unassigned). Extension objects are keyed by URN.
        self.overrides: dict[str, Any] = {}
        #: ids of containers created by this run, safe to mutate in place.
        self.owned: set[int] = set()
        self.exts_touched: set[str] = set()

    # -- reading and writing top-level values --

    def _top(self, key: str) -> Any:
        if key in self.overrides:
            return self.overrides[key]
        return self.original.get(key)

    def get(self, ref_urn: str | None, name: str) -> Any:
        if ref_urn is None:
            return self._top(name)
        ext = self._top(ref_urn)
        return ext.get(name) if isinstance(ext, dict) else None

    def set(self, ref_urn: str | None, name: str, value: Any) -> None:
        """Set (or with None, [] or {}, unassign) a top-level attribute."""
        empty = value is None or value == [] or value == {}
        if ref_urn is None:
            self.overrides[name] = None if empty else value
            return
        ext = self._top(ref_urn)
        if not isinstance(ext, dict):
            if empty:
                return
            ext = {}
        elif id(ext) not in self.owned:
            ext = dict(ext)
        self.owned.add(id(ext))
        if empty:
            ext.pop(name, None)
        else:
            ext[name] = value
        self.overrides[ref_urn] = ext
        self.exts_touched.add(ref_urn)

    def own_list(self, value: Any) -> list[Any]:
        """A list this run may mutate holding the current values."""
        if isinstance(value, list) and id(value) in self.owned:
            return value
        out = list(value) if isinstance(value, list) else []
        self.owned.add(id(out))
        return out

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
            op, path, operation.path_text.strip(), operation.value, operation.has_value
        )

    def _apply_path(
        self, op: OpName, path: PatchPath, text: str, value: Any, has_value: bool
    ) -> None:
        if path.filter is None:
            # parse_path puts a sub-attribute after a filter only (``name.givenName`` is
            # all in ``path.attr``).
            self._apply_ref(op, self._resolve(str(path.attr)), value, has_value)
            return
        ref = self._resolve(str(path.attr))
        attr = ref.attribute
        sub_attr: Attribute | None = None
        if path.sub is not None and ref.sub is None:
            sub_attr = attr.sub(path.sub)
            if sub_attr is None:
                raise InvalidPathError(f"Unknown attribute path {text!r}.")
        if ref.sub is None and attr.is_complex and not attr.multi_valued and self.tolerant:
            self._apply_filtered_single(op, ref, path.filter, sub_attr, value, has_value, text)
            return
        if ref.sub is not None or not (attr.multi_valued and attr.is_complex):
            raise InvalidPathError(
                f"A value filter needs a multi-valued complex attribute: {text!r}."
            )
        self._apply_filtered(op, ref, path.filter, sub_attr, value, text)

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
                    parsed = _parse_path(key)
                except (InvalidPathError, InvalidFilterError):
                    self._unknown(key)
                    continue
                self._apply_path(op, parsed, key, item, True)
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
            self._check_removable(attr, self.get(ext.id, attr.name))
        self.overrides[ext.id] = None
        self.exts_touched.add(ext.id)

    def _unknown(self, name: str) -> None:
        if self.tolerant:
            return
        raise InvalidPathError(f"Unknown attribute {name!r} for resource type {self.rt.name}.")

    # -- mutability --

    def _read_only(self, attr: Attribute, what: str) -> bool:
        """True if an add/replace of ``attr`` is to be ignored (tolerant) — else raises."""
        if attr.mutability != "readOnly":
            return False
        if self.tolerant:
            return True
        # RFC 7644 §3.5.2: "a client MUST NOT modify an attribute that has mutability
        # "readOnly" or "immutable"."
        raise MutabilityError(f"Attribute {what!r} is readOnly.")

    @staticmethod
    def _check_immutable(attr: Attribute, old: Any, new: Any, what: str) -> None:
        # RFC 7644 §3.5.2: "a client MAY "add" a value to an "immutable" attribute if the
        # attribute had no previous value."
        if attr.mutability == "immutable" and old is not None and old != new:
            raise MutabilityError(f"Attribute {what!r} is immutable and already has a value.")

    @staticmethod
    def _check_removable(attr: Attribute, old: Any, what: str | None = None) -> None:
        # §3.5.2.2: "If an attribute is removed or becomes unassigned and is defined as a
        # required attribute or a read-only attribute, the server SHALL return [...] a
        # "scimType" error code of "mutability"."
        if old is None or old == [] or old == {}:
            return
        label = what or attr.name
        if attr.required:
            raise MutabilityError(f"Attribute {label!r} is required and cannot be removed.")
        if attr.mutability in ("readOnly", "immutable"):
            raise MutabilityError(f"Attribute {label!r} is {attr.mutability}.")

    def _clean_complex(self, attr: Attribute, value: dict[str, Any], what: str) -> dict[str, Any]:
        """Drop (tolerant) or reject (strict) readOnly sub-attributes of a new complex value."""
        for sub in attr.sub_attributes:
            if sub.mutability == "readOnly" and sub.name in value:
                if not self.tolerant:
                    raise MutabilityError(f"Attribute {what}.{sub.name!r} is readOnly.")
                value = {k: v for k, v in value.items() if k != sub.name}
        return value

    # -- a path without a value filter --

    def _apply_ref(self, op: OpName, ref: AttrRef, value: Any, has_value: bool) -> None:
        attr, sub = ref.attribute, ref.sub
        what = str(ref)
        if op != "remove" and (self._read_only(attr, what) or (sub and self._read_only(sub, what))):
            return
        current = self.get(ref.urn, attr.name)
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
                self._remove_values(ref, current, value)
                return
            # §3.5.2.2: "If the target location is a single-value attribute, the attribute
            # and its associated value is removed [...] If the target location is a
            # multi-valued attribute and no filter is specified, the attribute and all
            # values are removed". A replace with null unassigns too (RFC 7643 §2.5).
            self._check_removable(attr, current, what)
            self.set(ref.urn, attr.name, None)
            return
        new = normalize_value(attr, value, tolerant=self.tolerant, where=what)
        if attr.multi_valued:
            items = [self._clean_complex(attr, v, what) if attr.is_complex else v for v in new]
            if op == "add":
                # §3.5.2.1: "If the target location specifies a multi-valued attribute, a
                # new value is added to the attribute." "If the target location already
                # contains the value specified, no changes SHOULD be made".
                self._add_values(ref, current, items)
            else:
                # §3.5.2.3: "If the target location is a multi-valued attribute and no
                # filter is specified, the attribute and all values are replaced."
                merged = self._add_values_to([], attr, items, what)
                if not merged:
                    self._check_removable(attr, current, what)
                self._check_immutable(attr, current or None, merged or None, what)
                self.set(ref.urn, attr.name, merged)
            return
        if attr.is_complex:
            # §3.5.2.3: "If the target location specifies a complex attribute, a set of
            # sub-attributes SHALL be specified in the "value" parameter, which replaces
            # any existing values or adds where an attribute did not previously exist.
            # Sub-attributes that are not specified in the "value" parameter are left
            # unchanged." Add reads the same way (§3.5.2.1, "the value is replaced").
            new = self._clean_complex(attr, new, what)
            obj: dict[str, Any] = dict(current) if isinstance(current, dict) else {}
            for key, item in new.items():
                sub_attr = attr.sub(key)
                if sub_attr is not None:
                    self._check_immutable(sub_attr, obj.get(key), item, f"{what}.{key}")
                obj[key] = item
            self.set(ref.urn, attr.name, obj)
            return
        # §3.5.2.1: "If the target location specifies a single-valued attribute, the
        # existing value is replaced." §3.5.2.3: "the attributes value is replaced."
        self._check_immutable(attr, current, new, what)
        self.set(ref.urn, attr.name, new)

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
            items = self.own_list(current)
            if not items and not remove:
                items.append({sub.name: new})
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    continue
                old = item.get(sub.name)
                if remove:
                    self._check_removable(sub, old, what)
                    if old is None:
                        continue
                    item = {k: v for k, v in item.items() if k != sub.name}
                else:
                    self._check_immutable(sub, old, new, what)
                    item = {**item, sub.name: new}
                items[i] = item
            items = [i for i in items if i != {}]
            if not remove and sub.name == "primary" and new is True and len(items) > 1:
                raise InvalidValueError(f"Only one value of {attr.name!r} may be primary.")
            self.set(ref.urn, attr.name, items)
            return
        obj = current if isinstance(current, dict) else {}
        old = obj.get(sub.name)
        if remove:
            self._check_removable(sub, old, what)
            if old is None:
                return
            self.set(ref.urn, attr.name, {k: v for k, v in obj.items() if k != sub.name})
            return
        self._check_immutable(sub, old, new, what)
        self.set(ref.urn, attr.name, {**obj, sub.name: new})

    # -- multi-valued values --

    def _add_values(self, ref: AttrRef, current: Any, items: list[Any]) -> None:
        attr = ref.attribute
        if not items:
            return
        existing = self.own_list(current)
        self._add_values_to(existing, attr, items, str(ref))
        if attr.mutability == "immutable" and current and existing != current:
            raise MutabilityError(f"Attribute {str(ref)!r} is immutable and already has a value.")
        self.set(ref.urn, attr.name, existing)

    def _add_values_to(
        self,
        existing: list[Any],
        attr: Attribute,
        items: list[Any],
        what: str,
    ) -> list[Any]:
        """Append ``items`` to ``existing`` (mutated) without duplicating equal values.

        A complex value whose ``value`` equals an existing one's is merged into it
        (immutable sub-attributes must not change). ``primary: true`` on an added value
        clears it on the others (RFC 7643 §2.4: "The primary attribute value "true" MUST
        appear no more than once").
        """
        case_exact = _value_case_exact(attr)
        keys = _keys_of(existing, attr.is_complex, case_exact)
        # Few new values (the usual 1-member add): scan the key column at C speed rather
        # than hash all of it into a set.
        keyset: set[Any] | None = None
        if len(items) > 4:
            try:
                keyset = set(keys)
            except TypeError:  # an unhashable value: compare whole values instead
                keys = [None] * len(existing)
                keyset = set()
            keyset.discard(None)
        touched: list[int] = []
        for item in items:
            key = _value_key(item, attr.is_complex, case_exact)
            at: int | None = None
            if key is None:
                if item in existing:
                    at = existing.index(item)
            elif keyset is None or key in keyset:
                try:
                    at = keys.index(key)
                except ValueError:
                    at = None
            if at is None:
                existing.append(item)
                keys.append(key)
                if key is not None and keyset is not None:
                    keyset.add(key)
                touched.append(len(existing) - 1)
                continue
            old = existing[at]
            if not isinstance(item, dict) or not isinstance(old, dict):
                continue
            if all(_same(attr.sub(k), old.get(k, _MISSING), v) for k, v in item.items()):
                continue  # "already contains the value specified": no change
            for k, v in item.items():
                sub = attr.sub(k)
                if sub is not None:
                    self._check_immutable(sub, old.get(k), v, f"{what}.{k}")
            existing[at] = {**old, **item}
            touched.append(at)
        _check_one_primary(existing, touched, what, clear_others=True)
        return existing

    def _remove_values(self, ref: AttrRef, current: Any, value: Any) -> None:
        """Tolerance: ``remove`` with a path and a ``value`` array removes those values.

        Entra ID: ``{"op": "Remove", "path": "members", "value": [{"value": "id"}]}``.
        Read to the letter, §3.5.2.2 would remove every member ("no filter is specified");
        rather than do that silently, strict mode rejects the value with 400 invalidValue.
        """
        attr = ref.attribute
        what = str(ref)
        if not self.tolerant:
            raise InvalidValueError(
                f'remove takes no value; select values with a filter, e.g. {what}[value eq "..."].'
            )
        targets = normalize_value(attr, value, tolerant=True, where=what)
        if not isinstance(current, list) or not current or not targets:
            return
        case_exact = _value_case_exact(attr)
        keys = _keys_of(current, attr.is_complex, case_exact)
        positions: set[int] = set()
        for target in targets:
            key = _value_key(target, attr.is_complex, case_exact)
            if key is None:
                positions.update(i for i, item in enumerate(current) if item == target)
            else:
                positions.update(_positions(keys, key))
        kept = _without(current, positions)
        if len(kept) == len(current):
            return
        if not kept:
            self._check_removable(attr, current, what)
        self.set(ref.urn, attr.name, kept)

    # -- a path with a value filter --

    def _apply_filtered(
        self,
        op: OpName,
        ref: AttrRef,
        flt: Filter,
        sub: Attribute | None,
        value: Any,
        what: str,
    ) -> None:
        attr = ref.attribute
        if op != "remove" and (
            self._read_only(attr, what) or (sub is not None and self._read_only(sub, what))
        ):
            return
        try:
            predicate: Callable[[Any], bool] = compile_value_filter(flt, attr)
        except InvalidFilterError as exc:
            raise InvalidPathError(exc.detail) from None
        current = self.get(ref.urn, attr.name)
        values = current if isinstance(current, list) else []
        matches = _fast_matches(flt, attr, values)
        if matches is None:
            matches = [
                i for i, item in enumerate(values) if isinstance(item, dict) and predicate(item)
            ]
        if op == "remove" or value is None:
            if not matches:
                return  # nothing to remove: the values are already unassigned
            if attr.mutability == "readOnly":
                raise MutabilityError(f"Attribute {str(ref)!r} is readOnly.")
            items = self.own_list(current)
            if sub is None:
                # §3.5.2.2: "If the target location is a complex multi-valued attribute and a
                # complex filter is specified based on the attribute's sub-attributes, the
                # matching records are removed."
                for i in matches:
                    for s in attr.sub_attributes:
                        if s.mutability == "readOnly" and s.name in items[i]:
                            self._check_removable(s, items[i][s.name], what)
                kept = _without(items, set(matches))
                if not kept:
                    # "If the complex multi-valued attribute has no remaining records, the
                    # attribute SHALL be considered unassigned."
                    self._check_removable(attr, current, what)
                self.set(ref.urn, attr.name, kept)
                return
            # "Sub-attributes whose values have been removed SHALL be considered unassigned."
            for i in matches:
                self._check_removable(sub, items[i].get(sub.name), what)
                items[i] = {k: v for k, v in items[i].items() if k != sub.name}
            self.set(ref.urn, attr.name, [item for item in items if item])
            return
        if sub is not None:
            new: Any = normalize_value(sub, value, tolerant=self.tolerant, where=what)
            patch = {sub.name: new}
        else:
            new = normalize_value(
                Attribute(
                    name=attr.name,
                    type="complex",
                    sub_attributes=attr.sub_attributes,
                ),
                value,
                tolerant=self.tolerant,
                where=what,
            )
            patch = self._clean_complex(attr, new, what)
        if not matches:
            # §3.5.2.3: "If the target location is a multi-valued attribute for which a
            # value selection filter ("valuePath") has been supplied and no record match
            # was made, the service provider SHALL indicate failure by returning HTTP
            # status code 400 and a "scimType" error code of "noTarget"." For add,
            # §3.5.2.1: "If the target location does not exist, the attribute and value
            # are added." Tolerance: Entra ID replaces ``emails[type eq "work"].value`` on
            # users with no work email, meaning "add it".
            creates = op == "add" or (self.tolerant and self.options.replace_creates_missing)
            seed = _seed_from_filter(flt, attr, self.tolerant) if creates else None
            if seed is None:
                raise NoTargetError(f"The filter of {what!r} matched no value.")
            self._add_values(ref, current, [{**seed, **patch}])
            return
        items = self.own_list(current)
        for i in matches:
            old = items[i]
            for key, item in patch.items():
                sub_attr = attr.sub(key)
                if sub_attr is not None:
                    self._check_immutable(sub_attr, old.get(key), item, f"{what}")
            # §3.5.2.3: "all matching record values SHALL be replaced" / "the matching
            # sub-attribute of all matching records is replaced."
            items[i] = {**old, **patch}
        _check_one_primary(items, matches, what, clear_others=True)
        self.set(ref.urn, attr.name, items)

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
        current = self.get(ref.urn, attr.name)
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
            _seed_from_filter(flt, attr, self.tolerant) if op == "add" and current is None else None
        )
        if seed is None:
            raise NoTargetError(f"The filter of {what!r} matched no value.")
        self._apply_ref("add", ref, seed, True)
        self._apply_ref(op, target, value, has_value)

    # -- result --

    def result(self) -> dict[str, Any] | None:
        # RFC 7643 §2.5: "Unassigned attributes, the null value, or empty array [...]
        # SHALL be considered to be equivalent in "state"": an extension emptied by this
        # request that was absent before is no change.
        changed = {
            k: v
            for k, v in self.overrides.items()
            if v != self.original.get(k) and not (_empty(v) and _empty(self.original.get(k)))
        }
        if not changed:
            return None
        out = dict(self.original)
        for key, value in changed.items():
            if value is None or value == [] or value == {}:
                out.pop(key, None)
            else:
                out[key] = value
        schemas = out.get("schemas")
        if self.exts_touched and isinstance(schemas, list):
            # RFC 7643 §3: "schemas [...] Each String value must be a unique URI" naming the
            # schemas and extensions the resource uses; keep it in step with the extensions.
            new_schemas = list(schemas)
            for urn in sorted(self.exts_touched):
                present = bool(out.get(urn))
                listed = [s for s in new_schemas if isinstance(s, str) and s.lower() == urn.lower()]
                if present and not listed:
                    new_schemas.append(urn)
                elif not present:
                    out.pop(urn, None)
                    new_schemas = [s for s in new_schemas if s not in listed]
            if new_schemas != schemas:
                out["schemas"] = new_schemas
        return out


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def _same(attr: Attribute | None, a: Any, b: Any) -> bool:
    """Equal values, strings compared ignoring case unless ``attr`` is caseExact."""
    if a == b:
        return True
    return (
        attr is not None
        and not attr.case_exact
        and isinstance(a, str)
        and isinstance(b, str)
        and a.lower() == b.lower()
    )


def _value_case_exact(attr: Attribute) -> bool:
    """Whether values of ``attr`` compare case-sensitively (by their ``value``, if complex)."""
    if attr.is_complex:
        value_sub = attr.sub("value")
        return value_sub is None or value_sub.case_exact
    return attr.case_exact


def _value_key(item: Any, complex_: bool, case_exact: bool) -> Any:
    """The identity of one value of a multi-valued attribute (its ``value`` if complex),
    or None to compare whole values."""
    if complex_:
        if not isinstance(item, dict):
            return None
        item = item.get("value")
    if isinstance(item, str):
        return item if case_exact else item.lower()
    if isinstance(item, (bool, int, float)):
        return item
    return None


def _keys_of(items: list[Any], complex_: bool, case_exact: bool) -> list[Any]:
    """:func:`_value_key` of every item; the common case (case-exact ``value`` strings,
    e.g. Group members) runs at C speed, since a 10k-member group is read on every add."""
    if complex_ and case_exact:
        try:
            return list(map(_GET_VALUE, items))
        except (KeyError, TypeError):
            pass
    return [_value_key(item, complex_, case_exact) for item in items]


def _positions(column: list[Any], key: Any) -> list[int]:
    """Every index of ``key`` in ``column`` (list.index runs at C speed)."""
    out: list[int] = []
    start = 0
    while True:
        try:
            i = column.index(key, start)
        except ValueError:
            return out
        out.append(i)
        start = i + 1


def _fast_matches(flt: Filter, attr: Attribute, values: list[Any]) -> list[int] | None:
    """Indices matching ``sub eq "text"`` on a case-exact string sub-attribute, found at C
    speed (Okta removes members one ``members[value eq "id"]`` at a time); None when the
    filter has another shape (the compiled predicate decides then)."""
    if not (
        isinstance(flt, Compare)
        and flt.op == "eq"
        and isinstance(flt.value, str)
        and flt.path.urn is None
        and flt.path.sub is None
    ):
        return None
    sub = attr.sub(flt.path.name)
    if sub is None or not sub.case_exact or sub.type not in ("string", "reference"):
        return None
    try:
        column = list(map(dict.get, values, repeat(sub.name)))
    except TypeError:
        return None
    return _positions(column, flt.value)


def _without(items: list[Any], positions: set[int]) -> list[Any]:
    """A copy of ``items`` without the given indices."""
    out = list(items)
    for i in sorted(positions, reverse=True):
        del out[i]
    return out


def _check_one_primary(
    items: list[Any], touched: Sequence[int] | range, what: str, *, clear_others: bool = False
) -> None:
    """RFC 7643 §2.4: "The primary attribute value "true" MUST appear no more than once."

    With ``clear_others``, a ``primary: true`` on a touched value clears it on the others
    (the client moved the primary); two touched primaries are a client error.
    """
    primaries = [
        i for i in touched if isinstance(items[i], dict) and items[i].get("primary") is True
    ]
    if len(primaries) > 1:
        raise InvalidValueError(f"Only one value of {what!r} may be primary.")
    if not primaries or not clear_others:
        return
    keep = primaries[0]
    for i, item in enumerate(items):
        if i != keep and isinstance(item, dict) and item.get("primary") is True:
            items[i] = {**item, "primary": False}


def _seed_from_filter(flt: Filter, attr: Attribute, tolerant: bool) -> dict[str, Any] | None:
    """The value a filter of ``eq`` comparisons joined by ``and`` describes, or None."""
    if isinstance(flt, And):
        left = _seed_from_filter(flt.left, attr, tolerant)
        right = _seed_from_filter(flt.right, attr, tolerant)
        if left is None or right is None:
            return None
        return {**left, **right}
    if (
        isinstance(flt, Compare)
        and flt.op == "eq"
        and flt.path.sub is None
        and flt.path.urn is None
    ):
        sub = attr.sub(flt.path.name)
        if sub is None or sub.mutability == "readOnly" or flt.value is None:
            return None
        try:
            return {sub.name: normalize_value(sub, flt.value, tolerant=tolerant)}
        except InvalidValueError:
            return None
    return None
