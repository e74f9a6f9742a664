"""Propagation latency: from a person's edit in one tool to the mirror showing it in both other tools.

``syncd run`` runs as a subprocess against the sandbox with 80 ms added to every API request, once taking webhooks
(polling at the default 30 s as the safety net) and once polling only (``--poll-interval``, default 30 s). After
its first pass has mirrored the organisation, people rename mirrored items, cycling Jira, Trello and Asana: for
webhooks one rename every 0.5 s; for polling one every interval/12, so the edits fall at every phase of the poll
cycle. For each change the time from the edit to the moment both other tools hold the new title is taken by
reading the emulators' state in-process every 10 ms (no API request). The daemon's own
``syncd_propagation_lag_seconds`` histogram from /metrics is shown beside it as a cross-check.

The physical limit for the same path: a rename is learned for free by webhook, then at least three round trips
must follow one another (read the changed item; read the other two tools' views, in parallel; write both
mirrors, in parallel), 3 x 80 ms. What syncd actually requests for one change is counted from the emulators'
request counters (a rename made alone, in each tool) and shown with it. Polling adds the wait for the next poll,
uniform over the interval. Prints a table and writes benchmarks/results/latency.json.

    .venv/bin/python benchmarks/bench_latency.py                       # 200 changes per mode, polling at 30 s
    .venv/bin/python benchmarks/bench_latency.py --poll-interval 5     # a quicker polling run
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import requests
from bench_write_cost import MEMBER, TOOLS, Refs, mirrored, short

from sandbox.org import Sandbox
from syncd.demo import daemon_environment, prepare_config, shipped, syncd_command

RESULTS = Path(__file__).resolve().parent / "results"
LATENCY_MS = 80
WEBHOOK_GAP_S = 0.5
CHANGES_PER_CYCLE = 12
"""Polling: edits per poll interval. Fewer than the mirrored items, so no item is renamed again before it arrived."""
TICK_S = 0.01
QUIET_S = 1.5
PEOPLE = {"jira": "ana@corp.example", "trello": "eli@corp.example", "asana": "gus@corp.example"}
MIN_ROUND_TRIPS = 3
"""Read the changed item; read both other views (in parallel); write both mirrors (in parallel)."""
LAG_METRIC = "syncd_propagation_lag_seconds"


# ----- the daemon -----------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Daemon:
    """``syncd run`` on the shipped config and mappings, pointed at the sandbox, its JSON log lines collected."""

    def __init__(self, sandbox: Sandbox, workdir: Path, *, poll_interval_s: float, webhooks: bool) -> None:
        config = workdir / "config"
        prepare_config(shipped("config"), config, sandbox)
        env = daemon_environment(sandbox, f"sqlite:///{workdir / 'syncd.db'}")
        env.pop("SYNCD_WEBHOOK_DEBOUNCE_S")  # the shipped default (0.5 s) is what is measured
        env["SYNCD_POLL_INTERVAL_S"] = str(poll_interval_s)
        if webhooks:
            port = _free_port()
            env.update({"SYNCD_LISTEN": f"127.0.0.1:{port}", "SYNCD_PUBLIC_URL": f"http://127.0.0.1:{port}"})
        else:
            env["SYNCD_LISTEN"] = "127.0.0.1:0"
        command = [*syncd_command(), "run", "--config", str(config), "--mappings", str(shipped("mappings"))]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.logs: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True)
        self._reader.start()
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"syncd run exited with {self.process.returncode} before listening: {self.logs[-5:]}")
        self.url = str(json.loads(line)["listen"])

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with contextlib.suppress(ValueError):
                self.logs.append(json.loads(line))

    def logged(self, event: str, **fields: object) -> list[dict[str, Any]]:
        """Log events named ``event`` whose fields match."""
        return [e for e in list(self.logs) if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())]

    def ready(self) -> bool:
        """Whether /readyz answers 200 (every endpoint's last full pass succeeded: the first one mirrored all)."""
        try:
            return requests.get(self.url + "/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def metrics(self) -> str:
        """The Prometheus text of /metrics."""
        return requests.get(self.url + "/metrics", timeout=10).text

    def stop(self) -> None:
        """SIGTERM, let it drain, kill if it does not."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def wait_until(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll ``condition`` every 50 ms until it is truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


def requests_served(sandbox: Sandbox) -> int:
    """API requests the three emulators served (admin routes are not counted)."""
    return sum(emulator.request_count() for emulator in sandbox.emulators)


def wait_quiet(sandbox: Sandbox, quiet_s: float, timeout_s: float) -> None:
    """Wait until no emulator served an API request for ``quiet_s``."""
    deadline = time.monotonic() + timeout_s
    count, since = requests_served(sandbox), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now, current = time.monotonic(), requests_served(sandbox)
        if current != count:
            count, since = current, now
        elif now - since >= quiet_s:
            return
    raise RuntimeError(f"the emulators were not quiet for {quiet_s:g} s within {timeout_s:g} s")


# ----- people's renames and their arrival -----------------------------------------------------------------------


def title(sandbox: Sandbox, tool: str, refs: Refs) -> str:
    """The item's title in one tool, read from the emulator's state under its lock (no API request)."""
    if tool == "jira":
        with sandbox.jira.lock:
            return str(sandbox.jira.state.issues[refs.jira].summary)
    if tool == "trello":
        with sandbox.trello.lock:
            return str(sandbox.trello.state.cards[refs.trello].name)
    with sandbox.asana.lock:
        return str(sandbox.asana.state.tasks[refs.asana].name)


def rename(sandbox: Sandbox, tool: str, refs: Refs, new_title: str) -> None:
    """A person renames the item in ``tool``."""
    if tool == "jira":
        sandbox.jira.act_as(PEOPLE[tool]).update(refs.jira, summary=new_title)
    elif tool == "trello":
        sandbox.trello.act_as(PEOPLE[tool]).update_card(refs.trello, name=new_title)
    else:
        sandbox.asana.act_as(PEOPLE[tool]).update_task(refs.asana, name=new_title)


class Change:
    """One rename and when each other tool was first seen holding it."""

    def __init__(self, number: int, tool: str, refs: Refs, new_title: str, at: float) -> None:
        self.number = number
        self.tool = tool
        self.refs = refs
        self.new_title = new_title
        self.at = at
        self.seen: dict[str, float] = {}

    def look(self, sandbox: Sandbox, now: float) -> bool:
        """Check the other tools; True once both hold the new title."""
        for target in TOOLS:
            if target != self.tool and target not in self.seen and title(sandbox, target, self.refs) == self.new_title:
                self.seen[target] = now
        return len(self.seen) == 2

    def latency(self) -> float:
        return max(self.seen.values()) - self.at


def play(sandbox: Sandbox, items: list[Refs], *, changes: int, gap_s: float, timeout_s: float) -> list[Change]:
    """Rename items one every ``gap_s``, cycling the tools; watch every 10 ms until each arrived in both others."""
    pending: list[Change] = []
    done: list[Change] = []
    free = list(items)
    started = time.monotonic()
    number = 0
    while number < changes or pending:
        now = time.monotonic()
        for change in list(pending):
            if change.look(sandbox, now):
                pending.remove(change)
                done.append(change)
                free.append(change.refs)
            elif now - change.at > timeout_s:
                raise RuntimeError(f"change {change.number} ({change.tool}) did not arrive within {timeout_s:g} s")
        if number < changes and now >= started + number * gap_s and free:
            tool = TOOLS[number % len(TOOLS)]
            refs = free.pop(0)
            new_title = f"{refs.title} #{number}"
            rename(sandbox, tool, refs, new_title)
            pending.append(Change(number, tool, refs, new_title, time.monotonic()))
            number += 1
        time.sleep(TICK_S)
    return sorted(done, key=lambda change: change.number)


def arrival(sandbox: Sandbox, change: Change) -> Callable[[], bool]:
    """A condition: the change has arrived in both other tools."""
    return lambda: change.look(sandbox, time.monotonic())


def path_requests(sandbox: Sandbox, daemon: Daemon, items: list[Refs]) -> dict[str, dict[str, int]]:
    """The API requests syncd makes for one lone rename in each tool, up to the moment both mirrors hold it."""
    counted: dict[str, dict[str, int]] = {}
    for tool, refs in zip(TOOLS, items, strict=False):
        for _attempt in range(3):
            wait_quiet(sandbox, QUIET_S, 60)
            polls = len(daemon.logged("pass", kind="full"))
            for emulator in sandbox.emulators:
                emulator.reset_counters()
            change = Change(-1, tool, refs, f"{refs.title} (alone)", time.monotonic())
            rename(sandbox, tool, refs, change.new_title)
            wait_until(arrival(sandbox, change), 120, f"a lone rename in {tool}")
            snapshot = [dict(emulator.counters()["routes"]) for emulator in sandbox.emulators]
            wait_quiet(sandbox, QUIET_S, 60)  # a poll that was running then has been logged by now
            served = {
                f"{name} {short(route)}": n
                for name, routes in zip(TOOLS, snapshot, strict=True)
                for route, n in routes.items()
            }
            if len(daemon.logged("pass", kind="full")) == polls:
                counted[tool] = served
                break  # no poll ran meanwhile: these are the rename's own requests
        rename(sandbox, tool, refs, refs.title)
    wait_quiet(sandbox, QUIET_S, 60)
    return counted


# ----- the daemon's own view ---------------------------------------------------------------------------------------


def lag_histogram(text: str) -> tuple[dict[float, float], float, float]:
    """Cumulative bucket counts, sum and count of the propagation-lag histogram in a /metrics text."""
    buckets: dict[float, float] = {}
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(f"{LAG_METRIC}_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if bound == "+Inf" else float(bound)] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{LAG_METRIC}_sum"):
            total = float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{LAG_METRIC}_count"):
            count = float(line.rsplit(" ", 1)[1])
    return buckets, total, count


def histogram_summary(before: str, after: str) -> dict[str, Any]:
    """What the daemon observed between two scrapes: mirrors written, mean lag, and bucket bounds of p50/p95/p99."""
    b0, s0, c0 = lag_histogram(before)
    b1, s1, c1 = lag_histogram(after)
    count = c1 - c0
    bounds = sorted(b1)
    quantiles: dict[str, float | None] = {}
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        quantiles[name] = next((b for b in bounds if b1[b] - b0.get(b, 0.0) >= q * count), None) if count else None
    return {"mirrors": int(count), "mean_s": (s1 - s0) / count if count else None, "le": quantiles}


def pass_summary(logs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per pass kind (full, hinted): how many ran, and their mean items, writes and duration."""
    summary: dict[str, dict[str, float]] = {}
    for kind in ("full", "hinted"):
        passes = [entry for entry in logs if entry.get("event") == "pass" and entry.get("kind") == kind]
        if passes:
            summary[kind] = {
                name: sum(float(entry.get(field) or 0) for entry in passes) / len(passes)
                for name, field in (("items", "items"), ("writes", "writes"), ("duration_s", "duration_s"))
            }
            summary[kind]["passes"] = len(passes)
    return summary


# ----- one mode --------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-quantile by the nearest-rank method."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, int(q * len(ranked) + 0.999999) - 1))]


def run_mode(*, webhooks: bool, poll_interval_s: float, changes: int) -> dict[str, Any]:
    """Start the sandbox and the daemon, settle, count one change's requests, play the renames, measure."""
    mode = "webhooks" if webhooks else "polling"
    with Sandbox(latency_ms=LATENCY_MS) as sandbox, tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        daemon = Daemon(sandbox, Path(tmp), poll_interval_s=poll_interval_s, webhooks=webhooks)
        try:
            wait_until(daemon.ready, 600, "the first pass to mirror the organisation (/readyz)")
            if webhooks:
                for department in MEMBER.values():
                    registered = functools.partial(daemon.logged, "webhook.registered", department=department)
                    wait_until(registered, 60, f"{department}'s webhook to be registered")
            wait_quiet(sandbox, QUIET_S, 120)
            items = mirrored(sandbox)
            print(f"{mode}: {len(items)} items mirrored in all three tools", file=sys.stderr)
            counted = path_requests(sandbox, daemon, items) if webhooks else {}
            for emulator in sandbox.emulators:
                emulator.reset_counters()
            scraped = daemon.metrics()
            logged = len(daemon.logs)
            gap_s = WEBHOOK_GAP_S if webhooks else poll_interval_s / CHANGES_PER_CYCLE
            timeout_s = 120 if webhooks else 3 * poll_interval_s + 120
            played = play(sandbox, items, changes=changes, gap_s=gap_s, timeout_s=timeout_s)
            histogram = histogram_summary(scraped, daemon.metrics())
            passes = pass_summary(daemon.logs[logged:])
            served = {tool: emulator.request_count() for tool, emulator in zip(TOOLS, sandbox.emulators, strict=True)}
            throttled = sum(int(emulator.counters()["statuses"].get("429", 0)) for emulator in sandbox.emulators)
        finally:
            daemon.stop()
    latencies = [change.latency() for change in played]
    per_origin = {tool: [change.latency() for change in played if change.tool == tool] for tool in TOOLS}
    return {
        "mode": mode,
        "poll_interval_s": poll_interval_s,
        "gap_s": gap_s,
        "changes": len(played),
        "latency_s": {name: percentile(latencies, q) for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))},
        "mean_s": sum(latencies) / len(latencies),
        "max_s": max(latencies),
        "per_origin_p50_s": {tool: percentile(values, 0.5) for tool, values in per_origin.items() if values},
        "daemon_histogram": histogram,
        "throttled_429": throttled,
        "passes": passes,
        "requests_per_change": {tool: n / len(played) for tool, n in served.items()},
        "one_change_requests": counted,
        "samples": [
            {
                "n": c.number,
                "tool": c.tool,
                "latency_s": round(c.latency(), 4),
                **{k: round(v - c.at, 4) for k, v in c.seen.items()},
            }
            for c in played
        ],
    }


