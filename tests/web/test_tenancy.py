"""One shop can never see or change another shop's data."""

from __future__ import annotations

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Product
from plugin.shops import credentials_for, erase_shop
from plugin.webhooks import inbox
from tests.factories import make_shop, post_webhook, product_body


def test_same_external_id_in_two_shops_stays_apart(client):
    a, b = make_shop(), make_shop()
    post_webhook(client, a.id, credentials_for(a).webhook_secret, "products/upsert",
                 product_body(title="A's tea"))
    post_webhook(client, b.id, credentials_for(b).webhook_secret, "products/upsert",
                 product_body(title="B's tea"))
    inbox.process_inbox()
    titles = {p.shop_id: p.title for p in db.session.scalars(sa.select(Product))}
    assert titles == {a.id: "A's tea", b.id: "B's tea"}


def test_shop_a_cannot_write_into_shop_b_with_its_own_secret(client):
    a, b = make_shop(), make_shop()
    r = post_webhook(client, b.id, credentials_for(a).webhook_secret, "products/upsert",
                     product_body())
    assert r.status_code == 401


def test_erasing_one_shop_leaves_the_other_intact(client):
    a, b = make_shop(), make_shop()
    a_id, b_id = a.id, b.id
    for shop in (a, b):
        post_webhook(client, shop.id, credentials_for(shop).webhook_secret, "products/upsert",
                     product_body())
    inbox.process_inbox()
    erase_shop(a_id)
    db.session.commit()
    assert [p.shop_id for p in db.session.scalars(sa.select(Product))] == [b_id]


def test_credentials_are_encrypted_at_rest(app):
    shop = make_shop()
    secret = credentials_for(shop).webhook_secret
    raw = db.session.execute(sa.text(
        "SELECT credentials_encrypted FROM installations WHERE shop_id = :s"), {"s": shop.id}
    ).scalar()
    assert secret.encode() not in bytes(raw)
    app.config["CREDENTIALS_KEY"] = "A" * 43 + "="  # a different key cannot decrypt
    import pytest
    from cryptography.fernet import InvalidToken

    with pytest.raises(InvalidToken):
        credentials_for(shop)


def test_erasing_a_shop_empties_every_shop_scoped_table(client):
    from tests.factories import order_body

    a, b = make_shop(), make_shop()
    a_id = a.id
    for shop in (a, b):
        secret = credentials_for(shop).webhook_secret
        post_webhook(client, shop.id, secret, "products/upsert", product_body())
        post_webhook(client, shop.id, secret, "orders/upsert", order_body())
    inbox.process_inbox()
    erase_shop(a_id)
    db.session.commit()
    for table in db.metadata.sorted_tables:
        column = table.c.get("shop_id") if "shop_id" in table.c else (
            table.c.id if table.name == "shops" else None)
        if column is None:
            continue
        left = db.session.scalar(sa.select(sa.func.count()).select_from(table)
                                 .where(column == a_id))
        assert left == 0, table.name
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Product)) == 1


def test_customer_erasure_reaches_serving_and_offers_rows(client, shop, shop_secret):
    from plugin.models import Impression, Offer, RecommendationCache, ShopperConsent
    from plugin.models.types import utcnow
    from plugin.privacy import erase_customer, export_customer

    db.session.add_all([
        Impression(shop_id=shop.id, rec_id="r-erase", shopper_id="c1", placement="for_you",
                   items=[], sources=[], holdout=False, personalized=True),
        ShopperConsent(shop_id=shop.id, shopper_id="c1", granted=True),
        Offer(shop_id=shop.id, public_id="of-erase", shopper_id="c1", cart_hash="h",
              stage="idle_cart", status="quoted",
              expires_at=utcnow(), features={"x": 1}),
    ])
    db.session.commit()
    assert "offers" in export_customer(shop.id, "c1")
    erase_customer(shop.id, "c1")
    db.session.commit()
    assert db.session.scalar(sa.select(Impression.shopper_id).filter_by(rec_id="r-erase")) \
        is None
    for model in (ShopperConsent, RecommendationCache):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(model).where(
            model.shopper_id == "c1")) == 0
    offer = db.session.scalar(sa.select(Offer).filter_by(public_id="of-erase"))
    assert offer.shopper_id != "c1" and offer.features == {}
