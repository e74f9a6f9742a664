"""The daemon's Prometheus metrics: what a pass, an API request and a webhook delivery count, and how to render them.

Its own module because metric names and labels are an interface (dashboards and alerts are built on them): they
are all declared here, in the daemon's own registry, never the process-global one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from syncd.daemon.logs import log
from syncd.engine import PassReport
from syncd.store import Store

LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
"""Propagation lag buckets, seconds: a webhook-driven mirror takes well under a second, a missed one an hour."""

RequestObserver = Callable[[str, str], None]
"""Told of one API request attempt: the tool, and "ok" or the error class (:meth:`Metrics.request`)."""

ObserveRequests = Callable[[RequestObserver], Callable[[], None]]
"""Registers an observer of every API request attempt (tool, "ok" or error class); returns its removal."""
BudgetTaker = Callable[[str, float, float, int], float]
"""Takes ``cost`` of a credential's shared bucket ``(key, capacity, rate, cost)``: seconds to wait first."""
ShareBudgets = Callable[[BudgetTaker | None], None]
"""Makes every connector of the process take its requests from a taker (None: pace alone): connectors.pacing."""


class _Quarantined(Collector):
    """``syncd_quarantined_items``: items held in quarantine, read from the store at scrape time."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        """One gauge; 0 while the store has no quarantine table."""
        gauge = GaugeMetricFamily("syncd_quarantined_items", "Items held in quarantine after repeated failures.")
        try:
            gauge.add_metric([], float(self.store.held_count()))
        except Exception as error:  # a scrape must not fail because the store hiccuped
            log.warning("metrics.quarantine_unreadable", error=type(error).__name__)
            return
        yield gauge


class _Unsent(Collector):
    """``syncd_notifications_unsent``: outbox rows not delivered yet, read at scrape time (see notifications.md)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        """One gauge; none while the store cannot say (not migrated yet, or it hiccuped)."""
        gauge = GaugeMetricFamily(
            "syncd_notifications_unsent", "Notifications waiting to be delivered (a failing target keeps them here)."
        )
        try:
            gauge.add_metric([], float(self.store.unsent_notifications()))
        except Exception as error:  # a scrape must not fail because the store hiccuped
            log.warning("metrics.notifications_unreadable", error=type(error).__name__)
            return
        yield gauge


AUDIT_HEAD_EVERY_S = 60.0
"""How often the daemon logs the audit chain's head: a checkpoint outside the store, at most a minute old."""


def log_audit_head(store: Store) -> None:
    """Log the audit chain's head (``audit.head``): shipped off the host, it is a checkpoint ``verify`` can use."""
    try:
        found = store.audit_head()
    except Exception as error:  # a checkpoint missed is logged, never a reason to stop syncing
        log.warning("audit.head_unreadable", error=type(error).__name__)
        return
    if found is None:
        log.error("audit.head_missing")  # deleted: syncd cannot append, and `syncd audit verify` names it
        return
    log.info("audit.head", seq=found[0], hash=found[1])


class _AuditHead(Collector):
    """``syncd_audit_head_seq``: the audit chain's last seq, read at scrape time; it must never go down."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        """One gauge; none while the head cannot be read (an alert on its absence sees that)."""
        gauge = GaugeMetricFamily("syncd_audit_head_seq", "Seq of the audit chain's last event (never decreases).")
        try:
            found = self.store.audit_head()
        except Exception as error:  # a scrape must not fail because the store hiccuped
            log.warning("metrics.audit_head_unreadable", error=type(error).__name__)
            return
        if found is not None:
            gauge.add_metric([], float(found[0]))
            yield gauge


class _Sharing(Collector):
    """``syncd_group_owned`` per configured group (1: this replica holds it) and ``syncd_replicas_live``."""

    def __init__(
        self, groups: Callable[[], Iterable[str]], owned: Callable[[], Iterable[str]], live: Callable[[], int]
    ) -> None:
        self.groups = groups
        self.owned = owned
        self.live = live

    def collect(self) -> Iterator[Metric]:
        """The configured groups only (bounded labels), read at scrape time."""
        owned = GaugeMetricFamily(
            "syncd_group_owned",
            "1 if this replica holds the group's lease (it runs its passes), else 0.",
            None,
            ["group"],
        )
        mine = set(self.owned())
        for group in sorted(self.groups()):
            owned.add_metric([group], 1.0 if group in mine else 0.0)
        yield owned
        live = GaugeMetricFamily("syncd_replicas_live", "Replicas whose registry heartbeat is current (this one too).")
        live.add_metric([], float(self.live()))
        yield live


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
        r.register(_AuditHead(store))
        r.register(_Unsent(store))

    def observe_sharing(
        self, *, groups: Callable[[], Iterable[str]], owned: Callable[[], Iterable[str]], live: Callable[[], int]
    ) -> None:
        """Serve which groups this replica owns, and how many replicas are live (read at each scrape)."""
        self.registry.register(_Sharing(groups, owned, live))

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
