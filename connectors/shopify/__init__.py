"""Shopify: OAuth install, HMAC webhooks, Admin GraphQL backfill and discount codes.

Credentials: ``shop_domain`` (``x.myshopify.com``), ``access_token`` (expiring offline token,
one hour; its refresh token and both expiries are in ``extra``, see ``install.REFRESH_TOKEN``),
``webhook_secret`` (the app's client secret, which signs webhooks), ``extra["api_key"]``
(client id), ``extra["currency"]`` (shop currency) and ``extra["timezone"]`` (the shop's
IANA time zone, ``shop.ianaTimezone``), both read at install (the zone of a shop installed
before it was read there is read at its next sync, ``shop_timezone``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests

from connectors import register
from connectors.base import Connector, ConnectorMeta, Credentials
from connectors.errors import (
    AuthFailed,
    ConnectorError,
    InvalidPayload,
    SignatureInvalid,
    TransientError,
)
from connectors.parsing import as_object, currency_codes
from connectors.records import (
    Customer,
    DiscountRef,
    DiscountSpec,
    Order,
    Page,
    Product,
    WebhookEvent,
)
from connectors.shopify import bulk, discounts, install, mapping, webhooks
from connectors.shopify import client as gql

__all__ = ["MIGRATION_REFUSED_AT", "STOREFRONT_PUBLICATION", "Publication", "ShopifyConnector",
           "WebhookReconcile", "migration_due", "publications_granted"]

log = logging.getLogger(__name__)

#: read_inventory: the ``inventory_levels/update`` subscription needs it. read_publications:
#: whether a product is published on the storefront's publication (``publishedOnPublication``).
#: write_app_proxy: Shopify configures the app proxy (``/apps/shopkeeper``) only for an app
#: granted it ("Configuring an app proxy requires the write_app_proxy access scope").
SCOPES = ("read_products", "read_customers", "read_orders", "read_inventory", "write_discounts",
          "read_publications", "write_app_proxy")
#: The scope backfilling each resource needs.
READ_SCOPES = {"products": ("read_products",), "customers": ("read_customers",),
               "orders": ("read_orders",)}
#: ``Credentials.extra``: the publication the shop's storefront sells through (a global id,
#: from the merchant's setting, added by the plugin and never stored with the credentials).
STOREFRONT_PUBLICATION = "storefront_publication"
#: How long after Shopify refused to migrate a shop's non-expiring token to ask again.
MIGRATION_RETRY = timedelta(days=1)
#: ``Credentials.extra``: when that refusal was (ISO 8601, UTC).
MIGRATION_REFUSED_AT = "token_migration_refused_at"
#: ``Credentials.extra`` entries this process adds and nothing stores (``connector_for``).
_TRANSIENT_EXTRA = ("app_secret", STOREFRONT_PUBLICATION)
#: What an inventory change becomes when Shopify no longer knows its item (or the item
#: stocks no variant): a topic ingestion does not act on, so the delivery is just done.
UNKNOWN_ITEM_TOPIC = "inventory_levels/unknown_item"

#: The scopes the token holds and the shop's webhook subscriptions, a page at a time
#: (``webhookSubscriptions`` lists only those made through the API: ours, per shop).
WEBHOOKS_QUERY = """
query Webhooks($after: String) {
  currentAppInstallation { accessScopes { handle } }
  webhookSubscriptions(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id topic uri }
  }
}"""

#: Moves a subscription to another address (``uri``; its topic and format stay).
MOVE_MUTATION = """
mutation Move($id: ID!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionUpdate(id: $id, webhookSubscription: $sub) {
    webhookSubscription { id uri }
    userErrors { field message }
  }
}"""

UNSUBSCRIBE_MUTATION = """
mutation Unsubscribe($id: ID!) {
  webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId userErrors { field message } }
}"""

SUBSCRIBE_MUTATION = """
mutation Subscribe($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id }
    userErrors { field message }
  }
}"""


def publications_granted(extra: Mapping[str, object]) -> bool:
    """Whether the token was granted ``read_publications`` (``write_`` includes ``read_``).
    A shop installed before it was asked for (or before scopes were recorded) was not:
    its products are read as before, without the publication."""
    granted = {s.strip() for s in str(extra.get("scope") or "").split(",")}
    return bool(granted & {"read_publications", "write_publications"})


@dataclass(frozen=True)
class WebhookReconcile:
    """What ``ShopifyConnector.reconcile_webhooks`` found and did, by topic."""

    created: list[str]
    present: list[str]
    #: topic -> the scope it needs that the shop did not grant (not subscribed)
    skipped: dict[str, str]
    #: topics whose subscription to a former address of ours now delivers to ``uri``
    moved: list[str] = field(default_factory=list)
    #: topics with a second subscription, to a former address of ours, deleted
    removed: list[str] = field(default_factory=list)
    #: Shopify's topic names (``ORDERS_FULFILLED``) whose subscription to an address of
    #: ours was deleted because this version no longer handles them
    dropped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Publication:
    """One of the shop's publications (a sales channel; each Headless storefront has its
    own), as the merchant picks the storefront's."""

    id: str
    name: str


