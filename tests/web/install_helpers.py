"""The install blueprint on the test app (registered here until create_app does it)."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient


def make_install_client(app: Flask) -> FlaskClient:
    from plugin.install.views import bp

    if "install" not in app.blueprints:
        app.register_blueprint(bp)
    app.config.update(
        PUBLIC_URL="https://sk.example",
        SHOPIFY_API_KEY="4b0f3c2e9d1a7f6e5c4b3a2918273645",
        SHOPIFY_API_SECRET="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",
        SALEOR_ALLOWED_DOMAINS="demo.saleor.io",
    )
    return app.test_client()
