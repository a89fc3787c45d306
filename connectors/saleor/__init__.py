"""Saleor: JWS/JWKS-verified webhooks, relay-cursor backfill, vouchers, app manifest.

Credentials: ``shop_domain`` (the Saleor host), ``api_url`` (``https://host/graphql/``,
also where the JWKS is found), ``access_token`` (the app token from ``/api/register``),
``extra["channel"]`` (the storefront channel's slug: prices, availability) and
``extra["channel_id"]`` (the same channel's id: vouchers); see ``channels.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import requests

from connectors import register
from connectors.base import Connector, ConnectorMeta, header
from connectors.errors import AuthFailed, InvalidPayload, NotSupported, TransientError
from connectors.guarded_http import make_guarded_session
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
from connectors.saleor import discounts, jwks, mapping, queries, webhooks
from connectors.saleor.channels import CHANNELS_QUERY, Channel, parse_channels, shop_channel
from connectors.saleor.client import SaleorGraphQL, confirmed_id, refused

__all__ = ["SaleorConnector", "app_webhook_names"]

PERMISSIONS = ("MANAGE_PRODUCTS", "MANAGE_ORDERS", "MANAGE_USERS", "MANAGE_CHECKOUTS",
               "MANAGE_DISCOUNTS")

#: ``identifier`` is the manifest ``id`` the app was installed from (Saleor 3.19+): it tells
#: our app's token from any other app's token on the same instance.
APP_INFO_QUERY = ("query { app { id identifier webhooks { name } } "
                  "channels { id slug name currencyCode isActive } }")
APP_ID_QUERY = "query { app { id } }"
#: The permissions the token's app was granted (any app may read its own).
APP_PERMISSIONS_QUERY = "query { app { permissions { code } } }"
#: What creating, finding and deleting vouchers needs.
DISCOUNT_PERMISSIONS = ("MANAGE_DISCOUNTS",)
#: What backfilling each resource needs (unpublished products, customers, orders).
READ_PERMISSIONS = {"products": ("MANAGE_PRODUCTS",), "customers": ("MANAGE_USERS",),
                    "orders": ("MANAGE_ORDERS",)}

#: JWKS fetches (webhook receipt, Dashboard sign-in) answer within Saleor's 20 s limit and
#: never follow redirects or read more than a key set needs.
JWKS_HTTP = {"retries": 1, "backoff": 0.2, "timeout": (2.0, 5.0), "deadline": 10.0,
             "max_body": 256 * 1024}

#: syncs of a public-only install: the retrying session's tries and timeouts, with a
#: deadline per call that a slow page never reaches and a cap no page comes near
SYNC_HTTP = {"retries": 5, "backoff": 0.5, "timeout": (5.0, 30.0), "deadline": 300.0,
             "max_body": 64 * 1024 * 1024}

#: Marks an orders cursor issued for the LAST_MODIFIED_AT order (see ``iter_orders``).
ORDER_CURSOR = "lm:"
#: ``voucherCreate`` error codes for a code that exists already (``DiscountErrorCode``).
CODE_TAKEN = frozenset({"ALREADY_EXISTS", "UNIQUE"})

APP_WEBHOOKS_QUERY = """
query { app { webhooks {
  id name targetUrl isActive subscriptionQuery asyncEvents { eventType } } } }"""

WEBHOOK_UPDATE = """
mutation WebhookUpdate($id: ID!, $input: WebhookUpdateInput!) {
  webhookUpdate(id: $id, input: $input) { webhook { id } errors { field code message } }
}"""

WEBHOOK_CREATE = """
mutation WebhookCreate($input: WebhookCreateInput!) {
  webhookCreate(input: $input) { webhook { id } errors { field code message } }
}"""


@register
class SaleorConnector(Connector):
    """One Saleor instance that installed the app."""

    meta = ConnectorMeta(
        key="saleor",
        name="Saleor",
        webhook_topics=webhooks.TOPICS,
        scopes=PERMISSIONS,
        capabilities=frozenset({"webhooks", "backfill", "discounts", "install"}),
    )

    jwks_cache: jwks.JWKSCache = jwks.DEFAULT_CACHE
    _jwks_session: requests.Session | None = None

    @property
    def public_only(self) -> bool:
        """Registered without an allow-list, so only as a public host: every call stays so.

        The check at registration alone would let the host's DNS later point inward, and
        webhook receipt (JWKS) and syncs would then call internal addresses for whoever
        controls that name. Each connection's peer is checked instead.

        Only an explicit ``False`` lifts it: an install stored before the flag existed
        (or with a value that is not a boolean) is public-only, unless the caller, who
        knows the operator's allow-list, says otherwise (``plugin.shops.connector_for``).
        """
        return self.credentials.extra.get("public_only", True) is not False

    @property
    def session(self) -> requests.Session:
        """The sync session; for a public-only install, one that connects to public peers only."""
        if self._session is None and self.public_only:
            self._session = make_guarded_session(public_only=True, **SYNC_HTTP)
        return super().session

    def jwks_session(self) -> requests.Session:
        """The bounded session for JWKS fetches (never the long-running sync session)."""
        if self._jwks_session is None:
            self._jwks_session = make_guarded_session(public_only=self.public_only, **JWKS_HTTP)
        return self._jwks_session

    def _api_url(self) -> str:
        if not self.credentials.api_url:
            raise AuthFailed("shop has no Saleor API URL")
        return self.credentials.api_url

    # -- webhooks -------------------------------------------------------------------------
    def verify_webhook(
        self, headers: Mapping[str, str], raw_body: bytes, *, now: float | None = None
    ) -> None:
        """RS256 detached JWS over the raw body, keyed by the *stored* instance's JWKS.

        The request's ``Saleor-Api-Url`` header is never used to find keys: an attacker
        would simply point it at their own JWKS.
        """
        jwks.verify_detached_jws(
            header(headers, webhooks.SIGNATURE_HEADER),
            raw_body,
            api_url=self.credentials.api_url or "",
            session=self.jwks_session(),
            cache=self.jwks_cache,
        )

    def verify_dashboard_token(
        self, token: str | None, required_permissions: tuple[str, ...] = ("MANAGE_PRODUCTS",)
    ) -> dict[str, Any]:
        """Claims of the Dashboard user calling our settings page (raises ``SignatureInvalid``)."""
        return jwks.verify_dashboard_token(
            token,
            api_url=self.credentials.api_url or "",
            app_id=self.credentials.extra.get("app_id", ""),
            session=self.jwks_session(),
            required_permissions=required_permissions,
            cache=self.jwks_cache,
        )

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookEvent:
        """Subscription payload -> normalized event (no HTTP)."""
        return webhooks.parse_delivery(
            headers, raw_body, channel=self.credentials.extra.get("channel"),
            app_id=self.credentials.extra.get("app_id") or None,
        )

    # -- install --------------------------------------------------------------------------
    def complete_install(self, params: Mapping[str, str]) -> Any:
        """Saleor installs through ``/api/register`` (see ``plugin/install``), not a callback."""
        raise NotSupported("Saleor installs through the manifest and /api/register")

    def app_info(self) -> dict[str, Any]:
        """The token's app (id, manifest identifier, webhook names) and the channels.

        Raises ``SchemaLacksField`` on a Saleor older than 3.19 (no ``App.identifier``).
        """
        return self._client().execute(APP_INFO_QUERY)

    def channels(self) -> list[Channel]:
        """The shop's channels now (the merchant's choice is checked against them)."""
        return parse_channels(self._client().execute(CHANNELS_QUERY).get("channels"))

    def sold_currencies(self) -> frozenset[str]:
        """The currency of the shop's channel (``channels``: any app token may list them).

        The shop is that one channel: its prices are mirrored and its vouchers listed
        there, and a cart in another channel's currency gets no offer (no voucher applies
        there: ``plugin.offers.pricing``), so the merchant sets no figures for the other
        channels, active or not. A channel Saleor no longer has sells nothing; an answer
        without the channel list, or the channel without its currency, is
        ``TransientError`` (read as "sells nothing" it would replace a good reading).

        A shop stored with its channel's slug only has the id it was found by kept, as
        ``_channel_id`` does: the sync's orders would otherwise list the channels again."""
        listed = self._client().execute(CHANNELS_QUERY).get("channels")
        channels = parse_channels(listed)
        if not isinstance(listed, list) or len(channels) != len(listed):
            raise TransientError("Saleor listed no channels, or one without its id or slug")
        extra = self.credentials.extra
        ours = shop_channel(channels, extra.get("channel_id"), extra.get("channel"))
        if ours is None:
            return frozenset()
        if not extra.get("channel_id") and extra.get("channel") == ours.slug:
            self._learn_channel_id(ours.id)
        sold = currency_codes([ours.currency])
        if not sold:
            raise TransientError(f"Saleor named no currency for channel {ours.slug}")
        return sold

    def token_app_id(self) -> str | None:
        """The id of the app the token belongs to; None when Saleor knows no such app.

        ``AuthFailed`` too means the token is dead (a removed app's token).
        """
        app = self._client().execute(APP_ID_QUERY).get("app")
        return str(app["id"]) if isinstance(app, dict) and app.get("id") else None

    def subscribe_webhooks(self, definitions: list[dict[str, Any]]) -> list[str]:
        """Create our webhooks with the app token (marketplace installs); returns their ids.

        An answer naming no webhook made is ``TransientError``: the install is refused
        and tried again (it skips the webhooks that exist), not stored without them."""
        client = self._client()
        return [confirmed_id(client.mutate(WEBHOOK_CREATE, {"input": definition},
                                           "webhookCreate", confirms="webhook")["webhook"])
                for definition in definitions]

    def refresh_webhooks(self, definitions: list[dict[str, Any]]) -> dict[str, list[str]]:
        """Bring our webhooks on Saleor up to ``definitions``: create the missing, update
        those whose query, events or target differ, and re-enable those switched off.

        Saleor keeps the subscription queries an app registered at install; a newer
        Shopkeeper that asks for more (e.g. ``issuedAt``) reaches installed shops only by
        ``webhookUpdate``. A webhook deactivated (in the Dashboard or through the API)
        stays so and its events are lost, so it is switched back on with the same
        ``webhookUpdate``. Returns the names ``created``, ``updated`` and, among the
        updated, ``reactivated``.

        A listing Saleor did not give in full (no ``app``, no ``webhooks`` list, an entry
        that is no object, a webhook to update without its id) is ``TransientError``: read
        as "none there", every webhook was created again beside the old; ``have["id"]``
        raised KeyError, a crash instead of a connector error.
        """
        client = self._client()
        current = _webhooks_by_name(client.execute(APP_WEBHOOKS_QUERY))
        done: dict[str, list[str]] = {"created": [], "updated": [], "reactivated": []}
        for definition in definitions:
            have = current.get(definition["name"])
            if have is None:
                client.mutate(WEBHOOK_CREATE, {"input": definition}, "webhookCreate",
                              confirms="webhook")
                done["created"].append(definition["name"])
            elif _webhook_differs(have, definition):
                update = {k: definition[k] for k in ("query", "asyncEvents", "targetUrl",
                                                      "isActive") if k in definition}
                hook_id = confirmed_id(have)
                if not hook_id:
                    raise TransientError(f"Saleor listed webhook {definition['name']} "
                                         "without its id")
                client.mutate(WEBHOOK_UPDATE, {"id": hook_id, "input": update},
                              "webhookUpdate", confirms="webhook")
                done["updated"].append(definition["name"])
                if _deactivated(have) and update.get("isActive"):
                    done["reactivated"].append(definition["name"])
        return done

    # -- backfill -------------------------------------------------------------------------
    def _client(self) -> SaleorGraphQL:
        if not self.credentials.access_token:
            raise AuthFailed("shop has no Saleor app token")
        return SaleorGraphQL(self.session, self._api_url(), self.credentials.access_token)

    def iter_products(self, cursor: str | None = None) -> Iterator[Page[Product]]:
        """Products, 100 per relay page."""
        channel = self.credentials.extra.get("channel")
        return self._client().pages(
            queries.PRODUCTS_QUERY,
            "products",
            lambda node: mapping.product_from_node(node, channel=channel),
            cursor=cursor,
        )

    def iter_customers(self, cursor: str | None = None) -> Iterator[Page[Customer]]:
        """Customers, 100 per relay page."""
        return self._client().pages(
            queries.CUSTOMERS_QUERY, "customers", mapping.customer_from_user, cursor=cursor
        )

    def iter_orders(
        self, since: datetime | None = None, cursor: str | None = None
    ) -> Iterator[Page[Order]]:
        """Orders updated at/after ``since``, 100 per relay page, oldest change first.

        In last-modified order an order changed during the run moves ahead of the cursor
        and is read by this run, so the watermark it ends with (the newest ``updatedAt``
        seen) never passes a change it missed. Only the shop's channel's orders: Saleor
        filters by its id, and any other channel's order still listed is left out.
        """
        extra: dict[str, Any] = {"sortBy": {"field": "LAST_MODIFIED_AT", "direction": "ASC"}}
        filters: dict[str, Any] = {}
        if since:
            filters["updatedAt"] = {"gte": since.isoformat()}
        channel_id = self._channel_id()
        if channel_id:
            filters["channels"] = [channel_id]
        if filters:
            extra["filter"] = filters
        channel = self.credentials.extra.get("channel")
        # Saleor refuses a cursor issued under another sort: one saved before this order
        # (unmarked) starts the pass again instead of failing every run
        after = cursor[len(ORDER_CURSOR):] if (cursor or "").startswith(ORDER_CURSOR) else None
        pages = self._client().pages(
            queries.ORDERS_QUERY, "orders",
            lambda node: mapping.order_from_node(node) if mapping.in_channel(node, channel)
            else None,
            cursor=after, extra=extra,
        )
        for page in pages:
            marked = None if page.next_cursor is None else ORDER_CURSOR + page.next_cursor
            ours = [o for o in page.items if o is not None]
            yield replace(page, items=ours, ignored=len(page.items) - len(ours),
                          next_cursor=marked)

    def _channel_id(self) -> str | None:
        """The shop's channel's id. A shop stored with the slug only (installed before the
        id was kept, or added with ``shops add``) would have every channel's orders listed
        and filtered here on each run: the id is looked up by slug (``channels``) and put
        in ``learned`` for the caller to store. None while Saleor has no such channel."""
        extra = self.credentials.extra
        if extra.get("channel_id") or not extra.get("channel"):
            return extra.get("channel_id") or None
        found = next((c for c in self.channels() if c.slug == extra["channel"]), None)
        if found is None:
            return None
        self._learn_channel_id(found.id)
        return found.id

    def _learn_channel_id(self, channel_id: str) -> None:
        """Use the channel id looked up for a shop stored by slug from now on, and put it
        in ``learned`` for the caller to store."""
        self.credentials = replace(self.credentials, extra={**self.credentials.extra,
                                                            "channel_id": channel_id})
        self.learned["channel_id"] = channel_id

    # -- discounts ------------------------------------------------------------------------
    def create_discount(self, spec: DiscountSpec) -> DiscountRef:
        """``voucherCreate`` with one code, then its value in our channel.

        Only Saleor's ``errors`` are its refusal (``InvalidPayload``). An answer of another
        shape to either call (no object, no voucher id) is far likelier a proxy's or gateway's than
        Saleor's, and a retry adopts a voucher it may have made: ``TransientError``, as
        Shopify's and Vendure's garbled answers are."""
        channel_id = self.credentials.extra.get("channel_id")
        if not channel_id:
            raise InvalidPayload("no Saleor channel configured", {"channel_id": ["required"]})
        client = self._client()
        listing = discounts.channel_input(spec, channel_id)  # validates before creating
        created = client.execute(
            queries.VOUCHER_CREATE_MUTATION, {"input": discounts.voucher_input(spec)},
        ).get("voucherCreate") or {}
        if not isinstance(created, dict):
            raise TransientError("unexpected voucherCreate answer: not an object")
        errors = created.get("errors") or []
        voucher_id = as_object(created.get("voucher")).get("id")
        if errors and _error_codes(errors) <= CODE_TAKEN:
            # An earlier attempt whose answer was lost made it: the code is ours, reuse it
            # (and set its value below, in case that attempt got no further).
            voucher_id = self.find_discount(spec.code)
            if not voucher_id:
                # the search may not show it yet: retried, as Shopify's TAKEN code that
                # codeDiscountNodeByCode cannot find is, not withdrawn for good
                raise TransientError("the voucher code is taken, but no voucher with it "
                                     "was found")
        elif errors:
            raise refused("voucherCreate", errors)
        if not voucher_id or not isinstance(voucher_id, str):
            raise TransientError("Saleor returned no voucher")
        _set_value(client, voucher_id, listing)
        return DiscountRef(platform_id=voucher_id, code=spec.code, expires_at=spec.expires_at)

    def missing_discount_permissions(self) -> tuple[str, ...]:
        """The discount permissions the token's app lacks (``DISCOUNT_PERMISSIONS``)."""
        granted = self._granted_permissions()
        return tuple(p for p in DISCOUNT_PERMISSIONS if p not in granted)

    def missing_read_permissions(self, resource: str) -> tuple[str, ...]:
        """The ``READ_PERMISSIONS`` of ``resource`` the token's app lacks."""
        granted = self._granted_permissions()
        return tuple(p for p in READ_PERMISSIONS.get(resource, ()) if p not in granted)

    def _granted_permissions(self) -> set[str]:
        """The permissions of the token's app. Saleor answers a token it does not know as
        it answers a missing permission, so that (no app, or the query itself refused)
        raises ``AuthFailed``."""
        app = self._client().execute(APP_PERMISSIONS_QUERY).get("app")
        if not isinstance(app, dict):
            raise AuthFailed("Saleor knows no app for this token")
        listed = app.get("permissions")
        if not isinstance(listed, list):
            raise TransientError("Saleor named no permissions for the app")
        return {str(as_object(p).get("code")) for p in listed}

    def find_discount(self, code: str) -> str | None:
        """The id of the voucher with this code (``vouchers`` searched by it), or None."""
        found = self._client().execute(queries.VOUCHERS_BY_CODE, {"code": code})
        for edge in _list(as_object(found.get("vouchers")).get("edges")):
            node = as_object(as_object(edge).get("node"))
            codes = _list(as_object(node.get("codes")).get("edges"))
            if any(as_object(as_object(c).get("node")).get("code") == code for c in codes):
                found_id = node.get("id")
                return found_id if isinstance(found_id, str) and found_id else None
        return None

    def delete_discount(self, ref: DiscountRef) -> None:
        """``voucherDelete``; a voucher deleted already (``NOT_FOUND``) counts as done.

        Saleor's answer to a deletion names the voucher deleted: one that names none is
        ``TransientError``, so the offer keeps its reference and the delete is retried
        (read as done, the voucher stayed on Saleor for good)."""
        try:
            self._client().mutate(queries.VOUCHER_DELETE_MUTATION, {"id": ref.platform_id},
                                  "voucherDelete", confirms="voucher")
        except InvalidPayload as err:
            if not any("not found" in m.lower() or "couldn't resolve" in m.lower()
                       for messages in err.errors.values() for m in messages):
                raise


