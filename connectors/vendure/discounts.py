"""``DiscountSpec`` -> Vendure ``CreatePromotionInput`` (a coupon-code promotion).

Vendure enforces everything that matters for a one-off offer: the coupon code, the total and
per-customer usage limits, the end date, a minimum order amount and, through a one-member
customer group, who may use it. Amounts are integer minor units; arguments are strings
(JSON for lists), as ``ConfigurableOperationInput`` requires. Vendure takes those units in
whatever currency the order is in; where the Shopkeeper plugin adds its ``ORDER_CURRENCY``
condition, a promotion carries it and applies only to orders in the offer's currency.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connectors.errors import InvalidPayload
from connectors.records import DiscountSpec

__all__ = [
    "ORDER_CURRENCY",
    "check_currency",
    "default_tax_rate",
    "pins_currency",
    "promotion_input",
    "sold_currencies",
    "to_minor",
    "validate_spec",
]

#: The Shopkeeper Vendure plugin's promotion condition: true only for an order in its
#: ``currencyCode`` (``vendure-plugin/shopkeeper-plugin.js``).
ORDER_CURRENCY = "shopkeeper_order_currency"


def to_minor(amount: Decimal, precision: int = 2) -> int:
    """Decimal major units -> integer minor units (half-up, as a till would)."""
    return int(amount.scaleb(precision).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def default_tax_rate(setup: dict[str, Any]) -> Decimal:
    """Percent to take off a gross amount for an ``order_fixed_discount`` (``TAX_SETUP`` data).

    Vendure applies that action to the *net* subtotal when the channel's prices exclude tax,
    so the shopper would save amount x (1 + rate). The rate is the enabled one for the
    channel's default tax zone and the default tax category: exact for single-rate shops.
    """
    channel = setup["activeChannel"]
    zone = (channel.get("defaultTaxZone") or {}).get("id")
    if channel["pricesIncludeTax"] or zone is None:
        return Decimal(0)
    rates = [r for r in setup["taxRates"]["items"] if r["enabled"] and r["zone"]["id"] == zone]
    rates.sort(key=lambda r: not r["category"]["isDefault"])
    return Decimal(str(rates[0]["value"])) if rates else Decimal(0)


def sold_currencies(channel: dict[str, Any]) -> frozenset[str]:
    """The currencies an ``activeChannel`` sells in: its default and available ones."""
    sold = {str(c).upper() for c in channel.get("availableCurrencyCodes") or ()}
    if channel.get("defaultCurrencyCode"):
        sold.add(str(channel["defaultCurrencyCode"]).upper())
    return frozenset(sold)


def pins_currency(data: dict[str, Any]) -> bool:
    """Whether the server offers ``ORDER_CURRENCY`` (a ``promotionConditions`` answer):
    only where the Shopkeeper plugin, in a version that adds it, is installed."""
    conditions = data.get("promotionConditions") or ()
    return any(isinstance(c, dict) and c.get("code") == ORDER_CURRENCY for c in conditions)


def check_currency(spec: DiscountSpec, setup: dict[str, Any]) -> None:
    """Refuse an amount Vendure could take in a currency other than the offer's.

    ``order_fixed_discount`` and ``minimum_order_amount`` hold bare minor units and apply them
    to an order in whatever currency it is in, and an order follows the shopper's currency
    even after the coupon is on it (``OrderService`` re-prices it). With the plugin's
    ``ORDER_CURRENCY`` condition the promotion applies to orders in the offer's currency
    only, which the channel must sell; without it an amount is only exact in a channel that
    sells in the offer's currency alone (``TAX_SETUP`` data). A channel naming no currency
    is refused too, as the offers engine does not quote there.
    """
    sold = sold_currencies(setup["activeChannel"])
    if pins_currency(setup) and spec.currency and spec.currency.upper() in sold:
        return
    offered = {spec.currency.upper()} if spec.currency else sold
    if len(sold) != 1 or offered != sold:
        raise InvalidPayload(
            "Vendure would apply this amount in another currency",
            {"currency": [f"offer in {spec.currency or '?'}, channel sells {sorted(sold)}"]},
        )


def validate_spec(spec: DiscountSpec) -> None:
    """Reject what Vendure cannot express before anything is created there."""
    if spec.value <= 0 and spec.kind != "free_shipping":
        raise InvalidPayload("discount value must be positive", {"value": ["must be > 0"]})
    if spec.kind == "free_shipping" and spec.value > 0:
        # the default promotion set has no capped shipping action: ``free_shipping`` would
        # waive any shipping price, more than the ``value`` the offer was budgeted for
        raise InvalidPayload(
            "Vendure cannot cap a free-shipping discount",
            {"value": ["a maximum shipping discount is not supported"]},
        )
    if spec.kind == "percent" and spec.value > 100:
        raise InvalidPayload("a percentage cannot exceed 100", {"value": ["must be <= 100"]})
    if spec.kind != "percent" and spec.product_ids:
        raise InvalidPayload(
            "only percentage discounts can be limited to products on Vendure",
            {"product_ids": [f"not supported with kind={spec.kind}"]},
        )
    if spec.usage_limit < 1:
        raise InvalidPayload("usage limit must be at least 1", {"usage_limit": ["must be >= 1"]})
    if not spec.code.strip():
        raise InvalidPayload("a coupon code is required", {"code": ["empty"]})


def _op(code: str, **arguments: Any) -> dict[str, Any]:
    args = [
        {"name": k, "value": v if isinstance(v, str) else json.dumps(v)}
        for k, v in arguments.items()
    ]
    return {"code": code, "arguments": args}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def promotion_input(
    spec: DiscountSpec,
    *,
    variant_ids: list[str] | None = None,
    customer_group_id: str | None = None,
    precision: int = 2,
    tax_rate: Decimal = Decimal(0),
    pin_currency: bool = False,
) -> dict[str, Any]:
    """The ``createPromotion`` input for ``spec`` (variant ids resolved by the caller).

    ``startsAt`` is left out so the coupon works at once, whatever the clock skew. A fixed
    amount is gross (what the shopper saves); ``tax_rate`` (percent) turns it into the net
    amount Vendure expects when the channel's prices exclude tax. ``pin_currency`` adds the
    plugin's ``ORDER_CURRENCY`` condition for ``spec.currency`` (the caller checked the
    server has it), so the amounts apply to orders in that currency alone.
    """
    validate_spec(spec)
    if spec.kind == "percent" and variant_ids:
        action = _op(
            "products_percentage_discount", discount=str(spec.value), productVariantIds=variant_ids
        )
    elif spec.kind == "percent":
        action = _op("order_percentage_discount", discount=str(spec.value))
    elif spec.kind == "fixed":
        net = spec.value / (1 + tax_rate / 100)
        action = _op("order_fixed_discount", discount=str(to_minor(net, precision)))
    else:
        action = _op("free_shipping")
    conditions = []
    if spec.min_subtotal is not None:
        conditions.append(
            _op(
                "minimum_order_amount",
                amount=str(to_minor(spec.min_subtotal, precision)),
                taxInclusive="true",
            )
        )
    if customer_group_id is not None:
        conditions.append(_op("customer_group", customerGroupId=customer_group_id))
    if pin_currency:
        if not spec.currency:
            raise InvalidPayload("no currency to limit the offer to", {"currency": ["missing"]})
        conditions.append(_op(ORDER_CURRENCY, currencyCode=spec.currency.upper()))
    return {
        "enabled": True,
        "endsAt": _iso(spec.expires_at),
        "couponCode": spec.code,
        "usageLimit": spec.usage_limit,
        "perCustomerUsageLimit": 1,
        "conditions": conditions,
        "actions": [action],
        "translations": [
            {
                "languageCode": "en",
                "name": f"Shopkeeper offer {spec.code}",
                "description": "Created by Shopkeeper for a personal cart offer.",
            }
        ],
    }
