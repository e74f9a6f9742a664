"""How the site's state looks on the wire: Jira's JSON shapes for one viewer, API version and deployment.

A :class:`Renderer` is made per request: timestamps are written in the viewer's time zone in Jira's format
(``2026-11-24T10:05:30.123+0100``), people as Cloud accountIds or Server names, e-mails hidden for people who hide
them (Cloud), and rich text as wiki markup (v2) or Atlassian Document Format (v3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sandbox.core import JSON
from sandbox.jira import custom
from sandbox.jira.model import (
    RESOLUTIONS,
    STATUS_CATEGORIES,
    ChangeItem,
    Comment,
    History,
    Issue,
    JiraState,
    Transition,
)
from sandbox.jira.richtext import adf_to_html, adf_to_wiki

ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
ALL_FIELDS = (
    "summary",
    "description",
    "status",
    "assignee",
    "reporter",
    "creator",
    "priority",
    "duedate",
    "labels",
    "created",
    "updated",
    "issuetype",
    "project",
    "resolution",
    "resolutiondate",
    "comment",
)
FIELD_NAMES = {
    "summary": "Summary",
    "description": "Description",
    "status": "Status",
    "assignee": "Assignee",
    "reporter": "Reporter",
    "creator": "Creator",
    "priority": "Priority",
    "duedate": "Due date",
    "labels": "Labels",
    "created": "Created",
    "updated": "Updated",
    "issuetype": "Issue Type",
    "project": "Project",
    "resolution": "Resolution",
    "resolutiondate": "Resolved",
    "comment": "Comment",
}
NOT_NAVIGABLE = frozenset({"comment"})
ISSUE_CHANGELOG = 100
"""Changelog entries an issue read with ``expand=changelog`` carries: the most recent 100, the rest only through the
paged ``/issue/{key}/changelog`` (Cloud). Users report it (pycontribs/jira#712, #911; airbytehq/airbyte#33040)."""
SEARCH_CHANGELOG = 40
"""The same in a search result (``/search/jql``): Atlassian's enhanced-search migration notes cap it at 40 entries,
with no paging through the search (faros-ai/airbyte-connectors#2003; estuary/connectors#2523). The strictest
figure reported, emulated for Server's ``/search`` too."""


def jira_time(moment: datetime, zone: ZoneInfo) -> str:
    """Format an instant the way Jira does, in a zone: ``2026-11-24T10:05:30.123+0100``.

    The form of the Jira Cloud spec's examples (``jira-cloud.v3.json``: ``2022-10-06T07:32:47.000+0000``).
    """
    local = moment.astimezone(zone)
    # isoformat writes four-digit years; %z keeps an offset with seconds (a zone's historic local mean time) whole.
    return local.replace(tzinfo=None).isoformat(timespec="milliseconds") + local.strftime("%z")


def select_fields(requested: Iterable[str] | None, default: str = "*all", custom: Iterable[str] = ()) -> list[str]:
    """Resolve a ``fields`` parameter (``*all``, ``*navigable``, names, ``-name`` exclusions) to field ids.

    ``custom`` are the site's custom field ids: ``*all`` and ``*navigable`` include them (empty ones as null).
    """
    names = [part.strip() for item in (requested or [default]) for part in item.split(",") if part.strip()]
    if not names:
        names = [default]
    customs = tuple(custom)
    chosen: list[str] = []
    excluded = {name[1:] for name in names if name.startswith("-")}
    for name in names:
        if name == "*all":
            chosen.extend((*ALL_FIELDS, *customs))
        elif name == "*navigable":
            chosen.extend((*(f for f in ALL_FIELDS if f not in NOT_NAVIGABLE), *customs))
        elif name in ALL_FIELDS or name in customs:
            chosen.append(name)
    return [name for name in dict.fromkeys(chosen) if name not in excluded]


@dataclass
class Renderer:
    """Render state for one viewer, on one API version, of one deployment."""

    state: JiraState
    base: str
    version: str
    cloud: bool
    viewer: str
    hidden_emails: set[str] = field(default_factory=set)

    @property
    def zone(self) -> ZoneInfo:
        """The viewer's time zone."""
        user = self.state.users.get(self.viewer)
        return ZoneInfo(user.timezone if user else self.state.seed.jira.timezone)

    @property
    def api(self) -> str:
        """The REST root of this request's version."""
        return f"{self.base}/rest/api/{self.version}"

    def time(self, moment: datetime | None) -> str | None:
        """A timestamp in the viewer's zone."""
        return jira_time(moment, self.zone) if moment is not None else None

    def rich(self, document: JSON) -> JSON:
        """Rich text for this version: wiki markup on v2, ADF on v3 (None stays None)."""
        if document is None:
            return None
        return document if self.version == "3" else adf_to_wiki(document)

    # ----- people ------------------------------------------------------------------------------------

    def user_ref(self, email: str) -> str:
        """The id a person is known by here: accountId on Cloud, name on Server."""
        user = self.state.users[email]
        return user.account_id if self.cloud else user.username

    def user(self, email: str | None, *, full: bool = False) -> JSON:
        """A user object (``full`` adds locale, as /myself and /user do)."""
        if email is None:
            return None
        user = self.state.users[email]
        size_urls = {f"{n}x{n}": f"{self.base}/secure/useravatar?size={n}&ownerId={user.key}" for n in (48, 24, 16, 32)}
        body: dict[str, JSON]
        if self.cloud:
            body = {"self": f"{self.api}/user?accountId={quote(user.account_id)}", "accountId": user.account_id}
        else:
            body = {"self": f"{self.api}/user?username={quote(user.username)}", "key": user.key, "name": user.username}
        if not (self.cloud and email in self.hidden_emails and email != self.viewer):
            body["emailAddress"] = user.email
        body.update({"avatarUrls": size_urls, "displayName": user.display_name, "active": True})
        body["timeZone"] = user.timezone
        if self.cloud:
            body["accountType"] = "atlassian"
        if full:
            body["locale"] = "en_US"
        return body

    # ----- workflow and metadata --------------------------------------------------------------------

    def status_category(self, category: str) -> JSON:
        """A status category object."""
        cid, name, color = STATUS_CATEGORIES[category]
        return {
            "self": f"{self.api}/statuscategory/{cid}",
            "id": cid,
            "key": category,
            "colorName": color,
            "name": name,
        }

    def status(self, name: str) -> JSON:
        """A status object."""
        status = self.state.statuses[name]
        return {
            "self": f"{self.api}/status/{status.id}",
            "description": "",
            "iconUrl": f"{self.base}/images/icons/statuses/generic.png",
            "name": status.name,
            "id": status.id,
            "statusCategory": self.status_category(status.category),
        }

    def priority(self, name: str) -> JSON:
        """A priority object."""
        pid = self.state.priority_id(name)
        icon = f"{self.base}/images/icons/priorities/{name.lower()}.svg"
        return {"self": f"{self.api}/priority/{pid}", "iconUrl": icon, "name": name, "id": pid}

    def issuetype(self, name: str) -> JSON:
        """An issue type object."""
        tid = self.state.issuetype_id(name)
        return {
            "self": f"{self.api}/issuetype/{tid}",
            "id": tid,
            "description": f"A {name.lower()}.",
            "iconUrl": f"{self.base}/images/icons/issuetypes/{name.lower()}.svg",
            "name": name,
            "subtask": False,
            "hierarchyLevel": 0,
        }

    def resolution(self, name: str | None) -> JSON:
        """A resolution object (None when unresolved)."""
        for rid, rname, description in RESOLUTIONS:
            if rname == name:
                return {"self": f"{self.api}/resolution/{rid}", "id": rid, "description": description, "name": rname}
        return None

    def project(self, key: str, *, full: bool = False) -> JSON:
        """A project object (nested form, or the full form of /project)."""
        project = self.state.projects[key]
        body: dict[str, JSON] = {
            "self": f"{self.api}/project/{project.id}",
            "id": project.id,
            "key": project.key,
            "name": project.name,
            "projectTypeKey": "software",
            "simplified": False,
            "avatarUrls": {
                f"{n}x{n}": f"{self.base}/secure/projectavatar?size={n}&pid={project.id}" for n in (48, 24, 16, 32)
            },
        }
        if full:
            body.update(
                {
                    "description": "",
                    "lead": self.user(project.lead),
                    "issueTypes": [self.issuetype(name) for _, name in self.state.issuetypes],
                    "assigneeType": "UNASSIGNED",
                    "style": "classic",
                    "isPrivate": False,
                    "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
                }
            )
        return body

    def transition(self, transition: Transition, *, with_fields: bool) -> JSON:
        """One available transition (with its screen fields when asked)."""
        body: dict[str, JSON] = {
            "id": transition.id,
            "name": transition.name,
            "to": self.status(transition.to),
            "hasScreen": bool(transition.requires),
            "isGlobal": not transition.sources,
            "isInitial": False,
            "isAvailable": True,
            "isConditional": False,
            "isLooped": False,
        }
        if with_fields:
            body["fields"] = {
                name: {
                    "required": True,
                    "schema": {"type": name, "system": name},
                    "name": FIELD_NAMES.get(name, name),
                    "key": name,
                    "operations": ["set"],
                    "allowedValues": [self.resolution(r[1]) for r in RESOLUTIONS] if name == "resolution" else [],
                }
                for name in transition.requires
            }
        return body

    # ----- issues -----------------------------------------------------------------------------------

    def comment(self, issue: Issue, comment: Comment) -> JSON:
        """A comment object."""
        return {
            "self": f"{self.api}/issue/{issue.id}/comment/{comment.id}",
            "id": comment.id,
            "author": self.user(comment.author),
            "body": self.rich(comment.body),
            "updateAuthor": self.user(comment.update_author),
            "created": self.time(comment.created),
            "updated": self.time(comment.updated),
            "jsdPublic": True,
        }

    def comment_page(self, issue: Issue, start: int, limit: int) -> JSON:
        """A page of an issue's comments (oldest first)."""
        page = issue.comments[start : start + limit]
        return {
            "comments": [self.comment(issue, c) for c in page],
            "self": f"{self.api}/issue/{issue.id}/comment",
            "maxResults": limit,
            "total": len(issue.comments),
            "startAt": start,
        }

    def history(self, history: History) -> JSON:
        """One changelog entry."""
        return {
            "id": history.id,
            "author": self.user(history.author),
            "created": self.time(history.created),
            "items": [self.change_item(item) for item in history.items],
        }

    @staticmethod
    def change_item(item: ChangeItem) -> JSON:
        """One changed field of a changelog entry."""
        return {
            "field": item.field,
            "fieldtype": item.fieldtype,
            "fieldId": item.field_id,
            "from": item.from_value,
            "fromString": item.from_string,
            "to": item.to_value,
            "toString": item.to_string,
        }

    def field_value(self, issue: Issue, name: str) -> JSON:  # noqa: PLR0911 - one branch per field
        """The wire value of one issue field."""
        if name in self.state.custom_fields:
            return custom.render(self.state.custom_fields[name], issue.custom.get(name), self.api, self.user)
        if name == "summary":
            return issue.summary
        if name == "labels":
            return list(issue.labels)
        if name == "description":
            return self.rich(issue.description)
        if name == "status":
            return self.status(issue.status)
        if name in ("assignee", "reporter", "creator"):
            return self.user(getattr(issue, name))
        if name == "priority":
            return self.priority(issue.priority)
        if name == "duedate":
            return issue.duedate.isoformat() if issue.duedate else None
        if name in ("created", "updated", "resolutiondate"):
            return self.time(getattr(issue, name))
        if name == "issuetype":
            return self.issuetype(issue.issuetype)
        if name == "project":
            return self.project(issue.project)
        if name == "resolution":
            return self.resolution(issue.resolution)
        return self.comment_page(issue, 0, max(len(issue.comments), 1) if issue.comments else 0)

    def field_name(self, field_id: str) -> str:
        """A field's display name: a system field's, or a custom field's own."""
        if field_id in self.state.custom_fields:
            return self.state.custom_fields[field_id].name
        return FIELD_NAMES.get(field_id, field_id)

    def issue(
        self, issue: Issue, fields: list[str], expand: Iterable[str] = (), *, changelog_limit: int = ISSUE_CHANGELOG
    ) -> JSON:
        """An issue with the chosen fields and expansions.

        An expanded changelog holds the most recent ``changelog_limit`` entries, ``total`` saying how many there are.
        """
        expansions = {e.strip() for item in expand for e in item.split(",") if e.strip()}
        body: dict[str, JSON] = {
            "expand": ISSUE_EXPAND,
            "id": issue.id,
            "self": f"{self.api}/issue/{issue.id}",
            "key": issue.key,
            "fields": {name: self.field_value(issue, name) for name in fields},
        }
        if "renderedFields" in expansions:
            rendered: dict[str, JSON] = dict.fromkeys(fields)
            if "description" in rendered:
                rendered["description"] = adf_to_html(issue.description) if issue.description else None
            for name in ("created", "updated", "resolutiondate"):
                moment = getattr(issue, name)
                if name in rendered and moment is not None:
                    rendered[name] = moment.astimezone(self.zone).strftime("%d/%b/%y %I:%M %p")
            body["renderedFields"] = rendered
        if "names" in expansions:
            body["names"] = {name: self.field_name(name) for name in fields}
        if "schema" in expansions:
            body["schema"] = {
                n: custom.schema(self.state.custom_fields[n]) for n in fields if n in self.state.custom_fields
            }
        if "changelog" in expansions:
            recent = issue.histories[-changelog_limit:]
            body["changelog"] = {
                "startAt": 0,
                "maxResults": len(recent),
                "total": len(issue.histories),
                "histories": [self.history(h) for h in recent],
            }
        if "transitions" in expansions:
            body["transitions"] = [self.transition(t, with_fields=False) for t in available(self.state, issue)]
        return body


def available(state: JiraState, issue: Issue) -> list[Transition]:
    """The transitions of the issue's workflow that start from its current status (global ones always)."""
    project = state.projects[issue.project]
    return [t for t in project.transitions if not t.sources or issue.status in t.sources]
