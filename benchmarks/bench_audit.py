"""The audit log at a million events (issue 19): pages, filtered pages, deep pages, exports, and the backfill.

Fills a store with ``--events`` realistic events (writes, creates, conflicts, decisions, archives, skips and
quarantines of 20,000 items in 8 groups across 3 departments, 300 people, the shipped canonical fields), chained
exactly as :func:`syncd.audit.append` chains them (its ``_content`` and ``_digest``, format 2) but inserted in
batches at schema revision 0012, then times migration 0013 (its backfill of ``audit_terms`` and the new indexes).
Then times, as the median of ``--runs`` runs each, what ``syncd audit`` and the web page ask for:
:func:`syncd.audit.page` (the 50 newest; filtered by person, department, field, kind, item, ref and several at
once; a deep page ``before`` the middle of the log) and :func:`syncd.audit.export` of a filtered set. On SQLite
(a file), and on PostgreSQL when ``SYNCD_BENCH_POSTGRES_URL`` or ``SYNCD_TEST_POSTGRES_URL`` is set (a database of
its own, dropped after). Prints a table and writes benchmarks/results/audit.json.

    .venv/bin/python benchmarks/bench_audit.py                         # 1,000,000 events, SQLite and PostgreSQL
    .venv/bin/python benchmarks/bench_audit.py --events 100000 --only sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, func, insert, make_url, select, text, update
from sqlalchemy.engine import Connection

from syncd.audit import COLUMNS_SHA256, AuditEvent, AuditFilter, _content, _digest, _Stored, export, page
from syncd.store import Store
from syncd.store.schema import GENESIS, audit, audit_head, audit_terms

RESULTS = Path(__file__).resolve().parent / "results"
DEPARTMENTS = ("engineering", "sales", "marketing")
FIELDS = ("title", "status", "due", "labels", "assignees", "description", "done")
KINDS = (
    ("write", 70),
    ("create", 6),
    ("conflict", 8),
    ("decision", 1),
    ("archive", 3),
    ("skip", 8),
    ("quarantine", 1),
    ("uncertain", 1),
    ("refused", 2),
)
"""Kinds of event and their weights: mostly writes, as a daemon's log is."""
ITEMS, GROUPS, PEOPLE = 20_000, 8, 300
BATCH = 10_000
START = datetime(2026, 1, 1, tzinfo=UTC)


class Events:
    """A deterministic stream of realistic events: who changed what where, in time order."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.people = [f"person{n}@corp.example" for n in range(PEOPLE)]
        self.items = [f"01J{n:023d}" for n in range(ITEMS)]
        kinds, weights = zip(*KINDS, strict=True)
        self.kinds: list[str] = self.random.choices(kinds, weights, k=100_000)

    def refs(self, item: int) -> dict[str, str]:
        return {"engineering": f"ENG-{item + 1}", "sales": f"{item:024x}", "marketing": str(1_200_000_000 + item)}

    def event(self, n: int) -> AuditEvent:
        """The n-th event (about every 30 s, a year of a busy organisation's log at a million)."""
        pick = self.random
        kind = self.kinds[n % len(self.kinds)]
        item = int(pick.paretovariate(1.2) * 7) % ITEMS  # some items are busy, most are quiet
        group = f"group-{item % GROUPS}"
        at = START + timedelta(seconds=n * 30 + pick.random())
        origin, endpoint = pick.sample(DEPARTMENTS, 2)
        person = self.people[int(pick.paretovariate(1.1) * 3) % PEOPLE]
        refs = {endpoint: self.refs(item)[endpoint]}
        common: dict[str, Any] = {"group": group, "sync_id": self.items[item], "config_version": "c0ffee1", "at": at}
        if kind in ("write", "create"):
            written = pick.sample(FIELDS, pick.choice((1, 1, 1, 2, 3)))
            new = {name: f"{name} value {n % 97}" for name in written}
            people = dict.fromkeys(written, person)
            return AuditEvent(
                kind, endpoint=endpoint, refs=refs, new=new, origin=origin, person=person, people=people, **common
            )
        if kind in ("conflict", "decision"):
            field = pick.choice(FIELDS)
            return AuditEvent(
                kind,
                field=field,
                new="done",
                loser={endpoint: "doing"},
                origin=origin,
                person=person,
                rule=pick.choice(("latest", "owner", "prefer", "union", "manual")),
                outcome="decided" if kind == "conflict" else "applied",
                **common,
            )
        if kind in ("refused", "uncertain"):
            field = pick.choice(FIELDS)
            return AuditEvent(
                kind, endpoint=endpoint, refs=refs, field=field, origin=origin, message="x" * 60, **common
            )
        return AuditEvent(
            kind, endpoint=endpoint, refs=refs, origin=origin, message=f"{kind} after 3 failures", **common
        )


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parents[1] / "syncd/store/migrations"))
    return config


def _alembic(store: Store, action: Callable[[Config, str], None], revision: str) -> None:
    config = _config()
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        action(config, revision)