def migration_due(credentials: Credentials, *, now: datetime | None = None) -> bool:
    """A non-expiring token that Shopify did not refuse to migrate within
    ``MIGRATION_RETRY`` (it does not for custom apps, which may keep theirs)."""
    extra = credentials.extra
    if extra.get(install.REFRESH_TOKEN) or not credentials.access_token:
        return False
    refused = install.expires_at(extra, MIGRATION_REFUSED_AT)
    return refused is None or refused + MIGRATION_RETRY <= (now or datetime.now(UTC))


@register
class ShopifyConnector(Connector):
    """One installed Shopify shop."""

    meta = ConnectorMeta(
        key="shopify",
        name="Shopify",
        webhook_topics=webhooks.TOPICS,
        scopes=SCOPES,
        capabilities=frozenset({"webhooks", "backfill", "discounts", "install"}),
    )
    #: A code's fixed amount and minimum subtotal are in the shop's currency; checkout
    #: converts them into the customer's (help.shopify.com/en/manual/international/pricing/
    #: discounts; a manual exchange rate, when the merchant set one, is used instead).
    converts_amounts = True
    #: A scope the token lacks is granted by approving the app's access again (OAuth).
    reauthorising_grants_permissions = True

    def __init__(self, credentials: Credentials, *,
                 session: requests.Session | None = None) -> None:
        super().__init__(credentials, session=session)
        #: Set by the plugin, which stores credentials (``connectors`` keeps no database):
        #: ``renew_credentials(held, force)`` returns the shop's credentials with an access
        #: token good for a while yet, refreshed (or migrated from a non-expiring one) and
        #: stored under a lock, so a single-use refresh token is spent once. ``force``: a
        #: 401 answered the token held. Without it the token held is used as it is.
        self.renew_credentials: Callable[[Credentials, bool], Credentials] | None = None

    @classmethod
    def for_app(
        cls, api_key: str, api_secret: str, *, session: requests.Session | None = None
    ) -> ShopifyConnector:
        """A connector holding only the app's keys, for the install flow."""
        creds = Credentials(shop_domain="", webhook_secret=api_secret, extra={"api_key": api_key})
        return cls(creds, session=session)

    # -- webhooks -------------------------------------------------------------------------
    def verify_webhook(
        self, headers: Mapping[str, str], raw_body: bytes, *, now: float | None = None
    ) -> None:
        """Base64 HMAC-SHA256 of the raw body with the app secret, compared in constant time.

        Shopify signs with the app's client secret, one for every shop: the current one
        (``extra["app_secret"]``, from the server's configuration) is tried first, then the
        one stored at install, which after a rotation is the old secret Shopify's guide
        says to keep accepting until it is revoked.
        """
        candidates = [self.credentials.extra.get("app_secret"), self.credentials.webhook_secret]
        secrets = [s for s in dict.fromkeys(candidates) if s] or [None]
        for secret in secrets[:-1]:
            try:
                return webhooks.verify_hmac(secret, headers, raw_body)
            except SignatureInvalid:
                continue
        webhooks.verify_hmac(secrets[-1], headers, raw_body)

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookEvent:
        """REST-shaped webhook body -> normalized event (no HTTP)."""
        return webhooks.parse_delivery(
            headers, raw_body, currency=self.credentials.extra.get("currency"),
            shop_domain=self.credentials.shop_domain or None,
            read_products_back=self.storefront_publication() is not None,
        )

    def storefront_publication(self) -> str | None:
        """The publication the storefront sells through, when the merchant set one and the
        token may read it; None: availability is status and stock alone, as before."""
        chosen = self.credentials.extra.get(STOREFRONT_PUBLICATION)
        if not isinstance(chosen, str) or not chosen:
            return None
        return chosen if publications_granted(self.credentials.extra) else None

    def _publication_vars(self) -> dict[str, str]:
        chosen = self.storefront_publication()
        return {"publication": chosen} if chosen else {}

    def publications(self) -> list[Publication]:
        """The shop's publications, for the merchant to pick the storefront's (raises
        ``client.AccessDenied`` when the token lacks ``read_publications``)."""
        found: list[Publication] = []
        for page in self._client().pages(
                gql.PUBLICATIONS_QUERY, "publications",
                lambda node, _: Publication(
                    id=str(node["id"]),
                    name=str((node.get("catalog") or {}).get("title") or node["id"])),
                first=100):
            found.extend(page.items)
        return found

    def fetch_event_record(self, event: WebhookEvent) -> WebhookEvent:
        """An inventory change -> the product its item stocks, as Shopify has it now; a
        product body that cannot say whether it is in stock -> that product read back.

        The product is stamped no older than the level's ``updated_at``: a stock change
        need not move the product's own ``updatedAt``, and without the stamp the monotonic
        upsert would drop it as stale. A delivery older than what is stored still loses.
        A product Shopify no longer has keeps its body (a later delete tombstones it).
        """
        placeholder = event.record
        if not event.needs_fetch or not isinstance(placeholder, Product):
            return event
        client = self._client()
        published = self._publication_vars()
        if placeholder.external_id.startswith("gid://shopify/InventoryItem/"):
            data = client.execute(gql.inventory_item_product_query(bool(published)),
                                  {"id": placeholder.external_id, **published})
            node = ((data.get("inventoryItem") or {}).get("variant") or {}).get("product")
            if not node:
                return replace(event, topic=UNKNOWN_ITEM_TOPIC, record=None, needs_fetch=False)
        else:
            data = client.execute(gql.product_query(bool(published)),
                                  {"id": mapping.gid("Product", placeholder.external_id),
                                   **published})
            node = data.get("product")
            if not node:
                return replace(event, needs_fetch=False)
        node = client.complete(node, "variants", gql.PRODUCT_VARIANTS_QUERY)
        currency = (data.get("shop") or {}).get("currencyCode") or self.credentials.extra.get(
            "currency")
        try:
            product = mapping.product_from_gql(node, currency=currency)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidPayload("unexpected product from Shopify",
                                 {"product": [f"{type(exc).__name__}: {exc}"[:200]]}) from None
        product = replace(product, updated_at=max(product.updated_at, placeholder.updated_at))
        return replace(event, record=product, needs_fetch=False)

    # -- install --------------------------------------------------------------------------
    def _app_keys(self) -> tuple[str, str]:
        api_key = self.credentials.extra.get("api_key")
        secret = self.credentials.webhook_secret
        if not api_key or not secret:
            raise AuthFailed("Shopify api_key/api_secret are not configured")
        return api_key, secret

    def install_url(self, shop_domain: str, state: str, redirect_uri: str) -> str:
        """The OAuth authorize URL for ``shop_domain`` with our scopes and ``state`` nonce."""
        api_key, _ = self._app_keys()
        return install.authorize_url(
            shop_domain, api_key=api_key, scopes=SCOPES, redirect_uri=redirect_uri, state=state
        )

    def complete_install(
        self, params: Mapping[str, str], *, expected_state: str | None = None
    ) -> Credentials:
        """Verify the callback (shop, hmac, state), exchange the code, read the currency and
        time zone (one query)."""
        api_key, secret = self._app_keys()
        shop = install.verify_oauth_callback(params, secret, expected_state=expected_state)
        token = install.exchange_code(
            self.session, shop, api_key=api_key, api_secret=secret, code=params.get("code", "")
        )
        client = gql.ShopifyGraphQL(self.session, shop, token["access_token"])
        expiring = {k: v for k, v in token.items() if k not in ("access_token", "scope")}
        extra = {"api_key": api_key, "scope": token["scope"], **expiring,
                 **self._about_shop(client)}
        return Credentials(
            shop_domain=shop,
            access_token=token["access_token"],
            webhook_secret=secret,
            api_url=client.url,
            extra=extra,
        )

    @staticmethod
    def _about_shop(client: gql.ShopifyGraphQL) -> dict[str, str]:
        """The shop's currency and time zone as ``Credentials.extra`` entries (one query)."""
        about = client.execute(gql.SHOP_QUERY).get("shop") or {}
        return {key: about[field]
                for key, field in (("currency", "currencyCode"), ("timezone", "ianaTimezone"))
                if isinstance(about.get(field), str) and about[field]}

    def subscribe_webhooks(self, uri: str) -> list[str]:
        """Shop-specific subscriptions to every non-compliance topic, delivered to ``uri``.

        Compliance topics can only be set app-wide (``shopify.app.toml``), so they are not
        subscribed here. A topic already subscribed to ``uri`` (a reinstall) is not an error.
        """
        client = self._client()
        return [_subscribe(client, topic, uri) for topic in webhooks.SHOP_TOPICS]

    def reconcile_webhooks(self, uri: str, *, path: str | None = None) -> WebhookReconcile:
        """Subscribe ``uri`` to each shop topic it is not subscribed to yet, where the
        token's scopes allow the topic (``webhooks.TOPIC_SCOPES``).

        Subscriptions are made at install, so a topic a release adds reached shops
        installed before only at their next OAuth; this brings them up to date. The
        scopes are the token's own (``currentAppInstallation``), not those recorded at
        install, which a shop installed before they were recorded does not have.

        ``path``: the shop's webhook path (``/webhooks/shopify/<shop id>``). Every
        subscription listed is this app's, so one whose address is another http(s) URL
        ending in that path is ours at a former public URL: Shopify delivers to both, and
        the old one may be dead or another host's. It is moved to ``uri``
        (``webhookSubscriptionUpdate``), or deleted when ``uri`` has the topic already.
        Any other address (another path, another shop id) is left alone.

        A subscription at ``uri`` or such a former address whose topic this version does
        not handle (a release dropped it) is deleted: Shopify would keep delivering it.
        The same topic at any other address is someone else's and stays.
        """
        client = self._client()
        granted, subscribed = _webhook_state(client)
        done = WebhookReconcile(created=[], present=[], skipped={})
        for topic in webhooks.SHOP_TOPICS:
            subs = [s for s in subscribed if s.topic == _topic_enum(topic)]
            here = any(s.uri == uri for s in subs)
            former = [s for s in subs if s.uri != uri and _former_address(s.uri, path)]
            scope = webhooks.TOPIC_SCOPES.get(topic)
            if not here and former:
                _move(client, former.pop(0), uri)
                done.moved.append(topic)
            elif here:
                done.present.append(topic)
            elif scope is not None and scope not in granted:
                done.skipped[topic] = scope
            else:
                _subscribe(client, topic, uri)
                done.created.append(topic)
            for extra in former:
                _unsubscribe(client, extra)
            if former:
                done.removed.append(topic)
        handled = {_topic_enum(topic) for topic in webhooks.TOPICS}
        for sub in subscribed:
            if sub.topic not in handled and (sub.uri == uri or _former_address(sub.uri, path)):
                _unsubscribe(client, sub)
                done.dropped.append(sub.topic)
        return done

    # -- backfill -------------------------------------------------------------------------
    def still_installed(self) -> bool:
        """One cheap query: an uninstall revokes the access token at once (401), a
        reinstall grants a working one. Other failures raise, so the caller retries."""
        try:
            self._client().execute("{ shop { id } }")
        except AuthFailed:
            return False
        return True

    def _client(self) -> gql.ShopifyGraphQL:
        return gql.ShopifyGraphQL(self.session, self.credentials.shop_domain, self._token(),
                                  renew=self._token if self.renew_credentials else None)

    def _token(self, after_401: bool = False) -> str | None:
        """The access token to send, renewed through ``renew_credentials`` when it is about
        to expire; after a 401, a renewed one or None (a non-expiring token that was refused
        is not renewed: it was revoked; those are migrated by a job, not here)."""
        held = self.credentials
        if self.renew_credentials is not None and (
                (after_401 and held.extra.get(install.REFRESH_TOKEN))
                or install.token_due(held.extra)):
            fresh = self.renew_credentials(held, after_401)
            self.credentials = replace(fresh, extra={
                **fresh.extra, **{k: held.extra[k] for k in _TRANSIENT_EXTRA if k in held.extra}})
        elif after_401:
            return None
        if not self.credentials.access_token:
            raise AuthFailed("shop has no access token")
        if after_401 and self.credentials.access_token == held.access_token:
            return None  # nothing newer to try
        return self.credentials.access_token

    def migration_due(self) -> bool:
        """Whether the token held is a non-expiring one to migrate now."""
        return migration_due(self.credentials)

    def renewed_credentials(self, credentials: Credentials) -> Credentials:
        """``credentials`` with a new expiring access token: refreshed with their refresh
        token, or a non-expiring token migrated by token exchange. Raises ``AuthFailed``
        when Shopify refuses (the refresh token expired or was revoked: OAuth again)."""
        api_key = credentials.extra.get("api_key") or self.credentials.extra.get("api_key")
        secret = self.credentials.extra.get("app_secret") or credentials.webhook_secret
        if not api_key or not secret or not credentials.access_token:
            raise AuthFailed("Shopify api_key/api_secret or access token missing")
        refresh = credentials.extra.get(install.REFRESH_TOKEN)
        if refresh:
            until = install.expires_at(credentials.extra, install.REFRESH_TOKEN_EXPIRES_AT)
            if until is not None and until <= datetime.now(UTC):
                raise AuthFailed("the refresh token expired")
            token = install.refresh_access_token(self.session, credentials.shop_domain,
                                                 api_key=api_key, api_secret=secret,
                                                 refresh_token=refresh)
        else:
            token = install.migrate_to_expiring_token(
                self.session, credentials.shop_domain, api_key=api_key, api_secret=secret,
                access_token=credentials.access_token)
        extra = {k: v for k, v in credentials.extra.items() if k not in (
            install.REFRESH_TOKEN, install.ACCESS_EXPIRES_AT, install.REFRESH_TOKEN_EXPIRES_AT,
            MIGRATION_REFUSED_AT)}
        extra.update({k: v for k, v in token.items() if k != "access_token" and v})
        return replace(credentials, access_token=token["access_token"], extra=extra)

    def shop_timezone(self) -> str | None:
        """``shop.ianaTimezone``, for a shop installed before install read it."""
        return self._about_shop(self._client()).get("timezone")

    def sold_currencies(self) -> frozenset[str]:
        """The shop's currency and its enabled presentment currencies (Markets).

        An answer without both (a proxy's, more likely than Shopify's, which types them
        non-null) is ``TransientError``: read as "sells nothing" it would replace a good
        reading."""
        shop = as_object(self._client().execute(gql.SOLD_CURRENCIES_QUERY).get("shop"))
        own = currency_codes([shop.get("currencyCode")])
        presented = currency_codes(shop.get("enabledPresentmentCurrencies"))
        if not own or presented is None:
            raise TransientError("Shopify named no currencies for the shop")
        return own | presented

    def iter_products(self, cursor: str | None = None) -> Iterator[Page[Product]]:
        """Products with the shop currency: 50-item cursor pages, or a bulk export.

        Shops with ``extra["backfill"] == "bulk"`` (large catalogues) use a bulk operation;
        its cursors start with ``bulk:`` so a resumed backfill stays on the same export.
        """
        if (cursor or "").startswith("bulk:") or (
            cursor is None and self.credentials.extra.get("backfill") == "bulk"
        ):
            return self._bulk_products(cursor)
        return self._paged_products(cursor)

    def _bulk_products(self, cursor: str | None) -> Iterator[Page[Product]]:
        """The bulk export, or cursor pages from the start when the app may not run bulk
        queries (a Partner Dashboard setting, not the shop's token: the sync goes on)."""
        try:
            yield from bulk.iter_bulk_products(
                self._client(),
                currency=self.credentials.extra.get("currency"),
                cursor=cursor,
                sleep=getattr(self.session, "sleep", time.sleep),
                keep_alive=self.keep_alive,
                publication=self.storefront_publication(),
            )
        except bulk.BulkNotEnabled as err:  # raised before any page: nothing yielded twice
            log.warning("shopify.bulk_not_enabled", extra={
                "shop": self.credentials.shop_domain, "error": str(err)})
            yield from self._paged_products(None)

    def _paged_products(self, cursor: str | None) -> Iterator[Page[Product]]:
        client = self._client()

        def convert(node: dict, data: dict) -> Product:
            currency = (data.get("shop") or {}).get("currencyCode") or self.credentials.extra.get(
                "currency"
            )
            # a page holds 10 variants per product: the rest are read before mapping, or
            # availability and the lowest price would come from the first 10 alone
            node = client.complete(node, "variants", gql.PRODUCT_VARIANTS_QUERY)
            return mapping.product_from_gql(node, currency=currency)

        published = self._publication_vars()
        return client.pages(gql.products_query(bool(published)), "products", convert,
                            cursor=cursor, variables=published)

    def iter_customers(self, cursor: str | None = None) -> Iterator[Page[Customer]]:
        """Customers, 100 per page."""
        return self._client().pages(
            gql.CUSTOMERS_QUERY,
            "customers",
            lambda node, _: mapping.customer_from_gql(node),
            cursor=cursor,
            first=100,
        )

    def iter_orders(
        self, since: datetime | None = None, cursor: str | None = None
    ) -> Iterator[Page[Order]]:
        """Orders updated at/after ``since`` (incremental sync), 25 per page.

        A page holds 25 line items per order; a longer order's other lines are read
        before it is mapped (ingestion replaces an order's lines with what it is given).
        """
        client = self._client()
        return client.pages(
            gql.ORDERS_QUERY,
            "orders",
            lambda node, _: mapping.order_from_gql(
                client.complete(node, "lineItems", gql.ORDER_LINES_QUERY)),
            cursor=cursor,
            search=gql.updated_since(since),
            first=25,
        )

    # -- discounts ------------------------------------------------------------------------
    def create_discount(self, spec: DiscountSpec) -> DiscountRef:
        """A single-code discount via ``discountCodeBasicCreate`` (or free shipping).

        Its amounts are read in the shop's currency, whatever the spec says: a spec in
        another currency (an offer quoted before the shop's currency changed) is refused,
        since Shopify would take its number as that many units of the shop's currency.
        """
        shop_currency = self.credentials.extra.get("currency")
        if spec.currency and shop_currency and spec.currency.upper() != shop_currency.upper():
            raise InvalidPayload("discount not in the shop's currency",
                                 {"currency": [f"Shopify takes amounts in {shop_currency}"]})
        free = spec.kind == "free_shipping"
        mutation = discounts.FREE_SHIPPING_MUTATION if free else discounts.BASIC_MUTATION
        root = "discountCodeFreeShippingCreate" if free else "discountCodeBasicCreate"
        client = self._client()
        data = client.execute(mutation, {"input": discounts.discount_input(spec)})
        result = as_object(data.get(root))
        errors = gql.user_errors(result)
        if errors and {e.code for e in errors} == {"TAKEN"}:
            # An earlier attempt whose answer was lost made it: the code is ours, reuse it.
            node = {"id": self.find_discount(spec.code)}
        elif errors:  # the platform's own refusal (an invalid field): asked again, the same
            fields: dict[str, list[str]] = {}
            for e in errors:
                fields.setdefault(e.field, []).append(e.message)
            raise InvalidPayload(f"Shopify refused the discount: {[e.message for e in errors]}",
                                 fields)
        else:
            node = as_object(result.get("codeDiscountNode"))
        if not node.get("id") or not isinstance(node["id"], str):
            # no userErrors and no readable id (or TAKEN with no discount found yet): a
            # proxy's answer or a lagging lookup, not Shopify's refusal; a retry adopts it
            raise TransientError("Shopify returned no discount id")
        return DiscountRef(platform_id=node["id"], code=spec.code, expires_at=spec.expires_at)

    def missing_discount_permissions(self) -> tuple[str, ...]:
        """The discount scopes the token was not granted (``discounts.SCOPES``)."""
        granted = self._granted_scopes()
        return tuple(s for s in discounts.SCOPES if s not in granted)

    def missing_read_permissions(self, resource: str) -> tuple[str, ...]:
        """The ``READ_SCOPES`` of ``resource`` the token was not granted (``write_x``
        includes ``read_x``)."""
        granted = self._granted_scopes()
        return tuple(s for s in READ_SCOPES.get(resource, ())
                     if s not in granted and s.replace("read_", "write_", 1) not in granted)

    def _granted_scopes(self) -> set[str]:
        """The token's own scopes (``currentAppInstallation.accessScopes``)."""
        data = self._client().execute(discounts.SCOPES_QUERY)
        scopes = as_object(data.get("currentAppInstallation")).get("accessScopes")
        if not isinstance(scopes, list):  # no answer to go by: not "everything is missing"
            raise TransientError("Shopify named no access scopes")
        return {str(as_object(s).get("handle")) for s in scopes}

    def find_discount(self, code: str) -> str | None:
        """``codeDiscountNodeByCode``: the code discount's id, or None."""
        found = self._client().execute(discounts.BY_CODE_QUERY, {"code": code})
        found_id = as_object(found.get("codeDiscountNodeByCode")).get("id")
        return found_id if isinstance(found_id, str) and found_id else None

    def delete_discount(self, ref: DiscountRef) -> None:
        """``discountCodeDelete``; a discount the merchant deleted already counts as done.

        Shopify names the discount it deleted (``deletedCodeDiscountId``). An answer with
        neither that nor userErrors (null, a proxy's body) is ``TransientError``: the offer
        keeps its reference and the delete is retried (read as done, the code stayed on
        Shopify for good); a retry of a delete that did happen reads "does not exist"."""
        data = self._client().execute(discounts.DELETE_MUTATION, {"id": ref.platform_id})
        result = data.get("discountCodeDelete")
        errors = gql.user_errors(result)
        if errors and not all(gone in e.message.lower()
                              for e in errors for gone in ("not exist",)):
            raise ConnectorError(f"Shopify refused to delete the discount: "
                                 f"{[e.message for e in errors]}")
        if not errors and not isinstance(as_object(result).get("deletedCodeDiscountId"), str):
            raise TransientError("Shopify confirmed no discountCodeDelete")


