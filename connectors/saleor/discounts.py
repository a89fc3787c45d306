"""``DiscountSpec`` -> Saleor voucher: ``voucherCreate`` then its channel listing (value)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.errors import InvalidPayload
from connectors.records import DiscountSpec

__all__ = ["channel_input", "voucher_input"]

_TYPES = {"percent": "PERCENTAGE", "fixed": "FIXED", "free_shipping": "PERCENTAGE"}

#: How far back a voucher's ``startDate`` is set: Saleor only applies a voucher whose start
#: is at or before *its* clock (``start_date__lte=now``), so a code handed out at once was
#: refused as not yet active while Saleor's clock lagged ours. Only the start moves.
START_LEEWAY = timedelta(minutes=1)


def _value_type(spec: DiscountSpec) -> str:
    # free shipping with a value: at most that much off shipping (Saleor has no price cap)
    if spec.kind == "free_shipping" and spec.value > 0:
        return "FIXED"
    return _TYPES[spec.kind]


def voucher_input(spec: DiscountSpec, *, now: datetime | None = None) -> dict[str, Any]:
    """A single-code voucher, once per customer, limited uses, optional product scope."""
    if spec.kind == "free_shipping":
        voucher_type = "SHIPPING"
    elif spec.product_ids:
        voucher_type = "SPECIFIC_PRODUCT"
    else:
        voucher_type = "ENTIRE_ORDER"
    data: dict[str, Any] = {
        "name": f"Shopkeeper offer {spec.code}",
        "addCodes": [spec.code],
        "type": voucher_type,
        "discountValueType": _value_type(spec),
        "startDate": ((now or datetime.now(UTC)) - START_LEEWAY).isoformat(),
        "endDate": spec.expires_at.isoformat(),
        "usageLimit": spec.usage_limit,
        "applyOncePerCustomer": True,
    }
    if spec.product_ids:
        data["products"] = list(spec.product_ids)
        if spec.kind == "fixed":
            # Saleor takes a FIXED product voucher off every unit of the product; once per
            # order (the cheapest unit) keeps the saving at most the offer's amount.
            data["applyOncePerOrder"] = True
    return data


def channel_input(spec: DiscountSpec, channel_id: str) -> dict[str, Any]:
    """The voucher's value (and minimum spend) in our channel."""
    if spec.kind == "percent" and not 0 < spec.value <= 100:
        raise InvalidPayload("percent out of range", {"value": ["must be in (0, 100]"]})
    value = "100" if spec.kind == "free_shipping" and spec.value <= 0 else str(spec.value)
    listing: dict[str, Any] = {"channelId": channel_id, "discountValue": value}
    if spec.min_subtotal is not None:
        listing["minAmountSpent"] = str(spec.min_subtotal)
    return {"addChannels": [listing]}
