"""The seeded organisation: who exists in which tool, and what work is already there.

A seed file (YAML) describes one company: its people (each known in every tool under the same e-mail, the way
a real company's SSO makes them), the Jira projects and workflow of Engineering, the Trello board of Sales and the
Asana project of Marketing, with a few dozen items. The emulators build their state from it deterministically:
the same seed gives the same ids and credentials on every start, so tests and demos can name things.

Credentials are derived from the e-mail (``token_for``), never configured: they only open the local sandbox.
"""

from __future__ import annotations

import builtins
import hashlib
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from syncd.yamlfile import load_yaml_model

SERVICE_ACCOUNT = "syncd-bot@corp.example"
"""The e-mail of the account syncd itself uses in every tool."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_Strict):
    """One person, present in every tool under the same e-mail."""

    name: str
    email: str
    username: str = Field(description="Jira Server user name and Trello username")
    timezone: str = "UTC"


class JiraStatus(_Strict):
    """A workflow status and its category (which decides resolution and 'done')."""

    name: str
    category: Literal["new", "indeterminate", "done"]


class JiraTransition(_Strict):
    """A workflow transition: from which statuses, to which, and what its screen requires."""

    name: str
    sources: list[str] = Field(alias="from", description="statuses it starts from; empty: any (global)")
    to: str
    requires: list[str] = Field(default_factory=list, description="fields the transition screen requires")


class JiraWorkflow(_Strict):
    """The statuses and transitions every issue of a project follows."""

    statuses: list[JiraStatus]
    transitions: list[JiraTransition]


class JiraIssue(_Strict):
    """An issue present at start; people are given by e-mail."""

    summary: str
    description: str = ""
    status: str | None = None
    assignee: str | None = None
    reporter: str | None = None
    priority: str = "Medium"
    labels: list[str] = Field(default_factory=list)
    duedate: date | None = None
    issuetype: str = "Task"
    custom_fields: dict[str, str | float | date | list[str]] = Field(
        default_factory=dict,
        description="values by field name: an option (a list for multiselect and labels), text, number, date, e-mail",
    )


class JiraCustomField(_Strict):
    """A custom field of the site (on every project's screens), with its options for select types."""

    name: str
    type: Literal["select", "multiselect", "textfield", "float", "datepicker", "userpicker", "labels"]
    options: list[str] = Field(default_factory=list)


class JiraProject(_Strict):
    """A Jira project with its workflow and issues."""

    key: str
    name: str
    lead: str
    workflow: JiraWorkflow
    issues: list[JiraIssue] = Field(default_factory=list)


class JiraSeed(_Strict):
    """Engineering's Jira site."""

    deployment: Literal["Cloud", "Server"] = "Cloud"
    timezone: str = Field("UTC", description="the API user's time zone, which JQL dates are read in")
    priorities: list[str] = Field(default_factory=lambda: ["Highest", "High", "Medium", "Low", "Lowest"])
    issuetypes: list[str] = Field(default_factory=lambda: ["Task", "Bug", "Story"])
    custom_fields: list[JiraCustomField] = Field(default_factory=list)
    projects: list[JiraProject]


class TrelloLabel(_Strict):
    """A board label."""

    name: str
    color: str | None = None


class TrelloCard(_Strict):
    """A card present at start; lists and labels by name, members by e-mail."""

    list: str
    name: str
    desc: str = ""
    due: datetime | None = None
    dueComplete: bool = False  # noqa: N815 - Trello's own field name, so seed files read like the API
    # `list` (the field) shadows the builtin inside this class body, hence builtins.list.
    members: builtins.list[str] = Field(default_factory=builtins.list)
    labels: builtins.list[str] = Field(default_factory=builtins.list)
    customFields: dict[str, str | bool | float | datetime] = Field(  # noqa: N815 - Trello's own name
        default_factory=dict, description="values by field name: an option's text, text, number, date, checked"
    )


class TrelloCustomFieldOption(_Strict):
    """A choice of a list custom field."""

    text: str
    color: str = "none"


class TrelloCustomField(_Strict):
    """A custom field of a board (the Custom Fields power-up)."""

    name: str
    type: Literal["checkbox", "list", "number", "text", "date"]
    options: list[TrelloCustomFieldOption] = Field(default_factory=list)


class TrelloBoard(_Strict):
    """A Trello board with its lists, labels, members and cards."""

    name: str
    lists: list[str]
    labels: list[TrelloLabel] = Field(default_factory=list)
    members: list[str] = Field(default_factory=list, description="e-mails; the service account is always one")
    customFields: list[TrelloCustomField] = Field(default_factory=list)  # noqa: N815 - Trello's own name
    cards: list[TrelloCard] = Field(default_factory=list)


class TrelloSeed(_Strict):
    """Sales' Trello boards."""

    boards: list[TrelloBoard]


class AsanaTask(_Strict):
    """A task present at start; section and tags by name, assignee by e-mail."""

    section: str
    name: str
    notes: str = ""
    assignee: str | None = None
    due_on: date | None = None
    due_at: datetime | None = None
    completed: bool = False
    tags: list[str] = Field(default_factory=list)
    custom_fields: dict[str, str | float | date | list[str]] = Field(
        default_factory=dict,
        description="values by field name: an option name (a list for multi_enum), text, number, date, e-mails",
    )


class AsanaCustomField(_Strict):
    """A custom field of a project (Asana's custom field setting), with its options for enum types."""

    name: str
    type: Literal["enum", "multi_enum", "text", "number", "date", "people"]
    options: list[str] = Field(default_factory=list, description="enum option names, in order")
    precision: int = Field(0, ge=0, le=6)
    description: str = ""


class AsanaProject(_Strict):
    """An Asana project with its sections, tags, members and tasks."""

    name: str
    sections: list[str]
    tags: list[str] = Field(default_factory=list)
    members: list[str] = Field(default_factory=list)
    custom_fields: list[AsanaCustomField] = Field(default_factory=list)
    tasks: list[AsanaTask] = Field(default_factory=list)


class AsanaSeed(_Strict):
    """Marketing's Asana workspace."""

    workspace: str
    projects: list[AsanaProject]


class Seed(_Strict):
    """A whole seeded organisation."""

    organisation: str
    people: list[Person]
    jira: JiraSeed
    trello: TrelloSeed
    asana: AsanaSeed

    def person(self, email: str) -> Person:
        """The person with this e-mail; KeyError names it if there is none."""
        for person in self.people:
            if person.email == email:
                return person
        raise KeyError(f"no person with e-mail {email} in the seed")


def token_for(tool: str, email: str, kind: str = "token") -> str:
    """The sandbox credential of one person in one tool (stable across starts, useless anywhere else)."""
    digest = hashlib.sha256(f"syncd-sandbox/{tool}/{kind}/{email}".encode()).hexdigest()
    return f"sbx{tool[0]}{kind[0]}_{digest[:32]}"


DEFAULT_SEED = "seed.yaml"


def load_seed(path: Path | str | None = None) -> Seed:
    """Load a seed file (the shipped organisation when no path is given); FileError names file and line."""
    if path is None:
        text = resources.files("sandbox").joinpath(DEFAULT_SEED).read_text(encoding="utf-8")
        return load_yaml_model(Path("sandbox") / DEFAULT_SEED, Seed, text)
    return load_yaml_model(path, Seed)