def _topic_enum(topic: str) -> str:
    """``products/create`` -> ``PRODUCTS_CREATE`` (``WebhookSubscriptionTopic``)."""
    return topic.upper().replace("/", "_")


def _subscribe(client: gql.ShopifyGraphQL, topic: str, uri: str) -> str:
    """``webhookSubscriptionCreate`` for ``topic`` to ``uri``; its id, "" for a topic
    already subscribed to ``uri`` ("taken"), which is not an error. An answer with
    neither errors nor the subscription is ``TransientError``, as ``_move`` reads one:
    counted as subscribed, an install was stored (and a reconcile recorded the topic
    made) with no subscription; asked again, one that was made answers "taken"."""
    data = client.execute(
        SUBSCRIBE_MUTATION, {"topic": _topic_enum(topic), "sub": {"uri": uri, "format": "JSON"}}
    )
    result = as_object(data.get("webhookSubscriptionCreate"))
    errors = [e.message for e in gql.user_errors(result)]
    if errors and not all("taken" in message for message in errors):
        raise ConnectorError(f"Shopify refused the {topic} subscription: {errors}")
    sub_id = as_object(result.get("webhookSubscription")).get("id")
    if isinstance(sub_id, str) and sub_id:
        return sub_id
    if errors:  # taken
        return ""
    raise TransientError(f"Shopify confirmed no {topic} subscription")


