"""``stages``, ``cart_url`` and ``nudge_webhook_url`` (set in the settings JSON) under one
rule for the settings page and serving: a stored value it refuses is never used (no offer
for a refused ``stages``, no nudge for a refused URL, each logged), and the page flags it."""

from __future__ import annotations

import logging
import re
from html import unescape

import pytest
import responses
from marshmallow import ValidationError

from plugin import shops
from plugin.admin import settings as settings_service
from plugin.admin.schemas import OffersSchema
from plugin.extensions import db
from plugin.offers.nudges import run_nudges
from plugin.offers.settings import DEFAULT_STAGES, guardrails_from
from tests.admin.conftest import sign_in
from tests.admin.test_settings_conflicts import Tab
from tests.offers.conftest import configure, make_idle, quote
from tests.offers.test_nudges import HOOK, _idle_cart

BAD_STAGES = [{"idel_cart": ["percent_cart"]}, {"idle_cart": ["mega_discount"]},
              {"idle_cart": "percent_cart"}, ["idle_cart"]]
BAD_URLS = ["javascript:alert(1)", "ftp://store.example/cart", "store.example/cart",
            "/cart", "https://", "https://user:secret@store.example/cart",
            "https://store example/cart", "https://store.example/ca rt",
            "https://st;ore.example/", "https://store.example:99999/", 42,
            "https://store.example/" + "c" * 2100]
GOOD_URLS = ["https://store.example/cart", "http://localhost:8080/cart?x=1#top",
             "https://[2606:4700:4700::1111]/hooks", "https://bücher.example/warenkorb"]


def _refused_by_both(key: str, value) -> tuple[str, ...]:
    """``value`` refused by the page's schema and by serving; the keys serving left out."""
    with pytest.raises(ValidationError) as err:
        OffersSchema().load({key: value})
    assert list(err.value.messages) == [key]
    with pytest.raises(ValueError, match=key):
        guardrails_from({key: value})
    rails = guardrails_from({key: value}, drop_refused=True)
    assert getattr(rails, key) == getattr(guardrails_from(None), key)  # not applied
    return rails.refused + rails.nudge_refused


@pytest.mark.parametrize("stages", BAD_STAGES)
def test_a_stages_override_serving_refuses_the_page_refuses(stages):
    rails = guardrails_from({"stages": stages}, drop_refused=True)
    assert _refused_by_both("stages", stages) == ("stages",) and rails.refused == ("stages",)


@pytest.mark.parametrize("key", ["cart_url", "nudge_webhook_url"])
@pytest.mark.parametrize("url", BAD_URLS, ids=range(len(BAD_URLS)))
def test_a_url_serving_refuses_the_page_refuses(key, url):
    rails = guardrails_from({key: url}, drop_refused=True)
    assert _refused_by_both(key, url) == (key,)
    assert rails.nudge_refused == (key,) and rails.refused == ()  # quotes go on


@pytest.mark.parametrize("url", GOOD_URLS)
def test_a_url_both_take(url):
    loaded = OffersSchema().load({"cart_url": url, "nudge_webhook_url": url})
    assert loaded["cart_url"] == loaded["nudge_webhook_url"] == url
    rails = guardrails_from({"cart_url": url, "nudge_webhook_url": url})
    assert rails.cart_url == rails.nudge_webhook_url == url


def test_a_stages_override_both_take():
    stages = {"idle_cart": ["fixed_cart"], "browsing": []}
    assert OffersSchema().load({"stages": stages})["stages"] == stages
    assert guardrails_from({"stages": stages}).stages == {
        **DEFAULT_STAGES, "idle_cart": ("fixed_cart",), "browsing": ()}


def test_quote_with_a_stored_refused_stages_makes_no_offer_and_logs_why(client, shop,
                                                                        caplog):
    configure(shop, stages={"idel_cart": ["percent_cart"]})
    make_idle(shop.id)
    with caplog.at_level(logging.WARNING, logger="plugin.offers.settings"):
        r = quote(client, shop)
    assert r.json["offer"] is None and r.json["reason_code"] == "settings_refused"
    assert "offers.stages left out: stages: 'idel_cart' is no funnel stage" in caplog.text


@pytest.mark.parametrize("key", ["nudge_webhook_url", "cart_url"])
@responses.activate
def test_a_stored_refused_url_sends_no_nudge_and_logs_why(app, client, shop, shop_secret,
                                                          caplog, key):
    configure(shop, **{"nudge_webhook_url": HOOK, "cart_url": "https://store.example/cart",
                       key: "javascript:alert(1)"})
    _idle_cart(shop.id)
    responses.post(HOOK, status=202)
    with caplog.at_level(logging.WARNING):
        assert run_nudges(shop) == {"sent": 0, "failed": 0, "skipped": 0}
    assert len(responses.calls) == 0
    assert f"offers.{key} left out" in caplog.text
    assert any(r.message == "offers.nudges_refused" and r.keys == [key]
               for r in caplog.records)
    make_idle(shop.id)
    assert quote(client, shop).json["offer"] is not None  # offers go on without nudges


def _stored(shop) -> dict:
    db.session.expire_all()
    return shops.get_shop(shop.id).settings or {}


def test_the_page_flags_each_and_a_save_keeps_them_as_stored(app, client, shop):
    bad = {"stages": {"idel_cart": ["percent_cart"]}, "cart_url": "javascript:alert(1)",
           "nudge_webhook_url": "https://user:secret@crm.example/hook"}
    configure(shop, **bad)
    sign_in(app, client, shop)
    html = unescape(client.get("/admin/settings").get_data(as_text=True))
    for key, why in (("stages", "'idel_cart' is no funnel stage"),
                     ("cart_url", "is not an http(s) URL"),
                     ("nudge_webhook_url", "has no valid host")):
        assert re.search(rf'id="stored-offers-{key}">[^<]*<code>offers.{key}</code>.*'
                         rf'id="err-offers-{key}" role="alert">[^<]*{re.escape(why)}', html)
    assert "no nudge is sent until it is corrected" in html
    assert "Offers are paused: the stored Offer kinds by funnel stage (set in the settings " \
        "JSON) is outside" in html
    r = Tab(client).edit("offers.max_discount_pct", "12").save()
    assert r.status_code == 302, r.get_data(as_text=True)
    stored = _stored(shop)["offers"]
    assert stored["max_discount_pct"] == "12.00" and {k: stored[k] for k in bad} == bad
    flash = unescape(client.get("/admin/settings").get_data(as_text=True))
    assert "Cart URL of nudges' offer links (set in the settings JSON), Nudge webhook URL " \
        "(set in the settings JSON) and Offer kinds by funnel stage (set in the settings " \
        "JSON) are still as stored before" in flash


def test_the_settings_document_cannot_store_one_serving_refuses(app, shop):
    with pytest.raises(ValidationError) as refused:
        settings_service.save(shop, {"offers": {"nudge_webhook_url": "ftp://crm.example/"}})
    assert list(refused.value.messages) == ["offers.nudge_webhook_url"]
    settings_service.save(shop, {"offers": {"nudge_webhook_url": HOOK}})
    assert _stored(shop)["offers"]["nudge_webhook_url"] == HOOK
