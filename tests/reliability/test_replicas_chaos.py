"""Three replicas on PostgreSQL while people edit: one is SIGKILLed, another SIGSTOPped past its TTL; nothing is lost.

Three `syncd run` processes (real subprocesses, a fresh PostgreSQL database, a 3 s lease TTL, polls every 0.5 s)
share three groups: the shipped one, which sees every edit, and two quiet ones as in tests/test_replicas.py (the
configuration refuses a second group over the same items, and the sandbox has one project, board and workspace).
A seeded workload renames, moves, comments and creates items in all three tools. Meanwhile the shipped group's
owner is SIGKILLed, and then the replica that took it over is SIGSTOPped for three TTLs (just after an edit, so a
pass is likely in flight: it is fenced out when it resumes) and SIGCONTed. Once the edits stop and the group's
owner has run two quiet full passes: every group is owned by exactly one live replica (the store and /readyz
agree); then the two survivors stop cleanly (SIGTERM, exit 0), and no duplicate, no lost edit (each tool holds each
item's last edit), an empty journal and quarantine, and a verified audit chain (tests/reliability/workload.py).

About 90 seconds, so only with ``SYNCD_RELIABILITY_LONG=1`` (``make reliability-long``), and only with
``SYNCD_TEST_POSTGRES_URL``. ``-s`` prints a summary; ``SYNCD_RELIABILITY_SEED`` replays the edits.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from sandbox.org import Sandbox
from syncd.audit import events
from syncd.store import Store
from tests.reliability.workload import (
    Workload,
    check_converged,
    check_marked,
    check_nothing_lost,
    connectors,
    existing_refs,
    long_run,
    run_seed,
    shipped_group,
    verdict,
)
from tests.store.conftest import fresh_postgres_database
from tests.syncd_env import ROOT
from tests.test_daemon import GROUP, DaemonProcess, wait_for
from tests.test_replicas import QUIET, QUIET_MAPPING, owned, owners, replica

TTL_S = 3.0
EDITS = 90
EDITING_S = 75.0
KILL_AT_S = 15.0
"""When, after the edits start, the shipped group's owner is SIGKILLed."""
STOP_AT_S = 35.0
"""When the replica that took the group over is SIGSTOPped (for STOPPED_S)."""
STOPPED_S = 3 * TTL_S

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not long_run(), reason="about 90 s: SYNCD_RELIABILITY_LONG=1 (make reliability-long)"),
]


def _owned_once(url: str, daemons: list[DaemonProcess]) -> dict[str, str] | None:
    """Group -> replica once every group is held by exactly one of ``daemons``, the store and /readyz agreeing."""
    ids = {replica(daemon) for daemon in daemons}
    claimed = {replica(daemon): owned(daemon) for daemon in daemons}
    by_readyz = {group: holder for holder, groups in claimed.items() for group in groups}
    held = owners(url)
    every = sorted((GROUP, *QUIET))
    if sorted(g for groups in claimed.values() for g in groups) != every or held != by_readyz:
        return None
    return held if set(held.values()) <= ids else None


def _quiet_full_passes(daemon: DaemonProcess, after: int) -> int:
    """The shipped group's full passes that wrote and failed nothing, in a row at the end of the log past ``after``."""
    quiet = 0
    for entry in list(daemon.logs)[after:]:
        if entry.get("event") != "pass" or entry.get("group") != GROUP or entry.get("kind") != "full":
            continue
        ok = entry.get("outcome") == "ok" and entry.get("writes") == 0 and entry.get("failures") == 0
        quiet = quiet + 1 if ok else 0
    return quiet


