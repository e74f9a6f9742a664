"""Turn a parsed JQL query into a predicate and a sort order over the site's issues, validating like Jira.

Validation happens once, before any issue is looked at, and collects every problem (unknown field, unknown
value, bad date, unsupported operator) into one JqlError, as Jira's ``validateQuery=strict`` does.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.jira.jql import Bool, Clause, JqlError, Node, Query, Value
from sandbox.jira.model import RESOLUTIONS, STATUS_CATEGORIES, Issue, JiraState, User

Predicate = Callable[[Issue], bool]

_PERIOD = re.compile(r"^([-+]?)((?:\d+[wdhm]\s*)+)$")
_PERIOD_PART = re.compile(r"(\d+)([wdhm])")
_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")
_PROPERTY = re.compile(r"^issue\.property\[([^\]]+)\]\.(.+)$", re.IGNORECASE)
_KEY = re.compile(r"^([A-Z][A-Z0-9_]*)-(\d+)$", re.IGNORECASE)
ALIASES = {
    "issuekey": "key",
    "id": "key",
    "updateddate": "updated",
    "createddate": "created",
    "type": "issuetype",
    "due": "duedate",
    "resolved": "resolutiondate",
}
_EQUALITY = ("=", "!=", "IN", "NOT IN")
_ORDERED = ("=", "!=", ">", ">=", "<", "<=", "IN", "NOT IN", "IS", "IS NOT")
_SORTABLE = ("key", "updated", "created", "priority", "status", "summary", "duedate", "assignee", "resolutiondate")
_UNIT = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


@dataclass
class Context:
    """Who is searching and when: JQL dates are read in the searcher's time zone, ``currentUser()`` is them.

    ``indexed_properties`` are the issue properties (``key`` or ``key.path``) an installed app declared for
    indexing; JQL can search no other property (see :meth:`_Compiler.property_clause`).
    """

    state: JiraState
    now: datetime
    timezone: ZoneInfo
    current_user: str
    cloud: bool
    indexed_properties: frozenset[str] = frozenset()


@functools.lru_cache(maxsize=65536)
def key_order(key: str) -> tuple[str, int]:
    """Sort key of an issue key: project, then number (ENG-10 after ENG-9)."""
    project, _, number = key.partition("-")
    return project, int(number) if number.isdigit() else 0


class _Compiler:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.errors: list[str] = []

    def node(self, node: Node) -> Predicate:
        if isinstance(node, Bool):
            parts = [self.node(part) for part in node.parts]
            if node.kind == "NOT":
                return lambda issue: not parts[0](issue)
            if node.kind == "AND":
                return lambda issue: all(part(issue) for part in parts)
            return lambda issue: any(part(issue) for part in parts)
        return self.clause(node)

    def clause(self, clause: Clause) -> Predicate:
        name = clause.field.lower()
        name = ALIASES.get(name, name)
        prop = _PROPERTY.match(clause.field)
        if prop:
            return self.property_clause(prop.group(1), prop.group(2), clause)
        handlers: dict[str, Callable[[str, Clause], Predicate]] = {
            "project": self.project,
            "key": self.key,
            "status": self.status,
            "statuscategory": self.status_category,
            "labels": self.labels,
            "priority": self.priority,
            "issuetype": self.issuetype,
            "resolution": self.resolution,
            "summary": self.summary,
            "duedate": self.duedate,
        }
        if name in handlers:
            return handlers[name](name, clause)
        if name in ("assignee", "reporter", "creator"):
            return self.user(name, clause)
        if name in ("updated", "created", "resolutiondate"):
            return self.instant(name, clause)
        return self.unknown_field(clause)

    def unknown_field(self, clause: Clause) -> Predicate:
        """Jira's answer for a field the searcher cannot use: it does not exist, or they may not see it."""
        self.errors.append(f"Field '{clause.field}' does not exist or you do not have permission to view it.")
        return lambda issue: False

    # ----- helpers ----------------------------------------------------------------------------------

    def operator_ok(self, clause: Clause, allowed: tuple[str, ...], name: str) -> bool:
        if clause.operator in allowed:
            return True
        self.errors.append(f"The operator '{clause.operator.lower()}' is not supported by the '{name}' field.")
        return False

    def function(self, value: Value, name: str) -> None:
        self.errors.append(
            f"Unable to find JQL function '{value.text}()'."
            if value.text.lower() not in ("currentuser", "now")
            else f"Jira function '{value.text}()' is not supported by the '{name}' field."
        )

    def match_set(self, clause: Clause, getter: Callable[[Issue], str | None], resolved: set[str | None]) -> Predicate:
        """Equality family over one resolved value set; EMPTY handled by IS / IS NOT."""
        operator = clause.operator
        if operator == "IS":
            return lambda issue: getter(issue) is None
        if operator == "IS NOT":
            return lambda issue: getter(issue) is not None
        if operator in ("=", "IN"):
            return lambda issue: getter(issue) in resolved
        return lambda issue: getter(issue) is not None and getter(issue) not in resolved

    def named(
        self, name: str, clause: Clause, getter: Callable[[Issue], str | None], known: dict[str, str]
    ) -> Predicate:
        """A field whose values are named entities (status, priority, ...): resolve by name or id."""
        if not self.operator_ok(clause, (*_EQUALITY, "IS", "IS NOT"), name):
            return lambda issue: False
        resolved: set[str | None] = set()
        for value in clause.values:
            if value.function:
                self.function(value, name)
            elif value.text.lower() in ("empty", "null") and not value.quoted:
                resolved.add(None)
            elif value.text.lower() in known:
                resolved.add(known[value.text.lower()])
            else:
                self.errors.append(f"The value '{value.text}' does not exist for the field '{name}'.")
        return self.match_set(clause, getter, resolved)

    # ----- fields -----------------------------------------------------------------------------------

    def project(self, name: str, clause: Clause) -> Predicate:
        known: dict[str, str] = {}
        for project in self.context.state.projects.values():
            known.update({project.key.lower(): project.key, project.id: project.key, project.name.lower(): project.key})
        return self.named(name, clause, lambda issue: issue.project, known)

    def status(self, name: str, clause: Clause) -> Predicate:
        known: dict[str, str] = {}
        for status in self.context.state.statuses.values():
            known.update({status.name.lower(): status.name, status.id: status.name})
        return self.named(name, clause, lambda issue: issue.status, known)

    def status_category(self, name: str, clause: Clause) -> Predicate:
        known: dict[str, str] = {}
        for key, (cid, label, _) in STATUS_CATEGORIES.items():
            known.update({key: key, str(cid): key, label.lower(): key})
        return self.named(
            "statusCategory", clause, lambda issue: self.context.state.statuses[issue.status].category, known
        )

    def priority(self, name: str, clause: Clause) -> Predicate:
        known = {key: pname for pid, pname in self.context.state.priorities for key in (pid, pname.lower())}
        return self.named(name, clause, lambda issue: issue.priority, known)

    def issuetype(self, name: str, clause: Clause) -> Predicate:
        known = {key: tname for tid, tname in self.context.state.issuetypes for key in (tid, tname.lower())}
        return self.named(name, clause, lambda issue: issue.issuetype, known)

    def resolution(self, name: str, clause: Clause) -> Predicate:
        known = {key: rname for rid, rname, _ in RESOLUTIONS for key in (rid, rname.lower())}
        values = tuple(Value("EMPTY") if v.text.lower() == "unresolved" else v for v in clause.values)
        return self.named(name, Clause(clause.field, clause.operator, values), lambda issue: issue.resolution, known)

    def key(self, name: str, clause: Clause) -> Predicate:
        if not self.operator_ok(clause, _EQUALITY, name):
            return lambda issue: False
        resolved: set[str | None] = set()
        for value in clause.values:
            issue = self.context.state.find_issue(value.text)
            if issue is not None:
                resolved.add(issue.key)
            elif _KEY.match(value.text) or value.text.isdigit():
                if value.text.isdigit() or self.context.state.find_project(value.text.split("-")[0]) is not None:
                    self.errors.append(f"An issue with key '{value.text}' does not exist for field '{clause.field}'.")
                else:
                    resolved.add(value.text.upper())
            else:
                self.errors.append(f"The issue key '{value.text}' for field '{clause.field}' is invalid.")
        return self.match_set(clause, lambda issue: issue.key, resolved)

    def labels(self, name: str, clause: Clause) -> Predicate:
        if not self.operator_ok(clause, (*_EQUALITY, "IS", "IS NOT"), name):
            return lambda issue: False
        wanted = {v.text.lower() for v in clause.values}
        operator = clause.operator
        if operator == "IS":
            return lambda issue: not issue.labels
        if operator == "IS NOT":
            return lambda issue: bool(issue.labels)
        if operator in ("=", "IN"):
            return lambda issue: any(label.lower() in wanted for label in issue.labels)
        # As in Jira, a negative clause never matches an issue without labels.
        return lambda issue: bool(issue.labels) and not any(label.lower() in wanted for label in issue.labels)

    def summary(self, name: str, clause: Clause) -> Predicate:
        if clause.operator not in ("~", "!~"):
            self.errors.append(f"The operator '{clause.operator.lower()}' is not supported by the '{name}' field.")
            return lambda issue: False
        words = [w.lower() for w in re.findall(r"\w+", clause.values[0].text)]
        contains: Predicate = lambda issue: all(w in issue.summary.lower() for w in words)  # noqa: E731 - a tiny local predicate
        return contains if clause.operator == "~" else (lambda issue: not contains(issue))

    def user(self, name: str, clause: Clause) -> Predicate:
        if not self.operator_ok(clause, (*_EQUALITY, "IS", "IS NOT"), name):
            return lambda issue: False
        resolved: set[str | None] = set()
        for value in clause.values:
            if value.function and value.text.lower() == "currentuser":
                resolved.add(self.context.current_user)
            elif value.function:
                self.function(value, name)
            elif value.text.lower() in ("empty", "null") and not value.quoted:
                resolved.add(None)
            else:
                found = self.find_user(value.text)
                if found is None:
                    self.errors.append(f"The value '{value.text}' does not exist for the field '{name}'.")
                else:
                    resolved.add(found.email)
        getter: Callable[[Issue], str | None] = lambda issue: getattr(issue, name)  # noqa: E731 - a tiny local getter
        return self.match_set(clause, getter, resolved)

    def find_user(self, text: str) -> User | None:
        state = self.context.state
        found = state.user_by_account_id(text) if self.context.cloud else state.user_by_name(text)
        if found is None:
            lowered = text.lower()
            found = next(
                (u for u in state.users.values() if lowered in (u.email.lower(), u.display_name.lower())), None
            )
        return found

    def instant(self, name: str, clause: Clause) -> Predicate:
        if not self.operator_ok(clause, _ORDERED, name):
            return lambda issue: False
        moments = [self.moment(value, clause.field) for value in clause.values]
        getter: Callable[[Issue], datetime | None] = lambda issue: getattr(issue, name)  # noqa: E731 - a tiny local getter
        return _compare(clause.operator, getter, moments)

    def duedate(self, name: str, clause: Clause) -> Predicate:
        if not self.operator_ok(clause, _ORDERED, name):
            return lambda issue: False
        moments = [self.moment(value, clause.field) for value in clause.values]
        days = [m.astimezone(self.context.timezone).date() if isinstance(m, datetime) else None for m in moments]
        return _compare(clause.operator, lambda issue: issue.duedate, days)

    def moment(self, value: Value, field_name: str) -> datetime | None:  # noqa: PLR0911 - one exit per operand form
        """A date operand as an instant: local minute-precision strings, epoch ms, periods or now()."""
        text = value.text.strip()
        if value.function:
            if text.lower() == "now":
                return self.context.now
            self.function(value, field_name)
            return None
        if text.lower() in ("empty", "null") and not value.quoted:
            return None
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, tz=self.context.timezone)
        period = _PERIOD.match(text)
        if period:
            delta = sum((int(n) * _UNIT[u] for n, u in _PERIOD_PART.findall(period.group(2))), timedelta())
            return self.context.now - delta if period.group(1) == "-" else self.context.now + delta
        for pattern in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(text, pattern)  # noqa: DTZ007 - the zone is the searcher's, set next
            except ValueError:
                continue
            return parsed.replace(tzinfo=self.context.timezone)
        self.errors.append(
            f"Date value '{value.text}' for field '{field_name}' is invalid. Valid formats include: "
            "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', "
            "or a period format e.g. '-5d', '4w 2d'."
        )
        return None

    def property_clause(self, key: str, path: str, clause: Clause) -> Predicate:
        """``issue.property[key].path``: searchable only when an installed app indexes the property.

        Jira indexes an entity property for JQL only if a Connect app's ``jiraEntityProperties`` module, a Forge
        app's ``jira:entityProperty`` module (Data Center: a plugin's ``index-document-configuration``) declares
        it (developer.atlassian.com, "Entity properties"); an integration on an API token cannot declare one.
        For any other key the search is refused as an unknown field (HTTP 400), the unfavourable reading. One
        field report (go-atlassian against Cloud, 2026) saw such a query answer no error and no match instead;
        either way the property cannot be searched. A declared ``key.path`` indexes that path, as a real module
        does; a declared bare ``key`` indexes every path of it (a convenience no module offers).
        """
        indexed = self.context.indexed_properties
        if key not in indexed and f"{key}.{path}" not in indexed:
            return self.unknown_field(clause)
        if not self.operator_ok(clause, (*_EQUALITY, "IS", "IS NOT"), clause.field):
            return lambda issue: False

        def lookup(issue: Issue) -> str | None:
            node: Any = issue.properties.get(key)
            for part in path.split("."):
                if not isinstance(node, dict) or part not in node:
                    return None
                node = node[part]
            if node is None or isinstance(node, dict | list):
                return None
            if isinstance(node, bool):
                return "true" if node else "false"
            return str(node)

        resolved: set[str | None] = {v.text for v in clause.values}
        return self.match_set(clause, lookup, resolved)