def limits(result: dict[str, Any]) -> dict[str, float]:
    """The physical limit per percentile: round trips x latency, plus for polling the wait for the next poll."""
    floor = MIN_ROUND_TRIPS * LATENCY_MS / 1000
    if result["mode"] == "webhooks":
        return {"p50": floor, "p95": floor, "p99": floor}
    interval = float(result["poll_interval_s"])
    return {name: q * interval + floor for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200, help="renames per mode (default 200)")
    parser.add_argument("--poll-interval", type=float, default=30.0, help="polling mode's interval, s (default 30)")
    parser.add_argument("--mode", choices=("both", "webhooks", "polling"), default="both")
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    if args.mode in {"both", "webhooks"}:
        results.append(run_mode(webhooks=True, poll_interval_s=30.0, changes=args.changes))
    if args.mode in {"both", "polling"}:
        results.append(run_mode(webhooks=False, poll_interval_s=args.poll_interval, changes=args.changes))
    print(f"sandbox latency {LATENCY_MS} ms per API request; time from a person's rename to both other tools")
    print(
        f"{'mode':<10}{'interval':>9}{'gap':>6}{'changes':>8}{'p50 s':>8}{'p95 s':>8}{'p99 s':>8}{'max s':>8}"
        f"{'limit p50':>10}{'p50/limit':>10}{'p99/limit':>10}"
    )
    for result in results:
        latency, limit = result["latency_s"], limits(result)
        print(
            f"{result['mode']:<10}{result['poll_interval_s']:>8g}s{result['gap_s']:>5g}s{result['changes']:>8}"
            f"{latency['p50']:>8.2f}{latency['p95']:>8.2f}{latency['p99']:>8.2f}{result['max_s']:>8.2f}"
            f"{limit['p50']:>10.2f}{latency['p50'] / limit['p50']:>10.1f}{latency['p99'] / limit['p99']:>10.1f}"
        )
    print(
        "per origin tool, p50 s: "
        + "; ".join(
            f"{r['mode']}: " + ", ".join(f"{t} {v:.2f}" for t, v in r["per_origin_p50_s"].items()) for r in results
        )
    )
    print("daemon's syncd_propagation_lag_seconds over the same changes (per mirror written; bucket upper bounds):")
    for result in results:
        h = result["daemon_histogram"]
        mean = f"{h['mean_s']:.2f}" if h["mean_s"] is not None else "-"
        print(
            f"  {result['mode']:<10}{h['mirrors']:>5} mirrors, mean {mean} s, p50 <= {h['le']['p50']} s, "
            f"p95 <= {h['le']['p95']} s, p99 <= {h['le']['p99']} s; 429 answers: {result['throttled_429']}"
        )
    print("the daemon's passes while the renames were made (from its log), and API requests per rename:")
    for result in results:
        kinds = "; ".join(
            f"{kind} {int(p['passes'])} passes, mean {p['items']:.1f} items, {p['writes']:.1f} writes, "
            f"{p['duration_s']:.2f} s"
            for kind, p in result["passes"].items()
        )
        per_change = ", ".join(f"{tool} {n:.1f}" for tool, n in result["requests_per_change"].items())
        print(f"  {result['mode']:<10}{kinds}; requests per rename: {per_change}")
    for result in results:
        for tool, served in result["one_change_requests"].items():
            total = sum(served.values())
            print(
                f"one rename in {tool}, requests until both mirrors hold it: {total} "
                f"(x {LATENCY_MS} ms = {total * LATENCY_MS / 1000:.2f} s if sequential; minimum round trips "
                f"{MIN_ROUND_TRIPS} = {MIN_ROUND_TRIPS * LATENCY_MS / 1000:.2f} s)"
            )
            for route, n in sorted(served.items()):
                print(f"    {n} x {route}")
    RESULTS.mkdir(exist_ok=True)
    name = "latency.json" if args.mode == "both" else f"latency_{args.mode}.json"
    (RESULTS / name).write_text(
        json.dumps({"latency_ms": LATENCY_MS, "results": results, "limits": [limits(r) for r in results]}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
