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
- a **replica** thread heartbeats this daemon's row in the store's registry every third of ``lease_ttl_s``; on
  PostgreSQL the live replicas share the groups (each group's preferred owner takes it, others hand it over
  between passes) and a webhook delivery for a group held elsewhere is forwarded to its owner by ``NOTIFY``;
- the **main thread** waits for signals: SIGTERM/SIGINT drains (no new passes, webhooks answer 503, in-flight
  passes get ``shutdown_timeout_s``), a second one exits at once; SIGHUP validates and then swaps the
  configuration and mappings between passes.

The package, one idea per module (arrows are imports; nothing but ``core`` imports ``core``)::

    logs        structlog setup (JSON or text, credentials redacted) and the ``syncd.daemon`` logger
    runtime     configuration files -> a validated Runtime; the same judgement again on reload  <- logs
    scheduler   when each group runs which pass: polling, debounced hints, one pass per group (no I/O)
    metrics     the Prometheus metrics and their registry (quarantine count read at scrape)  <- logs
    health      each endpoint's last full pass, and the readiness verdict  <- logs, runtime
    sharing     the replica registry, which groups are this replica's, hints forwarded between replicas  <- logs,
                scheduler
    webhooks    registering webhooks, verifying deliveries into hints  <- logs, runtime, metrics
    passes      the dispatcher, the pass pool, per-thread connectors, a pass's log line  <- all the above
    web         WSGI routes (/healthz /readyz /metrics /webhooks/<department>) and the server  <- metrics, webhooks
    core        Daemon: builds the parts, start, signals, reload, shutdown and exit code; run()  <- everything

This package never imports ``connectors/`` (the engine stays tool-neutral): the CLI, the composition root, passes
in the connector factory and the hook that counts API requests.
"""

from syncd.daemon.core import Daemon, run
from syncd.daemon.health import READY_POLLS, Readiness
from syncd.daemon.logs import configure_logging
from syncd.daemon.metrics import LAG_BUCKETS, Metrics, ObserveRequests, RequestObserver
from syncd.daemon.runtime import ConnectorFactory, Runtime, load_runtime
from syncd.daemon.scheduler import HINT_LIMIT, Hints, Job, Scheduler

__all__ = [
    "HINT_LIMIT",
    "LAG_BUCKETS",
    "READY_POLLS",
    "ConnectorFactory",
    "Daemon",
    "Hints",
    "Job",
    "Metrics",
    "ObserveRequests",
    "Readiness",
    "RequestObserver",
    "Runtime",
    "Scheduler",
    "configure_logging",
    "load_runtime",
    "run",
]
