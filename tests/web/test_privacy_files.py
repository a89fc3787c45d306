"""Erasure reaches the files Shopkeeper writes about shoppers, not only the database rows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import current_app

from plugin.extensions import db
from plugin.models.types import utcnow
from plugin.privacy import erase_customer, record_data_request
from plugin.shops import erase_shop
from tests.factories import make_shop


def test_erasing_a_customer_deletes_their_data_request_exports(app, shop):
    mine = record_data_request(shop.id, "c1")
    other = record_data_request(shop.id, "c2")
    db.session.commit()
    assert mine.exists() and other.exists()
    erase_customer(shop.id, "c1")
    db.session.commit()
    assert not mine.exists()
    assert other.exists()  # another customer's export is not touched



def test_an_erasure_that_rolls_back_keeps_the_customers_exports(app, shop):
    """The files go when the erasure commits, not before: a rolled-back erasure (a
    delivery that failed and will be retried) leaves the exports listed and downloadable,
    and a later, unrelated commit of the same session does not delete them either."""
    from plugin.privacy import data_request_file, data_requests, redact_orders

    mine = record_data_request(shop.id, "c1", order_ids=["4242"])
    guest = record_data_request(shop.id, None, order_ids=["4242", "4343"])
    db.session.commit()
    erase_customer(shop.id, "c1")
    redact_orders(shop.id, ["4242"])
    db.session.rollback()
    assert mine.exists() and guest.exists()
    theirs = record_data_request(shop.id, "c2")
    db.session.commit()
    # nor is the guest export written again without the order: nothing was redacted
    assert sorted(mine.parent.iterdir()) == sorted([mine, guest, theirs])
    assert [r["customer_id"] for r in data_requests(shop.id)].count("c1") == 1
    assert data_request_file(shop.id, mine.name) == mine
    erase_customer(shop.id, "c1")
    db.session.commit()
    assert not mine.exists()


def test_an_export_its_erasures_commit_outlived_is_hidden_then_swept(app, shop,
                                                                       monkeypatch):
    """The process stops between the erasure's commit and the file's delete: the export
    is flagged erased in the erasure's transaction, so the admin neither lists nor serves
    it, and the retention sweep deletes the file."""
    from plugin import after_commit, privacy_export
    from plugin.privacy import data_request_file, data_requests, purge_expired

    shop_id = shop.id
    mine = record_data_request(shop_id, "c1")
    db.session.commit()
    monkeypatch.setattr(after_commit, "_run_pending",
                        lambda session: session.info.pop(after_commit._PENDING, None))
    db.session.remove()  # a fresh session: its listener is the crashing one
    erase_customer(shop_id, "c1")
    db.session.commit()
    assert mine.exists()  # the crash: committed, the file still there
    assert data_requests(shop_id) == []
    assert data_request_file(shop_id, mine.name) is None
    purge_expired(shop_id, retention_days=3650)
    db.session.commit()
    assert not mine.exists()
    assert privacy_export.erased_export_names(shop_id) == set()

def test_erasing_a_shop_deletes_its_exports_and_model_artifacts(app):
    a, b = make_shop(), make_shop()
    files = {}
    for shop in (a, b):
        export = record_data_request(shop.id, "c1")
        artifacts = Path(current_app.config["MODEL_DIR"]) / shop.id / "v1"
        artifacts.mkdir(parents=True)
        (artifacts / "recommender.npz").write_bytes(b"per-shopper histories")
        files[shop.id] = (export, artifacts)
    db.session.commit()
    a_id = a.id
    erase_shop(a_id)
    db.session.commit()
    export, artifacts = files[a_id]
    assert not export.exists() and not export.parent.exists()
    assert not artifacts.exists() and not artifacts.parent.exists()
    export, artifacts = files[b.id]
    assert export.exists() and artifacts.exists()


def test_a_data_request_that_rolls_back_leaves_no_listed_export(app, shop):
    """Its file is written before the commit (an erasure in the same transaction must find
    it), but no audit entry says it was made: neither listed nor served, and the retention
    purge deletes it once it is an hour old. A committed one stays listed."""
    from plugin.privacy import data_request_file, data_requests, purge_expired, redact_orders

    shop_id = shop.id
    lost = record_data_request(shop_id, "c1")
    db.session.rollback()
    kept = record_data_request(shop_id, "c2")
    db.session.commit()
    assert lost.exists()
    assert [r["name"] for r in data_requests(shop_id)] == [kept.name]
    assert data_request_file(shop_id, lost.name) is None
    assert data_request_file(shop_id, kept.name) == kept
    purge_expired(shop_id, retention_days=3650)
    assert lost.exists()  # its request may still be committing
    guest = record_data_request(shop_id, None, order_ids=["4242", "4243"])
    db.session.rollback()
    redact_orders(shop_id, ["4242"])  # deletes it, and writes no listed copy of it again
    db.session.commit()
    assert not guest.exists()
    assert [r["name"] for r in data_requests(shop_id)] == [kept.name]
    purge_expired(shop_id, retention_days=3650, now=utcnow() + timedelta(hours=2))
    db.session.commit()
    assert not lost.exists() and kept.exists()


def test_a_shop_erasure_that_rolls_back_keeps_its_files(app, shop):
    """The folders go when the erasure commits: a rolled-back one (a shop/redact delivery
    that failed and will be retried) leaves a shop whose exports and models are still
    there, and a later commit of the same session does not delete them either."""
    export = record_data_request(shop.id, "c1")
    artifacts = Path(current_app.config["MODEL_DIR"]) / shop.id / "v1"
    artifacts.mkdir(parents=True)
    db.session.commit()
    shop_id = shop.id
    erase_shop(shop_id)
    db.session.rollback()
    assert export.exists() and artifacts.exists()
    record_data_request(shop_id, "c2")
    db.session.commit()
    assert export.exists() and artifacts.exists()
    erase_shop(shop_id)
    db.session.commit()
    assert not export.exists() and not artifacts.exists()


def test_the_folders_of_a_shop_its_erasures_commit_outlived_are_swept(app):
    """The process stopped between the shop erasure's commit and the folders' delete (or
    a fit still running wrote its artifacts after it): the hourly purge deletes the
    folders of shops that no longer exist, once they are an hour old; other shops' stay."""
    import os
    import time

    from plugin.shops import purge_uninstalled

    gone, kept = make_shop(), make_shop()
    db.session.commit()
    gone_id, kept_id = gone.id, kept.id
    erase_shop(gone_id)
    db.session.commit()
    folders = {}
    for shop_id in (gone_id, kept_id):  # what the erasure's commit outlived, and a shop's
        export = Path(current_app.instance_path) / "exports" / shop_id / "customer-0-1.json"
        artifacts = Path(current_app.config["MODEL_DIR"]) / shop_id / "v1" / "model.npz"
        for path in (export, artifacts):
            path.parent.mkdir(parents=True)
            path.write_text("per-shopper data")
        folders[shop_id] = (export.parent, artifacts.parent.parent)
    purge_uninstalled()
    assert all(folder.exists() for folder in folders[gone_id])  # new: a shop being created?
    old = time.time() - 86400  # a day: more than the grace
    for folder in (*folders[gone_id], *folders[kept_id]):
        os.utime(folder, (old, old))
    purge_uninstalled()
    assert not any(folder.exists() for folder in folders[gone_id])
    assert all(folder.exists() for folder in folders[kept_id])


