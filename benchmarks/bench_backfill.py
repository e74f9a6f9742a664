"""Backfill against the rate limits (issue 6, benchmark 4) and its scaling with worker threads (benchmark 6).

Backfill: N existing Jira issues (label ``launch``, generated into the seed; the seed's own cards and tasks are
left out so every count is exact) are mirrored into Trello and Asana by one pass through a pool of worker threads,
with the emulators enforcing the real services' budgets and the connectors using their default (shared,
per-credential) token buckets. Reported: wall time; the minimum time each tool's budget allows for the requests
it received, and ``used = minimum / wall`` for the binding one (the target is above 90%); 429s per tool (the
emulators' counters); and items lost (every issue must end with exactly one card and one task carrying its
item's marker). A progress line (cards and tasks created, read from the emulators' state) is printed every few
seconds, so a long run can be followed in a log.

Scaling (``--scaling``): the same backfill with the budgets switched off (the emulators' and the connectors' own
pacing) and a realistic per-request latency, for 1, 2, 3 and 4 worker threads: wall time and speed-up over one.

    .venv/bin/python benchmarks/bench_backfill.py --items 500
    nohup .venv/bin/python benchmarks/bench_backfill.py --every 10 > benchmarks/results/backfill_10000.log 2>&1 &
    .venv/bin/python benchmarks/bench_backfill.py --scaling --items 1000 --latency-ms 80
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

from connectors.factory import CAPABILITIES
from connectors.sandbox import sandbox_connectors
from sandbox.org import Sandbox
from sandbox.seed import JiraIssue, Seed, load_seed
from syncd.connector import Connector
from syncd.engine import Pass, PassReport
from syncd.mapping import Group, compile_group
from syncd.store import Store
from syncd.uncertain import MARKER_URL

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
TOOLS: dict[str, Literal["jira", "trello", "asana"]] = {"engineering": "jira", "sales": "trello", "marketing": "asana"}
STATUSES = ("To Do", "In Progress", "In Review", "Blocked", "Done")
ASSIGNEES = ("ana@corp.example", "ben@corp.example", "chen@corp.example", "dana@corp.example", None)
BUDGETS = {
    # tool: (requests, window in seconds) of the budget the emulator enforces on one credential.
    "trello": (100, 10.0),  # per token (the per-key budget, 300 / 10 s, is looser for one token)
    "asana": (1500, 60.0),  # per token, paid plans
    "jira": (100, 1.0),  # the emulator's per-user burst (Jira Cloud publishes no number)
}
CONNECTOR_BUDGETS = {"trello": (100, 10.0), "asana": (1500, 60.0), "jira": (100, 10.0)}
"""What the connectors' default buckets allow: Jira paces itself at 100 / 10 s, tighter than the emulator."""


def backfill_seed(items: int) -> Seed:
    """The shipped organisation with ``items`` generated launch issues in Jira and no cards or tasks elsewhere."""
    seed = load_seed()
    issues = [
        JiraIssue(
            summary=f"Backfill item {i:05d}",
            description=f"Generated for the backfill benchmark.\n\n* item {i}\n* batch {i // 100}" if i % 3 else "",
            status=STATUSES[i % len(STATUSES)],
            assignee=ASSIGNEES[i % len(ASSIGNEES)],
            labels=["launch"],
            duedate=date(2027, 1, 1) + timedelta(days=i % 90) if i % 4 == 0 else None,
        )
        for i in range(items)
    ]
    project = seed.jira.projects[0].model_copy(update={"issues": issues})
    boards = [board.model_copy(update={"cards": []}) for board in seed.trello.boards]
    projects = [asana.model_copy(update={"tasks": []}) for asana in seed.asana.projects]
    return seed.model_copy(
        update={
            "jira": seed.jira.model_copy(update={"projects": [project]}),
            "trello": seed.trello.model_copy(update={"boards": boards}),
            "asana": seed.asana.model_copy(update={"projects": projects}),
        }
    )


def connectors(sandbox: Sandbox, *, paced: bool = True) -> dict[str, Connector]:
    """One connector set with the default retry policy and, when ``paced``, the default buckets (as the daemon has).

    Unpaced, each connector gets a bucket too large to ever wait, so that only latency and syncd itself count.
    """
    return sandbox_connectors(sandbox, paced=paced)


