"""Shopify install and request authentication: OAuth code grant, session tokens, app proxy,
and the expiring offline access token's refresh and migration.

Every check raises ``SignatureInvalid`` (or ``InvalidPayload`` for a malformed shop
domain); none returns False.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import requests

from connectors.errors import AuthFailed, InvalidPayload, SignatureInvalid
from connectors.shopify.client import unavailable

__all__ = [
    "ACCESS_EXPIRES_AT",
    "QUERY_MAX_AGE_SECONDS",
    "REFRESH_MARGIN",
    "REFRESH_TOKEN",
    "REFRESH_TOKEN_EXPIRES_AT",
    "SHOP_DOMAIN",
    "authorize_url",
    "exchange_code",
    "expires_at",
    "migrate_to_expiring_token",
    "oauth_hmac",
    "refresh_access_token",
    "token_due",
    "validate_shop_domain",
    "verify_app_proxy",
    "verify_oauth_callback",
    "verify_session_token",
    "verify_signed_query",
]

#: ``\Z``, not ``$`` (which also matches before a final newline); checked with fullmatch
SHOP_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com\Z")


def validate_shop_domain(shop: str | None) -> str:
    """The shop domain, if it is a ``*.myshopify.com`` host (blocks open redirects/SSRF)."""
    if not shop or not SHOP_DOMAIN.fullmatch(shop):
        raise InvalidPayload("invalid shop domain", {"shop": ["must be <name>.myshopify.com"]})
    return shop


def authorize_url(
    shop: str, *, api_key: str, scopes: Iterable[str], redirect_uri: str, state: str
) -> str:
    """Where to send the merchant to approve our scopes (offline access token)."""
    query = urlencode(
        {
            "client_id": api_key,
            "scope": ",".join(scopes),
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    return f"https://{validate_shop_domain(shop)}/admin/oauth/authorize?{query}"


def _escape(value: str, *, key: bool) -> str:
    value = value.replace("%", "%25").replace("&", "%26")
    return value.replace("=", "%3D") if key else value


def oauth_hmac(params: Mapping[str, str], secret: str) -> str:
    """Hex HMAC-SHA256 over the sorted ``k=v`` pairs joined by ``&``, ``hmac`` removed."""
    message = "&".join(
        f"{_escape(k, key=True)}={_escape(v, key=False)}"
        for k, v in sorted(params.items())
        if k not in ("hmac", "signature")
    )
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


#: How far a signed query's ``timestamp`` may be from our clock, either way. The ``hmac``
#: never expires on its own, so without this a URL copied from a log, a proxy, a Referer or
#: the browser's history would verify forever. Shopify signs each query as it sends the
#: browser on (one redirect, one iframe load), so a genuine one arrives within seconds;
#: what else the window must absorb is our clock's drift, seconds on a server without NTP.
#: Shopify's own library allows 90 s; five minutes tolerates a clock a few minutes off (the
#: merchant would otherwise be locked out of the install and the admin) while a leaked URL
#: stops verifying minutes later, not a day later.
#: Reuse within the window is not refused, on purpose: a launch query only names the store
#: (it signs no one in; a session token does), and the iframe re-sends it on every reload
#: of the frame; the OAuth callback is single-use already, bound to the ``state`` nonce this
#: browser's session gives up at its first use and to Shopify's one-time ``code``.
QUERY_MAX_AGE_SECONDS = 5 * 60
_TIMESTAMP = re.compile(r"[0-9]{1,12}\Z")


def verify_signed_query(
    params: Mapping[str, str], secret: str, *, now: float | None = None
) -> str:
    """Check a Shopify-signed query (App URL launch, OAuth callback); return the shop domain.

    Shopify signs every request it sends a merchant's browser to: the install from the App
    Store, an admin opening the app, the OAuth redirect. A valid ``hmac`` on a query whose
    ``timestamp`` is missing or outside ``QUERY_MAX_AGE_SECONDS`` is refused too (replay).
    """
    shop = validate_shop_domain(params.get("shop"))
    offered = params.get("hmac") or ""
    if not hmac.compare_digest(offered.encode(), oauth_hmac(params, secret).encode()):
        raise SignatureInvalid("Shopify request hmac mismatch")
    _check_timestamp(params.get("timestamp") or "", now, what="Shopify request")
    return shop


def _check_timestamp(timestamp: str, now: float | None, *, what: str) -> None:
    """Refuse a signed ``timestamp`` that is missing or outside ``QUERY_MAX_AGE_SECONDS``."""
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureInvalid(f"{what} without a timestamp")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > QUERY_MAX_AGE_SECONDS:
        raise SignatureInvalid(f"{what} timestamp outside the accepted window")


def verify_oauth_callback(
    params: Mapping[str, str], secret: str, *, expected_state: str | None = None,
    now: float | None = None,
) -> str:
    """Check the callback's shop, ``hmac``, ``timestamp`` and ``state``; return the shop."""
    shop = verify_signed_query(params, secret, now=now)
    if expected_state is not None and not hmac.compare_digest(
        (params.get("state") or "").encode(), expected_state.encode()
    ):
        raise SignatureInvalid("OAuth state mismatch")
    return shop


