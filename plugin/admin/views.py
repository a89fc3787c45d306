"""Admin pages (thin): authenticate, validate, call the domain modules, render."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from marshmallow import ValidationError

from plugin import crypto, localtime, privacy, shops
from plugin.admin import auth, channel, charts, forms, publication, stats
from plugin.admin import settings as settings_service
from plugin.admin.schemas import RotateCustomerTokenSchema
from plugin.currency import catalogue_currency
from plugin.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    ShopkeeperError,
    Unauthorized,
    error_response,
)
from plugin.extensions import db
from plugin.install import shopify as shopify_install
from plugin.models import Shop
from plugin.offers import permissions as offer_permissions
from plugin.offers import platform as offer_platform
from plugin.openapi import HTML, doc, is_page
from plugin.webhooks import inbox

bp = Blueprint("admin", __name__, url_prefix="/admin")
log = logging.getLogger("shopkeeper.admin")

#: Session key of a rotated webhook secret waiting to be shown once, sealed: the session
#: cookie is only signed, and this secret is also the shop's admin secret.
REVEAL_KEY = "admin_new_webhook_secret"
REVEAL_TTL_SECONDS = 10 * 60


@bp.before_request
def _protect() -> None:
    """CSRF token on every form POST (the Saleor bootstrap POST carries a verified JWT)."""
    if request.method == "POST" and request.endpoint != "admin.saleor_session":
        try:
            validate_csrf(request.form.get("csrf_token", ""))
        except CSRFError:
            raise
        except Exception as err:  # wtforms ValidationError for missing/expired tokens
            raise CSRFError(str(err)) from None
        auth.require_same_origin_post()


@bp.after_request
def _headers(response: Response) -> Response:
    # who may frame the page: the signed-in shop's admin, unless a view said otherwise
    # (the pages a platform's admin loads before anyone is signed in)
    ancestors = getattr(g, "frame_ancestors", None) or auth.frame_ancestors(
        getattr(g, "admin_shop", None))
    scripts = getattr(g, "script_src", "'self'")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src {scripts}; style-src 'self'; img-src 'self' data:; "
        f"form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}")
    response.headers["Referrer-Policy"] = "same-origin"  # "no-referrer" makes Origin: null
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


#: the colour schemes the Saleor Dashboard names (App Bridge ``theme``)
DASHBOARD_THEMES = frozenset({"light", "dark"})
#: the Dashboard's last theme, kept by theme.js (a cookie partitioned to the Dashboard's frame)
THEME_COOKIE = "sk_saleor_theme"


@bp.context_processor
def _dashboard_theme() -> dict[str, str | None]:
    """The Saleor Dashboard's theme, so a page in its frame is drawn in it from the first
    paint: its iframe URL's ``theme`` (beside ``saleorApiUrl``), else the last one it posted
    (theme.js follows its ``theme`` messages and keeps them in ``THEME_COOKIE``)."""
    args = request.args
    theme = args.get("theme") if args.get("saleorApiUrl") or args.get("domain") else None
    theme = theme or request.cookies.get(THEME_COOKIE)
    return {"dashboard_theme": theme if theme in DASHBOARD_THEMES else None}


@bp.errorhandler(CSRFError)
def _csrf_failed(err: CSRFError):
    return _page_error(400, "The form expired or did not come from this page; reload it.")


def _wants_json() -> bool:
    """JSON for API callers and for the views that answer JSON; pages get pages."""
    return request.accept_mimetypes.best == "application/json" \
        or not is_page(current_app.view_functions.get(request.endpoint or ""))


@bp.errorhandler(Unauthorized)
def _unauthorized(err: Unauthorized):
    if _wants_json():
        return error_response(err.code, err.message, err.errors)
    g.frame_ancestors = auth.saleor_frame_ancestors(request.args)  # the Dashboard's first load
    return render_template("admin/login.html", error=err.message,
                           csrf_token=generate_csrf()), 401


@bp.errorhandler(ShopkeeperError)
def _failed(err: ShopkeeperError):
    """A merchant who submits an empty form gets the page saying so, not a JSON body."""
    return _page_error(err.code, err.message, err.errors)


def _page_error(code: int, message: str, errors: dict | None = None):
    """The error page, or the app's JSON error where JSON is asked for (``_wants_json``)."""
    if _wants_json():
        return error_response(code, message, errors)
    return render_template("admin/error.html", message=message, errors=errors or {}), code


