"""``VendureConnector``: Vendure shops running the Shopkeeper Vendure plugin.

Webhooks are signed with generic protocol v2 (the plugin shares the secret with the shop's
``Credentials.webhook_secret``) and carry only ids; records are read back over the Admin API,
which also serves the backfill and creates coupon promotions for offers.

``Credentials``: ``api_url`` is the Admin API endpoint (default ``https://<shop_domain>/admin-api``);
``access_token`` a bearer session token, or ``extra`` holds ``api_key`` (sent as
``vendure-api-key``) or ``username``/``password`` (logs in, and again when the session expires).
Optional ``extra``: ``channel_token``, ``product_url_template`` (``{slug}``/``{id}``),
``brand_facet`` (default ``brand``), ``money_precision`` (default 2).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import requests

from connectors import register
from connectors.base import Connector, ConnectorMeta, Credentials
from connectors.errors import AuthFailed, ConnectorError, InvalidPayload, TransientError
from connectors.generic.webhooks import verify_signature
from connectors.pages import RECORD_ERRORS
from connectors.parsing import as_object
from connectors.records import (
    Cart,
    Customer,
    Deletion,
    DiscountRef,
    DiscountSpec,
    Order,
    Page,
    Product,
    WebhookEvent,
)
from connectors.vendure import mapping, queries
from connectors.vendure.client import AdminClient
from connectors.vendure.discounts import (
    check_currency,
    default_tax_rate,
    pins_currency,
    promotion_input,
    sold_currencies,
    validate_spec,
)
from connectors.vendure.paging import iter_pages
from connectors.vendure.webhooks import TOPICS, parse_delivery

__all__ = ["VendureConnector"]

#: Vendure's ``DEFAULT_CHANNEL_CODE``: the channel a request without a channel token is in.
DEFAULT_CHANNEL = "__default_channel__"


@register
class VendureConnector(Connector):
    """One Vendure channel; ``page_size`` may be lowered (tests) up to Vendure's 1000 limit."""

    meta = ConnectorMeta(
        key="vendure",
        name="Vendure",
        webhook_topics=TOPICS,
        # The Admin API permissions the merchant's role grants, each needed (README's table):
        # reads for sync and webhooks; promotions and one-customer groups for offers, found
        # by code (retries, reconciliation) and deleted once spent or expired.
        scopes=(
            "ReadCatalog",
            "ReadCustomer",
            "ReadOrder",
            "ReadPromotion",
            "CreatePromotion",
            "DeletePromotion",
            "CreateCustomerGroup",
            "DeleteCustomerGroup",
        ),
        capabilities=frozenset({"webhooks", "backfill", "discounts"}),
    )
    page_size: int = 100
    #: The permissions offers' promotions need (``scopes``): made, found by code, deleted
    #: with their one-customer groups.
    discount_permissions = ("ReadPromotion", "CreatePromotion", "DeletePromotion",
                            "CreateCustomerGroup", "DeleteCustomerGroup")
    discount_cleanup_permissions = ("DeletePromotion", "DeleteCustomerGroup")
    #: What backfilling each resource needs (the README's permission table).
    read_permissions = {"products": ("ReadCatalog",), "customers": ("ReadCustomer",),
                        "orders": ("ReadOrder",)}
    #: Vendure's built-in ``free_shipping`` action waives the shipping line whatever it
    #: costs, and its default conditions cannot look at the shipping price.
    caps_free_shipping = False
    #: ``order_fixed_discount`` and ``minimum_order_amount`` hold bare minor units, taken in
    #: the order's currency: exact only in a channel selling one currency (``check_currency``),
    #: unless the plugin's currency condition limits the promotion (``pins_order_currency``).
    amounts_keep_currency = False

    def __init__(
        self, credentials: Credentials, *, session: requests.Session | None = None
    ) -> None:
        super().__init__(credentials, session=session)
        extra = credentials.extra
        self.options = mapping.MappingOptions(
            precision=int(extra.get("money_precision", 2)),
            product_url_template=extra.get("product_url_template") or None,
            brand_facet=extra.get("brand_facet", "brand"),
        )
        self._client: AdminClient | None = None

    @property
    def client(self) -> AdminClient:
        """The Admin API client, built on first use so webhook checks need no credentials."""
        if self._client is None:
            creds, extra = self.credentials, self.credentials.extra
            self._client = AdminClient(
                self.session,
                creds.api_url or f"https://{creds.shop_domain}/admin-api",
                token=creds.access_token,
                api_key=extra.get("api_key"),
                username=extra.get("username"),
                password=extra.get("password"),
                channel_token=extra.get("channel_token"),
            )
        return self._client

    def sold_currencies(self) -> frozenset[str]:
        """The channel's default and available currencies (one small Admin API query)."""
        channel = self.client.execute(queries.CHANNEL_CURRENCIES).get("activeChannel")
        if not isinstance(channel, dict):
            raise InvalidPayload("Vendure named no active channel", {"activeChannel": ["null"]})
        return sold_currencies(channel)

    def missing_discount_permissions(self) -> tuple[str, ...]:
        """The ``discount_permissions`` the role lacks on the shop's channel."""
        return self._missing(self.discount_permissions)

    def missing_read_permissions(self, resource: str) -> tuple[str, ...]:
        """The ``read_permissions`` of ``resource`` the role lacks on the shop's channel."""
        return self._missing(self.read_permissions.get(resource, ()))

    def _missing(self, wanted: tuple[str, ...]) -> tuple[str, ...]:
        """Those of ``wanted`` the role lacks on the shop's channel (the one of
        ``channel_token``, else the default). Vendure answers an expired session as it
        answers a missing permission, so a refused ``me`` raises ``AuthFailed``."""
        me = self.client.execute(queries.CURRENT_PERMISSIONS).get("me")
        if not isinstance(me, dict) or not isinstance(me.get("channels"), list):
            raise AuthFailed("Vendure named no logged-in user")
        token = self.credentials.extra.get("channel_token")
        granted: set[str] = set()
        for channel in me["channels"]:
            if isinstance(channel, dict) and (
                    channel.get("token") == token if token
                    else channel.get("code") == DEFAULT_CHANNEL):
                granted.update(str(p) for p in channel.get("permissions") or ())
        if "SuperAdmin" in granted:
            return ()
        return tuple(p for p in wanted if p not in granted)

    def pins_order_currency(self) -> bool:
        """Whether the server has the Shopkeeper plugin's order-currency promotion condition
        (an older plugin, or none, does not): then every discount is limited to orders in
        its own currency, and its amounts are exact in any currency the channel sells."""
        return pins_currency(self.client.execute(queries.PROMOTION_CONDITIONS))

    # -- webhooks -------------------------------------------------------------------------
    def verify_webhook(
        self, headers: Mapping[str, str], raw_body: bytes, *, now: float | None = None
    ) -> None:
        """The plugin signs exactly like generic protocol v2, so its verifier is reused."""
        verify_signature(self.credentials.webhook_secret, headers, raw_body, now=now)

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookEvent:
        """Map the plugin's native topic and thin body onto a normalized event."""
        return parse_delivery(headers, raw_body)

    def fetch_event_record(self, event: WebhookEvent) -> WebhookEvent:
        """Replace a thin event's placeholder with the record as Vendure has it now.

        The fetched record is stamped no older than the event (both times come from Vendure's
        clock): Vendure does not bump ``updatedAt`` on every change (placing an order, stock)
        and SQLite keeps whole seconds, so without this a real change could look stale.
        """
        if not event.needs_fetch or event.record is None:
            return event
        try:
            fetched = self._fetch(event)
        except RECORD_ERRORS as exc:
            if isinstance(exc, InvalidPayload):
                raise
            # an answer of an unexpected shape: a connector error naming the record, not a
            # bare TypeError, so the inbox keeps a reason the admin page can show
            kind = type(event.record).__name__.lower()
            raise InvalidPayload(f"unexpected {kind} from Vendure",
                                 {kind: [f"{type(exc).__name__}: {exc}"[:200]]}) from None
        record = fetched.record
        at = event.occurred_at
        if at is not None and isinstance(record, Product | Customer | Order | Cart):
            record = replace(record, updated_at=max(record.updated_at, at))
        return replace(fetched, record=record, needs_fetch=False)

    def _fetch(self, event: WebhookEvent) -> WebhookEvent:
        record = event.record
        ext_id = getattr(record, "external_id", None)
        if isinstance(record, Product):
            raw = self.client.execute(queries.PRODUCT, {"id": ext_id})["product"]
            if raw is None:  # deleted (Vendure soft-deletes) after the event was sent
                gone = Deletion("product", ext_id, event.occurred_at)
                return replace(event, topic="products/delete", record=gone)
            return replace(event, record=mapping.to_product(raw, self.options))
        if isinstance(record, Customer):
            raw = self.client.execute(queries.CUSTOMER, {"id": ext_id})["customer"]
            if raw is None:
                gone = Deletion("customer", ext_id, event.occurred_at)
                return replace(event, topic="customers/delete", record=gone)
            return replace(event, record=mapping.to_customer(raw))
        if isinstance(record, Order | Cart):
            raw = self.client.execute(queries.ORDER, {"id": ext_id})["order"]
            if raw is None:
                raise InvalidPayload("order no longer exists in Vendure", {"id": [str(ext_id)]})
            # The fetched state wins over the state named in the (possibly late) delivery.
            if raw["active"]:
                return replace(
                    event, topic="carts/upsert", record=mapping.to_cart(raw, self.options)
                )
            return replace(event, topic="orders/upsert", record=mapping.to_order(raw, self.options))
        return event

    # -- backfill -------------------------------------------------------------------------
    def _lister(self, document: str, root: str) -> Any:
        def fetch(options: dict[str, Any]) -> dict[str, Any]:
            data = self.client.execute(document, {"options": options})
            listing = data.get(root) if isinstance(data, dict) else None
            if not isinstance(listing, dict) or not isinstance(listing.get("items"), list):
                # a page of another shape: the platform's fault, the cursor kept for a rerun
                raise InvalidPayload(f"unexpected {root} page", {root: ["no list of items"]})
            return listing

        return fetch

    def iter_products(self, cursor: str | None = None) -> Iterator[Page[Product]]:
        """All products (with variants) in ``updatedAt`` order; soft-deleted ones are absent."""
        return iter_pages(
            self._lister(queries.PRODUCTS, "products"),
            lambda raw: mapping.to_product(raw, self.options),
            page_size=self.page_size,
            cursor=cursor,
        )

    def iter_customers(self, cursor: str | None = None) -> Iterator[Page[Customer]]:
        """All customers in ``updatedAt`` order."""
        return iter_pages(
            self._lister(queries.CUSTOMERS, "customers"),
            mapping.to_customer,
            page_size=self.page_size,
            cursor=cursor,
        )

    def iter_orders(
        self, since: datetime | None = None, cursor: str | None = None
    ) -> Iterator[Page[Order]]:
        """Placed orders (``active: false``; baskets are carts) updated at or after ``since``."""
        return iter_pages(
            self._lister(queries.ORDERS, "orders"),
            lambda raw: mapping.to_order(raw, self.options),
            page_size=self.page_size,
            base_filter={"active": {"eq": False}},
            since=since,
            cursor=cursor,
        )

    # -- discounts ------------------------------------------------------------------------
    def _variant_ids(self, product_ids: tuple[str, ...]) -> list[str]:
        """The products' variant ids; none is Vendure's answer that they have none (or do
        not exist): ``InvalidPayload``. A listing of another shape is ``TransientError``."""
        options = {"take": 1000, "filter": {"productId": {"in": list(product_ids)}}}
        data = self.client.execute(queries.PRODUCT_VARIANT_IDS, {"options": options})
        ids = _listed_ids(data, "productVariants")
        if not ids:
            raise InvalidPayload("no variants for these products", {"product_ids": ["unknown"]})
        return ids

    def delete_discount(self, ref: DiscountRef) -> None:
        """Delete the promotion and the one-customer group made for it.

        Vendure weighs every promotion on every order change, so thousands of spent
        offers would slow checkout. A promotion deleted already counts as done
        (``deletePromotion`` soft-deletes; a second call is harmless).

        Vendure answers a deletion with its ``result``: an answer without one (null, a
        proxy's body) is ``TransientError``, so the offer keeps its reference and the
        delete is retried (read as done, the promotion stayed for good; a body of
        another shape crashed the cleanup run).
        """
        try:
            result = self.client.execute(queries.DELETE_PROMOTION, {"id": ref.platform_id})
        except InvalidPayload as err:  # ENTITY_NOT_FOUND: deleted in the Dashboard already
            if not _not_found(err):
                raise
        else:
            _confirm_deleted(result, "deletePromotion", "promotion")
        self._delete_groups(ref.code)

    def _delete_groups(self, code: str) -> None:
        """Delete the customer groups made for ``code``. A listing or a group of another
        shape, or a deletion Vendure did not confirm, is ``TransientError``: the delete is
        tried again (a garbled answer raised KeyError/TypeError, a crash; an unconfirmed
        deletion read as done left the group for good)."""
        found = self.client.execute(queries.CUSTOMER_GROUPS_BY_NAME, {"name": _group_name(code)})
        groups = as_object(found.get("customerGroups")).get("items")
        if not isinstance(groups, list):
            raise TransientError("Vendure listed no customerGroups")
        for group in groups:
            group_id = as_object(group).get("id")
            if not isinstance(group_id, str) or not group_id:
                raise TransientError("Vendure listed a customer group without an id")
            try:
                result = self.client.execute(queries.DELETE_CUSTOMER_GROUP, {"id": group_id})
            except InvalidPayload as err:  # deleted meanwhile (another cleanup run)
                if not _not_found(err):
                    raise
            else:
                _confirm_deleted(result, "deleteCustomerGroup", "customer group")

    def _customer_group(self, spec: DiscountSpec) -> str:
        """The id of a new one-customer group for ``spec``. Vendure answers the group or an
        ``errors`` list (its refusal); an answer naming no group id is ``TransientError``:
        it raised KeyError/TypeError, or limited the promotion to a group "None"."""
        group = {"name": _group_name(spec.code), "customerIds": [spec.customer_id]}
        data = self.client.execute(queries.CREATE_CUSTOMER_GROUP, {"input": group})
        group_id = as_object(data.get("createCustomerGroup")).get("id")
        if not isinstance(group_id, str) or not group_id:
            raise TransientError("Vendure confirmed no createCustomerGroup")
        return group_id

    def _promotion_ids(self, code: str) -> list[str]:
        """The ids of the promotions with coupon ``code``. A listing of another shape is
        ``TransientError``: read as none, a retried create minted a second discount."""
        found = self.client.execute(queries.PROMOTIONS_BY_CODE, {"code": code})
        items = _listed(found, "promotions")
        return [p["id"] for p in items if p.get("couponCode") == code]

    def _tax_setup(self, spec: DiscountSpec) -> tuple[dict[str, Any], Decimal]:
        """The channel's ``TAX_SETUP`` with ``spec``'s currency checked against it, and the
        tax rate a fixed amount is net of. A setup of another shape is ``TransientError``
        (it raised KeyError/TypeError); ``check_currency``'s refusal stays one."""
        setup = self.client.execute(queries.TAX_SETUP)
        try:
            check_currency(spec, setup)
            rate = default_tax_rate(setup) if spec.kind == "fixed" else Decimal(0)
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            raise TransientError(f"unexpected TaxSetup answer: {type(exc).__name__}") from None
        return setup, rate

    def find_discount(self, code: str) -> str | None:
        """The id of the promotion with this coupon code, or None."""
        return next(iter(self._promotion_ids(code)), None)

    def _only_promotion(self, code: str, keep: str | None = None) -> str | None:
        """The promotion with ``code`` to use (``keep``, else the first), its twins deleted.

        The retrying session sends ``createPromotion`` again after a timeout or a 5xx that
        Vendure may have acted on. Vendure accepts the duplicate code and applies *every*
        promotion whose code is on the order, so a twin would double the discount.
        """
        ids = self._promotion_ids(code)
        keep = keep or next(iter(ids), None)
        for twin in ids:
            if twin != keep:  # only the promotion: the customer group is shared
                self.client.execute(queries.DELETE_PROMOTION, {"id": twin})
        return keep

    def create_discount(self, spec: DiscountSpec) -> DiscountRef:
        """A coupon promotion: usage-limited, per customer once, ending at ``expires_at``.

        Vendure accepts duplicate coupon codes, so an existing promotion with this code is
        returned instead: a retried call after a timeout must not mint a second discount.
        """
        if spec.expires_at <= datetime.now(UTC):
            raise InvalidPayload("the offer has already expired", {"expires_at": ["in the past"]})
        validate_spec(spec)
        existing = self._only_promotion(spec.code)
        if existing is not None:
            return DiscountRef(existing, spec.code, spec.expires_at)
        setup, tax_rate = None, Decimal(0)
        if spec.kind == "fixed" or spec.min_subtotal is not None:  # an amount: its currency
            setup, tax_rate = self._tax_setup(spec)
        variant_ids = self._variant_ids(spec.product_ids) if spec.product_ids else None
        group_id = self._customer_group(spec) if spec.customer_id else None
        payload = promotion_input(
            spec,
            variant_ids=variant_ids,
            customer_group_id=group_id,
            precision=self.options.precision,
            tax_rate=tax_rate,
            pin_currency=bool(spec.currency) and setup is not None and pins_currency(setup),
        )
        result = self.client.execute(queries.CREATE_PROMOTION, {"input": payload})
        promotion = result.get("createPromotion")
        if not isinstance(promotion, dict):
            # a proxy's or gateway's answer, not Vendure's refusal (a string holding
            # "errorCode" read as one): retried, as Shopify's and Saleor's are
            raise TransientError("unexpected createPromotion answer: not an object")
        if "errorCode" in promotion:
            raise InvalidPayload(
                "Vendure refused the promotion",
                {str(promotion["errorCode"]): [str(promotion.get("message") or "")]},
            )
        if not promotion.get("id"):
            raise TransientError("Vendure returned no promotion id")
        self._only_promotion(spec.code, keep=str(promotion["id"]))
        return DiscountRef(
            platform_id=str(promotion["id"]), code=spec.code, expires_at=spec.expires_at
        )