#: ``Credentials.extra`` keys of an expiring offline token (times ISO 8601, UTC). A shop
#: without ``REFRESH_TOKEN`` holds a non-expiring token from before they existed.
ACCESS_EXPIRES_AT = "access_token_expires_at"
REFRESH_TOKEN = "refresh_token"
REFRESH_TOKEN_EXPIRES_AT = "refresh_token_expires_at"
#: Renew this long before the access token expires (Shopify: "a few minutes before").
REFRESH_MARGIN = timedelta(minutes=5)
#: The access token's documented lifetime, assumed when an answer leaves ``expires_in`` out
#: (a token stored without an expiry would pass for a non-expiring one).
DEFAULT_ACCESS_TTL = 3600
#: RFC 8693 token exchange as Shopify names its parts: a non-expiring offline token is
#: traded for an expiring one with itself as the subject.
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
OFFLINE_ACCESS_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"


def exchange_code(
    session: requests.Session, shop: str, *, api_key: str, api_secret: str, code: str,
    now: datetime | None = None,
) -> dict[str, str]:
    """POST the authorization code for an expiring offline access token (``expiring=1``):
    public apps must use those from 2027-01-01. Returns ``access_token``, ``scope`` and the
    refresh token and expiries under the ``Credentials.extra`` keys above."""
    return _token_request(session, shop, {
        "client_id": api_key, "client_secret": api_secret, "code": code, "expiring": "1",
    }, what="token exchange", now=now)


def refresh_access_token(
    session: requests.Session, shop: str, *, api_key: str, api_secret: str,
    refresh_token: str, now: datetime | None = None,
) -> dict[str, str]:
    """A new access token for the refresh token. Shopify answers with a new refresh token
    too and retires the one sent once the new one is used: store both together."""
    return _token_request(session, shop, {
        "client_id": api_key, "client_secret": api_secret,
        "grant_type": "refresh_token", "refresh_token": refresh_token,
    }, what="token refresh", now=now)


def migrate_to_expiring_token(
    session: requests.Session, shop: str, *, api_key: str, api_secret: str,
    access_token: str, now: datetime | None = None,
) -> dict[str, str]:
    """Trade a non-expiring offline token for an expiring one (token exchange, no merchant
    needed). One-way: the old token stops working, so store the answer at once."""
    return _token_request(session, shop, {
        "client_id": api_key, "client_secret": api_secret, "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": access_token, "subject_token_type": OFFLINE_ACCESS_TOKEN,
        "requested_token_type": OFFLINE_ACCESS_TOKEN, "expiring": "1",
    }, what="token migration", now=now)


