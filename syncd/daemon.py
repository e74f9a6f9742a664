"""``syncd run``: the long-running daemon. Poll loops, webhook hints, health and metrics, signals, logs.

What runs where (DESIGN.md, "Daemon"):

- a **dispatcher** thread asks the :class:`Scheduler` what is due and hands passes to a bounded pool of
  ``instance.workers`` threads. Each group polls every ``poll_interval_s`` (the shortest of its members'), measured
  from the start of its last full pass, so a slow pass shortens the sleep instead of drifting the schedule. A
  group never has two passes at once: while one runs, webhook hints for it wait and are merged into the next;
  a full pass swallows the hints waiting for it (it reads every change anyway);
- every worker thread keeps **its own connectors** (the SDKs are synchronous and not thread-safe), rebuilt
  after a reload changes the configuration;
- one **HTTP server** (werkzeug, threaded) on ``instance.listen`` serves ``/healthz``, ``/readyz``, ``/metrics``
  and ``/webhooks/<department>``. A webhook is verified by a connector reserved for that (it does no I/O), and
  its refs become hints: debounced for ``webhook_debounce_s``, de-duplicated per (group, member, ref), bounded
  per group; a group whose hints overflow gets an immediate full pass instead, so nothing is lost;
- the **main thread** waits for signals: SIGTERM/SIGINT drains (no new passes, webhooks answer 503, in-flight
  passes get ``shutdown_timeout_s``), a second one exits at once; SIGHUP validates and then swaps the
  configuration and mappings between passes.

This module never imports ``connectors/`` (the engine stays tool-neutral): the CLI, the composition root, passes
in the connector factory and the hook that counts API requests.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TextIO, cast

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from syncd.config import Config, ConfigError, Department, config_version, load_config
from syncd.connector import Capabilities, Connector
from syncd.engine import Pass, PassReport, endpoint_key
from syncd.errors import AuthFailed, ConnectorError, SideEmptied, SyncdError, ToolConfigError
from syncd.mapping import Group, compile_group
from syncd.store import Store
from syncd.yamlfile import FileError

HINT_LIMIT = 1000
"""Refs waiting per group; beyond this a group gets one full pass instead (it reads every change anyway)."""

READY_POLLS = 3
"""An endpoint is ready while its last successful poll is at most this many poll intervals old."""

LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
"""Propagation lag buckets, seconds: a webhook-driven mirror takes well under a second, a missed one an hour."""

Hints = dict[str, list[str]]
"""member -> refs, what :meth:`syncd.engine.Pass.run` takes as ``hints``."""

RequestObserver = Callable[[str, str], None]


class ConnectorFactory(Protocol):
    """Builds one department's connector, credentials resolved now (``connectors.factory.connector_for``)."""

    def __call__(self, department: Department, *, callback_url: str | None = None) -> Connector:
        """The connector; ``callback_url`` is where this department's webhooks arrive (Trello signs over it)."""
        ...


ObserveRequests = Callable[[RequestObserver], Callable[[], None]]
"""Registers an observer of every API request attempt (tool, "ok" or error class); returns its removal."""


# ----- logging ---------------------------------------------------------------------------------------------

_SECRET_WORDS = ("token", "secret", "password", "authorization", "credential", "signature")


