"""OpenAPI 3 document built from the marshmallow schemas each view declares with ``@doc``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from marshmallow import Schema, fields
from werkzeug.routing import Rule

bp = Blueprint("openapi", __name__)

_DOC_ATTR = "_shopkeeper_doc"
HTML = "text/html"


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
    status: int | tuple[int, ...] = 200,
) -> Callable:
    """Attach OpenAPI metadata to a view; ``/openapi.json`` reads it.

    ``status``: the success code(s) the view answers (201 created, 202 accepted, 204 no
    content, 302 for a form POST that redirects). A ``text/html`` view is a page: its
    answers, errors included, are HTML, not the JSON error shape.
    """

    def wrap(view: Callable) -> Callable:
        setattr(view, _DOC_ATTR, dict(summary=summary, tags=list(tags), query=query,
                                      request=request, response=response,
                                      errors=list(errors), body=body,
                                      content_type=content_type, status=status))
        return view

    return wrap


def is_page(view: Callable | None) -> bool:
    """True for a view documented as an HTML page (its errors are HTML too)."""
    return (getattr(view, _DOC_ATTR, None) or {}).get("content_type") == HTML


def build_spec(app: Flask) -> dict[str, Any]:
    """Walk the URL map; every documented rule becomes a path operation."""
    marshmallow_plugin = MarshmallowPlugin()
    spec = APISpec(title="Shopkeeper", version="1", openapi_version="3.0.3",
                   plugins=[marshmallow_plugin])
    marshmallow_plugin.converter.add_attribute_function(_numeric_bounds)
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


def _numeric_bounds(self: Any, field: fields.Field, ret: dict[str, Any], **kwargs: Any) -> dict:
    """Bounds as JSON numbers: apispec passes a Decimal field's range through the field's
    serialiser, and a ``Decimal`` becomes the string "1000000000.0000" in JSON, where
    OpenAPI (and every client generator) wants a number."""
    out: dict[str, Any] = {}
    for key in ("minimum", "maximum"):
        value = ret.get(key)
        if isinstance(value, (str, Decimal)):
            number = float(value)
            out[key] = int(number) if number.is_integer() else number
    return out


def _operation(rule: Rule, meta: dict[str, Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"in": "path", "name": arg, "required": True, "schema": _path_schema(rule, arg)}
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
    page = {"text/html": {"schema": {"type": "string"}}} if meta["content_type"] == HTML \
        else None
    for code in (meta["status"] if isinstance(meta["status"], tuple) else (meta["status"],)):
        ok: dict[str, Any] = {"description": HTTPStatus(code).phrase}
        if meta["response"] is not None:
            ok["content"] = {"application/json": {"schema": meta["response"]}}
        elif code == 302:
            ok["headers"] = {"Location": {"schema": {"type": "string"}}}
        elif page and code != 204:
            ok["content"] = page
        op["responses"][str(code)] = ok
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    # 400 everywhere: plugin.guards refuses a NUL in any path, query or body
    for code in sorted(set(meta["errors"]) | {400, 500}):
        # a page renders its own errors (a form that expired, a sign-in needed), and
        # validation answers the JSON error there too; a crash is the JSON error everywhere
        both = page is not None and code != 500
        op["responses"][str(code)] = {"description": HTTPStatus(code).phrase,
                                      "content": {**page, **error} if both else error}
    return op


def _path_schema(rule: Rule, arg: str) -> dict[str, Any]:
    """An ``<int:...>`` argument is an integer (only digits route), anything else a string."""
    if re.search(rf"<int(?:\([^)]*\))?:{re.escape(arg)}>", rule.rule):
        return {"type": "integer", "minimum": 0}
    return {"type": "string"}


@bp.get("/openapi.json")
@doc(summary="This API's OpenAPI 3 document", tags=["meta"])
def openapi_json() -> ResponseReturnValue:
    return jsonify(build_spec(current_app))
