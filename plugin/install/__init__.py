"""Platform installs: Shopify OAuth, Saleor manifest + register handshake."""