def _token_request(session: requests.Session, shop: str, body: dict[str, str], *, what: str,
                   now: datetime | None) -> dict[str, str]:
    """POST to the shop's token endpoint; a refusal (4xx) is ``AuthFailed``, except a
    frozen or locked store's 402/423 (``ShopUnavailable``: the grant is not at fault)."""
    response = session.post(
        f"https://{validate_shop_domain(shop)}/admin/oauth/access_token", json=body)
    held_back = unavailable(response.status_code, what)
    if held_back is not None:
        raise held_back
    if response.status_code >= 400:
        raise AuthFailed(f"{what} refused (HTTP {response.status_code})",
                         status=response.status_code)
    try:
        answer = response.json()
        token = answer["access_token"]
    except (ValueError, KeyError, TypeError):
        raise AuthFailed(f"{what} answered without an access_token") from None
    tokens = {"access_token": str(token), "scope": str(answer.get("scope") or "")}
    if answer.get("refresh_token"):  # else a non-expiring token (``expiring`` ignored)
        now = now or datetime.now(UTC)
        tokens[REFRESH_TOKEN] = str(answer["refresh_token"])
        tokens[ACCESS_EXPIRES_AT] = _after(now, answer.get("expires_in"), DEFAULT_ACCESS_TTL)
        if answer.get("refresh_token_expires_in"):
            tokens[REFRESH_TOKEN_EXPIRES_AT] = _after(
                now, answer["refresh_token_expires_in"], 0)
    return tokens


def _after(now: datetime, seconds: object, default: int) -> str:
    try:
        delta = int(seconds)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        delta = default
    return (now + timedelta(seconds=delta)).isoformat()


def expires_at(extra: Mapping[str, str], key: str) -> datetime | None:
    """A stored expiry (``ACCESS_EXPIRES_AT``, ``REFRESH_TOKEN_EXPIRES_AT``), or None."""
    try:
        when = datetime.fromisoformat(extra.get(key) or "")
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def token_due(extra: Mapping[str, str], *, now: datetime | None = None) -> bool:
    """Whether an expiring access token is within ``REFRESH_MARGIN`` of its expiry (False
    for a non-expiring token: that one is migrated, not refreshed)."""
    if not extra.get(REFRESH_TOKEN):
        return False
    expiry = expires_at(extra, ACCESS_EXPIRES_AT)
    return expiry is None or expiry - REFRESH_MARGIN <= (now or datetime.now(UTC))


def verify_session_token(token: str, api_key: str, api_secret: str) -> dict[str, Any]:
    """Validate an App Bridge session token (HS256, aud = api key, 10 s leeway); return claims."""
    try:
        claims = jwt.decode(
            token,
            api_secret,
            algorithms=["HS256"],
            audience=api_key,
            leeway=10,
            options={"require": ["exp", "nbf", "iss", "dest", "aud", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise SignatureInvalid(f"session token rejected: {type(exc).__name__}") from None
    dest_host = urlsplit(str(claims["dest"])).hostname or ""
    iss_host = urlsplit(str(claims["iss"])).hostname or ""
    if not SHOP_DOMAIN.fullmatch(dest_host) or iss_host != dest_host:
        raise SignatureInvalid("session token iss/dest do not name the same shop")
    return claims


def verify_app_proxy(
    query_string: str, secret: str, *, now: float | None = None
) -> dict[str, str]:
    """Check an app-proxy request's ``signature``; return the (comma-joined) parameters.

    Canonical form: params except ``signature``, multi-values joined by ``,``, sorted,
    ``k=v`` concatenated with no separator, hex HMAC-SHA256 with the app secret. Shopify
    signs a ``timestamp`` into every proxied request; one outside ``QUERY_MAX_AGE_SECONDS``
    is refused as a signed query's is, or a captured storefront URL (it names the
    ``logged_in_customer_id``) would verify forever.
    """
    grouped: dict[str, list[str]] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        grouped.setdefault(key, []).append(value)
    offered = (grouped.pop("signature", None) or [""])[0]
    joined = {k: ",".join(v) for k, v in grouped.items()}
    message = "".join(f"{k}={v}" for k, v in sorted(joined.items()))
    expected = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    if not offered or not hmac.compare_digest(offered.encode(), expected.encode()):
        raise SignatureInvalid("app proxy signature mismatch")
    _check_timestamp(joined.get("timestamp", ""), now, what="app proxy request")
    return joined
