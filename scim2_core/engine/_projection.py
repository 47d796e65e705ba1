"""Which attributes a response carries: ``returned`` and ``attributes``/``excludedAttributes``.

RFC 7644 §3.4.2.5: "attributes: A multi-valued list of strings indicating the names of
resource attributes to return in the response, overriding the set of attributes that would
be returned by default. [...] excludedAttributes: A multi-valued list of strings indicating
the names of resource attributes to be removed from the default set of attributes to
return. [...] Attribute names MUST be in standard attribute notation (Section 3.10) form."

RFC 7643 §7 "returned": "always: The attribute is always returned, regardless of the
contents of the "attributes" parameter. never: The attribute is never returned. default:
The attribute is returned by default [...] request: The attribute is returned in response
to any PUT, POST, or PATCH operations if specified in the "attributes" parameter."

A :class:`Projection` is compiled once per (resource type, parameters) and cached; applying
it is a single pass over the resource's top-level keys.

``attributes=emails[type eq "work"]`` (a value path, which RFC 7644 §3.10's attribute
notation does not include, but Microsoft's SCIM validator sends) is read as the PATCH path
it is (RFC 7644 §3.5.2 Figure 7): only the values of ``emails`` matching the filter are
returned, and ``emails[type eq "work"].value`` returns only their ``value``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .._errors import InvalidFilterError, InvalidPathError, InvalidValueError
from ..filter import Predicate, bind_path, compile_value_filter, parse_path
from ..schema import Attribute, ResourceType

__all__ = ["Projection", "split_attribute_list"]

_KEEP: Final = 0
_DROP: Final = 1
_ONLY: Final = 2  # keep only the listed sub-attributes
_WITHOUT: Final = 3  # drop the listed sub-attributes

_Rule = tuple[int, frozenset[str]]
_Key = tuple[str | None, str]


def split_attribute_list(value: str | list[str] | None) -> list[str] | None:
    """Split a comma-separated ``attributes`` parameter (or a SearchRequest list)."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = _split_commas(value)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = value
    else:
        raise InvalidValueError("attributes and excludedAttributes must be lists of strings.")
    names = [p.strip() for p in parts if p.strip()]
    return names or None


def _split_commas(text: str) -> list[str]:
    """Split at the commas outside brackets and quotes: ``emails[value eq "a,b"],userName``
    is two names."""
    if "[" not in text:
        return text.split(",")
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


