"""What one mirrored change costs each target tool in API requests, against the least its API needs for the write.

For each kind of change (rename, status move, assignee, label, description, due date) made by a person in each
tool, one targeted pass (``Pass.run(hints=...)``, the pass a webhook triggers) mirrors it into the other two
tools through the real connectors, and the emulators' own request counters say what each tool received. Reads
and writes are counted apart; the minimum is the writes the tool's API needs for that change (the table in
``MINIMUM`` says why), so the gap is reads the engine makes around the write plus any write the API would not need.
A second column shows what the change costs again at the next poll: syncd's own writes come back through each
target's change feed and are read (then skipped as syncd's own).

The organisation is the seeded sandbox with the shipped ``mappings/launch-requests.yaml``; the first two passes
mirror it and settle, and the connectors stay alive across passes, as the daemon's do (their caches are warm).
The label ``bench`` is created in each tool beforehand so the label rows measure a label the target already has.
Prints a table and writes benchmarks/results/write_cost.json.

    .venv/bin/python benchmarks/bench_write_cost.py
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from connectors.factory import CAPABILITIES
from connectors.sandbox import sandbox_connectors
from sandbox.asana import edits
from sandbox.core import Emulator
from sandbox.org import Sandbox
from syncd.connector import Connector
from syncd.engine import Pass
from syncd.mapping import Group, compile_group
from syncd.store import Store

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
TOOLS = ("jira", "trello", "asana")
MEMBER = {"jira": "engineering", "trello": "sales", "asana": "marketing"}
KINDS = ("rename", "status", "assignee", "label", "description", "due")
LABEL = "bench"
DUE = "2027-03-01"
SCOPE_LABEL = "launch"
"""Engineering's scope in the shipped mapping."""
PEOPLE = ("eli@corp.example", "ana@corp.example", "gus@corp.example")
"""People who exist in all three tools' workspaces (the Asana project has only some of the seeded people)."""

MINIMUM: dict[tuple[str, str], tuple[int, str]] = {
    ("jira", "status"): (2, "GET /issue/{key}/transitions, then one POST .../transitions per workflow step"),
    ("trello", "status"): (1, "one PUT /cards/{id} with idList (a move is a field of the card)"),
    ("asana", "status"): (1, "one POST /sections/{gid}/addTask (a section move is not a task field)"),
    ("asana", "label"): (1, "one POST /tasks/{gid}/addTag per tag added (tags are not a writable task field)"),
}
"""(target tool, kind) -> (requests the API needs for the write, why); every other pair is one edit request:
Jira ``PUT /issue/{key}`` (summary, description, assignee, duedate, labels), Trello ``PUT /cards/{id}`` (name, desc,
idMembers, idLabels, due; it answers with the card, so no read-back is needed), Asana ``PUT /tasks/{gid}`` (name,
html_notes, assignee, due_on; it answers with the task). From ../shared/specs and the connectors' write paths."""

ONE_EDIT = {
    "jira": "one PUT /issue/{key}",
    "trello": "one PUT /cards/{id}",
    "asana": "one PUT /tasks/{gid}",
}


@dataclass(frozen=True)
class Refs:
    """One mirrored item: its title and its id in each tool."""

    title: str
    jira: str
    trello: str
    asana: str

    def of(self, tool: str) -> str:
        return {"jira": self.jira, "trello": self.trello, "asana": self.asana}[tool]


def minimum(tool: str, kind: str, steps: int) -> tuple[int, str]:
    """The requests ``tool``'s API needs to write a change of ``kind`` (Jira: ``steps`` transitions)."""
    if (tool, kind) == ("jira", "status"):
        return 1 + steps, MINIMUM[(tool, kind)][1]
    return MINIMUM.get((tool, kind), (1, ONE_EDIT[tool]))


def connectors_for(sandbox: Sandbox) -> dict[str, Connector]:
    """The three departments' connectors, built as the daemon builds them (rate budgets off: not the subject)."""
    return sandbox_connectors(sandbox)


def mirrored(sandbox: Sandbox) -> list[Refs]:
    """Items present in all three tools and in Engineering's scope (label ``launch``), by title.

    After the first pass every mirror carries its origin's title. Items without the label are created in Jira too,
    but outside Engineering's scope: a person's edit there unlinks them instead of mirroring (see docs/benchmarks.md).
    """
    with sandbox.jira.lock, sandbox.trello.lock, sandbox.asana.lock:
        jira = {issue.summary: key for key, issue in sandbox.jira.state.issues.items() if SCOPE_LABEL in issue.labels}
        trello = {card.name: card.id for card in sandbox.trello.state.cards.values() if not card.closed}
        asana = {task.name: task.gid for task in sandbox.asana.state.tasks.values()}
    return [
        Refs(title, jira[title], trello[title], asana[title]) for title in sorted(set(jira) & set(trello) & set(asana))
    ]


