"""OpenAPI 3 document built from the marshmallow schemas each view declares with ``@doc``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app, jsonify
from marshmallow import Schema, fields

bp = Blueprint("openapi", __name__)

_DOC_ATTR = "_shopkeeper_doc"


class ErrorSchema(Schema):
    """The one error shape every 4xx/5xx answer uses."""

    code = fields.Integer(required=True)
    status = fields.String(required=True)
    message = fields.String(required=True)
    errors = fields.Dict(required=True)


def doc(
    *,
    summary: str,
    tags: Iterable[str] = (),
    query: type[Schema] | None = None,
    request: type[Schema] | None = None,
    response: type[Schema] | None = None,
    errors: Iterable[int] = (),
    body: str | None = None,
    content_type: str = "application/json",
) -> Callable:
    """Attach OpenAPI metadata to a view; ``/openapi.json`` reads it."""

    def wrap(view: Callable) -> Callable:
        setattr(view, _DOC_ATTR, dict(summary=summary, tags=list(tags), query=query,
                                      request=request, response=response,
                                      errors=list(errors), body=body,
                                      content_type=content_type))
        return view

    return wrap


def build_spec(app: Flask) -> dict[str, Any]:
    """Walk the URL map; every documented rule becomes a path operation."""
    spec = APISpec(title="Shopkeeper", version="1", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()])
    spec.components.schema("Error", schema=ErrorSchema)
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        meta = getattr(app.view_functions.get(rule.endpoint), _DOC_ATTR, None)
        if meta is None:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, meta)
    for path, ops in sorted(paths.items()):
        spec.path(path=path, operations=ops)
    return spec.to_dict()


def _operation(rule, meta: dict[str, Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"in": "path", "name": arg, "required": True, "schema": {"type": "string"}}
        for arg in sorted(rule.arguments)
    ]
    if meta["query"] is not None:
        params.append({"in": "query", "schema": meta["query"]})
    op: dict[str, Any] = {"summary": meta["summary"], "tags": meta["tags"],
                          "parameters": params, "responses": {}}
    if meta["request"] is not None:
        op["requestBody"] = {"required": True,
                             "content": {meta["content_type"]: {"schema": meta["request"]}}}
    elif meta["body"]:
        op["requestBody"] = {"required": True, "description": meta["body"],
                             "content": {meta["content_type"]: {"schema": {"type": "object"}}}}
    ok: dict[str, Any] = {"description": "OK"}
    if meta["response"] is not None:
        ok["content"] = {"application/json": {"schema": meta["response"]}}
    op["responses"]["200"] = ok
    for code in sorted(set(meta["errors"]) | {500}):
        op["responses"][str(code)] = {
            "description": HTTPStatus(code).phrase,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return op


@bp.get("/openapi.json")
@doc(summary="This API's OpenAPI 3 document", tags=["meta"])
def openapi_json():
    return jsonify(build_spec(current_app))
