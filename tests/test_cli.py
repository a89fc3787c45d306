"""The `shopkeeper` command: shops, import with progress, worker, erase."""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from plugin.cli import main
from plugin.extensions import db
from plugin.models import Interaction, Order, OrderLine, Product, Shop


def _invoke(runner, *args):
    return runner.invoke(main, list(args), catch_exceptions=False)


def test_shops_add_prints_everything_a_developer_needs(runner):
    r = _invoke(runner, "shops", "add", "--platform", "generic", "--domain", "Shop.Example")
    assert r.exit_code == 0, r.output
    shop_id = re.search(r"shop id:\s+(shp_\w+)", r.output).group(1)
    assert f"/webhooks/generic/{shop_id}" in r.output
    assert re.search(r"webhook secret:\s+whsec_\S{20,}", r.output)
    assert re.search(r"widget key:\s+pk_\S+", r.output)
    shop = db.session.get(Shop, shop_id)
    from plugin.shops import CUSTOMER_TOKEN_SECRET, credentials_for

    ct_secret = credentials_for(shop).extra[CUSTOMER_TOKEN_SECRET]
    assert f"customer-token secret: {ct_secret}" in r.output
    assert shop.domain == "shop.example"
    listing = _invoke(runner, "shops", "list")
    assert shop_id in listing.output and "generic" in listing.output


def test_import_help_says_what_each_option_takes(runner):
    r = _invoke(runner, "import", "--help")
    for words in ("shopkeeper shops list", "customer_id,item_id,timestamp",
                  "item_id and optional title", "ISO 4217"):
        assert words in " ".join(r.output.split()), words


def test_shops_add_rejects_unknown_platform_and_duplicates(runner):
    r = runner.invoke(main, ["shops", "add", "--platform", "nope", "--domain", "a.example"])
    assert r.exit_code == 2 and "unknown platform" in r.output
    assert "one of: generic, saleor, shopify, vendure" in r.output  # what to type instead
    _invoke(runner, "shops", "add", "--platform", "generic", "--domain", "a.example")
    r = runner.invoke(main, ["shops", "add", "--platform", "generic", "--domain", "a.example"])
    assert r.exit_code == 1 and "already exists" in r.output


def test_shops_add_sends_shopify_stores_to_oauth(runner):
    """A CLI-made Shopify shop would get a webhook secret Shopify never signs with."""
    r = runner.invoke(main, ["shops", "add", "--platform", "shopify",
                             "--domain", "my-store.myshopify.com"])
    assert r.exit_code == 2
    assert "/install/shopify?shop=my-store.myshopify.com" in r.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Shop)) == 0


def _write(path, header, rows, gz=False):
    opener = gzip.open if gz else open
    with opener(path, "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


@pytest.mark.parametrize("domain", ["", "not a domain/../x", "shop..example", "-x.example"])
def test_shops_add_refuses_what_is_not_a_host_name(runner, domain):
    r = runner.invoke(main, ["shops", "add", "--platform", "generic", "--domain", domain])
    assert r.exit_code == 2 and "is not a host name" in r.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Shop)) == 0


def test_import_loads_history_and_is_idempotent(runner, shop, tmp_path):
    orders = _write(tmp_path / "o.csv.gz", ["customer_id", "item_id", "timestamp", "basket_id",
                                            "quantity", "price"],
                    [["c1", "A", "2011-01-01T10:00:00", "b1", "2", "1.50"],
                     ["c1", "B", "2011-01-01T10:00:00", "b1", "1", "3.00"],
                     ["c2", "A", "2011-02-01", "b2", "1", "1.50"]], gz=True)
    catalog = _write(tmp_path / "c.csv", ["item_id", "title", "category", "price"],
                     [["A", "Mug", "Kitchen", "1.50"], ["B", "Bag", "Bags", "3.00"],
                      ["C", "Lamp", "Home", "9.99"]])
    r = _invoke(runner, "import", "--shop", shop.id, "--orders", orders, "--catalog", catalog)
    assert r.exit_code == 0, r.output
    assert "3 products, 2 customers, 2 orders, 3 lines" in r.output
    again = _invoke(runner, "import", "--shop", shop.id, "--orders", orders)
    assert "0 products, 0 customers, 0 orders, 0 lines" in again.output
    count = lambda m: db.session.scalar(sa.select(sa.func.count()).select_from(m))  # noqa: E731
    assert (count(Product), count(Order), count(OrderLine), count(Interaction)) == (3, 2, 3, 3)
    b1 = db.session.scalar(sa.select(Order).filter_by(external_id="b1"))
    assert str(b1.total) == "6.0000" and b1.customer_external_id == "c1"


