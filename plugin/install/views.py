"""Install endpoints (thin): Shopify OAuth redirect/callback, Saleor manifest/register."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)
from flask.typing import ResponseReturnValue

from connectors.manifest import load_manifest
from plugin.api.limits import saleor_register
from plugin.install import saleor, shopify
from plugin.install.schemas import (
    AcceptedSchema,
    ManifestQuery,
    RegisterRequest,
    RegisterResponse,
    SaleorManifestSchema,
    ShopifyCallbackQuery,
    ShopifyInstallQuery,
)
from plugin.openapi import HTML, doc
from plugin.webhooks.views import raw_webhook_body

bp = Blueprint("install", __name__)

_STATE_KEY = "shopify_oauth_state"


@bp.get("/install/shopify")
@doc(summary="Start a Shopify install (redirects to the shop's consent screen)",
     tags=["install"], query=ShopifyInstallQuery, errors=(400, 404, 422))
def shopify_install() -> ResponseReturnValue:
    args = ShopifyInstallQuery().load(request.args)
    url, state, shop = shopify.begin_install(args["shop"])
    session[_STATE_KEY] = {"state": state, "shop": shop}
    return redirect(url, code=302)


@bp.get("/install/shopify/callback")
@doc(summary="Finish a Shopify install (verifies hmac and state, exchanges the code)",
     tags=["install"], query=ShopifyCallbackQuery, errors=(400, 401, 404, 422, 502))
def shopify_callback() -> ResponseReturnValue:
    ShopifyCallbackQuery().load(request.args)
    pending = session.pop(_STATE_KEY, None) or {}
    params = request.args.to_dict(flat=True)
    if pending.get("shop") not in (None, params.get("shop")):
        pending = {}  # the nonce was issued for another shop
    shop = shopify.finish_install(params, pending.get("state"))
    return redirect(shopify.app_admin_url(shop.domain), code=302)


@bp.get("/privacy")
@doc(summary="The app's data privacy policy (linked from the marketplace listings)",
     tags=["install"], content_type=HTML)
def privacy_policy() -> ResponseReturnValue:
    manifest = load_manifest()
    return render_template("public/privacy.html", app=manifest["app"],
                           privacy=manifest["privacy"])


@bp.get("/favicon.ico")
@doc(summary="The app's icon (browsers ask for it on every page, JSON answers included)",
     tags=["install"], content_type="image/png")
def favicon() -> ResponseReturnValue:
    return current_app.send_static_file("logo.png")


@bp.get("/api/manifest")
@doc(summary="Saleor app manifest, rendered from manifest.yaml", tags=["install"],
     query=ManifestQuery, response=SaleorManifestSchema, errors=(404, 422))
def saleor_manifest() -> ResponseReturnValue:
    args = ManifestQuery().load(request.args)
    return jsonify(saleor.app_manifest(args["shop"]))


@bp.post("/api/register")
@saleor_register
@doc(summary="Saleor app registration: stores the app token (domain allow-list)",
     tags=["install"], request=RegisterRequest, response=RegisterResponse,
     errors=(400, 401, 403, 409, 422, 429, 503))
def saleor_register() -> ResponseReturnValue:
    body = RegisterRequest().load(request.get_json(silent=True) or {})
    shop = saleor.register_app(request.headers.get("Saleor-Api-Url"), body["auth_token"])
    return jsonify(RegisterResponse().dump({"status": "registered", "shop_id": shop.id}))


@bp.post("/webhooks/shopify")
@doc(summary="Shopify app-wide webhooks (compliance topics); shop found by its domain",
     tags=["webhooks"], response=AcceptedSchema, errors=(400, 401, 404, 413),
     body="raw Shopify webhook JSON")
def shopify_app_webhook() -> ResponseReturnValue:
    raw = raw_webhook_body()  # raw bytes first (413 when too large): the HMAC covers these
    status = shopify.receive_app_webhook(request.headers, raw)
    return jsonify(AcceptedSchema().dump({"status": status}))
