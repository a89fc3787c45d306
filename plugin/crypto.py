"""Secrets at rest and keyed hashes, so a database dump leaks neither tokens nor emails."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import asdict

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app

from connectors.base import Credentials


def _fernet() -> Fernet:
    key = current_app.config.get("CREDENTIALS_KEY") or ""
    if not key:
        # Demo/dev fallback: a key derived from SECRET_KEY (documented in README).
        digest = hashlib.sha256(("shopkeeper-credentials:" + current_app.config["SECRET_KEY"])
                                .encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key)


def encrypt_credentials(credentials: Credentials) -> bytes:
    """Serialise and encrypt platform credentials for the ``installations`` table."""
    return _fernet().encrypt(json.dumps(asdict(credentials), sort_keys=True).encode())


def decrypt_credentials(token: bytes) -> Credentials:
    """Inverse of ``encrypt_credentials``; a wrong key raises ``InvalidToken``."""
    data = json.loads(_fernet().decrypt(token))
    return Credentials(**data)


def seal(text: str) -> str:
    """``text`` encrypted (and timestamped) under the credentials key, for a client-side
    cookie: Flask's session is signed, not encrypted, so anything put there is readable."""
    return _fernet().encrypt(text.encode()).decode()


def unseal(token: str, *, ttl: int) -> str | None:
    """Inverse of ``seal``; None when it is not ours or older than ``ttl`` seconds."""
    try:
        return _fernet().decrypt(token.encode(), ttl=ttl).decode()
    except (InvalidToken, ValueError):
        return None


def email_hash(shop_id: str, email: str | None) -> str | None:
    """Keyed, shop-scoped hash of a normalised email: findable for privacy requests only."""
    if not email:
        return None
    key = (current_app.config["SECRET_KEY"] + ":" + shop_id).encode()
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def new_token(prefix: str, nbytes: int = 24) -> str:
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


__all__ = ["InvalidToken", "decrypt_credentials", "email_hash", "encrypt_credentials", "new_token"]
