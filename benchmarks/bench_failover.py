"""Failover time: from a SIGKILL of a group's owner to the first pass of the replica that takes the group over.

Two ``syncd run`` replicas share a fresh PostgreSQL database (created for the run, dropped after) and three groups
on the sandbox: the shipped one and two quiet ones (Engineering alone, scoped to a label nobody uses), polling at
the default 30 s. Once both replicas are live, every group is owned and the shipped group's owner has run a full
pass, and a random part of a TTL later (the kill falls anywhere between two renewals), that owner is SIGKILLed;
the survivor's log then says when it took the group (``lease.taken``) and when its catch-up pass ended (its next
``pass`` line for the group). Times are taken when the lines arrive (stderr is line buffered), against the kill.
Repeated ``--repeats`` times per TTL, each on a database of its own.

Each replica runs under a host name of its own (``unshare --uts``, as root), as on two machines: on one host a
replica sees at once that a holder's pid is gone and takes its groups without waiting (``--hosts same`` measures
that). Across hosts, expect 2/3 to 4/3 of a TTL to the take-over (the dead owner's lease and registry row lapse
one TTL after its last renewal, made up to a third of a TTL before the kill; the survivor looks every third of a
TTL), then the pass. Prints a table and writes benchmarks/results/failover-<hosts>.json.

    SYNCD_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/bench_failover.py [--ttl 5 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import requests
from bench_latency import wait_until
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sandbox.org import Sandbox
from syncd.demo import daemon_environment, prepare_config, shipped, syncd_command

RESULTS = Path(__file__).resolve().parent / "results"
GROUP = "launch-requests"
QUIET = ("quiet-a", "quiet-b")
QUIET_MAPPING = """members:
  engineering: {{scope: {{labels: [{group}]}}}}
create_in: []
fields:
  title: {{rule: latest}}
"""


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A PostgreSQL database of its own for one repeat: created empty, dropped (connections and all) after."""
    name = f"syncd_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


