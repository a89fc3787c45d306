"""Marshmallow schemas for generic protocol bodies; each loads straight into a record.

Unknown fields are ignored (``EXCLUDE``) so stores can send richer objects than we need.
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from connectors.parsing import MAX_AMOUNT, FullMatch
from connectors.records import MAX_QUANTITY, Cart, Customer, LineItem, Order, Product

__all__ = ["SCHEMAS", "CartSchema", "CustomerSchema", "OrderSchema", "ProductSchema"]


class ExternalId(fields.Field):
    """An id as a string; stores often send integers, which we accept and stringify."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError("Must be a string or an integer.")
        text = str(value)
        if not 1 <= len(text) <= 255:
            raise ValidationError("Length must be between 1 and 255.")
        return text


class DecimalString(fields.Field):
    """Money as a decimal string ("12.50"); floats are refused because they lose cents."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError('Must be a decimal string such as "12.50".')
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ValidationError("Not a valid decimal.") from None
        if not amount.is_finite() or amount < 0:
            raise ValidationError("Must be a finite, non-negative amount.")
        if amount > MAX_AMOUNT:
            raise ValidationError(f"Must be at most {MAX_AMOUNT}.")
        return amount


class _UtcDateTime(fields.AwareDateTime):
    """An aware datetime in UTC; one with no UTC equivalent (year 1 at +01:00) is a field
    error, not an ``OverflowError`` (that was a 500 at the webhook edge)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Out of range.") from None


def _when(**kwargs: Any) -> fields.AwareDateTime:
    return _UtcDateTime(default_timezone=UTC, **kwargs)


_currency = FullMatch(r"^[A-Z]{3}$", error="Must be an ISO-4217 code such as GBP.")


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


class ProductSchema(_Base):
    id = ExternalId(required=True)
    title = fields.String(required=True, validate=validate.Length(min=1))
    description = fields.String(load_default="")
    url = fields.Url(relative=True, load_default=None, allow_none=True)
    image_url = fields.Url(relative=True, load_default=None, allow_none=True)
    categories = fields.List(fields.String(), load_default=list)
    tags = fields.List(fields.String(), load_default=list)
    vendor = fields.String(load_default=None, allow_none=True)
    price = DecimalString(required=True)
    currency = fields.String(required=True, validate=_currency)
    available = fields.Boolean(load_default=True)
    updated_at = _when(required=True)

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Product:
        return Product(
            external_id=data["id"],
            title=data["title"],
            updated_at=data["updated_at"].astimezone(UTC),
            description=data["description"],
            url=data["url"],
            image_url=data["image_url"],
            categories=tuple(data["categories"]),
            tags=tuple(data["tags"]),
            vendor=data["vendor"],
            price=data["price"],
            currency=data["currency"],
            available=data["available"],
        )


class CustomerSchema(_Base):
    id = ExternalId(required=True)
    email = fields.Email(load_default=None, allow_none=True)
    created_at = _when(load_default=None, allow_none=True)
    updated_at = _when(required=True)

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Customer:
        created = data["created_at"]
        return Customer(
            external_id=data["id"],
            updated_at=data["updated_at"].astimezone(UTC),
            email=data["email"],
            created_at=created.astimezone(UTC) if created else None,
        )


class LineSchema(_Base):
    product_id = ExternalId(required=True)
    variant_id = ExternalId(load_default=None, allow_none=True)
    quantity = fields.Integer(required=True, strict=True,
                              validate=validate.Range(min=1, max=MAX_QUANTITY))
    price = DecimalString(required=True)

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> LineItem:
        return LineItem(
            product_id=data["product_id"],
            quantity=data["quantity"],
            price=data["price"],
            variant_id=data["variant_id"],
        )


class OrderSchema(_Base):
    id = ExternalId(required=True)
    customer_id = ExternalId(load_default=None, allow_none=True)
    created_at = _when(required=True)
    updated_at = _when(required=True)
    currency = fields.String(required=True, validate=_currency)
    discount_codes = fields.List(fields.String(), load_default=list)
    lines = fields.List(fields.Nested(LineSchema), required=True)
    # what the customer paid (after discounts, with tax and shipping); without it the
    # lines' sum stands in, so a store's revenue is never zero for want of a field
    total = DecimalString(load_default=None, allow_none=True)

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Order:
        total = data["total"]
        if total is None:
            total = sum((ln.price * ln.quantity for ln in data["lines"]), Decimal(0))
        return Order(
            external_id=data["id"],
            created_at=data["created_at"].astimezone(UTC),
            updated_at=data["updated_at"].astimezone(UTC),
            currency=data["currency"],
            lines=tuple(data["lines"]),
            customer_id=data["customer_id"],
            discount_codes=tuple(data["discount_codes"]),
            total=total,
        )


class CartSchema(_Base):
    id = ExternalId(required=True)
    customer_id = ExternalId(load_default=None, allow_none=True)
    shopper_id = fields.String(load_default=None, allow_none=True)
    currency = fields.String(load_default=None, allow_none=True, validate=_currency)
    updated_at = _when(required=True)
    lines = fields.List(fields.Nested(LineSchema), required=True)

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Cart:
        return Cart(
            external_id=data["id"],
            updated_at=data["updated_at"].astimezone(UTC),
            lines=tuple(data["lines"]),
            customer_id=data["customer_id"],
            shopper_id=data["shopper_id"],
            currency=data["currency"],
        )


class DeleteSchema(_Base):
    id = ExternalId(required=True)
    deleted_at = _when(load_default=None, allow_none=True)


SCHEMAS: dict[str, type[Schema]] = {
    "products/upsert": ProductSchema,
    "customers/upsert": CustomerSchema,
    "orders/upsert": OrderSchema,
    "carts/upsert": CartSchema,
}
