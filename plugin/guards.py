"""Refuse NUL characters, and JSON nested too deeply to walk, at the edge.

PostgreSQL text cannot hold U+0000: the driver raised on any id, name or query that
carried one, and the request ended in a 500 (SQLite stored it silently). No id, name or
cart of ours has a use for one, so every request that carries one is a 400 before any
view runs. A JSON body's lone surrogate (``"\\ud800"``) goes the same way: no UTF-8
encodes it, so every database write of it raised, on both databases. Webhook bodies are
left alone here: they are verified over the raw bytes first, and
``connectors.parsing.load_json_object`` refuses them there.
"""

from __future__ import annotations

import json

from flask import Flask, current_app, request

from connectors.parsing import MAX_JSON_DEPTH, scan_json
from plugin.errors import BadRequest, PayloadTooLarge

_NUL = "\x00"
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
#: Signed webhook endpoints outside the ``webhooks`` blueprint (Shopify's app-wide one):
#: their bodies are judged after the signature too, so an unsigned one gets its 401.
RAW_BODY_ENDPOINTS = frozenset({"install.shopify_app_webhook"})
_BODY_REFUSAL = "NUL characters and lone surrogates (\\ud800-\\udfff unpaired) are not allowed."


def _parsed_body() -> object:
    """The body parsed as JSON whatever its type, or None, without ``get_json(force=True)``:
    Werkzeug keeps that parse and answers a view's later ``get_json(silent=True)`` from it,
    so a text/plain post (another site's form or beacon, no preflight) passed as JSON in
    views that require JSON. The raw body stays cached for the view."""
    raw = request.get_data(cache=True)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def refuse_nul() -> None:
    """``before_request``: a 400 naming where the NUL (or, in a JSON body, the lone
    surrogate) was: path, query, form or body."""
    where = []
    if _NUL in request.path:
        where.append("path")
    if any(_NUL in k or _NUL in v for k, v in request.args.items(multi=True)):
        where.append("query")
    signed_body = request.blueprint == "webhooks" or request.endpoint in RAW_BODY_ENDPOINTS
    if not signed_body and request.method in ("POST", "PUT", "PATCH"):
        if request.mimetype in _FORMS:
            if any(_NUL in k or _NUL in v for k, v in request.form.items(multi=True)):
                where.append("form")
        else:
            try:
                deep, nul = scan_json(_parsed_body())
            except RecursionError:
                deep, nul = True, False
            if deep:
                raise BadRequest("The JSON body is nested too deeply.", {"_body": [
                    f"At most {MAX_JSON_DEPTH} levels of arrays and objects."]})
            if nul:
                where.append("body")
    if where:
        body = "body" in where  # a JSON body may also hold a lone surrogate ("\\ud800")
        raise BadRequest(
            "The request holds a NUL character" + (" or a lone surrogate." if body else "."),
            {part: [_BODY_REFUSAL if part == "body" else "NUL characters are not allowed."]
             for part in where})


def refuse_cut_body() -> None:
    """``before_request``: 413 for a body sent without a Content-Length (chunked) past the
    limit. Werkzeug cuts such a stream one byte past it (``MAX_CONTENT_LENGTH``), and the
    cut JSON was answered as "not a JSON object" or a missing field: the client was told
    to fix a body it only had to shorten. (A declared length over it is a 413 already;
    the webhook view reads its own raw body and checks it alike.)"""
    if request.blueprint == "webhooks" or request.method not in ("POST", "PUT", "PATCH"):
        return
    if request.content_length is not None or request.mimetype in _FORMS:
        return
    limit = current_app.config["WEBHOOK_MAX_BYTES"]
    if len(request.get_data(cache=True)) > limit:
        raise PayloadTooLarge(f"Request bodies are limited to {limit} bytes.")


def init_app(app: Flask) -> None:
    app.before_request(refuse_cut_body)
    app.before_request(refuse_nul)