def fill(store: Store, count: int, seed: int) -> float:
    """Chain ``count`` events at revision 0012 as append does (format 2), in batches; the seconds it took."""
    began = time.perf_counter()
    generator = Events(seed)
    previous, seq = GENESIS, 0
    while seq < count:
        rows = []
        for _ in range(min(BATCH, count - seq)):
            seq += 1
            event = generator.event(seq)
            row = _Stored(
                seq=seq,
                at=event.at,
                kind=event.kind,
                group_name=event.group,
                sync_id=event.sync_id,
                content=_content(event),
                prev_hash=previous,
                hash="",
                hash_format=COLUMNS_SHA256,
            )
            previous = _digest(row, None) or ""
            rows.append({**asdict(row), "hash": previous})
        with store.engine.begin() as connection:
            connection.execute(insert(audit), rows)
            connection.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=previous))
        if seq % 100_000 == 0:
            print(f"  {seq:,} events chained, {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    return time.perf_counter() - began


def median_ms(action: Callable[[], object], runs: int) -> float:
    """The median wall time of ``runs`` calls, in milliseconds (one warm-up call first, as a page served twice)."""
    action()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def _paging(store: Store, filters: AuditFilter) -> Callable[[], object]:
    return lambda: page(store, filters, limit=50)


def _count(connection: Connection, table: Any) -> int:  # noqa: ANN401 - a SQLAlchemy table
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def measure(store: Store, count: int, runs: int, seed: int) -> dict[str, Any]:
    """Fill, migrate, then time each page and export; the figures."""
    _alembic(store, command.upgrade, "0012")
    filled = fill(store, count, seed)
    began = time.perf_counter()
    _alembic(store, command.upgrade, "0013")
    backfill = time.perf_counter() - began
    with store.engine.connect() as connection:
        terms = _count(connection, audit_terms)
    store.migrate()  # the rest, 0015's reader terms among them (bench_web.py times them all)
    if store.engine.dialect.name == "postgresql":  # what autovacuum does after a load: statistics, visibility map
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    generator = Events(seed)
    person = generator.people[3]  # one of the busier people
    rare = generator.people[PEOPLE - 7]
    item = generator.items[11]
    middle = count // 2
    pages: dict[str, AuditFilter] = {
        "newest 50, no filter": AuditFilter(),
        "person": AuditFilter(person=person.upper()),
        "person, rare": AuditFilter(person=rare),
        "department": AuditFilter(department="sales"),
        "field": AuditFilter(field="status"),
        "kind": AuditFilter(kind="conflict"),
        "kind, rare": AuditFilter(kind="decision"),
        "item": AuditFilter(sync_id=item),
        "ref": AuditFilter(ref=generator.refs(11)["engineering"]),
        "person+field+kind": AuditFilter(person=person, field="status", kind="write"),
        "department+group+week": AuditFilter(
            department="marketing",
            group="group-3",
            since=START + timedelta(days=100),
            until=START + timedelta(days=107),
        ),
        "until day 100, no other filter": AuditFilter(until=START + timedelta(days=100)),
        "since day 300, kind": AuditFilter(since=START + timedelta(days=300), kind="conflict"),
    }
    figures: dict[str, Any] = {"events": count, "fill_s": round(filled, 1), "backfill_s": round(backfill, 1)}
    figures["terms"] = terms
    timed: dict[str, tuple[float, int]] = {}
    for name, filters in pages.items():
        found, _ = page(store, filters, limit=50)
        timed[name] = (median_ms(_paging(store, filters), runs), len(found))
    deep = AuditFilter(department="sales")
    timed["deep, no filter (before the middle)"] = (
        median_ms(lambda: page(store, AuditFilter(), before=middle, limit=50), runs),
        len(page(store, AuditFilter(), before=middle, limit=50)[0]),
    )
    timed["deep, department (before the middle)"] = (
        median_ms(lambda: page(store, deep, before=middle, limit=50), runs),
        len(page(store, deep, before=middle, limit=50)[0]),
    )
    exported = AuditFilter(person=person, kind="write")
    size = sum(1 for _ in export(store, exported))
    export_ms = median_ms(lambda: sum(1 for _ in export(store, exported)), max(1, runs // 2))
    timed[f"export person+kind ({size:,} events)"] = (export_ms, size)
    figures["ms"] = {name: round(ms, 2) for name, (ms, _) in timed.items()}
    figures["rows"] = {name: rows for name, (_, rows) in timed.items()}
    return figures


@contextmanager
def sqlite_store(directory: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{directory / 'audit.db'}")
    try:
        yield store
    finally:
        store.close()


@contextmanager
def postgres_store(url: str) -> Iterator[Store]:
    name = f"syncd_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    store = Store(make_url(url).set(database=name).render_as_string(hide_password=False))
    try:
        yield store
    finally:
        store.close()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def report(database: str, figures: dict[str, Any]) -> None:
    print(
        f"{database}: {figures['events']:,} events chained in {figures['fill_s']} s; migration 0013 (backfill "
        f"{figures['terms']:,} index rows, build the indexes) {figures['backfill_s']} s"
    )
    print(f"  {'what':<42} {'median ms':>10} {'events':>8}")
    for name, ms in figures["ms"].items():
        print(f"  {name:<42} {ms:>10.2f} {figures['rows'][name]:>8}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7, help="runs per figure; the median is printed")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    url = os.environ.get("SYNCD_BENCH_POSTGRES_URL") or os.environ.get("SYNCD_TEST_POSTGRES_URL")
    results: dict[str, Any] = {}
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as directory, sqlite_store(Path(directory)) as store:
            results["sqlite"] = measure(store, args.events, args.runs, args.seed)
            results["sqlite"]["file_mb"] = round((Path(directory) / "audit.db").stat().st_size / 2**20)
        report("sqlite", results["sqlite"])
    if args.only != "sqlite":
        if not url:
            print("postgresql: skipped (set SYNCD_BENCH_POSTGRES_URL or SYNCD_TEST_POSTGRES_URL)")
        else:
            with postgres_store(url) as store:
                results["postgresql"] = measure(store, args.events, args.runs, args.seed)
            report("postgresql", results["postgresql"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