def _redact(logger: object, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Blank any field named like a credential: defence in depth, syncd never passes one on purpose."""
    for key in event:
        if any(word in key.lower() for word in _SECRET_WORDS):
            event[key] = "[redacted]"
    return event


def configure_logging(stream: TextIO | None = None) -> None:
    """Set up structlog for syncd and the libraries' stdlib logging: JSON lines, or readable text on a terminal.

    Tracebacks never show local variables: a frame of a connector holds its token.
    """
    stream = stream or sys.stderr
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    if stream.isatty():
        renderer: Any = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        tail: list[Any] = [renderer]
    else:
        tail = [
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(default=str),
        ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared, processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail]
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request would drown the passes


log: structlog.stdlib.BoundLogger = structlog.get_logger("syncd.daemon")


# ----- configuration snapshot ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runtime:
    """One validated configuration: groups, departments and webhook verifiers, swapped whole on SIGHUP."""

    generation: int
    config: Config
    groups: Mapping[str, Group]
    version: str
    """A digest of the configuration and mapping files, recorded in audit events."""
    verifiers: Mapping[str, Connector]
    """Per department, a connector used only to verify webhook deliveries (no I/O, safe from any thread)."""

    def interval(self, group: str) -> float:
        """Seconds between full passes of a group: the shortest poll interval of its members."""
        default = self.config.instance.poll_interval_s
        members = self.groups[group].codecs
        return min(self.config.departments[m].poll_interval_s or default for m in members)

    def groups_of(self, department: str) -> list[str]:
        """The groups a department is a member of."""
        return [name for name, group in self.groups.items() if department in group.codecs]

    def callback_url(self, department: str) -> str | None:
        """Where the department's webhooks are delivered, or None when polling only."""
        return _callback_url(self.config, department)


def _callback_url(config: Config, department: str) -> str | None:
    public = config.instance.public_url
    return f"{public.rstrip('/')}/webhooks/{department}" if public else None


def load_runtime(
    config_dir: Path,
    mappings_dir: Path,
    factory: ConnectorFactory,
    *,
    capabilities: Mapping[str, Capabilities],
    generation: int,
    previous: Runtime | None,
) -> Runtime:
    """Load and validate everything before anything runs on it: every file problem at once, credentials too.

    Raises ConfigError (file:line problems of configuration and mappings) or SyncdError (a credential).
    """
    problems: list[FileError] = []
    config = load_config(config_dir)
    tools = {name: department.connection.tool for name, department in config.departments.items()}
    groups: dict[str, Group] = {}
    for path in sorted(mappings_dir.glob("*.yaml")):
        try:
            group = compile_group(path, tools, capabilities)
        except FileError as error:
            problems.append(error)
            continue
        groups[group.name] = group
    if problems:
        raise ConfigError(problems)
    verifiers: dict[str, Connector] = {}
    for name, department in config.departments.items():
        verifier = factory(department, callback_url=_callback_url(config, name))  # resolves the credentials now
        old = previous.verifiers.get(name) if previous else None
        if old is not None:
            verifier.keep_agreed_secret(old)  # a secret agreed in a handshake outlives a reload
        verifiers[name] = verifier
    return Runtime(generation, config, groups, config_version(config_dir, mappings_dir), verifiers)


# ----- scheduling ------------------------------------------------------------------------------------------


@dataclass
class _GroupSchedule:
    interval_s: float
    next_full_at: float
    full_requested: bool = False
    running: bool = False
    hints: dict[str, set[str]] = field(default_factory=dict)
    hint_count: int = 0
    first_hint_at: float | None = None


@dataclass(frozen=True)
class Job:
    """One pass to run: a full pass (``hints`` None) or a targeted one."""

    group: str
    hints: Hints | None


class Scheduler:
    """When each group runs which pass. Thread-safe; the clock is injectable so the policy is testable alone."""

    def __init__(
        self, *, debounce_s: float, hint_limit: int = HINT_LIMIT, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.debounce_s = debounce_s
        self.hint_limit = hint_limit
        self._clock = clock
        self._groups: dict[str, _GroupSchedule] = {}
        self._closed = False
        self.changed = threading.Condition()
        """Notified whenever something may have become due; the dispatcher waits on it."""

    def set_groups(self, intervals: Mapping[str, float], *, debounce_s: float | None = None) -> None:
        """Adopt the groups of a (re)loaded configuration; a group that stays keeps its schedule and its hints."""
        with self.changed:
            now = self._clock()
            if debounce_s is not None:
                self.debounce_s = debounce_s
            for name in set(self._groups) - set(intervals):
                del self._groups[name]
            for name, interval in intervals.items():
                current = self._groups.get(name)
                if current is None:
                    self._groups[name] = _GroupSchedule(interval_s=interval, next_full_at=now)
                else:
                    current.next_full_at += interval - current.interval_s
                    current.interval_s = interval
            self.changed.notify_all()

    def hint(self, group: str, member: str, refs: list[str]) -> str:
        """Queue refs for a targeted pass: "queued", or "overflow" (a full pass was requested instead)."""
        with self.changed:
            schedule = self._groups.get(group)
            if schedule is None or self._closed:
                return "ignored"
            if schedule.full_requested:
                return "overflow"
            waiting = schedule.hints.setdefault(member, set())
            fresh = [ref for ref in dict.fromkeys(refs) if ref not in waiting]
            if schedule.hint_count + len(fresh) > self.hint_limit:
                schedule.full_requested = True
                schedule.hints.clear()
                schedule.hint_count = 0
                schedule.first_hint_at = None
                self.changed.notify_all()
                return "overflow"
            waiting.update(fresh)
            schedule.hint_count += len(fresh)
            if schedule.first_hint_at is None and schedule.hint_count:
                schedule.first_hint_at = self._clock()
            self.changed.notify_all()
            return "queued"

    def take(self) -> list[Job]:
        """The passes due now (each group marked running until :meth:`done`); a full pass absorbs waiting hints."""
        jobs: list[Job] = []
        with self.changed:
            if self._closed:
                return jobs
            now = self._clock()
            for name, schedule in sorted(self._groups.items()):
                if schedule.running:
                    continue
                if schedule.full_requested or now >= schedule.next_full_at:
                    jobs.append(Job(name, None))
                elif schedule.first_hint_at is not None and now >= schedule.first_hint_at + self.debounce_s:
                    jobs.append(Job(name, {m: sorted(refs) for m, refs in schedule.hints.items() if refs}))
                else:
                    continue
                schedule.running = True
                schedule.full_requested = False
                schedule.hints = {}
                schedule.hint_count = 0
                schedule.first_hint_at = None
        return jobs

    def done(self, job: Job, started: float) -> None:
        """A pass ended; a full pass sets the next poll one interval after it started."""
        with self.changed:
            schedule = self._groups.get(job.group)
            if schedule is not None:
                schedule.running = False
                if job.hints is None:
                    schedule.next_full_at = started + schedule.interval_s
            self.changed.notify_all()

    def wait(self, timeout_s: float) -> None:
        """Sleep until the next pass may be due, something changed, or ``timeout_s`` passed."""
        with self.changed:
            if self._closed:
                return
            now = self._clock()
            due = [timeout_s]
            for schedule in self._groups.values():
                if schedule.running:
                    continue
                due.append(schedule.next_full_at - now)
                if schedule.first_hint_at is not None:
                    due.append(schedule.first_hint_at + self.debounce_s - now)
            delay = min(due)
            if delay > 0:
                self.changed.wait(delay)

    def close(self) -> None:
        """Take no more work (shutdown)."""
        with self.changed:
            self._closed = True
            self.changed.notify_all()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed


# ----- metrics ---------------------------------------------------------------------------------------------


class _Quarantined(Collector):
    """``syncd_quarantined_items``: items held in quarantine, read from the store at scrape time."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        """One gauge; 0 while the store has no quarantine table."""
        gauge = GaugeMetricFamily("syncd_quarantined_items", "Items held in quarantine after repeated failures.")
        try:
            gauge.add_metric([], float(_quarantined(self.store)))
        except Exception as error:  # a scrape must not fail because the store hiccuped
            log.warning("metrics.quarantine_unreadable", error=type(error).__name__)
            return
        yield gauge


def _raw_scalar(store: Store, sql: str) -> Any:  # noqa: ANN401 - whatever the database answers
    """One value through the DB-API connection: no SQLAlchemy transaction, so no SQLite write lock is taken."""
    connection = store.engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(sql)
            row = cursor.fetchone()
        finally:
            cursor.close()
    finally:
        connection.close()
    return row[0] if row else None


def _quarantined(store: Store) -> int:
    if store.engine.dialect.name == "sqlite":
        exists = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'quarantine'"
    else:
        exists = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'quarantine'"
    if not _raw_scalar(store, exists):
        return 0
    return int(_raw_scalar(store, "SELECT count(*) FROM quarantine WHERE held") or 0)


class Metrics:
    """The daemon's Prometheus metrics, in their own registry (never the process-global one)."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.passes = Counter(
            "syncd_passes", "Passes run, by outcome (ok, failed, error).", ["group", "outcome"], registry=r
        )
        self.writes = Counter("syncd_writes", "Remote writes made.", ["group"], registry=r)
        self.conflicts = Counter("syncd_conflicts", "Field conflicts decided or held.", ["group", "rule"], registry=r)
        self.errors = Counter(
            "syncd_errors", "Items that failed, plus passes that failed whole.", ["group"], registry=r
        )
        self.requests = Counter(
            "syncd_api_requests", "Tool API request attempts, by result.", ["tool", "status"], registry=r
        )
        self.webhooks = Counter(
            "syncd_webhooks", "Webhook deliveries received, by outcome.", ["department", "outcome"], registry=r
        )
        self.lag = Histogram(
            "syncd_propagation_lag_seconds",
            "Seconds from a change in one tool to its mirror's commit.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        r.register(_Quarantined(store))

    def request(self, tool: str, status: str) -> None:
        """Count one API request attempt (the connectors' pacing observer)."""
        self.requests.labels(tool=tool or "unknown", status=status).inc()

    def record(self, report: PassReport) -> str:
        """Count what a pass did; its outcome."""
        outcome = "ok" if report.ok else "failed"
        self.passes.labels(group=report.group, outcome=outcome).inc()
        self.writes.labels(group=report.group).inc(report.writes)
        for decided in report.plans:
            for conflict in decided.conflicts:
                self.conflicts.labels(group=report.group, rule=conflict.rule).inc()
        if report.failures:
            self.errors.labels(group=report.group).inc(len(report.failures))
        for lag in report.lags:
            self.lag.observe(lag)
        return outcome

    def failed(self, group: str) -> None:
        """Count a pass that raised."""
        self.passes.labels(group=group, outcome="error").inc()
        self.errors.labels(group=group).inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


# ----- the daemon ------------------------------------------------------------------------------------------


@dataclass
class _Poll:
    ok: bool
    at: float
    error: str | None = None


def _split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise SyncdError(f"listen must be host:port (e.g. 127.0.0.1:8787), not {listen!r}")
    return host.strip("[]"), int(port)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config_dir = config_dir
        self.mappings_dir = mappings_dir
        self.connector_for = connector_for
        self.capabilities = capabilities
        self._observe_requests = observe_requests
        self._clock = clock
        self.runtime = load_runtime(
            config_dir, mappings_dir, connector_for, capabilities=capabilities, generation=1, previous=None
        )
        instance = self.runtime.config.instance
        self.store = Store(instance.store)
        self.metrics = Metrics(self.store)
        self.scheduler = Scheduler(debounce_s=instance.webhook_debounce_s, clock=clock)
        self.scheduler.set_groups({name: self.runtime.interval(name) for name in self.runtime.groups})
        self.executor = concurrent.futures.ThreadPoolExecutor(instance.workers, thread_name_prefix="syncd-pass")
        # Items of one pass are applied in parallel by these threads (each keeps its own connectors, like the
        # pass threads): a backfill is bound by the tools' latency and rate limits, not by syncd.
        self.apply_pool = concurrent.futures.ThreadPoolExecutor(
            instance.apply_workers, thread_name_prefix="syncd-apply"
        )
        self._local = threading.local()
        self._group_locks: dict[str, threading.Lock] = {}
        self._polls: dict[str, _Poll] = {}
        self._state_lock = threading.Lock()
        self._in_flight: set[concurrent.futures.Future[None]] = set()
        self._handshakes: set[str] = set()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._reload_requested = False
        self._stop_observing: Callable[[], None] | None = None
        self._server: BaseWSGIServer | None = None
        self._dispatcher: threading.Thread | None = None
        self._url_map = Map(
            [
                Rule("/healthz", endpoint="healthz", methods=["GET"]),
                Rule("/readyz", endpoint="readyz", methods=["GET"]),
                Rule("/metrics", endpoint="metrics", methods=["GET"]),
                Rule("/webhooks/<department>", endpoint="webhook", methods=["HEAD", "POST"]),
            ]
        )

    # ----- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> str:
        """Migrate the store, serve HTTP, start polling and register webhooks; the URL served on."""
        self.store.migrate()
        host, port = _split_listen(self.runtime.config.instance.listen)
        # Bound here, not by werkzeug: a port in use is then an OSError the CLI reports, not werkzeug's sys.exit.
        with socket.create_server((host, port), family=_family(host)) as listener:
            server = make_server(host, port, self.wsgi_app, threaded=True, fd=listener.fileno())
        if isinstance(server, ThreadedWSGIServer):
            server.daemon_threads = True  # a hung client connection must not hold the process at exit
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="syncd-http", daemon=True
        ).start()
        if self._observe_requests is not None:
            self._stop_observing = self._observe_requests(self.metrics.request)
        self._dispatcher = threading.Thread(target=self._dispatch, name="syncd-dispatch", daemon=True)
        self._dispatcher.start()
        url = f"http://{host}:{server.server_address[1]}"
        log.info(
            "started",
            listen=url,
            groups=sorted(self.runtime.groups),
            workers=self.runtime.config.instance.workers,
            webhooks=self.runtime.config.instance.public_url is not None,
            config_version=self.runtime.version,
        )
        self._register_webhooks(self.runtime)
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
        while not self._stopping.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._reload_requested and not self._stopping.is_set():
                self._reload_requested = False
                self.reload()
        return self.shutdown()

    def _abandon_start(self) -> None:
        """Undo a start that failed half-way, so no thread keeps the process alive behind the error."""
        self.request_stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._stop_observing is not None:
            self._stop_observing()
            self._stop_observing = None
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
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=5.0)  # it hands over nothing more once the scheduler is closed
        self.executor.shutdown(wait=False, cancel_futures=True)  # passes queued but not started never begin
        with self._state_lock:
            running = set(self._in_flight)
        log.info("shutdown.draining", passes=len(running), timeout_s=timeout)
        _, pending = concurrent.futures.wait(running, timeout=timeout)
        self.apply_pool.shutdown(wait=False, cancel_futures=True)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._stop_observing is not None:
            self._stop_observing()
            self._stop_observing = None
        if pending:
            log.error("shutdown.timed_out", unfinished=len(pending), timeout_s=timeout)
            return 1
        self.store.close()
        log.info("shutdown.finished")
        return 0

    # ----- passes ----------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Hand due passes to the pool until shutdown."""
        while not self.scheduler.closed:
            for job in self.scheduler.take():
                try:
                    future = self.executor.submit(self._run_job, job)
                except RuntimeError:  # the pool shut down between take() and submit(): shutdown is under way
                    return
                with self._state_lock:
                    self._in_flight.add(future)
                future.add_done_callback(self._forget)
            self.scheduler.wait(1.0)

    def _forget(self, future: concurrent.futures.Future[None]) -> None:
        with self._state_lock:
            self._in_flight.discard(future)

    def _connectors(self, runtime: Runtime) -> dict[str, Connector]:
        """The calling worker thread's own connectors (SDK clients are not thread-safe), rebuilt after a reload."""
        if getattr(self._local, "generation", None) != runtime.generation:
            self._local.connectors = {
                name: self.connector_for(department, callback_url=runtime.callback_url(name))
                for name, department in runtime.config.departments.items()
            }
            self._local.generation = runtime.generation
        return cast(dict[str, Connector], self._local.connectors)

    def _run_job(self, job: Job) -> None:
        started = self._clock()
        runtime = self.runtime  # one configuration for the whole pass, whatever a reload does meanwhile
        group = runtime.groups.get(job.group)
        try:
            if group is None:
                return  # removed by a reload after it was scheduled
            with self._state_lock:
                lock = self._group_locks.setdefault(job.group, threading.Lock())
            with lock:
                self._pass(runtime, group, job)
        finally:
            self.scheduler.done(job, started)

    def _pass(self, runtime: Runtime, group: Group, job: Job) -> None:
        kind = "full" if job.hints is None else "hinted"
        started = self._clock()
        try:
            connectors = self._connectors(runtime)
            members = {member: connectors[member] for member in group.codecs}
            parallel = runtime.config.instance.apply_workers > 1
            report = Pass(
                group,
                members,
                self.store,
                config_version=runtime.version,
                pool=self.apply_pool if parallel else None,
                connectors_for_thread=(lambda: self._connectors(runtime)) if parallel else None,
            ).run(hints=job.hints)
        except SyncdError as error:
            self.metrics.failed(group.name)
            if job.hints is None:
                self._polled(runtime, group, error)
            duration = round(self._clock() - started, 3)
            log.error("pass", group=group.name, kind=kind, outcome="error", error=str(error), duration_s=duration)
            return
        except Exception:
            self.metrics.failed(group.name)
            if job.hints is None:
                self._polled(runtime, group, None)
            duration = round(self._clock() - started, 3)
            log.exception("pass", group=group.name, kind=kind, outcome="error", duration_s=duration)
            return
        outcome = self.metrics.record(report)
        if job.hints is None:
            self._polled(runtime, group, None, ok=True, down=report.down)
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

    def _polled(
        self,
        runtime: Runtime,
        group: Group,
        error: SyncdError | None,
        *,
        ok: bool = False,
        down: Mapping[str, str] | None = None,
    ) -> None:
        """Record the result of a full pass per endpoint, for /readyz; a tool's error marks that tool's members.

        A pass that went through can still have left members out whose tool failed (``down``): those are failing.
        """
        now = self._clock()
        with self._state_lock:
            for member in group.codecs:
                key = endpoint_key(group.name, member)
                tool = runtime.config.departments[member].connection.tool
                if ok and member in (down or {}):
                    previous = self._polls.get(key)
                    since = previous.at if previous is not None and not previous.ok else now
                    self._polls[key] = _Poll(False, since, (down or {})[member])
                    log.warning("endpoint.failing", endpoint=key, error=(down or {})[member])
                elif ok:
                    self._polls[key] = _Poll(True, now)
                elif isinstance(error, ConnectorError) and error.tool != tool:
                    continue  # another tool failed; this member's last result still stands
                elif isinstance(error, SideEmptied) and error.endpoint != key:
                    continue
                else:
                    previous = self._polls.get(key)
                    message = str(error) if error is not None else "the pass failed unexpectedly (see the log)"
                    self._polls[key] = _Poll(False, previous.at if previous else now, message)

    # ----- webhooks --------------------------------------------------------------------------------------

    def _register_webhooks(self, runtime: Runtime) -> None:
        """Register every member department's webhook in the background (Asana's handshake calls us back)."""
        if runtime.config.instance.public_url is None:
            return
        members = sorted({m for group in runtime.groups.values() for m in group.codecs})
        threading.Thread(
            target=self._register_each, args=(runtime, members), name="syncd-webhooks", daemon=True
        ).start()

    def _register_each(self, runtime: Runtime, departments: list[str]) -> None:
        for name in departments:
            if self._stopping.is_set():
                return
            url = runtime.callback_url(name)
            assert url is not None  # only called with a public URL
            department = runtime.config.departments[name]
            try:
                connector = self.connector_for(department, callback_url=url)
                unready = connector.webhook_unready()
                if unready is not None:
                    log.warning("webhook.skipped", department=name, reason=unready)
                    continue
                known = self.runtime.verifiers.get(name)
                if known is not None:
                    # A secret agreed earlier in this process keeps the webhook; none (a restart) replaces it.
                    connector.keep_agreed_secret(known)
                if connector.handshake:
                    with self._state_lock:
                        self._handshakes.add(name)  # the tool calls back during the registration
                try:
                    hook = connector.ensure_webhook(url)
                finally:
                    with self._state_lock:
                        self._handshakes.discard(name)
            except SyncdError as error:
                log.error("webhook.registration_failed", department=name, error=str(error))
                continue
            log.info("webhook.registered", department=name, url=url, id=hook)
            verifier = self.runtime.verifiers.get(name)
            if verifier is not None:
                try:
                    # Once syncd's own account there is known, deliveries of syncd's own writes start no pass.
                    verifier.identify()
                except SyncdError as error:
                    log.warning("webhook.identity_unknown", department=name, error=str(error))
            if verifier is not None and not verifier.verifiable():
                # No handshake reached this process (the tool could not call it back): deliveries cannot be
                # verified and are refused; the department is polled meanwhile.
                log.warning("webhook.secret_unknown", department=name, url=url, id=hook)

    def _webhook(self, request: Request, department: str) -> Response:
        """Answer a tool's webhook call; the status tells the tool whether to deliver again."""
        verifier = self.runtime.verifiers.get(department)
        if verifier is None:
            return self._webhook_answer(department, "unknown_department", 404)
        if request.method == "HEAD":
            return Response(status=200)  # Trello checks the callback URL before it creates the webhook
        if self._stopping.is_set():
            return self._webhook_answer(department, "stopping", 503)
        if verifier.handshake and verifier.is_handshake(dict(request.headers)):
            return self._handshake(request, department, verifier)
        return self._delivery(request, department, verifier)

    def _handshake(self, request: Request, department: str, verifier: Connector) -> Response:
        """A registration handshake: answer it and keep the secret, but only while syncd is registering.

        Outside a registration anyone could otherwise replace the secret deliveries are verified with.
        """
        with self._state_lock:
            expected = department in self._handshakes
        if not expected:
            return self._webhook_answer(department, "handshake_refused", 403)
        try:
            echoed = verifier.accept_handshake(dict(request.headers))
        except ConnectorError as error:  # a handshake without its secret
            return self._webhook_answer(department, "malformed", 400, error=error.message)
        log.info("webhook.handshake", department=department)
        return Response(status=200, headers=echoed)

    def _delivery(self, request: Request, department: str, verifier: Connector) -> Response:
        """Verify a delivery, then queue its refs as hints for every group the department is a member of."""
        runtime = self.runtime
        limit = runtime.config.instance.max_webhook_bytes
        if request.content_length is not None and request.content_length > limit:
            return self._webhook_answer(department, "too_large", 413)
        body = request.stream.read(limit + 1)
        if len(body) > limit:
            return self._webhook_answer(department, "too_large", 413)
        try:
            refs = verifier.verify_webhook(dict(request.headers), body)
        except (AuthFailed, ToolConfigError) as error:
            # A wrong signature, or no secret to check one with: either way the sender is not authenticated.
            return self._webhook_answer(department, "unauthorized", 401, error=error.message)
        except ConnectorError as error:
            return self._webhook_answer(department, "malformed", 400, error=error.message)
        outcomes = {self.scheduler.hint(group, department, refs) for group in runtime.groups_of(department)}
        outcome = "overflow" if "overflow" in outcomes else "queued" if refs else "no_refs"
        return self._webhook_answer(department, outcome, 200, refs=len(refs))

    def _webhook_answer(self, department: str, outcome: str, status: int, **details: Any) -> Response:  # noqa: ANN401 - log fields
        self.metrics.webhooks.labels(department=department, outcome=outcome).inc()
        (log.info if status < 400 else log.warning)("webhook", department=department, outcome=outcome, **details)
        return Response(json.dumps({"outcome": outcome}), status=status, mimetype="application/json")

    # ----- reload ----------------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Validate the configuration and mappings, then swap them in between passes; False if rejected."""
        current = self.runtime
        try:
            fresh = load_runtime(
                self.config_dir,
                self.mappings_dir,
                self.connector_for,
                capabilities=self.capabilities,
                generation=current.generation + 1,
                previous=current,
            )
        except ConfigError as error:
            log.error("reload.rejected", errors=[str(each) for each in error.errors], kept=current.version)
            return False
        except SyncdError as error:
            log.error("reload.rejected", errors=[str(error)], kept=current.version)
            return False
        old, new = current.config.instance, fresh.config.instance
        restart_only = [name for name in ("store", "listen", "workers") if getattr(old, name) != getattr(new, name)]
        if restart_only:
            log.warning("reload.needs_restart", settings=restart_only)
        self.runtime = fresh
        self.scheduler.set_groups(
            {name: fresh.interval(name) for name in fresh.groups}, debounce_s=new.webhook_debounce_s
        )
        with self._state_lock:
            self._polls = {k: v for k, v in self._polls.items() if k.split("/", 1)[0] in fresh.groups}
        log.info("reload.applied", groups=sorted(fresh.groups), config_version=fresh.version)
        self._register_webhooks(fresh)
        return True

    # ----- HTTP ------------------------------------------------------------------------------------------

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:  # noqa: ANN401 - WSGI
        """The daemon's one HTTP application: health, readiness, metrics and webhooks."""
        request = Request(environ)
        try:
            endpoint, arguments = self._url_map.bind_to_environ(environ).match()
            if endpoint == "healthz":
                response = self._healthz()
            elif endpoint == "readyz":
                response = self._readyz()
            elif endpoint == "metrics":
                response = Response(self.metrics.render(), mimetype=None, content_type=CONTENT_TYPE_LATEST)
            else:
                response = self._webhook(request, arguments["department"])
        except HTTPException as error:
            return error(environ, start_response)
        return response(environ, start_response)

    def _healthz(self) -> Response:
        alive = self._dispatcher is not None and (self._dispatcher.is_alive() or self._stopping.is_set())
        body = {"status": "ok" if alive else "the scheduler thread stopped"}
        return Response(json.dumps(body), status=200 if alive else 503, mimetype="application/json")

    def readiness(self) -> dict[str, Any]:
        """What /readyz answers: ready, and otherwise each reason (store, endpoint, shutdown)."""
        reasons: dict[str, str] = {}
        if self._stopping.is_set():
            reasons["daemon"] = "shutting down"
        try:
            _raw_scalar(self.store, "SELECT 1")
        except Exception as error:  # any failure means the store does not answer
            reasons["store"] = f"does not answer SELECT 1: {type(error).__name__}"
        runtime = self.runtime
        now = self._clock()
        with self._state_lock:
            polls = dict(self._polls)
        for name, group in sorted(runtime.groups.items()):
            limit = READY_POLLS * runtime.interval(name)
            for member in group.codecs:
                key = endpoint_key(name, member)
                poll = polls.get(key)
                if poll is None:
                    reasons[key] = "not polled yet"
                elif not poll.ok:
                    reasons[key] = f"last poll failed: {poll.error}"
                elif now - poll.at > limit:
                    reasons[key] = f"last successful poll {now - poll.at:.1f} s ago (limit {limit:.1f} s)"
        return {"ready": not reasons, "not_ready": reasons}

    def _readyz(self) -> Response:
        body = self.readiness()
        return Response(json.dumps(body), status=200 if body["ready"] else 503, mimetype="application/json")


def run(
    config_dir: Path,
    mappings_dir: Path,
    *,
    connector_for: ConnectorFactory,
    capabilities: Mapping[str, Capabilities],
    observe_requests: ObserveRequests | None = None,
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
    )
    return daemon.run(on_listening)