@dataclass(frozen=True)
class _Subscription:
    """One of the shop's webhook subscriptions, as ``webhookSubscriptions`` lists it."""

    id: str | None
    topic: str
    uri: str


def _former_address(uri: str, path: str | None) -> bool:
    """Whether ``uri`` is an http(s) URL whose path is ``path`` under some base URL:
    this shop's webhook address under an earlier ``PUBLIC_URL``."""
    if not path:
        return False
    parts = urlsplit(uri)
    return (parts.scheme in ("http", "https") and bool(parts.netloc)
            and (parts.path == path or parts.path.endswith("/" + path.lstrip("/"))))


def _move(client: gql.ShopifyGraphQL, sub: _Subscription, uri: str) -> None:
    """``webhookSubscriptionUpdate`` of ``sub`` to ``uri``. A refusal is a
    ``ConnectorError``; an answer with neither errors nor the subscription is
    ``TransientError`` (a proxy's, not a move Shopify confirmed)."""
    if not sub.id:
        raise TransientError(f"the {sub.topic} subscription to move has no id")
    data = client.execute(MOVE_MUTATION, {"id": sub.id, "sub": {"uri": uri}})
    result = as_object(data.get("webhookSubscriptionUpdate"))
    errors = [e.message for e in gql.user_errors(result)]
    if errors:
        raise ConnectorError(f"Shopify refused to move the {sub.topic} subscription: {errors}")
    if not isinstance(as_object(result.get("webhookSubscription")).get("id"), str):
        raise TransientError("unexpected webhookSubscriptionUpdate answer")


