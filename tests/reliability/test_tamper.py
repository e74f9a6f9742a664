"""`syncd audit verify` on a real chain: passes over the sandbox write it, then someone edits the database.

tests/test_cli_audit.py checks the same verdicts on events appended by hand; here the events are the ones real
passes wrote (creates, writes, conflicts), keyed with an ``audit_key``, the store is the one `syncd once` migrated,
a checkpoint was exported with `syncd audit head`, and the verdict comes from the real command in a subprocess, as
an auditor would run it. The attacker has database write access, not the key nor the exported checkpoint.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import Connection

from sandbox.org import Sandbox
from syncd.store import Store
from syncd.store.schema import audit, audit_head
from tests.reliability import sandbox_environment
from tests.syncd_env import syncd
from tests.test_daemon import DaemonProcess

CARD = "Bulk seat pricing for resellers"
KEY = "test audit key, kept out of the database"


@dataclass(frozen=True)
class Chain:
    """A private copy of the chain's store, opened; its environment, events and exported checkpoint."""

    env: dict[str, str]
    store: Store
    count: int
    checkpoint: str


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path, str]:
    """A store whose keyed chain two real passes wrote (the seeded items, then a person's rename); its checkpoint."""
    directory = tmp_path_factory.mktemp("chain")
    with Sandbox() as sandbox:
        for emulator in sandbox.emulators:
            emulator.rate_limits_enabled = False
        env = {**sandbox_environment(sandbox, directory), "SYNCD_AUDIT_KEY": KEY}
        Path(env["CONFIG_DIR"], "syncd.yaml").write_text("audit_key: {env: SYNCD_AUDIT_KEY}\n")
        first = syncd(env, "once")
        assert first.returncode == 0, first.stderr
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == CARD)
        sandbox.trello.act_as("eli@corp.example").update_card(card.id, name=CARD + ", v2")
        second = syncd(env, "once")
        assert second.returncode == 0, second.stderr
    head = syncd(env, "audit", "head", mappings=False)
    assert head.returncode == 0, head.stderr
    return env, directory / "syncd.db", head.stdout.strip()


@pytest.fixture
def copy(chain: tuple[dict[str, str], Path, str], tmp_path: Path) -> Chain:
    """A private copy of the chain's store (each test tampers with its own), opened, and its number of events."""
    env, database, checkpoint = chain
    for path in database.parent.glob(database.name + "*"):  # the database and any WAL left beside it
        shutil.copy(path, tmp_path / path.name)
    url = f"sqlite:///{tmp_path / database.name}"
    store = Store(url)
    with store.engine.begin() as connection:
        count = int(connection.execute(select(func.count()).select_from(audit)).scalar_one())
    assert count > 40, "the passes should have written a real chain (creates, then the rename's writes)"
    assert json.loads(checkpoint)["seq"] == count
    return Chain({**env, "SYNCD_STORE": url}, store, count, checkpoint)


