"""Marshmallow schemas of the shopper API v1: every input validated, every output dumped."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

PLACEMENTS = ("for_you", "product", "cart", "reorder")
EVENT_TYPES = ("view", "click", "add_to_cart", "remove_from_cart", "wishlist", "purchase",
               "impression")
MAX_EVENTS = 50
MAX_N = 50
MAX_CART = 100
_ID = validate.Length(min=1, max=255)


class CommaList(fields.Field):
    """``p1,p2,p3`` in a query string -> ``["p1", "p2", "p3"]`` (empty parts dropped)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if not isinstance(value, str):
            raise ValidationError("Must be a comma-separated list of product ids.")
        items = [v.strip() for v in value.split(",") if v.strip()]
        if len(items) > MAX_CART:
            raise ValidationError(f"At most {MAX_CART} product ids.")
        if any(len(v) > 255 for v in items):
            raise ValidationError("Product ids are at most 255 characters.")
        return items


class RecommendationsQuery(Schema):
    """``GET /api/v1/recommendations`` query string."""

    class Meta:
        unknown = EXCLUDE  # cache busters and the key itself are not ours to judge

    placement = fields.String(required=True, validate=validate.OneOf(PLACEMENTS))
    n = fields.Integer(load_default=8, validate=validate.Range(min=1, max=MAX_N))
    product_id = fields.String(validate=_ID)
    cart = CommaList(load_default=list)

    @validates_schema
    def _product_needs_id(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("placement") == "product" and not data.get("product_id"):
            raise ValidationError("Required for placement=product.", "product_id")


class RecommendedItemSchema(Schema):
    product_id = fields.String(required=True)
    title = fields.String(required=True)
    url = fields.String(allow_none=True)
    image_url = fields.String(allow_none=True)
    price = fields.Decimal(as_string=True, allow_none=True)
    currency = fields.String(allow_none=True)
    reason = fields.String(required=True)
    source = fields.String(required=True)
    rec_id = fields.String(required=True)


class RecommendationsSchema(Schema):
    placement = fields.String(required=True)
    items = fields.List(fields.Nested(RecommendedItemSchema), required=True)
    holdout = fields.Boolean(required=True)
    personalized = fields.Boolean(required=True)


class EventSchema(Schema):
    class Meta:
        unknown = RAISE

    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    product_id = fields.String(validate=_ID)
    rec_id = fields.String(validate=validate.Length(min=1, max=64))
    quantity = fields.Integer(validate=validate.Range(min=1, max=10_000))
    at = fields.AwareDateTime(default_timezone=UTC)

    @validates_schema
    def _about_a_product(self, data: dict[str, Any], **kwargs: Any) -> None:
        """A view, click, cart or purchase event without its product teaches nothing."""
        if data.get("type") not in (None, "impression") and not data.get("product_id"):
            raise ValidationError(f"Required for a {data['type']} event.", "product_id")


class EventsRequest(Schema):
    """``POST /api/v1/events`` body (JSON; ``text/plain`` accepted for ``sendBeacon``)."""

    class Meta:
        unknown = RAISE

    events = fields.List(fields.Nested(EventSchema), required=True,
                         validate=validate.Length(min=1, max=MAX_EVENTS))


class StoredSchema(Schema):
    stored = fields.Integer(required=True)


class StrictBoolean(fields.Boolean):
    """JSON ``true``/``false`` only: marshmallow's truthy sets also match 1 and 0."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class ConsentSchema(Schema):
    """``POST /api/v1/consent`` body and answer."""

    class Meta:
        unknown = RAISE

    granted = StrictBoolean(required=True)


class WidgetsSchema(Schema):
    for_you = fields.Boolean(required=True)
    shopping_for = fields.Boolean(required=True)
    cart_offer = fields.Boolean(required=True)


class ConfigSchema(Schema):
    shop_id = fields.String(required=True)
    widgets = fields.Nested(WidgetsSchema, required=True)
    consent_required = fields.Boolean(required=True)
    currency = fields.String(allow_none=True)
    strings = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class KeyQuery(Schema):
    """The widget key (or the ``X-Shopkeeper-Key`` header)."""

    class Meta:
        unknown = EXCLUDE

    key = fields.String()
    shopper = fields.String(metadata={"description": "anonymous id, for sendBeacon only"})


class ProxyQuery(Schema):
    """What Shopify's app proxy appends to every forwarded request (signed together)."""

    class Meta:
        unknown = EXCLUDE

    shop = fields.String(required=True, metadata={"description": "<name>.myshopify.com"})
    logged_in_customer_id = fields.String(
        required=True, metadata={"description": "the signed-in customer; empty when none"})
    path_prefix = fields.String(required=True)
    timestamp = fields.String(required=True)
    signature = fields.String(required=True, metadata={
        "description": "hex HMAC-SHA256 with the app's client secret over the sorted "
                       "parameters"})
    shopper = fields.String(metadata={"description": "anonymous id, for sendBeacon only"})


class ProxyRecommendationsQuery(RecommendationsQuery, ProxyQuery):
    """``GET /recommendations`` through the app proxy."""
