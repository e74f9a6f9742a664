"""What a poll costs each connector, in requests, counted by the emulators (the service's own view).

For each tool: the requests of an idle poll, and of a poll after N items were created by a person (N = 1, 10,
250), with the requests per changed item. Issue 3's budget: idle = 1 request per endpoint; N changed items read
in at most ceil(N / page) + 2 calls. Asana's feed is its event stream, which pages by 100 *events* (a created
task makes 3, an edit 2), so its event pages are shown apart and the budget applies to the reads. "calls" are round
trips, "requests" what the emulator counts against the rate limits (each route inside a Trello batch call too, the
unfavourable reading of an undocumented cost).

Then Trello on a board of 5,000 cards (4,000 archived): a poll after N cards changed, read by id (a plain read,
or one batch call) up to 10, then with one listing of the board; the cost follows N, not the board. Prints tables
and writes benchmarks/results/connector_requests.json.

    .venv/bin/python benchmarks/bench_connector_requests.py
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

from connectors.asana import AsanaConnector
from connectors.base import Connector
from connectors.jira import JiraConnector
from connectors.trello import TrelloConnector
from sandbox.core import Emulator
from sandbox.org import Sandbox
from sandbox.seed import SERVICE_ACCOUNT, token_for
from syncd.model import Cursor

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (1, 10, 250)
PAGE = 100


def _settle(connector: Connector, cursor: Cursor | None) -> Cursor:
    for _ in range(5):
        batch = connector.changes(cursor)
        cursor = batch.cursor
        if not batch.records and not batch.full_scan:
            break
    assert cursor is not None
    return cursor


def measure(
    name: str, emulator: Emulator, connector: Connector, change: Callable[[int], object]
) -> list[dict[str, object]]:
    """Idle and N-changed polls of one connector, counted by its emulator."""
    rows: list[dict[str, object]] = []
    cursor = _settle(connector, None)
    emulator.reset_counters()
    connector.changes(cursor)
    rows.append({"tool": name, "changed": 0, "requests": emulator.request_count(), "events": 0, "budget": 1})
    for size in SIZES:
        cursor = _settle(connector, cursor)
        change(size)
        emulator.reset_counters()
        started = time.perf_counter()
        batch = connector.changes(cursor)
        elapsed = time.perf_counter() - started
        cursor = batch.cursor
        rows.append(
            {
                "tool": name,
                "changed": size,
                "read": len(batch.records),
                "requests": emulator.request_count(),
                "calls": _calls(emulator),
                "events": emulator.request_count("GET /api/1.0/events"),
                "budget": math.ceil(size / PAGE) + 2,
                "seconds": round(elapsed, 3),
            }
        )
    return rows


def _calls(emulator: Emulator) -> int:
    """Round trips: the emulator also counts each route served inside a Trello batch call under that route."""
    if not emulator.request_count("GET /1/batch"):
        return emulator.request_count()
    return emulator.request_count() - emulator.request_count("GET /1/cards/<card>")


def _trello(sandbox: Sandbox) -> TrelloConnector:
    """The Trello connector on the sandbox's board, as syncd's service account."""
    credentials = sandbox.trello.credentials()
    return TrelloConnector(
        base_url=sandbox.trello.url,
        key=credentials["key"],
        token=credentials["token"],
        board_id=next(iter(sandbox.trello.state.boards)),
    )


def big_board() -> list[dict[str, object]]:
    """Trello polls on a board of 5,000 cards, 4,000 of them archived, after N cards changed."""
    rows: list[dict[str, object]] = []
    with Sandbox() as sandbox:
        sandbox.trello.rate_limits_enabled = False
        eli = sandbox.trello.act_as("eli@corp.example")
        cards = [eli.create_card("Requests", f"Card {i}") for i in range(5000 - len(sandbox.trello.state.cards))]
        for card in cards[:4000]:
            eli.archive(card)
        trello = _trello(sandbox)
        cursor = _settle(trello, None)
        for size in (1, 10, 11, 100):
            for card in cards[4000 : 4000 + size]:
                eli.update_card(card, desc=f"changed for {size}")
            sandbox.trello.reset_counters()
            started = time.perf_counter()
            batch = trello.changes(cursor)
            elapsed = time.perf_counter() - started
            cursor = batch.cursor
            rows.append(
                {
                    "board": 5000,
                    "changed": size,
                    "read": len(batch.records),
                    "calls": _calls(sandbox.trello),
                    "requests": sandbox.trello.request_count(),
                    "listings": sandbox.trello.request_count("GET /1/boards/<board>/cards/<which>"),
                    "seconds": round(elapsed, 3),
                }
            )
    return rows


def main() -> int:
    rows: list[dict[str, object]] = []
    with Sandbox() as sandbox:
        for emulator in sandbox.emulators:
            emulator.rate_limits_enabled = False
        jira = JiraConnector(
            base_url=sandbox.jira.url,
            user=SERVICE_ACCOUNT,
            token=token_for("jira", SERVICE_ACCOUNT),
            project_key="ENG",
        )
        ana = sandbox.jira.act_as("ana@corp.example")
        rows += measure("jira", sandbox.jira, jira, lambda n: [ana.create("ENG", f"Bench {i}") for i in range(n)])
        trello = _trello(sandbox)
        eli = sandbox.trello.act_as("eli@corp.example")
        rows += measure(
            "trello",
            sandbox.trello,
            trello,
            lambda n: [eli.create_card("Requests", f"Bench {i}") for i in range(n)],
        )
        asana_connector = AsanaConnector(
            base_url=sandbox.asana.url,
            token=sandbox.asana.credentials()["token"],
            project_gid=next(iter(sandbox.asana.state.projects)),
        )
        gus = sandbox.asana.act_as("gus@corp.example")
        rows += measure(
            "asana",
            sandbox.asana,
            asana_connector,
            lambda n: [gus.create_task(f"Bench {i}", section="Backlog") for i in range(n)],
        )
    print(
        f"{'tool':<8}{'changed':>9}{'read':>7}{'calls':>7}{'requests':>10}{'of which events':>17}{'budget':>8}"
        f"{'req/item':>10}{'seconds':>9}"
    )
    ok = True
    for row in rows:
        changed = int(str(row["changed"]))
        requests_made = int(str(row["requests"]))
        calls = int(str(row.get("calls", requests_made)))
        per_item = f"{requests_made / changed:.3f}" if changed else "-"
        events = int(str(row["events"]))
        within = calls - (events - 1 if events else 0) <= int(str(row["budget"]))
        ok = ok and within and int(str(row.get("read", changed))) >= changed
        print(
            f"{row['tool']:<8}{changed:>9}{row.get('read', '-')!s:>7}{calls:>7}{requests_made:>10}{events:>17}"
            f"{row['budget']!s:>8}"
            f"{per_item:>10}{row.get('seconds', '-')!s:>9}"
        )
    board = big_board()
    print(f"\n{'trello board':<18}{'changed':>9}{'read':>7}{'calls':>7}{'requests':>10}{'listings':>10}{'seconds':>9}")
    for row in board:
        ok = ok and row["read"] == row["changed"]
        print(
            f"{'5000 (4000 arch.)':<18}{row['changed']!s:>9}{row['read']!s:>7}{row['calls']!s:>7}"
            f"{row['requests']!s:>10}{row['listings']!s:>10}{row['seconds']!s:>9}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "connector_requests.json").write_text(json.dumps({"polls": rows, "trello_board": board}, indent=2))
    print("every poll within budget" if ok else "A POLL EXCEEDED ITS BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
