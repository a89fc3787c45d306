"""Accepting re-checks the budget and the shopper's caps atomically with the reservation.

Quotes read the guardrails, but many offers can stand at once: concurrent quotes of one
shopper for different carts, or many shoppers' offers against one budget. The threaded
tests give each thread its own app context, so its own session and database connection.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa

from plugin.errors import Conflict
from plugin.extensions import db
from plugin.models import Offer, OfferLedgerEntry, Shop
from plugin.offers import service
from tests.offers.conftest import SHOPPER, accept, cart_body, configure, make_idle, quote


def _cart_in(cart: dict) -> service.CartIn:
    return service.CartIn(currency=cart["currency"], lines=cart["lines"])


def _reserved(shop_id: str) -> Decimal:
    total = db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(OfferLedgerEntry.amount),
                                                         0)).where(
        OfferLedgerEntry.shop_id == shop_id))
    return Decimal(str(total))


def _at_once(app, jobs: list) -> list:
    """Run each ``job(shop)`` in its own thread and app context, released together."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)
    shop_id = db.session.scalar(sa.select(Shop.id))

    def run(i: int, job) -> None:
        with app.app_context():
            try:
                shop = db.session.get(Shop, shop_id)
                barrier.wait(timeout=30)
                results[i] = job(shop)
            except Exception as err:  # the test inspects what each thread got
                db.session.rollback()
                results[i] = err
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    db.session.expire_all()
    return results


def test_a_shopper_with_two_standing_offers_gets_one_discount(client, offer_shop):
    """Two quotes at once for two carts both stand (neither saw the other to supersede it);
    accepting both must not give the shopper two discounts."""
    make_idle(offer_shop.id)
    first = quote(client, offer_shop, cart_body(quantity=2)).get_json()["offer"]
    second = quote(client, offer_shop, cart_body(quantity=3)).get_json()["offer"]
    assert first and second
    db.session.execute(sa.update(Offer).where(Offer.public_id == first["id"])
                       .values(status="offered"))  # as the concurrent quote left it
    db.session.commit()
    assert accept(client, offer_shop, first["token"], cart_body(quantity=2)).status_code == 200
    res = accept(client, offer_shop, second["token"], cart_body(quantity=3))
    assert res.status_code == 409 and "already have a discount" in res.get_json()["message"]
    row = db.session.scalar(sa.select(Offer).where(Offer.public_id == second["id"]))
    assert (row.status, row.reason) == ("none", "no_stacking")
    assert _reserved(offer_shop.id) == Decimal(first["amount"])


def test_concurrent_accepts_never_pass_the_budget_nor_refuse_one_that_fits(app, offer_shop,
                                                                           monkeypatch):
    # one day for every accept: across the shop's midnight the early ones' spend would be
    # yesterday's and a fourth would fit
    now = service.utcnow()
    monkeypatch.setattr(service, "utcnow", lambda: now)
    shoppers = [f"anon_{i:022d}" for i in range(8)]
    offers = []
    for shopper in shoppers:
        make_idle(offer_shop.id, shopper)
        answer = service.quote(offer_shop, shopper, _cart_in(cart_body()))
        assert answer["offer"] is not None, answer
        offers.append((shopper, answer["offer"]))
    amount = Decimal(offers[0][1]["amount"])
    assert all(Decimal(o["amount"]) == amount for _, o in offers)
    budget = amount * 3 + amount / 2  # room for three
    configure(offer_shop, daily_budget=str(budget))
    results = _at_once(app, [
        (lambda shop, s=s, o=o: service.accept(shop, s, o["token"], _cart_in(cart_body())))
        for s, o in offers])
    accepted = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(accepted) + len(refused) == len(offers), results
    assert _reserved(offer_shop.id) == amount * len(accepted) <= budget
    assert len(accepted) == 3  # none refused over a reservation that was then undone


def test_one_shopper_quoting_and_accepting_many_carts_at_once_gets_one_discount(
        app, offer_shop):
    make_idle(offer_shop.id)
    carts = [cart_body(quantity=q) for q in (2, 3, 4, 5)]

    def quote_and_accept(shop, cart):
        offer = service.quote(shop, SHOPPER, _cart_in(cart))["offer"]
        if offer is None:
            return None
        return service.accept(shop, SHOPPER, offer["token"], _cart_in(cart))

    results = _at_once(app, [(lambda shop, c=c: quote_and_accept(shop, c)) for c in carts])
    assert not [r for r in results if isinstance(r, Exception)
                and not isinstance(r, Conflict)], results
    assert len([r for r in results if isinstance(r, dict)]) <= 1
    assert db.session.scalar(sa.select(sa.func.count(OfferLedgerEntry.id))) <= 1
    assert db.session.scalar(sa.select(sa.func.count(Offer.id)).where(
        Offer.status.in_(("accepting", "accepted")))) <= 1


@pytest.mark.parametrize("attempts", [2])
def test_concurrent_accepts_of_one_offer_make_one_discount(app, offer_shop, attempts):
    make_idle(offer_shop.id)
    offer = service.quote(offer_shop, SHOPPER, _cart_in(cart_body()))["offer"]
    results = _at_once(app, [
        (lambda shop: service.accept(shop, SHOPPER, offer["token"], _cart_in(cart_body())))
        for _ in range(attempts)])
    assert len([r for r in results if isinstance(r, dict)]) == 1, results
    assert _reserved(offer_shop.id) == Decimal(offer["amount"])
