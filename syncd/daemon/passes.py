"""Running passes: the dispatcher, the pass pool, each thread's own connectors, what a finished pass logs.

Its own module because this is where the daemon's concurrency lives: the :class:`~syncd.daemon.scheduler.Scheduler`
decides what is due, this hands it to ``instance.workers`` threads (one pass per group at a time), and on shutdown
stops handing over and waits for what is in flight.

One pass per group at a time holds across processes too: a pass runs only under the group's lease
(:class:`syncd.leasing.Leases`, renewed in the background), claimed through :class:`~syncd.daemon.sharing.Sharing`
(which, with several replicas, also says whether the group is this replica's to take). A group another process
holds is skipped (said once) and tried again at its next turn; a pass fenced out mid-way (LeaseLost: this process
stalled past its lease) stops, and the group's lease is taken again at a later turn, its journal recovered by
whoever holds it then. When a pass ends, a group another live replica should own is handed over.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import cast

from sqlalchemy.exc import SQLAlchemyError

from syncd.connector import Connector
from syncd.daemon.health import Readiness
from syncd.daemon.logs import log
from syncd.daemon.metrics import Metrics
from syncd.daemon.runtime import ConnectorFactory, Runtime
from syncd.daemon.scheduler import Job, Scheduler
from syncd.daemon.sharing import Sharing
from syncd.engine import Pass
from syncd.errors import LeaseLost, StoreUnavailable, SyncdError
from syncd.mapping import Group
from syncd.notices import Outbox
from syncd.store import Lease, Store


def store_failed(error: SQLAlchemyError) -> StoreUnavailable:
    """The database's reason in one line (the driver's message, not SQLAlchemy's dump of the statement).

    A store that fills up or goes away mid-run is a state to report (log, /readyz) and retry on the next turn,
    not an unexpected failure with a traceback: freeing space or restarting the database lets the daemon resume.
    """
    reason = str(getattr(error, "orig", None) or error)
    return StoreUnavailable(
        "cannot write to the store: " + "; ".join(part.strip() for part in reason.splitlines() if part.strip())
    )


class Passes:
    """Runs the passes the scheduler hands out, on a bounded pool, until :meth:`drain`."""

    def __init__(
        self,
        *,
        runtime: Callable[[], Runtime],
        connector_for: ConnectorFactory,
        store: Store,
        sharing: Sharing,
        scheduler: Scheduler,
        metrics: Metrics,
        readiness: Readiness,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        instance = runtime().config.instance
        self._runtime = runtime
        """The configuration in force now; a pass keeps the one it started with, whatever a reload does."""
        self._connector_for = connector_for
        self._store = store
        self._sharing = sharing
        self._held_elsewhere: set[str] = set()
        """Groups last found leased by another process (said once, until this process takes them)."""
        self._scheduler = scheduler
        self._metrics = metrics
        self._readiness = readiness
        self._clock = clock
        self.executor = concurrent.futures.ThreadPoolExecutor(instance.workers, thread_name_prefix="syncd-pass")
        # Items of one pass are applied in parallel by these threads (each keeps its own connectors, like the
        # pass threads): a backfill is bound by the tools' latency and rate limits, not by syncd.
        self.apply_pool = concurrent.futures.ThreadPoolExecutor(
            instance.apply_workers, thread_name_prefix="syncd-apply"
        )
        self._local = threading.local()
        self._group_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._in_flight: set[concurrent.futures.Future[None]] = set()
        self.dispatcher: threading.Thread | None = None

    def start(self) -> None:
        """Start the dispatcher thread."""
        self.dispatcher = threading.Thread(target=self._dispatch, name="syncd-dispatch", daemon=True)
        self.dispatcher.start()

    def abandon(self) -> None:
        """Drop every pass not yet started (a start that failed half-way)."""
        self.executor.shutdown(wait=False, cancel_futures=True)

    def drain(self, timeout_s: float) -> int:
        """After the scheduler closed: start nothing more, give passes in flight ``timeout_s``; how many remain."""
        if self.dispatcher is not None:
            self.dispatcher.join(timeout=5.0)  # it hands over nothing more once the scheduler is closed
        self.executor.shutdown(wait=False, cancel_futures=True)  # passes queued but not started never begin
        with self._lock:
            running = set(self._in_flight)
        log.info("shutdown.draining", passes=len(running), timeout_s=timeout_s)
        _, pending = concurrent.futures.wait(running, timeout=timeout_s)
        self.apply_pool.shutdown(wait=False, cancel_futures=True)
        return len(pending)

    def _dispatch(self) -> None:
        """Hand due passes to the pool until shutdown."""
        while not self._scheduler.closed:
            for job in self._scheduler.take():
                try:
                    future = self.executor.submit(self._run_job, job)
                except RuntimeError:  # the pool shut down between take() and submit(): shutdown is under way
                    return
                with self._lock:
                    self._in_flight.add(future)
                future.add_done_callback(self._forget)
            self._scheduler.wait(1.0)

    def _forget(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._in_flight.discard(future)

    def _connectors(self, runtime: Runtime) -> dict[str, Connector]:
        """The calling worker thread's own connectors (SDK clients are not thread-safe), rebuilt after a reload."""
        if getattr(self._local, "generation", None) != runtime.generation:
            self._local.connectors = {
                name: self._connector_for(department, callback_url=runtime.callback_url(name))
                for name, department in runtime.config.departments.items()
            }
            self._local.generation = runtime.generation
        return cast(dict[str, Connector], self._local.connectors)

    def _run_job(self, job: Job) -> None:
        started = self._clock()
        runtime = self._runtime()  # one configuration for the whole pass, whatever a reload does meanwhile
        group = runtime.groups.get(job.group)
        try:
            if group is None:
                return  # removed by a reload after it was scheduled
            with self._lock:
                lock = self._group_locks.setdefault(job.group, threading.Lock())
            with lock:
                self._pass(runtime, group, job)
        finally:
            self._scheduler.done(job, started)

    def _lease(self, group: str) -> Lease | None:
        """The group's lease, taken or renewed now; None (logged once) while it is not this process's."""
        lease = self._sharing.claim(group)
        if lease is None:
            if group not in self._held_elsewhere:
                self._held_elsewhere.add(group)
                now, rows = self._store.holders()
                holder = next((row for row in rows if row.group == group and row.live(now)), None)
                log.info(
                    "lease.held_elsewhere",
                    group=group,
                    holder=holder.holder if holder is not None else None,
                    since=holder.acquired_at.isoformat() if holder is not None else None,
                    preferred=self._sharing.preferred(group),
                )
            return None
        if group in self._held_elsewhere:
            self._held_elsewhere.discard(group)
            log.info("lease.taken", group=group, token=lease.token)
        return lease

    def _pass(self, runtime: Runtime, group: Group, job: Job) -> None:
        started = self._clock()
        try:
            lease = self._lease(group.name)
        except SQLAlchemyError as error:  # the store cannot be written (full, gone): next turn, and /readyz says so
            failed = store_failed(error)
            self._readiness.polled(runtime, group, failed)
            log.error("lease", group=group.name, outcome="error", error=str(failed))
            return
        except Exception:
            log.exception("lease", group=group.name, outcome="error")  # the store did not answer: next turn
            return
        if lease is None:
            return
        try:
            self._run_pass(runtime, group, job, lease, started)
        finally:
            self._sharing.finished(group.name)

    def _run_pass(self, runtime: Runtime, group: Group, job: Job, lease: Lease, started: float) -> None:
        kind = "full" if job.hints is None else "hinted"
        try:
            connectors = self._connectors(runtime)
            members = {member: connectors[member] for member in group.codecs}
            parallel = runtime.config.instance.apply_workers > 1
            report = Pass(
                group,
                members,
                self._store,
                config_version=runtime.version,
                pool=self.apply_pool if parallel else None,
                connectors_for_thread=(lambda: self._connectors(runtime)) if parallel else None,
                lease=lease,
                tenure=self._sharing.tenure(group.name),
                mass_change=runtime.config.mass_change(group.codecs),
                outbox=Outbox(runtime.config.routes()),
            ).run(hints=job.hints, follow=lambda: self._scheduler.take_hints(group.name))
        except LeaseLost as error:
            duration = round(self._clock() - started, 3)
            log.warning("pass", group=group.name, kind=kind, outcome="fenced", error=str(error), duration_s=duration)
            return
        except (SyncdError, SQLAlchemyError) as caught:
            failed = caught if isinstance(caught, SyncdError) else store_failed(caught)
            self._metrics.failed(group.name)
            if job.hints is None:
                self._readiness.polled(runtime, group, failed)
            duration = round(self._clock() - started, 3)
            log.error("pass", group=group.name, kind=kind, outcome="error", error=str(failed), duration_s=duration)
            return
        except Exception:
            self._metrics.failed(group.name)
            if job.hints is None:
                self._readiness.polled(runtime, group, None)
            duration = round(self._clock() - started, 3)
            log.exception("pass", group=group.name, kind=kind, outcome="error", duration_s=duration)
            return
        outcome = self._metrics.record(report)
        if job.hints is None:
            self._readiness.polled(runtime, group, None, ok=True, down=report.down)
        if report.down:
            outcome = "error"  # a member's tool could not be read: the others synced, it waits (see endpoint.failing)
        (log.warning if report.down else log.info)(
            "pass",
            group=group.name,
            kind=kind,
            outcome=outcome,
            down=sorted(report.down) or None,
            items=len(report.plans),
            writes=report.writes,
            failures=len(report.failures),
            problems=len(report.problems),
            hinted_refs=sum(len(refs) for refs in (job.hints or {}).values()),
            folded_refs=report.folded or None,
            duration_s=round(self._clock() - started, 3),
        )
        for sync_id, failure in report.failures.items():
            log.warning("item.failed", group=group.name, sync_id=sync_id, error=failure)
        for sync_id, member, refusal in report.refused:
            log.warning(
                "value.refused",
                group=group.name,
                sync_id=sync_id,
                endpoint=member,
                field=refusal.field,
                error=refusal.message,
            )