#: What a settings form refused says as JSON (its ``errors``: by dotted field name).
SETTINGS_REFUSED = "Nothing was saved: correct the fields named in errors."


def _shop():
    g.admin_shop = auth.current_shop()
    return g.admin_shop


def _render(template: str, **context: Any) -> str:
    zone = localtime.shop_zone(g.admin_shop.id)
    return render_template(template, shop=g.admin_shop, csrf_token=generate_csrf(),
                           signed_in_via=session.get("admin_via"),
                           local_time=partial(localtime.wall_clock, zone=zone), **context)


# ---------------------------------------------------------------- sign-in
@bp.get("/")
@doc(summary="Admin dashboard (signs in with a Shopify session token when given one)",
     tags=["admin"], content_type=HTML, errors=(401,))
def dashboard() -> ResponseReturnValue:
    answer = _shopify_launch()
    if answer is not None:
        return answer
    shop = _shop()
    window = stats.dashboard_window(shop.id)  # one window for charts, KPIs and A/B box
    series = stats.daily_series(shop.id, window=window)
    labels = [d.strftime("%d %b") for d in series["days"]]
    ab = stats.recommendations_ab(shop.id, window=window)
    uplift_rows = []
    if ab["uplift"]:
        u = ab["uplift"]
        uplift_rows.append(("Recommendations: conversion", u["estimate"] * 100,
                            u["low"] * 100, u["high"] * 100))
    offers = _offer_report(shop, window)
    if offers and offers.get("conversion_uplift"):
        u = offers["conversion_uplift"]
        uplift_rows.append(("Offers: conversion", u["estimate"] * 100, u["low"] * 100,
                            u["high"] * 100))
    status = stats.connector_status(shop)
    return _render(
        "admin/dashboard.html",
        totals=stats.totals(series), ab=ab, window=window,
        timezone=series["timezone"], offers=offers,
        offer_costs=stats.offer_costs(shop.id, window=window), budgets=_offer_budgets(shop),
        model=stats.model_summary(shop.id),
        fit_failures=_fit_failures(shop.id),
        engagement_chart=charts.line_chart(
            "Impressions, clicks and add-to-carts per day", labels,
            {"impressions": series["impressions"], "clicks": series["clicks"],
             "add to cart": series["add_to_carts"]}),
        orders_chart=charts.line_chart("Orders per day", labels,
                                       {"orders": series["orders"]}, height=180),
        revenue_chart=charts.line_chart("Revenue per day", labels,
                                        {"revenue": series["revenue"]}, height=180),
        uplift_chart=charts.interval_chart("Uplift, treatment minus control (95% CI)",
                                           uplift_rows, unit=" pp"),
        inbox=inbox.inbox_counts(shop.id), status=status,
        progress=[(s, charts.progress_bar(f"sync {s['resource']}", s["done"], s["total"]))
                  for s in status["syncs"]])


def _shopify_launch() -> Response | str | None:
    """Shopify opening the App URL: ask a new store for access, sign in an installed one.

    None means "render the dashboard": a session token signed the merchant in, or this
    browser already has a session for that store.
    """
    token = request.args.get("id_token")
    if token and not auth.query_token_may_sign_in():
        log.warning("admin.shopify_token_from_another_site", extra={
            "sec_fetch_site": request.headers.get("Sec-Fetch-Site"),
            "sec_fetch_dest": request.headers.get("Sec-Fetch-Dest")})
        raise Forbidden("Shopkeeper opens with a Shopify session token only inside your "
                        "store's admin; open it from there.")
    token = token or _bearer()  # a header no other site can make the browser send
    params = request.args.to_dict(flat=True)
    if not shopify_install.is_launch(params, token):
        return None
    launch = shopify_install.verify_launch(params, token)
    if launch.shop is None or shopify_install.needs_oauth(launch.shop):
        # App Store "Install", a reinstall, a release needing a new scope, or credentials
        # Shopify refused (an expired refresh token): OAuth at the top level (its callback
        # stores new tokens and subscribes webhooks again, so new topics arrive too)
        target = _public(url_for("install.shopify_install", shop=launch.domain))
        return _shopify_bridge(launch.domain, "exit", target) if launch.embedded \
            else redirect(target)
    if launch.via_token:
        auth.start_session(launch.shop, "shopify")
        return None
    if session.get(auth.SESSION_KEY) == launch.shop.id:
        return None
    if launch.embedded:  # inside the admin without a token: App Bridge fetches one
        return _shopify_bridge(launch.domain, "token", "")
    return redirect(shopify_install.app_admin_url(launch.domain))


