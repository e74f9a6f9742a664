"""The Connector protocol every tool connector implements (defined in :mod:`syncd.connector`).

It lives in the engine package so that dependencies point inward: the engine calls connectors through it without
importing anything from ``connectors/``; connectors import it from here.
"""

from syncd.connector import Connector

__all__ = ["Connector"]
