"""The merchant chooses the Saleor channel; sync, prices, availability and vouchers follow it.

Saleor's answers (``channels``, a ``products`` page built from the documented
``product_updated`` fixture, ``voucherCreate``) are mocked at the HTTP edge.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import responses
import sqlalchemy as sa

from connectors.base import Credentials
from connectors.records import DiscountSpec
from plugin import shops
from plugin.extensions import db
from plugin.ingestion.sync import run_sync
from plugin.models import AuditLog, Offer, Product, Variant
from plugin.models.types import utcnow
from tests.admin.conftest import sign_in
from tests.factories import make_shop

API = "https://multi.saleor.io/graphql/"
FIXTURE = Path(__file__).parents[1] / "fixtures" / "saleor" / "product_updated.json"
CHANNELS = {"data": {"channels": [
    {"id": "Q2hhbm5lbDox", "slug": "default-channel", "name": "Default channel",
     "currencyCode": "USD", "isActive": True},
    {"id": "Q2hhbm5lbDoy", "slug": "channel-pln", "name": "Channel-PLN",
     "currencyCode": "PLN", "isActive": True}]}}


def _shop():
    shop = make_shop("saleor", "multi.saleor.io")
    shops.save_credentials(shop, Credentials(
        "multi.saleor.io", access_token="app-token", api_url=API,
        webhook_secret="whsec_only-for-the-signed-admin-link",
        extra={"channel": "default-channel", "channel_id": "Q2hhbm5lbDox",
               "app_id": "QXBwOjE0"}))
    db.session.commit()
    return shop


def _sync_products(shop_id: str) -> Product:
    """One products page: the fixture's product, listed in both channels, unchanged."""
    node = json.loads(FIXTURE.read_text())["product"]
    page = {"data": {"products": {"pageInfo": {"hasNextPage": False, "endCursor": None},
                                  "edges": [{"node": node}]}}}
    with responses.RequestsMock() as rsps:
        rsps.post(API, json=page)
        assert run_sync(shop_id, "products").finished
    db.session.expire_all()
    return db.session.scalar(sa.select(Product).where(Product.shop_id == shop_id))


def _choose(client, csrf: str, slug: str):
    with responses.RequestsMock() as rsps:
        rsps.post(API, json=CHANNELS)
        return client.post("/admin/settings/saleor-channel",
                           data={"saleor_channel": slug, "csrf_token": csrf})


def test_chosen_channel_drives_prices_availability_and_vouchers(app, client):
    shop = _shop()
    before = _sync_products(shop.id)
    assert (before.price, before.currency) == (Decimal("3.00"), "USD")
    live = Offer(public_id="of_live", shop_id=shop.id, shopper_id="s1", cart_hash="h",
                 stage="idle_cart", status="offered", currency="USD", cart_value=Decimal(50),
                 created_at=utcnow(), expires_at=utcnow() + timedelta(minutes=30))
    db.session.add(live)
    db.session.commit()
    csrf = sign_in(app, client, shop)
    assert _choose(client, csrf, "channel-pln").status_code == 302
    db.session.expire_all()
    creds = shops.credentials_for(shop)
    assert (creds.extra["channel"], creds.extra["channel_id"]) == ("channel-pln",
                                                                    "Q2hhbm5lbDoy")
    assert shop.settings["saleor_channel"] == "channel-pln"
    assert db.session.get(Offer, live.id).status == "superseded"  # quoted on USD prices
    assert db.session.scalar(sa.select(AuditLog.id).where(
        AuditLog.shop_id == shop.id, AuditLog.action == "settings.saleor_channel"))
    # the same product, not changed on Saleor since: read again, priced in the new channel
    after = _sync_products(shop.id)
    assert (after.price, after.currency) == (Decimal("12.00"), "PLN")
    variants = {v.title: v for v in db.session.scalars(sa.select(Variant).where(
        Variant.product_id == after.id))}
    assert variants["1l"].available and variants["2l"].price is None
    assert not variants["2l"].available  # not listed in channel-pln: cannot be bought there
    assert 'value="channel-pln"' in client.get("/admin/settings").get_data(as_text=True)
    with responses.RequestsMock() as rsps:
        rsps.post(API, json={"data": {"voucherCreate": {"voucher": {"id": "Vm91Y2hlcjox"},
                                                        "errors": []}}})
        rsps.post(API, json={"data": {"voucherChannelListingUpdate": {
            "voucher": {"id": "Vm91Y2hlcjox"}, "errors": []}}})
        shops.connector_for(shop).create_discount(DiscountSpec(
            "SK-PLN", "fixed", Decimal("5"), datetime.now(UTC) + timedelta(hours=1)))
        listing = json.loads(rsps.calls[-1].request.body)["variables"]["input"]
    assert listing["addChannels"][0]["channelId"] == "Q2hhbm5lbDoy"