def status_of(sandbox: Sandbox, refs: Refs) -> tuple[str, str, str]:
    """The item's status as each tool names it."""
    with sandbox.jira.lock, sandbox.trello.lock, sandbox.asana.lock:
        card = sandbox.trello.state.cards[refs.trello]
        task = sandbox.asana.state.tasks[refs.asana]
        return (
            sandbox.jira.state.issues[refs.jira].status,
            sandbox.trello.state.lists[card.id_list].name,
            task.memberships[0].section.name if task.memberships else "",
        )


def assignee_of(sandbox: Sandbox, refs: Refs) -> str | None:
    """Jira's assignee e-mail of the item (the other tools agree after a settled pass)."""
    with sandbox.jira.lock:
        return sandbox.jira.state.issues[refs.jira].assignee


def make_change(sandbox: Sandbox, tool: str, kind: str, refs: Refs) -> None:
    """A person changes one field of the item in ``tool``, as they would in its UI."""
    person = next(p for p in PEOPLE if p != assignee_of(sandbox, refs))
    {"jira": _in_jira, "trello": _in_trello, "asana": _in_asana}[tool](sandbox, kind, refs, person)


def _in_jira(sandbox: Sandbox, kind: str, refs: Refs, person: str) -> None:
    jira = sandbox.jira.act_as("ana@corp.example")
    if kind == "status":
        jira.transition(refs.jira, "In Progress")
    elif kind == "label":
        jira.update(refs.jira, labels=[*sandbox.jira.state.issues[refs.jira].labels, LABEL])
    else:
        field = {"rename": "summary", "assignee": "assignee", "description": "description", "due": "duedate"}[kind]
        value = {"rename": f"{refs.title} (renamed)", "assignee": person, "description": "Measured.", "due": DUE}
        jira.update(refs.jira, **{field: value[kind]})


def _in_trello(sandbox: Sandbox, kind: str, refs: Refs, person: str) -> None:
    trello = sandbox.trello.act_as("eli@corp.example")
    if kind == "status":
        trello.move_card(refs.trello, "Doing")
    elif kind == "label":
        trello.add_label(refs.trello, LABEL)
    elif kind == "assignee":
        for member in list(sandbox.trello.state.cards[refs.trello].id_members):
            trello.remove_member(refs.trello, member)
        trello.add_member(refs.trello, person)
    else:
        field = {"rename": "name", "description": "desc", "due": "due"}[kind]
        value = {"rename": f"{refs.title} (renamed)", "description": "Measured.", "due": f"{DUE}T12:00:00.000Z"}
        trello.update_card(refs.trello, **{field: value[kind]})


def _in_asana(sandbox: Sandbox, kind: str, refs: Refs, person: str) -> None:
    asana = sandbox.asana.act_as("gus@corp.example")
    if kind == "status":
        asana.move(refs.asana, "In progress")
    elif kind == "label":
        with sandbox.asana.lock:  # the actor has no tag method; the same edit the addTag route makes
            state = sandbox.asana.state
            tag = state.find_tag(LABEL)
            assert tag is not None
            edits.add_tag(state, asana.user, state.task(refs.asana), tag)
    else:
        field = {"rename": "name", "assignee": "assignee", "description": "notes", "due": "due_on"}[kind]
        value = {"rename": f"{refs.title} (renamed)", "assignee": person, "description": "Measured.", "due": DUE}
        asana.update_task(refs.asana, **{field: value[kind]})


def short(route: str) -> str:
    """A counted route without werkzeug's converter syntax: ``GET /rest/api/{version}/issue/{issue_id}``."""
    return re.sub(r"<(?:[^>:]*:)?(\w+)>", r"{\1}", route)


def is_write(route: str) -> bool:
    """Whether a counted route (``"METHOD /path"``) changes something; searches sent as POST are reads."""
    method, _, path = route.partition(" ")
    return method != "GET" and "search" not in path


def split(emulator: Emulator) -> tuple[int, int, dict[str, int]]:
    """Reads, writes and the per-route counts an emulator served since its counters were reset."""
    routes = {short(route): n for route, n in emulator.counters()["routes"].items()}
    writes = sum(n for route, n in routes.items() if is_write(route))
    return sum(routes.values()) - writes, writes, routes


def settle(group: Group, connectors: dict[str, Connector], store: Store) -> None:
    """Full passes until one writes nothing (the first mirrors the organisation)."""
    for _ in range(5):
        report = Pass(group, connectors, store).run()
        if not report.failures and report.writes == 0:
            return
    raise RuntimeError("the organisation did not settle in 5 passes")


def has_due(sandbox: Sandbox, refs: Refs) -> bool:
    """Whether the item already has a due date (Jira's; the others agree after a settled pass)."""
    with sandbox.jira.lock:
        return sandbox.jira.state.issues[refs.jira].duedate is not None


