"""The connector base class: class metadata describes a platform, an instance is one shop.

Subclasses live in ``connectors/<key>/`` and register with ``connectors.register``. They
raise only ``connectors.errors`` exceptions and return only ``connectors.records`` objects.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

import requests

from connectors.errors import NotSupported
from connectors.records import (
    Customer,
    DiscountRef,
    DiscountSpec,
    Order,
    Page,
    Product,
    WebhookEvent,
)

__all__ = ["CAPABILITIES", "Connector", "ConnectorMeta", "Credentials", "header"]

CAPABILITIES: frozenset[str] = frozenset({"webhooks", "backfill", "discounts", "install"})


@dataclass(frozen=True, slots=True)
class ConnectorMeta:
    """What a platform is: key, display name, native webhook topics, scopes, capabilities."""

    key: str
    name: str
    webhook_topics: tuple[str, ...]
    scopes: tuple[str, ...]
    capabilities: frozenset[str]

    def __post_init__(self) -> None:
        unknown = self.capabilities - CAPABILITIES
        if unknown:
            raise ValueError(f"unknown capabilities: {sorted(unknown)}")
        if not self.key or self.key != self.key.lower():
            raise ValueError("connector key must be a non-empty lowercase string")


@dataclass(slots=True)
class Credentials:
    """One shop's secrets; the plugin stores these encrypted and never logs them."""

    shop_domain: str
    access_token: str | None = None
    webhook_secret: str | None = None
    api_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Secrets must not leak through reprs in tracebacks or logs.
        return f"Credentials(shop_domain={self.shop_domain!r}, api_url={self.api_url!r})"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup for plain dicts and Werkzeug ``Headers`` alike."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


