"""FastAPI the FastAPI way: the SCIM endpoints as an ``APIRouter``, in the app's OpenAPI schema.

::

    from fastapi import FastAPI
    from scim2_core_starlette.fastapi import scim_router

    app = FastAPI()
    app.include_router(scim_router(engine), prefix="/scim/v2")

Each route hands the raw request to the same ASGI app :func:`scim2_core_starlette.scim_app`
serves (one engine, one ``Engine.handle`` call per request): statuses, headers and bodies are
those of ``app.mount("/scim/v2", scim_app(engine))``. FastAPI neither reads nor validates the
bodies; the request and response models, built from scim2-models for the engine's own
schemas (custom resource types and extensions included), only document the endpoints.
Router dependencies (``include_router(..., dependencies=[Depends(check)])``) run before each
SCIM request, as for any route.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from scim2_core import Engine
from scim2_core.asgi import ASGIApp
from scim2_core.serving import split_mount
from scim2_core.serving.openapi import (
    Answer,
    Doc,
    Operation,
    doc_model,
    inline_defs,
    resource_models,
    scim_operations,
)

from . import scim_app

__all__ = ["scim_router"]

SCIM_MEDIA_TYPE = "application/scim+json"

Endpoint = Callable[[Request], Awaitable[Response]]


class _Delegated(JSONResponse):
    """The answer of a SCIM route: the request itself, handed to the SCIM ASGI app with the
    router's prefix as its mount point (``root_path``). A ``JSONResponse`` only so that
    FastAPI documents its bodies as JSON."""

    media_type = SCIM_MEDIA_TYPE

    def __init__(self, app: ASGIApp, root_path: str) -> None:
        # Not Response.__init__: the SCIM app writes status, headers and body itself.
        self.app = app
        self.root_path = root_path
        self.background: BackgroundTask | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app({**scope, "root_path": self.root_path}, receive, send)
        if self.background is not None:
            await self.background()


def _endpoint(app: ASGIApp, template: str) -> Endpoint:
    """A route body for paths shaped like ``template`` (``/Users/{id}``), relative to the
    SCIM base: what precedes it in the request path is the mount point."""

    async def scim(request: Request) -> Response:
        rest = template.format_map(request.path_params)
        prefix, _ = split_mount(request.scope["path"], rest)
        return _Delegated(app, prefix)

    return scim


def _body(model: Any, description: str) -> dict[str, Any]:
    """``openapi_extra`` documenting a SCIM request body (never validated by FastAPI)."""
    schema = (
        inline_defs(model.model_json_schema(mode="validation"))
        if model is not None
        else {"type": "object"}
    )
    content = {media: {"schema": schema} for media in (SCIM_MEDIA_TYPE, "application/json")}
    return {"requestBody": {"required": True, "description": description, "content": content}}


def _path_parameters(names: Iterable[str]) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in names
    ]


class _Docs:
    """Documentation-only models for FastAPI's ``responses=``, one class per document.

    scim2-models serialise through a custom serializer, so pydantic describes their output
    as "any object"; each class here reports the model's full (validation) JSON schema,
    inlined, and FastAPI lists it under ``components/schemas`` by the document's name.
    """

    def __init__(self, models: Mapping[str, Any]) -> None:
        self.models = models
        self._made: dict[Any, type[BaseModel]] = {}

    def model(self, doc: Doc) -> Any:
        return doc_model(doc, self.models)

    def answer(self, answer: Answer) -> dict[str, Any]:
        model = None if answer.doc is None else self.model(answer.doc)
        if model is None:
            return {"description": answer.description}
        made = self._made.get(model)
        if made is None:
            made = self._made[model] = _documented(model, answer.doc.name)  # type: ignore[union-attr]
        return {"model": made, "description": answer.description}


def _documented(model: type[BaseModel], name: str) -> type[BaseModel]:
    """A class named ``name`` whose JSON schema is ``model``'s (validation) schema."""
    schema = inline_defs(model.model_json_schema(mode="validation"))
    schema["title"] = name

    def report(
        cls: type[BaseModel], core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return copy.deepcopy(schema)

    namespace = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": model.__doc__,
        "__get_pydantic_json_schema__": classmethod(report),
    }
    documented: type[BaseModel] = type(name, (BaseModel,), namespace)
    return documented


def _attach(router: APIRouter, app: ASGIApp, docs: _Docs, operation: Operation) -> None:
    """One SCIM endpoint as a route of ``router``, answered by ``app``."""
    extra: dict[str, Any] = {}
    if operation.params:
        extra["parameters"] = _path_parameters(operation.params)
    if operation.body is not None:
        doc, description = operation.body
        extra.update(_body(docs.model(doc), description))
    router.add_api_route(
        operation.path,
        _endpoint(app, operation.path),
        methods=[operation.method],
        name=f"scim_{operation.op}",
        operation_id=f"scim_{operation.op}",
        summary=operation.summary,
        response_class=_Delegated,
        status_code=operation.status,
        openapi_extra=extra or None,
        responses={status: docs.answer(a) for status, a in operation.answers.items()},
    )


def scim_router(
    engine: Engine,
    *,
    app: ASGIApp | None = None,
    trust_proxy: bool = False,
    models: Mapping[str, type[BaseModel]] | None = None,
    catch_all: bool = True,
    **router_kw: Any,
) -> APIRouter:
    """An ``APIRouter`` serving ``engine``: include it with a prefix,
    ``app.include_router(scim_router(engine), prefix="/scim/v2")``.

    Every SCIM endpoint is a route of its own, in the OpenAPI schema with its request and
    response models (scim2-models built from the engine's schemas; ``models={"User":
    MyUserModel}`` documents a resource type with your own class). The routes answer
    exactly as ``scim_app(engine, trust_proxy=trust_proxy)`` mounted at the prefix does, or
    as ``app`` does when you pass your own :class:`~scim2_core.asgi.ASGIApp`.

    ``catch_all`` adds one undocumented route answering every other path and method under
    the router with the engine (a SCIM 404 or 405 rather than FastAPI's): include the router
    with a prefix, or set ``catch_all=False``, or it answers for the whole app.
    ``router_kw`` goes to ``APIRouter`` (``tags`` defaults to ``["SCIM"]``,
    ``dependencies``...).
    """
    target = app if app is not None else scim_app(engine, trust_proxy=trust_proxy)
    router_kw.setdefault("tags", ["SCIM"])
    router = APIRouter(**router_kw)
    docs = _Docs(resource_models(engine.resource_types, models))
    types = [(rt.endpoint, rt.name) for rt in engine.resource_types]
    for operation in scim_operations(types):
        _attach(router, target, docs, operation)
    if catch_all:
        router.add_api_route(
            "/{path:path}",
            _endpoint(target, "/{path}"),
            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            include_in_schema=False,
            response_class=_Delegated,
            name="scim_other",
        )
    return router
