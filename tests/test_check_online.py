"""`syncd check --online` against the sandbox: every way a setup can be broken at a tool is one exact line.

Each test breaks one thing (a mapping copy, a department file copy, the environment, the sandbox's workflow), runs
the real command as a subprocess and checks the exit code, the exact problem line, and that no credential leaks.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from connectors.factory import CAPABILITIES
from sandbox.org import Sandbox
from syncd.checks import online_problems
from syncd.config import load_config
from syncd.mapping import compile_group
from syncd.model import CustomField, Person, Schema
from tests.syncd_env import ROOT, SYNCD, syncd

SHIPPED = ROOT / "mappings" / "launch-requests.yaml"


def _check(env: dict[str, str], mappings: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `syncd check --online`, on the shipped mappings or on a copy."""
    if mappings is None:
        return syncd(env, "check", "--online")
    command = [str(SYNCD), "check", "--online", "--config", env["CONFIG_DIR"], "--mappings", str(mappings)]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=300)


def _errors(done: subprocess.CompletedProcess[str], sandbox: Sandbox) -> list[str]:
    """The problem lines, after checking the run leaked no credential and crashed nowhere."""
    for tool in sandbox.credentials().values():
        for name, value in tool.items():
            if name not in {"url", "email"}:
                assert value not in done.stdout + done.stderr, f"the {name} leaked"
    assert "Traceback" not in done.stderr
    return [line.removeprefix("error: ") for line in done.stderr.splitlines() if line.startswith("error: ")]