def test_three_replicas_lose_nothing_when_one_is_killed_and_one_stopped(
    sandbox: Sandbox, environment: dict[str, str], tmp_path: Path
) -> None:
    seed = run_seed("replicas-chaos", 1616)
    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    for name in QUIET:
        (mappings / f"{name}.yaml").write_text(QUIET_MAPPING.format(group=name))
    before = existing_refs(sandbox)
    with fresh_postgres_database() as url:
        env = {
            **environment,
            "SYNCD_STORE": url,
            "SYNCD_LEASE_TTL_S": str(TTL_S),
            "SYNCD_LISTEN": "127.0.0.1:0",
            "SYNCD_POLL_INTERVAL_S": "0.5",
        }
        with DaemonProcess(env, mappings) as a, DaemonProcess(env, mappings) as b, DaemonProcess(env, mappings) as c:
            daemons = [a, b, c]
            wait_for(lambda: _owned_once(url, daemons), 60, "every group owned once")
            workload = Workload(sandbox, seed)
            workload.start(EDITS, EDITING_S)
            started = time.monotonic()

            time.sleep(KILL_AT_S)
            victim = next(daemon for daemon in daemons if replica(daemon) == owners(url)[GROUP])
            seen = {id(daemon): len(daemon.logged("lease.taken", group=GROUP)) for daemon in daemons}
            killed = time.monotonic()
            victim.process.kill()
            assert victim.wait() == -signal.SIGKILL
            survivors = [daemon for daemon in daemons if daemon is not victim]
            heir = wait_for(
                lambda: next((d for d in survivors if len(d.logged("lease.taken", group=GROUP)) > seen[id(d)]), None),
                4 * TTL_S,
                "a survivor taking the shipped group",
            )
            took_over_s = time.monotonic() - killed

            time.sleep(max(0.0, STOP_AT_S - (time.monotonic() - started)))
            edits = len(workload.edits)
            wait_for(lambda: len(workload.edits) > edits or not workload.running, 30, "the next edit")
            time.sleep(0.1)  # the edit is read by the group's next poll, 0.5 s apart: a pass is likely running
            stopped = heir if GROUP in owned(heir) else next(d for d in survivors if d is not heir)
            stopped.signal(signal.SIGSTOP)
            time.sleep(STOPPED_S)
            other = next(daemon for daemon in survivors if daemon is not stopped)
            wait_for(lambda: sorted(owned(other)) == sorted((GROUP, *QUIET)), 4 * TTL_S, "the other replica owning all")
            stopped.signal(signal.SIGCONT)

            workload.wait()
            edited_s = time.monotonic() - started
            marks = {id(daemon): len(daemon.logs) for daemon in survivors}

            def quiet() -> bool:
                held = _owned_once(url, survivors)
                if held is None:
                    return False
                owner = next(daemon for daemon in survivors if replica(daemon) == held[GROUP])
                return _quiet_full_passes(owner, marks[id(owner)]) >= 2

            wait_for(quiet, 120, "two quiet full passes of the shipped group after the edits")
            held = _owned_once(url, survivors)
            assert held is not None
            live = Store(url)
            try:
                now, rows = live.replicas()
                registered = {row.replica_id for row in rows if row.live(now)}
            finally:
                live.close()
            assert registered == {replica(daemon) for daemon in survivors}, registered

            for daemon in survivors:
                daemon.signal(signal.SIGTERM)
            assert [daemon.wait() for daemon in survivors] == [0, 0]

        passes = [entry for daemon in daemons for entry in daemon.logs if entry.get("event") == "pass"]
        outcomes = Counter(str(entry.get("outcome")) for entry in passes)
        taken = sum(len(daemon.logged("lease.taken")) for daemon in daemons)
        failed = Counter(str(e.get("error"))[:80] for d in daemons for e in d.logged("item.failed"))
        print(
            f"replicas-chaos: {workload.summary()} in {edited_s:.0f} s; owner SIGKILLed at {KILL_AT_S:.0f} s, taken"
            f" over in {took_over_s:.1f} s (TTL {TTL_S:.0f} s); a replica SIGSTOPped {STOPPED_S:.0f} s (the other"
            f" took all); {taken} leases taken; {len(passes)} passes {dict(sorted(outcomes.items()))},"
            f" {sum(int(e.get('writes') or 0) for e in passes)} writes; owners at the end {held};"
            f" items failed (retried): {dict(failed)}"
        )
        store = Store(url)
        try:
            group = shipped_group()
            problems = check_converged(group, connectors(sandbox), store) + check_nothing_lost(workload, group, store)
            problems += check_marked(sandbox, before)
            for sync_id in sorted({problem.sync_id for problem in problems if problem.sync_id}):
                print(f"audit of {sync_id}:")  # what was written there, and why: the cause beside the verdict
                for recorded in events(store, sync_id=sync_id):
                    e = recorded.event
                    print(
                        f"  {e.at:%H:%M:%S.%f} {e.kind} {e.endpoint} {e.field or ''} {e.old!r} -> {e.new!r} "
                        f"origin={e.origin} rule={e.rule} outcome={e.outcome} {e.message or ''}"
                    )
        finally:
            store.close()
    verdict(problems)
