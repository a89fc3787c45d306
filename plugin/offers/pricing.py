"""What a cart is worth for an offer: never more than the catalogue says.

The storefront reports the cart, prices included, and anyone can send that request. A
discount sized on those prices lets one anonymous request claim "a £600 mug" and spend
the shop's daily budget. So each line counts at the lower of the reported price and the
mirrored catalogue price (variant first, then product): a sale price shown in the cart
still counts as shown, an inflated one does not. A product the catalogue does not know
(or does not price) counts as nothing.

A catalogue may price a product in several currencies (``Product.prices``, by variant too:
a Vendure channel's sold currencies); a cart in one of them is valued at the catalogue's
prices in it, as a cart in the catalogue's own currency is. Its offer is then in that
currency, and its money guardrails are the merchant's figures in it
(``Guardrails.currency_guardrails``): without them, or without a cost in it for a product
with a known cost, ``service.quote`` refuses it as ``currency_mismatch`` too, since the
budget, the minimum and the margin floor would each need an exchange rate.

A cart in a currency the catalogue has no price in cannot be compared with it (we keep
no exchange rates, and never guess one). Where the platform takes a discount's amounts in
the shop's currency and converts them at checkout (``Connector.converts_amounts``:
Shopify Markets), such a cart is valued at the catalogue's prices alone and the offer is
made in the catalogue's currency: its amount, minimum subtotal and budget charge are then
the shop's money, and the guardrails hold as for a cart in that currency. Everywhere else
it gets ``currency_mismatch``:

- Saleor: a voucher is listed (its value and minimum) in the shop's channel only, and a
  cart in another currency is in another channel, where that voucher does not apply.
  Listing it there would take that channel's prices (only the shop's channel is mirrored)
  and, for the budget in the shop's currency, an exchange rate Saleor does not give.
- Vendure: amounts are bare numbers in the order's currency (``plugin.offers.platform``).
- generic: the store applies the signed amount in its own currency; nothing converts it.

Percentages are no way round it: a code for "10% off" costs 10% of whatever the cart
holds at checkout, so neither the budget nor the approved amount would bound it (every
offer is a fixed amount: ``plugin.offers.candidates``).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Product, Variant
from plugin.models.catalog import price_in

if TYPE_CHECKING:
    from plugin.offers.service import CartIn

__all__ = ["catalogue_currencies", "priced_in_other_currency", "trusted_cart"]


def catalogue_currencies(shop_id: str, product_ids: set[str]) -> set[str]:
    """The currencies the catalogue prices these products in (upper case; empty: unknown)."""
    if not product_ids:
        return set()
    return {c.upper() for c in db.session.scalars(sa.select(Product.currency).distinct().where(
        Product.shop_id == shop_id, Product.external_id.in_(product_ids),
        Product.deleted_at.is_(None), Product.currency.is_not(None)))}


def priced_in_other_currency(shop_id: str, cart: CartIn) -> bool:
    """Whether ``cart`` is in a currency none of its products has as its own (so it was
    valued at the catalogue's prices in another currency, ``Product.prices``)."""
    currencies = catalogue_currencies(shop_id, {str(ln["product_id"]) for ln in cart.lines})
    return bool(currencies) and cart.currency.upper() not in currencies


def trusted_cart(shop_id: str, cart: CartIn, *, converts: bool = False
                 ) -> tuple[CartIn, str | None]:
    """The cart with each line's price capped by the catalogue, or a reason for no offer.

    Lines count at the catalogue's price in the cart's currency: its own price where that
    is the product's currency, else its price in ``prices``. ``converts``: the platform
    converts amounts in the shop's currency at checkout; a cart in a currency the
    catalogue has no price in then comes back in the catalogue's, at its prices (the
    reported ones are in a currency they cannot be compared with).

    Reasons: ``"currency_mismatch"`` (the catalogue prices none of the cart's products in
    its currency, and the platform does not convert or the catalogue is in several) and
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
    currency, converted = cart.currency.upper(), False
    if currencies and currency not in currencies and not any(
            _listed_price(ln, products, variants, currency) is not None for ln in cart.lines):
        if not converts or len(currencies) != 1:
            return cart, "currency_mismatch"
        currency, converted = next(iter(currencies)), True
    lines, priced = [], 0
    for line in cart.lines:
        listed = _listed_price(line, products, variants, currency)
        claimed = None if converted else Decimal(str(line["price"]))
        priced += listed is not None
        lines.append({**line, "price": Decimal(0) if listed is None
                      else listed if claimed is None else min(claimed, listed)})
    if not priced:
        return cart, "unpriced_cart"
    return replace(cart, currency=currency if converted else cart.currency, lines=lines), None


def _listed_price(line: dict, products: dict[str, Product],
                  variants: dict[str, Variant], currency: str) -> Decimal | None:
    """The line's catalogue price in ``currency`` (variant first, then product), if any."""
    product = products.get(str(line["product_id"]))
    if product is None:
        return None
    own = not product.currency or product.currency.upper() == currency  # unknown: as before
    variant = variants.get(str(line.get("variant_id") or ""))
    if variant is not None and variant.product_id == product.id:
        price = variant.price if own else variant.price_in(currency)
        if price is not None:
            return price
    return product.price if own else price_in(product.prices, currency)
