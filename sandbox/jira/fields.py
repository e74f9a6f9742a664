"""Read issue field values from request bodies (``fields`` and ``update``) into the site's internal values.

Jira validates a whole edit before applying any of it and reports every bad field at once in ``errors``; so does
this module. Internal values: people by e-mail, priority/issue type/resolution by name, rich text as ADF,
``duedate`` as a date. A ``status`` in an edit is ignored (Jira only changes status through transitions).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sandbox.core import JSON, ApiError
from sandbox.jira import custom
from sandbox.jira.model import RESOLUTIONS, JiraState
from sandbox.jira.richtext import is_adf, wiki_to_adf

EDITABLE = ("summary", "description", "assignee", "reporter", "priority", "labels", "duedate", "issuetype")
SUMMARY_MAX = 255
LABEL_MAX = 255
DUEDATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
FIRST_DUE = date(1583, 1, 1)
ADF_REQUIRED = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"


def java_length(text: str) -> int:
    """The length Jira (Java) gives a string: UTF-16 code units, so a character beyond U+FFFF counts two."""
    return len(text.encode("utf-16-le")) // 2


def validation_error(errors: dict[str, str], messages: list[str] | None = None) -> ApiError:
    """A 400 with Jira's ``{"errorMessages": [...], "errors": {...}}`` body."""
    return ApiError(
        400, "; ".join([*(messages or []), *errors.values()]), detail={"errors": errors, "messages": messages or []}
    )


