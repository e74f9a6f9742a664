"""The Jira emulator: Cloud (REST v2 and v3) or Server/Data Center (REST v2), as the seed says."""

from __future__ import annotations

from collections import Counter

from werkzeug.routing import Rule

from sandbox.core import JSON
from sandbox.jira.actor import JiraActor
from sandbox.jira.routes_issues import IssueRoutes
from sandbox.jira.routes_meta import MetaRoutes
from sandbox.jira.routes_search import SearchRoutes


class JiraEmulator(IssueRoutes, MetaRoutes, SearchRoutes):
    """A local Jira site serving the seed's Engineering projects through the real REST paths and shapes."""

    def routes(self) -> list[Rule]:
        """Every route of the site."""
        return [*self.meta_rules(), *self.issue_rules(), *self.search_rules()]

    def act_as(self, email: str) -> JiraActor:
        """Edit issues from Python as this person (recorded with them as author)."""
        return JiraActor(self, email)

    def admin_state(self) -> JSON:
        """Counts of issues per project, comments, changelog entries, properties and webhooks."""
        issues = list(self.state.issues.values())
        return {
            "deployment": self.seed.jira.deployment,
            "issues": dict(Counter(issue.project for issue in issues)),
            "comments": sum(len(issue.comments) for issue in issues),
            "histories": sum(len(issue.histories) for issue in issues),
            "properties": sum(len(issue.properties) for issue in issues),
            "webhooks": len(self.state.webhooks),
            "users": len(self.state.users),
        }
