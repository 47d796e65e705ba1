"""The SCIM endpoints as data, for an OpenAPI description (no web framework needed).

:func:`scim_operations` lists every endpoint an engine serves (RFC 7644 §3.2): path relative
to the SCIM base, method, summary, the request body and the answers, each naming its
document by a :class:`Doc` (a resource type's resource, its ListResponse or PatchOp, or a
message of RFC 7644 such as ``SearchRequest``). :func:`doc_model` turns a :class:`Doc` into
the scim2-models class describing it, and :func:`inline_defs` makes a JSON schema valid
wherever it is put. A framework adapter only attaches these (the FastAPI router does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..schema import ResourceType

__all__ = [
    "Answer",
    "Doc",
    "Operation",
    "doc_model",
    "inline_defs",
    "resource_models",
    "scim_operations",
]


@dataclass(frozen=True)
class Doc:
    """A document a body or an answer holds: ``kind`` is ``resource``, ``list`` or
    ``patch`` (of the resource type ``of``), or the name of a message class of
    scim2-models (``SearchRequest``, ``BulkRequest``, ``Error``...)."""

    kind: str
    of: str | None = None

    @property
    def name(self) -> str:
        """The name the document is listed under (``User``, ``UserListResponse``...)."""
        if self.kind == "resource":
            return self.of or "Resource"
        if self.kind == "list":
            return f"{self.of}ListResponse"
        if self.kind == "patch":
            return "PatchOp"
        return self.kind


@dataclass(frozen=True)
class Answer:
    """One documented answer: its description and, if it has a body, the document."""

    description: str
    doc: Doc | None = None


@dataclass(frozen=True)
class Operation:
    """One SCIM endpoint and method (RFC 7644 §3.2)."""

    path: str  # relative to the SCIM base: "/Users/{id}"
    method: str
    op: str  # unique among the operations: "get_User", "bulk"
    summary: str
    status: int = 200
    body: tuple[Doc, str] | None = None  # the request body's document, its description
    answers: Mapping[int, Answer] = field(default_factory=dict)
    params: tuple[str, ...] = ()  # the path's parameters


_ERROR = Doc("Error")


def _errors(*statuses: int) -> dict[int, Answer]:
    return {s: Answer(f"SCIM Error (RFC 7644 §3.12), HTTP {s}", _ERROR) for s in statuses}


def _resource_operations(endpoint: str, name: str) -> list[Operation]:
    """The endpoints of one resource type (RFC 7644 §3.3-§3.6, §3.4.3 ``.search``)."""
    one, many, by_id = Doc("resource", name), Doc("list", name), f"{endpoint}/{{id}}"
    found = Answer(f"The matching {name} resources", many)
    return [
        Operation(
            f"{endpoint}/.search",
            "POST",
            f"search_{name}",
            f"Search {name} resources",
            body=(Doc("SearchRequest"), "A SearchRequest (RFC 7644 §3.4.3)"),
            answers={200: found, **_errors(400, 401)},
        ),
        Operation(
            endpoint,
            "GET",
            f"list_{name}",
            f"List or filter {name} resources (RFC 7644 §3.4.2)",
            answers={200: found, **_errors(400, 401)},
        ),
        Operation(
            endpoint,
            "POST",
            f"create_{name}",
            f"Create a {name} (RFC 7644 §3.3)",
            status=201,
            body=(one, f"The {name} to create"),
            answers={201: Answer(f"The created {name}", one), **_errors(400, 401, 409)},
        ),
        Operation(
            by_id,
            "GET",
            f"get_{name}",
            f"Get a {name} (RFC 7644 §3.4.1)",
            params=("id",),
            answers={
                200: Answer(f"The {name}", one),
                304: Answer("Not Modified"),
                **_errors(401, 404, 412),
            },
        ),
        Operation(
            by_id,
            "PUT",
            f"replace_{name}",
            f"Replace a {name} (RFC 7644 §3.5.1)",
            params=("id",),
            body=(one, f"The {name}'s new attributes"),
            answers={
                200: Answer(f"The replaced {name}", one),
                **_errors(400, 401, 404, 409, 412),
            },
        ),
        Operation(
            by_id,
            "PATCH",
            f"patch_{name}",
            f"Patch a {name} (RFC 7644 §3.5.2)",
            params=("id",),
            body=(Doc("patch", name), "A PatchOp message"),
            answers={
                200: Answer(f"The patched {name}", one),
                204: Answer("Patched (when the server answers without a body)"),
                **_errors(400, 401, 404, 409, 412),
            },
        ),
        Operation(
            by_id,
            "DELETE",
            f"delete_{name}",
            f"Delete a {name} (RFC 7644 §3.6)",
            status=204,
            params=("id",),
            answers={204: Answer("Deleted"), **_errors(401, 404, 412)},
        ),
    ]


def _service_operations() -> list[Operation]:
    """Discovery (RFC 7644 §4), Bulk (§3.7), the root search (§3.4.2.1) and ``/Me`` (§3.11)."""
    any_type = Answer("A ListResponse of resources of any type")
    operations = [
        Operation(
            "/ServiceProviderConfig",
            "GET",
            "service_provider_config",
            "The service provider's configuration (RFC 7644 §4)",
            answers={200: Answer("ServiceProviderConfig", Doc("ServiceProviderConfig"))},
        ),
        Operation(
            "/ResourceTypes",
            "GET",
            "resource_types",
            "Every resource type (RFC 7644 §4)",
            answers={200: Answer("The resource types", Doc("list", "ResourceType"))},
        ),
        Operation(
            "/ResourceTypes/{name}",
            "GET",
            "resource_type",
            "One resource type",
            params=("name",),
            answers={200: Answer("The resource type", Doc("ResourceType")), **_errors(404)},
        ),
        Operation(
            "/Schemas",
            "GET",
            "schemas",
            "Every schema (RFC 7644 §4)",
            answers={200: Answer("The schemas", Doc("list", "Schema"))},
        ),
        Operation(
            "/Schemas/{urn}",
            "GET",
            "schema",
            "One schema",
            params=("urn",),
            answers={200: Answer("The schema", Doc("Schema")), **_errors(404)},
        ),
        Operation(
            "/Bulk",
            "POST",
            "bulk",
            "Several operations in one request (RFC 7644 §3.7)",
            body=(Doc("BulkRequest"), "A BulkRequest"),
            answers={
                200: Answer("What each operation did", Doc("BulkResponse")),
                **_errors(400, 401, 413),
            },
        ),
        Operation(
            "/.search",
            "POST",
            "search",
            "Search every resource type (RFC 7644 §3.4.3)",
            body=(Doc("SearchRequest"), "A SearchRequest"),
            answers={200: any_type, **_errors(400, 401)},
        ),
        Operation(
            "/",
            "GET",
            "root",
            "Query every resource type (RFC 7644 §3.4.2.1)",
            answers={200: any_type, **_errors(400, 401)},
        ),
    ]
    operations += [
        Operation(
            "/Me",
            method,
            f"me_{method.lower()}",
            f"{method} the authenticated subject's own resource (RFC 7644 §3.11)",
            answers=_errors(401, 501),
        )
        for method in ("GET", "PUT", "PATCH", "DELETE")
    ]
    return operations


def scim_operations(resource_types: Iterable[tuple[str, str]]) -> list[Operation]:
    """Every endpoint served for ``resource_types`` (``(endpoint, name)`` pairs, e.g.
    ``("/Users", "User")``), each resource type's first, then the service's."""
    operations: list[Operation] = []
    for endpoint, name in resource_types:
        operations += _resource_operations(endpoint, name)
    return operations + _service_operations()


def resource_models(
    resource_types: Iterable[ResourceType], given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A scim2-models class per resource type name: ``given`` first, else built from the
    type's own schemas (``Resource.from_schema``), else ``None`` (a plain object)."""
    from scim2_models import Extension, Resource
    from scim2_models import Schema as SchemaModel

    out: dict[str, Any] = {}
    for rt in resource_types:
        if given and rt.name in given:
            out[rt.name] = given[rt.name]
            continue
        try:
            core: Any = Resource.from_schema(SchemaModel.model_validate(rt.schema.to_dict()))
            exts = [
                Extension.from_schema(SchemaModel.model_validate(ext.to_dict()))
                for ext, _ in rt.extensions
            ]
            out[rt.name] = core[tuple(exts) if len(exts) > 1 else exts[0]] if exts else core
        except Exception:  # a schema scim2-models cannot express: document a plain object
            out[rt.name] = None
    return out


