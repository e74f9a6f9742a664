"""Act as a named person from Python: the edits people make in Jira's UI, for tests of the sync engine.

Each method takes the emulator's lock and goes through the same service as the REST handlers, so the change is
recorded with that person as author in the changelog and announced to webhooks with them as ``user``.
"""

from __future__ import annotations

from collections import deque
from datetime import date
from typing import TYPE_CHECKING, Any

from sandbox.core import JSON
from sandbox.jira.model import RESOLUTIONS, Issue, Transition
from sandbox.jira.richtext import wiki_to_adf

if TYPE_CHECKING:
    from sandbox.jira.base import JiraBase

PEOPLE_FIELDS = ("assignee", "reporter")


class JiraActor:
    """One person editing issues. Field values are plain Python: e-mails, names, wiki text, dates."""

    def __init__(self, emulator: JiraBase, email: str) -> None:
        if email not in emulator.state.users:
            raise KeyError(f"no Jira user with e-mail {email}")
        self.emulator = emulator
        self.email = email

    def _values(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Check and convert Python values into the site's internal values."""
        state = self.emulator.state
        values: dict[str, Any] = {}
        for name, value in fields.items():
            if name in PEOPLE_FIELDS:
                if value is not None and value not in state.users:
                    raise KeyError(f"no Jira user with e-mail {value}")
                values[name] = value
            elif name == "description":
                values[name] = wiki_to_adf(value) if value else None
            elif name == "duedate":
                values[name] = date.fromisoformat(value) if isinstance(value, str) else value
            elif name == "labels":
                values[name] = list(value)
            elif name in ("priority", "issuetype", "resolution"):
                known = {
                    "priority": [n for _, n in state.priorities],
                    "issuetype": [n for _, n in state.issuetypes],
                    "resolution": [n for _, n, _ in RESOLUTIONS],
                }[name]
                if value not in known:
                    raise ValueError(f"unknown {name} {value!r}; known: {known}")
                values[name] = value
            elif name == "summary":
                values[name] = str(value)
            else:
                raise ValueError(f"field {name!r} cannot be set")
        return values

    def _issue(self, key: str) -> Issue:
        return self.emulator.service.issue(key)

    def create(self, project: str, summary: str, **fields: Any) -> str:  # noqa: ANN401 - any field value
        """Create an issue as this person; return its key."""
        with self.emulator.lock:
            if project not in self.emulator.state.projects:
                raise KeyError(f"no Jira project {project}")
            values = self._values({"summary": summary, **fields})
            return self.emulator.service.create(self.email, project, values).key

    def create_subtask(self, parent: str, summary: str) -> str:
        """Create a subtask of the issue ``parent`` as this person (in its project); return its key."""
        with self.emulator.lock:
            project = self._issue(parent).project
            issue = self.emulator.service.create(self.email, project, self._values({"summary": summary}))
            issue.parent = parent
            return issue.key

    def update(self, key: str, **fields: Any) -> None:  # noqa: ANN401 - any field value
        """Edit fields of an issue as this person."""
        with self.emulator.lock:
            self.emulator.service.update(self.email, self._issue(key), self._values(fields))

    def transition(self, key: str, to_status: str, **fields: Any) -> None:  # noqa: ANN401 - any field value
        """Move an issue to a status through the workflow (the shortest chain of transitions that reaches it)."""
        with self.emulator.lock:
            issue = self._issue(key)
            values = self._values(fields)
            for step in self._path(issue, to_status):
                changes = {name: values[name] for name in step.requires if name in values}
                self.emulator.service.transition(self.email, issue, step, changes)

    def _path(self, issue: Issue, target: str) -> list[Transition]:
        project = self.emulator.state.projects[issue.project]
        if target not in project.statuses:
            raise ValueError(f"status {target!r} is not in the workflow of {project.key}")
        routes: dict[str, list[Transition]] = {issue.status: []}
        queue = deque([issue.status])
        while queue:
            status = queue.popleft()
            if status == target:
                return routes[status]
            for step in project.transitions:
                if (not step.sources or status in step.sources) and step.to not in routes:
                    routes[step.to] = [*routes[status], step]
                    queue.append(step.to)
        raise ValueError(f"no chain of transitions leads from {issue.status!r} to {target!r} in {project.key}")

    def comment(self, key: str, text: str) -> str:
        """Comment on an issue (wiki markup) as this person; return the comment id."""
        with self.emulator.lock:
            body: JSON = wiki_to_adf(text)
            return self.emulator.service.add_comment(self.email, self._issue(key), body).id

    def delete(self, key: str) -> None:
        """Delete an issue as this person."""
        with self.emulator.lock:
            self.emulator.service.delete(self.email, self._issue(key))

    def set_property(self, key: str, prop: str, value: JSON) -> None:
        """Set an issue entity property as this person."""
        with self.emulator.lock:
            self.emulator.service.set_property(self._issue(key), prop, value)