def _compare(operator: str, getter: Callable[[Issue], Any], targets: list[Any]) -> Predicate:
    """Ordered comparison of a date/instant field against operand values (None targets mean EMPTY)."""
    target = targets[0] if targets else None
    if operator == "IS":
        return lambda issue: getter(issue) is None
    if operator == "IS NOT":
        return lambda issue: getter(issue) is not None
    if operator in ("IN", "NOT IN"):
        inside: Predicate = lambda issue: getter(issue) in targets  # noqa: E731 - a tiny local predicate
        return inside if operator == "IN" else (lambda issue: not inside(issue))
    if target is None:
        return lambda issue: getter(issue) is None if operator == "=" else getter(issue) is not None
    checks: dict[str, Callable[[Any], bool]] = {
        "=": lambda v: v == target,
        "!=": lambda v: v != target,
        ">": lambda v: v > target,
        ">=": lambda v: v >= target,
        "<": lambda v: v < target,
        "<=": lambda v: v <= target,
    }
    check = checks[operator]
    return lambda issue: getter(issue) is not None and check(getter(issue))


def _sort_value(issue: Issue, name: str, state: JiraState) -> Any:  # noqa: ANN401 - each field sorts by its own type
    if name == "key":
        return key_order(issue.key)
    if name == "priority":
        return [n for _, n in state.priorities].index(issue.priority)
    if name == "status":
        return state.statuses[issue.status].id
    if name == "assignee":
        return state.users[issue.assignee].display_name.lower() if issue.assignee else None
    return getattr(issue, name)


