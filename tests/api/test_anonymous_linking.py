"""Pre-login browsing counts as the customer's once they sign in (plugin/api/linking.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from plugin.api.identity import ShopperIdentity
from plugin.api.linking import link
from plugin.extensions import db
from plugin.models import AnonymousLink, ClickAttribution, Interaction, Order, OrderLine
from plugin.models.types import utcnow
from plugin.offers import attribution
from plugin.offers.settings import Guardrails
from plugin.privacy import erase_customer, export_customer, purge_expired
from tests.api.conftest import Api, add_products, anon_id, token_for
from tests.factories import iso, make_shop
from tests.offers.conftest import cart_body, configure


def _anon(anon: str) -> dict[str, str]:
    return {"X-Shopkeeper-Shopper": anon}


def _signed_in(shop, customer: str, anon: str | None) -> dict[str, str]:
    headers = {"X-Shopkeeper-Customer-Token": token_for(shop, customer)}
    if anon:
        headers["X-Shopkeeper-Shopper"] = anon
    return headers


def _browse(api: Api, anon: str, *items: str, minutes_ago: int = 10) -> None:
    at = iso(utcnow() - timedelta(minutes=minutes_ago))
    response = api.events([{"type": kind, "product_id": item, "at": at}
                           for item in items for kind in ("view", "add_to_cart")],
                          headers=_anon(anon))
    assert response.get_json() == {"stored": 2 * len(items)}


def _owners(shop_id: str) -> list[tuple[str, str, str]]:
    return sorted(db.session.execute(sa.select(
        Interaction.shopper_id, Interaction.kind, Interaction.product_external_id)
        .where(Interaction.shop_id == shop_id, Interaction.kind != "purchase")).all())


def test_pre_login_events_move_to_the_customer_on_sign_in(api, store):
    anon = anon_id()
    _browse(api, anon, "p1", "p2")
    api.events([{"type": "view", "product_id": "p3"}], headers=_signed_in(store, "c9", anon))
    assert _owners(store.id) == sorted(
        [("c9", k, p) for p in ("p1", "p2") for k in ("view", "add_to_cart")]
        + [("c9", "view", "p3")])
    # browsing signed out again on the same browser follows at the next signed-in call
    _browse(api, anon, "p4")
    assert ("c9", "view", "p4") not in _owners(store.id)
    api.events([{"type": "view", "product_id": "p5"}], headers=_signed_in(store, "c9", anon))
    assert {(k, p) for s, k, p in _owners(store.id) if s == anon} == set()
    assert ("c9", "add_to_cart", "p4") in _owners(store.id)


def test_cart_offer_stage_sees_the_cart_filled_before_sign_in(client, api, store):
    """An hour-old pre-login add-to-cart makes the signed-in cart idle, not just started."""
    configure(store)
    anon = anon_id()
    _browse(api, anon, "p1", minutes_ago=60)

    def stage(headers):
        return client.post(f"/api/v1/offers/quote?key={store.widget_key}",
                           json={"cart": cart_body()}, headers=headers).get_json()["stage"]

    assert stage(_signed_in(store, "c8", None)) == "active_cart"  # no browser id: unlinked
    assert stage(_signed_in(store, "c9", anon)) == "idle_cart"


def test_first_link_wins_and_a_second_customer_ends_linking(api, store):
    """A shared computer: the second customer gets nothing of the browser's history, and
    what anyone browses there signed out afterwards is nobody's."""
    anon = anon_id()
    _browse(api, anon, "p1")
    api.events([{"type": "view", "product_id": "p9"}], headers=_signed_in(store, "a1", anon))
    _browse(api, anon, "p2")  # signed out: b1 browsing before signing in
    api.events([{"type": "view", "product_id": "p9"}], headers=_signed_in(store, "b1", anon))
    _browse(api, anon, "p3")
    api.events([{"type": "view", "product_id": "p9"}], headers=_signed_in(store, "a1", anon))
    owners = _owners(store.id)
    assert {p for s, _, p in owners if s == "a1"} == {"p1", "p9"}
    assert {p for s, _, p in owners if s == "b1"} == {"p9"}
    assert {p for s, _, p in owners if s == anon} == {"p2", "p3"}
    row = db.session.scalar(sa.select(AnonymousLink).filter_by(anonymous_id=anon))
    assert row.customer_id is None  # shared: links nobody from now on


def test_a_link_in_one_shop_says_nothing_in_another(client, api, store):
    other = make_shop()
    other.settings = {"allowed_origins": ["https://store.example"], "holdout_share": 0}
    db.session.commit()
    add_products(other.id, ["p1", "p2"])
    api_b = Api(client, other)
    anon = anon_id()
    _browse(api, anon, "p1")
    _browse(api_b, anon, "p2")
    api.events([{"type": "view", "product_id": "p1"}], headers=_signed_in(store, "c1", anon))
    assert {p for s, _, p in _owners(other.id) if s == anon} == {"p2"}
    api_b.events([{"type": "view", "product_id": "p1"}], headers=_signed_in(other, "d1", anon))
    assert {s for s, _, _ in _owners(other.id)} == {"d1"}
    assert {s for s, _, _ in _owners(store.id)} == {"c1"}