def _unsubscribe(client: gql.ShopifyGraphQL, sub: _Subscription) -> None:
    """``webhookSubscriptionDelete`` of ``sub``, as ``_move`` reads its answer, except
    that "Webhook subscription does not exist" is done, not refused: the subscription is
    gone (deleted since the listing, or by a run whose answer was lost), which is what
    deleting it was for; backing off would only ask again for the same answer."""
    if not sub.id:
        raise TransientError(f"the {sub.topic} subscription to delete has no id")
    data = client.execute(UNSUBSCRIBE_MUTATION, {"id": sub.id})
    result = as_object(data.get("webhookSubscriptionDelete"))
    errors = [e.message for e in gql.user_errors(result)]
    if errors and all("does not exist" in message.lower() for message in errors):
        return
    if errors:
        raise ConnectorError(f"Shopify refused to delete the {sub.topic} subscription: "
                             f"{errors}")
    if not isinstance(result.get("deletedWebhookSubscriptionId"), str):
        raise TransientError("unexpected webhookSubscriptionDelete answer")


def _listed(node: object) -> _Subscription:
    """One ``webhookSubscriptions`` entry. One that is no object or lacks its topic or
    address makes the listing a garbled answer (``TransientError``), not one to skip:
    acting on the rest would subscribe again a topic the entry held, or leave one it held
    at a former address or of a dropped topic delivering."""
    entry = as_object(node)
    topic, uri, sub_id = entry.get("topic"), entry.get("uri"), entry.get("id")
    if not isinstance(topic, str) or not isinstance(uri, str):
        raise TransientError("unexpected webhookSubscriptions entry")
    return _Subscription(sub_id if isinstance(sub_id, str) and sub_id else None, topic, uri)