def _set_value(client: SaleorGraphQL, voucher_id: str, listing: dict[str, Any]) -> None:
    """``voucherChannelListingUpdate``: the voucher's value in our channel.

    The voucher exists by now, so an answer of no readable shape (a proxy's) is
    ``TransientError``: the offer stays open, and its retry finds the code taken, adopts
    this voucher and sets its value then. Read as Saleor's refusal, it withdrew the offer
    for good. Only Saleor's own ``errors`` are that (``InvalidPayload``)."""
    answer = client.execute(queries.VOUCHER_CHANNEL_MUTATION,
                            {"id": voucher_id, "input": listing}).get("voucherChannelListingUpdate")
    if not isinstance(answer, dict):
        raise TransientError("unexpected voucherChannelListingUpdate answer: not an object")
    if answer.get("errors"):
        raise refused("voucherChannelListingUpdate", answer["errors"])


def _error_codes(errors: Any) -> set[str | None]:
    """The ``code`` of each entry of a mutation's ``errors``, None for an entry that is no
    object or a code that is no string (they raised AttributeError or TypeError)."""
    return {code if isinstance(code := as_object(e).get("code"), str) else None
            for e in _list(errors)}


def _list(value: Any) -> list[Any]:
    """``value`` when it is a list, a lone value as a list of it, nothing as none."""
    return value if isinstance(value, list) else [value] if value else []