def _public(path: str) -> str:
    """An absolute URL of this app (App Bridge navigates the top window to it)."""
    base = current_app.config.get("PUBLIC_URL") or request.host_url
    return base.rstrip("/") + path


def _shopify_bridge(domain: str, mode: str, target: str) -> str:
    """A page for the Shopify admin's iframe that App Bridge moves on from."""
    g.frame_ancestors = auth.shopify_frame_ancestors(domain)
    g.script_src = "'self' https://cdn.shopify.com"  # App Bridge, from Shopify's CDN only
    return render_template("admin/shopify_bridge.html", mode=mode, target=target,
                           api_key=current_app.config["SHOPIFY_API_KEY"])


def _offer_report(shop: Shop, window: stats.Window) -> dict[str, Any] | None:
    """The offers report over the dashboard's window (``stats.dashboard_window``): the A/B
    box shows it beside the recommendations' arms, which count the same days."""
    from plugin.offers.attribution import uplift_report
    from plugin.offers.service import guardrails_for

    try:
        rails = guardrails_for(shop)
    except ValueError:
        return None
    return uplift_report(shop.id, rails, window.start, window.end)


def _offer_budgets(shop: Shop) -> list[dict[str, Any]] | None:
    """The budgets table: while offers are on, or anything was spent or configured (None:
    unreadable guardrails, as the offers report)."""
    from plugin.offers.service import guardrails_for

    try:
        rails = guardrails_for(shop)
    except ValueError:
        return None
    rows = stats.offer_budgets(shop.id, rails)
    shown = (shop.settings or {}).get("offers_enabled") or len(rows) > 1 \
        or rows[0]["spent_month"]
    return rows if shown else None


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:] if header.startswith("Bearer ") else None


@bp.get("/login")
@doc(summary="Sign in with a signed admin link (generic and Vendure stores)", tags=["admin"],
     content_type=HTML, status=(200, 302), errors=(401,))
def login_link() -> ResponseReturnValue:
    if not request.args.get("sig"):
        return render_template("admin/login.html", csrf_token=generate_csrf())
    link = _link(request.args)
    shop, _ = auth.check_link(**link)
    if auth.link_needs_confirmation(shop):
        # not a renewal of this browser's session of the shop (a mail app, another site,
        # a link injected into one of ours, another shop's session): a click on this page
        # naming the shop (same-origin, CSRF token) signs in, never the GET alone
        g.frame_ancestors = "'none'"  # and no other page may frame the button
        current = auth.session_shop()
        return render_template("admin/confirm_sign_in.html", target=shop,
                               query={k: request.args.get(k, "") for k in _LINK_QUERY},
                               current=current if current != shop else None,
                               csrf_token=generate_csrf())
    auth.login_with_link(**link)
    return redirect(url_for("admin.dashboard"))


_LINK_QUERY = ("shop", "exp", "sig", "nonce")


def _link(values: Mapping[str, str]) -> dict[str, str]:
    """A sign-in link's query (or its confirmation form) as ``auth.login_with_link`` takes it."""
    return {"shop_id": values.get("shop", ""), "exp": values.get("exp", ""),
            "sig": values.get("sig", ""), "nonce": values.get("nonce", "")}


@bp.post("/login/link")
@doc(summary="Sign in with a signed admin link, confirmed on its page (CSRF-protected)",
     tags=["admin"], content_type=HTML, status=302, errors=(400, 401))
def login_link_confirmed() -> ResponseReturnValue:
    auth.login_with_link(**_link(request.form))
    return redirect(url_for("admin.dashboard"))


@bp.post("/login")
@doc(summary="Sign in with the shop id and its admin secret", tags=["admin"],
     content_type=HTML, status=302, errors=(400, 401))
def login_secret() -> ResponseReturnValue:
    auth.login_with_secret(request.form.get("shop_id", ""), request.form.get("secret", ""))
    return redirect(url_for("admin.dashboard"))


@bp.post("/session/saleor")
@doc(summary="Exchange the Saleor Dashboard's App Bridge token for an admin session",
     tags=["admin"], errors=(401,))
def saleor_session() -> ResponseReturnValue:
    api_url = request.headers.get("saleor-api-url", "")
    token = request.headers.get("authorization-bearer", "") or (_bearer() or "")
    auth.login_with_saleor_token(api_url, token)
    return jsonify(status="ok", next=url_for("admin.dashboard"))