def test_import_can_move_a_history_to_end_at_a_given_time(shop, tmp_path):
    """The demo reads its 2011 sample as recent trade; the gaps between orders are kept."""
    from datetime import UTC, datetime, timedelta

    from plugin.ingestion.importer import import_history

    orders = _write(tmp_path / "o.csv", ["customer_id", "item_id", "timestamp", "basket_id"],
                    [["c1", "A", "2011-01-01T10:00:00", "b1"], ["c1", "B", "2011-01-15", "b2"]])
    end = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    import_history(shop.id, orders, ends_at=end)
    when = dict(db.session.execute(sa.select(Order.external_id, Order.created_at)).all())
    assert when["b2"] == end and when["b2"] - when["b1"] == timedelta(days=13, hours=14)
    bought = db.session.scalars(sa.select(Interaction.occurred_at).order_by(
        Interaction.occurred_at))
    assert list(bought) == [when["b1"], end]


def test_import_bad_input_exits_2_with_a_clear_message(runner, shop, tmp_path):
    missing = _write(tmp_path / "m.csv", ["customer_id", "timestamp"], [["c1", "2011-01-01"]])
    r = runner.invoke(main, ["import", "--shop", shop.id, "--orders", missing])
    assert r.exit_code == 2 and "missing columns: item_id" in r.output
    bad_time = _write(tmp_path / "t.csv", ["customer_id", "item_id", "timestamp"],
                      [["c1", "A", "yesterday"]])
    r = runner.invoke(main, ["import", "--shop", shop.id, "--orders", bad_time])
    assert r.exit_code == 2 and "row 2: unparsable timestamp" in r.output
    empty = _write(tmp_path / "e.csv", ["customer_id", "item_id", "timestamp"], [])
    r = runner.invoke(main, ["import", "--shop", shop.id, "--orders", empty])
    assert r.exit_code == 2 and "no rows" in r.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0


HEADER = "customer_id,item_id,timestamp,basket_id,quantity,price\n"


@pytest.mark.parametrize(("name", "content", "message"), [
    ("q.csv", HEADER + "c1,A,2011-01-01,b1,abc,1.50\n", "row 2: quantity is not a whole"),
    ("n.csv", HEADER + "c1,A,2011-01-01,b1,1,NaN\n", "row 2: price must be a number"),
    ("h.csv", HEADER + "c1,A,2011-01-01,b1,1,1e20\n", "row 2: price must be a number"),
    ("z.csv", HEADER + "c1,A\x001,2011-01-01,b1,1,1\n", "row 2: item_id must be 1 to 255"),
    ("l.csv", HEADER + f"c1,{'x' * 300},2011-01-01,b1,1,1\n", "row 2: item_id must be"),
    ("c.csv", HEADER + ",A,2011-01-01,b1,1,1\n", "row 2: customer_id must be"),
    ("r.csv", HEADER + 'c1,"A,2011-01-01\n', "orders row 2: expected 6 fields"),
    ("u.csv", b"customer_id,item_id,timestamp\n\xff\xfe,A,2011-01-01\n", "cannot be read"),
    ("g.csv.gz", b"not gzip at all", "cannot be read: BadGzipFile"),
    ("t.csv.gz", gzip.compress((HEADER + "c1,A,2011-01-01,b1,1,1\n").encode())[:30],
     "cannot be read: EOFError"),
])
def test_import_refuses_what_it_cannot_store_with_exit_2(runner, shop, tmp_path, name,
                                                         content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    r = runner.invoke(main, ["import", "--shop", shop.id, "--orders", str(path)])
    assert r.exit_code == 2 and message in r.output, r.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0


def test_import_refuses_a_currency_that_is_not_a_code(runner, shop, tmp_path):
    f = _write(tmp_path / "o.csv", ["customer_id", "item_id", "timestamp"],
               [["c", "i", "2011-01-01"]])
    r = runner.invoke(main, ["import", "--shop", shop.id, "--orders", f, "--currency", "POUNDS"])
    assert r.exit_code == 2 and "three-letter code" in r.output


def test_import_unknown_shop_fails(runner, tmp_path):
    f = _write(tmp_path / "o.csv", ["customer_id", "item_id", "timestamp"],
               [["c", "i", "2011-01-01"]])
    r = runner.invoke(main, ["import", "--shop", "shp_nope", "--orders", f])
    assert r.exit_code == 1 and "unknown shop" in r.output


def test_worker_once_drains_the_inbox(runner, client, shop, shop_secret):
    from tests.factories import post_webhook, product_body

    post_webhook(client, shop.id, shop_secret, "products/upsert", product_body())
    r = _invoke(runner, "worker", "--once")
    assert "processed 1: 1 done, 0 failed, 0 dead" in r.output
    assert db.session.scalar(sa.select(Product)).title == "Tea"


def test_shops_erase_deletes_everything(runner, shop, tmp_path):
    shop_id = shop.id
    orders = _write(tmp_path / "o.csv", ["customer_id", "item_id", "timestamp"],
                    [["c1", "A", "2011-01-01"]])
    _invoke(runner, "import", "--shop", shop_id, "--orders", orders)
    r = _invoke(runner, "shops", "erase", shop_id, "--yes")
    assert r.exit_code == 0
    db.session.expire_all()
    assert db.session.get(Shop, shop_id) is None
    for model in (Product, Order, OrderLine, Interaction):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(model)) == 0


