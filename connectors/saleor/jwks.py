"""Saleor webhook signatures: RS256 detached JWS checked against the instance's JWKS.

Keys are cached per JWKS URL (one Saleor instance). An unknown ``kid`` or a signature that
fails against a cached key triggers one refetch (rate-limited), which handles rotation
whether or not Saleor changes the ``kid``. Fetches never follow redirects; callers pass a
bounded session (``connectors.guarded_http``): these fetches run inside web requests.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests

from connectors.errors import ConnectorError, SignatureInvalid, TransientError

log = logging.getLogger(__name__)

__all__ = ["JWKSCache", "MissingPermissions", "jwks_url", "verify_dashboard_token",
           "verify_detached_jws"]


class MissingPermissions(SignatureInvalid):
    """A genuine Dashboard user without the permissions asked for: who they are is known,
    so the answer can say what they lack instead of "not signed in"."""

    def __init__(self, missing: set[str]) -> None:
        self.missing = tuple(sorted(missing))
        super().__init__(f"user lacks permissions: {list(self.missing)}")

REFRESH_COOLDOWN = 10.0  # seconds between forced refetches, so forged kids can't hammer Saleor
MAX_AGE = 3600.0  # a cached JWKS older than this is refetched before use
STALE_IF_ERROR = 86400.0  # ...but used while refetches fail, up to this age


def jwks_url(api_url: str) -> str:
    """``https://host/graphql/`` -> ``https://host/.well-known/jwks.json``."""
    parts = urlsplit(api_url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise SignatureInvalid("shop has no valid Saleor API URL")
    return f"{parts.scheme}://{parts.netloc}/.well-known/jwks.json"


@dataclass
class _Entry:
    keys: dict[str, Any]
    fetched_at: float
    failed_at: float | None = None  # last failed refetch while stale: not retried at once


class JWKSCache:
    """Per-instance public keys, shared by all connector instances in the process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _fetch(self, session: requests.Session, url: str) -> _Entry:
        try:
            # A redirect is not a key set (and could point anywhere): it fails the fetch.
            response = session.get(url, allow_redirects=False)
        except TransientError:
            raise
        except (requests.RequestException, ConnectorError) as exc:
            # the retrying session raises AuthFailed on 401/403 and RateLimited on 429: for
            # a public key set (a WAF or rate limit in front of Saleor) either means "cannot
            # verify now", which callers answer with 503, not an unhandled 500
            raise TransientError(f"JWKS fetch failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise TransientError(f"JWKS fetch failed: HTTP {response.status_code}")
        try:
            keyset = jwt.PyJWKSet.from_dict(response.json())
        except (ValueError, jwt.PyJWKError, jwt.PyJWKSetError, TypeError, AttributeError):
            raise TransientError("JWKS document is not a usable key set") from None
        keys = {k.key_id or "": k for k in keyset.keys}
        entry = _Entry(keys=keys, fetched_at=self._clock())
        with self._lock:
            self._entries[url] = entry
        return entry

    def get(self, session: requests.Session, url: str) -> _Entry:
        """The instance's keys, fetched again after ``MAX_AGE``. When that refetch fails
        the keys held are used for up to ``STALE_IF_ERROR``: an outage of the key set
        longer than Saleor's few minutes of retries would otherwise lose every delivery,
        and keys that verified an hour ago are no less the instance's now."""
        with self._lock:
            entry = self._entries.get(url)
        if entry is None:
            return self._fetch(session, url)
        now = self._clock()
        age = now - entry.fetched_at
        if age <= MAX_AGE:
            return entry
        if age <= STALE_IF_ERROR and entry.failed_at is not None \
                and now - entry.failed_at < REFRESH_COOLDOWN:
            return entry  # the key set just failed: no fetch per delivery meanwhile
        try:
            return self._fetch(session, url)
        except TransientError:
            if age > STALE_IF_ERROR:
                raise
            entry.failed_at = now
            log.warning("saleor.jwks_stale_keys_used", extra={"url": url,
                                                              "age_seconds": round(age)})
        return entry

    def refresh(self, session: requests.Session, url: str, entry: _Entry) -> _Entry | None:
        """Refetch unless we just did; None means 'no newer keys to try'."""
        if self._clock() - entry.fetched_at < REFRESH_COOLDOWN:
            return None
        return self._fetch(session, url)


DEFAULT_CACHE = JWKSCache()


def _header(signature: str) -> dict[str, Any]:
    parts = signature.split(".")
    if len(parts) != 3 or parts[1] != "":
        raise SignatureInvalid("Saleor-Signature is not a detached compact JWS")
    try:
        header = jwt.get_unverified_header(signature)
    except (jwt.PyJWTError, ValueError, json.JSONDecodeError):
        raise SignatureInvalid("Saleor-Signature header is malformed") from None
    if header.get("alg") != "RS256":
        raise SignatureInvalid("Saleor-Signature must use RS256")
    return header


def _check(signature: str, key: Any, raw_body: bytes) -> bool:
    try:
        jwt.api_jws.decode_complete(
            signature, key.key, algorithms=["RS256"], detached_payload=raw_body
        )
    except jwt.InvalidSignatureError:
        return False
    except (jwt.PyJWTError, ValueError, TypeError):
        raise SignatureInvalid("Saleor-Signature could not be verified") from None
    return True


def _with_keys(
    kid: str, *, api_url: str, session: requests.Session, cache: JWKSCache,
    check: Callable[[Any], Any],
) -> Any:
    """Try the instance key ``kid``; refetch the JWKS once (rate-limited) on a miss."""
    url = jwks_url(api_url)
    entry = cache.get(session, url)
    for _ in range(2):
        key = entry.keys.get(kid)
        if key is not None:
            result = check(key)
            if result is not None:
                return result
        newer = cache.refresh(session, url, entry)
        if newer is None:
            break
        entry = newer
    raise SignatureInvalid("signature does not match the Saleor instance's keys")


def verify_detached_jws(
    signature: str | None,
    raw_body: bytes,
    *,
    api_url: str,
    session: requests.Session,
    cache: JWKSCache = DEFAULT_CACHE,
) -> None:
    """Raise ``SignatureInvalid`` unless ``signature`` signs ``raw_body`` with a JWKS key."""
    if not signature:
        raise SignatureInvalid("missing Saleor-Signature")
    signature = signature.strip()
    header = _header(signature)
    _with_keys(
        str(header.get("kid", "")), api_url=api_url, session=session, cache=cache,
        check=lambda key: True if _check(signature, key, raw_body) else None,
    )


def verify_dashboard_token(
    token: str | None,
    *,
    api_url: str,
    app_id: str,
    session: requests.Session,
    required_permissions: tuple[str, ...] = (),
    cache: JWKSCache = DEFAULT_CACHE,
) -> dict[str, Any]:
    """Check the App Bridge user token of the Dashboard iframe; return its claims.

    As Saleor's app-sdk does: RS256 against the instance JWKS, not expired, issued for our
    app (``app`` claim), and the user holds ``required_permissions``.
    """
    if not token or token.count(".") != 2:
        raise SignatureInvalid("missing or malformed dashboard token")
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError):
        raise SignatureInvalid("dashboard token header is malformed") from None
    if header.get("alg") != "RS256":
        raise SignatureInvalid("dashboard token must use RS256")

    def decode(key: Any) -> dict[str, Any] | None:
        try:
            return jwt.decode(token, key.key, algorithms=["RS256"],
                              options={"require": ["exp"], "verify_aud": False})
        except jwt.InvalidSignatureError:
            return None
        except jwt.PyJWTError as exc:
            raise SignatureInvalid(f"dashboard token rejected: {type(exc).__name__}") from None

    claims = _with_keys(str(header.get("kid", "")), api_url=api_url, session=session,
                        cache=cache, check=decode)
    if not app_id or claims.get("app") != app_id:
        raise SignatureInvalid("dashboard token was issued for another app")
    missing = set(required_permissions) - set(claims.get("user_permissions") or ())
    if missing:
        raise MissingPermissions(missing)
    return claims
