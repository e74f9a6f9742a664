"""The :class:`Daemon`: the parts of the package put together, and their life from start to shutdown.

Its own module because only the composition knows every part: it builds them on one configuration, starts them in
order, turns signals into a drain or a reload, swaps a reloaded configuration into each, and stops them in order
with the exit code. No other module of the package imports it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from syncd import gc_policy
from syncd.config import Config
from syncd.connector import Capabilities
from syncd.daemon import web
from syncd.daemon.health import Readiness
from syncd.daemon.logs import configure_logging, log
from syncd.daemon.metrics import AUDIT_HEAD_EVERY_S, Metrics, ObserveRequests, ShareBudgets, log_audit_head
from syncd.daemon.notifier import Notifier
from syncd.daemon.passes import Passes, store_failed
from syncd.daemon.runtime import ConnectorFactory, load_runtime, reload_runtime
from syncd.daemon.scheduler import Scheduler
from syncd.daemon.sharing import Sharing
from syncd.daemon.webhooks import Webhooks
from syncd.errors import SyncdError
from syncd.leasing import Leases
from syncd.store import Lease, Store
from syncd.ui import Ui


class Daemon:
    """The daemon of one configuration directory: build it, then :meth:`run` it from the main thread."""

    def __init__(
        self,
        config_dir: Path,
        mappings_dir: Path,
        *,
        connector_for: ConnectorFactory,
        capabilities: Mapping[str, Capabilities],
        observe_requests: ObserveRequests | None = None,
        share_budgets: ShareBudgets | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config_dir = config_dir
        self.mappings_dir = mappings_dir
        self.connector_for = connector_for
        self.capabilities = capabilities
        self._observe_requests = observe_requests
        self._share_budgets = share_budgets
        self.runtime = load_runtime(
            config_dir, mappings_dir, connector_for, capabilities=capabilities, generation=1, previous=None
        )
        instance = self.runtime.config.instance
        self.store = Store(instance.store, audit_key=instance.audit_secret())
        self.leases = Leases(self.store, ttl_s=instance.lease_ttl_s, on_lost=_lost)
        self.metrics = Metrics(self.store)
        self.scheduler = Scheduler(debounce_s=instance.webhook_debounce_s, clock=clock)
        self.scheduler.set_groups({name: self.runtime.interval(name) for name in self.runtime.groups})
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._reload_requested = False
        self._reloading: threading.Thread | None = None
        self._stop_observing: Callable[[], None] | None = None
        self._clock = clock
        self._server: web.Server | None = None
        self.health = Readiness(clock)
        self.sharing = Sharing(
            store=self.store, leases=self.leases, scheduler=self.scheduler, groups=lambda: self.runtime.groups
        )
        self.metrics.observe_sharing(
            groups=lambda: self.runtime.groups, owned=self.sharing.owned, live=self.sharing.live
        )
        self.passes = Passes(
            runtime=lambda: self.runtime,
            connector_for=connector_for,
            store=self.store,
            sharing=self.sharing,
            scheduler=self.scheduler,
            metrics=self.metrics,
            readiness=self.health,
            clock=clock,
        )
        self.notifier = Notifier(
            self.store,
            holder=self.sharing.replica,
            config=lambda: self.runtime.config,
            urls=lambda: self.runtime.notify_urls,
        )
        self.webhooks = Webhooks(
            runtime=lambda: self.runtime,
            connector_for=connector_for,
            hint=self.sharing.hint,
            metrics=self.metrics,
            stopping=self._stopping,
            store=self.store,
            replica=self.sharing.replica,
        )
        self.ui = self._web_page(self.runtime.config)
        self.app = web.App(
            alive=self.alive, readiness=self.readiness, metrics=self.metrics, webhooks=self.webhooks, ui=self.ui
        )

    def _web_page(self, config: Config) -> Ui | None:
        """The web page of a configuration, if it has a ``web:`` section (its tokens are read now)."""
        return None if config.instance.web is None else Ui(config, self.store, self.capabilities)

    # ----- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> str:
        """Migrate the store, serve HTTP, start polling and register webhooks; the URL served on."""
        self.store.migrate()
        gc_policy.tune()  # start-up is done: what it built is kept until the process ends
        instance = self.runtime.config.instance
        self._server, url = web.serve(instance.listen, self.app, max_body_bytes=instance.max_webhook_bytes)
        if self._observe_requests is not None:
            self._stop_observing = self._observe_requests(self.metrics.request)
        if self._share_budgets is not None and self.store.shared:
            # Replicas on PostgreSQL take every request from one bucket per credential (syncd.store.budgets).
            self._share_budgets(self.store.take_budget)
        self.sharing.start()
        self.passes.start()
        self.notifier.start()
        log.info(
            "started",
            listen=url,
            groups=sorted(self.runtime.groups),
            replica=self.sharing.replica,
            workers=self.runtime.config.instance.workers,
            webhooks=self.runtime.config.instance.public_url is not None,
            config_version=self.runtime.version,
        )
        log_audit_head(self.store)
        self.webhooks.register(self.runtime)
        return url

    def run(self, on_listening: Callable[[str], None] | None = None) -> int:
        """Run until SIGTERM/SIGINT (from the main thread); the exit code: 0 drained, 1 shutdown timed out."""
        self._install_signals()
        try:
            url = self.start()
        except BaseException:
            self._abandon_start()
            raise
        if on_listening is not None:
            on_listening(url)
        checkpointed = self._clock()
        while not self._stopping.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._clock() - checkpointed >= AUDIT_HEAD_EVERY_S:
                checkpointed = self._clock()
                log_audit_head(self.store)
            reloading = self._reloading is not None and self._reloading.is_alive()
            if self._reload_requested and not reloading and not self._stopping.is_set():
                # On a thread of its own: however long the files take to read, SIGTERM is handled at once.
                self._reload_requested = False
                self._reloading = threading.Thread(
                    target=self._reload_unless_stopping, name="syncd-reload", daemon=True
                )
                self._reloading.start()
        return self.shutdown()

    def _reload_unless_stopping(self) -> None:
        if not self._stopping.is_set():
            log.info("reload.started")  # reading the files can take seconds: a SIGTERM meanwhile is not held
            self.reload()

    def _abandon_start(self) -> None:
        """Undo a start that failed half-way, so no thread keeps the process alive behind the error."""
        self.request_stop()
        self.passes.abandon()
        self.notifier.stop()
        if self._server is not None:
            web.stop(self._server)
            self._server = None
        if self._stop_observing is not None:
            self._stop_observing()
            self._stop_observing = None
        self.sharing.stop()
        self._release_leases()
        if self._share_budgets is not None:
            self._share_budgets(None)
        self.store.close()

    def request_stop(self) -> None:
        """Begin the graceful shutdown (what the first SIGTERM/SIGINT does)."""
        self._stopping.set()
        self.scheduler.close()
        self._wake.set()

    def request_reload(self) -> None:
        """Reload at the main loop's next turn (what SIGHUP does)."""
        self._reload_requested = True
        self._wake.set()

    def _install_signals(self) -> None:
        def on_stop(signum: int, frame: FrameType | None) -> None:
            if self._stopping.is_set():
                log.error("shutdown.forced", signal=signal.Signals(signum).name)
                logging.shutdown()
                os._exit(128 + signum)  # the operator insists; an interrupted plan stays in the journal
            log.info("shutdown.requested", signal=signal.Signals(signum).name)
            self.request_stop()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.request_reload()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def shutdown(self) -> int:
        """Stop taking work, let in-flight passes finish within shutdown_timeout_s, stop serving; the exit code."""
        self.request_stop()
        timeout = self.runtime.config.instance.shutdown_timeout_s
        unfinished = self.passes.drain(timeout)
        self.notifier.stop(timeout)
        if self._server is not None:
            web.stop(self._server)
        if self._stop_observing is not None:
            self._stop_observing()
            self._stop_observing = None
        # Released even with passes still running: those are fenced out at their next commit, and the groups'
        # next holder need not wait lease_ttl_s for them; this replica leaves the registry first, so the others
        # count it out when they take them.
        self.sharing.stop()
        self._release_leases()
        if self.ui is not None:
            self.ui.close()
        if self._share_budgets is not None:
            self._share_budgets(None)
        if unfinished:
            log.error("shutdown.timed_out", unfinished=unfinished, timeout_s=timeout)
            return 1
        log_audit_head(self.store)
        self.store.close()
        log.info("shutdown.finished")
        return 0

    def _release_leases(self) -> None:
        """Let go of every group lease at once; a store that does not answer lets them expire instead."""
        try:
            self.leases.close()
        except SQLAlchemyError as error:
            log.error("shutdown.leases", outcome="error", error=str(store_failed(error)))
        except Exception:
            log.exception("shutdown.leases", outcome="error")

    # ----- reload ----------------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Validate the configuration and mappings, then swap them in between passes; False if rejected."""
        fresh = reload_runtime(
            self.config_dir, self.mappings_dir, self.connector_for, capabilities=self.capabilities, current=self.runtime
        )
        if fresh is None:
            return False
        try:
            ui = self._web_page(fresh.config)
        except SyncdError as error:
            log.error("reload.rejected", errors=[str(error)], kept=self.runtime.version)
            return False
        previous, self.ui, self.app.ui = self.ui, ui, ui
        if previous is not None:
            previous.close()
        self.runtime = fresh
        self.scheduler.set_groups(
            {name: fresh.interval(name) for name in fresh.groups}, debounce_s=fresh.config.instance.webhook_debounce_s
        )
        self.health.keep_groups(fresh.groups)
        log.info("reload.applied", groups=sorted(fresh.groups), config_version=fresh.version)
        self.webhooks.register(fresh)
        return True

    # ----- what HTTP asks ----------------------------------------------------------------------------------

    def alive(self) -> bool:
        """What /healthz answers: the dispatcher runs (or has stopped because a shutdown asked it to)."""
        dispatcher = self.passes.dispatcher
        return dispatcher is not None and (dispatcher.is_alive() or self._stopping.is_set())

    def readiness(self) -> dict[str, Any]:
        """What /readyz answers: ready, and otherwise each reason (store, endpoint, shutdown)."""
        owned = self.sharing.owned()
        # With several replicas each answers for the groups it owns; on SQLite (one daemon) for every group.
        judged = owned if self.sharing.fair else None
        verdict = self.health.verdict(self.runtime, self.store, stopping=self._stopping.is_set(), groups=judged)
        return {**verdict, "replica": self.sharing.replica, "groups_owned": owned}


def _lost(lease: Lease) -> None:
    """Say that a lease could not be renewed (its pass, if one runs, is fenced out at its next commit)."""
    log.warning("lease.lost", group=lease.group, token=lease.token)


def run(
    config_dir: Path,
    mappings_dir: Path,
    *,
    connector_for: ConnectorFactory,
    capabilities: Mapping[str, Capabilities],
    observe_requests: ObserveRequests | None = None,
    share_budgets: ShareBudgets | None = None,
    on_listening: Callable[[str], None] | None = None,
) -> int:
    """Configure logging, build the daemon and run it until a signal stops it; the exit code.

    Raises ConfigError / SyncdError when the configuration cannot start at all (the CLI reports them).
    """
    configure_logging()
    daemon = Daemon(
        config_dir,
        mappings_dir,
        connector_for=connector_for,
        capabilities=capabilities,
        observe_requests=observe_requests,
        share_budgets=share_budgets,
    )
    return daemon.run(on_listening)
