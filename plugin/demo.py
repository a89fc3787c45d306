"""The demo storefront and the widget files (demo, browser tests, and widget hosting).

Widget modules are served at ``/widgets/v/<hash>/<name>.js`` with a year of immutable
caching; ``/widgets/loader.js`` (the one URL merchants embed) is cached briefly and carries
the current hash, so a deploy reaches every storefront within minutes. The storefront pages
are rendered the way a merchant's server would: the widget key and, for a logged-in demo
customer, a signed customer token go into the HTML; a strict CSP allows no inline script.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Any

import jwt
import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, redirect, request, send_from_directory
from flask.typing import ResponseReturnValue
from jinja2 import Environment, FileSystemLoader, select_autoescape

from plugin.api.service import in_holdout
from plugin.demo_setup import DEMO_DOMAIN
from plugin.errors import BadRequest
from plugin.extensions import db
from plugin.models import Interaction, Order, Product, Shop

WIDGETS_DIR = Path(__file__).resolve().parent.parent / "widgets"
DEMO_DIR = WIDGETS_DIR / "demo"
#: The files a storefront may load through the loader; their contents make the version.
MODULES = ("loader", "api", "for-you", "who-for", "cart-offer")
VERSION_PLACEHOLDER = "__SK_VERSION__"
LOADER_MAX_AGE = 300
IMMUTABLE = "public, max-age=31536000, immutable"
CUSTOMER_COOKIE = "sk_demo_customer"
#: No inline script or style, no eval; everything from this origin.
DEMO_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")

bp = Blueprint("demo", __name__)
_templates = Environment(loader=FileSystemLoader(DEMO_DIR), autoescape=select_autoescape())
_version_cache: dict[tuple, str] = {}
_gzip_cache: dict[bytes, bytes] = {}


def widget_version() -> str:
    """Short content hash of all widget modules (recomputed only when a file changes)."""
    paths = [WIDGETS_DIR / f"{name}.js" for name in MODULES]
    stamp = tuple(p.stat().st_mtime_ns for p in paths)
    if stamp not in _version_cache:
        digest = hashlib.sha256()
        for p in paths:
            digest.update(p.read_bytes())
        _version_cache.clear()
        _version_cache[stamp] = digest.hexdigest()[:12]
    return _version_cache[stamp]


def _gzipped(body: bytes) -> bytes:
    """Deterministic gzip (no timestamp) of a module, so its ETag is stable across workers."""
    key = hashlib.sha256(body).digest()
    if key not in _gzip_cache:
        if len(_gzip_cache) > 32:  # a handful of modules; a deploy replaces them
            _gzip_cache.clear()
        _gzip_cache[key] = gzip.compress(body, 9, mtime=0)
    return _gzip_cache[key]


def _script(body: bytes | str, cache_control: str) -> Response:
    """A widget module, gzipped for clients that take it (56 KB of script is ~16 KB so)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    encode = request.accept_encodings["gzip"] > 0
    response = Response(_gzipped(body) if encode else body, mimetype="text/javascript")
    if encode:
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")  # caches keep the two forms apart
    response.headers["Cache-Control"] = cache_control
    response.headers["Access-Control-Allow-Origin"] = "*"  # public, static, no credentials
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/widgets/loader.js")
def loader() -> ResponseReturnValue:
    """The embeddable loader, stamped with the current module version."""
    text = (WIDGETS_DIR / "loader.js").read_text(encoding="utf-8")
    body = text.replace(VERSION_PLACEHOLDER, widget_version(), 1)
    return _script(body, f"public, max-age={LOADER_MAX_AGE}")


@bp.get("/widgets/v/<version>/<name>.js")
def versioned_module(version: str, name: str) -> ResponseReturnValue:
    """A module at its content-hash URL; a stale hash gets today's file, briefly cached."""
    if name not in MODULES or name == "loader":
        abort(404)
    body = (WIDGETS_DIR / f"{name}.js").read_bytes()
    fresh = version == widget_version()
    return _script(body, IMMUTABLE if fresh else f"public, max-age={LOADER_MAX_AGE}")


