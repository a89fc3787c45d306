"""Admin API JSON -> normalized records.

Vendure stores money as integers in minor units (its ``DefaultMoneyStrategy`` uses precision 2
for every currency); prices are taken *with tax*, which is what a shopper sees and pays.
A channel selling several currencies prices each variant in every one (``prices``, the list
price as stored: with tax where the channel's prices include it); those are taken with tax
too, as Vendure computes ``priceWithTax`` (``_gross``).
Timestamps are the newest of the entity's own ``updatedAt`` and the rows that change with it
(variants and stock levels for products, placement for orders), because Vendure does not bump
``Product.updatedAt`` on a price or stock change and the plugin ignores older ``updated_at``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.errors import InvalidPayload
from connectors.parsing import check_amount, parse_datetime, to_decimal
from connectors.records import Cart, Customer, LineItem, Order, Product, Variant

__all__ = [
    "CART_STATES",
    "MappingOptions",
    "to_cart",
    "to_customer",
    "to_order",
    "to_product",
]

#: Order states in which a Vendure order is still a basket (``active``), not a placed order.
CART_STATES: frozenset[str] = frozenset({"Created", "Draft", "AddingItems", "ArrangingPayment"})
OUT_OF_STOCK = "OUT_OF_STOCK"


@dataclass(frozen=True, slots=True)
class MappingOptions:
    """Shop-specific choices a merchant can set in ``Credentials.extra``."""

    precision: int = 2
    product_url_template: str | None = None  # e.g. "https://shop.example/products/{slug}"
    brand_facet: str = "brand"

    def money(self, minor: Any, field: str = "price") -> Decimal:
        """Integer minor units -> Decimal major units (exact, never via float)."""
        if not isinstance(minor, int) or isinstance(minor, bool):
            raise InvalidPayload(f"{field} is not an integer", {field: ["expected minor units"]})
        return check_amount(to_decimal(minor, field=field, bounded=False)
                            .scaleb(-self.precision), field)


def _latest(*values: str | None) -> datetime:
    stamps = [parse_datetime(v) for v in values if v]
    if not stamps:
        raise InvalidPayload("record has no updatedAt", {"updatedAt": ["missing"]})
    return max(stamps)


def _gross(list_price: int, rate: float, includes_tax: bool) -> int:
    """A list price with tax, rounded as Vendure's ``DefaultMoneyStrategy`` rounds
    ``ProductVariant.priceWithTax`` (``Math.round`` of ``net + net * rate / 100``)."""
    if includes_tax:
        return list_price
    return math.floor(list_price + list_price * (rate / 100) + 0.5)


def _prices(raw: dict[str, Any], opts: MappingOptions) -> dict[str, Decimal]:
    """The variant's price with tax in each currency it is listed in; none when its own
    currency's list price does not give back its ``price``/``priceWithTax`` (a custom price
    calculation, or a tax zone other than the channel's default: not guessed)."""
    listed = {p["currencyCode"]: p["price"] for p in raw.get("prices") or []}
    own = listed.get(raw.get("currencyCode"))
    rate = (raw.get("taxRateApplied") or {}).get("value")
    if own is None or not isinstance(rate, int | float) or isinstance(rate, bool):
        return {}
    for includes_tax, same in ((True, raw["priceWithTax"]), (False, raw["price"])):
        if own == same and _gross(own, rate, includes_tax) == raw["priceWithTax"]:
            return {code: opts.money(_gross(price, rate, includes_tax), "prices")
                    for code, price in listed.items() if isinstance(price, int)}
    return {}


def _variant(raw: dict[str, Any], opts: MappingOptions) -> Variant:
    levels = raw.get("stockLevels") or []
    qty = sum(lv["stockOnHand"] - lv["stockAllocated"] for lv in levels) if levels else None
    available = bool(raw.get("enabled", True)) and raw.get("stockLevel") != OUT_OF_STOCK
    return Variant(
        external_id=str(raw["id"]),
        title=raw.get("name") or "",
        sku=raw.get("sku") or None,
        price=opts.money(raw["priceWithTax"], "priceWithTax"),
        available=available,
        inventory_qty=qty,
        prices=_prices(raw, opts),
    )