def doc_model(doc: Doc, models: Mapping[str, Any]) -> Any:
    """The scim2-models class describing ``doc`` (``models``: :func:`resource_models`), or
    ``None`` for a resource type documented as a plain object."""
    import scim2_models

    if doc.kind in ("resource", "list", "patch") and doc.of is not None and doc.of in models:
        model = models[doc.of]
        if model is None or doc.kind == "resource":
            return model
        wrapper = scim2_models.ListResponse if doc.kind == "list" else scim2_models.PatchOp
        return wrapper[model]
    if doc.kind == "list":  # ResourceType, Schema: the discovery documents
        listed: Any = scim2_models.ListResponse
        return listed[getattr(scim2_models, doc.of or "")]
    return getattr(scim2_models, doc.kind)


def inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its ``$defs`` written in place, so that it is valid wherever it is
    put in an OpenAPI document (a recursive reference becomes "any value")."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            out = {k: walk(v, seen) for k, v in node.items() if k not in ("$defs", "$ref")}
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref[len("#/$defs/") :]
                if name in seen or name not in defs:
                    return out  # recursive: any value (with the reference's own keywords)
                # The definition, with the keywords beside the reference (description...).
                return {**walk(defs[name], (*seen, name)), **out}
            if ref is not None:
                out["$ref"] = ref
            return out
        if isinstance(node, list):
            return [walk(item, seen) for item in node]
        return node

    inlined: dict[str, Any] = walk(schema, ())
    return inlined