def test_shops_credentials_are_merged_and_encrypted(runner, shop):
    from plugin.shops import credentials_for, get_shop

    r = runner.invoke(main, ["shops", "credentials", shop.id, "--api-url",
                             "https://shop.example/admin-api", "--extra", "username=admin",
                             "--extra-secret", "password"], input="s3cret\n")
    assert r.exit_code == 0, r.output
    assert "s3cret" not in r.output
    creds = credentials_for(get_shop(shop.id))
    assert creds.api_url == "https://shop.example/admin-api"
    kept = creds.extra.pop("customer_token_secret")  # kept, and named only
    assert creds.extra == {"username": "admin", "password": "s3cret"}
    assert creds.webhook_secret  # kept
    assert kept and kept not in r.output
    bad = runner.invoke(main, ["shops", "credentials", shop.id, "--extra", "novalue"])
    assert bad.exit_code == 2


def test_a_command_on_an_unmigrated_database_says_to_upgrade(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "plugin.cli", "shops", "list"], cwd=tmp_path,
                         capture_output=True, text=True,
                         env={"SHOPKEEPER_INSTANCE_DIR": str(tmp_path / "fresh"),
                              "PYTHONPATH": str(Path(__file__).parents[1]),
                              "PATH": "/usr/bin:/bin"})
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "run `shopkeeper db upgrade`" in out.stderr
    # run from the wrong directory, the default is a new, empty database: name it
    message = " ".join(out.stderr.split())
    assert f"sqlite:///{tmp_path / 'fresh' / 'shopkeeper.db'}" in message
    assert "SHOPKEEPER_SQLALCHEMY_DATABASE_URI" in message


@pytest.mark.parametrize("uri, says", [
    ("postgresql+psycopg://shopkeeper:s3cret@127.0.0.1:1/shopkeeper", "connection"),
    ("sqlite:////nonexistent-dir/shopkeeper.db", "unable to open database file"),
])
def test_a_database_that_cannot_be_reached_is_one_line_not_a_traceback(tmp_path, uri, says):
    """A stopped server or a wrong path: no migration helps, so do not suggest one, and
    do not bury the cause under a 165-line traceback (nor show the password)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "plugin.cli", "shops", "list"], cwd=tmp_path,
                         capture_output=True, text=True,
                         env={"SHOPKEEPER_SQLALCHEMY_DATABASE_URI": uri,
                              "PYTHONPATH": str(Path(__file__).parents[1]),
                              "PATH": "/usr/bin:/bin"})
    message = " ".join(out.stderr.split())
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-500:]
    assert "cannot use the database" in message and says in message.lower()
    assert "db upgrade" not in message and "s3cret" not in message


def test_shops_token_secret_prints_the_current_secret_after_a_rotation(runner, shop):
    from plugin.admin.settings import rotate_customer_token_secret
    from plugin.shops import CUSTOMER_TOKEN_SECRET, credentials_for

    first = credentials_for(shop).extra[CUSTOMER_TOKEN_SECRET]
    r = _invoke(runner, "shops", "token-secret", shop.id)
    assert r.exit_code == 0 and r.stdout.strip() == first
    new = rotate_customer_token_secret(shop)
    r = _invoke(runner, "shops", "token-secret", shop.id)
    assert r.stdout.strip() == new and first not in r.output
    assert "previous secret is still accepted until" in r.stderr
    missing = runner.invoke(main, ["shops", "token-secret", "shp_nope"])
    assert missing.exit_code == 1 and "unknown or uninstalled shop shp_nope" in missing.output


def test_an_access_token_set_by_hand_drops_the_expiring_tokens_refresh(runner, app):
    """A Shopify shop's expiring token came with a refresh token and expiry: kept beside a
    token set by hand, they made it pass for that expiring one, and its next call refreshed
    with the old refresh token, replacing the token just set (or, refused, asked the
    merchant for OAuth again)."""
    from connectors.base import Credentials
    from connectors.shopify import install
    from plugin import shops

    shop = shops.create_shop("shopify", "handset.myshopify.com", Credentials(
        "handset.myshopify.com", access_token="shpat_old", webhook_secret="s", extra={
            "api_key": "k", install.REFRESH_TOKEN: "shprt_old",
            install.ACCESS_EXPIRES_AT: "2026-01-01T00:00:00+00:00",
            install.REFRESH_TOKEN_EXPIRES_AT: "2026-03-01T00:00:00+00:00"}))
    db.session.commit()
    r = runner.invoke(main, ["shops", "credentials", shop.id, "--access-token", "shpat_set"])
    assert r.exit_code == 0, r.output
    db.session.expire_all()
    creds = shops.credentials_for(shops.get_shop(shop.id))
    assert creds.access_token == "shpat_set"
    assert not {install.REFRESH_TOKEN, install.ACCESS_EXPIRES_AT,
                install.REFRESH_TOKEN_EXPIRES_AT} & set(creds.extra)
    assert creds.extra["api_key"] == "k"