def test_customer_who_refused_consent_gets_nothing_linked(api, store):
    store.settings = {**store.settings, "consent_required": True}
    db.session.commit()
    assert api.consent(False, headers=_signed_in(store, "c9", None)).status_code == 200
    anon = anon_id()
    api.consent(True, headers=_anon(anon))  # someone on this browser said yes
    _browse(api, anon, "p1")
    assert not link(store, ShopperIdentity(anonymous_id=anon, customer_id="c9"))
    api.events([{"type": "view", "product_id": "p2"}], headers=_signed_in(store, "c9", anon))
    assert {p for s, _, p in _owners(store.id) if s == anon} == {"p1"}
    assert db.session.scalar(sa.select(AnonymousLink).filter_by(anonymous_id=anon)) is None
    # withdrawing while signed in stores and links nothing either
    other = anon_id()
    api.consent(True, headers=_anon(other))
    _browse(api, other, "p3")
    api.consent(False, headers=_signed_in(store, "c7", other))
    assert api.events([{"type": "view", "product_id": "p4"}],
                      headers=_signed_in(store, "c7", other)).get_json() == {"stored": 0}
    assert {p for s, _, p in _owners(store.id) if s == other} == {"p3"}


def test_export_and_erasure_cover_linked_anonymous_events(api, store):
    anon, stranger = anon_id(), anon_id()
    _browse(api, anon, "p1")
    api.events([{"type": "view", "product_id": "p2"}], headers=_signed_in(store, "c9", anon))
    _browse(api, anon, "p3")  # linked, waiting for the next signed-in call
    _browse(api, stranger, "p4")
    exported = export_customer(store.id, "c9")
    assert sorted((i["kind"], i["product_id"]) for i in exported["interactions"]) == sorted(
        [("view", "p1"), ("add_to_cart", "p1"), ("view", "p2"), ("view", "p3"),
         ("add_to_cart", "p3")])
    assert [a["id"] for a in exported["anonymous_ids"]] == [anon]
    erase_customer(store.id, "c9")
    db.session.commit()
    assert {s for s, _, _ in _owners(store.id)} == {stranger}
    assert db.session.scalars(sa.select(AnonymousLink)).all() == []
    assert export_customer(store.id, "c9")["interactions"] == []


def test_retention_purges_linked_events_and_unused_links(api, store):
    anon = anon_id()
    _browse(api, anon, "p1")
    api.events([{"type": "view", "product_id": "p2"}], headers=_signed_in(store, "c9", anon))
    later = utcnow() + timedelta(days=31)
    purge_expired(store.id, 30, now=later)
    db.session.commit()
    assert _owners(store.id) == []
    assert db.session.scalars(sa.select(AnonymousLink)).all() == []


def test_click_before_sign_in_is_credited_with_the_customers_order(api, trained):
    anon = anon_id()
    item = api.recs(headers=_anon(anon), n=1).get_json()["items"][0]
    api.events([{"type": "click", "product_id": item["product_id"], "rec_id": item["rec_id"]}],
               headers=_anon(anon))
    api.events([{"type": "view", "product_id": "p1"}], headers=_signed_in(trained, "c9", anon))
    now = utcnow()
    order = Order(shop_id=trained.id, external_id="o-c9", customer_external_id="c9",
                  currency="GBP", total=Decimal("9.50"), discount_codes=[], created_at=now,
                  source_updated_at=now)
    order.lines = [OrderLine(product_external_id=item["product_id"], quantity=1,
                             price=Decimal("9.50"))]
    db.session.add(order)
    db.session.commit()
    assert attribution.attribute(trained.id, Guardrails(), now=now)["clicks"] == 1
    row = db.session.scalar(sa.select(ClickAttribution))
    assert (row.order_external_id, row.rec_id) == ("o-c9", item["rec_id"])


def test_export_and_erasure_cover_what_is_kept_under_linked_anonymous_ids(api, store):
    """Consent answer, shown lists, carts, quotes and nudges kept under a browser id that
    is the customer's are the customer's too: exported with them, erased with them."""
    from plugin.models import Cart, Impression, Nudge, Offer, ShopperConsent

    anon, stranger = anon_id(), anon_id()
    store.settings = {**store.settings, "consent_required": True}
    db.session.commit()
    for who in (anon, stranger):
        assert api.consent(True, headers=_anon(who)).status_code == 200
        assert api.recs(headers=_anon(who), n=2).status_code == 200  # an impression
    _browse(api, anon, "p1")
    api.events([{"type": "view", "product_id": "p2"}], headers=_signed_in(store, "c9", anon))
    now = utcnow()
    for n, who in enumerate((anon, stranger)):
        db.session.add_all([
            Cart(shop_id=store.id, external_id=f"cart-{n}", shopper_id=who, lines=[],
                 source_updated_at=now),
            Offer(shop_id=store.id, public_id=f"of-{n}", shopper_id=who, cart_hash="h",
                  stage="idle_cart", status="none", features={"x": 1}),
            Nudge(shop_id=store.id, shopper_id=who, stage="idle_cart", delivery_id=f"nd-{n}",
                  status="sent"),
        ])
    db.session.commit()

    found = export_customer(store.id, "c9")
    assert [(a["id"], a["consent"]["granted"]) for a in found["anonymous_ids"]] == [(anon, True)]
    assert len(found["impressions"]) == 1
    assert [c["id"] for c in found["carts"]] == ["cart-0"]
    assert [o["id"] for o in found["offers"]] == ["of-0"]
    assert len(found["nudges"]) == 1

    erase_customer(store.id, "c9")
    db.session.commit()
    for model, column in ((ShopperConsent, ShopperConsent.shopper_id),
                          (Impression, Impression.shopper_id), (Cart, Cart.shopper_id),
                          (Offer, Offer.shopper_id), (Nudge, Nudge.shopper_id)):
        assert db.session.scalars(sa.select(column).where(column.in_([anon, stranger]))).all() \
            == [stranger], model.__name__