def test_a_channel_the_shop_does_not_have_is_refused_with_the_ones_it_has(app, client):
    shop = _shop()
    csrf = sign_in(app, client, shop)
    res = _choose(client, csrf, "channel-gbp")
    assert res.status_code == 422
    assert "Saleor has: default-channel, channel-pln" in res.get_data(as_text=True)
    db.session.expire_all()
    assert shops.credentials_for(shop).extra["channel"] == "default-channel"
    assert "saleor_channel" not in (shop.settings or {})


def test_other_platforms_have_no_channel_to_choose(app, client):
    shop = make_shop("generic")
    csrf = sign_in(app, client, shop)
    assert "Saleor channel" not in client.get("/admin/settings").get_data(as_text=True)
    res = client.post("/admin/settings/saleor-channel",
                      data={"saleor_channel": "default-channel", "csrf_token": csrf})
    assert res.status_code == 400


# -- orders follow the channel: the new one's history is backfilled, the old one's dropped
def _order_node(order_id: str, slug: str | None, created: str) -> dict:
    """``order_created.json`` (documented payload) as an order of ``slug`` (None: a payload
    from a subscription registered before it asked for the channel)."""
    node = json.loads((FIXTURE.parent / "order_created.json").read_text())["order"]
    node.update(id=order_id, created=created, updatedAt=created)
    if slug is None:
        del node["channel"]
    else:
        node["channel"] = {"slug": slug}
    return node


def _sync_orders(shop_id: str, *nodes: dict) -> dict:
    """One orders page from Saleor; returns the variables the sync sent for it."""
    page = {"data": {"orders": {"pageInfo": {"hasNextPage": False, "endCursor": None},
                                "edges": [{"node": n} for n in nodes]}}}
    with responses.RequestsMock() as rsps:
        # the sync also asks for the channel's currency (``plugin.offers.platform``), which
        # this page answers too: an answer of no readable shape, it changes nothing here
        rsps.post(API, json=page)
        result = run_sync(shop_id, "orders")
        sent = next(json.loads(c.request.body)["variables"] for c in rsps.calls
                    if "query Orders" in json.loads(c.request.body)["query"])
    assert result.finished and result.error is None
    db.session.expire_all()
    return sent


def _purchased_orders(shop_id: str) -> set[str]:
    from plugin.models import Interaction

    return set(db.session.scalars(sa.select(Interaction.order_external_id).where(
        Interaction.shop_id == shop_id, Interaction.kind == "purchase")))


def _stored_orders(shop_id: str) -> set[str]:
    from plugin.models import Order

    return set(db.session.scalars(sa.select(Order.external_id).where(Order.shop_id == shop_id)))


def test_a_new_channel_backfills_its_orders_and_drops_the_old_ones_purchases(app, client):
    from plugin.ingestion.sync import HISTORY_RESET, sync_state

    shop = _shop()
    # USD1: the old channel's; PLN1: the new channel's, mirrored before orders were
    # filtered by channel (its payload names none); PLN0, older, was never read.
    _sync_orders(shop.id, _order_node("USD1", "default-channel", "2025-11-20T11:00:00+00:00"),
                 _order_node("PLN1", None, "2025-11-21T11:00:00+00:00"))
    assert _purchased_orders(shop.id) == {"USD1", "PLN1"}
    assert sync_state(shop.id, "orders").watermark is not None  # incremental from now on
    csrf = sign_in(app, client, shop)
    assert _choose(client, csrf, "channel-pln").status_code == 302
    db.session.expire_all()
    assert _purchased_orders(shop.id) == set()  # the old channel's no longer teach the model
    assert _stored_orders(shop.id) == {"USD1", "PLN1"}  # kept for the dashboard
    assert shop.settings[HISTORY_RESET]
    # the next sync reads the new channel's whole history, not the changes since the
    # old channel's watermark
    sent = _sync_orders(shop.id, _order_node("PLN0", "channel-pln", "2024-03-01T09:00:00+00:00"),
                        _order_node("PLN1", "channel-pln", "2025-11-21T11:00:00+00:00"))
    assert sent["filter"] == {"channels": ["Q2hhbm5lbDoy"]}
    assert _purchased_orders(shop.id) == {"PLN0", "PLN1"}
    assert _stored_orders(shop.id) == {"USD1", "PLN1", "PLN0"}


