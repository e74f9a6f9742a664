"""An emulator of Trello's REST API for the sandbox (see :mod:`sandbox.trello.emulator`)."""

from sandbox.trello.actor import TrelloActor
from sandbox.trello.emulator import TrelloEmulator

__all__ = ["TrelloActor", "TrelloEmulator"]