def compile_query(query: Query, context: Context) -> tuple[Predicate, Callable[[list[Issue]], list[Issue]]]:
    """Validate and compile: a predicate, and a function that sorts matches as the ORDER BY (or Jira's default)."""
    compiler = _Compiler(context)
    predicate: Predicate = compiler.node(query.where) if query.where is not None else (lambda issue: True)
    order = query.order or [("key", False)]
    resolved_order: list[tuple[str, bool]] = []
    for name, ascending in order:
        field_name = ALIASES.get(name.lower(), name.lower())
        if field_name not in _SORTABLE:
            compiler.errors.append(f"Not able to sort using field '{name}'.")
        else:
            resolved_order.append((field_name, ascending))
    if compiler.errors:
        raise JqlError(compiler.errors)

    def sort(issues: list[Issue]) -> list[Issue]:
        ordered = sorted(issues, key=lambda issue: key_order(issue.key))
        for name, ascending in reversed(resolved_order):
            keyed = [(_sort_value(issue, name, context.state), issue) for issue in ordered]
            present = [pair for pair in keyed if pair[0] is not None]
            missing = [issue for value, issue in keyed if value is None]
            present.sort(key=lambda pair: pair[0], reverse=not ascending)
            # Jira puts EMPTY values last in ascending order and first in descending order.
            ordered = [issue for _, issue in present] + missing if ascending else missing + [i for _, i in present]
        return ordered

    return predicate, sort


__all__ = ["Context", "JqlError", "compile_query", "key_order"]
