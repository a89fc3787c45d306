"""Who is this admin? Each platform's own way, ending in a session bound to one shop.

- Shopify: the App Bridge session token (HS256 JWT, app secret), on the ``id_token`` query
  parameter of the embedded load or as ``Authorization: Bearer``.
- Saleor: the Dashboard's App Bridge user token (RS256 against the instance JWKS), posted
  by the page's bootstrap script with ``saleor-api-url``.
- Generic and Vendure: a signed, expiring, single-use admin link (``shopkeeper shops
  admin-link``), or the shop id plus its admin secret (the webhook secret) on the login form.

Every sign-in opens a server-side session (``plugin.admin.sessions``) that sign-out ends.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

import sqlalchemy as sa
from flask import current_app, request, session

from connectors.errors import SignatureInvalid, TransientError
from connectors.saleor.jwks import MissingPermissions
from plugin import shops
from plugin.admin import sessions
from plugin.admin.schemas import safe_origin
from plugin.errors import Forbidden, NotFound, ServiceUnavailable, Unauthorized
from plugin.extensions import db
from plugin.models import Shop

SESSION_KEY = "admin_shop"
#: Which credentials the session was opened under (a keyed digest, never the secret).
CREDENTIALS_KEY = "admin_credentials"
#: The random handle naming this session's server-side row (``plugin.admin.sessions``).
HANDLE_KEY = "admin_sid"
LINK_TTL_SECONDS = 15 * 60
#: what a sign-in link's nonce looks like (``secrets.token_urlsafe(16)``)
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def current_shop() -> Shop:
    """The shop of this admin session; 401 without one (ids never come from the request)."""
    shop_id = session.get(SESSION_KEY)
    if not shop_id:
        raise Unauthorized("Sign in from your store's admin.")
    shop = db.session.get(Shop, shop_id)
    if shop is None or shop.status != "active":
        session.clear()
        raise Unauthorized("This shop is no longer installed.")
    if not hmac.compare_digest(session.get(CREDENTIALS_KEY) or "", credentials_digest(shop)):
        # the admin secret was rotated since (e.g. after a leak): sign in again
        end_session()
        raise Unauthorized("Your shop's admin secret changed; sign in again.")
    if not sessions.is_live(session.get(HANDLE_KEY), shop.id):
        # signed out (this or a copy of this cookie), or idle too long
        session.clear()
        raise Unauthorized("Your admin session has ended; sign in again.")
    return shop


def session_shop() -> Shop | None:
    """The shop this browser's session names, live or not (for showing, never for access)."""
    shop_id = session.get(SESSION_KEY)
    return db.session.get(Shop, shop_id) if shop_id else None


def credentials_digest(shop: Shop) -> str:
    """A keyed digest of the shop's admin secret: a session opened under an older secret
    stops working when the secret is rotated."""
    try:
        secret = shops.auth_secret(shop) or ""
    except NotFound:
        secret = ""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"admin-session:{shop.id}:{secret}".encode(),
                    hashlib.sha256).hexdigest()


def rebind_session(shop: Shop) -> None:
    """Keep the current session (the admin who rotated the secret) under the new secret."""
    if session.get(SESSION_KEY) == shop.id:
        session[CREDENTIALS_KEY] = credentials_digest(shop)


def start_session(shop: Shop, via: str) -> None:
    """Bind the session to exactly one shop (a new login replaces any previous one, and
    ends it server-side)."""
    sessions.close_session(session.get(HANDLE_KEY))
    session.clear()
    session[HANDLE_KEY] = sessions.open_session(shop.id, via)
    session[SESSION_KEY] = shop.id
    session[CREDENTIALS_KEY] = credentials_digest(shop)
    session["admin_via"] = via
    session.permanent = True
    shops.audit(shop.id, "admin.login", via=via)
    db.session.commit()


def end_session() -> None:
    """Sign out: the session ends on the server (a copied cookie stops working too)."""
    sessions.close_session(session.get(HANDLE_KEY))
    db.session.commit()
    session.clear()


# ---------------------------------------------------------------- signed admin links
def _link_sig(secret: str, shop_id: str, exp: int, nonce: str) -> str:
    return hmac.new(secret.encode(), f"admin:{shop_id}:{exp}:{nonce}".encode(),
                    hashlib.sha256).hexdigest()