class Connector(abc.ABC):
    """One platform; an instance is one installed shop."""

    meta: ClassVar[ConnectorMeta]
    #: Whether a ``free_shipping`` discount with a positive ``value`` saves at most that
    #: much on the platform. Offers charge the merchant's budget with the shipping cost
    #: they were quoted for, so a platform that can only waive the whole shipping price,
    #: whatever it is, sets this False and is never asked for free shipping.
    caps_free_shipping: ClassVar[bool] = True
    #: Whether a discount's amounts (a ``fixed`` value, a ``min_subtotal``) are taken in the
    #: offer's currency whatever else the shop sells. A platform that keeps them as bare
    #: numbers applied in the order's currency sets this False: an amount is then only
    #: exact in a shop selling one currency, which offers read from ``sold_currencies``,
    #: or where the platform limits the discount to its currency (``pins_order_currency``).
    amounts_keep_currency: ClassVar[bool] = True
    #: Whether a ``fixed`` value and a ``min_subtotal`` are taken in the shop's own currency
    #: and converted into the order's currency at checkout, at the rate the platform also
    #: prices that currency with (Shopify Markets: "fixed-amount discounts are set in the
    #: currency of your store ... converted to the customer's currency"). A cart in another
    #: currency can then be offered an amount in the shop's currency, sized on the
    #: catalogue's prices, without an exchange rate of our own (``plugin.offers.pricing``).
    converts_amounts: ClassVar[bool] = False
    #: Whether a permission the credentials lack is granted by authorising the app again
    #: (Shopify's OAuth re-grants its scopes): a refusal then flags the installation for
    #: re-authorisation. Elsewhere the merchant grants it on the platform, the credentials
    #: stay good, and only what needs that permission stops.
    reauthorising_grants_permissions: ClassVar[bool] = False
    #: Those of the discount permissions (``missing_discount_permissions``) only removing
    #: discounts needs: without them discounts are still made, and spent ones stay.
    discount_cleanup_permissions: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, credentials: Credentials, *, session: requests.Session | None = None
    ) -> None:
        self.credentials = credentials
        self._session = session
        #: ``Credentials.extra`` entries the connector looked up for itself during a call
        #: (e.g. the Saleor channel id of a shop stored with its slug only): the caller
        #: stores them so the next instance need not look them up again.
        self.learned: dict[str, str] = {}
        #: Called during long waits that yield no page (a bulk export's polls), so the
        #: caller can renew what it holds meanwhile (the sync's lease); it may raise to stop.
        self.keep_alive: Callable[[], object] = lambda: None

    @property
    def session(self) -> requests.Session:
        """The retrying HTTP session, created lazily so pure webhook work needs no network."""
        if self._session is None:
            from connectors.http import make_session

            self._session = make_session()
        return self._session

    def shop_timezone(self) -> str | None:
        """The shop's IANA time zone as the platform reports it now; None (the default)
        when the platform has none to read."""
        return None

    def sold_currencies(self) -> frozenset[str] | None:
        """The currencies the shop sells in, as the platform reports now (upper-case ISO
        4217); None (the default) when the platform has none to read.

        Each sync reads it at most hourly (``plugin.offers.platform``): the settings page
        lists money guardrails for each, and without ``amounts_keep_currency`` offers
        follow it. An answer of no readable shape raises ``TransientError`` rather than
        naming none, so the reading before it is kept."""
        return None

    def missing_discount_permissions(self) -> tuple[str, ...] | None:
        """The permissions (scopes) creating and removing discounts needs that the
        credentials lack now, in the platform's own names, from one cheap query; empty
        when none is missing, None (the default) when the platform cannot say. Raises
        ``AuthFailed`` when the credentials themselves are refused."""
        return None

    def missing_read_permissions(self, resource: str) -> tuple[str, ...] | None:
        """The permissions backfilling ``resource`` (products, customers, orders) needs that
        the credentials lack now, as ``missing_discount_permissions`` says it: a sync refused
        with ``PermissionDenied`` asks, since a dead token is refused the same way on some
        platforms. None (the default) when the platform cannot say."""
        return None

    def pins_order_currency(self) -> bool:
        """Whether a discount made now applies only to orders in its own currency, so a
        platform without ``amounts_keep_currency`` is exact in every sold currency all the
        same (False, the default: not known to)."""
        return False

    # -- webhooks -------------------------------------------------------------------------
    @abc.abstractmethod
    def verify_webhook(
        self, headers: Mapping[str, str], raw_body: bytes, *, now: float | None = None
    ) -> None:
        """Raise ``SignatureInvalid`` unless the raw bytes carry a valid platform signature."""

    @abc.abstractmethod
    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookEvent:
        """Validate and normalize a delivery without any HTTP (raises ``InvalidPayload``)."""

    def fetch_event_record(self, event: WebhookEvent) -> WebhookEvent:
        """Fill in a thin webhook's record over the API; full webhooks pass through."""
        return event

    # -- install --------------------------------------------------------------------------
    def install_url(self, shop_domain: str, state: str, redirect_uri: str) -> str:
        """Where to send the merchant to grant access (platforms with an install flow)."""
        raise NotSupported(f"{self.meta.key} has no install flow")

    def complete_install(self, params: Mapping[str, str]) -> Credentials:
        """Finish the install handshake from the callback parameters."""
        raise NotSupported(f"{self.meta.key} has no install flow")

    def still_installed(self) -> bool | None:
        """Whether the platform still honours our credentials (None: cannot tell).

        A shop's erasure request arrives some time after its uninstall (Shopify's
        ``shop/redact``: 48 h); if the merchant has installed the app again since, the
        data is theirs again and must not be wiped.
        """
        return None

    # -- backfill -------------------------------------------------------------------------
    def iter_products(self, cursor: str | None = None) -> Iterator[Page[Product]]:
        """Yield product pages; each page's cursor resumes after it."""
        raise NotSupported(f"{self.meta.key} has no backfill API")

    def iter_customers(self, cursor: str | None = None) -> Iterator[Page[Customer]]:
        """Yield customer pages; each page's cursor resumes after it."""
        raise NotSupported(f"{self.meta.key} has no backfill API")

    def iter_orders(
        self, since: datetime | None = None, cursor: str | None = None
    ) -> Iterator[Page[Order]]:
        """Yield order pages updated at/after ``since``; each page's cursor resumes after it."""
        raise NotSupported(f"{self.meta.key} has no backfill API")

    # -- discounts ------------------------------------------------------------------------
    def create_discount(self, spec: DiscountSpec) -> DiscountRef:
        """Create a real, platform-enforced discount for an offer."""
        raise NotSupported(f"{self.meta.key} cannot create discounts")

    def find_discount(self, code: str) -> str | None:
        """The platform id of our discount with this code, or None.

        A create whose answer was lost may still have made the discount; finding it by its
        code lets a retry adopt it and the reconciliation job delete it. Platforms that keep
        no discount object (the generic connector's signed token) have nothing to find.
        """
        return None

    def delete_discount(self, ref: DiscountRef) -> None:
        """Delete an expired, unused discount from the platform (gone already is fine).

        Platforms that keep no discount object (the generic connector's signed token)
        have nothing to delete; raises ``ConnectorError`` when the platform refuses.
        """
        return None
