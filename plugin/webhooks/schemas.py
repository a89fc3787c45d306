"""Response schema of the webhook endpoint."""

from marshmallow import Schema, fields, validate


class WebhookAcceptedSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["accepted", "duplicate"]))
