"""The Asana emulator: the route mixins put together, its credentials and its Python act-as API."""

from __future__ import annotations

from werkzeug.routing import Rule

from sandbox.asana.actor import AsanaActor
from sandbox.asana.base import API_PREFIX
from sandbox.asana.routes_attachments import AttachmentRoutes, attachment_rules
from sandbox.asana.routes_feed import FeedRoutes, feed_rules
from sandbox.asana.routes_tasks import TaskRoutes, task_rules
from sandbox.asana.routes_workspace import WorkspaceRoutes, workspace_rules
from sandbox.core import ApiError
from sandbox.seed import SERVICE_ACCOUNT, token_for


class AsanaEmulator(WorkspaceRoutes, TaskRoutes, AttachmentRoutes, FeedRoutes):
    """Asana's REST API 1.0 for the seeded Marketing workspace, served under ``<url>/api/1.0``.

    ``credentials()["url"]`` is the root URL (like ``https://app.asana.com``); the SDK's host is
    ``api_url`` (root + ``/api/1.0``), as ``asana.Configuration().host`` is for the real service.
    ``requests_per_minute`` is the per-token budget: 1500 (paid plans) by default, 150 for a free plan.
    Every seeded person authenticates with a personal access token; ``oauth_token(email, app)`` mints an OAuth
    one, the only kind that can use a task's custom external data.
    """

    def routes(self) -> list[Rule]:
        """Return every Asana route this emulator serves."""
        return [*workspace_rules(), *task_rules(), *attachment_rules(), *feed_rules()]

    @property
    def api_url(self) -> str:
        """The base the SDK talks to: ``<url>/api/1.0``."""
        return self.url + API_PREFIX

    def credentials(self) -> dict[str, str]:
        """Return the service account's connection info: root URL and personal access token."""
        return {"url": self.url, "token": token_for("asana", SERVICE_ACCOUNT)}

    def act_as(self, email: str) -> AsanaActor:
        """Return an actor that edits tasks as the seeded person with this e-mail."""
        user = self.state.users_by_email.get(email.lower())
        if user is None:
            raise ApiError(400, f"unknown person {email}")
        return AsanaActor(self, user)