class Projection:
    """The compiled ``returned`` rules plus a request's attribute selection."""

    __slots__ = (
        "_ext",
        "_rt",
        "_top",
        "_value_filters",
        "wants_groups",
        "wants_members",
        "wants_meta",
    )

    def __init__(
        self,
        rt: ResourceType,
        attributes: list[str] | None = None,
        excluded: list[str] | None = None,
    ) -> None:
        self._rt = rt
        #: ``(urn, attribute) -> predicate``: only the values it accepts are returned.
        self._value_filters: dict[_Key, Predicate] = {}
        include = self._parse(rt, attributes, self._value_filters) if attributes else None
        exclude = self._parse(rt, excluded) if excluded and not attributes else None
        self._top: dict[str, _Rule] = {}
        self._ext: dict[str, tuple[_Rule, dict[str, _Rule]]] = {}
        for urn, attr in rt.iter_attributes():
            rule = self._rule(urn, attr, include, exclude)
            if urn is None:
                self._top[attr.name] = rule
            else:
                whole = self._whole_extension_rule(urn, include, exclude)
                self._ext.setdefault(urn, (whole, {}))[1][attr.name] = rule
        self.wants_groups = self._top.get("groups", (_DROP, frozenset()))[0] != _DROP
        self.wants_members = self._top.get("members", (_DROP, frozenset()))[0] != _DROP
        self.wants_meta = self._top["meta"][0] != _DROP

    @staticmethod
    def _parse(
        rt: ResourceType, names: list[str], value_filters: dict[_Key, Predicate] | None = None
    ) -> dict[_Key, set[str] | None]:
        """``{(urn, attr): None (whole) | {subs}}``; ``(urn, "")`` means a whole extension.

        Unknown names are ignored: a client asking for an attribute the resource type does
        not have gets the response it would get without it (scim2-tester and IdPs send
        ``excludedAttributes=members`` to endpoints of every type). Value paths
        (``emails[type eq "work"]``) are read into ``value_filters`` when it is given, and
        ignored otherwise.
        """
        out: dict[_Key, set[str] | None] = {}
        filtered: dict[_Key, list[Predicate]] = {}
        unfiltered: set[_Key] = set()
        for name in names:
            if "[" in name:
                if value_filters is not None:
                    _parse_value_path(rt, name, out, filtered)
                continue
            try:
                urn, rest = rt.split_urn(name)
            except InvalidPathError:  # unknown urn: prefix, ignored like any unknown name
                continue
            if not rest:
                if urn is not None:
                    out[(urn, "")] = None
                continue
            attr_name, _, sub_name = rest.partition(".")
            ref = rt.resolve(urn, attr_name, sub_name or None)
            if ref is None:
                continue
            key = (ref.urn, ref.attribute.name)
            unfiltered.add(key)
            _add_selection(out, key, ref.sub.name if ref.sub is not None else None)
        if value_filters is not None:
            for key, predicates in filtered.items():
                if key not in unfiltered:  # "emails" and "emails[...]": all of emails
                    value_filters[key] = _any_of(predicates)
        return out

    @staticmethod
    def _whole_extension_rule(
        urn: str,
        include: dict[tuple[str | None, str], set[str] | None] | None,
        exclude: dict[tuple[str | None, str], set[str] | None] | None,
    ) -> _Rule:
        if include is not None and (urn, "") in include:
            return (_KEEP, frozenset())
        if exclude is not None and (urn, "") in exclude:
            return (_DROP, frozenset())
        return (_ONLY, frozenset())  # decided per attribute

    @staticmethod
    def _rule(
        urn: str | None,
        attr: Attribute,
        include: dict[tuple[str | None, str], set[str] | None] | None,
        exclude: dict[tuple[str | None, str], set[str] | None] | None,
    ) -> _Rule:
        if attr.returned == "never":
            return (_DROP, frozenset())
        key = (urn, attr.name)
        subs_named = (include.get(key) if include is not None else None) or set()
        never_subs = {s.name for s in attr.sub_attributes if s.returned == "never"}
        # RFC 7643 §7: a returned "request" sub-attribute is returned only when named
        # ("name.sub"), like a returned "request" attribute.
        request_subs = {s.name for s in attr.sub_attributes if s.returned == "request"}
        hidden = frozenset(never_subs | (request_subs - subs_named))
        whole = (_WITHOUT, hidden) if hidden else (_KEEP, frozenset())
        if attr.returned == "always":
            return whole
        always_subs = {s.name for s in attr.sub_attributes if s.returned == "always"}
        if include is not None:
            whole_ext = urn is not None and (urn, "") in include
            if key in include or whole_ext:
                subs = include.get(key)
                if subs is None or whole_ext:
                    if attr.returned == "request" and key not in include:
                        return (_DROP, frozenset())
                    return whole
                return (_ONLY, frozenset((subs | always_subs) - never_subs))
            return (_DROP, frozenset())
        if attr.returned == "request":
            return (_DROP, frozenset())
        if exclude is not None and key in exclude:
            subs = exclude[key]
            if subs is None:
                return (_DROP, frozenset())
            # RFC 7644 §3.4.2.5: excludedAttributes "SHALL have no effect" on attributes
            # whose "returned" is "always" -- sub-attributes included.
            return (_WITHOUT, frozenset(subs - always_subs) | hidden)
        return whole

    def apply(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """A new dict holding what the response may show of ``resource``.

        Values are shared with ``resource`` where they pass whole, so the caller must own
        ``resource`` (the engine renders private copies).
        """
        # "schemas" first, as stored; dropped at the end when neither the resource nor
        # its extensions call for it.
        out: dict[str, Any] = {"schemas": None}
        schemas: list[str] | None = None
        top = self._top
        filtered = bool(self._value_filters)
        for key, value in resource.items():
            if key == "schemas":
                schemas = value
                continue
            rule = top.get(key)
            if rule is not None:
                if rule[0] == _KEEP and not filtered:  # the common case: passed whole
                    out[key] = value
                    continue
                if filtered:
                    value = self._filter_values((None, key), value)
                kept = _MISSING if value is _MISSING else _apply_rule(rule, value)
                if kept is not _MISSING:
                    out[key] = kept
                continue
            ext = self._ext.get(key)
            if ext is None or not isinstance(value, dict):
                continue
            whole, rules = ext
            if whole[0] == _DROP:
                continue
            ext_out: dict[str, Any] = {}
            for ekey, evalue in value.items():
                erule = rules.get(ekey)
                if erule is None:
                    continue
                if filtered:
                    evalue = self._filter_values((key, ekey), evalue)
                kept = _MISSING if evalue is _MISSING else _apply_rule(erule, evalue)
                if kept is not _MISSING:
                    ext_out[ekey] = kept
            if ext_out:
                out[key] = ext_out
        present = [urn for urn in self._ext if urn in out] if self._ext else []
        if schemas is not None or present:
            out["schemas"] = [self._rt.schema.id, *present]
        else:
            del out["schemas"]
        return out

    def _filter_values(self, key: _Key, value: Any) -> Any:
        """The values of a multi-valued attribute its value filter accepts (``_MISSING``
        if none is left: the attribute is then not returned)."""
        predicate = self._value_filters.get(key)
        if predicate is None or not isinstance(value, list):
            return value
        kept = [v for v in value if isinstance(v, dict) and predicate(v)]
        return kept if kept else _MISSING


def _add_selection(out: dict[_Key, set[str] | None], key: _Key, sub: str | None) -> None:
    """Select the whole attribute (``sub`` None) or one more of its sub-attributes."""
    if sub is None:
        out[key] = None
        return
    current = out.get(key, set())
    if current is not None:
        current.add(sub)
        out[key] = current


def _parse_value_path(
    rt: ResourceType,
    name: str,
    out: dict[_Key, set[str] | None],
    filtered: dict[_Key, list[Predicate]],
) -> None:
    """Read ``attr[filter]`` or ``attr[filter].sub`` into a selection and a value filter;
    a name that is not a valid value path of ``rt`` is ignored like an unknown name."""
    try:
        path = bind_path(parse_path(name), rt)
    except (InvalidPathError, InvalidFilterError):
        return
    ref = rt.resolve(path.attr.urn, path.attr.name)
    if path.filter is None or ref is None or not ref.attribute.multi_valued:
        return
    key = (ref.urn, ref.attribute.name)
    _add_selection(out, key, path.sub)
    filtered.setdefault(key, []).append(compile_value_filter(path.filter, ref.attribute))


def _any_of(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda value: any(p(value) for p in predicates)


class _Missing:
    pass


_MISSING: Final = _Missing()


def _apply_rule(rule: _Rule, value: Any) -> Any:
    kind, subs = rule
    if kind == _KEEP:
        return value
    if kind == _DROP:
        return _MISSING
    if isinstance(value, dict):
        kept = _filter_subs(kind, subs, value)
        return kept if kept else _MISSING
    if isinstance(value, list):
        items = []
        for item in value:
            if isinstance(item, dict):
                kept = _filter_subs(kind, subs, item)
                if kept:
                    items.append(kept)
            else:
                items.append(item)
        return items if items else _MISSING
    return value


def _filter_subs(kind: int, subs: frozenset[str], value: Mapping[str, Any]) -> dict[str, Any]:
    if kind == _ONLY:
        return {k: v for k, v in value.items() if k in subs}
    return {k: v for k, v in value.items() if k not in subs}
