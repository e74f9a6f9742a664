"""Backfill throughput with 1, 2 and 3 replicas on PostgreSQL: three busy groups, one rate budget per credential.

Three groups split the work by label (``backfill-0`` .. ``backfill-2`` in every tool, so each group's mirrors stay in
its scope and the configuration accepts the groups as disjoint); each mirrors its Jira issues into Trello and
Asana. For N = 1, 2, 3: a fresh sandbox and a fresh PostgreSQL database, N ``syncd run`` replicas (real
subprocesses) start and share the groups; once every group is owned by its preferred owner (no hand-over to come),
a person labels the ``--items`` generated issues (one in three per group) and the clock starts; it stops when every
issue has its card and its task. The emulators enforce the real services' budgets; the connectors pace by their
default per-credential budgets, which the replicas share through the store (``syncd.store.budgets``).

Reported per N: items/s; the least time the binding tool's budget allows for the requests it served (the tighter
of the service's budget and the connector's own pacing, as in bench_backfill.py) and ``used = minimum / wall``;
the 429s each emulator answered; items lost (an issue without exactly one card and one task carrying its item's
marker). With one shared budget, more replicas should neither be much faster nor meet 429s: the tools' budgets,
not the replicas, bound a backfill. Prints a table and writes benchmarks/results/replicas.json.

    SYNCD_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/bench_replicas.py [--items 600] [--replicas 1 2 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_backfill import BUDGETS, CONNECTOR_BUDGETS, backfill_seed, minimum_seconds
from bench_failover import Replica, fresh_database
from bench_latency import wait_until

from sandbox.org import Sandbox
from sandbox.seed import Seed
from syncd.demo import daemon_environment, prepare_config, shipped
from syncd.store import Store
from syncd.uncertain import MARKER_URL

RESULTS = Path(__file__).resolve().parent / "results"
GROUPS = ("backfill-0", "backfill-1", "backfill-2")
MAPPING = """members:
  engineering: {{scope: {{labels: [{group}]}}}}
  sales: {{scope: {{labels: [{group}]}}}}
  marketing: {{scope: {{labels: [{group}]}}}}
create_in: [sales, marketing]
fields:
  title: {{rule: latest}}
"""


def seed(items: int) -> Seed:
    """The backfill benchmark's generated issues, with no label yet: nothing is in a group until people label it."""
    base = backfill_seed(items)
    project = base.jira.projects[0]
    issues = [issue.model_copy(update={"labels": []}) for issue in project.issues]
    return base.model_copy(
        update={"jira": base.jira.model_copy(update={"projects": [project.model_copy(update={"issues": issues})]})}
    )


def balanced(replicas: list[Replica]) -> bool:
    """Every group owned once, each by the owner the replicas' last view prefers, with all N replicas live."""
    answers = [replica.readyz() for replica in replicas]
    owned = {group: str(a["replica"]) for a in answers for group in a["groups_owned"]}
    if sorted(owned) != sorted(GROUPS):
        return False
    views = [e["owners"] for e in replicas[0].logged("replicas") if len(e["live"]) == len(replicas)]
    return bool(views) and views[-1] == owned


def lost(sandbox: Sandbox, url: str) -> int:
    """Issues without exactly one card and one task carrying their item's marker."""
    cards: dict[str, int] = {}
    tasks: dict[str, int] = {}
    with sandbox.trello.lock:
        for card in sandbox.trello.state.cards.values():
            for attachment in card.attachments:
                if attachment.url.startswith(MARKER_URL):
                    cards[attachment.url[len(MARKER_URL) :]] = cards.get(attachment.url[len(MARKER_URL) :], 0) + 1
    with sandbox.asana.lock:
        for link in sandbox.asana.state.attachments.values():
            if link.url.startswith(MARKER_URL):
                tasks[link.url[len(MARKER_URL) :]] = tasks.get(link.url[len(MARKER_URL) :], 0) + 1
    store = Store(url)
    try:
        with store.transaction() as tx:
            linked = {link.ref: link.sync_id for group in GROUPS for link in tx.endpoint_links(f"{group}/engineering")}
    finally:
        store.close()
    missing = 0
    for key in sandbox.jira.state.issues:
        sync_id = linked.get(key, "")
        missing += cards.get(sync_id, 0) != 1 or tasks.get(sync_id, 0) != 1
    return missing


