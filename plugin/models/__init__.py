"""All tables; every row is scoped to a shop."""

from plugin.models.admin_sessions import AdminLinkUse, AdminSession
from plugin.models.catalog import Product, Variant
from plugin.models.events import AuditLog, Interaction, WebhookDelivery
from plugin.models.offers import (
    ClickAttribution,
    Nudge,
    Offer,
    OfferKey,
    OfferLedgerEntry,
    Redemption,
)
from plugin.models.operations import JobRun, SchedulerLease
from plugin.models.orders import Cart, Order, OrderLine, RedactedOrder
from plugin.models.serving import Impression, ModelVersion, RecommendationCache, ShopperConsent
from plugin.models.shoppers import AnonymousLink, Customer, ErasedExport
from plugin.models.subprofiles import PromptState, SubProfile
from plugin.models.tenancy import Installation, Shop, SyncState

__all__ = [
    "AdminLinkUse",
    "AdminSession",
    "AnonymousLink",
    "AuditLog",
    "Cart",
    "ClickAttribution",
    "Customer",
    "ErasedExport",
    "Impression",
    "Installation",
    "Interaction",
    "JobRun",
    "ModelVersion",
    "Nudge",
    "Offer",
    "OfferKey",
    "OfferLedgerEntry",
    "Order",
    "OrderLine",
    "Product",
    "PromptState",
    "RecommendationCache",
    "RedactedOrder",
    "Redemption",
    "SchedulerLease",
    "Shop",
    "ShopperConsent",
    "SubProfile",
    "SyncState",
    "Variant",
    "WebhookDelivery",
]
