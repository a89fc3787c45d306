"""Vendure: a Python connector plus the JS plugin (``vendure-plugin/``) merchants install."""

from connectors.vendure.connector import VendureConnector

__all__ = ["VendureConnector"]
