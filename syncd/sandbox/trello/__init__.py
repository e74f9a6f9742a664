"""An emulator of Trello's REST API for the sandbox (see :mod:`syncd.sandbox.trello.emulator`)."""

from syncd.sandbox.trello.actor import TrelloActor
from syncd.sandbox.trello.emulator import TrelloEmulator

__all__ = ["TrelloActor", "TrelloEmulator"]
