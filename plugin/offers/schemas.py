"""Marshmallow schemas of ``/api/v1/offers``: carts in, offers and discount codes out."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from connectors.parsing import MAX_AMOUNT, FullMatch
from plugin.fields import BoundedDecimal

MAX_LINES = 100
_ID = validate.Length(min=1, max=255)


class CartLineSchema(Schema):
    class Meta:
        unknown = RAISE

    product_id = fields.String(required=True, validate=_ID)
    variant_id = fields.String(validate=_ID, allow_none=True)
    quantity = fields.Integer(required=True, strict=True,
                              validate=validate.Range(min=1, max=10_000))
    price = BoundedDecimal(required=True, places=4, maximum=MAX_AMOUNT,
                           validate=validate.Range(min=0, max=MAX_AMOUNT))  # for the docs


class CartSchema(Schema):
    """The cart as the storefront shows it; the offer is bound to exactly these lines."""

    class Meta:
        unknown = RAISE

    currency = fields.String(required=True, validate=FullMatch(r"^[A-Za-z]{3}$"))
    lines = fields.List(fields.Nested(CartLineSchema), required=True,
                        validate=validate.Length(min=1, max=MAX_LINES))
    discount_codes = fields.List(fields.String(validate=_ID), load_default=list,
                                 validate=validate.Length(max=20))

    @validates_schema
    def _total_in_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        total = sum(line["price"] * line["quantity"] for line in data.get("lines", ()))
        if total > MAX_AMOUNT:
            raise ValidationError(f"The cart's total must be at most {MAX_AMOUNT}.", "lines")


class QuoteRequest(Schema):
    class Meta:
        unknown = RAISE

    cart = fields.Nested(CartSchema, required=True)


class TokenRequest(Schema):
    """Accept or dismiss: the signed offer token and the cart it was made for."""

    class Meta:
        unknown = RAISE

    token = fields.String(required=True, validate=validate.Length(min=10, max=4000))
    cart = fields.Nested(CartSchema, required=True)


class OfferSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    reason = fields.String(required=True)
    amount = fields.Decimal(as_string=True, required=True)
    currency = fields.String(required=True)
    percent = fields.Decimal(as_string=True, allow_none=True)
    discount_kind = fields.String(required=True)
    product_ids = fields.List(fields.String(), required=True)
    min_subtotal = fields.Decimal(as_string=True, allow_none=True)
    expires_at = fields.AwareDateTime(required=True)
    token = fields.String(required=True)


class FreeShippingSchema(Schema):
    threshold = fields.Decimal(as_string=True, required=True)
    remaining = fields.Decimal(as_string=True, required=True)
    reached = fields.Boolean(required=True)


class QuoteResponse(Schema):
    offer = fields.Nested(OfferSchema, allow_none=True, required=True)
    reason_code = fields.String(required=True)
    free_shipping = fields.Nested(FreeShippingSchema, allow_none=True, required=True)
    holdout = fields.Boolean(required=True)
    stage = fields.String(allow_none=True, required=True)


class AcceptResponse(Schema):
    offer_id = fields.String(required=True)
    code = fields.String(required=True)
    expires_at = fields.AwareDateTime(required=True)
    discount_token = fields.String(allow_none=True, required=True)


class UpliftQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    key = fields.String()
    days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=366))


class IntervalSchema(Schema):
    estimate = fields.Float(required=True)
    low = fields.Float(required=True)
    high = fields.Float(required=True)


class ArmSchema(Schema):
    shoppers = fields.Integer(required=True)
    converted = fields.Integer(required=True)
    conversion = fields.Float(allow_none=True, required=True)
    #: in the report's ``currency``; orders in other currencies are in ``other_revenue``
    revenue_per_visitor = fields.Float(allow_none=True, required=True)
    other_revenue = fields.Dict(keys=fields.String(), values=fields.Decimal(as_string=True),
                                required=True)


class UpliftResponse(Schema):
    since = fields.AwareDateTime(required=True)
    until = fields.AwareDateTime(required=True)
    #: the shop's currency (None: unknown); money in others is reported apart, per code
    currency = fields.String(allow_none=True, required=True)
    arms = fields.Dict(keys=fields.String(), values=fields.Nested(ArmSchema), required=True)
    conversion_uplift = fields.Nested(IntervalSchema, allow_none=True, required=True)
    revenue_per_visitor_uplift = fields.Nested(IntervalSchema, allow_none=True, required=True)
    method = fields.String(required=True)
    attributed = fields.Dict(required=True)