def test_the_model_is_refit_once_the_new_channels_orders_have_landed(app, client, monkeypatch):
    from plugin import training
    from plugin.ingestion.sync import HISTORY_RESET
    from plugin.models import ModelVersion

    shop = _shop()
    _sync_orders(shop.id, _order_node("USD1", "default-channel", "2025-11-20T11:00:00+00:00"))
    # a fresh model, fitted just now: not due by age, and the backfilled orders are older
    db.session.add(ModelVersion(shop_id=shop.id, version="v1", status="ready",
                                finished_at=utcnow(), trained_until=utcnow()))
    db.session.commit()
    fits: list[str] = []
    monkeypatch.setattr(training, "train_shop", lambda shop_id, **kw: fits.append(shop_id))
    csrf = sign_in(app, client, shop)
    assert _choose(client, csrf, "channel-pln").status_code == 302
    assert training.retrain_due() == 0 and fits == []  # not before the backfill has landed
    _sync_orders(shop.id, _order_node("PLN0", "channel-pln", "2024-03-01T09:00:00+00:00"))
    assert training.retrain_due() == 1 and fits == [shop.id]
    db.session.expire_all()
    assert HISTORY_RESET not in shop.settings
    assert training.retrain_due() == 0 and fits == [shop.id]  # once


def test_a_new_channel_keeps_the_purchases_imported_from_csv(app, client, tmp_path):
    """The merchant's historic import came from no channel: the new channel's backfill
    can never bring it back, so it keeps teaching the model."""
    from plugin.ingestion.importer import import_history

    shop = _shop()
    history = tmp_path / "orders.csv"
    history.write_text("basket_id,customer_id,item_id,timestamp\n"
                       "old-1,c1,p1,2023-05-01T10:00:00Z\nold-1,c1,p2,2023-05-01T10:00:00Z\n")
    import_history(shop.id, history)
    _sync_orders(shop.id, _order_node("USD1", "default-channel", "2025-11-20T11:00:00+00:00"))
    assert _purchased_orders(shop.id) == {"old-1", "USD1"}
    csrf = sign_in(app, client, shop)
    assert _choose(client, csrf, "channel-pln").status_code == 302
    db.session.expire_all()
    assert _purchased_orders(shop.id) == {"old-1"}  # only the old channel's are dropped
    _sync_orders(shop.id, _order_node("PLN1", "channel-pln", "2025-11-21T11:00:00+00:00"))
    assert _purchased_orders(shop.id) == {"old-1", "PLN1"}


def _given(shop_id: str, order_id: str) -> set[int | None]:
    """Whom the order's purchase lines are for (None: the shopper)."""
    from plugin.models import Interaction

    return set(db.session.scalars(sa.select(Interaction.subprofile_id).where(
        Interaction.shop_id == shop_id, Interaction.kind == "purchase",
        Interaction.order_external_id == order_id)))


def test_an_order_the_new_channel_reads_again_is_still_for_whom_it_was(app, client):
    """"That was for Maya" on an order the backfill writes again (same order id) stays."""
    from plugin.subprofiles import service

    shop = _shop()
    _sync_orders(shop.id, _order_node("PLN1", None, "2025-11-21T11:00:00+00:00"),
                 _order_node("PLN2", None, "2025-11-22T11:00:00+00:00"))
    owner = "VXNlcjoyMg=="  # the fixture order's user
    maya = service.create_subprofile(shop, owner, "Maya")
    assert service.reassign(shop, owner, maya.id, order_id="PLN1")
    csrf = sign_in(app, client, shop)
    assert _choose(client, csrf, "channel-pln").status_code == 302
    db.session.expire_all()
    assert _purchased_orders(shop.id) == set()  # nothing of it feeds anything meanwhile
    _sync_orders(shop.id, _order_node("PLN1", "channel-pln", "2025-11-21T11:00:00+00:00"),
                 _order_node("PLN2", "channel-pln", "2025-11-22T11:00:00+00:00"))
    assert _given(shop.id, "PLN1") == {maya.id}
    assert _given(shop.id, "PLN2") == {None}


