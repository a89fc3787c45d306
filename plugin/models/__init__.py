"""All tables; every row is scoped to a shop."""

from plugin.models.catalog import Product, Variant
from plugin.models.events import AuditLog, Interaction, WebhookDelivery
from plugin.models.orders import Cart, Order, OrderLine
from plugin.models.shoppers import Customer
from plugin.models.tenancy import Installation, Shop, SyncState

__all__ = [
    "AuditLog",
    "Cart",
    "Customer",
    "Installation",
    "Interaction",
    "Order",
    "OrderLine",
    "Product",
    "Shop",
    "SyncState",
    "Variant",
    "WebhookDelivery",
]
