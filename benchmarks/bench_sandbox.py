"""How fast the sandbox emulators serve, so later benchmarks know the emulators are not their bottleneck.

Measures, for each emulator, simple authenticated reads ("who am I") from 1 and from 4 client threads over
keep-alive connections, with rate limits switched off (the point is the emulator's own capacity), plus the
start-up time of `syncd sandbox serve` (process start to its JSON line). Prints a table and writes
benchmarks/results/sandbox.json. Target (issue 2): at least 500 requests/s per emulator; start-up under 2 s.

    python3 dev.py bench            # all benchmarks
    .venv/bin/python benchmarks/bench_sandbox.py --seconds 3
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from requests.auth import HTTPBasicAuth

from sandbox.org import Sandbox

RESULTS = Path(__file__).resolve().parent / "results"


def _session_for(sandbox: Sandbox, api: str) -> tuple[requests.Session, str]:
    """A keep-alive session authenticated as the service account, and the URL of its "who am I" route."""
    credentials = sandbox.credentials()[api]
    session = requests.Session()
    if api == "jira":
        session.auth = HTTPBasicAuth(credentials["email"], credentials["token"])
        return session, f"{credentials['url']}/rest/api/3/myself"
    if api == "trello":
        session.params = {"key": credentials["key"], "token": credentials["token"]}
        return session, f"{credentials['url']}/1/members/me"
    session.headers["Authorization"] = f"Bearer {credentials['token']}"
    return session, f"{credentials['url']}/api/1.0/users/me"


def measure(sandbox: Sandbox, api: str, threads: int, seconds: float) -> dict[str, float]:
    """Requests per second and latency percentiles of `threads` clients hammering one route for `seconds`."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    deadline = time.perf_counter() + seconds

    def client(slot: int) -> None:
        session, url = _session_for(sandbox, api)
        while (start := time.perf_counter()) < deadline:
            response = session.get(url, timeout=10)
            latencies[slot].append(time.perf_counter() - start)
            if response.status_code != 200:
                errors[slot] += 1
        session.close()

    workers = [threading.Thread(target=client, args=(slot,)) for slot in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    samples = sorted(sample for slot in latencies for sample in slot)
    return {
        "requests": len(samples),
        "errors": sum(errors),
        "rps": len(samples) / elapsed,
        "p50_ms": samples[len(samples) // 2] * 1000,
        "p99_ms": samples[int(len(samples) * 0.99)] * 1000,
    }


def startup_seconds() -> float:
    """Time from starting `syncd sandbox serve` to its JSON line (then stop it)."""
    started = time.perf_counter()
    syncd = Path(sys.executable).with_name("syncd")
    process = subprocess.Popen([str(syncd), "sandbox", "serve"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    json.loads(process.stdout.readline())
    elapsed = time.perf_counter() - started
    process.terminate()
    process.wait(10)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    with Sandbox() as sandbox:
        for emulator in sandbox.emulators:
            emulator.rate_limits_enabled = False
        for api in ("jira", "trello", "asana"):
            for threads in (1, 4):
                rows.append({"api": api, "threads": threads, **measure(sandbox, api, threads, args.seconds)})
    startup = [startup_seconds() for _ in range(3)]
    print(f"{'api':<8}{'threads':>8}{'requests':>10}{'errors':>8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for row in rows:
        print(
            f"{row['api']:<8}{row['threads']:>8}{row['requests']:>10}{row['errors']:>8}"
            f"{row['rps']:>10.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
        )
    print(f"syncd sandbox serve start-up: best {min(startup):.2f} s, worst {max(startup):.2f} s (target < 2 s)")
    slowest = min(float(str(row["rps"])) for row in rows)
    print(f"slowest emulator/threads combination: {slowest:.0f} req/s (target >= 500)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sandbox.json").write_text(
        json.dumps({"machine": platform.platform(), "rows": rows, "startup_s": startup}, indent=2)
    )
    return 0 if slowest >= 500 and max(startup) < 2 else 1


if __name__ == "__main__":
    sys.exit(main())
