"""One request policy for every connector: a token bucket per credential, and retries that honour Retry-After.

The SDKs each have their own idea of retrying (python-jira retries POSTs on connection errors and crashes on an
HTTP-date Retry-After; the asana client retries 429 and 5xx itself and then raises urllib3's MaxRetryError;
py-trello does not retry and hides 429 bodies). Connectors switch those off and call through :func:`call`, so
the whole daemon has exactly one policy:

- every request first takes a token from its credential's :class:`TokenBucket`, sized to the service's
  documented budget, so syncd stays under the limit instead of bouncing off it;
- a :class:`~syncd.errors.RetriableError` is retried with exponential backoff and jitter, waiting at least what
  the service's Retry-After asked for (seconds or an HTTP date);
- no request is sent under a group's lease that may have run out by the process's own clock
  (:mod:`syncd.tenure`): a replica paused past its lease sends nothing when it resumes;
- a request that is not idempotent (a create, a comment, a transition: any POST that makes something) is never
  retried: an answer that says nothing about whether it was applied (any 5xx, a timeout, a dropped connection,
  a body that cannot be read) becomes :class:`~syncd.errors.OutcomeUnknown`, and the caller looks before it
  sends again (:func:`syncd.uncertain.send_once`). Only a 429, which refuses before applying, is waited out.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_base, wait_exponential_jitter

from syncd import tenure
from syncd.errors import (
    ConnectionFailed,
    ConnectorError,
    OutcomeUnknown,
    RateLimited,
    RetriableError,
    ServiceUnavailable,
)

T = TypeVar("T")

RequestObserver = Callable[[str, str], None]
"""Told ``(tool, status)`` once per request attempt; status is "ok" or the error's class name ("RateLimited")."""

_OBSERVERS: list[RequestObserver] = []
_OBSERVERS_LOCK = threading.Lock()


def add_observer(observer: RequestObserver) -> None:
    """Tell ``observer`` about every request attempt from now on (the daemon counts them for /metrics)."""
    with _OBSERVERS_LOCK:
        _OBSERVERS.append(observer)


def remove_observer(observer: RequestObserver) -> None:
    """Stop telling ``observer``; unknown observers are ignored, so removing twice is harmless."""
    with _OBSERVERS_LOCK:
        if observer in _OBSERVERS:
            _OBSERVERS.remove(observer)


def _notify(tool: str, status: str) -> None:
    with _OBSERVERS_LOCK:
        observers = tuple(_OBSERVERS)
    for observer in observers:
        observer(tool, status)


class TokenBucket:
    """At most ``rate`` requests per second on average, bursts up to ``capacity``; thread-safe, blocking."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    @classmethod
    def per_window(cls, requests: int, window_s: float) -> TokenBucket:
        """A limiter for a budget stated as "N requests per window" (Trello: 100 per 10 s per token).

        The services count in a sliding window, so syncd does too (:class:`SlidingWindow`), at 95% of the budget:
        a burst of up to 95 goes at once, and no window ever holds more. (A token bucket at the full rate with a
        large burst let through up to twice the budget: 10% of Trello requests came back 429 in the 10,000-item
        backfill benchmark.)
        """
        return SlidingWindow(max(1, int(requests * 0.95)), window_s)

    def reserve(self, cost: int = 1) -> float:
        """Take ``cost`` tokens now; return how long the caller must wait before using them (0 when they were free)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= cost
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self, cost: int = 1) -> float:
        """Take ``cost`` tokens (a request the service counts as several), sleeping until due; the seconds slept."""
        wait = self.reserve(cost)
        if wait > 0:
            time.sleep(wait)
        return wait


class SlidingWindow(TokenBucket):
    """At most ``limit`` requests in any ``window_s`` seconds, the way the services count; thread-safe, blocking.

    Each request is given a time slot: now if the window has room, else the moment the request ``limit`` places
    back leaves the window. Slots are handed out in order, so waiting callers are served first come, first served.
    """

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(rate=limit / window_s, capacity=limit, clock=clock)
        self.limit = limit
        self.window_s = window_s
        self._slots: deque[float] = deque()

    def reserve(self, cost: int = 1) -> float:
        """Take the next ``cost`` free slots; return how long the caller must wait for the last (0: room now)."""
        with self._lock:
            now = self._clock()
            while self._slots and self._slots[0] <= now - self.window_s:
                self._slots.popleft()
            slot = now
            for _ in range(max(1, cost)):
                last = self._slots[-1] if self._slots else now
                if len(self._slots) < self.limit:
                    slot = max(now, last)
                else:
                    slot = max(self._slots[-self.limit] + self.window_s, last)
                self._slots.append(slot)
            return max(0.0, slot - now)


BudgetTaker = Callable[[str, float, float, int], float]
"""Takes ``cost`` tokens of a credential's bucket shared by every replica, ``(key, capacity, rate, cost)``: the
seconds to wait first. Raises when it cannot (the store does not answer); the process then paces on its own."""

_TAKER: BudgetTaker | None = None


def share_budgets(taker: BudgetTaker | None) -> None:
    """Take every credential's requests from ``taker`` from now on (replicas on one store); None: this process alone."""
    global _TAKER  # noqa: PLW0603 - one process-wide switch, set by the daemon at start and stop
    _TAKER = taker


