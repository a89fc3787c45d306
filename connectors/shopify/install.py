"""Shopify install and request authentication: OAuth code grant, session tokens, app proxy.

Every check raises ``SignatureInvalid`` (or ``InvalidPayload`` for a malformed shop
domain); none returns False.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import requests

from connectors.errors import AuthFailed, InvalidPayload, SignatureInvalid

__all__ = [
    "SHOP_DOMAIN",
    "authorize_url",
    "exchange_code",
    "oauth_hmac",
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


def verify_signed_query(params: Mapping[str, str], secret: str) -> str:
    """Check a Shopify-signed query (App URL launch, OAuth callback); return the shop domain.

    Shopify signs every request it sends a merchant's browser to: the install from the App
    Store, an admin opening the app, the OAuth redirect.
    """
    shop = validate_shop_domain(params.get("shop"))
    offered = params.get("hmac") or ""
    if not hmac.compare_digest(offered.encode(), oauth_hmac(params, secret).encode()):
        raise SignatureInvalid("Shopify request hmac mismatch")
    return shop


def verify_oauth_callback(
    params: Mapping[str, str], secret: str, *, expected_state: str | None = None
) -> str:
    """Check the callback's shop, ``hmac`` and ``state``; return the shop domain."""
    shop = verify_signed_query(params, secret)
    if expected_state is not None and not hmac.compare_digest(
        (params.get("state") or "").encode(), expected_state.encode()
    ):
        raise SignatureInvalid("OAuth state mismatch")
    return shop


def exchange_code(
    session: requests.Session, shop: str, *, api_key: str, api_secret: str, code: str
) -> dict[str, str]:
    """POST the authorization code for a permanent (offline) access token."""
    response = session.post(
        f"https://{validate_shop_domain(shop)}/admin/oauth/access_token",
        json={"client_id": api_key, "client_secret": api_secret, "code": code},
    )
    if response.status_code >= 400:
        raise AuthFailed(f"token exchange refused (HTTP {response.status_code})")
    try:
        body = response.json()
        token = body["access_token"]
    except (ValueError, KeyError, TypeError):
        raise AuthFailed("token exchange answered without an access_token") from None
    return {"access_token": token, "scope": body.get("scope", "")}


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


def verify_app_proxy(query_string: str, secret: str) -> dict[str, str]:
    """Check an app-proxy request's ``signature``; return the (comma-joined) parameters.

    Canonical form: params except ``signature``, multi-values joined by ``,``, sorted,
    ``k=v`` concatenated with no separator, hex HMAC-SHA256 with the app secret.
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
    return joined
