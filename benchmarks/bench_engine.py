"""syncd's own cost, with the tools out of the way (issue 6, benchmark 5).

1. A dry-run pass over N items already linked in all three tools (emulators with zero latency, budgets off): every
   link's version is cleared and every cursor reset, so the pass reads the three tools in full and decodes, merges
   and looks up all N items in the store, writing nothing. Reported: items planned per second for the whole pass
   with the rich-text converters' memory cleared first (a fresh ``syncd plan``), and for passes right after (a
   running daemon, which has converted those texts before); each the median of ``REPEAT`` passes, with their
   range (a shared machine's speed moves between passes). Twice: first with each tool's emulator serving from a
   process of its own (``spawn``: syncd's cost alone, as against three real services answering independently; the
   figure the target is about), then from this process, where they compete with syncd for the interpreter: the two
   in the same run give their ratio (``x in-proc``) on a loaded machine too. For each, the pass without the time the
   three full listings take when timed on their own. With the emulators apart, their CPU time during each pass is
   printed too (``tools CPU s``, from ``/proc/<pid>/stat``): syncd's CPU time is its own cost, and on a machine
   with few cores, where syncd and the emulators share them, the two together divided by the cores is a floor
   under the pass's wall time that no overlap of waiting and work can go below.
2. The pure planner: :func:`syncd.merge.plan` over synthetic items (a quarter each unchanged, edited at one member,
   edited at two members (a conflict) and new), built from a real base the dry run left in the store.
3. Memory: a store with 100,000 items, each linked at the three members with its base values (written through the
   store's Tx methods, in transactions of 5,000 items); then fresh subprocesses that report their peak RSS
   (``resource.getrusage(RUSAGE_SELF).ru_maxrss``): the bare interpreter with syncd imported and the store opened,
   ``syncd status`` on that store, and a process doing the store's share of a full pass over every item, the way
   the engine does it: each member's links streamed for the deletion check, and the links and bases of the
   records looked up a chunk at a time (``CHUNK``); the records read from the tools are not part of it (a sandbox
   of 100,000 items per tool is out of reach), their refs are.

Each figure is printed with its ratio to the figure issue 15 started from (``BEFORE``) and its target there.
A machine shared with other work slows every figure: compare the ratios measured within one run.

    .venv/bin/python benchmarks/bench_engine.py [--items 2000] [--plans 100000] [--linked 100000]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench_backfill import ROOT, TOOLS, backfill_seed
from ulid import ULID

from connectors.factory import CAPABILITIES
from connectors.sandbox import Address, address_of, sandbox_connectors
from sandbox.org import Sandbox
from syncd import gc_policy, richtext
from syncd.connector import Connector
from syncd.engine import Pass, endpoint_key
from syncd.mapping import compile_group
from syncd.merge import Item, plan
from syncd.plan import View
from syncd.store import Store

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 5000
REPEAT = 3
"""Dry-run passes of each kind (texts converted before or not) timed in a run; the median is the figure."""
BEFORE = {"dry_run": 234.0, "pure": 3971.0, "hold_mb": 307.0}
"""What this benchmark measured on this machine when issue 15 was filed (items/s, items/s, peak MB)."""
TARGET = {"dry_run": 2000.0, "pure": 20000.0, "hold_mb": 200.0}


def serve(items: int, pipe: Connection) -> None:
    """The emulators of the backfill seed, budgets off, in a process of their own: send the address, serve, stop.

    Runs in a child started with ``spawn`` (a fresh interpreter), so the emulators never compete with syncd for
    the benchmark's interpreter; it stops when the parent sends anything or goes away.
    """
    with Sandbox(backfill_seed(items)) as sandbox:
        for emulator in sandbox.emulators:
            emulator.rate_limits_enabled = False
        gc_policy.tune()  # they stand in for services that cost syncd nothing: their collector kept out of the way
        pipe.send(address_of(sandbox))
        with contextlib.suppress(EOFError):
            pipe.recv()


def cpu_seconds(pids: list[int]) -> float:
    """The CPU time (user and system) the processes ``pids`` have used so far, from ``/proc/<pid>/stat``."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (proc(5))
    return total