class FieldReader:
    """Parses field values for one site, API version and deployment."""

    def __init__(self, state: JiraState, *, version: str, cloud: bool) -> None:
        self.state = state
        self.version = version
        self.cloud = cloud

    def read(self, fields: dict[str, JSON], allowed: tuple[str, ...], errors: dict[str, str]) -> dict[str, Any]:
        """Parse a ``fields`` object; unknown or non-editable fields are errors, ``status`` is ignored."""
        changes: dict[str, Any] = {}
        for name, value in fields.items():
            if name == "status":
                continue
            if name not in allowed:
                errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                continue
            parsed = self.value(name, value, errors)
            if name not in errors:
                changes[name] = parsed
        return changes

    def read_update(
        self, update: dict[str, JSON], current: dict[str, Any], allowed: tuple[str, ...], errors: dict[str, str]
    ) -> tuple[dict[str, Any], list[JSON]]:
        """Apply ``update`` operations (set/add/remove) over current values; comment ``add`` bodies come back apart."""
        changes: dict[str, Any] = {}
        comments: list[JSON] = []
        for name, operations in update.items():
            if not isinstance(operations, list):
                errors[name] = "Operation value must be a list of operations."
                continue
            if name == "comment":
                comments.extend(op["add"].get("body") for op in operations if isinstance(op, dict) and "add" in op)
                continue
            if name not in allowed:
                errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                continue
            value = changes.get(name, current.get(name))
            for operation in operations:
                if not isinstance(operation, dict) or len(operation) != 1:
                    errors[name] = "Operation value must be an object with one operation."
                    break
                verb, operand = next(iter(operation.items()))
                if verb == "set":
                    value = self.value(name, operand, errors)
                elif self._is_labels(name) and verb in ("add", "remove"):
                    label = self.value(name, [operand], errors)
                    labels = list(value or [])
                    if verb == "add" and label and label[0] not in labels:
                        labels.append(label[0])
                    if verb == "remove" and label and label[0] in labels:
                        labels.remove(label[0])
                    value = labels
                else:
                    errors[name] = f"Field '{name}' does not support operation '{verb}'"
            if name not in errors:
                changes[name] = value
        return changes, comments

    def editable(self) -> tuple[str, ...]:
        """The fields an edit or create may set: the system ones and every custom field of the site."""
        return (*EDITABLE, *self.state.custom_fields)

    def _is_labels(self, name: str) -> bool:
        found = self.state.custom_fields.get(name)
        return name == "labels" or (found is not None and found.kind == "labels")

    def value(self, name: str, value: JSON, errors: dict[str, str]) -> Any:  # noqa: ANN401, PLR0911 - one parser per field
        """Parse one field's value; on a bad value record Jira's message in ``errors``."""
        if name in self.state.custom_fields:
            return custom.parse(self.state.custom_fields[name], value, errors, self.person)
        if name == "summary":
            return self.summary(value, errors)
        if name == "description":
            return self.rich(name, value, errors)
        if name in ("assignee", "reporter"):
            return self.person(name, value, errors)
        if name == "priority":
            return self.named(name, value, self.state.priorities, "The priority selected is invalid.", errors)
        if name == "issuetype":
            return self.named(name, value, self.state.issuetypes, "The issue type selected is invalid.", errors)
        if name == "resolution":
            known = [(rid, rname) for rid, rname, _ in RESOLUTIONS]
            return self.named(name, value, known, f"Could not find resolution with name '{value}'.", errors)
        if name == "labels":
            return self.labels(value, errors)
        return self.duedate(value, errors)

    def summary(self, value: JSON, errors: dict[str, str]) -> str | None:
        """A summary: required, one line, at most 255 characters (Java counts UTF-16 code units).

        Jira's answers: "You must specify a summary of the issue." (blank) and "Summary must be less than 255
        characters." (256 and more: Jira takes 255), both as tests written against Jira expect them; "The summary is
        invalid because it contains newline characters." (wording not confirmed from a source).
        """
        if not isinstance(value, str) or not value.strip():
            errors["summary"] = "You must specify a summary of the issue."
            return None
        if "\n" in value or "\r" in value:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        elif java_length(value) > SUMMARY_MAX:
            errors["summary"] = "Summary must be less than 255 characters."
        return value

    def rich(self, name: str, value: JSON, errors: dict[str, str]) -> JSON:
        """Rich text: wiki markup string on v2, an Atlassian Document on v3."""
        if value is None or value == "":
            return None
        if self.version == "3":
            if not is_adf(value):
                errors[name] = ADF_REQUIRED
            return value
        if not isinstance(value, str):
            errors[name] = "Operation value must be a string"
            return None
        return wiki_to_adf(value)

    def person(self, name: str, value: JSON, errors: dict[str, str]) -> str | None:
        """A person reference: ``{"accountId"}`` on Cloud, ``{"name"}``/``{"key"}`` on Server; None unassigns."""
        if value is None:
            return None
        ident: JSON = None
        if isinstance(value, dict):
            ident = value.get("accountId") if self.cloud else value.get("name") or value.get("key")
            if ident is None and self.cloud and value.get("id") is not None:
                ident = value.get("id")
        if isinstance(ident, str):
            user = self.state.user_by_account_id(ident) if self.cloud else self.state.user_by_name(ident)
            if user is not None:
                return user.email
        if self.cloud:
            errors[name] = "Specified user does not exist or you do not have required permissions"
        else:
            errors[name] = f"User '{ident if ident is not None else value}' does not exist."
        return None

    @staticmethod
    def named(name: str, value: JSON, known: list[tuple[str, str]], message: str, errors: dict[str, str]) -> str | None:
        """A named entity given as ``{"id"}`` or ``{"name"}``."""
        if isinstance(value, dict):
            for ident, label in known:
                if str(value.get("id")) == ident or value.get("name") == label:
                    return label
        errors[name] = message
        return None

    @staticmethod
    def labels(value: JSON, errors: dict[str, str]) -> list[str]:
        """Labels: strings without whitespace, at most 255 characters each (UTF-16 code units, as Java counts).

        The too-long answer is Jira's own, as its web test ``TestCreateAndEditLabels`` expects it: "The label '...'
        exceeds the maximum length for a single label of 255 characters."
        """
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            errors["labels"] = "Operation value must be a list of strings"
            return []
        for label in value:
            if not label or any(c.isspace() for c in label):
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
            elif java_length(label) > LABEL_MAX:
                errors["labels"] = (
                    f"The label '{label}' exceeds the maximum length for a single label of {LABEL_MAX} characters."
                )
        return list(dict.fromkeys(value))

    @staticmethod
    def duedate(value: JSON, errors: dict[str, str]) -> date | None:
        """A due date exactly ``yyyy-MM-dd`` (None clears it), a day from 1583-01-01 to 9999-12-31.

        The format is the one the v3 spec documents for date fields ("format values as ``yyyy-MM-dd``"); a week or
        basic form Python would also read is refused. No year range is documented: the sandbox takes the
        unfavourable reading. ISO 8601 admits years before 1583 only by mutual agreement, and Java's
        ``SimpleDateFormat`` (whose pattern that is) reads days before 15 October 1582 as Julian ones, so an earlier
        date would not name the day it names elsewhere; it is refused as Jira refuses a date it cannot parse. A
        person can still set one through :class:`~sandbox.jira.actor.JiraActor` (an import or older data).
        """
        if value is None or value == "":
            return None
        try:
            if not isinstance(value, str) or not DUEDATE.fullmatch(value):
                raise ValueError(value)
            parsed = date.fromisoformat(value)
            if parsed < FIRST_DUE:
                raise ValueError(value)
        except ValueError:
            errors["duedate"] = f"Error parsing date string: {value}"
            return None
        return parsed