@bp.post("/logout")
@doc(summary="End the admin session", tags=["admin"], content_type=HTML, status=302, errors=(400,))
def logout() -> ResponseReturnValue:
    auth.end_session()
    return redirect(url_for("admin.login_link"))


# ---------------------------------------------------------------- settings
@bp.get("/settings")
@doc(summary="Settings page", tags=["admin"], content_type=HTML, errors=(401,))
def settings_page() -> ResponseReturnValue:
    shop = _shop()
    return _settings_page(settings_service.current(shop),
                          settings_service.stored_problems(shop), revealed=_revealed_secret())


def _revealed_secret() -> str | None:
    """The webhook secret the last rotation made, once (sealed in the session meanwhile)."""
    sealed = session.pop(REVEAL_KEY, None)
    return crypto.unseal(sealed, ttl=REVEAL_TTL_SECONDS) if isinstance(sealed, str) else None


#: ``_settings_page``'s default page revision: the settings as stored now
_STORED = object()


def _settings_page(values: dict[str, Any], errors: dict[str, list[str]], code: int = 200,
                   typed: dict[str, str] | None = None, revealed: str | None = None,
                   page: Any = _STORED, notice: str | None = None):
    """The settings page; ``page``: the revision its form carries (``Shown``, None for
    none: a refused form carries on what it was shown), ``notice``: why it is shown again."""
    if code >= 400 and _wants_json():  # a refused form asked for JSON: the app's JSON error
        return error_response(code, notice or SETTINGS_REFUSED, errors)
    typed = typed or {}
    if page is _STORED:
        page = settings_service.shown(g.admin_shop)
    body = _render("admin/settings.html", values=values, errors=errors,
                   labels=forms.LABELS, details=forms.DETAILS, json_only=forms.JSON_ONLY,
                   new_webhook_secret=revealed, page=page, notice=notice,
                   rules_text=typed.get("merchandising")
                   or forms.rules_text(values.get("merchandising", [])),
                   overrides_text=typed.get("repurchase_overrides")
                   or forms.overrides_text(values.get("repurchase_overrides", [])),
                   owns_webhook_secret=settings_service.owns_webhook_secret(g.admin_shop),
                   customer_token_secret=settings_service.customer_token_secret(g.admin_shop),
                   previous_token_secret_until=(
                       settings_service.previous_customer_token_secret_until(g.admin_shop)),
                   webhook_secret_signs_tokens=(
                       g.admin_shop.platform in shops.WEBHOOK_SECRET_SIGNS_TOKENS),
                   saleor_channel=channel.current_channel(g.admin_shop),
                   shopify_publication=publication.choice(g.admin_shop),
                   offer_amounts_note=offer_platform.note(g.admin_shop),
                   other_currencies=settings_service.other_currencies(g.admin_shop, values),
                   converted_currencies=settings_service.converted_currencies(g.admin_shop),
                   own_currency=catalogue_currency(g.admin_shop.id),
                   offer_permission_note=offer_permissions.note(g.admin_shop)
                   or settings_service.offers_paused_note(g.admin_shop),
                   offer_cleanup_note=offer_permissions.cleanup_note(g.admin_shop))
    return body, code


@bp.post("/settings")
@doc(summary="Save settings (validated; field errors answer 422, a field also changed since "
     "the page was shown 409)", tags=["admin"],
     content_type=HTML, status=302, errors=(400, 401, 409, 422))
def settings_save() -> ResponseReturnValue:
    shop = _shop()
    page = settings_service.shown_in(request.form)
    submitted, errors = forms.parse_form(request.form, request.form.getlist,
                                         settings_service.refused_lines(shop))
    # every section's problems in one answer: the textareas' lines were checked as they
    # were read (with their real line numbers), the rest by the schema
    for key, messages in settings_service.problems(shop, submitted).items():
        if key.partition(".")[0] not in errors:
            errors.setdefault(key, []).extend(messages)
    if not errors:
        try:
            settings_service.save(shop, submitted, page)
        except ValidationError as err:  # a rule across sections (e.g. budgets)
            errors = err.messages
        except settings_service.EditConflict as conflict:
            db.session.rollback()
            return _conflict_page(conflict)
    if errors:
        db.session.rollback()
        shown = settings_service.current(shop)
        for section, values in submitted.items():  # keep what the admin typed
            if isinstance(values, dict):
                shown[section] = {**shown.get(section, {}), **values}
        typed = {k: request.form[k] for k in ("merchandising", "repurchase_overrides")
                 if k in request.form}
        return _settings_page(shown, errors, 422, typed, page=page)
    left = settings_service.still_refused(shop)
    flash(f"Settings saved. {left}" if left else "Settings saved.", "error" if left else "ok")
    return redirect(url_for("admin.settings_page"))