#: Most ``webhookSubscriptions`` pages read (100 each): ours are about twenty.
_MAX_WEBHOOK_PAGES = 20


def _webhook_state(client: gql.ShopifyGraphQL) -> tuple[set[str], list[_Subscription]]:
    """The token's granted scopes (a ``write_`` one grants its ``read_`` too) and the
    shop's subscriptions. An answer without the scopes or the subscriptions is a
    ``TransientError``: read as none, every topic would be skipped or created again, and
    it is no refusal either (Shopify's are its ``errors``). So is a listing with an entry
    that is not a subscription (``_listed``)."""
    granted: set[str] | None = None
    subscribed: list[_Subscription] = []
    cursor: str | None = None
    for _ in range(_MAX_WEBHOOK_PAGES):
        data = client.execute(WEBHOOKS_QUERY, {"after": cursor})
        installation = data.get("currentAppInstallation")
        page = data.get("webhookSubscriptions")
        scopes = as_object(installation).get("accessScopes")
        if not isinstance(scopes, list) or not isinstance(page, dict) \
                or not isinstance(page.get("nodes"), list):
            raise TransientError("unexpected webhookSubscriptions answer")
        if granted is None:
            granted = {h for s in scopes if isinstance(h := as_object(s).get("handle"), str)}
        subscribed += [_listed(node) for node in page["nodes"]]
        info = as_object(page.get("pageInfo"))
        cursor = info.get("endCursor") if info.get("hasNextPage") else None
        if not isinstance(cursor, str) or not cursor:
            break
    else:
        raise ConnectorError("too many webhookSubscriptions pages")
    granted = granted or set()
    return granted | {"read_" + s[len("write_"):] for s in granted
                      if s.startswith("write_")}, subscribed
