"""`syncd audit verify` on a real chain: passes over the sandbox write it, then someone edits the database.

tests/test_cli_audit.py checks the same verdicts on events appended by hand; here the events are the ones real
passes wrote (creates, writes, conflicts), the store is the one `syncd once` migrated, and the verdict comes from
the real command in a subprocess, as an auditor would run it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from sandbox.org import Sandbox
from syncd.store import Store
from syncd.store.schema import audit
from tests.reliability import sandbox_environment
from tests.syncd_env import syncd

CARD = "Bulk seat pricing for resellers"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """A store whose audit chain two real passes wrote (the seeded items mirrored, then a person's rename)."""
    directory = tmp_path_factory.mktemp("chain")
    with Sandbox() as sandbox:
        for emulator in sandbox.emulators:
            emulator.rate_limits_enabled = False
        env = sandbox_environment(sandbox, directory)
        first = syncd(env, "once")
        assert first.returncode == 0, first.stderr
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == CARD)
        sandbox.trello.act_as("eli@corp.example").update_card(card.id, name=CARD + ", v2")
        second = syncd(env, "once")
        assert second.returncode == 0, second.stderr
    return env, directory / "syncd.db"


@pytest.fixture
def copy(chain: tuple[dict[str, str], Path], tmp_path: Path) -> tuple[dict[str, str], Store, int]:
    """A private copy of the chain's store (each test tampers with its own), opened, and its number of events."""
    env, database = chain
    for path in database.parent.glob(database.name + "*"):  # the database and any WAL left beside it
        shutil.copy(path, tmp_path / path.name)
    url = f"sqlite:///{tmp_path / database.name}"
    store = Store(url)
    with store.engine.begin() as connection:
        count = int(connection.execute(select(func.count()).select_from(audit)).scalar_one())
    assert count > 40, "the passes should have written a real chain (creates, then the rename's writes)"
    return {**env, "SYNCD_STORE": url}, store, count


def verify(env: dict[str, str]) -> tuple[int, str, str]:
    done = syncd(env, "audit", "verify", mappings=False)
    return done.returncode, done.stdout, done.stderr


def tamper(store: Store, change: Callable[[Connection], object]) -> None:
    try:
        with store.engine.begin() as connection:
            change(connection)
    finally:
        store.close()


def test_the_untouched_chain_verifies(copy: tuple[dict[str, str], Store, int]) -> None:
    """Nothing edited: exit 0 and the number of events the passes wrote."""
    env, store, count = copy
    store.close()
    assert verify(env) == (0, f"audit chain ok: {count} events\n", "")


def test_an_edited_row_is_named(copy: tuple[dict[str, str], Store, int]) -> None:
    """Rewriting what an event says (the rename's new title) breaks the chain at exactly that event."""
    env, store, _ = copy
    with store.engine.begin() as connection:
        rows = connection.execute(select(audit.c.seq, audit.c.content).order_by(audit.c.seq)).all()
    seq, content = next((s, c) for s, c in rows if c.get("new") == {"title": CARD + ", v2"})
    forged = {**content, "new": {"title": "Something else entirely"}}
    tamper(store, lambda connection: connection.execute(update(audit).where(audit.c.seq == seq).values(content=forged)))
    code, out, err = verify(env)
    assert (code, out) == (1, "")
    assert err == f"audit chain broken at event {seq}: its content was changed after it was written\n"


def test_a_deleted_row_is_named(copy: tuple[dict[str, str], Store, int]) -> None:
    """Deleting an event from the middle names the missing seq."""
    env, store, _ = copy
    tamper(store, lambda connection: connection.execute(delete(audit).where(audit.c.seq == 7)))
    assert verify(env) == (1, "", "audit chain broken at event 7: event 7 is missing\n")


def test_two_swapped_rows_are_named(copy: tuple[dict[str, str], Store, int]) -> None:
    """Swapping two events' seq (content and hashes intact) breaks the chain at the first one out of place."""
    env, store, _ = copy

    def swap(connection: Connection) -> None:
        connection.execute(update(audit).where(audit.c.seq == 12).values(seq=-1))
        connection.execute(update(audit).where(audit.c.seq == 20).values(seq=12))
        connection.execute(update(audit).where(audit.c.seq == -1).values(seq=20))

    tamper(store, swap)
    assert verify(env) == (1, "", "audit chain broken at event 12: its link to the previous event was changed\n")


def test_a_truncated_end_is_named(copy: tuple[dict[str, str], Store, int]) -> None:
    """Cutting the last three events is found through the chain head; the first missing seq is named."""
    env, store, count = copy
    tamper(store, lambda connection: connection.execute(delete(audit).where(audit.c.seq > count - 3)))
    expected = f"audit chain broken at event {count - 2}: events at the end of the chain were removed\n"
    assert verify(env) == (1, "", expected)