def test_export_holds_everything_kept_about_the_customer(app, shop):
    """Consent answer, prompt state, cached list, shown lists and carts are theirs too."""
    from plugin.models import (
        Cart,
        Impression,
        ModelVersion,
        PromptState,
        RecommendationCache,
        ShopperConsent,
    )
    from plugin.models.types import utcnow
    from plugin.privacy import export_customer

    now = utcnow()
    version = ModelVersion(shop_id=shop.id, version="v1", status="ready")
    db.session.add(version)
    db.session.flush()
    db.session.add_all([
        ShopperConsent(shop_id=shop.id, shopper_id="c1", granted=True),
        PromptState(shop_id=shop.id, shopper_id="c1", never_ask=True, pending={},
                    last_asked_at=now),
        RecommendationCache(shop_id=shop.id, shopper_id="c1", model_version_id=version.id,
                            items=[["p1", 0.5, "itemknn", "because you bought p2"]]),
        Impression(shop_id=shop.id, rec_id="r-export", shopper_id="c1", placement="for_you",
                   items=["p1"], sources=["itemknn"], holdout=False, personalized=True),
        Cart(shop_id=shop.id, external_id="cart1", customer_external_id="c1", currency="GBP",
             lines=[{"product_id": "p1", "quantity": 1, "price": "2.00"}],
             source_updated_at=now),
        # another customer's rows stay out of c1's export
        ShopperConsent(shop_id=shop.id, shopper_id="c2", granted=False),
        Cart(shop_id=shop.id, external_id="cart2", customer_external_id="c2", lines=[],
             source_updated_at=now),
    ])
    db.session.commit()
    found = export_customer(shop.id, "c1")
    assert found["consent"]["granted"] is True
    assert found["prompt"]["never_ask"] is True
    assert [r["product_id"] for r in found["recommendations"]] == ["p1"]
    assert found["recommendations"][0]["reason"] == "because you bought p2"
    assert [i["items"] for i in found["impressions"]] == [["p1"]]
    assert [c["id"] for c in found["carts"]] == ["cart1"]
    assert found["carts"][0]["lines"][0]["product_id"] == "p1"
    empty = export_customer(shop.id, "nobody")
    assert empty["consent"] is None and empty["prompt"] is None
    assert empty["recommendations"] == empty["impressions"] == empty["carts"] == []