@bp.get("/widgets/<path:filename>")
def widget_file(filename: str) -> ResponseReturnValue:
    """Any other file under ``widgets/`` (demo assets), briefly cached."""
    response = send_from_directory(WIDGETS_DIR, filename, max_age=LOADER_MAX_AGE)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/")
def index() -> ResponseReturnValue:
    """The bare host name lands on the storefront."""
    return redirect("/demo/")


def _page(template: str, **context: Any) -> Response:
    """Render a storefront page as a merchant's server would (key + optional token)."""
    shop = _demo_shop()
    if shop is None:
        abort(404, "No demo shop yet: run `shopkeeper demo` first.")
    customer = request.cookies.get(CUSTOMER_COOKIE) or None
    shoppers = demo_shoppers(shop.id)
    if customer not in {s["id"] for s in shoppers}:
        customer = None
    html = _templates.get_template(template).render(
        shop=shop, widget_key=shop.widget_key, version=widget_version(),
        customer=customer, shoppers=shoppers, path=request.path,
        customer_token=customer_token(shop, customer) if customer else None,
        widget_timeout=current_app.config.get("DEMO_WIDGET_TIMEOUT_MS"), **context)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = DEMO_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/demo/")
def storefront() -> ResponseReturnValue:
    """Home: the For-you carousel above the best sellers."""
    shop = _demo_shop()
    products = popular_products(shop.id) if shop else []
    return _page("index.html", products=products)


@bp.get("/demo/product/<product_id>")
def product_page(product_id: str) -> ResponseReturnValue:
    """A product with the "bought together" placement below it."""
    shop = _demo_shop()
    product = find_product(shop.id, product_id) if shop else None
    if product is None:
        if shop is None:
            abort(404)
        page = _page("notfound.html")  # a shopper sees the shop, not a JSON error
        page.status_code = 404
        return page
    return _page("product.html", product=product)


@bp.get("/demo/cart")
def cart_page() -> ResponseReturnValue:
    """The client-side basket (``store.js``), the cart-offer slot and complements."""
    return _page("cart.html")


@bp.post("/demo/shopper")
def switch_shopper() -> ResponseReturnValue:
    """The shopper switcher: remember the chosen demo customer (or anonymous) in a cookie."""
    target = request.form.get("next", "/demo/")
    if not target.startswith("/demo/"):
        target = "/demo/"
    response = redirect(target, code=303)
    customer = request.form.get("customer", "")
    if customer:
        response.set_cookie(CUSTOMER_COOKIE, customer, httponly=True, samesite="Lax",
                            max_age=86400)
    else:
        response.delete_cookie(CUSTOMER_COOKIE)
    return response


@bp.get("/demo/api/shoppers")
def shoppers_json() -> ResponseReturnValue:
    """Demo only: a few real customers of the demo shop, for single-page switchers."""
    shop = _demo_shop()
    if shop is None:
        abort(404)
    return {"shoppers": demo_shoppers(shop.id)}


@bp.post("/demo/api/token")
def token_json() -> ResponseReturnValue:
    """Demo only: what a storefront backend does after login (mint a customer token)."""
    shop = _demo_shop()
    if shop is None:
        abort(404)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):  # a list or number has no "customer" (was a 500)
        raise BadRequest("The body must be a JSON object.")
    customer = str(body.get("customer", ""))
    if customer not in {s["id"] for s in demo_shoppers(shop.id)}:
        abort(404)
    return {"token": customer_token(shop, customer)}


# --- the demo shop's data, as the merchant's own backend would read it -------------------

PRODUCTS_ON_HOME = 24
SHOPPERS_IN_SWITCHER = 6
TOKEN_TTL_SECONDS = 3600


