"""Trello, through py-trello (with our BaseUrlSession transport)."""

from connectors.trello.connector import TrelloConnector

__all__ = ["TrelloConnector"]