def _conflict_page(conflict: settings_service.EditConflict) -> ResponseReturnValue:
    """The stored settings, the merchant's other edits kept, the clashing fields marked;
    its form carries the revision stored now, so saving again writes those edits."""
    if _wants_json():
        raise conflict
    values = settings_service.current(g.admin_shop)
    for name, value in conflict.kept.items():
        section, _, field = name.partition(".")
        if field:
            values[section] = {**values.get(section, {}), field: value}
        else:
            values[section] = value
    return _settings_page(values, conflict.errors, 409, notice=conflict.message)


@bp.post("/settings/saleor-channel")
@doc(summary="Choose the Saleor channel the storefront sells through (checked against the "
     "shop's channels)", tags=["admin"], content_type=HTML, status=302,
     errors=(400, 401, 422))
def saleor_channel_save() -> ResponseReturnValue:
    shop = _shop()
    try:
        chosen = channel.choose(shop, request.form.get("saleor_channel", ""))
    except BadRequest as err:
        db.session.rollback()
        if shop.platform != "saleor":
            raise
        return _settings_page(settings_service.current(shop),
                              err.errors or {"saleor_channel": [err.message]}, 422)
    flash(f"Channel {chosen.name} ({chosen.slug}) chosen; products are read again from it "
          "at the next sync.", "ok")
    return redirect(url_for("admin.settings_page"))


@bp.post("/settings/shopify-publication")
@doc(summary="Choose the Shopify publication the headless storefront sells through (checked "
     "against the shop's publications)", tags=["admin"], content_type=HTML, status=302,
     errors=(400, 401, 422))
def shopify_publication_save() -> ResponseReturnValue:
    shop = _shop()
    try:
        chosen = publication.choose(shop, request.form.get(publication.SETTING, ""))
    except BadRequest as err:
        db.session.rollback()
        if shop.platform != "shopify":
            raise
        return _settings_page(settings_service.current(shop),
                              err.errors or {publication.SETTING: [err.message]}, 422)
    flash(f"Publication {chosen.name} chosen: products not published to it are no longer "
          "recommended once the next sync has read them." if chosen else
          "No publication chosen: every active product in stock may be recommended.", "ok")
    return redirect(url_for("admin.settings_page"))


@bp.post("/keys/<which>")
@doc(summary="Rotate the public widget key, the webhook secret or the customer-token secret "
     "(the old one still verifies for a grace period unless revoke_old), or end that grace",
     tags=["admin"],
     content_type=HTML, status=302, errors=(400, 401))
def rotate_key(which: str) -> ResponseReturnValue:
    shop = _shop()
    if which == "widget":
        settings_service.rotate_widget_key(shop)
        flash("A new widget key is active; update the storefront snippet.", "ok")
    elif which == "webhook":
        secret = settings_service.rotate_webhook_secret(shop)
        auth.rebind_session(shop)  # other sessions, opened under the old secret, end
        # never the secret itself in a flash: the session cookie is readable, and a copy
        # of it would keep the new admin secret after sign-out ended the session
        session[REVEAL_KEY] = crypto.seal(secret)
    elif which == "customer-token":
        try:
            form = RotateCustomerTokenSchema().load(request.form)
        except ValidationError as err:
            raise BadRequest("Invalid rotation form.", err.messages) from None
        settings_service.rotate_customer_token_secret(shop, keep_previous=not form["revoke_old"])
        until = settings_service.previous_customer_token_secret_until(shop)
        flash("A new customer-token secret is active (below); " + (
            f"tokens signed with the old one are accepted until {until:%Y-%m-%d %H:%M} UTC: "
            "update your storefront's backend before then." if until else
            "tokens signed with the old one are no longer accepted."), "ok")
    elif which == "customer-token-grace":
        settings_service.end_customer_token_grace(shop)
        flash("Tokens signed with the previous customer-token secret are no longer "
              "accepted.", "ok")
    else:
        raise BadRequest("Unknown key.")
    return redirect(url_for("admin.settings_page"))


# ---------------------------------------------------------------- operations
@bp.post("/inbox/retry")
@doc(summary="Requeue this shop's dead webhook deliveries", tags=["admin"], content_type=HTML,
     status=302, errors=(400, 401))