def allocate(sandbox: Sandbox, items: list[Refs]) -> dict[tuple[str, str], Refs]:
    """A distinct item per (origin, kind), the constrained rows first.

    A status row needs an item in "todo" everywhere (it moves to "doing"). A due row needs an item that already has
    a due date: setting the first date of an item that never had one is held as a ``manual`` conflict instead of
    propagating (the base has no ``due``, so every tool counts as changed; reported in docs/benchmarks.md).
    """

    def undated(refs: Refs) -> bool:
        return not has_due(sandbox, refs)

    wanted: dict[str, Callable[[Refs], bool]] = {
        "due": lambda refs: has_due(sandbox, refs),
        "status": lambda refs: status_of(sandbox, refs) == ("To Do", "Requests", "Backlog"),
    }
    free = list(items)
    chosen: dict[tuple[str, str], Refs] = {}
    for kind in ("due", "status", *(k for k in KINDS if k not in wanted)):
        for origin in TOOLS:
            fits = wanted.get(kind, undated)
            refs = next((r for r in free if fits(r)), None) or (free[0] if kind not in wanted and free else None)
            if refs is None:
                raise RuntimeError(f"no mirrored item left for a {kind} change in {origin}")
            free.remove(refs)
            chosen[(origin, kind)] = refs
    return chosen


def measure(
    sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store, on_row: Callable[[str], None]
) -> list[dict[str, object]]:
    """One row per (origin tool, kind, target tool)."""
    emulators = dict(zip(TOOLS, sandbox.emulators, strict=True))
    chosen = allocate(sandbox, mirrored(sandbox))
    rows: list[dict[str, object]] = []
    for origin in TOOLS:
        for kind in KINDS:
            refs = chosen[(origin, kind)]
            before = status_of(sandbox, refs)
            make_change(sandbox, origin, kind, refs)
            for emulator in sandbox.emulators:
                emulator.reset_counters()
            report = Pass(group, connectors, store).run(hints={MEMBER[origin]: [refs.of(origin)]})
            if report.failures:
                raise RuntimeError(f"{origin} {kind}: {report.failures}")
            counted = {tool: split(emulators[tool]) for tool in TOOLS}
            # The next poll: syncd's own writes come back through the targets' change feeds (an idle poll is 1).
            for emulator in sandbox.emulators:
                emulator.reset_counters()
            echo = Pass(group, connectors, store).run()
            if echo.writes or echo.failures:
                raise RuntimeError(f"{origin} {kind}: the next poll wrote {echo.writes} ({echo.failures})")
            echoed = {tool: emulators[tool].request_count() for tool in TOOLS}
            steps = 1 if kind == "status" and before[0] == "To Do" else 0
            origin_reads, _, origin_routes = counted[origin]
            for target in TOOLS:
                if target == origin:
                    continue
                reads, writes, routes = counted[target]
                least, why = minimum(target, kind, steps)
                rows.append(
                    {
                        "origin": origin,
                        "kind": kind,
                        "target": target,
                        "reads": reads,
                        "writes": writes,
                        "total": reads + writes,
                        "minimum": least,
                        "minimum_why": why,
                        "next_poll": echoed[target],
                        "routes": routes,
                        "origin_reads": origin_reads,
                        "origin_routes": origin_routes,
                        "item": refs.title,
                    }
                )
            on_row(f"{origin} {kind}: {report.writes} writes")
    return rows


def main() -> int:
    rows: list[dict[str, object]] = []
    with Sandbox() as sandbox, tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        for emulator in sandbox.emulators:
            emulator.rate_limits_enabled = False
        with sandbox.trello.lock, sandbox.asana.lock:
            sandbox.trello.state.create_label(next(iter(sandbox.trello.state.boards.values())), LABEL, "blue")
            sandbox.asana.state.add_tag(LABEL)
        group = compile_group(
            ROOT / "mappings" / "launch-requests.yaml",
            {"engineering": "jira", "sales": "trello", "marketing": "asana"},
            CAPABILITIES,
        )
        connectors = connectors_for(sandbox)
        store = Store(f"sqlite:///{Path(tmp) / 'syncd.db'}")
        store.migrate()
        try:
            settle(group, connectors, store)
            rows = measure(sandbox, group, connectors, store, lambda line: print(line, file=sys.stderr))
        finally:
            store.close()
    print(
        f"{'origin':<8}{'change':<13}{'target':<8}{'reads':>6}{'writes':>7}{'total':>6}{'min':>5}"
        f"{'total/min':>10}{'next poll':>10}  extra requests beyond the minimum write"
    )
    for row in rows:
        routes: dict[str, int] = row["routes"]  # type: ignore[assignment]
        extra = ", ".join(f"{n}x {route}" for route, n in sorted(routes.items()) if not is_write(route))
        total, least = int(str(row["total"])), int(str(row["minimum"]))
        writes = int(str(row["writes"]))
        if writes > least:
            extra = f"{writes - least} more write(s); " + extra
        print(
            f"{row['origin']:<8}{row['kind']:<13}{row['target']:<8}{row['reads']!s:>6}{writes:>7}{total:>6}"
            f"{least:>5}{total / least:>10.1f}{row['next_poll']!s:>10}  {extra}"
        )
    totals = {tool: sum(int(str(r["total"])) for r in rows if r["target"] == tool) for tool in TOOLS}
    minima = {tool: sum(int(str(r["minimum"])) for r in rows if r["target"] == tool) for tool in TOOLS}
    print(
        "per target tool, all rows: "
        + ", ".join(f"{tool} {totals[tool]} requests for a minimum of {minima[tool]}" for tool in TOOLS)
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "write_cost.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
