"""Group leases on SQLite and PostgreSQL: one holder at a time, a growing fencing token, fenced-out commits refused;
and migrations serialised across processes, a newer schema refused."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from connectors.pacing import call
from syncd.errors import LeaseLapsed, LeaseLost, SchemaTooNew
from syncd.fanout import each
from syncd.leasing import Leases, gone, replica_id
from syncd.store import Lease, Store
from syncd.tenure import MARGIN, Tenure, clock, holding
from tests.store.conftest import SCHEMA_HEAD as HEAD
from tests.store.conftest import fresh_postgres_database

A = "host-a:101:aaaaaa"
B = "host-b:202:bbbbbb"


class TestAcquire:
    def test_a_free_lease_is_taken_with_the_first_token(self, store: Store) -> None:
        """The first acquire of a group takes it, token 1, expiring after the TTL."""
        lease = store.acquire("launch", A, 30)
        assert lease is not None
        assert (lease.group, lease.holder, lease.token) == ("launch", A, 1)
        assert (lease.host, lease.pid) == ("host-a", "101")
        assert 29 <= (lease.expires_at - lease.acquired_at).total_seconds() <= 31

    def test_a_held_lease_is_refused_to_another_and_renewed_for_its_holder(self, store: Store) -> None:
        """While A holds it, B gets None; A acquiring again keeps its token and moves the expiry on."""
        first = store.acquire("launch", A, 30)
        assert first is not None
        assert store.acquire("launch", B, 30) is None
        again = store.acquire("launch", A, 30)
        assert again is not None
        assert again.token == first.token
        assert again.expires_at >= first.expires_at

    def test_groups_are_leased_independently(self, store: Store) -> None:
        """A's lease of one group does not stop B taking another."""
        assert store.acquire("launch", A, 30) is not None
        lease = store.acquire("support", B, 30)
        assert lease is not None
        assert lease.token == 1

    def test_an_expired_lease_is_taken_over_with_a_higher_token(self, store: Store) -> None:
        """Once A's lease expires, B takes it with the next token, and A can no longer renew it."""
        old = store.acquire("launch", A, 0.2)
        assert old is not None
        time.sleep(0.4)
        new = store.acquire("launch", B, 30)
        assert new is not None
        assert (new.holder, new.token) == (B, old.token + 1)
        assert store.renew(old) is False
        assert store.renew(new) is True

    def test_a_released_lease_is_free_at_once_and_the_token_still_grows(self, store: Store) -> None:
        """release() frees the group without waiting for the TTL; the next holder's token is higher."""
        old = store.acquire("launch", A, 30)
        assert old is not None
        store.release(old)
        new = store.acquire("launch", B, 30)
        assert new is not None
        assert new.token == old.token + 1
        store.release(old)  # a stale release does not free the new holder's lease
        assert store.acquire("launch", A, 30) is None

    def test_holders_lists_every_lease_and_whether_it_is_live(self, store: Store) -> None:
        """holders() shows each group's row, judged live on the lease clock it returns with them."""
        lease = store.acquire("launch", A, 30)
        assert lease is not None
        store.release(lease)
        assert store.acquire("support", B, 30) is not None
        now, rows = store.holders()
        assert [(row.group, row.holder, row.live(now)) for row in rows] == [("launch", A, False), ("support", B, True)]


def _write_then_fence(store: Store, lease: Lease) -> None:
    """A write, then the fence, in one transaction: the fence's LeaseLost rolls the write back."""
    with store.transaction() as tx:
        tx.new_item("S1", "launch")
        tx.fence(lease)


def _write_then_stall(store: Store, stall_s: float) -> None:
    """A write, then ``stall_s`` idle inside the same transaction, as a process stopped mid-pass would."""
    with store.transaction() as tx:
        tx.new_item("S1", "launch")
        time.sleep(stall_s)


