"""The OpenAPI schema's request bodies. Handlers read their bodies themselves (`json_body`:
JSON whatever the Content-Type, within a limit enforced while streaming; `receive_files`:
multipart streamed to disk), so FastAPI cannot see them: each such route declares its body
with `openapi_extra=json_doc(Model)` or `multipart_doc(...)`, from the very model it validates
with, and `document_bodies(app)` puts the models' schemas under components/schemas."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, routing
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

FILE: dict[str, str] = {"type": "string", "format": "binary"}


class _JsonBody(dict[str, Any]):
    """openapi_extra that remembers its model (FastAPI copies only the keys)."""

    def __init__(self, model: type[BaseModel], description: str) -> None:
        body: dict[str, Any] = {"required": True, "content": {"application/json": {}}}
        if description:
            body["description"] = description
        super().__init__(requestBody=body)
        self.model = model


def json_doc(model: type[BaseModel], *, description: str = "") -> dict[str, Any]:
    """openapi_extra for a route that reads `model` with `json_body`."""
    return _JsonBody(model, description)


def multipart_doc(
    fields: Mapping[str, Mapping[str, Any]], *, required: Sequence[str], description: str = ""
) -> dict[str, Any]:
    """openapi_extra for a route that reads a multipart/form-data form with `receive_files`:
    `fields` are JSON schemas by name (a file is `FILE`)."""
    schema = {"type": "object", "properties": dict(fields), "required": list(required)}
    content = {"multipart/form-data": {"schema": schema}}
    body: dict[str, Any] = {"required": True, "content": content}
    if description:
        body["description"] = description
    return {"requestBody": body}


def document_bodies(app: FastAPI) -> None:
    """The app's schema, with the JSON bodies' models (generated together, so that two models
    of the same name get distinct names) under components/schemas. Cached as FastAPI's is."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _add_bodies(generate(), _json_bodies(app))
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _json_bodies(app: FastAPI) -> list[tuple[str, set[str], _JsonBody]]:
    """(path, methods, body) of the documented routes, included routers' too."""
    found = []
    for route in routing.iter_route_contexts(app.routes):
        extra = getattr(route, "openapi_extra", None)
        if isinstance(extra, _JsonBody) and getattr(route, "include_in_schema", False):
            found.append((str(getattr(route, "path_format", "")), set(route.methods or ()), extra))
    return found


def _add_bodies(document: dict[str, Any], bodies: list[tuple[str, set[str], _JsonBody]]) -> None:
    models = list(dict.fromkeys(body.model for _, _, body in bodies))
    refs, found = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    filed: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in found.get("$defs", {}).items():
        if filed.setdefault(name, schema) != schema:
            raise ValueError(f"Two different models are both called {name} in the API schema.")
    for path, methods, body in bodies:
        for method in methods:
            operation = document["paths"][path][method.lower()]
            content = operation["requestBody"]["content"]["application/json"]
            content["schema"] = refs[(body.model, "validation")]