def to_product(raw: dict[str, Any], opts: MappingOptions) -> Product:
    """A Vendure ``Product`` (with variants, facets, collections) as a ``Product`` record."""
    variants = tuple(_variant(v, opts) for v in raw.get("variants") or [])
    for_sale = [v for v in variants if v.available] or list(variants)
    prices = [v.price for v in for_sale if v.price is not None]
    facets = raw.get("facetValues") or []
    brand = next((f["name"] for f in facets if f["facet"]["code"] == opts.brand_facet), None)
    stamps = [raw.get("updatedAt")]
    for v in raw.get("variants") or []:
        stamps.append(v.get("updatedAt"))
        stamps.extend(lv.get("updatedAt") for lv in v.get("stockLevels") or [])
    url = None
    if opts.product_url_template:
        url = opts.product_url_template.format(slug=raw.get("slug", ""), id=raw["id"])
    currencies = {v.get("currencyCode") for v in raw.get("variants") or []} - {None}
    by_currency: dict[str, Decimal] = {}
    for v in for_sale:
        for code, amount in v.prices.items():
            by_currency[code] = min(amount, by_currency.get(code, amount))
    return Product(
        external_id=str(raw["id"]),
        title=raw.get("name") or "",
        updated_at=_latest(*stamps),
        description=raw.get("description") or "",
        url=url,
        image_url=(raw.get("featuredAsset") or {}).get("preview"),
        categories=tuple(c["name"] for c in raw.get("collections") or []),
        tags=tuple(f"{f['facet']['code']}:{f['code']}" for f in facets),
        vendor=brand,
        price=min(prices) if prices else None,
        currency=min(currencies) if currencies else None,
        available=bool(raw.get("enabled", True)) and any(v.available for v in variants),
        variants=variants,
        prices=by_currency,
    )


def to_customer(raw: dict[str, Any]) -> Customer:
    """A Vendure ``Customer``; only the id, email and timestamps cross over."""
    return Customer(
        external_id=str(raw["id"]),
        updated_at=_latest(raw.get("updatedAt")),
        email=raw.get("emailAddress") or None,
        created_at=parse_datetime(raw["createdAt"], field="createdAt")
        if raw.get("createdAt")
        else None,
    )


def _lines(raw: dict[str, Any], opts: MappingOptions) -> tuple[LineItem, ...]:
    lines = []
    for line in raw.get("lines") or []:
        if line["quantity"] <= 0:
            continue  # removed from the basket but kept as a zero line by Vendure
        variant = line["productVariant"]
        lines.append(
            LineItem(
                product_id=str(variant["product"]["id"]),
                variant_id=str(variant["id"]),
                quantity=int(line["quantity"]),
                price=opts.money(line["proratedUnitPriceWithTax"], "proratedUnitPriceWithTax"),
            )
        )
    return tuple(lines)


def _customer_id(raw: dict[str, Any]) -> str | None:
    customer = raw.get("customer")
    return str(customer["id"]) if customer else None


def to_order(raw: dict[str, Any], opts: MappingOptions) -> Order:
    """A placed Vendure order; line prices are what was paid per unit after discounts."""
    created = raw.get("orderPlacedAt") or raw["createdAt"]
    return Order(
        external_id=str(raw["id"]),
        created_at=parse_datetime(created, field="orderPlacedAt"),
        updated_at=_latest(raw.get("updatedAt"), raw.get("orderPlacedAt")),
        currency=raw["currencyCode"],
        lines=_lines(raw, opts),
        customer_id=_customer_id(raw),
        discount_codes=tuple(raw.get("couponCodes") or ()),
        total=opts.money(raw["totalWithTax"], "totalWithTax"),
        cancelled=raw.get("state") == "Cancelled",
    )


def to_cart(raw: dict[str, Any], opts: MappingOptions) -> Cart:
    """An active Vendure order (a basket) as a ``Cart``."""
    return Cart(
        external_id=str(raw["id"]),
        updated_at=_latest(raw.get("updatedAt")),
        lines=_lines(raw, opts),
        customer_id=_customer_id(raw),
        currency=raw.get("currencyCode"),
    )
