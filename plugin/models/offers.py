"""Cart offers: quotes and their outcome, budget ledger, signing keys, nudges, attributions.

Every quote is stored, including the ``holdout`` and ``none`` answers: those rows are the
control observations the uplift model and the treatment-vs-control report learn from.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from plugin.extensions import db
from plugin.models.types import Money, UTCDateTime, utcnow


class Offer(db.Model):
    """One quote for one shopper's cart.

    ``status``: ``offered`` -> ``accepting`` -> ``accepted`` -> ``redeemed``; or ``expired``,
    ``dismissed``, ``superseded``; ``none`` (policy chose nothing) and ``holdout`` (control
    arm) never carry a discount. ``cart_hash`` binds the offer to the exact cart contents.
    ``creating_since``: a platform discount was asked for and its answer is not recorded yet
    (in flight, or lost): ``plugin.offers.reconcile`` settles it if no retry does.
    ``code``: the discount code, stored when it is first asked for (handed out only once
    ``accepted_at`` is set).
    """

    __tablename__ = "offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    shopper_id: Mapped[str] = mapped_column(String(255))
    cart_hash: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16))
    holdout: Mapped[bool] = mapped_column(default=False)
    kind: Mapped[str | None] = mapped_column(String(24), nullable=True)
    discount_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    value: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)  # expected cost
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    product_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    min_subtotal: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    cart_value: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    reason: Mapped[str] = mapped_column(String(500), default="")
    features: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    p_control: Mapped[float | None] = mapped_column(nullable=True)
    p_treated: Mapped[float | None] = mapped_column(nullable=True)
    kid: Mapped[str | None] = mapped_column(String(32), nullable=True)
    code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    platform_ref: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    converted: Mapped[bool | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    creating_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_offers_shop_shopper", "shop_id", "shopper_id"),
        Index("ix_offers_shop_time", "shop_id", "created_at"),
        Index("ix_offers_shop_code", "shop_id", "code"),
        Index("ix_offers_shop_creating", "shop_id", "creating_since"),
    )


class Redemption(db.Model):
    """An order that used an offer's discount code (attribution rule 1).

    A redaction of the order unlinks it (``order_external_id`` None) and keeps what the
    report read through the link: the order's currency and whether it was cancelled."""

    __tablename__ = "offer_redemptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"))
    order_external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    order_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    order_cancelled: Mapped[bool] = mapped_column(default=False, server_default=false())
    revenue: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("shop_id", "offer_id", name="uq_redemptions_shop_offer"),
    )


class OfferLedgerEntry(db.Model):
    """Budget ledger: a discount reserves its cost when created; an unused one releases it."""

    __tablename__ = "offer_ledger"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"))
    entry: Mapped[str] = mapped_column(String(16))  # reserve | release
    amount: Mapped[Decimal] = mapped_column(Money)  # signed: + reserve, - release
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("offer_id", "entry", name="uq_ledger_offer_entry"),
        Index("ix_ledger_shop_time", "shop_id", "at"),
    )


class OfferKey(db.Model):
    """A per-shop offer-signing key id; the key is derived from ``SECRET_KEY`` + ``salt``.

    ``status``: ``active`` (signs), ``retired`` (still verifies until its offers expire),
    ``revoked`` (verifies nothing).
    """

    __tablename__ = "offer_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    kid: Mapped[str] = mapped_column(String(32))
    salt: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (UniqueConstraint("shop_id", "kid", name="uq_offer_keys_shop_kid"),)


class Nudge(db.Model):
    """One outgoing nudge event (idle cart, wishlist) to the merchant's messaging tool."""

    __tablename__ = "offer_nudges"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    shopper_id: Mapped[str] = mapped_column(String(255))
    stage: Mapped[str] = mapped_column(String(24))
    delivery_id: Mapped[str] = mapped_column(String(64), unique=True)
    offer_id: Mapped[int | None] = mapped_column(nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # sent | failed | holdout
    response_code: Mapped[int | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_nudges_shop_shopper", "shop_id", "shopper_id", "created_at"),)


class ClickAttribution(db.Model):
    """An order line credited to a recommendation click (attribution rule 2); unlinked by
    a redaction of the order as a ``Redemption`` is."""

    __tablename__ = "click_attributions"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    order_external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    order_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    order_cancelled: Mapped[bool] = mapped_column(default=False, server_default=false())
    product_external_id: Mapped[str] = mapped_column(String(255))
    rec_id: Mapped[str] = mapped_column(String(48))
    revenue: Mapped[Decimal] = mapped_column(Money)
    clicked_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("shop_id", "order_external_id", "product_external_id",
                         name="uq_click_attr_order_product"),
    )
