"""The web page's audit log at a million events (issue 19): pages and a CSV export over real HTTP.

Fills a store with ``--events`` events exactly as ``bench_audit.py`` does (its realistic, chained events, inserted
in batches at revision 0012, then migrated to the head: the filters' index, 0013, and the readers' terms, 0015),
then serves the ``syncd.ui`` application with the server the daemon uses (``syncd.daemon.web.serve``: waitress on
127.0.0.1) and signs in two people with their operator tokens, read from temporary files as the configuration
names them: an operator who reads every department and a reader of Sales only. Times, as the median of
``--runs`` GETs each after one warm-up, ``/ui/audit``: the first page, filtered by person, department, field,
kind and all four at once, a deep page (``before`` the middle of the log), the reader's first, filtered and deep
pages; and the CSV export of a filtered set to its last byte. Each answer must be 200 and hold what it should.
On SQLite (a file), and on PostgreSQL when ``SYNCD_BENCH_POSTGRES_URL`` or ``SYNCD_TEST_POSTGRES_URL`` is set (a
database of its own, dropped after). The client runs in the same process as the server (4 waitress threads).

    .venv/bin/python benchmarks/bench_web.py                          # 1,000,000 events, SQLite and PostgreSQL
    .venv/bin/python benchmarks/bench_web.py --events 100000 --only sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from alembic import command
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_audit import PEOPLE, RESULTS, Events, _alembic, fill, postgres_store, sqlite_store

from connectors.factory import CAPABILITIES
from syncd.config import load_config
from syncd.daemon import web as http
from syncd.store import Store
from syncd.ui import Mounted, Ui

ROOT = Path(__file__).resolve().parents[1]
OPERATOR, READER = "operator@corp.example", "reader@corp.example"
SEQ = re.compile(r'data-seq="(\d+)"')


def configuration(directory: Path, store_url: str) -> tuple[Path, dict[str, str]]:
    """A configuration directory with the shipped departments and a web section of two token users; the tokens."""
    config = directory / "config"
    shutil.copytree(ROOT / "config" / "departments", config / "departments")
    tokens = {OPERATOR: secrets.token_urlsafe(32), READER: secrets.token_urlsafe(32)}
    for name, token in tokens.items():
        (directory / f"{name}.token").write_text(token + "\n")
    (directory / "session").write_text(secrets.token_urlsafe(48))
    rights = {OPERATOR: "read: all, decide: all", READER: "read: [sales]"}
    users = "".join(
        f"    - {{name: {name}, token: {{file: {directory / name}.token}}, {rights[name]}}}\n" for name in tokens
    )
    (config / "syncd.yaml").write_text(
        f"store: {store_url}\nlisten: 127.0.0.1:0\nweb:\n  session_secret: {{file: {directory / 'session'}}}\n"
        f"  users:\n{users}"
    )
    return config, tokens


def signed_in(url: str, token: str) -> requests.Session:
    """A browser-like session signed in with an operator token."""
    session = requests.Session()
    answer = session.post(f"{url}/ui/sign-in", data={"token": token}, allow_redirects=False, timeout=30)
    if answer.status_code != 303:
        raise SystemExit(f"sign-in failed: {answer.status_code}")
    return session


def timed_get(session: requests.Session, url: str, params: dict[str, Any], runs: int) -> tuple[float, bytes]:
    """The median milliseconds to the last byte of ``runs`` GETs (after one warm-up), and the last body."""
    body = b""
    times = []
    for run in range(runs + 1):
        began = time.perf_counter()
        answer = session.get(url, params=params, timeout=600)
        body = answer.content
        elapsed = (time.perf_counter() - began) * 1000
        if answer.status_code != 200:
            raise SystemExit(f"GET {url} {params}: {answer.status_code}")
        if run:
            times.append(elapsed)
    return statistics.median(times), body


def measure(store: Store, directory: Path, count: int, runs: int, seed: int) -> dict[str, Any]:
    """Fill and migrate the store, serve the page, then time each GET; the figures."""
    _alembic(store, command.upgrade, "0012")
    filled = fill(store, count, seed)
    began = time.perf_counter()
    store.migrate()
    migrated = time.perf_counter() - began
    if store.engine.dialect.name == "postgresql":  # what autovacuum does after a load
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    config, tokens = configuration(directory, store.engine.url.render_as_string(hide_password=False))
    ui = Ui(load_config(config), store, CAPABILITIES)
    server, url = http.serve("127.0.0.1:0", Mounted(ui))
    figures: dict[str, Any] = {"events": count, "fill_s": round(filled, 1), "migrate_s": round(migrated, 1)}
    try:
        operator, reader = signed_in(url, tokens[OPERATOR]), signed_in(url, tokens[READER])
        generator = Events(seed)
        person = generator.people[3]  # one of the busier people
        middle = str(count // 2)
        pages: dict[str, tuple[requests.Session, dict[str, str]]] = {
            "first page": (operator, {}),
            "person": (operator, {"person": person}),
            "department": (operator, {"department": "sales"}),
            "field": (operator, {"field": "status"}),
            "kind": (operator, {"kind": "conflict"}),
            "person+department+field+kind": (
                operator,
                {"person": person, "department": "sales", "field": "status", "kind": "write"},
            ),
            "deep (before the middle)": (operator, {"before": middle}),
            "reader of sales: first page": (reader, {}),
            "reader of sales: person": (reader, {"person": person}),
            "reader of sales: deep": (reader, {"before": middle}),
            "reader of sales: department marketing": (reader, {"department": "marketing"}),
        }
        timed: dict[str, tuple[float, int]] = {}
        for name, (session, params) in pages.items():
            ms, body = timed_get(session, f"{url}/ui/audit", params, runs)
            timed[name] = (ms, len(SEQ.findall(body.decode())))
        exported = {"person": person, "kind": "write"}
        ms, body = timed_get(operator, f"{url}/ui/audit.csv", exported, max(1, runs // 2))
        timed["CSV export person+kind, to the last byte"] = (ms, body.count(b"\n") - 1)
        ms, body = timed_get(reader, f"{url}/ui/audit.csv", exported, max(1, runs // 2))
        timed["CSV export person+kind, reader of sales"] = (ms, body.count(b"\n") - 1)
    finally:
        http.stop(server)
        ui.close()
    figures["ms"] = {name: round(ms, 2) for name, (ms, _) in timed.items()}
    figures["rows"] = {name: rows for name, (_, rows) in timed.items()}
    return figures


def report(database: str, figures: dict[str, Any]) -> None:
    print(
        f"{database}: {figures['events']:,} events chained in {figures['fill_s']} s; "
        f"migrations 0013-0015 {figures['migrate_s']} s"
    )
    print(f"  {'GET /ui/audit':<42} {'median ms':>10} {'events':>8}")
    for name, ms in figures["ms"].items():
        print(f"  {name:<42} {ms:>10.2f} {figures['rows'][name]:>8}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7, help="GETs per figure; the median is printed")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    if args.events < PEOPLE:
        parser.error(f"--events must be at least {PEOPLE}")
    url = os.environ.get("SYNCD_BENCH_POSTGRES_URL") or os.environ.get("SYNCD_TEST_POSTGRES_URL")
    results: dict[str, Any] = {}
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as directory, sqlite_store(Path(directory)) as store:
            results["sqlite"] = measure(store, Path(directory), args.events, args.runs, args.seed)
        report("sqlite", results["sqlite"])
    if args.only != "sqlite":
        if not url:
            print("postgresql: skipped (set SYNCD_BENCH_POSTGRES_URL or SYNCD_TEST_POSTGRES_URL)")
        else:
            with tempfile.TemporaryDirectory() as directory, postgres_store(url) as store:
                results["postgresql"] = measure(store, Path(directory), args.events, args.runs, args.seed)
            report("postgresql", results["postgresql"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "web.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