def app_webhook_names(app: Mapping[str, Any]) -> set[str]:
    """The names of the app's webhooks in an ``APP_INFO_QUERY`` answer's ``app``. A
    listing Saleor did not give in full is ``TransientError``, as for
    ``refresh_webhooks``: read as none, every webhook was created again beside the old."""
    return {name for name in _webhooks_by_name({"app": app}) if isinstance(name, str)}


def _webhooks_by_name(data: Mapping[str, Any]) -> dict[Any, dict[str, Any]]:
    """The app's webhooks in an ``APP_WEBHOOKS_QUERY`` answer, by name."""
    listed = as_object(data.get("app")).get("webhooks")
    if not isinstance(listed, list) or not all(isinstance(w, dict) for w in listed):
        raise TransientError("Saleor listed no webhooks of the app")
    return {w.get("name"): w for w in listed}


def _deactivated(have: Mapping[str, Any]) -> bool:
    """Whether Saleor says the webhook is switched off (an answer without ``isActive``
    says nothing, and counts as on)."""
    return have.get("isActive") is False


def _webhook_differs(have: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether Saleor's webhook ``have`` is not the one ``wanted`` (queries compared
    without whitespace, events as sets, and a deactivated one where we want it active)."""
    def squeeze(query: Any) -> str:
        return "".join(str(query or "").split())

    events = {e.get("eventType") for e in have.get("asyncEvents") or () if isinstance(e, dict)}
    return (squeeze(have.get("subscriptionQuery")) != squeeze(wanted.get("query"))
            or events != set(wanted.get("asyncEvents") or ())
            or have.get("targetUrl") != wanted.get("targetUrl")
            or (_deactivated(have) and wanted.get("isActive") is not False))
