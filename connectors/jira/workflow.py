"""Jira workflows as a graph: which transitions lead from one status to another, and the shortest way there.

Jira changes status only through transitions, and which transitions exist depends on the current status. Reaching
a status may take several steps (To Do -> In Progress -> In Review -> Done) or be impossible. The graph is learned
from the transitions Jira offers for issues in each status (read-only calls), and planned here without I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Transition:
    """One transition Jira offers from some status: its id, name, target, and the fields its screen requires."""

    id: str
    name: str
    to: str
    required: tuple[str, ...] = ()


@dataclass
class Workflow:
    """Known transitions per source status; statuses never explored have no entry (unknown, not empty)."""

    edges: dict[str, dict[str, Transition]] = field(default_factory=dict)
    screens: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Transition id -> the fields its screen requires (read once: GET issue cannot say, GET transitions can)."""

    def learn(self, status: str, transitions: list[Transition]) -> None:
        """Record what Jira offers from ``status`` (replacing what was known, as workflows can change).

        Copy-on-write: the graph is shared by the connectors of every thread, and readers iterate a snapshot that
        is never changed under them.
        """
        self.edges = {**self.edges, status: {t.to: t for t in transitions if t.to != status}}

    def learn_screens(self, required: dict[str, tuple[str, ...]]) -> None:
        """Record which fields each transition's screen requires (copy-on-write, like :meth:`learn`)."""
        self.screens = {**self.screens, **required}

    def path(self, start: str, goal: str) -> list[Transition] | None:
        """The fewest transitions from start to goal over known edges; [] if already there, None if unreachable."""
        if start == goal:
            return []
        previous: dict[str, tuple[str, Transition]] = {}
        queue = deque([start])
        seen = {start}
        while queue:
            status = queue.popleft()
            for target, transition in sorted(self.edges.get(status, {}).items()):
                if target in seen:
                    continue
                seen.add(target)
                previous[target] = (status, transition)
                if target == goal:
                    steps: list[Transition] = []
                    node = goal
                    while node != start:
                        node, step = previous[node]
                        steps.append(step)
                    return steps[::-1]
                queue.append(target)
        return None

    def unexplored(self) -> set[str]:
        """Statuses that are targets of known transitions but whose own transitions were never read."""
        targets = {to for edges in self.edges.values() for to in edges}
        return targets - set(self.edges)

    def requirements(self) -> dict[str, tuple[str, ...]]:
        """Target status -> fields some transition into it requires (what a config must supply)."""
        needed: dict[str, set[str]] = {}
        for edges in self.edges.values():
            for transition in edges.values():
                if transition.required:
                    needed.setdefault(transition.to, set()).update(transition.required)
        return {status: tuple(sorted(names)) for status, names in sorted(needed.items())}

    def reachable(self) -> dict[str, tuple[str, ...]]:
        """Status -> statuses reachable in one step, for the Schema."""
        return {status: tuple(sorted(edges)) for status, edges in sorted(self.edges.items())}