class TestDeadHolder:
    def test_a_lease_of_a_killed_process_on_this_host_is_taken_at_once(self, store: Store) -> None:
        """``syncd once`` killed while it held a group: the next command takes the group now, not after the TTL."""
        child = subprocess.run(
            [sys.executable, "-c", "from syncd.leasing import replica_id; print(replica_id())"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        dead = child.stdout.strip()  # the holder name of a process that has ended
        assert gone(dead)
        assert store.acquire("g", dead, 600) is not None
        leases = Leases(store, ttl_s=600)
        try:
            lease = leases.try_take("g")
            assert lease is not None
            assert lease.token == 2
        finally:
            leases.close()

    def test_a_live_holder_or_one_elsewhere_keeps_its_lease(self, store: Store) -> None:
        """This process, a process on another host, or in another PID namespace: never taken for dead."""
        assert not gone(replica_id())
        assert store.acquire("g", "elsewhere:1:0-abcdef", 600) is not None
        assert not gone("elsewhere:1:0-abcdef")
        leases = Leases(store, ttl_s=600)
        try:
            assert leases.try_take("g") is None
        finally:
            leases.close()


class TestFence:
    def test_a_holder_commits_while_its_lease_is_live(self, store: Store) -> None:
        """A fenced view's transaction commits as long as its lease holds."""
        lease = store.acquire("launch", A, 30)
        assert lease is not None
        with store.fenced(lease).transaction() as tx:
            tx.new_item("S1", "launch")
        with store.transaction() as tx:
            assert tx.item_group("S1") == "launch"

    def test_a_fenced_out_process_commits_nothing(self, store: Store) -> None:
        """A's lease expires and B takes it: A's next transaction raises LeaseLost and writes nothing."""
        stale = store.acquire("launch", A, 0.2)
        assert stale is not None
        time.sleep(0.4)
        assert store.acquire("launch", B, 30) is not None
        with pytest.raises(LeaseLost):
            _write_then_fence(store, stale)
        with pytest.raises(LeaseLost), store.fenced(stale).transaction() as tx:
            tx.new_item("S2", "launch")
        with store.transaction() as tx:
            assert tx.item_group("S1") is None
            assert tx.item_group("S2") is None

    def test_an_expired_lease_fences_even_before_anyone_takes_over(self, store: Store) -> None:
        """A holder that stalled past its TTL is fenced out at once, not only when another process acquires."""
        lease = store.acquire("launch", A, 0.2)
        assert lease is not None
        time.sleep(0.4)
        with pytest.raises(LeaseLost), store.fenced(lease).transaction() as tx:
            tx.new_item("S1", "launch")

    def test_a_holder_stopped_mid_transaction_holds_a_takeover_up_for_its_ttl_at_most(self, store: Store) -> None:
        """A stopped inside a fenced transaction (its FOR SHARE lock held): B takes over once A was idle for the TTL;
        PostgreSQL ends A's session, so its late commit fails (found by tests/reliability/test_replicas_chaos.py)."""
        if not store.shared:
            pytest.skip("SQLite is one host: a process stopped while writing holds the file's lock")
        stale = store.acquire("launch", A, 1.0)
        assert stale is not None
        taken: list[tuple[Lease | None, float]] = []

        def take_over() -> None:
            time.sleep(1.2)  # A's lease has expired, but its transaction still holds the row
            started = time.monotonic()
            taken.append((store.acquire("launch", B, 30), time.monotonic() - started))

        thread = threading.Thread(target=take_over)
        thread.start()
        with pytest.raises(DBAPIError, match="idle-in-transaction"):
            _write_then_stall(store.fenced(stale), 3.0)
        thread.join(timeout=10)
        lease, waited_s = taken[0]
        assert lease is not None
        assert lease.holder == B
        assert waited_s < 1.5, waited_s  # A's transaction is ended 1 s (the TTL) after its last statement
        with store.transaction() as tx:
            assert tx.item_group("S1") is None

    def test_a_released_lease_fences(self, store: Store) -> None:
        """After release() the old lease commits nothing more."""
        lease = store.acquire("launch", A, 30)
        assert lease is not None
        store.release(lease)
        with pytest.raises(LeaseLost), store.fenced(lease).transaction() as tx:
            tx.new_item("S1", "launch")


class TestTenure:
    """The lease by the holder's own clock: what a pass checks before each request to a tool (syncd.tenure)."""

    def test_a_renewed_lease_keeps_its_tenure_and_a_released_one_stops_every_request(self, store: Store) -> None:
        """Held and renewed in the background, requests go out, from the pass's threads too; released, none does."""
        leases = Leases(store, ttl_s=3.0)
        try:
            assert leases.try_take("g") is not None
            tenure = leases.tenure("g")
            assert tenure is not None
            assert 2.0 < tenure.left() <= 3.0
            time.sleep(2.5)  # past two thirds of the TTL: only the renewals keep it ahead
            assert tenure.left() > 3.0 * MARGIN
            with holding(tenure):
                assert call(lambda: "sent", bucket=None) == "sent"
                assert each({"a": lambda: call(lambda: "sent", bucket=None), "b": lambda: "b"})["a"] == "sent"
                leases.release("g")
                with pytest.raises(LeaseLapsed, match="ran out of its 3 s TTL by this process's clock"):
                    call(lambda: "sent", bucket=None)
                in_thread = each({"a": lambda: call(lambda: "sent", bucket=None), "b": lambda: "b"})["a"]
                assert isinstance(in_thread, LeaseLapsed)
            assert call(lambda: "sent", bucket=None) == "sent"  # no lease in this context: nothing to check
        finally:
            leases.close()

    def test_a_lease_taken_over_stops_its_former_holders_requests(self, store: Store) -> None:
        """B takes the group once A's lease ran out (A did not renew it in time): A's tenure refuses at once."""
        leases = Leases(store, ttl_s=3.0)
        try:
            lease = leases.try_take("g")
            assert lease is not None
            tenure = leases.tenure("g")
            assert tenure is not None
            store.release(lease)  # as when the lease ran out while A was paused
            assert store.acquire("g", B, 30) is not None
            deadline = time.monotonic() + 10
            while tenure.left() > 0 and time.monotonic() < deadline:
                time.sleep(0.05)  # A's renewer finds the lease gone within a third of the TTL
            assert leases.held("g") is None
            with holding(tenure), pytest.raises(LeaseLapsed):
                call(lambda: "sent", bucket=None)
        finally:
            leases.close()

    def test_a_lease_with_less_than_the_margin_left_sends_nothing(self) -> None:
        """Secured by a request sent 2.5 s ago with a 3 s TTL: 0.5 s left is too little for a request to land."""
        tenure = Tenure("g", 7, 3.0)
        tenure.secured(clock() - 2.5, 7)
        with pytest.raises(LeaseLapsed, match=r"lease 7 has only 0\.\d s left"):
            tenure.check()
        tenure.secured(clock(), 7)
        tenure.check()
        tenure.secured(clock(), 8)  # taken again under a new token: the new lease's time only
        assert tenure.token == 8
        tenure.check()


class TestSchemaVersion:
    def test_a_newer_schema_is_refused_in_one_line(self, store: Store) -> None:
        """A store migrated by a newer syncd (an unknown revision) makes migrate() refuse, naming both revisions."""
        with store.transaction() as tx:
            tx.connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(SchemaTooNew) as refused:
            store.migrate()
        assert str(refused.value) == (
            f"the store's schema is at revision 9999, newer than this syncd knows ({HEAD}): upgrade syncd"
        )


MIGRATE = "import sys; from syncd.store import Store; s = Store(sys.argv[1]); s.migrate(); s.close()"


def _migrate_at_once(url: str, processes: int) -> list[subprocess.CompletedProcess[str]]:
    """Start ``processes`` interpreters that each migrate ``url``, all at once; their outcomes."""
    started = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    outcomes = []
    for process in started:
        out, err = process.communicate(timeout=120)
        outcomes.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return outcomes


@pytest.fixture
def empty_postgres_database() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


class TestMigrationRace:
    def test_three_processes_migrate_an_empty_postgresql_database_at_once(self, empty_postgres_database: str) -> None:
        """Under the advisory lock one migrates and the others find the schema current: all succeed."""
        outcomes = _migrate_at_once(empty_postgres_database, 3)
        assert [(outcome.returncode, outcome.stderr) for outcome in outcomes] == [(0, "")] * 3
        engine = create_engine(empty_postgres_database)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
        engine.dispose()

    def test_three_processes_migrate_a_fresh_sqlite_file_at_once(self, tmp_path: Path) -> None:
        """BEGIN IMMEDIATE serialises the migrations of one SQLite file: all succeed."""
        url = f"sqlite:///{tmp_path / 'syncd.db'}"
        outcomes = _migrate_at_once(url, 3)
        assert [(outcome.returncode, outcome.stderr) for outcome in outcomes] == [(0, "")] * 3
