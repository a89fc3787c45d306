"""What a cart is worth for an offer: never more than the catalogue says.

The storefront reports the cart, prices included, and anyone can send that request. A
discount sized on those prices lets one anonymous request claim "a £600 mug" and spend
the shop's daily budget. So each line counts at the lower of the reported price and the
mirrored catalogue price (variant first, then product): a sale price shown in the cart
still counts as shown, an inflated one does not. A product the catalogue does not know
(or does not price) counts as nothing, and a cart in another currency than the
catalogue's gets no offer: its prices cannot be compared.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Product, Variant

if TYPE_CHECKING:
    from plugin.offers.service import CartIn

__all__ = ["trusted_cart"]


def trusted_cart(shop_id: str, cart: CartIn) -> tuple[CartIn, str | None]:
    """The cart with each line's price capped by the catalogue, or a reason for no offer.

    Reasons: ``"currency_mismatch"`` (the catalogue prices in another currency) and
    ``"unpriced_cart"`` (no line's product is known to the catalogue with a price).
    """
    product_ids = {str(ln["product_id"]) for ln in cart.lines}
    variant_ids = {str(ln["variant_id"]) for ln in cart.lines if ln.get("variant_id")}
    products = {p.external_id: p for p in db.session.scalars(sa.select(Product).where(
        Product.shop_id == shop_id, Product.external_id.in_(product_ids),
        Product.deleted_at.is_(None)))}
    variants = {v.external_id: v for v in db.session.scalars(sa.select(Variant).where(
        Variant.shop_id == shop_id, Variant.external_id.in_(variant_ids)))} \
        if variant_ids else {}
    currencies = {p.currency.upper() for p in products.values() if p.currency}
    if currencies and cart.currency.upper() not in currencies:
        return cart, "currency_mismatch"
    lines, priced = [], 0
    for line in cart.lines:
        listed = _listed_price(line, products, variants)
        claimed = Decimal(str(line["price"]))
        priced += listed is not None
        lines.append({**line, "price": Decimal(0) if listed is None else min(claimed, listed)})
    if not priced:
        return cart, "unpriced_cart"
    return replace(cart, lines=lines), None


def _listed_price(line: dict, products: dict[str, Product],
                  variants: dict[str, Variant]) -> Decimal | None:
    product = products.get(str(line["product_id"]))
    if product is None:
        return None
    variant = variants.get(str(line.get("variant_id") or ""))
    if variant is not None and variant.product_id == product.id and variant.price is not None:
        return variant.price
    return product.price
