"""Request and response schemas of the install endpoints."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields


class ShopifyInstallQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    shop = fields.String(required=True, metadata={"description": "<name>.myshopify.com"})


class ShopifyCallbackQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    code = fields.String(required=True)
    shop = fields.String(required=True)
    state = fields.String(required=True)
    hmac = fields.String(required=True)
    timestamp = fields.String(required=True)


class ManifestQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    shop = fields.String(load_default=None, metadata={
        "description": "Shop id created beforehand; its webhooks are then listed"})


class SaleorManifestSchema(Schema):
    """Saleor's app manifest (only the top-level keys are described here)."""

    class Meta:
        unknown = EXCLUDE

    id = fields.String()
    version = fields.String()
    name = fields.String()
    permissions = fields.List(fields.String())
    appUrl = fields.String()
    tokenTargetUrl = fields.String()
    webhooks = fields.List(fields.Dict())
    extensions = fields.List(fields.Dict())


class RegisterRequest(Schema):
    class Meta:
        unknown = EXCLUDE

    auth_token = fields.String(required=True)


class RegisterResponse(Schema):
    status = fields.String(required=True)
    shop_id = fields.String(required=True)


class AcceptedSchema(Schema):
    status = fields.String(required=True, metadata={"description": "accepted | duplicate"})
