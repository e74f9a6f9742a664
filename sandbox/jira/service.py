"""The site's write operations, shared by the HTTP handlers and the Python act-as API.

Every change goes through here so it is recorded the way Jira records it: a changelog history entry with the
acting person as author, ``updated`` moved to the (emulated) now, resolution set on entering a Done-category
status and cleared on leaving it, and an event for the admin webhooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sandbox.core import JSON, ApiError, Clock
from sandbox.jira import custom
from sandbox.jira.fields import validation_error
from sandbox.jira.model import RESOLUTIONS, ChangeItem, Comment, History, Issue, JiraState, Transition
from sandbox.jira.render import available
from sandbox.jira.richtext import adf_to_wiki

NOT_FOUND = "Issue does not exist or you do not have permission to see it."


@dataclass
class Event:
    """Something webhooks may be told about."""

    name: str
    type_name: str
    issue: Issue
    actor: str
    history: History | None = None
    comment: Comment | None = None


class JiraService:
    """Applies changes to the state as one person, records them and announces them."""

    def __init__(self, state: JiraState, clock: Clock, *, cloud: bool, emit: Callable[[Event], None]) -> None:
        self.state = state
        self.clock = clock
        self.cloud = cloud
        self.emit = emit

    def issue(self, id_or_key: str) -> Issue:
        """The issue, or Jira's 404."""
        issue = self.state.find_issue(id_or_key)
        if issue is None:
            raise ApiError(404, NOT_FOUND)
        return issue

    # ----- issues -----------------------------------------------------------------------------------

    def create(
        self, actor: str, project_key: str, changes: dict[str, Any], properties: dict[str, JSON] | None = None
    ) -> Issue:
        """Create an issue in a project with already-validated field values (and entity properties)."""
        project = self.state.projects[project_key]
        now = self.clock.now()
        issue = self.state.new_issue(project, changes["summary"], creator=actor, now=now)
        issue.reporter = actor
        for name, value in changes.items():
            if name in self.state.custom_fields:
                issue.custom[name] = value
            else:
                setattr(issue, name, list(value) if name == "labels" else value)
        issue.properties.update(properties or {})
        self.emit(Event("jira:issue_created", "issue_created", issue, actor))
        return issue

    def update(self, actor: str, issue: Issue, changes: dict[str, Any], comments: list[JSON] | None = None) -> None:
        """Apply field changes (and ``update.comment`` adds); a no-op edit records nothing."""
        items = self._apply(issue, changes)
        history = self._record(actor, issue, items)
        if history is not None:
            only_assignee = all(item.field == "assignee" for item in history.items)
            type_name = "issue_assigned" if only_assignee else "issue_updated"
            self.emit(Event("jira:issue_updated", type_name, issue, actor, history=history))
        for body in comments or []:
            self.add_comment(actor, issue, body)

    def find_transition(self, issue: Issue, transition_id: str) -> Transition:
        """The transition with this id if it is available from the issue's status, else Jira's 400."""
        transition = next((t for t in available(self.state, issue) if t.id == str(transition_id)), None)
        if transition is None:
            raise ApiError(400, f"Transition id '{transition_id}' is not valid for this issue.")
        return transition

    def transition(self, actor: str, issue: Issue, transition: Transition, changes: dict[str, Any]) -> None:
        """Move the issue through a transition, with the values of the transition screen's fields."""
        missing = {
            name: f"{name.capitalize()} is required." for name in transition.requires if changes.get(name) is None
        }
        if missing:
            raise validation_error(missing)
        self._move(actor, issue, transition, changes)

    def _move(self, actor: str, issue: Issue, transition: Transition, changes: dict[str, Any]) -> None:
        target = self.state.statuses[transition.to]
        status_item = ChangeItem(
            "status",
            "status",
            self.state.statuses[issue.status].id,
            issue.status,
            target.id,
            target.name,
        )
        resolution = changes.pop("resolution", None)
        items = [status_item, *self._apply(issue, changes)]
        issue.status = target.name
        now = self.clock.now()
        if target.category == "done":
            chosen = resolution or issue.resolution or RESOLUTIONS[0][1]
            if chosen != issue.resolution:
                items.append(self._resolution_item(issue.resolution, chosen))
                issue.resolution = chosen
            issue.resolutiondate = issue.resolutiondate or now
        elif issue.resolution is not None:
            items.append(self._resolution_item(issue.resolution, None))
            issue.resolution = None
            issue.resolutiondate = None
        history = self._record(actor, issue, items)
        assert history is not None
        self.emit(Event("jira:issue_updated", "issue_generic", issue, actor, history=history))

    @staticmethod
    def _resolution_item(old: str | None, new: str | None) -> ChangeItem:
        ids = {name: rid for rid, name, _ in RESOLUTIONS}
        return ChangeItem("resolution", "resolution", ids.get(old or ""), old, ids.get(new or ""), new)

    def delete(self, actor: str, issue: Issue, *, subtasks: bool = False) -> None:
        """Delete an issue (its key is never reused), with its subtasks only when asked.

        Spec (DELETE /rest/api/3/issue/{issueIdOrKey}): "An issue cannot be deleted if it has one or more subtasks.
        To delete an issue with subtasks, set `deleteSubtasks`"; 400 "if the issue has subtasks and
        `deleteSubtasks` is not set to *true*". The spec gives no wording for the 400: this one names the parameter.
        """
        children = [other for other in self.state.issues.values() if other.parent == issue.key]
        if children and not subtasks:
            raise ApiError(
                400,
                f"The issue {issue.key} has subtasks ({', '.join(child.key for child in children)}): "
                "set deleteSubtasks=true to delete them with it.",
            )
        for child in children:
            self.delete(actor, child)
        del self.state.issues[issue.key]
        self.emit(Event("jira:issue_deleted", "issue_deleted", issue, actor))

    # ----- comments ---------------------------------------------------------------------------------

    def add_comment(self, actor: str, issue: Issue, body: JSON) -> Comment:
        """Add a comment (ADF body); moves ``updated``."""
        now = self.clock.now()
        comment = Comment(self.state.next_comment(), actor, body, now, now, actor)
        issue.comments.append(comment)
        issue.updated = now
        self.emit(Event("comment_created", "issue_commented", issue, actor, comment=comment))
        return comment

    def edit_comment(self, actor: str, issue: Issue, comment: Comment, body: JSON) -> None:
        """Replace a comment's body."""
        now = self.clock.now()
        comment.body = body
        comment.updated = now
        comment.update_author = actor
        issue.updated = now
        self.emit(Event("comment_updated", "issue_comment_edited", issue, actor, comment=comment))

    def delete_comment(self, actor: str, issue: Issue, comment: Comment) -> None:
        """Remove a comment."""
        issue.comments.remove(comment)
        issue.updated = self.clock.now()
        self.emit(Event("comment_deleted", "issue_comment_deleted", issue, actor, comment=comment))

    @staticmethod
    def find_comment(issue: Issue, comment_id: str) -> Comment:
        """The comment, or Jira's 404."""
        for comment in issue.comments:
            if comment.id == comment_id:
                return comment
        raise ApiError(404, "Can not find a comment for the id: " + comment_id + ".")

    # ----- properties -------------------------------------------------------------------------------

    @staticmethod
    def set_property(issue: Issue, key: str, value: JSON) -> bool:
        """Set an entity property; True when it is new."""
        created = key not in issue.properties
        issue.properties[key] = value
        return created

    # ----- recording --------------------------------------------------------------------------------

    def _apply(self, issue: Issue, changes: dict[str, Any]) -> list[ChangeItem]:
        items: list[ChangeItem] = []
        for name, new in changes.items():
            definition = self.state.custom_fields.get(name)
            if definition is not None:
                old = issue.custom.get(name, custom.empty(definition))
                if old != new:
                    items.append(custom.change_item(self.state, self.cloud, definition, old, new))
                    issue.custom[name] = new
                continue
            old = getattr(issue, name)
            if old == new:
                continue
            items.append(self._item(name, old, new))
            setattr(issue, name, list(new) if name == "labels" else new)
        return items

    def _record(self, actor: str, issue: Issue, items: list[ChangeItem]) -> History | None:
        if not items:
            return None
        history = History(self.state.next_history(), actor, self.clock.now(), items)
        issue.histories.append(history)
        issue.updated = history.created
        return history

    def _item(self, name: str, old: Any, new: Any) -> ChangeItem:  # noqa: ANN401, PLR0911 - any field type, one branch each
        if name in ("assignee", "reporter"):
            return ChangeItem(
                name, name, self._user_id(old), self._user_name(old), self._user_id(new), self._user_name(new)
            )
        if name == "priority":
            return ChangeItem(name, name, self.state.priority_id(old), old, self.state.priority_id(new), new)
        if name == "issuetype":
            return ChangeItem(name, name, self.state.issuetype_id(old), old, self.state.issuetype_id(new), new)
        if name == "labels":
            return ChangeItem(name, name, None, " ".join(old) or None, None, " ".join(new) or None)
        if name == "duedate":
            return ChangeItem(name, name, _day(old), _day_string(old), _day(new), _day_string(new))
        if name == "description":
            return ChangeItem(
                name, name, None, adf_to_wiki(old) if old else None, None, adf_to_wiki(new) if new else None
            )
        return ChangeItem(name, name, None, old, None, new)

    def _user_id(self, email: str | None) -> str | None:
        if email is None:
            return None
        user = self.state.users[email]
        return user.account_id if self.cloud else user.username

    def _user_name(self, email: str | None) -> str | None:
        return self.state.users[email].display_name if email is not None else None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _day_string(value: date | None) -> str | None:
    return f"{value.isoformat()} 00:00:00.0" if value else None
