"""The shopper-facing API (``/api/v1``) that the storefront widgets call."""
