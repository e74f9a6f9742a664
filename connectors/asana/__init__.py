"""Asana, through the official asana v5 SDK."""

from connectors.asana.connector import AsanaConnector

__all__ = ["AsanaConnector"]
