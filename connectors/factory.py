"""Build each department's connector from its configuration: the one place credentials are resolved.

The engine never constructs connectors (it only knows the protocol); the CLI, the composition root, calls
:func:`connector_for` with a department from ``config/departments/``, which reads the named credentials from the
environment or files at that moment, never from the configuration itself. It also hands the core each tool's
:class:`~syncd.connector.Capabilities` (:data:`CAPABILITIES`), which the connector classes declare.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import timedelta

from connectors.asana import AsanaConnector
from connectors.jira import JiraConnector
from connectors.jira.workflow import Workflow
from connectors.pacing import BudgetTaker, RequestObserver, add_observer, remove_observer
from connectors.pacing import share_budgets as _share_budgets
from connectors.trello import TrelloConnector
from syncd.config import AsanaConnection, Department, JiraConnection, TrelloConnection
from syncd.connector import Capabilities, Connector

CAPABILITIES: Mapping[str, Capabilities] = {
    connector.kind: connector.capabilities for connector in (JiraConnector, TrelloConnector, AsanaConnector)
}
"""Each tool kind's capabilities, as its connector class declares them: what the core is given instead of a tool's
name (``syncd.mapping.compile_group``, ``syncd.checks.online_problems``, the daemon)."""

_WORKFLOWS: dict[tuple[str, str], Workflow] = {}
_WORKFLOWS_LOCK = threading.Lock()


def _shared_workflow(base_url: str, project: str) -> Workflow:
    """One learned workflow graph per Jira site and project, shared by the connectors of every thread."""
    with _WORKFLOWS_LOCK:
        return _WORKFLOWS.setdefault((base_url.rstrip("/"), project), Workflow())


def connector_for(department: Department, *, callback_url: str | None = None) -> Connector:
    """The connector of one department, credentials resolved now.

    ``callback_url`` is where this department's webhooks are delivered; Trello signs deliveries over it, so its
    connector needs it to verify them and to register the webhook (the other tools take it at registration).
    """
    connection = department.connection
    if isinstance(connection, JiraConnection):
        return JiraConnector(
            base_url=connection.base_url,
            user=connection.user,
            token=connection.token.resolve(),
            project_key=connection.project,
            people=department.people,
            transition_fields=connection.transition_fields,
            webhook_secret=connection.webhook_secret.resolve() if connection.webhook_secret else None,
            workflow=_shared_workflow(connection.base_url, connection.project),
            search_settle_s=connection.search_settle_s,
            deletion_check=timedelta(seconds=connection.deletion_check_s),
        )
    if isinstance(connection, TrelloConnection):
        return TrelloConnector(
            base_url=connection.base_url,
            key=connection.key.resolve(),
            token=connection.token.resolve(),
            board_id=connection.board,
            people=department.people,
            secret=connection.secret.resolve() if connection.secret else None,
            callback_url=callback_url,
        )
    assert isinstance(connection, AsanaConnection)  # the discriminated union has three members
    return AsanaConnector(
        base_url=connection.base_url,
        token=connection.token.resolve(),
        project_gid=connection.project,
        people=department.people,
    )


def observe_requests(observer: RequestObserver) -> Callable[[], None]:
    """Tell ``observer`` ``(tool, status)`` for every API request attempt; returns the function that stops it.

    Exposed here so the composition root can wire metrics without reaching into ``connectors.pacing``.
    """
    add_observer(observer)
    return lambda: remove_observer(observer)


def share_budgets(taker: BudgetTaker | None) -> None:
    """Take every credential's requests from ``taker`` (the store's shared buckets: replicas), or pace alone (None)."""
    _share_budgets(taker)