def backfill(count: int, items: int, admin_url: str, workdir: Path) -> dict[str, Any]:
    """One backfill of ``items`` issues over the three groups by ``count`` replicas; its figures."""
    with Sandbox(seed(items)) as sandbox, fresh_database(admin_url) as url:
        config, mappings = workdir / f"config-{count}", workdir / f"mappings-{count}"
        prepare_config(shipped("config"), config, sandbox)
        mappings.mkdir()
        for group in GROUPS:
            (mappings / f"{group}.yaml").write_text(MAPPING.format(group=group))
        env = daemon_environment(sandbox, url)
        env.update({"SYNCD_LISTEN": "127.0.0.1:0", "SYNCD_POLL_INTERVAL_S": "2", "SYNCD_LEASE_TTL_S": "10"})
        replicas: list[Replica] = []
        try:
            for _ in range(count):
                replicas.append(Replica(env, config, mappings, None))
            wait_until(lambda: balanced(replicas), 120, "every group with its preferred owner")
            for emulator in sandbox.emulators:
                emulator.reset_counters()
            person = sandbox.jira.act_as("ana@corp.example")
            started = time.monotonic()
            for index, key in enumerate(sorted(sandbox.jira.state.issues, key=lambda k: int(k.split("-")[1]))):
                person.update(key, labels=[GROUPS[index % len(GROUPS)]])

            def mirrored() -> bool:
                with sandbox.trello.lock, sandbox.asana.lock:
                    return len(sandbox.trello.state.cards) >= items and len(sandbox.asana.state.tasks) >= items

            wait_until(mirrored, 3600, "every issue's card and task")
            seconds = time.monotonic() - started
            time.sleep(3)  # the passes commit their last items
            owners = {group: str(r.readyz()["replica"]) for r in replicas for group in r.readyz()["groups_owned"]}
        finally:
            for replica in replicas:
                replica.stop()
        counters = {emulator.name: emulator.counters() for emulator in sandbox.emulators}
        served = {tool: int(c["total"]) - int(c["statuses"].get("429", 0)) for tool, c in counters.items()}
        # The tighter of the service's budget and the connector's own pacing (Jira paces at 100 / 10 s).
        minimum = {
            tool: max(
                minimum_seconds(served[tool], BUDGETS[tool]), minimum_seconds(served[tool], CONNECTOR_BUDGETS[tool])
            )
            for tool in BUDGETS
        }
        binding = max(minimum, key=lambda tool: minimum[tool])
        return {
            "replicas": count,
            "items": items,
            "seconds": seconds,
            "items_per_s": items / seconds,
            "binding": binding,
            "used": minimum[binding] / seconds,
            "requests": {tool: int(c["total"]) for tool, c in counters.items()},
            "limited": {tool: int(c["statuses"].get("429", 0)) for tool, c in counters.items()},
            "lost": lost(sandbox, url),
            "owners": owners,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=600, help="generated Jira issues, a third per group (600)")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3], help="replica counts (1 2 3)")
    parser.add_argument("--postgres", default=os.environ.get("SYNCD_TEST_POSTGRES_URL"), help="an admin URL")
    args = parser.parse_args()
    if not args.postgres:
        print("replicas: skipped, it needs PostgreSQL: pass --postgres URL or set SYNCD_TEST_POSTGRES_URL")
        return 0  # `dev.py bench` runs every script: a machine without PostgreSQL skips this one
    runs = []
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        for count in args.replicas:
            run = backfill(count, args.items, args.postgres, Path(tmp))
            print(f"{count} replica(s): {run['seconds']:.1f} s, owners {run['owners']}", flush=True)
            runs.append(run)
    print(f"\nbackfill of {args.items} issues over 3 groups, PostgreSQL, rate limits on, one budget per credential")
    head = f"{'replicas':>8}{'wall s':>9}{'items/s':>9}   {'binding':<8}{'used':>7}   "
    print(head + f"{'429s (jira/trello/asana)':<26}{'lost':>5}")
    for run in runs:
        limited = "/".join(str(run["limited"].get(tool, 0)) for tool in ("jira", "trello", "asana"))
        print(
            f"{run['replicas']:>8}{run['seconds']:>9.1f}{run['items_per_s']:>9.2f}   {run['binding']:<8}"
            f"{run['used']:>6.1%}   {limited:<26}{run['lost']:>5}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replicas.json").write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