def _listed(data: dict[str, Any], root: str) -> list[dict[str, Any]]:
    """The ``items`` of a list query's answer under ``root``, each an object with an id;
    else ``TransientError`` (a proxy's or a broken server's answer, not "none")."""
    items = as_object(data.get(root)).get("items")
    if not isinstance(items, list) or not all(
            isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]
            for item in items):
        raise TransientError(f"unexpected {root} answer")
    return items


def _listed_ids(data: dict[str, Any], root: str) -> list[str]:
    """The ids ``_listed`` checked."""
    return [item["id"] for item in _listed(data, root)]


def _not_found(err: InvalidPayload) -> bool:
    """Vendure's ENTITY_NOT_FOUND refusal: the object is gone already."""
    return any("could be found" in m or "not found" in m.lower()
               for messages in err.errors.values() for m in messages)


def _confirm_deleted(data: dict[str, Any], root: str, what: str) -> None:
    """Vendure's ``DeletionResponse`` under ``root``: ``NOT_DELETED`` is its refusal,
    anything but ``DELETED`` (null, a proxy's body) confirms nothing: ``TransientError``."""
    answer = as_object(data.get(root))
    if answer.get("result") == "NOT_DELETED":
        raise ConnectorError(f"Vendure kept the {what}: {answer.get('message')}")
    if answer.get("result") != "DELETED":
        raise TransientError(f"Vendure confirmed no {root}")


def _group_name(code: str) -> str:
    """The customer group that limits the offer with this code to its one customer."""
    return f"shopkeeper-offer-{code}"
