"""The Jira emulator (Cloud or Server/Data Center): see :mod:`sandbox.jira.emulator`."""

from sandbox.jira.actor import JiraActor
from sandbox.jira.emulator import JiraEmulator

__all__ = ["JiraActor", "JiraEmulator"]