def inbox_retry() -> ResponseReturnValue:
    shop = _shop()
    n = inbox.retry_dead(shop.id)
    shops.audit(shop.id, "inbox.retry_dead", count=n)
    db.session.commit()
    flash(f"{n} deliveries requeued.", "ok")
    return redirect(url_for("admin.dashboard"))


@bp.get("/progress.json")
@doc(summary="Sync and training progress for the progress bars", tags=["admin"],
     errors=(401,))
def progress() -> ResponseReturnValue:
    shop = _shop()
    status = stats.connector_status(shop)
    model = stats.model_summary(shop.id)
    return jsonify(syncs=status["syncs"], auth_failing=status["auth_failing"],
                   unavailable=status["unavailable"],
                   rate_limited=status["rate_limited"], inbox=inbox.inbox_counts(shop.id),
                   model=None if model is None else {"version": model["version"],
                                                     "age_hours": model["age_hours"]})


# ---------------------------------------------------------------- privacy
@bp.get("/privacy")
@doc(summary="Privacy tools: look up a customer", tags=["admin"], content_type=HTML,
     errors=(401,))
def privacy_page() -> ResponseReturnValue:
    shop = _shop()
    asked = (request.args.get("customer") or "").strip()
    customer = privacy.find_customer(shop.id, asked) if asked else ""
    found = privacy.export_customer(shop.id, customer) if customer else None
    return _render("admin/privacy.html", customer=customer, found=found, asked=asked,
                   requests=privacy.data_requests(shop.id),
                   keep_days=privacy.EXPORT_KEEP_DAYS)


@bp.get("/privacy/requests/<name>")
@doc(summary="Download the export a platform data request produced (JSON)", tags=["admin"],
     errors=(401, 404))
def privacy_request_file(name: str) -> ResponseReturnValue:
    shop = _shop()
    path = privacy.data_request_file(shop.id, name)
    if path is None:
        raise NotFound("No such data request export (they are kept "
                       f"{privacy.EXPORT_KEEP_DAYS} days).")
    shops.audit(shop.id, "privacy.request_downloaded")
    db.session.commit()
    return Response(path.read_bytes(), mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="{path.name}"',
        "Cache-Control": "no-store"})


@bp.get("/privacy/export")
@doc(summary="Download everything stored about a customer (JSON)", tags=["admin"],
     errors=(400, 401))
def privacy_export() -> ResponseReturnValue:
    shop = _shop()
    customer = (request.args.get("customer") or "").strip()
    if not customer:
        raise BadRequest("Which customer?", {"customer": ["Missing."]})
    shops.audit(shop.id, "privacy.exported")
    db.session.commit()
    body = json.dumps(privacy.export_customer(shop.id, customer), indent=2, default=str)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": 'attachment; filename="customer-export.json"'})


@bp.post("/privacy/erase")
@doc(summary="Erase a customer's personal data and interactions", tags=["admin"],
     content_type=HTML, status=302, errors=(400, 401))
def privacy_erase() -> ResponseReturnValue:
    shop = _shop()
    customer = (request.form.get("customer") or "").strip()
    if not customer:
        raise BadRequest("Which customer?", {"customer": ["Missing."]})
    privacy.erase_customer(shop.id, customer)
    db.session.commit()
    flash("The customer's data was erased.", "ok")
    return redirect(url_for("admin.privacy_page"))


@bp.post("/shop/erase")
@doc(summary="Erase the whole shop (type the domain to confirm)", tags=["admin"],
     content_type=HTML, status=(200, 302), errors=(400, 401))
def shop_erase() -> ResponseReturnValue:
    shop = _shop()
    if (request.form.get("confirm") or "").strip().lower() != shop.domain:
        flash("Type the shop's domain exactly to confirm.", "error")
        return redirect(url_for("admin.privacy_page"))
    shops.erase_shop(shop.id)
    db.session.commit()
    session.clear()
    return render_template("admin/error.html", message="All of this shop's data was erased."), 200


def init_app(app: Flask) -> None:
    """Cookie settings for an admin that lives in the platform's iframe."""
    if app.config.get("ADMIN_EMBEDDED", True):
        app.config["SESSION_COOKIE_SAMESITE"] = "None"
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["SESSION_COOKIE_PARTITIONED"] = True
    app.register_blueprint(bp)


def _fit_failures(shop_id: str) -> Any:
    """The shop's failed or abandoned fits since its last good one (``None`` when there are
    none, or training is not installed)."""
    try:
        from plugin.training import fit_failures
    except ImportError:
        return None
    return fit_failures(shop_id)