class SharedBudget(TokenBucket):
    """A credential's budget: this process's :class:`SlidingWindow`, or the replicas' shared bucket when there is one.

    The shared bucket (see :mod:`syncd.store.budgets`) lets through ``capacity + rate * window_s`` requests in any
    window, so it is shaped to the same 95% of the budget as the sliding window: a burst of a tenth of it at once,
    the rest spread over the window. A taker that fails (the store does not answer) falls back to this process's
    window for that request: passes fail at their commit then anyway, and a 429 is waited out.
    """

    def __init__(self, key: str, requests: int, window_s: float, taker: BudgetTaker | None = None) -> None:
        limit = max(2, int(requests * 0.95))
        burst = max(1, limit // 10)
        super().__init__(rate=(limit - burst) / window_s, capacity=burst)
        self.key = key
        self.local = TokenBucket.per_window(requests, window_s)
        self.taker = taker
        """This budget's own taker (tests); None: the process's (:func:`share_budgets`), if any."""

    def reserve(self, cost: int = 1) -> float:
        """Take ``cost`` from the shared bucket if replicas share one, else from this process's window."""
        taker = self.taker or _TAKER
        if taker is not None:
            try:
                return taker(self.key, self.capacity, self.rate, cost)
            except Exception:  # whatever the store raises: pace alone for this request
                return self.local.reserve(cost)
        return self.local.reserve(cost)


_SHARED: dict[str, TokenBucket] = {}
_SHARED_LOCK = threading.Lock()


def shared_bucket(tool: str, credential: str, requests: int, window_s: float) -> TokenBucket:
    """The one bucket of a credential in this process, however many connectors use it.

    The services count per token (and Trello also per API key), not per connector: two boards synced with one
    token share one budget, and so do replicas on one store (:func:`share_budgets`). The key is a digest, so
    neither the registry nor the store ever holds a secret.
    """
    digest = hashlib.sha256(f"{tool}/{credential}".encode()).hexdigest()
    key = f"{tool}:{digest}:{requests}/{window_s}"
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = SharedBudget(key, requests, window_s)
        return _SHARED[key]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for: delta-seconds or an HTTP date (RFC 9110); None when absent or junk."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _WaitRetryAfter(wait_base):
    """Backoff with jitter, but never shorter than what the service's Retry-After asked for."""

    def __init__(self, backoff: wait_base, cap_s: float) -> None:
        self._backoff = backoff
        self._cap_s = cap_s

    def __call__(self, retry_state: RetryCallState) -> float:
        backoff = self._backoff(retry_state)
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RateLimited) and error.retry_after_s is not None:
            return min(self._cap_s, max(backoff, error.retry_after_s))
        return backoff


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up; the defaults suit a daemon that polls again soon anyway."""

    attempts: int = 6
    max_total_s: float = 120.0
    initial_s: float = 0.5
    max_wait_s: float = 60.0


def call(
    request: Callable[[], T],
    *,
    bucket: TokenBucket | Sequence[TokenBucket] | None,
    policy: RetryPolicy = RetryPolicy(),
    idempotent: bool = True,
    translate: Callable[[Exception], ConnectorError] | None = None,
    tool: str = "",
    cost: int = 1,
) -> T:
    """Run one request under the credential's budget, retrying what is safe to retry.

    ``cost`` is what the service counts the request as (a Trello batch call: one per route inside, plus one).

    ``translate`` is the connector's error table: any exception the SDK raises goes through it once, so retries
    and callers only ever see :mod:`syncd.errors`. Every attempt is reported to the observers (see
    :func:`add_observer`) under ``tool``, with "ok" or the class name of the error it ended in.
    """

    def retriable(error: BaseException) -> bool:
        # A write whose answer was lost may have happened (OutcomeUnknown): never repeated here.
        return isinstance(error, RetriableError) and not isinstance(error, OutcomeUnknown)

    buckets = [] if bucket is None else [bucket] if isinstance(bucket, TokenBucket) else list(bucket)

    def translated() -> T:
        if translate is None:
            return request()
        try:
            return request()
        except ConnectorError:
            raise
        except Exception as error:  # the connector's table decides; it re-raises what it does not know
            if not idempotent and isinstance(error, ValueError):
                raise uncertain(error) from error  # an answer that cannot be read says nothing either
            raise translate(error) from error

    def uncertain(error: Exception) -> OutcomeUnknown:
        said = error.message if isinstance(error, ConnectorError) else f"an unreadable answer: {type(error).__name__}"
        return OutcomeUnknown(
            getattr(error, "tool", tool),
            f"a write's answer was lost ({said}); it may have been applied, so it is looked up before anything is "
            "sent again",
            status=getattr(error, "status", None),
        )

    def attempt_once() -> T:
        try:
            return translated()
        except (ServiceUnavailable, ConnectionFailed) as error:
            if idempotent:
                raise
            raise uncertain(error) from error

    def attempt() -> T:
        for each in buckets:
            each.acquire(cost)
        tenure.check()  # after the wait for a token: a pass whose lease may have run out meanwhile sends nothing
        try:
            result = attempt_once()
        except Exception as error:
            _notify(tool, type(error).__name__)
            raise
        _notify(tool, "ok")
        return result

    retrying = Retrying(
        retry=retry_if_exception(retriable),
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_total_s),
        wait=_WaitRetryAfter(
            wait_exponential_jitter(multiplier=policy.initial_s, max=policy.max_wait_s, jitter=policy.initial_s),
            policy.max_wait_s,
        ),
        reraise=True,
    )
    return retrying(attempt)
