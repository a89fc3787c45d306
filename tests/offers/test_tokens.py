"""Offer tokens alone: every binding and every key failure raises."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from plugin.offers.tokens import OfferClaims, OfferTokenInvalid, cart_hash, sign_offer, verify_offer

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
KEY, OTHER_KEY = b"k" * 32, b"x" * 32
LINES = [{"product_id": "p1", "quantity": 2, "price": "50.00"}]
CART = cart_hash("GBP", LINES)


def token(**kw) -> str:
    claims = OfferClaims("of_1", "shp_1", "anon_a", CART, Decimal("15.00"), "percent_cart",
                         "GBP", NOW + timedelta(minutes=30))
    return sign_offer(claims, kw.pop("key", KEY), kw.pop("kid", "k1"), now=NOW)


def check(tok: str, keys=None, **kw):
    args = dict(shop_id="shp_1", shopper_id="anon_a", cart=CART, now=NOW)
    return verify_offer(tok, keys or {"k1": KEY}, **{**args, **kw})


def test_valid_token_round_trips():
    claims = check(token())
    assert claims.amount == Decimal("15.00") and claims.offer_id == "of_1"


def test_cart_hash_ignores_line_order_but_not_contents():
    two = [{"product_id": "a", "quantity": 1, "price": "1.0"},
           {"product_id": "b", "quantity": 1, "price": "2"}]
    assert cart_hash("GBP", two) == cart_hash("gbp", list(reversed(two)))
    assert cart_hash("GBP", LINES) != cart_hash("GBP", [{**LINES[0], "quantity": 3}])
    assert cart_hash("GBP", LINES) != cart_hash("GBP", [{**LINES[0], "price": "49.99"}])


def _altered_amount(tok: str) -> str:
    head, body, sig = tok.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["amount"] = "99.00"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{sig}"


@pytest.mark.parametrize(("tamper", "message"), [
    (lambda: check(_altered_amount(token())), "InvalidSignatureError"),
    (lambda: check(token(), shopper_id="anon_b"), "another shopper"),
    (lambda: check(token(), cart=cart_hash("GBP", [{**LINES[0], "quantity": 1}])), "cart"),
    (lambda: check(token(), shop_id="shp_2"), "another shop"),
    (lambda: check(token(), now=NOW + timedelta(minutes=31)), "expired"),
    (lambda: check(token(key=OTHER_KEY)), "InvalidSignatureError"),
    (lambda: check(token(kid="k0")), "rotated-out"),
    (lambda: check("not-a-token"), "malformed"),
])
def test_tampering_raises(tamper, message):
    with pytest.raises(OfferTokenInvalid, match=message):
        tamper()


def test_rotation_keeps_old_kid_verifying_while_listed():
    old = token(kid="k1")
    keys = {"k1": KEY, "k2": OTHER_KEY}
    assert check(old, keys).offer_id == "of_1"
    assert check(token(key=OTHER_KEY, kid="k2"), keys).offer_id == "of_1"
    with pytest.raises(OfferTokenInvalid):
        check(old, {"k2": OTHER_KEY})
