"""What the Jira deletion check costs: requests and bytes of one key-only listing, per poll and per hour.

Jira's search never shows a deleted issue, so between its hourly full scans (``reconcile_every``) the Jira connector
lists the project's keys every ``deletion_check`` (default 5 minutes) and the engine takes a linked key missing from
the listing as deleted. For projects of 100, 1,000 and 10,000 issues (generated as for the backfill benchmark:
summaries, descriptions, statuses, assignees, labels), on Jira Cloud (``/search/jql``, 5,000 keys a page) and
Server (``/search``, 1,000 a page), the real connector on python-jira polls the Jira emulator:

- an idle poll when the check is not due (the feed alone),
- the same poll when it is due (the cursor's last listing aged by one interval): the difference is the check,
- a poll when the hourly full scan is due (every issue read with its fields, 100 a page): the comparison.

Requests are the emulator's own counts (the service's view); bytes are the response bodies python-jira's session
received (observed through a requests response hook, nothing altered; headers excluded, no compression: the
emulator sends none, Jira Cloud would gzip both kinds of answer). Per hour at the defaults (30 s polls, a check every
5 minutes, a full scan every hour): 11 checks, since the twelfth falls on the full scan, which lists every key too.
Prints a table and writes benchmarks/results/deletion_check.json.

    .venv/bin/python benchmarks/bench_deletion_check.py            # --sizes 100 1000 10000; about a minute
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from bench_backfill import backfill_seed

from connectors.jira import JiraConnector
from connectors.jira.connector import DELETION_CHECK, KEYS_PAGE_CLOUD, KEYS_PAGE_SERVER, PAGE_SIZE
from connectors.pacing import TokenBucket
from sandbox.jira import JiraEmulator
from sandbox.seed import SERVICE_ACCOUNT, token_for
from syncd.model import ChangeBatch, Cursor

RESULTS = Path(__file__).resolve().parent / "results"
POLL_INTERVAL = timedelta(seconds=30)  # the instance's default poll interval (syncd.yaml)
RECONCILE_EVERY = timedelta(hours=1)  # the Jira connector's full-scan period
POLLS_PER_HOUR = RECONCILE_EVERY / POLL_INTERVAL
CHECKS_PER_HOUR = math.ceil(RECONCILE_EVERY / DELETION_CHECK) - 1  # the last one is the full scan itself


@dataclass
class Row:
    """One project size on one deployment."""

    deployment: str
    issues: int
    idle_requests: int
    idle_bytes: int
    idle_gzip: int
    check_requests: int
    check_bytes: int
    check_gzip: int
    check_seconds: float
    listed: int
    scan_requests: int
    scan_bytes: int
    scan_gzip: int
    scan_seconds: float

    @property
    def per_hour_requests(self) -> int:
        return self.check_requests * CHECKS_PER_HOUR

    @property
    def per_hour_bytes(self) -> int:
        return self.check_bytes * CHECKS_PER_HOUR

    def hourly(self, scans: int, checks: int) -> tuple[int, int, int]:
        """Requests, bytes and gzipped bytes of an idle hour of polls with ``scans`` full scans, ``checks`` checks."""
        polls = int(POLLS_PER_HOUR) - scans  # a full scan replaces its poll's feed read; a check comes on top
        return (
            polls * self.idle_requests + scans * self.scan_requests + checks * self.check_requests,
            polls * self.idle_bytes + scans * self.scan_bytes + checks * self.check_bytes,
            polls * self.idle_gzip + scans * self.scan_gzip + checks * self.check_gzip,
        )


class Received:
    """Bytes of the response bodies a requests session received (a response hook: observes, changes nothing).

    ``gzipped`` is what the same bodies weigh gzip-compressed (level 6), as Jira Cloud sends them to a client that
    accepts it (requests does); the emulator sends them uncompressed.
    """

    def __init__(self, session: requests.Session) -> None:
        self.bytes = 0
        self.gzipped = 0
        session.hooks["response"].append(self._count)

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - requests' hook
        self.bytes += len(response.content)
        self.gzipped += len(gzip.compress(response.content, compresslevel=6))


@contextmanager
def jira(issues: int, deployment: str) -> Iterator[JiraEmulator]:
    seed = backfill_seed(issues)
    seed = seed.model_copy(update={"jira": seed.jira.model_copy(update={"deployment": deployment})})
    emulator = JiraEmulator(seed)
    emulator.rate_limits_enabled = False
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def aged(cursor: Cursor, name: str, by: timedelta) -> Cursor:
    """The cursor with its ``name`` time ``by`` earlier: the next poll finds that listing due."""
    moved = dict(cursor)
    moved[name] = (datetime.fromisoformat(cursor[name]) - by).isoformat()
    return moved


def measure(issues: int, deployment: str) -> Row:
    with jira(issues, deployment) as emulator:
        connector = JiraConnector(
            base_url=emulator.url,
            user=SERVICE_ACCOUNT,
            token=token_for("jira", SERVICE_ACCOUNT),
            project_key="ENG",
            bucket=TokenBucket(rate=1e6, capacity=1e6),  # pacing is not the subject: never wait
        )
        received = Received(connector._client()._session)  # the SDK's own session, as every request uses it
        cursor = connector.changes(None).cursor  # the first full scan
        # Every generated issue was updated at the same instant, which the feed's overlap would re-read at each
        # poll: one person's edit three minutes later moves the feed past it, as a live project's feed is.
        emulator.clock.advance(180)
        emulator.act_as("ana@corp.example").update("ENG-1", summary="Edited after the first scan")
        for _ in range(3):
            cursor = json.loads(json.dumps(connector.changes(cursor).cursor))

        def poll(at: Cursor) -> tuple[ChangeBatch, int, int, int, float]:
            emulator.reset_counters()
            before, zipped = received.bytes, received.gzipped
            started = time.perf_counter()
            batch = connector.changes(at)
            elapsed = time.perf_counter() - started
            return batch, emulator.request_count(), received.bytes - before, received.gzipped - zipped, elapsed

        idle, idle_requests, idle_bytes, idle_gzip, idle_s = poll(cursor)
        assert idle.present is None
        assert not idle.full_scan
        due, due_requests, due_bytes, due_gzip, due_s = poll(aged(cursor, "checked_at", DELETION_CHECK))
        assert due.present is not None
        assert len(due.present) == issues
        assert not due.full_scan
        scan, scan_requests, scan_bytes, scan_gzip, scan_s = poll(aged(cursor, "scanned_at", RECONCILE_EVERY))
        assert scan.full_scan
        assert len(scan.records) == issues
        return Row(
            deployment=deployment,
            issues=issues,
            idle_requests=idle_requests,
            idle_bytes=idle_bytes,
            idle_gzip=idle_gzip,
            check_requests=due_requests - idle_requests,
            check_bytes=due_bytes - idle_bytes,
            check_gzip=due_gzip - idle_gzip,
            check_seconds=round(max(0.0, due_s - idle_s), 3),
            listed=len(due.present),
            scan_requests=scan_requests,
            scan_bytes=scan_bytes,
            scan_gzip=scan_gzip,
            scan_seconds=round(scan_s, 3),
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000], help="issues per project")
    args = parser.parse_args()
    rows = [measure(size, deployment) for deployment in ("Cloud", "Server") for size in args.sizes]
    print(
        f"deletion check every {DELETION_CHECK.total_seconds() / 60:g} min ({CHECKS_PER_HOUR} per hour), "
        f"polls every {POLL_INTERVAL.total_seconds():g} s ({POLLS_PER_HOUR:g} per hour), full scan every hour; "
        f"key pages: Cloud {KEYS_PAGE_CLOUD}, Server {KEYS_PAGE_SERVER}; full-scan pages {PAGE_SIZE}; "
        "bytes: response bodies as sent (gzip: compressed)"
    )
    print(
        f"{'deploy':<7}{'issues':>7} | {'idle poll':>8} | {'one check':>33} | {'check per hour':>11} | "
        f"{'one full scan':>34} | {'check/scan':>11}"
    )
    print(
        f"{'':<7}{'':>7} | {'req':>3}{'bytes':>6} | {'req':>3}{'bytes':>11}{'gzip':>10}{'s':>7}{'B/issue':>8} | "
        f"{'req':>4}{'MB':>7} | {'req':>4}{'bytes':>12}{'gzip':>10}{'s':>7}{'B/issue':>8} | {'req':>5}{'bytes':>6}"
    )
    for row in rows:
        print(
            f"{row.deployment:<7}{row.issues:>7} | {row.idle_requests:>3}{row.idle_bytes:>6} | "
            f"{row.check_requests:>3}{row.check_bytes:>11,}{row.check_gzip:>10,}{row.check_seconds:>7.2f}"
            f"{row.check_bytes / row.issues:>8.0f} | "
            f"{row.per_hour_requests:>4}{row.per_hour_bytes / 1e6:>7.2f} | "
            f"{row.scan_requests:>4}{row.scan_bytes:>12,}{row.scan_gzip:>10,}{row.scan_seconds:>7.2f}"
            f"{row.scan_bytes / row.issues:>8.0f} | "
            f"{row.check_requests / row.scan_requests:>5.2f}{row.check_bytes / row.scan_bytes:>6.3f}"
        )
    print(
        "\nan idle hour at the defaults, requests / MB as sent / MB gzipped: today's hourly detection, with the "
        "check, and the same detection time from a full scan every 5 minutes instead"
    )
    print(
        f"{'deploy':<7}{'issues':>7} | {'hourly scan only':>24} | {'+ checks (5 min)':>24} | {'scan every 5 min':>24}"
    )
    every = CHECKS_PER_HOUR + 1
    for row in rows:
        cells = [row.hourly(1, 0), row.hourly(1, CHECKS_PER_HOUR), row.hourly(every, 0)]
        print(
            f"{row.deployment:<7}{row.issues:>7} | "
            + " | ".join(f"{made:>6} /{size / 1e6:>7.2f} /{zipped / 1e6:>6.2f}" for made, size, zipped in cells)
        )
    ok = all(
        row.listed == row.issues
        and row.check_requests
        == math.ceil(row.issues / (KEYS_PAGE_CLOUD if row.deployment == "Cloud" else KEYS_PAGE_SERVER))
        for row in rows
    )
    print(
        "a poll when the check is not due costs nothing extra (the feed alone); "
        f"per hour at the defaults: {CHECKS_PER_HOUR} x the check"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "deletion_check.json").write_text(
        json.dumps(
            {
                "deletion_check_s": DELETION_CHECK.total_seconds(),
                "poll_interval_s": POLL_INTERVAL.total_seconds(),
                "reconcile_every_s": RECONCILE_EVERY.total_seconds(),
                "checks_per_hour": CHECKS_PER_HOUR,
                "rows": [
                    {
                        **asdict(row),
                        "per_hour_requests": row.per_hour_requests,
                        "per_hour_bytes": row.per_hour_bytes,
                        "hour_hourly_scan_only": row.hourly(1, 0),
                        "hour_with_checks": row.hourly(1, CHECKS_PER_HOUR),
                        "hour_scan_every_check": row.hourly(CHECKS_PER_HOUR + 1, 0),
                    }
                    for row in rows
                ],
            },
            indent=2,
        )
    )
    print("every check listed every key in ceil(N / page) requests" if ok else "A CHECK MISSED KEYS OR PAGES")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
