"""An emulator of Asana's REST API for the sandbox (see :class:`AsanaEmulator`)."""

from syncd.sandbox.asana.actor import AsanaActor
from syncd.sandbox.asana.emulator import AsanaEmulator

__all__ = ["AsanaActor", "AsanaEmulator"]
