"""Settings come from defaults, then SHOPKEEPER_* environment; secrets are never logged."""

from __future__ import annotations

import logging
from pathlib import Path

from plugin import create_app
from plugin.config import Config


def test_environment_overrides_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOPKEEPER_INBOX_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("SHOPKEEPER_PUBLIC_URL", "https://shopkeeper.example")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
                      "INSTANCE_DIR": str(tmp_path)})
    assert app.config["INBOX_MAX_ATTEMPTS"] == 3
    assert app.config["PUBLIC_URL"] == "https://shopkeeper.example"
    assert app.config["UNINSTALL_RETENTION_HOURS"] == Config.UNINSTALL_RETENTION_HOURS == 48


def test_a_numeric_looking_secret_stays_text(monkeypatch, tmp_path):
    """Environment values are parsed as JSON: "84726351948372615" became an int and
    signing with it raised TypeError (a 500 on /install/shopify)."""
    monkeypatch.setenv("SHOPKEEPER_SECRET_KEY", "84726351948372615")
    monkeypatch.setenv("SHOPKEEPER_SHOPIFY_API_SECRET", "123")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
                      "INSTANCE_DIR": str(tmp_path)})
    assert app.config["SECRET_KEY"] == "84726351948372615"
    assert app.config["SHOPIFY_API_SECRET"] == "123"


def test_a_relative_instance_dir_is_resolved_once(tmp_path):
    import subprocess
    import sys

    code = "from plugin.config import Config; print(Config.SQLALCHEMY_DATABASE_URI)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, env={"SHOPKEEPER_INSTANCE_DIR": "inst",
                                         "PYTHONPATH": str(Path(__file__).parents[1])})
    assert out.stdout.strip() == f"sqlite:///{tmp_path.resolve() / 'inst' / 'shopkeeper.db'}"


def test_redacting_filter_blanks_secrets(caplog):
    from plugin.logs import RedactingFilter

    logger = logging.getLogger("shopkeeper.test")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="shopkeeper"):
        logger.info("install.done", extra={"access_token": "shpat_secret", "shop_id": "s1"})
    record = caplog.records[-1]
    assert record.access_token == "[redacted]" and record.shop_id == "s1"


def test_no_secret_reaches_the_logs_during_a_webhook(client, shop, shop_secret, caplog):
    from tests.factories import post_webhook, product_body

    with caplog.at_level(logging.DEBUG):
        post_webhook(client, shop.id, shop_secret, "products/upsert", product_body())
        post_webhook(client, shop.id, "wrong", "products/upsert", product_body())
    assert shop_secret not in caplog.text