def admin_link(shop: Shop, *, ttl: int = LINK_TTL_SECONDS, now: float | None = None) -> str:
    """A one-click, single-use sign-in URL for stores without a platform admin to embed
    in. The random nonce makes every link distinct and is what a use records."""
    exp = int((now or time.time()) + ttl)
    nonce = secrets.token_urlsafe(16)
    secret = shops.auth_secret(shop) or ""
    query = urlencode({"shop": shop.id, "exp": exp, "nonce": nonce,
                       "sig": _link_sig(secret, shop.id, exp, nonce)})
    return f"{current_app.config['PUBLIC_URL'].rstrip('/')}/admin/login?{query}"


def login_with_link(shop_id: str, exp: str, sig: str, nonce: str) -> Shop:
    """Follow a sign-in link: claim its single use and open the shop's session."""
    shop, expires = check_link(shop_id, exp, sig, nonce)
    if not sessions.claim_link(nonce, shop.id, datetime.fromtimestamp(expires, UTC)):
        db.session.rollback()
        raise Unauthorized(_LINK_USED)
    start_session(shop, "link")  # commits the link's use with the new session
    return shop


_LINK_USED = ("This sign-in link was already used; sign-in links work once. "
              "Ask for a new one (shopkeeper shops admin-link).")


def check_link(shop_id: str, exp: str, sig: str, nonce: str) -> tuple[Shop, int]:
    """The shop of a genuine, unexpired, unused sign-in link and its expiry; uses nothing
    (the confirmation page shows a link it may not spend)."""
    shop = _active_shop(shop_id)
    try:
        expires = int(exp)
    except ValueError:
        raise Unauthorized("Malformed sign-in link.") from None
    if not _NONCE.fullmatch(nonce or ""):
        raise Unauthorized("Malformed sign-in link (links made before sign-in links became "
                           "single-use no longer work): ask for a new one.")
    if expires < time.time():
        raise Unauthorized("This sign-in link has expired.")
    secret = shops.auth_secret(shop) or ""
    if not secret or not hmac.compare_digest(_link_sig(secret, shop.id, expires, nonce),
                                             sig or ""):
        raise Unauthorized("Invalid sign-in link.")
    if sessions.link_used(nonce):
        raise Unauthorized(_LINK_USED)
    return shop, expires


# ---------------------------------------------------------------- sign-in by GET
# A sign-in that a GET performs (a Shopify session token in the query, a sign-in link) can
# be aimed at a victim's browser by anyone holding a token or link of their own: a link in
# a mail, or a page that sends the browser there unseen (a redirect, ``location = …``). The
# victim is then signed in to the attacker's shop and may type their data into it (login
# CSRF). Browsers say who started a request in ``Sec-Fetch-Site`` / ``Sec-Fetch-Dest``,
# which pages cannot set; a request without them (a browser before 2023, a script) passes
# that check. A mail app opening a link, like the address bar, sends ``none``: that says
# nothing about whose link it is, so ``link_needs_confirmation`` asks then too.
#: ``Sec-Fetch-Site`` of a request another site made the browser send
_OTHER_SITE = frozenset({"cross-site", "same-site"})
#: ``Sec-Fetch-Dest`` of a framed page: its cookie lives in the framing site's partition
#: (the session cookie is ``Partitioned``), not in the browser's own session for this app
_FRAMES = frozenset({"iframe", "frame"})


def started_by_another_site() -> bool:
    """Whether another site made the browser send this request (a link, a redirect, a
    form, a script); False when the browser sends no ``Sec-Fetch-Site``."""
    return request.headers.get("Sec-Fetch-Site", "").strip().lower() in _OTHER_SITE


def query_token_may_sign_in() -> bool:
    """Whether a Shopify session token in the query may sign this browser in.

    Shopify's admin loads the app in its iframe with the token (cross-site, framed), and
    the app's own page reloads itself with one (same-origin; in Shopify Mobile's web view a
    load no page started, ``none``). A top-level navigation, or a hidden request, that
    another site started is none of these: it is an attempt to switch a victim's session.
    """
    framed = request.headers.get("Sec-Fetch-Dest", "").strip().lower() in _FRAMES
    return framed or not started_by_another_site()