@contextlib.contextmanager
def emulators(items: int, *, separate: bool) -> Iterator[tuple[Address, list[int]]]:
    """The address of the backfill seed's emulators (budgets off): in this process, or one process per tool.

    Separate, each tool is served by a child of its own (each child starts the whole seeded sandbox and serves one
    tool of it to syncd), as three services answer independently: one process serving all three would make each
    tool's listing wait for the others' rendering under that process's interpreter lock. Also yielded: the
    children's process ids (none in this process), whose CPU time is the tools' share of a pass.
    """
    if not separate:
        with Sandbox(backfill_seed(items)) as sandbox:
            for emulator in sandbox.emulators:
                emulator.rate_limits_enabled = False
            yield address_of(sandbox), []
        return
    context = multiprocessing.get_context("spawn")
    children = []
    for tool in ("jira", "trello", "asana"):
        mine, theirs = context.Pipe()
        child = context.Process(target=serve, args=(items, theirs), name=f"bench-{tool}", daemon=True)
        child.start()
        children.append((mine, child))
    try:
        found: list[Address] = []
        for mine, _ in children:
            if not mine.poll(300):
                raise SystemExit("an emulators' process did not start within 300 s")
            found.append(mine.recv())
        jira, trello, asana = found
        pids = [child.pid for _, child in children if child.pid is not None]
        yield (
            dataclasses.replace(
                jira,
                trello_url=trello.trello_url,
                trello_key=trello.trello_key,
                trello_token=trello.trello_token,
                trello_board=trello.trello_board,
                asana_url=asana.asana_url,
                asana_token=asana.asana_token,
                asana_project=asana.asana_project,
            ),
            pids,
        )
    finally:
        for mine, child in children:
            mine.send("stop")
            child.join(30)
            if child.is_alive():
                child.terminate()


