"""Readiness: what each endpoint's last full pass said, and so what ``/readyz`` answers.

Its own module because "ready" is a judgement over several sources (shutdown, the store, every endpoint's last
poll and its age) that the passes feed from worker threads and the HTTP server reads from its own.

``/readyz`` is unauthenticated, so a failing endpoint is named with its error's class only (``AuthFailed``,
``ServiceUnavailable``), never a tool's text, which may echo a request and its credentials; the log has the text.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from syncd.daemon.logs import log
from syncd.daemon.runtime import Runtime
from syncd.engine import endpoint_key
from syncd.errors import ConnectorError, SideEmptied, SyncdError
from syncd.mapping import Group
from syncd.store import Store

if TYPE_CHECKING:
    from syncd.store.guards import Guard

READY_POLLS = 3
"""An endpoint is ready while its last successful poll is at most this many poll intervals old."""


@dataclass
class _Poll:
    ok: bool
    at: float
    error: str | None = None
    """The error's class name only (the module docstring says why)."""


_CLASS = re.compile(r"[A-Za-z_]\w*(?=: )")


def _error_class(text: str) -> str:
    """The class a pass report's ``"AuthFailed: message"`` names; never the message."""
    found = _CLASS.match(text)
    return found[0] if found else "error"


def _why(guard: Guard) -> str:
    """A held guard's reason in words syncd makes itself (kinds, counts, members): no title, no tool's text."""
    kinds = Counter(str(detail.get("what")) for detail in guard.items.values())
    held = ", ".join(f"{count} {kind}{'s' if count != 1 else ''}" for kind, count in sorted(kinds.items()))
    return f"{held} at {guard.endpoint} from {', '.join(guard.sources)} held for a person"


def _held(store: Store) -> list[dict[str, Any]]:
    """The pending mass-change guards, for /readyz: ids, where, how many items, why (no titles: unauthenticated)."""
    from syncd.store import guards  # noqa: PLC0415 - read only by /readyz

    try:
        with store.transaction() as tx:
            pending = [guard for guard in guards.active(tx) if guard.state == "pending"]
    except Exception:  # the store's own check above says it does not answer
        return []
    return [
        {
            "id": guard.id,
            "endpoint": f"{guard.group}/{guard.endpoint}",
            "items": len(guard.items),
            "why": _why(guard),
            "decide": f"syncd guard show {guard.id}",
        }
        for guard in pending
    ]


class Readiness:
    """The last full pass's result per endpoint (thread-safe), and the readiness verdict built on it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._polls: dict[str, _Poll] = {}

    def polled(
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
        with self._lock:
            for member in group.codecs:
                key = endpoint_key(group.name, member)
                tool = runtime.config.departments[member].connection.tool
                if ok and member in (down or {}):
                    previous = self._polls.get(key)
                    since = previous.at if previous is not None and not previous.ok else now
                    self._polls[key] = _Poll(False, since, _error_class((down or {})[member]))
                    log.warning("endpoint.failing", endpoint=key, error=(down or {})[member])
                elif ok:
                    self._polls[key] = _Poll(True, now)
                elif isinstance(error, ConnectorError) and error.tool != tool:
                    continue  # another tool failed; this member's last result still stands
                elif isinstance(error, SideEmptied) and error.endpoint != key:
                    continue
                else:
                    previous = self._polls.get(key)
                    kind = type(error).__name__ if error is not None else "the pass failed unexpectedly (see the log)"
                    self._polls[key] = _Poll(False, previous.at if previous else now, kind)

    def keep_groups(self, groups: Iterable[str]) -> None:
        """Forget the endpoints of groups a reload removed."""
        kept = set(groups)
        with self._lock:
            self._polls = {k: v for k, v in self._polls.items() if k.split("/", 1)[0] in kept}

    def verdict(
        self, runtime: Runtime, store: Store, *, stopping: bool, groups: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """What /readyz answers: ready, and otherwise each reason (store, endpoint, shutdown).

        ``groups``: the groups whose endpoints count (a replica's own; None: every configured group). Another
        replica's groups are that replica's to poll, so they make this one neither ready nor unready.
        """
        reasons: dict[str, str] = {}
        if stopping:
            reasons["daemon"] = "shutting down"
        try:
            store.ping()
        except Exception as error:  # any failure means the store does not answer
            reasons["store"] = f"does not answer SELECT 1: {type(error).__name__}"
        now = self._clock()
        with self._lock:
            polls = dict(self._polls)
        judged = set(runtime.groups) if groups is None else set(groups)
        for name, group in sorted(runtime.groups.items()):
            if name not in judged:
                continue
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
        # A held mass change waits for a person but stops nothing else: the daemon stays ready (a 503 would take it
        # out of service and stop every other group's webhooks) and says why it is degraded.
        held = _held(store)
        return {"ready": not reasons, "not_ready": reasons, "degraded": bool(held), "guards": held}
