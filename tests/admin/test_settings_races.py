"""Writers of ``Shop.settings`` replace one JSON dict: none may revert another's keys.

Each race is played in one thread: the first writer reads, a second one (its own app
context, so its own session and connection, as another request or worker process) writes
and commits, then the first writes. Both updates must be in the stored settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from plugin import localtime, shops, training
from plugin.admin import settings as admin_settings
from plugin.extensions import db
from plugin.ingestion.sync import HISTORY_RESET
from plugin.models import AuditLog, Shop
from plugin.offers import platform
from tests.factories import make_shop

MARK = "2026-11-20T10:00:00+00:00"
#: the merchant's save in these races: the privacy section
SAVED = {"privacy": {"consent_required": True, "retention_days": 400}}


class _Sells:
    """A connector whose currencies call (a network round trip) lets ``meanwhile`` run."""

    amounts_keep_currency = False

    def __init__(self, sold: list[str], meanwhile: Callable[[], None] | None = None):
        self.sold, self.meanwhile = sold, meanwhile

    def sold_currencies(self) -> list[str]:
        if self.meanwhile:
            self.meanwhile()
        return self.sold

    def pins_order_currency(self) -> bool:
        return False


def _elsewhere(app, shop_id: str, write: Callable[[Shop], Any]) -> None:
    """``write`` in a session of its own (another request or worker), committed."""
    with app.app_context():
        write(db.session.get(Shop, shop_id))
        db.session.commit()


def _stored(app, shop_id: str) -> dict[str, Any]:
    with app.app_context():
        return dict(db.session.get(Shop, shop_id).settings)


def _loaded(shop_id: str) -> Shop:
    """The shop as this session reads it (the first writer's read)."""
    shop = db.session.get(Shop, shop_id)
    assert shop.settings is not None
    return shop


def _shop(**settings: Any) -> Shop:
    shop = make_shop("vendure")
    shop.settings = settings
    db.session.commit()
    return shop


def _merchant_saves(shop: Shop) -> None:
    admin_settings.save(shop, SAVED)


def _saved(stored: dict[str, Any]) -> bool:
    return stored.get("consent_required") is True and stored.get("retention_days") == 400


def test_a_currencies_reading_stored_while_the_merchant_saved_keeps_the_save(app):
    shop = _shop()
    worker = _loaded(shop.id)
    assert platform.refresh(worker, _Sells(["GBP"], meanwhile=lambda: _elsewhere(
        app, shop.id, _merchant_saves)))
    db.session.commit()
    stored = _stored(app, shop.id)
    assert _saved(stored)
    assert stored[platform.KEY]["sold"] == ["GBP"]


def test_a_merchants_save_read_before_the_currencies_keeps_them(app):
    shop = _shop()
    merchant = _loaded(shop.id)
    _elsewhere(app, shop.id, lambda s: platform.refresh(s, _Sells(["EUR", "GBP"])))
    _merchant_saves(merchant)
    stored = _stored(app, shop.id)
    assert _saved(stored)
    assert stored[platform.KEY]["sold"] == ["EUR", "GBP"]
    assert merchant.settings == stored  # what the page shows next is what is stored
    entry = db.session.scalars(sa.select(AuditLog).filter_by(
        shop_id=shop.id, action="settings.changed")).one()
    assert platform.KEY not in entry.detail["keys"]  # the save changed only its own


def test_training_clearing_its_mark_while_the_merchant_saved_keeps_the_save(app):
    shop = _shop(**{HISTORY_RESET: MARK})
    _loaded(shop.id)  # training read the mark before its fit
    _elsewhere(app, shop.id, _merchant_saves)
    training._forget_history_reset(shop.id, MARK)
    stored = _stored(app, shop.id)
    assert _saved(stored)
    assert HISTORY_RESET not in stored


def test_a_merchants_save_read_before_training_cleared_its_mark_does_not_restore_it(app):
    shop = _shop(**{HISTORY_RESET: MARK})
    merchant = _loaded(shop.id)
    _elsewhere(app, shop.id, lambda s: training._forget_history_reset(s.id, MARK))
    _merchant_saves(merchant)
    stored = _stored(app, shop.id)
    assert _saved(stored)
    assert HISTORY_RESET not in stored  # else the model is refit for it again and again


def test_a_guardrail_change_still_withdraws_offers_and_is_audited_once(app, monkeypatch):
    withdrawn: list[str] = []
    monkeypatch.setattr(admin_settings, "withdraw_unaccepted",
                        lambda shop_id: withdrawn.append(shop_id) or 2)
    shop = _shop()
    merchant = _loaded(shop.id)
    _elsewhere(app, shop.id, lambda s: platform.refresh(s, _Sells(["GBP"])))
    admin_settings.save(merchant, {"offers": {"max_discount_pct": "7"}})
    stored = _stored(app, shop.id)
    assert stored["offers"]["max_discount_pct"] == "7.00" and platform.KEY in stored
    assert withdrawn == [shop.id]
    actions = db.session.scalars(sa.select(AuditLog.action).filter_by(shop_id=shop.id)).all()
    assert actions.count("settings.changed") == 1 and actions.count("offers.withdrawn") == 1


def test_the_platforms_zone_read_before_the_merchant_chose_one_does_not_replace_it(app):
    shop = _shop()
    worker = _loaded(shop.id)  # the sync saw no zone, then asks the platform for it
    _elsewhere(app, shop.id, lambda s: admin_settings.save(s, {"shop": {
        "timezone": "Europe/Paris"}}))
    assert not localtime.adopt_platform_zone(worker, "America/New_York")
    db.session.commit()
    assert _stored(app, shop.id)["timezone"] == "Europe/Paris"


def test_update_settings_applies_the_change_again_to_what_another_writer_stored(app):
    shop = _shop(kept="yes")
    seen: list[dict[str, Any]] = []

    def change(settings: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(settings))
        if len(seen) == 1:  # another writer commits between this read and the write
            _elsewhere(app, shop.id,
                       lambda s: shops.update_settings(s.id, lambda d: {**d, "b": 2}))
        return {**settings, "a": 1}

    update = shops.update_settings(shop.id, change)
    db.session.commit()
    assert seen == [{"kept": "yes"}, {"kept": "yes", "b": 2}]
    assert update.changed == ["a"]
    assert _stored(app, shop.id) == {"kept": "yes", "a": 1, "b": 2}
