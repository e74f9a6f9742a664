"""Idle cost: API requests per endpoint per poll while nothing changes, and per hour at the default 30 s interval.

``syncd run`` polls the sandbox organisation (shipped config and mappings, polling only, 1 s interval so that many
polls fit in a short run). Once the first pass has mirrored everything and the passes have settled (three full
passes in a row that read and wrote nothing), the emulators' counters are zeroed and the daemon runs for
``--seconds``; the requests each tool served, divided by the full passes the daemon logged meanwhile, are its
requests per poll. Target (issue 3 / 6): one request per endpoint per poll. The hourly figure is per-poll x 120
polls, plus the hourly reconciliation scans the Jira and Asana connectors make (``reconcile_every``, one hour),
which a 30 s run never reaches: those are counted by running one such scan through the connector. Prints a table
and writes benchmarks/results/idle.json.

    .venv/bin/python benchmarks/bench_idle.py [--seconds 30] [--poll-interval 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_latency import Daemon, wait_until
from bench_write_cost import TOOLS, connectors_for, short

from sandbox.org import Sandbox
from syncd.model import ChangeBatch

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_INTERVAL_S = 30.0
POLLS_PER_HOUR = 3600 / DEFAULT_INTERVAL_S
SETTLED_PASSES = 3


def settled(daemon: Daemon) -> bool:
    """Whether the last few full passes planned and wrote nothing (the first pass's mirrors have come back)."""
    passes = daemon.logged("pass", kind="full")
    recent = passes[-SETTLED_PASSES:]
    return len(passes) > SETTLED_PASSES and all(p.get("items") == 0 and p.get("writes") == 0 for p in recent)


def next_pass(daemon: Daemon, seen: int) -> int:
    """Wait until the daemon logs a full pass after the first ``seen``; the number logged then."""
    wait_until(lambda: len(daemon.logged("pass", kind="full")) > seen, 60, "the next full pass")
    return len(daemon.logged("pass", kind="full"))


def reconcile_scan(sandbox: Sandbox) -> dict[str, int]:
    """Requests of one hourly reconciliation scan per tool: a connector's first change-feed read is that full scan.

    Trello's feed has none (its action log records deletions). Counted with the connectors on a quiet sandbox.
    """
    connectors = connectors_for(sandbox)
    counts: dict[str, int] = {}
    for tool, member in (("jira", "engineering"), ("trello", "sales"), ("asana", "marketing")):
        emulator = dict(zip(TOOLS, sandbox.emulators, strict=True))[tool]
        connectors[member].changes(None)  # the first call also builds the SDK client (Jira asks serverInfo)
        emulator.reset_counters()
        batch: ChangeBatch = connectors[member].changes(None)
        counts[tool] = emulator.request_count() if tool != "trello" else 0
        assert tool == "trello" or batch.full_scan
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured idle time (default 30)")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="the daemon's poll interval, s (default 1)")
    args = parser.parse_args()
    with Sandbox() as sandbox, tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        daemon = Daemon(sandbox, Path(tmp), poll_interval_s=args.poll_interval, webhooks=False)
        try:
            wait_until(daemon.ready, 600, "the first pass to mirror the organisation (/readyz)")
            wait_until(lambda: settled(daemon), 120, f"{SETTLED_PASSES} full passes in a row that did nothing")
            # Idle, requests happen only inside passes: counting from just after one pass ends to just after the
            # last one in the window ends attributes every request to a logged pass.
            before = next_pass(daemon, len(daemon.logged("pass", kind="full")))
            for emulator in sandbox.emulators:
                emulator.reset_counters()
            time.sleep(args.seconds)
            next_pass(daemon, len(daemon.logged("pass", kind="full")))
            served = {
                tool: dict(emulator.counters()["routes"])
                for tool, emulator in zip(TOOLS, sandbox.emulators, strict=True)
            }
            passes = daemon.logged("pass", kind="full")[before:]
        finally:
            daemon.stop()
        scans = reconcile_scan(sandbox)
    polls = len(passes)
    busy = [p for p in passes if p.get("items") or p.get("writes")]
    rows: list[dict[str, Any]] = []
    for tool in TOOLS:
        total = sum(served[tool].values())
        per_poll = total / polls if polls else float("nan")
        # The hourly scan replaces that hour's incremental read of the feed; what it adds is its extra requests.
        extra = max(0, scans[tool] - 1) if scans[tool] else 0
        rows.append(
            {
                "tool": tool,
                "requests": total,
                "polls": polls,
                "per_poll": per_poll,
                "per_hour_at_30s": per_poll * POLLS_PER_HOUR + extra,
                "reconcile_scan_requests": scans[tool],
                "routes": {short(route): n for route, n in served[tool].items()},
            }
        )
    print(
        f"idle for {args.seconds:g} s at a {args.poll_interval:g} s poll interval: {polls} full passes "
        f"({len(busy)} planned or wrote something)"
    )
    print(f"{'tool':<8}{'requests':>9}{'polls':>7}{'per poll':>10}{'target':>8}{'per hour at 30 s':>18}  routes")
    ok = bool(polls) and not busy
    for row in rows:
        ok = ok and float(row["per_poll"]) <= 1.0
        routes = ", ".join(f"{n}x {route}" for route, n in sorted(row["routes"].items()))
        print(
            f"{row['tool']:<8}{row['requests']:>9}{row['polls']:>7}{row['per_poll']:>10.2f}{1:>8}"
            f"{row['per_hour_at_30s']:>18.0f}  {routes}"
        )
    print(
        "hourly reconciliation scan (included above): " + ", ".join(f"{tool} {scans[tool]} requests" for tool in TOOLS)
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "idle.json").write_text(
        json.dumps(
            {"seconds": args.seconds, "poll_interval_s": args.poll_interval, "passes": polls, "rows": rows}, indent=2
        )
    )
    print("every endpoint within one request per poll" if ok else "AN ENDPOINT EXCEEDED ONE REQUEST PER POLL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