def dry_run(items: int, workers: int, *, separate: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Backfill ``items`` issues with the budgets off, then time a dry-run pass planning all of them again.

    ``separate``: the emulators serve from a process of their own (syncd's cost alone), else from this one.
    """
    group = compile_group(ROOT / "mappings" / "launch-requests.yaml", TOOLS, CAPABILITIES)
    with tempfile.TemporaryDirectory() as folder, emulators(items, separate=separate) as (where, tools):
        store = Store(f"sqlite:///{Path(folder) / 'syncd.db'}")
        store.migrate()
        main_set = sandbox_connectors(where, paced=False)
        per_thread: Callable[[], dict[str, Connector]] = lambda: sandbox_connectors(where, paced=False)  # noqa: E731
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            started = time.perf_counter()
            report = Pass(group, main_set, store, pool=pool, connectors_for_thread=per_thread).run()
            backfill_s = time.perf_counter() - started
        if not report.ok:
            raise SystemExit(f"the backfill before the dry run failed: {list(report.failures.items())[:3]}")
        with store.transaction() as tx:
            for member in group.codecs:
                key = endpoint_key(group.name, member)
                for link in tx.endpoint_links(key):
                    tx.set_version(link.sync_id, key, "")
                tx.set_cursor(key, {})
            template = tx.base(tx.endpoint_links(endpoint_key(group.name, "engineering"))[0].sync_id)
        assert template is not None
        read_s = float("inf")
        for _ in range(2):  # the better of two: the first also fills the connectors' caches (lists, sections)
            started = time.perf_counter()
            for connector in main_set.values():
                connector.changes(None)
            read_s = min(read_s, time.perf_counter() - started)
        gc_policy.tune()  # as `syncd run` and `syncd plan` do when start-up is done (a no-op the second time)

        def timed(*, cold: bool) -> tuple[float, float, float, int]:
            """One dry-run pass: wall seconds, syncd's CPU seconds, the tools' CPU seconds, items planned."""
            if cold:
                richtext.clear_memo()  # as a fresh `syncd plan` process converts every text
            started, cpu, served = time.perf_counter(), time.process_time(), cpu_seconds(tools)
            report = Pass(group, main_set, store).run(dry_run=True)
            seconds, used = time.perf_counter() - started, time.process_time() - cpu
            return seconds, used, cpu_seconds(tools) - served, len(report.plans)

        # Each the median of REPEAT passes (by wall time), its range beside it: a shared machine's speed moves.
        colds = sorted(timed(cold=True) for _ in range(REPEAT))
        warms = sorted(timed(cold=False) for _ in range(REPEAT))  # a running daemon: these texts converted before
        store.close()
    (pass_s, pass_cpu, pass_tools, planned), (warm_s, warm_cpu, warm_tools, _) = colds[REPEAT // 2], warms[REPEAT // 2]
    assert {run[3] for run in colds + warms} == {planned}
    row = {
        "items": items,
        "separate": separate,
        "backfill_s": round(backfill_s, 2),
        "planned": planned,
        "pass_s": round(pass_s, 2),
        "read_s": round(read_s, 2),
        "per_s": round(planned / pass_s, 1),
        "per_s_range": [round(planned / colds[-1][0], 1), round(planned / colds[0][0], 1)],
        "per_s_without_reads": round(planned / max(pass_s - read_s, 1e-9), 1),
        "warm_s": round(warm_s, 2),
        "warm_per_s": round(planned / warm_s, 1),
        "warm_per_s_range": [round(planned / warms[-1][0], 1), round(planned / warms[0][0], 1)],
        "pass_cpu_s": round(pass_cpu, 2),
        "warm_cpu_s": round(warm_cpu, 2),
        "pass_tools_cpu_s": round(pass_tools, 2) if separate else None,
        "warm_tools_cpu_s": round(warm_tools, 2) if separate else None,
    }
    return row, template


def pure_plans(count: int, template: dict[str, Any]) -> dict[str, Any]:
    """Time :func:`syncd.merge.plan` over ``count`` synthetic items of four kinds (see the module docstring)."""
    group = compile_group(ROOT / "mappings" / "launch-requests.yaml", TOOLS, CAPABILITIES)
    values = {name: value for name, value in template.items() if not name.startswith("@")}
    members = tuple(group.codecs)
    moment = datetime(2026, 12, 1, tzinfo=UTC)
    synthetic: list[Item] = []
    for i in range(count):
        kind = i % 4
        views: dict[str, View] = {}
        for index, member in enumerate(members):
            seen = dict(values)
            if kind == 1 and index == 1:
                seen["title"] = f"Renamed {i}"
            if kind == 2 and index > 0:
                seen["title"] = f"Renamed {i} at {member}"
                seen["status"] = "doing" if index == 1 else "done"
            if kind == 3 and index > 0:
                continue  # a new item, seen only where it was born
            views[member] = View(member, f"{member}-{i}", seen, moment + timedelta(seconds=index))
        synthetic.append(Item(str(ULID()), None if kind == 3 else template, views))
    started = time.perf_counter()
    steps = sum(len(plan(group.policy, item).steps) for item in synthetic)
    seconds = time.perf_counter() - started
    return {"items": count, "seconds": round(seconds, 3), "per_s": round(count / seconds, 1), "steps": steps}


def build_store(url: str, count: int, template: dict[str, Any]) -> float:
    """Write ``count`` items, three links each and their base values through the Tx methods; seconds taken."""
    group = compile_group(ROOT / "mappings" / "launch-requests.yaml", TOOLS, CAPABILITIES)
    store = Store(url)
    store.migrate()
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        with store.transaction() as tx:
            for i in range(first, min(count, first + BATCH)):
                sync_id = str(ULID())
                tx.new_item(sync_id, group.name)
                for member in group.codecs:
                    tx.link(sync_id, endpoint_key(group.name, member), f"{member}-{i}", "2026-12-01T00:00:00.000Z")
                tx.set_base(sync_id, {**template, "title": f"Linked item {i}"})
    store.close()
    return time.perf_counter() - started


CHILD = """
import contextlib, json, os, re, resource, sys
mode, url, root = sys.argv[1:4]
held = 0
if mode == "status":
    from syncd.cli import app
    os.environ["SYNCD_STORE"] = url
    with contextlib.suppress(SystemExit):  # status exits 1 when something waits for a person
        app(["status", "--format", "json", "--config", root + "/config"], standalone_mode=False)
elif mode == "hold":
    from syncd import gc_policy
    from syncd.store import CHUNK, Store
    store = Store(url)
    gc_policy.tune()  # as the engine's process does before its first pass
    with store.transaction() as tx:
        for member in ("engineering", "sales", "marketing"):
            key = "launch-requests/" + member
            refs = [link.ref for link in tx.each_endpoint_link(key)]  # what the tool's listing names, every ref
            for start in range(0, len(refs), CHUNK):  # the pass's records, a chunk at a time: links, then bases
                found = tx.find_links(key, refs[start : start + CHUNK])
                held += len(found) + len(tx.bases(link.sync_id for link in found.values()))
            if tx.count_endpoint_links(key) != len(set(refs)):  # the deletion check streams only if one is missing
                listed = set(refs)
                missing = [link for link in tx.each_endpoint_link(key) if link.ref not in listed]
else:
    from syncd.store import Store
    Store(url).close()
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open("/proc/self/status") as status:  # VmHWM: the same peak as the kernel keeps it, to cross-check
    hwm_kb = int(re.search(r"VmHWM:\\s+(\\d+)", status.read()).group(1))
print(json.dumps({"mode": mode, "rss_mb": round(rss_kb / 1024, 1), "hwm_mb": round(hwm_kb / 1024, 1), "objects": held}))
"""
"""The measured subprocess: only what its mode needs is imported, so its peak RSS is that mode's own.

It is started through ``/bin/sh``, never straight from this process: on Linux a child exec'd directly from a big
parent reports the parent's peak in ``ru_maxrss`` (the high-water mark survives vfork + exec); the shell's own
fork gives the child a fresh one.
"""


def measure_rss(url: str) -> list[dict[str, Any]]:
    """Run each measured mode in a fresh interpreter and collect what it printed (its last line)."""
    rows: list[dict[str, Any]] = []
    for mode in ("baseline", "status", "hold"):
        started = time.perf_counter()
        done = subprocess.run(
            ["/bin/sh", "-c", '"$@"; exit $?', "sh", sys.executable, "-c", CHILD, mode, url, str(ROOT)],
            capture_output=True,
            text=True,
            check=True,
        )
        row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000, help="linked items the dry-run pass plans")
    parser.add_argument("--workers", type=int, default=4, help="threads of the backfill that links them")
    parser.add_argument("--plans", type=int, default=100_000, help="synthetic items for the pure planner")
    parser.add_argument("--linked", type=int, default=100_000, help="items in the store of the memory test")
    args = parser.parse_args()
    result: dict[str, Any] = {}
    print(f"dry run: backfilling {args.items} items (budgets off, no latency), then planning them again", flush=True)
    result["dry_run"], template = dry_run(args.items, args.workers, separate=True)
    print("the same with the emulators in this process (as before)", flush=True)
    result["dry_run_in_process"], _ = dry_run(args.items, args.workers, separate=False)
    print(f"pure planner: {args.plans} synthetic items", flush=True)
    result["pure"] = pure_plans(args.plans, template)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'linked.db'}"
        print(f"memory: writing {args.linked} linked items to a store", flush=True)
        build_s = build_store(url, args.linked, template)
        size_mb = (Path(folder) / "linked.db").stat().st_size / 2**20
        result["store"] = {"items": args.linked, "build_s": round(build_s, 1), "size_mb": round(size_mb, 1)}
        result["rss"] = measure_rss(url)

    dry, pure, store = result["dry_run"], result["pure"], result["store"]
    print(
        f"\n{'what':<44}{'items':>9}{'seconds':>9}{'items/s':>11}{'x before':>10}{'target':>8}"
        f"{'x in-proc':>11}{'CPU s':>8}{'per CPU s':>11}{'tools CPU s':>13}{f'{REPEAT} passes':>16}"
    )
    rows = (
        ("dry-run pass, each tool served by a process", "separate", "pass"),
        ("  again, texts converted before (daemon)", "separate", "warm"),
        ("dry-run pass, emulators in this process", "in_process", "pass"),
        ("  again, texts converted before (daemon)", "in_process", "warm"),
    )
    runs = {"separate": dry, "in_process": result["dry_run_in_process"]}
    for label, where, kind in rows:
        run = runs[where]
        rate = run["per_s" if kind == "pass" else "warm_per_s"]
        other = runs["in_process"]["per_s" if kind == "pass" else "warm_per_s"]
        ratio = f"{rate / other:>11.2f}" if where == "separate" else f"{'':>11}"  # to this run's in-process figure
        cpu, tools = run[f"{kind}_cpu_s"], run[f"{kind}_tools_cpu_s"]
        low, high = run["per_s_range" if kind == "pass" else "warm_per_s_range"]
        print(
            f"{label:<44}{run['planned']:>9}{run[f'{kind}_s']:>9}{rate:>11}{rate / BEFORE['dry_run']:>10.1f}"
            f"{TARGET['dry_run']:>8.0f}{ratio}{cpu:>8}{run['planned'] / max(cpu, 1e-9):>11.1f}"
            f"{'' if tools is None else tools:>13}{f'{low:.0f} to {high:.0f}':>16}"
        )
    cores = os.cpu_count() or 1
    print(
        f"{'  CPU of syncd and the tools, over ' + str(cores) + ' cores':<44}{dry['planned']:>9}"
        f"{(dry['pass_cpu_s'] + dry['pass_tools_cpu_s']) / cores:>9.2f}"
        f"{dry['planned'] * cores / (dry['pass_cpu_s'] + dry['pass_tools_cpu_s']):>11.1f}"
        "   (the wall time no overlap can beat here, cold)"
    )
    for where, run in runs.items():
        print(
            f"{'  without the full listings (' + where.replace('_', ' ') + ')':<44}{run['planned']:>9}"
            f"{run['pass_s'] - run['read_s']:>9.2f}{run['per_s_without_reads']:>11}"
            f"   (the listings alone: {run['read_s']} s)"
        )
    print(
        f"{'merge.plan alone (synthetic items)':<44}{pure['items']:>9}{pure['seconds']:>9}{pure['per_s']:>11}"
        f"{pure['per_s'] / BEFORE['pure']:>10.1f}{TARGET['pure']:>8.0f}"
    )
    print(f"\nstore of {store['items']} linked items: {store['size_mb']} MB, written in {store['build_s']} s")
    print(f"{'fresh process':<44}{'ru_maxrss MB':>13}{'VmHWM MB':>10}{'seconds':>9}{'x before':>10}{'target':>8}")
    labels = {
        "baseline": "syncd imported, store opened",
        "status": "syncd status",
        "hold": "a full pass's store share, as the engine",
    }
    for row in result["rss"]:
        line = f"{labels[row['mode']]:<44}{row['rss_mb']:>13}{row['hwm_mb']:>10}{row['seconds']:>9}"
        if row["mode"] == "hold":
            line += f"{row['rss_mb'] / BEFORE['hold_mb']:>10.2f}{TARGET['hold_mb']:>8.0f}"
        print(line)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
