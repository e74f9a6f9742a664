"""The Jira emulator (Cloud or Server/Data Center): see :mod:`syncd.sandbox.jira.emulator`."""

from syncd.sandbox.jira.actor import JiraActor
from syncd.sandbox.jira.emulator import JiraEmulator

__all__ = ["JiraActor", "JiraEmulator"]