def test_erasure_unlinks_carts_that_name_the_customer_as_shopper(app, shop):
    import sqlalchemy as sa

    from plugin.models import Cart
    from plugin.models.types import utcnow

    db.session.add_all([
        Cart(shop_id=shop.id, external_id="cart1", shopper_id="c1", lines=[],
             source_updated_at=utcnow()),
        Cart(shop_id=shop.id, external_id="cart2", customer_external_id="c1", shopper_id="c1",
             lines=[], source_updated_at=utcnow()),
    ])
    db.session.commit()
    erase_customer(shop.id, "c1")
    db.session.commit()
    linked = db.session.scalar(sa.select(sa.func.count()).select_from(Cart).where(
        sa.or_(Cart.shopper_id == "c1", Cart.customer_external_id == "c1")))
    assert linked == 0


def _age(path: Path, days: int) -> Path:
    """The same export as if requested ``days`` ago (the request time is in its name, as
    in the audit entry that lists it)."""
    import re

    import sqlalchemy as sa

    from plugin.models import AuditLog
    from plugin.models.types import utcnow

    then = int((utcnow() - timedelta(days=days)).timestamp())
    older = path.with_name(re.sub(r"-\d+\.json$", f"-{then}.json", path.name))
    path.rename(older)
    for entry in db.session.scalars(sa.select(AuditLog).where(
            AuditLog.action == "privacy.data_request")):
        if entry.detail.get("file") == path.name:
            entry.detail = {**entry.detail, "file": older.name}
    return older


def test_data_request_exports_are_listed_and_downloadable_in_the_admin(app, client, shop):
    from tests.admin.conftest import sign_in

    path = record_data_request(shop.id, "cust-7")
    db.session.commit()
    sign_in(app, client, shop)
    page = client.get("/admin/privacy").get_data(as_text=True)
    assert "cust-7" in page and path.name in page
    r = client.get(f"/admin/privacy/requests/{path.name}")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert r.get_json()["customer_id"] == "cust-7"
    assert "attachment" in r.headers["Content-Disposition"]