def link_needs_confirmation(shop: Shop) -> bool:
    """Whether a sign-in link must be confirmed by a click (a CSRF-protected POST) on a
    page naming its shop before it signs in.

    A link signs in at once only where it cannot switch whose admin this browser shows:
    it renews this browser's session of the same shop. Anything else asks: another site
    sent the browser here, it would replace another shop's session, or nothing says whose
    link it is. A link opened from a mail app or pasted in the address bar
    (``Sec-Fetch-Site: none``, or no header at all) may be one someone mailed to a victim,
    who would otherwise land in the sender's shop unawares. ``same-origin`` is no
    exception: no page of this app links to a sign-in link, so only something injected
    into one (a stored link or script) would send it.
    """
    if started_by_another_site():
        return True
    return session.get(SESSION_KEY) != shop.id


def login_with_secret(shop_id: str, secret: str) -> Shop:
    shop = _active_shop(shop_id)
    expected = shops.auth_secret(shop) or ""
    if not expected or not hmac.compare_digest(expected.encode(), (secret or "").encode()):
        raise Unauthorized("Wrong shop id or admin secret.")
    start_session(shop, "secret")
    return shop


# ---------------------------------------------------------------- Saleor
def login_with_saleor_token(api_url: str, token: str) -> Shop:
    """The keys come from the *stored* API URL's JWKS (bounded fetch), never the request's."""
    shop = db.session.scalar(sa.select(Shop).filter_by(platform="saleor", domain=_host(api_url)))
    if shop is None or shop.status != "active":
        raise Unauthorized("This Saleor instance has not installed Shopkeeper.")
    creds = shops.credentials_for(shop)
    if not creds.api_url or not creds.extra.get("app_id"):
        raise Unauthorized("This Saleor instance has not finished installing Shopkeeper.")
    connector = shops.connector_for(shop)
    try:
        connector.verify_dashboard_token(token, required_permissions=("MANAGE_APPS",))
    except MissingPermissions:
        # its settings spend money (offer budgets) and reach customer data (export, erase)
        raise Forbidden("Shopkeeper's settings need the Saleor permission \"Manage apps\" "
                        "(they set offer budgets and export or erase customer data). Ask a "
                        "staff member who has it, or an owner to grant it to you.") from None
    except SignatureInvalid as err:
        raise Unauthorized(str(err)) from None
    except TransientError:
        raise ServiceUnavailable("Cannot reach this Saleor instance's keys; retry later.") from None
    start_session(shop, "saleor")
    return shop


# ---------------------------------------------------------------- framing
def frame_ancestors(shop: Shop | None) -> str:
    """Only the shop's own admin may frame these pages."""
    if shop is None:
        return "'none'"
    origins = ["'self'"]
    if shop.platform == "shopify":
        origins.append(shopify_frame_ancestors(shop.domain))
    admin_origin = safe_origin((shop.settings or {}).get("admin_origin"))
    if admin_origin:
        origins.append(admin_origin)
    elif shop.platform == "saleor":  # a Dashboard can be hosted anywhere; its session
        origins.append("https:")  # cookie is partitioned by the framing site anyway
    return " ".join(origins)


def saleor_frame_ancestors(args: Mapping[str, str]) -> str | None:
    """Who may frame the sign-in page the Saleor Dashboard opens before its handshake.

    The Dashboard loads the app's page with ``saleorApiUrl`` (older: ``domain``) and only
    then posts its token: the page must render inside it, signed in or not. Allowed for an
    installed Saleor only: its configured admin origin, else any https origin (a Dashboard
    can be hosted anywhere). None: not a Saleor Dashboard load.
    """
    domain = args.get("domain") or ""
    host = _host(args.get("saleorApiUrl") or (f"https://{domain}/" if domain else ""))
    if not host:
        return None
    shop = db.session.scalar(sa.select(Shop).filter_by(platform="saleor", domain=host))
    if shop is None or shop.status != "active":
        return None
    origin = safe_origin((shop.settings or {}).get("admin_origin"))
    return f"'self' {origin}" if origin else "'self' https:"


def shopify_frame_ancestors(domain: str) -> str:
    """A Shopify store's admin: the new unified one and the store's own domain."""
    return f"https://{domain} https://admin.shopify.com"


def _active_shop(shop_id: str) -> Shop:
    shop = db.session.get(Shop, shop_id or "")
    if shop is None or shop.status != "active":
        raise Unauthorized("Wrong shop id or admin secret.")
    return shop


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def require_same_origin_post() -> None:
    """Defence in depth beside the CSRF token: a cross-site POST carries a foreign Origin."""
    origin = request.headers.get("Origin")
    if origin and origin != request.host_url.rstrip("/"):
        allowed = (session.get("admin_origin") or "")
        if origin != allowed:
            raise Forbidden("Cross-site form submission refused.")
