"""Funnel stages: one known answer per stage, and the database facts behind them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plugin.extensions import db
from plugin.models import Interaction
from plugin.models.types import utcnow
from plugin.offers.funnel import FunnelFacts, classify, gather
from plugin.offers.settings import Guardrails

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
AGO = lambda **kw: NOW - timedelta(**kw)  # noqa: E731


@pytest.mark.parametrize(("facts", "stage"), [
    (FunnelFacts(False, None, 0, None, 0, None), "new_visitor"),
    (FunnelFacts(False, None, 0, None, 5, None), "browsing"),
    (FunnelFacts(True, AGO(minutes=5), 0, None, 5, None), "active_cart"),
    (FunnelFacts(True, AGO(minutes=45), 0, None, 5, None), "idle_cart"),
    (FunnelFacts(False, None, 0, None, 3, AGO(days=2)), "wishlist_holder"),
    (FunnelFacts(False, None, 2, AGO(days=10), 9, None), "returning_customer"),
    (FunnelFacts(True, AGO(minutes=1), 2, AGO(days=10), 9, None), "returning_customer"),
    (FunnelFacts(True, AGO(minutes=1), 2, AGO(days=120), 9, None), "lapsed_customer"),
    (FunnelFacts(False, None, 1, AGO(days=1), 3, AGO(days=5)), "returning_customer"),
])
def test_classify(facts, stage):
    assert classify(facts, Guardrails(), NOW) == stage


def test_gather_reads_cart_and_wishlist_events(app, shop):
    now = utcnow()
    for kind, minutes in (("view", 90), ("add_to_cart", 60), ("wishlist", 30)):
        db.session.add(Interaction(shop_id=shop.id, shopper_id="s1", product_external_id="p",
                                   kind=kind, occurred_at=now - timedelta(minutes=minutes),
                                   context={}))
    db.session.commit()
    facts = gather(shop.id, "s1", has_cart=True)
    assert facts.events == 3 and facts.orders == 0
    assert abs((now - facts.cart_changed_at) - timedelta(minutes=60)) < timedelta(seconds=5)
    assert classify(facts, Guardrails(), now) == "idle_cart"