def _mappings_copy(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the shipped mappings with one edit; the edit must apply (a test of nothing would pass)."""
    directory = tmp_path / "mappings"
    directory.mkdir()
    text = SHIPPED.read_text()
    assert old in text
    (directory / SHIPPED.name).write_text(text.replace(old, new))
    return directory


def _edit_department(env: dict[str, str], name: str, old: str, new: str) -> None:
    path = Path(env["CONFIG_DIR"]) / "departments" / f"{name}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


class TestCheckOnline:
    def test_the_shipped_setup_is_ok(self, sandbox: Sandbox, environment: dict[str, str]) -> None:
        """The shipped config and mappings match the sandbox organisation: exit 0, one ok line."""
        done = _check(environment)
        assert _errors(done, sandbox) == []
        assert done.returncode == 0, done.stderr
        assert "ok: 3 departments, 1 sync groups; every tool answered and matches the mappings" in done.stderr

    def test_an_unknown_status_in_a_mapping(
        self, sandbox: Sandbox, tmp_path: Path, environment: dict[str, str]
    ) -> None:
        """A list the Trello board lacks is named with the mapping file, where it is named, and what exists."""
        mappings = _mappings_copy(
            tmp_path, "sales: {Requests: todo, Doing: doing,", "sales: {Requests: todo, Doin: doing,"
        )
        done = _check(environment, mappings)
        assert done.returncode == 2
        assert _errors(done, sandbox) == [
            f"sales: {mappings / SHIPPED.name}: fields.status.map.sales names 'Doin', which is not a list of the "
            "Trello board 695b7d9b9a04ad56ef00000b (it has 'Requests', 'Doing', 'Done'): fix the name, or add the "
            "list in Trello"
        ]

    def test_an_unreachable_transition(self, sandbox: Sandbox, environment: dict[str, str]) -> None:
        """Without "Unblock", an issue in Blocked (ENG-7 is) can never leave it: one line names the dead end."""
        project = sandbox.jira.state.projects["ENG"]
        before = len(project.transitions)
        project.transitions = [t for t in project.transitions if t.name != "Unblock"]
        assert len(project.transitions) == before - 1
        done = _check(environment)
        assert done.returncode == 2
        assert _errors(done, sandbox) == [
            f"engineering: {ROOT / 'mappings' / SHIPPED.name}: no chain of transitions in Jira project ENG leads "
            "from 'Blocked' to 'To Do', 'In Progress', 'In Review' or 'Done': add a transition to the workflow, "
            "or map these statuses differently"
        ]

    def test_a_transition_screen_the_config_does_not_fill(self, sandbox: Sandbox, environment: dict[str, str]) -> None:
        """Approve requires a resolution: without transition_fields for Done, the check says what to add."""
        _edit_department(environment, "engineering", "  transition_fields:\n    Done: {resolution: {name: Done}}", "")
        done = _check(environment)
        assert done.returncode == 2
        assert _errors(done, sandbox) == [
            "engineering: moving an item to 'Done' in Jira project ENG requires resolution: add it to "
            "transition_fields for 'Done' in the department's file"
        ]

    def test_a_missing_credential(self, sandbox: Sandbox, environment: dict[str, str]) -> None:
        """An unset token is that department's problem, named by its variable; the others are still checked."""
        del environment["SYNCD_TRELLO_TOKEN"]
        done = _check(environment)
        assert done.returncode == 2
        assert _errors(done, sandbox) == [
            "sales: environment variable SYNCD_TRELLO_TOKEN is not set: export it with the credential"
        ]

    def test_a_refused_credential(self, sandbox: Sandbox, environment: dict[str, str]) -> None:
        """A wrong token is refused (401): the line names the user and the variable, never the value."""
        environment["SYNCD_JIRA_TOKEN"] = "not-the-token-9f2c"
        done = _check(environment)
        assert done.returncode == 2
        assert _errors(done, sandbox) == [
            "engineering: credentials refused by Jira (HTTP 401): check the user syncd-bot@corp.example and "
            "SYNCD_JIRA_TOKEN"
        ]
        assert "not-the-token-9f2c" not in done.stdout + done.stderr

    def test_a_wrong_workspace(self, sandbox: Sandbox, environment: dict[str, str]) -> None:
        """A board id the tool does not know is reported as a missing workspace."""
        _edit_department(environment, "sales", "board: 695b7d9b9a04ad56ef00000b", "board: 695b7d9b9a04ad56ef0000ff")
        done = _check(environment)
        assert done.returncode == 2
        assert _errors(done, sandbox) == [
            "sales: the Trello board 695b7d9b9a04ad56ef0000ff does not exist or the account cannot see it "
            "(The requested resource was not found.; check the board id)"
        ]

    def test_an_unresolvable_person(self, sandbox: Sandbox, environment: dict[str, str]) -> None:
        """A people override nobody on the board matches is named with the fix."""
        _edit_department(
            environment,
            "sales",
            "  hana@corp.example: hana",
            "  hana@corp.example: hana\n  nobody@corp.example: nobody",
        )
        done = _check(environment)
        assert done.returncode == 2
        assert _errors(done, sandbox) == [
            "sales: nobody@corp.example is not a member of the Trello board (add them, or fix the people directory)"
        ]

    def test_every_problem_is_reported_at_once(
        self, sandbox: Sandbox, tmp_path: Path, environment: dict[str, str]
    ) -> None:
        """Problems at several departments come out together, in department order."""
        mappings = _mappings_copy(tmp_path, "marketing: {Backlog: todo,", "marketing: {Icebox: todo,")
        del environment["SYNCD_JIRA_TOKEN"]
        done = _check(environment, mappings)
        assert done.returncode == 2
        assert _errors(done, sandbox) == [
            "engineering: environment variable SYNCD_JIRA_TOKEN is not set: export it with the credential",
            f"marketing: {mappings / SHIPPED.name}: fields.status.map.marketing names 'Icebox', which is not a "
            "section of the Asana project 1208000000000011 (it has 'Backlog', 'In progress', 'Shipped'): fix the "
            "name, or add the section in Asana",
        ]


class _Described:
    """A stand-in connector whose describe() answers a fixed schema (the only call the checks make)."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def describe(self) -> Schema:
        return self.schema


JIRA_STATUSES = ("To Do", "In Progress", "In Review", "Blocked", "Done")


@pytest.mark.parametrize(
    ("transitions", "expected"),
    [
        pytest.param(
            {
                "To Do": ("In Progress",),
                "In Progress": ("Blocked", "In Review"),
                "In Review": ("Done",),
                "Done": ("To Do",),
            },
            [],
            id="a status no issue is in has unknown transitions, not none",
        ),
        pytest.param(
            {"To Do": ("In Progress",), "In Progress": ("In Review",), "In Review": ("Blocked", "Done"), "Done": ()},
            [
                f"engineering: {SHIPPED}: no chain of transitions in Jira project ENG leads from 'Done' to 'To Do', "
                "'In Progress', 'In Review' or 'Blocked': add a transition to the workflow, or map these statuses "
                "differently"
            ],
            id="an explored status without transitions is a dead end",
        ),
    ],
)
def test_only_a_certain_dead_end_is_reported(transitions: dict[str, tuple[str, ...]], expected: list[str]) -> None:
    """Jira shows transitions only for a status some issue is in: an unexplored status must not fail the check."""
    config = load_config(ROOT / "config")
    tools = {name: department.connection.tool for name, department in config.departments.items()}
    sales = tuple(Person(email, account=account) for email, account in config.departments["sales"].people.items())
    lists = ("Requests", "Doing", "Done")
    sections = ("Backlog", "In progress", "Shipped")
    # The shipped mapping keeps priority in Jira's own field and in a custom field of each of the others.
    levels = ("Highest", "High", "Medium", "Low", "Lowest")
    trello_priority = (CustomField("Priority", "cf-t", "enum", levels[:4]),)
    asana_priority = (CustomField("Priority", "cf-a", "enum", levels[1:4]),)
    schemas = {
        "jira": Schema("jira", JIRA_STATUSES, transitions, people=(), labels=(), priorities=levels),
        "trello": Schema(
            "trello", lists, dict.fromkeys(lists, lists), people=sales, labels=(), custom_fields=trello_priority
        ),
        "asana": Schema(
            "asana", sections, dict.fromkeys(sections, sections), people=(), labels=(), custom_fields=asana_priority
        ),
    }
    found = online_problems(
        config,
        [compile_group(SHIPPED, tools, CAPABILITIES)],
        lambda department: _Described(schemas[department.connection.tool]),
        CAPABILITIES,
    )
    assert found == expected


PLACED = """\
  priority:
    rule: {owner: engineering}
    at: {engineering: {field: priority}, sales: {custom: Priority}, marketing: {custom: Priority}}
    map:
      engineering: {Highest: highest, High: high, Medium: medium, Low: low, Lowest: lowest}
      sales: {Highest: highest, High: high, Medium: medium, Low: low}
      marketing: {Urgent: high, Medium: medium, Low: low}
  deal_size:
    type: number
    members: [engineering, sales]
    at: {engineering: {custom: Deal size}, sales: {custom: Deal sise}}
"""


class TestCheckOnlineCustomFields:
    def test_a_missing_custom_field_and_option_are_named_with_the_closest(
        self, sandbox: Sandbox, tmp_path: Path, environment: dict[str, str]
    ) -> None:
        """A custom field the board lacks and an option the Asana field lacks: file:line, and what is closest."""
        shipped = SHIPPED.read_text()
        priority = shipped[shipped.index("  priority:") : shipped.index("comments:")]  # the shipped field, replaced
        mappings = _mappings_copy(tmp_path, priority, PLACED)
        path = mappings / SHIPPED.name
        lines = path.read_text().splitlines()
        at = next(n for n, line in enumerate(lines, 1) if "Deal sise" in line)
        urgent = next(n for n, line in enumerate(lines, 1) if "Urgent" in line)
        done = _check(environment, mappings)
        assert done.returncode == 2
        assert sorted(_errors(done, sandbox)) == [
            f"marketing: {path}:{urgent}: fields.priority.map.marketing names 'Urgent', which is not an option of "
            f"custom field 'Priority' of Asana project {_asana_project(sandbox)} (it has 'High', 'Medium', 'Low'): "
            "fix the name, or add the option",
            f"sales: {path}:{at}: fields.deal_size.at.sales names custom field 'Deal sise', which the Trello board "
            "695b7d9b9a04ad56ef00000b does not have (closest: 'Deal size'): fix the name, or add the field in Trello",
        ]


def _asana_project(sandbox: Sandbox) -> str:
    return next(iter(sandbox.asana.state.projects))


class TestCheckOnlinePriority:
    def test_a_priority_the_jira_site_lacks_is_named_and_labels_need_nothing(
        self, sandbox: Sandbox, tmp_path: Path, environment: dict[str, str]
    ) -> None:
        """A Jira priority the site does not have: file:line and the closest; Sales's priority labels: no problem."""
        shipped = "engineering: {Highest: high, High: high, Medium: medium, Low: low, Lowest: low}"
        mappings = _mappings_copy(tmp_path, shipped, shipped.replace("Lowest", "Trivial"))
        path = mappings / SHIPPED.name
        text = path.read_text().replace("sales: {custom: Priority}", "sales: {labels: [High, Medium, Low]}")
        text = text.replace("sales: {Highest: high, High: high,", "sales: {High: high,")
        path.write_text(text)
        line = next(n for n, each in enumerate(text.splitlines(), 1) if "Trivial" in each)
        done = _check(environment, mappings)
        assert done.returncode == 2
        assert _errors(done, sandbox) == [
            f"engineering: {path}:{line}: fields.priority.map.engineering names 'Trivial', which is not an option "
            "of priority in Jira project ENG (it has 'Highest', 'High', 'Medium', 'Low', 'Lowest'): fix the name, "
            "or add the option"
        ]