def test_a_sub_profile_deleted_while_its_order_was_set_aside_stays_forgotten(app, client):
    from plugin.models.events import FORGOTTEN_SUBPROFILE
    from plugin.subprofiles import service

    shop = _shop()
    _sync_orders(shop.id, _order_node("PLN1", None, "2025-11-21T11:00:00+00:00"))
    owner = "VXNlcjoyMg=="
    maya = service.create_subprofile(shop, owner, "Maya")
    assert service.reassign(shop, owner, maya.id, order_id="PLN1")
    csrf = sign_in(app, client, shop)
    assert _choose(client, csrf, "channel-pln").status_code == 302
    service.delete_subprofile(shop, owner, maya.id)
    _sync_orders(shop.id, _order_node("PLN1", "channel-pln", "2025-11-21T11:00:00+00:00"))
    assert _given(shop.id, "PLN1") == {FORGOTTEN_SUBPROFILE}  # not back in the owner's own


def test_a_sync_of_the_old_channel_running_through_the_switch_saves_nothing_over_it(
        app, client):
    """The switch resets the orders sync while a run of the old channel is between pages.
    Saving its place over the reset would make the new channel's backfill skip: resume
    mid-way, or read only the changes since the old channel's newest order."""
    import threading

    from plugin.ingestion.sync import sync_state

    shop = _shop()
    csrf = sign_in(app, client, shop)
    switched: list[int] = []

    def switch() -> None:
        with app.app_context():  # its own database session, as the admin's request has
            switched.append(client.post("/admin/settings/saleor-channel", data={
                "saleor_channel": "channel-pln", "csrf_token": csrf}).status_code)

    def page(node: dict, end: str | None) -> dict:
        return {"data": {"orders": {"pageInfo": {"hasNextPage": end is not None,
                                                 "endCursor": end},
                                    "edges": [{"node": node}]}}}

    def saleor(request):
        body = json.loads(request.body)
        if "channels" in body["query"]:
            return 200, {}, json.dumps(CHANNELS)
        if body["variables"]["after"] is None:
            first = _order_node("USD1", "default-channel", "2025-11-20T11:00:00+00:00")
            return 200, {}, json.dumps(page(first, "YXJyYXljb25uZWN0aW9uOjA="))
        merchant = threading.Thread(target=switch)  # between the old channel's two pages
        merchant.start()
        merchant.join()
        return 200, {}, json.dumps(page(_order_node(
            "USD2", "default-channel", "2025-11-21T11:00:00+00:00"), None))

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, API, callback=saleor)
        result = run_sync(shop.id, "orders")
    assert switched == [302]
    assert not result.finished and "reset" in result.error
    db.session.expire_all()
    state = sync_state(shop.id, "orders")
    assert (state.cursor, state.watermark) == (None, None)  # as the switch left it
    assert _purchased_orders(shop.id) == set()  # USD2, read after the switch, not kept
    sent = _sync_orders(shop.id, _order_node("PLN0", "channel-pln", "2024-03-01T09:00:00+00:00"))
    assert sent["filter"] == {"channels": ["Q2hhbm5lbDoy"]}  # the whole history, from the start
    assert _purchased_orders(shop.id) == {"PLN0"}


def test_the_old_channels_purchases_are_set_aside_until_the_backfill_writes_them_again(
        app, client):
    """The shopper's own lines as well as a sub-profile's: an order the new channel has
    comes back as purchases (once, not beside its set-aside copy); one it does not have
    stays set aside, still what the shopper owns."""
    from plugin.models import Interaction
    from plugin.models.events import SET_ASIDE

    shop = _shop()
    _sync_orders(shop.id, _order_node("USD1", "default-channel", "2025-11-20T11:00:00+00:00"),
                 _order_node("PLN1", None, "2025-11-21T11:00:00+00:00"))

    def lines() -> list[tuple[str, str]]:
        return sorted((order, kind) for order, kind in db.session.execute(sa.select(
            Interaction.order_external_id, Interaction.kind).where(
            Interaction.shop_id == shop.id)))

    before = lines()
    assert {kind for _, kind in before} == {"purchase"}
    csrf = sign_in(app, client, shop)
    assert _choose(client, csrf, "channel-pln").status_code == 302
    db.session.expire_all()
    assert lines() == [(order, SET_ASIDE) for order, _ in before]
    _sync_orders(shop.id, _order_node("PLN1", "channel-pln", "2025-11-21T11:00:00+00:00"))
    assert lines() == sorted((order, "purchase" if order == "PLN1" else SET_ASIDE)
                             for order, _ in before)