def test_a_shop_cannot_download_another_shops_export_or_escape_its_folder(app, client, shop):
    other = make_shop()
    theirs = record_data_request(other.id, "other-shops-customer")
    (Path(current_app.instance_path) / "exports" / "secret.json").write_text("{}")
    db.session.commit()
    from tests.admin.conftest import sign_in

    sign_in(app, client, shop)
    # an id no random CSRF token can hold by chance ("c9" can)
    assert "other-shops-customer" not in client.get("/admin/privacy").get_data(as_text=True)
    for name in (theirs.name, "..%2Fsecret.json", "../secret.json", "secret.json",
                 f"..%2F{other.id}%2F{theirs.name}"):
        r = client.get(f"/admin/privacy/requests/{name}")
        assert r.status_code == 404, name


def test_exports_are_deleted_after_thirty_days_whatever_the_retention(app, shop):
    from plugin.privacy import EXPORT_KEEP_DAYS, data_requests, purge_expired

    old = _age(record_data_request(shop.id, "c1"), EXPORT_KEEP_DAYS + 1)
    fresh = _age(record_data_request(shop.id, "c2"), EXPORT_KEEP_DAYS - 1)
    db.session.commit()
    assert [r["customer_id"] for r in data_requests(shop.id)] == ["c2", "c1"]
    purge_expired(shop.id, retention_days=3650)
    assert not old.exists() and fresh.exists()
    assert [r["customer_id"] for r in data_requests(shop.id)] == ["c2"]


def test_a_redactions_guest_orders_lose_their_purchases(client, shop, shop_secret):
    """A guest order's lines are purchases of shopper ``order:<id>``; a redaction naming
    the order (Shopify's ``orders_to_redact``) erases them, another guest's stay."""
    import sqlalchemy as sa

    from plugin.models import Interaction, Order
    from plugin.webhooks import inbox
    from tests.factories import order_body, post_webhook

    for oid in ("o-guest", "o-other"):
        post_webhook(client, shop.id, shop_secret, "orders/upsert",
                     order_body(oid, customer_id=None))
    inbox.process_inbox()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interaction).where(
        Interaction.shopper_id == "order:o-guest")) == 1
    erase_customer(shop.id, "c1", order_ids=["o-guest"])
    db.session.commit()
    left = db.session.scalars(sa.select(Interaction.shopper_id).where(
        Interaction.shop_id == shop.id)).all()
    assert left == ["order:o-other"]
    assert sorted(db.session.scalars(sa.select(Order.external_id))) == ["o-guest", "o-other"]


def test_export_shows_the_webhook_bodies_still_kept_about_the_customer(client, shop,
                                                                       shop_secret):
    """A delivery not applied yet (or failed, dead) keeps the platform's whole body, the
    most personal copy held: the export shows it, not another customer's."""
    from plugin.privacy import export_customer
    from tests.factories import order_body, post_webhook

    post_webhook(client, shop.id, shop_secret, "orders/upsert",
                 order_body("o1", customer_id="c1", shipping_name="Jane Doe"))
    post_webhook(client, shop.id, shop_secret, "orders/upsert",
                 order_body("o2", customer_id="c2", shipping_name="John Roe"))
    kept = export_customer(shop.id, "c1")["webhook_deliveries"]
    assert [(d["topic"], d["status"], d["body"]["shipping_name"]) for d in kept] == [
        ("orders/upsert", "pending", "Jane Doe")]
    erase_customer(shop.id, "c1")
    db.session.commit()
    assert export_customer(shop.id, "c1")["webhook_deliveries"] == []
    assert len(export_customer(shop.id, "c2")["webhook_deliveries"]) == 1


