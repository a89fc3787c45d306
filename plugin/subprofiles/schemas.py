"""Marshmallow schemas of ``/api/v1/subprofiles``: inputs validated, outputs dumped."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from plugin.api.schemas import CommaList, ProxyQuery
from plugin.models.types import MAX_ROW_ID
from plugin.subprofiles.prompt import CHOICES
from plugin.subprofiles.service import AGE_BANDS

_ID = validate.Length(min=1, max=255)
_NAME = validate.Length(min=1, max=40)
_AGE = validate.OneOf(AGE_BANDS)
_ROW = validate.Range(min=1, max=MAX_ROW_ID)
MAX_ITEMS = 100


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class SubProfileSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    age_band = fields.String(allow_none=True)
    kind = fields.String(required=True)


class SubProfileListSchema(Schema):
    subprofiles = fields.List(fields.Nested(SubProfileSchema), required=True)
    active_subprofile_id = fields.Integer(allow_none=True)
    age_bands = fields.List(fields.String(), required=True)


class CreateRequest(_Strict):
    name = fields.String(required=True, validate=_NAME)
    age_band = fields.String(allow_none=True, validate=_AGE)


class UpdateRequest(_Strict):
    name = fields.String(validate=_NAME)
    age_band = fields.String(allow_none=True, validate=_AGE)


class ActiveRequest(_Strict):
    subprofile_id = fields.Integer(required=True, allow_none=True, validate=_ROW)


class ActiveSchema(Schema):
    active_subprofile_id = fields.Integer(allow_none=True)


class ReassignRequest(_Strict):
    subprofile_id = fields.Integer(required=True, allow_none=True, validate=_ROW)
    order_id = fields.String(validate=_ID)
    product_ids = fields.List(fields.String(validate=_ID), load_default=list,
                              validate=validate.Length(max=MAX_ITEMS))


class MovedSchema(Schema):
    moved = fields.Integer(required=True)


class PromptRequest(_Strict):
    product_ids = fields.List(fields.String(validate=_ID), required=True,
                              validate=validate.Length(min=1, max=MAX_ITEMS))
    order_id = fields.String(validate=_ID)


class PromptSchema(Schema):
    ask = fields.Boolean(required=True)
    reason = fields.String(required=True)
    score = fields.Float(allow_none=True)
    suggested_subprofile_id = fields.Integer(allow_none=True)


class AnswerRequest(_Strict):
    choice = fields.String(required=True, validate=validate.OneOf(CHOICES))
    product_ids = fields.List(fields.String(validate=_ID), load_default=list,
                              validate=validate.Length(max=MAX_ITEMS))
    order_id = fields.String(validate=_ID)
    subprofile_id = fields.Integer(validate=_ROW)
    name = fields.String(validate=_NAME)
    age_band = fields.String(allow_none=True, validate=_AGE)
    dont_ask_again = fields.Boolean(load_default=False)

    @validates_schema
    def _needs(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["choice"] == "existing" and not data.get("subprofile_id"):
            raise ValidationError("Required for choice=existing.", "subprofile_id")
        if data["choice"] == "new" and not data.get("name"):
            raise ValidationError("Required for choice=new.", "name")


class AnswerSchema(Schema):
    subprofile_id = fields.Integer(allow_none=True)
    moved = fields.Integer(required=True)
    never_ask = fields.Boolean(required=True)


class RecsQuery(Schema):
    class Meta:
        unknown = "exclude"

    n = fields.Integer(load_default=8, validate=validate.Range(min=1, max=50))
    #: product ids in the cart (``p1,p2``), left out as on ``GET /recommendations``
    cart = CommaList(load_default=list)


class ProxyRecsQuery(RecsQuery, ProxyQuery):
    """``GET /<id>/recommendations`` through Shopify's app proxy (its signed query too)."""


class SubRecItemSchema(Schema):
    product_id = fields.String(required=True)
    title = fields.String(required=True)
    url = fields.String(allow_none=True)
    image_url = fields.String(allow_none=True)
    price = fields.Decimal(as_string=True, allow_none=True)
    currency = fields.String(allow_none=True)
    reason = fields.String(required=True)
    source = fields.String(required=True)


class SubRecsSchema(Schema):
    subprofile = fields.Nested(SubProfileSchema, required=True)
    title = fields.String(required=True)
    items = fields.List(fields.Nested(SubRecItemSchema), required=True)


class OrderItemSchema(Schema):
    product_id = fields.String(required=True)
    title = fields.String(required=True)


class OrderSchema(Schema):
    order_id = fields.String(required=True)
    at = fields.AwareDateTime(required=True)
    items = fields.List(fields.Nested(OrderItemSchema), required=True)
    subprofile_id = fields.Integer(allow_none=True)
    mixed = fields.Boolean(required=True)
    gift = fields.Boolean(required=True)  # given to the one-off gift sub-profile


class OrdersSchema(Schema):
    orders = fields.List(fields.Nested(OrderSchema), required=True)
