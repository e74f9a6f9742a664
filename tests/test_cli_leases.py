"""Two `syncd once` started at once on one store: one writer per group, so no item is mirrored twice."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.org import Sandbox
from syncd.store import Store
from tests.store.conftest import fresh_postgres_database
from tests.syncd_env import ROOT, SYNCD, syncd


def _once_twice_at_once(env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    command = [str(SYNCD), "once", "--config", env["CONFIG_DIR"], "--mappings", str(ROOT / "mappings")]
    started = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outcomes = []
    for process in started:
        out, err = process.communicate(timeout=300)
        outcomes.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return outcomes


def _duplicates(sandbox: Sandbox) -> dict[str, list[str]]:
    """Titles that occur more than once in a tool (the seed's titles are unique): mirrors made twice."""
    titles = {
        "jira": [issue.summary for issue in sandbox.jira.state.issues.values()],
        "trello": [card.name for card in sandbox.trello.state.cards.values()],
        "asana": [task.name for task in sandbox.asana.state.tasks.values()],
    }
    return {tool: [t for t, n in Counter(names).items() if n > 1] for tool, names in titles.items() if names}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


class TestTwoOnceAtOnce:
    def test_one_writer_per_group_and_no_duplicates(
        self, sandbox: Sandbox, environment: dict[str, str], store_url: str
    ) -> None:
        """On a fresh store, each run either syncs or waits for the other (or gives up naming it); no duplicates."""
        environment["SYNCD_STORE"] = store_url
        before = _duplicates(sandbox)
        outcomes = _once_twice_at_once(environment)
        for outcome in outcomes:
            assert outcome.returncode in (0, 2), outcome.stderr
            assert "Traceback" not in outcome.stderr
            if outcome.returncode == 2:
                (line,) = outcome.stderr.splitlines()
                assert line.startswith("error: group launch-requests is held by ")
        assert 0 in [outcome.returncode for outcome in outcomes]
        assert _duplicates(sandbox) == before
        settled = syncd(environment, "once")
        assert settled.returncode == 0, settled.stderr
        assert " 0 writes" in settled.stderr
        store = Store(store_url)
        try:
            now, rows = store.holders()
            assert [row.live(now) for row in rows] == [False] * len(rows)  # every run released its leases
            assert len({row.token for row in rows if row.group == "launch-requests"}) == 1
        finally:
            store.close()

    def test_a_group_held_elsewhere_exits_2_in_one_line(self, environment: dict[str, str], tmp_path: Path) -> None:
        """`syncd once --wait` gives up on a group another process holds, naming host, pid and since."""
        store = Store(environment["SYNCD_STORE"])
        try:
            store.migrate()
            assert store.acquire("launch-requests", "other-host:999:abcdef", 60) is not None
            done = syncd(environment, "once", "--wait", "0.2")
        finally:
            store.close()
        assert done.returncode == 2
        (line,) = done.stderr.splitlines()
        assert line.startswith("error: group launch-requests is held by other-host pid 999 since ")
