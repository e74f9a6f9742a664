"""The seeded organisation: who exists in which tool, and what work is already there.

A seed file (YAML) describes one company: its people (each known in every tool under the same e-mail, the way
a real company's SSO makes them), the Jira projects and workflow of Engineering, the Trello board of Sales and the
Asana project of Marketing, with a few dozen items. The emulators build their state from it deterministically:
the same seed gives the same ids and credentials on every start, so tests and demos can name things.

Credentials are derived from the e-mail (``token_for``), never configured: they only open the local sandbox.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

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
    name: str
    category: Literal["new", "indeterminate", "done"]


class JiraTransition(_Strict):
    name: str
    sources: list[str] = Field(alias="from", description="statuses it starts from; empty: any (global)")
    to: str
    requires: list[str] = Field(default_factory=list, description="fields the transition screen requires")


class JiraWorkflow(_Strict):
    statuses: list[JiraStatus]
    transitions: list[JiraTransition]


class JiraIssue(_Strict):
    summary: str
    description: str = ""
    status: str | None = None
    assignee: str | None = None
    reporter: str | None = None
    priority: str = "Medium"
    labels: list[str] = Field(default_factory=list)
    duedate: date | None = None
    issuetype: str = "Task"


class JiraProject(_Strict):
    key: str
    name: str
    lead: str
    workflow: JiraWorkflow
    issues: list[JiraIssue] = Field(default_factory=list)


class JiraSeed(_Strict):
    deployment: Literal["Cloud", "Server"] = "Cloud"
    timezone: str = Field("UTC", description="the API user's time zone, which JQL dates are read in")
    priorities: list[str] = Field(default_factory=lambda: ["Highest", "High", "Medium", "Low", "Lowest"])
    issuetypes: list[str] = Field(default_factory=lambda: ["Task", "Bug", "Story"])
    projects: list[JiraProject]


class TrelloLabel(_Strict):
    name: str
    color: str | None = None


class TrelloCard(_Strict):
    list: str
    name: str
    desc: str = ""
    due: datetime | None = None
    dueComplete: bool = False
    members: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)


class TrelloBoard(_Strict):
    name: str
    lists: list[str]
    labels: list[TrelloLabel] = Field(default_factory=list)
    members: list[str] = Field(default_factory=list, description="e-mails; the service account is always one")
    cards: list[TrelloCard] = Field(default_factory=list)


class TrelloSeed(_Strict):
    boards: list[TrelloBoard]


class AsanaTask(_Strict):
    section: str
    name: str
    notes: str = ""
    assignee: str | None = None
    due_on: date | None = None
    due_at: datetime | None = None
    completed: bool = False
    tags: list[str] = Field(default_factory=list)


class AsanaProject(_Strict):
    name: str
    sections: list[str]
    tags: list[str] = Field(default_factory=list)
    members: list[str] = Field(default_factory=list)
    tasks: list[AsanaTask] = Field(default_factory=list)


class AsanaSeed(_Strict):
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
    """Load a seed file (the shipped organisation when no path is given)."""
    if path is None:
        text = resources.files("syncd.sandbox").joinpath(DEFAULT_SEED).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return Seed.model_validate(yaml.safe_load(text))