def _demo_shop() -> Shop | None:
    """``DEMO_SHOP_ID`` when set (tests), else the shop ``shopkeeper demo`` created."""
    shop_id = current_app.config.get("DEMO_SHOP_ID")
    if shop_id:
        return db.session.get(Shop, shop_id)
    return db.session.scalar(sa.select(Shop).filter_by(platform="generic", domain=DEMO_DOMAIN))


_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def _money(amount: Any, currency: str | None) -> str:
    if amount is None:
        return ""
    symbol = _SYMBOLS.get(currency or "")
    return f"{symbol}{amount:.2f}" if symbol else f"{amount:.2f} {currency or ''}".strip()


def _product_view(p: Product) -> dict[str, Any]:
    initials = "".join(w[0] for w in p.title.split()[:2] if w[:1].isalnum()).upper()
    return {"id": p.external_id, "title": p.title, "price": p.price, "currency": p.currency,
            "price_text": _money(p.price, p.currency),
            "category": (p.categories or [""])[0], "description": p.description,
            "initials": initials or "?", "tile": int(hashlib.md5(p.external_id.encode(),
                                                                  usedforsecurity=False)
                                                      .hexdigest(), 16) % 8}


def popular_products(shop_id: str, n: int = PRODUCTS_ON_HOME) -> list[dict[str, Any]]:
    """The most purchased products: a plausible home page for the sample shop."""
    count = sa.func.count().label("n")
    top = (sa.select(Interaction.product_external_id, count)
           .where(Interaction.shop_id == shop_id, Interaction.kind == "purchase")
           .group_by(Interaction.product_external_id).order_by(count.desc()).limit(n)).subquery()
    rows = db.session.scalars(
        sa.select(Product).join(top, Product.external_id == top.c.product_external_id)
        .where(Product.shop_id == shop_id, Product.deleted_at.is_(None))
        .order_by(top.c.n.desc(), Product.external_id))
    return [_product_view(p) for p in rows]


def find_product(shop_id: str, external_id: str) -> dict[str, Any] | None:
    """One live product of the shop, ready for the product template."""
    p = db.session.scalar(sa.select(Product).filter_by(shop_id=shop_id, external_id=external_id,
                                                       deleted_at=None))
    return _product_view(p) if p else None


def demo_shoppers(shop_id: str, n: int = SHOPPERS_IN_SWITCHER) -> list[dict[str, Any]]:
    """Real customers of the sample with the longest histories (most visible personalization)."""
    count = sa.func.count().label("n")
    rows = db.session.execute(
        sa.select(Order.customer_external_id, count)
        .where(Order.shop_id == shop_id, Order.customer_external_id.is_not(None))
        .group_by(Order.customer_external_id).order_by(count.desc(), Order.customer_external_id)
        .limit(n))
    shop = db.session.get(Shop, shop_id)
    out = []
    for cid, k in rows:
        # The control group gets no personalization by design; say so instead of looking broken.
        note = ", holdout group: not personalized" if shop and in_holdout(shop, cid) else ""
        out.append({"id": cid, "label": f"Customer {cid} ({k} orders{note})"})
    return out


def customer_token(shop: Shop, customer_id: str) -> str:
    """Mint the signed customer token exactly as the API docs tell storefront backends to."""
    from plugin.shops import ensure_customer_token_secret

    secret, created = ensure_customer_token_secret(shop)
    if created:  # a demo shop set up before the secret existed
        db.session.commit()
    try:
        from plugin.api.identity import mint_customer_token
    except ImportError:  # API package not there: same claims, same algorithm
        import time

        now = int(time.time())
        return jwt.encode({"sub": customer_id, "shop": shop.id, "iat": now,
                           "exp": now + TOKEN_TTL_SECONDS}, secret, algorithm="HS256")
    return mint_customer_token(shop.id, secret, customer_id, ttl_seconds=TOKEN_TTL_SECONDS)
