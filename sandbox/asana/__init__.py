"""An emulator of Asana's REST API for the sandbox (see :class:`AsanaEmulator`)."""

from sandbox.asana.actor import AsanaActor
from sandbox.asana.emulator import AsanaEmulator

__all__ = ["AsanaActor", "AsanaEmulator"]
