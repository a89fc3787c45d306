"""The Shopify publication a shop's headless storefront sells through, as the merchant
chooses it.

The Storefront API (Headless channel, Hydrogen) shows and sells only the products
published on its storefront's publication, and each Headless storefront has its own,
named as the merchant named the storefront. Which one is the storefront Shopkeeper
serves cannot be told from the API (a shop may run several, and the Online Store, Point
of Sale and other channels are publications too), so none is picked for the merchant:
unset, availability is status and stock alone, as before this setting, and the settings
page says so. A guess could hide every product the storefront does sell.

The choice is checked against the publications Shopify lists now and kept in
``Shop.settings["shopify_publication"]`` (so a reinstall keeps it); ``shops.connector_for``
hands it to the connector. A shop whose token lacks ``read_publications`` (installed
before it was asked for) keeps today's behaviour and is told to open Shopkeeper from its
Shopify admin, which asks for the missing scope (``install.shopify.needs_oauth``).

Availability already mirrored was read for the old choice: the shop's products are marked
as never read and their sync starts over, as a new Saleor channel does.

A chosen publication the merchant deletes in Shopify (``publications/delete``) is cleared
as if none had been chosen, rather than left for every products read to fail on (Shopify
will not read a deleted publication), and the settings page says so until the merchant
chooses again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connectors.errors import ConnectorError
from connectors.shopify import Publication, ShopifyConnector, publications_granted
from connectors.shopify.client import AccessDenied
from plugin import shops
from plugin.admin.channel import read_products_again
from plugin.admin.settings import _forget_api_caches
from plugin.errors import BadRequest, NotFound
from plugin.extensions import db
from plugin.models import Shop
from plugin.models.types import utcnow

__all__ = ["DELETED", "SETTING", "PublicationChoice", "choice", "choose", "forget_deleted"]

#: ``Shop.settings`` key of the chosen publication's global id.
SETTING = "shopify_publication"
#: ``Shop.settings`` key: the chosen publication Shopify said was deleted (its id and
#: when), kept until the merchant chooses again, so the settings page can say why.
DELETED = "shopify_publication_deleted"


@dataclass(frozen=True)
class PublicationChoice:
    """What the settings page shows: the chosen id, the shop's publications (None: not
    readable now) and, when the choice is not in force, why."""

    chosen: str | None
    publications: list[Publication] | None
    hint: str | None


def choice(shop: Shop) -> PublicationChoice | None:
    """The storefront publication section of the settings page (None: not a Shopify shop,
    or one without credentials)."""
    if shop.platform != "shopify":
        return None
    chosen = (shop.settings or {}).get(SETTING) or None
    try:
        connector = shops.connector_for(shop)
    except NotFound:
        return None
    if not publications_granted(connector.credentials.extra):
        return PublicationChoice(chosen, None, (
            "Shopkeeper may not read your sales channels yet: open it from your Shopify "
            "admin and approve the new permission (read_publications). Until then, products "
            "not published to your storefront may be recommended."))
    try:
        found = _publications(connector)
    except ConnectorError:
        return PublicationChoice(chosen, None, "Could not read your publications from "
                                               "Shopify; reload the page to try again.")
    hint = None
    if not chosen and (shop.settings or {}).get(DELETED):
        hint = ("The publication you had chosen was deleted in Shopify, so Shopkeeper went "
                "back to the default: every active product in stock may be recommended. "
                "Choose your headless storefront's publication.")
    elif not chosen:
        hint = ("Choose the publication of your headless storefront: until then, products "
                "not published to it may be recommended.")
    elif all(p.id != chosen for p in found):  # Shopify refuses to read a deleted one
        hint = ("The chosen publication is no longer in your Shopify store, so products "
                "cannot be read: choose another.")
    return PublicationChoice(chosen, found, hint)


def choose(shop: Shop, publication_id: str) -> Publication | None:
    """Make ``publication_id`` the storefront's publication ("" for none); raises
    ``BadRequest`` naming the shop's publications when it is not one of them."""
    if shop.platform != "shopify":
        raise BadRequest("Only Shopify shops have publications.")
    wanted = (publication_id or "").strip()
    found = None
    if wanted:
        try:
            listed = _publications(shops.connector_for(shop))
        except AccessDenied:
            raise BadRequest("Shopkeeper may not read your publications yet.", {SETTING: [
                "open Shopkeeper from your Shopify admin to approve read_publications"]}
            ) from None
        except ConnectorError:
            raise BadRequest("Could not read the publications from Shopify; try again.",
                             {SETTING: ["Shopify did not answer"]}) from None
        found = next((p for p in listed if p.id == wanted), None)
        if found is None:
            known = ", ".join(p.name for p in listed) or "none"
            raise BadRequest("That is not a publication of this shop.",
                             {SETTING: [f"not a publication here; Shopify has: {known}"]})

    def chosen(settings: dict) -> dict:
        kept = {k: v for k, v in settings.items() if k not in (SETTING, DELETED)}
        return {**kept, SETTING: wanted} if wanted else kept

    update = shops.update_settings(shop.id, chosen)
    if (update.before.get(SETTING) or None) != (wanted or None):
        read_products_again(shop.id)
        shops.audit(shop.id, "settings.shopify_publication", publication=wanted or None)
    db.session.commit()
    _forget_api_caches()
    return found


def _publications(connector: object) -> list[Publication]:
    assert isinstance(connector, ShopifyConnector)
    return connector.publications()


def forget_deleted(shop: Shop, publication_id: str, *, at: datetime | None = None) -> bool:
    """Shopify deleted ``publication_id``: when it is the storefront's chosen publication,
    the choice is cleared (availability is status and stock alone, the default) and the
    products are read again without it; True when it was. The caller commits."""
    if shop.platform != "shopify" or not publication_id \
            or (shop.settings or {}).get(SETTING) != publication_id:
        return False
    deleted = {"id": publication_id, "at": (at or utcnow()).isoformat()}

    def cleared(settings: dict) -> dict:
        if settings.get(SETTING) != publication_id:  # the merchant chose another meanwhile
            return settings
        return {**{k: v for k, v in settings.items() if k != SETTING}, DELETED: deleted}

    update = shops.update_settings(shop.id, cleared)
    if update.after == update.before:
        return False
    read_products_again(shop.id)
    shops.audit(shop.id, "settings.shopify_publication", publication=None,
                deleted=publication_id)
    return True
