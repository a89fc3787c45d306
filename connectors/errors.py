"""One error tree for every connector, so the plugin maps failures without knowing platforms.

The plugin translates at the boundary: ``SignatureInvalid`` -> 401, ``InvalidPayload`` and
``UnknownTopic`` -> 400, ``AuthFailed`` -> flag the shop for re-auth (``PermissionDenied``
creating a discount, once the platform confirms the missing permission: hold offers back),
``ShopUnavailable`` -> the platform holds the shop itself back (Shopify: frozen or locked):
keep the credentials, pause its syncs and offers for a long while, no re-auth,
``RateLimited`` -> retry after ``retry_after`` seconds, ``TransientError`` -> retry later
with back-off.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthFailed",
    "ConnectorError",
    "InvalidPayload",
    "NotSupported",
    "PermissionDenied",
    "RateLimited",
    "ShopUnavailable",
    "SignatureInvalid",
    "TransientError",
    "UnknownConnector",
    "UnknownTopic",
]


class ConnectorError(Exception):
    """Base of every error a connector raises; platform/library errors are wrapped in these."""


class SignatureInvalid(ConnectorError):
    """A webhook's signature, timestamp or signing key did not check out (answer 401)."""


class InvalidPayload(ConnectorError):
    """A webhook or API body failed validation; ``errors`` maps field -> messages (answer 400)."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors: dict[str, list[str]] = errors or {}


class UnknownTopic(ConnectorError):
    """The delivery names a topic this connector does not handle (answer 400)."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"unknown topic: {topic!r}")
        self.topic = topic


class AuthFailed(ConnectorError):
    """The platform refused our credentials (401/403): the shop must re-authorize.

    ``status`` is the HTTP status when there was one: a 401 to an expiring access token
    may only mean it expired (renew it and ask again), a 403 never does. ``response`` is
    the answer when the retrying session raised this for its status alone: a platform
    that refuses in the body instead (Vendure) reads it to tell a proxy's 401/403 from
    its own refusal.
    """

    def __init__(self, message: str = "", *, status: int | None = None,
                 response: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.response = response


class PermissionDenied(AuthFailed):
    """The platform refused this call for a permission (scope) it says the credentials lack.

    Vendure and Saleor answer an expired or unknown token the same way, so this alone does
    not tell a missing permission from dead credentials: ``Connector.missing_discount_permissions``
    asks. ``permission`` is what the platform named as needed, when it named one.
    """

    def __init__(self, message: str = "", *, status: int | None = None,
                 permission: str | None = None) -> None:
        super().__init__(message, status=status)
        self.permission = permission


class RateLimited(ConnectorError):
    """The platform kept throttling us after our retries; try again in ``retry_after`` s."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(f"{message} (retry after {retry_after:g}s)")
        self.retry_after = float(retry_after)


class ShopUnavailable(ConnectorError):
    """The platform holds the shop itself back for now: Shopify answers 402 for a store
    frozen over an unpaid bill and 423 for one it locked. The credentials are fine, so
    authorizing again changes nothing; the shop comes back on its own once paid or
    unlocked, so callers stop asking for a long while (not seconds) and then ask again.
    ``status`` is the HTTP status, ``reason`` a word for it ("frozen", "locked").
    """

    def __init__(self, message: str = "", *, status: int | None = None,
                 reason: str = "unavailable") -> None:
        super().__init__(message or f"the shop is {reason} (HTTP {status})")
        self.status = status
        self.reason = reason


class TransientError(ConnectorError):
    """5xx, timeouts or connection failures that outlived our retries; safe to retry later."""


class NotSupported(ConnectorError):
    """The connector (platform) has no such capability, e.g. backfill for the generic one."""


class UnknownConnector(KeyError):
    """The registry has no connector under that key."""