def verify(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    done = syncd(env, "audit", "verify", *args, mappings=False)
    return done.returncode, done.stdout, done.stderr


def rewind(cut: int, connection: Connection) -> None:
    """`DELETE FROM audit WHERE seq > cut` plus one `UPDATE audit_head`: a valid, shorter chain."""
    connection.execute(delete(audit).where(audit.c.seq > cut))
    last = connection.execute(select(audit.c.hash).where(audit.c.seq == cut)).scalar_one()
    connection.execute(update(audit_head).values(seq=cut, hash=last))


def tamper(store: Store, change: Callable[[Connection], object]) -> None:
    try:
        with store.engine.begin() as connection:
            change(connection)
    finally:
        store.close()


def rechain(connection: Connection, start: int, key: bytes | None) -> None:
    """Recompute every hash from ``start`` on, as docs/reliability.md specifies formats 2 and 3, and move the head.

    What an attacker with database write access does after an edit; without the real key their HMACs are wrong.
    """
    rows = connection.execute(select(audit).order_by(audit.c.seq)).all()
    previous = next((row.hash for row in rows if row.seq == start - 1), "0" * 64)
    for row in rows[start - 1 :]:
        covered = {
            "format": 2 if key is None else 3,
            "prev_hash": previous,
            "seq": row.seq,
            "at": row.content["at"],
            "kind": row.kind,
            "group_name": row.group_name,
            "sync_id": row.sync_id,
            "content": row.content,
        }
        message = json.dumps(covered, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        forged = hashlib.sha256(message).hexdigest() if key is None else hmac.new(key, message, "sha256").hexdigest()
        connection.execute(
            update(audit)
            .where(audit.c.seq == row.seq)
            .values(prev_hash=previous, hash=forged, hash_format=covered["format"])
        )
        previous = forged
    connection.execute(update(audit_head).values(seq=rows[-1].seq, hash=previous))


def forged_rename(connection: Connection) -> int:
    """Rewrite what the rename's event says (its new title); its seq."""
    rows = connection.execute(select(audit.c.seq, audit.c.content).order_by(audit.c.seq)).all()
    seq, content = next((s, c) for s, c in rows if c.get("new") == {"title": CARD + ", v2"})
    forged = {**content, "new": {"title": "Something else entirely"}}
    connection.execute(update(audit).where(audit.c.seq == seq).values(content=forged))
    return int(seq)


class TestIntact:
    def test_the_untouched_chain_verifies(self, copy: Chain) -> None:
        """Nothing edited: exit 0, every event's HMAC checked, the exported checkpoint still held."""
        copy.store.close()
        assert json.loads(copy.checkpoint) == {"seq": copy.count, "hash": json.loads(copy.checkpoint)["hash"]}
        expected = (0, f"audit chain ok: {copy.count} events, 1 checkpoint held\n", "")
        assert verify(copy.env, "--checkpoint", copy.checkpoint) == expected

    def test_a_file_of_checkpoints_is_read_line_by_line(self, copy: Chain, tmp_path: Path) -> None:
        """A file of exported heads (`syncd audit head >> FILE`) is checked whole: each line must still be held."""
        copy.store.close()
        with copy.store.engine.begin() as connection:
            fifth = connection.execute(select(audit.c.hash).where(audit.c.seq == 5)).scalar_one()
        copy.store.close()
        exported = tmp_path / "checkpoints.jsonl"
        exported.write_text(json.dumps({"seq": 5, "hash": fifth}) + "\n" + copy.checkpoint + "\n")
        expected = (0, f"audit chain ok: {copy.count} events, 2 checkpoints held\n", "")
        assert verify(copy.env, "--checkpoint", str(exported)) == expected

    def test_without_the_key_a_keyed_chain_is_not_called_ok(self, copy: Chain) -> None:
        """A keyed chain verified without its key is neither ok nor broken: exit 2, saying the key is missing."""
        copy.store.close()
        env = {key: value for key, value in copy.env.items() if key != "SYNCD_AUDIT_KEY"}
        code, out, err = verify(env)
        assert (code, out) == (2, "")
        assert "environment variable SYNCD_AUDIT_KEY is not set" in err


class TestEdits:
    def test_an_edited_row_is_named(self, copy: Chain) -> None:
        """Rewriting what an event says (the rename's new title) breaks the chain at exactly that event."""
        seqs: list[int] = []
        tamper(copy.store, lambda connection: seqs.append(forged_rename(connection)))
        code, out, err = verify(copy.env)
        assert (code, out) == (1, "")
        assert err == (
            f"audit chain broken at event {seqs[0]}: its content was changed after it was written "
            "(or audit_key is not the key it was written with)\n"
        )

    @pytest.mark.parametrize("column", ["kind", "sync_id", "group_name", "at"])
    def test_an_edit_of_each_filtered_column_is_named(self, copy: Chain, column: str) -> None:
        """Each column `syncd audit` filters on is covered: editing it hides nothing, it names the event."""
        value = {"kind": "skip", "sync_id": "S-OTHER", "group_name": "elsewhere", "at": "2001-01-01 00:00:00.000000"}
        tamper(
            copy.store,
            lambda connection: connection.execute(
                text(f"UPDATE audit SET {column} = :value WHERE seq = 9"),  # noqa: S608 - a column the test names
                {"value": value[column]},
            ),
        )
        expected = f"audit chain broken at event 9: its {column} column was changed after it was written"
        assert verify(copy.env) == (1, "", expected + " (it no longer matches its content)\n")

    def test_a_rechained_edit_without_the_key_is_named(self, copy: Chain) -> None:
        """Re-chaining with plain SHA-256 after an edit is a downgrade from format 3, named at the edited event."""

        def edit(connection: Connection) -> None:
            seqs.append(forged_rename(connection))
            rechain(connection, seqs[0], None)

        seqs: list[int] = []
        tamper(copy.store, edit)
        expected = (
            f"audit chain broken at event {seqs[0]}: it is chained in hash format 2, older than format 3 before it\n"
        )
        assert verify(copy.env) == (1, "", expected)

    def test_a_rechained_edit_with_a_guessed_key_is_named(self, copy: Chain) -> None:
        """Re-chaining in format 3 takes the key: with any other, the first re-chained event is named."""

        def edit(connection: Connection) -> None:
            seqs.append(forged_rename(connection))
            rechain(connection, seqs[0], b"a guess")

        seqs: list[int] = []
        tamper(copy.store, edit)
        code, _, err = verify(copy.env)
        assert code == 1
        assert err.startswith(f"audit chain broken at event {seqs[0]}: its content was changed after it was written")

    def test_a_whole_chain_rechained_without_the_key_fails_the_checkpoint(self, copy: Chain) -> None:
        """Re-chaining every event unkeyed passes the links, but not the exported checkpoint."""

        def edit(connection: Connection) -> None:
            forged_rename(connection)
            rechain(connection, 1, None)

        tamper(copy.store, edit)
        code, out, err = verify(copy.env, "--checkpoint", copy.checkpoint)
        assert (code, out) == (1, "")
        expected = "its hash differs from the checkpoint: the chain was rewritten up to here\n"
        assert err == f"audit chain broken at event {copy.count}: {expected}"


class TestRemovals:
    def test_a_deleted_row_is_named(self, copy: Chain) -> None:
        """Deleting an event from the middle names the missing seq."""
        tamper(copy.store, lambda connection: connection.execute(delete(audit).where(audit.c.seq == 7)))
        assert verify(copy.env) == (1, "", "audit chain broken at event 7: event 7 is missing\n")

    def test_two_swapped_rows_are_named(self, copy: Chain) -> None:
        """Swapping two events' seq (content and hashes intact) breaks the chain at the first one out of place."""

        def swap(connection: Connection) -> None:
            connection.execute(update(audit).where(audit.c.seq == 12).values(seq=-1))
            connection.execute(update(audit).where(audit.c.seq == 20).values(seq=12))
            connection.execute(update(audit).where(audit.c.seq == -1).values(seq=20))

        tamper(copy.store, swap)
        expected = "audit chain broken at event 12: its link to the previous event was changed\n"
        assert verify(copy.env) == (1, "", expected)

    def test_a_truncated_end_is_named(self, copy: Chain) -> None:
        """Cutting the last three events is found through the chain head; the first missing seq is named."""
        cut = copy.count - 3
        tamper(copy.store, lambda connection: connection.execute(delete(audit).where(audit.c.seq > cut)))
        expected = f"audit chain broken at event {cut + 1}: events at the end of the chain were removed\n"
        assert verify(copy.env) == (1, "", expected)

    def test_a_truncation_with_the_head_rewound_is_named_by_the_checkpoint(self, copy: Chain) -> None:
        """`DELETE ... WHERE seq > N` plus one `UPDATE audit_head`: a valid shorter chain, but not the checkpoint's."""
        cut = copy.count - 3
        tamper(copy.store, functools.partial(rewind, cut))
        assert verify(copy.env)[0] == 0, "without a checkpoint a rewound chain is indistinguishable (documented)"
        expected = (
            f"audit chain broken at event {cut + 1}: the chain ends at event {cut}, but a checkpoint says event "
            f"{copy.count} was written: events were removed from the end and the head moved back\n"
        )
        assert verify(copy.env, "--checkpoint", copy.checkpoint) == (1, "", expected)

    def test_the_daemons_audit_head_log_lines_are_checkpoints(self, copy: Chain, tmp_path: Path) -> None:
        """`syncd run` logs `audit.head` at start and at exit; those log lines, unchanged, in a file are checkpoints
        `verify` holds the chain to: ok as written, and the rewound truncation above is caught by them."""
        (tmp_path / "mappings").mkdir()  # no group: the daemon only starts, logs its head and stops
        env = {**copy.env, "SYNCD_LISTEN": "127.0.0.1:0", "SYNCD_POLL_INTERVAL_S": "600"}
        with DaemonProcess(env, tmp_path / "mappings") as running:
            running.wait_logged("audit.head", timeout_s=30)
            running.signal(signal.SIGTERM)
            assert running.wait() == 0
        lines = [line for line in running.raw if json.loads(line).get("event") == "audit.head"]
        assert len(lines) >= 2, running.raw  # at start and at shutdown (and each minute)
        logged = tmp_path / "syncd.log"
        logged.write_text("".join(lines))
        expected_ok = (0, f"audit chain ok: {copy.count} events, {len(lines)} checkpoints held\n", "")
        assert verify(copy.env, "--checkpoint", str(logged)) == expected_ok
        cut = copy.count - 3
        tamper(copy.store, functools.partial(rewind, cut))
        code, out, err = verify(copy.env, "--checkpoint", str(logged))
        assert (code, out) == (1, "")
        assert err.startswith(f"audit chain broken at event {cut + 1}: the chain ends at event {cut}, but a "), err

    def test_a_head_moved_back_over_rows_is_named(self, copy: Chain) -> None:
        """Moving only the head back leaves events past it: the first of them is named."""
        tamper(copy.store, lambda connection: connection.execute(update(audit_head).values(seq=10)))
        expected = "audit chain broken at event 11: its head was moved back to event 10: events after it are no longer"
        assert verify(copy.env) == (1, "", expected + " part of the chain\n")

    def test_a_deleted_head_is_named(self, copy: Chain) -> None:
        """Deleting the audit_head row is a verdict naming the last event, not a traceback."""
        tamper(copy.store, lambda connection: connection.execute(delete(audit_head)))
        expected = f"audit chain broken: its head (the audit_head row) was deleted; the last event is {copy.count}\n"
        assert verify(copy.env) == (1, "", expected)


class TestCorruption:
    @pytest.mark.parametrize(
        ("column", "value", "reason"),
        [
            ("content", "{not json", "its content is not JSON"),
            ("content", "[1, 2]", "its content is not a JSON object"),
            ("content", '{"kind": "write"}', "its content is not an audit event (fields missing or unknown)"),
            ("at", "yesterday", "its time is not a time"),
            ("hash_format", 7, "its hash format 7 is not one syncd writes"),
            ("at", 12345, "its time is int, not a time"),
        ],
    )
    def test_an_unreadable_row_is_a_verdict_naming_it(
        self, copy: Chain, column: str, value: object, reason: str
    ) -> None:
        """Content that is not what syncd writes is named as tampering (exit 1), never a traceback."""
        tamper(
            copy.store,
            lambda connection: connection.execute(
                text(f"UPDATE audit SET {column} = :value WHERE seq = 15"),  # noqa: S608 - a column the test names
                {"value": value},
            ),
        )
        assert verify(copy.env) == (1, "", f"audit chain broken at event 15: it cannot be read: {reason}\n")