class Replica:
    """One ``syncd run``; each JSON log line kept with the monotonic time it arrived (``_at``)."""

    def __init__(self, env: dict[str, str], config: Path, mappings: Path, host: str | None) -> None:
        command = [*syncd_command(), "run", "--config", str(config), "--mappings", str(mappings)]
        if host is not None:  # a host name of its own (a UTS namespace): the others cannot tell it died
            command = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *command]
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
        self.id = ""

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with contextlib.suppress(ValueError):
                self.logs.append({**json.loads(line), "_at": time.monotonic()})

    def logged(self, event: str, **fields: object) -> list[dict[str, Any]]:
        return [e for e in list(self.logs) if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())]

    def readyz(self) -> dict[str, Any]:
        answer: dict[str, Any] = requests.get(self.url + "/readyz", timeout=5).json()
        return answer

    def stop(self) -> None:
        """SIGTERM and wait for the drain; kill if it does not end."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def shared(replicas: list[Replica]) -> bool:
    """Whether both replicas see each other and every group is owned once, the shipped one after a full pass."""
    answers = [replica.readyz() for replica in replicas]
    owned = sorted(group for answer in answers for group in answer["groups_owned"])
    if owned != sorted((GROUP, *QUIET)):
        return False
    for replica, answer in zip(replicas, answers, strict=True):
        replica.id = str(answer["replica"])
    owner = next(r for r, a in zip(replicas, answers, strict=True) if GROUP in a["groups_owned"])
    metrics = requests.get(owner.url + "/metrics", timeout=5).text
    return "syncd_replicas_live 2.0" in metrics and bool(owner.logged("pass", group=GROUP, kind="full"))


def failover(
    sandbox: Sandbox, workdir: Path, admin_url: str, ttl_s: float, *, hosts: str, phase: random.Random
) -> dict[str, Any]:
    """One SIGKILL of the shipped group's owner; seconds to the survivor's lease.taken and to its next pass."""
    config, mappings = workdir / "config", workdir / "mappings"
    if not config.exists():
        prepare_config(shipped("config"), config, sandbox)
        shutil.copytree(shipped("mappings"), mappings)
        for group in QUIET:
            (mappings / f"{group}.yaml").write_text(QUIET_MAPPING.format(group=group))
    with fresh_database(admin_url) as url:
        env = daemon_environment(sandbox, url)
        env.update({"SYNCD_LEASE_TTL_S": str(ttl_s), "SYNCD_LISTEN": "127.0.0.1:0"})
        names = ("replica-a", "replica-b") if hosts == "separate" else (None, None)
        replicas = [Replica(env, config, mappings, names[0])]
        try:
            replicas.append(Replica(env, config, mappings, names[1]))
            wait_until(lambda: shared(replicas), 300, "both replicas live, every group owned once")
            time.sleep(phase.uniform(0, ttl_s))  # the kill lands anywhere between two renewals, not just after one
            owner = next(r for r in replicas if GROUP in r.readyz()["groups_owned"])
            survivor = next(r for r in replicas if r is not owner)
            killed = time.monotonic()
            owner.process.kill()
            owner.process.wait()

            def took() -> list[dict[str, Any]]:
                return [e for e in survivor.logged("lease.taken", group=GROUP) if e["_at"] >= killed]

            wait_until(took, 4 * ttl_s + 30, "the survivor's take-over")
            taken = took()[0]["_at"]

            def caught_up() -> list[dict[str, Any]]:
                return [e for e in survivor.logged("pass", group=GROUP) if e["_at"] >= taken]

            wait_until(caught_up, 120, "the survivor's first pass of the group")
            first = caught_up()[0]
            return {
                "ttl_s": ttl_s,
                "hosts": hosts,
                "taken_s": taken - killed,
                "first_pass_s": first["_at"] - killed,
                "pass_duration_s": float(first.get("duration_s") or 0.0),
                "pass_outcome": first.get("outcome"),
            }
        finally:
            for replica in replicas:
                replica.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ttl", type=float, nargs="+", default=[5.0, 30.0], help="lease TTLs, s (default 5 30)")
    parser.add_argument("--repeats", type=int, default=3, help="kills per TTL (default 3)")
    parser.add_argument(
        "--hosts",
        choices=("separate", "same"),
        default="separate",
        help="separate (default): each replica under a host name of its own (unshare --uts, needs root), as on two"
        " machines; same: one host, where a replica sees at once that the holder's pid is gone",
    )
    parser.add_argument("--postgres", default=os.environ.get("SYNCD_TEST_POSTGRES_URL"), help="an admin URL")
    args = parser.parse_args()
    if not args.postgres:
        print("failover: skipped, it needs PostgreSQL: pass --postgres URL or set SYNCD_TEST_POSTGRES_URL")
        return 0  # `dev.py bench` runs every script: a machine without PostgreSQL skips this one
    runs: list[dict[str, Any]] = []
    phase = random.Random(16)
    with Sandbox() as sandbox, tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        for ttl_s in args.ttl:
            for _ in range(args.repeats):
                run = failover(sandbox, Path(tmp), args.postgres, ttl_s, hosts=args.hosts, phase=phase)
                print(
                    f"ttl {ttl_s:g} s: taken after {run['taken_s']:.2f} s, first pass ended at "
                    f"{run['first_pass_s']:.2f} s ({run['pass_outcome']}, {run['pass_duration_s']:.2f} s)",
                    flush=True,
                )
                runs.append(run)
    print(f"\nfrom a SIGKILL of the owner, 2 replicas on PostgreSQL, {args.hosts} hosts, s (min / median / max)")
    print(f"{'ttl s':>6}{'kills':>7}   {'lease taken':<22}{'first pass ended':<22}{'in TTLs (median)':>17}")
    summary = []
    for ttl_s in args.ttl:
        mine = [run for run in runs if run["ttl_s"] == ttl_s]
        taken = [run["taken_s"] for run in mine]
        first = [run["first_pass_s"] for run in mine]
        row = {
            "ttl_s": ttl_s,
            "hosts": args.hosts,
            "kills": len(mine),
            "taken_s": [min(taken), statistics.median(taken), max(taken)],
            "first_pass_s": [min(first), statistics.median(first), max(first)],
        }
        summary.append(row)
        spans = ["{:.1f} / {:.1f} / {:.1f}".format(*row[key]) for key in ("taken_s", "first_pass_s")]
        print(f"{ttl_s:>6g}{len(mine):>7}   {spans[0]:<22}{spans[1]:<22}{statistics.median(first) / ttl_s:>17.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"failover-{args.hosts}.json").write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