def test_what_an_idle_anonymous_browser_left_expires_with_the_retention(app, shop):
    """A browser that never signed in has no erasure event: its sub-profile ("Maya, 4-6"),
    prompt state and consent answer go once none of it changed within the retention
    period. A browser still in use keeps everything, and so does a customer."""
    import sqlalchemy as sa

    from plugin.models import Interaction, PromptState, ShopperConsent, SubProfile
    from plugin.models.types import utcnow
    from plugin.privacy import purge_expired

    idle, busy, fresh = ("anon_" + c * 22 for c in "abc")
    old, now = utcnow() - timedelta(days=400), utcnow()
    for shopper in (idle, busy, fresh, "c1"):
        changed = now if shopper == fresh else old
        profile = SubProfile(shop_id=shop.id, owner_id=shopper, name="Maya", age_band="4-6",
                             kind="person", created_at=old, updated_at=changed)
        db.session.add(profile)
        db.session.flush()
        db.session.add_all([
            PromptState(shop_id=shop.id, shopper_id=shopper, active_subprofile_id=profile.id,
                        updated_at=old),
            ShopperConsent(shop_id=shop.id, shopper_id=shopper, granted=True, updated_at=old)])
    db.session.add(Interaction(shop_id=shop.id, shopper_id=busy, kind="view",
                               product_external_id="p1", occurred_at=now - timedelta(days=2)))
    db.session.commit()
    purge_expired(shop.id, retention_days=365)
    db.session.commit()
    for model, column in ((SubProfile, SubProfile.owner_id),
                          (PromptState, PromptState.shopper_id),
                          (ShopperConsent, ShopperConsent.shopper_id)):
        left = set(db.session.scalars(sa.select(column).where(model.shop_id == shop.id)))
        assert left == {busy, fresh, "c1"}, model.__name__


def test_redacting_orders_renews_the_data_request_exports_holding_them(app, shop):
    """A guest checkout's export names its orders, and a customer's export may list a
    guest order the request named: a redaction of the order deletes both, as an erasure
    deletes the customer's exports, and writes each again without the redacted order
    (deleted whole, the customer's request went unanswered; a guest export left with no
    order is not written again). Exports not holding the order stay as they are."""
    import json
    from datetime import UTC, datetime
    from decimal import Decimal

    from plugin.models import Order
    from plugin.privacy import data_request_file, data_requests, redact_orders

    at = datetime(2024, 1, 1, tzinfo=UTC)
    for oid in ("4242", "4343", "4444"):
        db.session.add(Order(shop_id=shop.id, external_id=oid, currency="GBP",
                             total=Decimal(5), created_at=at, source_updated_at=at))
    db.session.commit()
    guest = record_data_request(shop.id, None, order_ids=["4242", "4343"])
    listed = record_data_request(shop.id, "c1", order_ids=["4343", "4444"])
    alone = record_data_request(shop.id, None, order_ids=["4343"])
    others = [record_data_request(shop.id, None, order_ids=["5555"]),
              record_data_request(shop.id, "c2")]
    db.session.commit()
    redact_orders(shop.id, ["4343"])
    db.session.commit()
    assert not guest.exists() and not listed.exists() and not alone.exists()
    assert all(path.exists() for path in others)
    renewed = {}
    for request in data_requests(shop.id):
        path = data_request_file(shop.id, request["name"])
        if path not in others:
            export = json.loads(path.read_text())
            renewed[export["customer_id"]] = sorted(o["id"] for o in export["orders"])
            assert "4343" not in path.read_text()
    assert renewed == {"c1": ["4444"], None: ["4242"]}


def test_an_exports_deletion_is_shown_on_the_shops_clock(app, client, shop, monkeypatch):
    """Requested at 20:00 in Los Angeles on 24 Nov (04:00 UTC on the 25th), the export goes
    at 20:00 on 24 Dec there: the page must not promise the merchant UTC's 25 December."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from plugin import privacy
    from tests.admin.conftest import sign_in

    shop.settings = {**(shop.settings or {}), "timezone": "America/Los_Angeles"}
    db.session.commit()
    asked = datetime(2026, 11, 24, 20, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    monkeypatch.setattr(privacy, "utcnow", lambda: asked.astimezone(UTC))
    record_data_request(shop.id, "cust-la")
    db.session.commit()
    sign_in(app, client, shop)
    page = client.get("/admin/privacy").get_data(as_text=True)
    assert "2026-11-24 20:00 PST" in page  # requested
    assert "2026-12-24 20:00 PST" in page  # deleted after
    assert "2026-12-25" not in page
