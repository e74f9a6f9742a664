"""Jira Cloud and Server / Data Center, through python-jira."""

from connectors.jira.connector import JiraConnector

__all__ = ["JiraConnector"]