@contextmanager
def progress(sandbox: Sandbox, items: int, every_s: float) -> Iterator[None]:
    """Print created cards and tasks (from the emulators' state) every ``every_s`` seconds until the block ends."""
    stop = threading.Event()
    started = time.perf_counter()

    def report() -> None:
        while not stop.wait(every_s):
            cards = len(sandbox.trello.state.cards)
            tasks = len(sandbox.asana.state.tasks)
            elapsed = time.perf_counter() - started
            limited = {e.name: e.counters()["statuses"].get("429", 0) for e in sandbox.emulators}
            print(
                f"[{elapsed:7.1f} s] cards {cards:>6}/{items}  tasks {tasks:>6}/{items}  "
                f"({cards / elapsed:5.1f} cards/s)  429s {limited}",
                flush=True,
            )

    thread = threading.Thread(target=report, name="bench-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass
class Run:
    """One backfill's figures."""

    items: int
    workers: int
    latency_ms: int
    rate_limits: bool
    seconds: float = 0.0
    writes: int = 0
    failures: int = 0
    lost: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    routes: dict[str, dict[str, int]] = field(default_factory=dict)
    """Tool -> route -> requests, to see what an item costs where."""
    limited: dict[str, int] = field(default_factory=dict)
    minimum_s: dict[str, float] = field(default_factory=dict)
    paced_minimum_s: dict[str, float] = field(default_factory=dict)
    binding: str = ""
    used: float = 0.0
    problems: list[str] = field(default_factory=list)


def minimum_seconds(requests: int, budget: tuple[int, float]) -> float:
    """The least time a sliding window of ``limit`` per ``window`` needs for ``requests`` (the first go at once)."""
    limit, window = budget
    return max(0.0, (requests - limit) * window / limit)


def lost_items(sandbox: Sandbox, store: Store, group: Group) -> tuple[int, list[str]]:
    """Issues without exactly one card and one task carrying their item's marker (0 when the backfill is whole).

    Both tools' markers are link attachments to the same ``https://syncd.invalid/sync/<sync_id>`` address.
    """
    problems: list[str] = []
    markers: dict[str, list[str]] = {}
    for card in sandbox.trello.state.cards.values():
        for attachment in card.attachments:
            if attachment.url.startswith(MARKER_URL):
                markers.setdefault(attachment.url[len(MARKER_URL) :], []).append(f"card {card.id}")
    external: dict[str, list[str]] = {}
    for link in sandbox.asana.state.attachments.values():
        if link.url.startswith(MARKER_URL):
            external.setdefault(link.url[len(MARKER_URL) :], []).append(f"task {link.parent.gid}")
    lost = 0
    with store.transaction() as tx:
        jira_links = {link.ref: link.sync_id for link in tx.endpoint_links(f"{group.name}/engineering")}
    for key in sandbox.jira.state.issues:
        sync_id = jira_links.get(key)
        cards = markers.get(sync_id or "", [])
        tasks = external.get(sync_id or "", [])
        if sync_id is None or len(cards) != 1 or len(tasks) != 1:
            lost += 1
            if len(problems) < 10:
                problems.append(f"{key}: item {sync_id}, {len(cards)} card(s), {len(tasks)} task(s)")
    return lost, problems


def backfill(
    items: int, workers: int, *, latency_ms: int, rate_limits: bool, every_s: float, quiet: bool = False
) -> Run:
    """Seed N issues, run one pass through ``workers`` threads, and measure it (see the module docstring)."""
    run = Run(items, workers, latency_ms, rate_limits)
    group = compile_group(ROOT / "mappings" / "launch-requests.yaml", TOOLS, CAPABILITIES)
    with tempfile.TemporaryDirectory() as folder, Sandbox(backfill_seed(items), latency_ms=latency_ms) as sandbox:
        for emulator in sandbox.emulators:
            emulator.rate_limits_enabled = rate_limits
            emulator.reset_counters()
        store = Store(f"sqlite:///{Path(folder) / 'syncd.db'}")
        store.migrate()
        main_set = connectors(sandbox, paced=rate_limits)
        builder: Callable[[], dict[str, Connector]] = lambda: connectors(sandbox, paced=rate_limits)  # noqa: E731
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            started = time.perf_counter()
            with progress(sandbox, items, every_s if not quiet else 3600):
                report: PassReport = Pass(group, main_set, store, pool=pool, connectors_for_thread=builder).run()
            run.seconds = time.perf_counter() - started
        run.writes = report.writes
        run.failures = len(report.failures)
        run.problems = [f"{sync_id}: {error}" for sync_id, error in list(report.failures.items())[:5]]
        for emulator in sandbox.emulators:
            counters = emulator.counters()
            run.requests[emulator.name] = int(counters["total"])
            run.routes[emulator.name] = dict(sorted(counters["routes"].items(), key=lambda pair: -pair[1]))
            run.limited[emulator.name] = int(counters["statuses"].get("429", 0))
        run.lost, lost_problems = lost_items(sandbox, store, group)
        run.problems += lost_problems
        store.close()
    for tool, budget in BUDGETS.items():
        served = run.requests[tool] - run.limited[tool]
        run.minimum_s[tool] = round(minimum_seconds(served, budget), 1)
        run.paced_minimum_s[tool] = round(minimum_seconds(served, CONNECTOR_BUDGETS[tool]), 1)
    run.binding = max(run.minimum_s, key=lambda tool: run.minimum_s[tool])
    run.used = run.minimum_s[run.binding] / run.seconds if run.seconds else 0.0
    return run


def print_backfill(run: Run) -> None:
    """The backfill's table: one row per tool, then the verdict."""
    print(
        f"\nbackfill of {run.items} issues, {run.workers} workers, latency {run.latency_ms} ms, "
        f"rate limits {'on' if run.rate_limits else 'off'}: {run.seconds:.1f} s, {run.writes} writes, "
        f"{run.failures} failed items, {run.lost} lost"
    )
    print(f"{'tool':<8}{'requests':>10}{'429s':>7}{'budget':>14}{'minimum s':>11}{'at own pace s':>15}")
    for tool, (limit, window) in BUDGETS.items():
        print(
            f"{tool:<8}{run.requests[tool]:>10}{run.limited[tool]:>7}{f'{limit} / {window:g} s':>14}"
            f"{run.minimum_s[tool]:>11.1f}{run.paced_minimum_s[tool]:>15.1f}"
        )
    print(f"binding limit: {run.binding}; used {run.used:.1%} of it (minimum {run.minimum_s[run.binding]} s)")
    for tool, routes in run.routes.items():  # where the requests went: what one item costs in each tool
        common = [f"{route} {n}" for route, n in routes.items() if n >= run.items / 10]
        print(f"  {tool}: {'; '.join(common) or 'no route with a tenth of the items or more'}")
    for problem in run.problems:
        print(f"  problem: {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=None, help="issues to backfill (10000; 1000 with --scaling)")
    parser.add_argument("--workers", type=int, default=4, help="worker threads of the backfill")
    parser.add_argument("--latency-ms", type=int, default=None, help="added to every request (0; 80 with --scaling)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between progress lines")
    parser.add_argument("--scaling", action="store_true", help="1..--workers threads, rate limits off")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if args.scaling:
        items = args.items or 1000
        latency = 80 if args.latency_ms is None else args.latency_ms
        runs: list[Run] = []
        for workers in range(1, args.workers + 1):
            print(f"scaling: {items} issues, {workers} worker(s), latency {latency} ms, rate limits off", flush=True)
            runs.append(backfill(items, workers, latency_ms=latency, rate_limits=False, every_s=args.every))
            print(f"  {runs[-1].seconds:.1f} s, {runs[-1].lost} lost, {runs[-1].failures} failed", flush=True)
        print(f"\nscaling: {items} issues, latency {latency} ms, rate limits off")
        print(f"{'workers':>8}{'wall s':>9}{'items/s':>9}{'speed-up':>10}{'lost':>6}")
        for run in runs:
            print(
                f"{run.workers:>8}{run.seconds:>9.1f}{items / run.seconds:>9.1f}"
                f"{runs[0].seconds / run.seconds:>10.2f}{run.lost:>6}"
            )
        (RESULTS / "scaling.json").write_text(json.dumps([asdict(run) for run in runs], indent=2))
        return 0 if all(run.lost == 0 and run.failures == 0 for run in runs) else 1
    items = args.items or 10000
    latency = args.latency_ms or 0
    print(
        f"backfill: {items} issues, {args.workers} workers, latency {latency} ms, rate limits on; "
        f"Trello's budget alone needs ≥ {math.ceil(minimum_seconds(items, BUDGETS['trello']))} s",
        flush=True,
    )
    run = backfill(items, args.workers, latency_ms=latency, rate_limits=True, every_s=args.every)
    print_backfill(run)
    (RESULTS / f"backfill_{items}.json").write_text(json.dumps(asdict(run), indent=2))
    return 0 if run.lost == 0 and run.failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
