"""The one request policy: token buckets keep under the budget, retries honour Retry-After and spare creates."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.pacing import RetryPolicy, SlidingWindow, TokenBucket, call, parse_retry_after, shared_bucket
from syncd.errors import AuthFailed, ConnectionFailed, ConnectorError, OutcomeUnknown, RateLimited, ServiceUnavailable

FAST = RetryPolicy(attempts=4, max_total_s=10, initial_s=0.01, max_wait_s=1)


class FakeTime:
    """A settable monotonic clock for the bucket (the bucket takes its clock as a parameter)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestTokenBucket:
    def test_a_burst_up_to_capacity_is_free_then_callers_wait(self) -> None:
        """The first `capacity` requests go at once; the next waits 1/rate seconds."""
        clock = FakeTime()
        bucket = TokenBucket(rate=10, capacity=3, clock=clock)
        assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
        assert bucket.reserve() == pytest.approx(0.1)
        assert bucket.reserve() == pytest.approx(0.2)

    def test_tokens_refill_with_time_but_not_past_capacity(self) -> None:
        """Idle time refills the bucket only up to its capacity."""
        clock = FakeTime()
        bucket = TokenBucket(rate=10, capacity=2, clock=clock)
        bucket.reserve()
        bucket.reserve()
        clock.now = 100.0
        assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]
        assert bucket.reserve() > 0

    def test_a_request_counted_as_several_takes_as_many(self) -> None:
        """A Trello batch call of ten routes spends eleven of the window: the next call waits for room."""
        clock = FakeTime()
        window = SlidingWindow(limit=12, window_s=10, clock=clock)
        assert window.reserve(11) == 0.0
        assert window.reserve() == 0.0
        assert window.reserve() == pytest.approx(10.0)
        bucket = TokenBucket(rate=1, capacity=3, clock=clock)
        assert bucket.reserve(3) == 0.0
        assert bucket.reserve(2) == pytest.approx(2.0)

    @given(st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), min_size=1, max_size=200))
    def test_never_more_than_the_budget_in_any_window(self, gaps: list[float]) -> None:
        """Whatever the arrival pattern, requests granted in [t, t+w] never exceed capacity + rate*w."""
        clock = FakeTime()
        bucket = TokenBucket(rate=10, capacity=5, clock=clock)
        granted: list[float] = []
        for gap in gaps:
            clock.now += gap
            granted.append(clock.now + bucket.reserve())
        for i, start in enumerate(granted):
            for end in granted[i:]:
                count = sum(1 for t in granted if start <= t <= end)
                assert count <= 5 + 10 * (end - start) + 1e-6

    def test_per_window_stays_under_the_budget_in_every_window(self) -> None:
        """A "100 per 10 s" budget: 95 go at once, never more than 95 in any 10 s, and 95 per 10 s sustained."""
        budget = TokenBucket.per_window(100, 10)
        assert isinstance(budget, SlidingWindow)
        assert (budget.limit, budget.window_s) == (95, 10)
        now = [0.0]
        limiter = SlidingWindow(budget.limit, budget.window_s, clock=lambda: now[0])  # a fake clock: nothing sleeps
        starts: list[float] = []
        for _ in range(400):
            starts.append(now[0] + limiter.reserve())
        assert starts[:95] == [0.0] * 95
        assert starts[95] == 10.0
        assert max(sum(1 for s in starts if t <= s < t + 10) for t in starts) == 95
        assert starts[-1] < 45  # 400 requests in 4 windows and a bit: 95% of the budget, not less


class TestSharedBucket:
    def test_one_credential_has_one_bucket_in_the_process(self) -> None:
        """Two connectors with the same token spend one budget; another token has its own."""
        first = shared_bucket("trello", "token-a", 100, 10)
        assert shared_bucket("trello", "token-a", 100, 10) is first
        assert shared_bucket("trello", "token-b", 100, 10) is not first
        assert shared_bucket("asana", "token-a", 100, 10) is not first


class TestRetryAfter:
    @pytest.mark.parametrize(("value", "expected"), [("3", 3.0), (" 0.5 ", 0.5), ("-4", 0.0), (None, None), ("", None)])
    def test_delta_seconds(self, value: str | None, expected: float | None) -> None:
        """Delta-seconds are read as seconds; negative means now; absent means unknown."""
        assert parse_retry_after(value) == expected

    def test_http_date(self) -> None:
        """An HTTP date (what python-jira chokes on) is read as the time until that date."""
        now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
        assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90

    def test_junk_is_unknown_not_an_exception(self) -> None:
        """A malformed header never crashes the connector."""
        assert parse_retry_after("soon-ish") is None


class TestCall:
    def test_retries_a_rate_limit_after_the_requested_wait(self) -> None:
        """A 429 with Retry-After 0.3 s is retried, and not before 0.3 s have passed."""
        answers: list[Exception | str] = [RateLimited("jira", "slow down", retry_after_s=0.3), "ok"]
        started = time.monotonic()

        def request() -> str:
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        assert call(request, bucket=None, policy=FAST) == "ok"
        assert time.monotonic() - started >= 0.3

    def test_gives_up_after_the_attempts_and_raises_the_last_error(self) -> None:
        """A service that keeps failing surfaces its error after the policy's attempts."""
        attempts = 0

        def request() -> None:
            nonlocal attempts
            attempts += 1
            raise ServiceUnavailable("asana", "503", status=503)

        with pytest.raises(ServiceUnavailable):
            call(request, bucket=None, policy=FAST)
        assert attempts == FAST.attempts

    def test_fatal_errors_are_not_retried(self) -> None:
        """A refused credential fails at once: retrying only burns the budget."""
        attempts = 0

        def request() -> None:
            nonlocal attempts
            attempts += 1
            raise AuthFailed("trello", "invalid token", status=401)

        with pytest.raises(AuthFailed):
            call(request, bucket=None, policy=FAST)
        assert attempts == 1

    @pytest.mark.parametrize(
        "lost",
        [
            ConnectionFailed("jira", "connection reset"),
            ServiceUnavailable("trello", "502 Bad Gateway", status=502),
            ServiceUnavailable("asana", "504 Gateway Timeout", status=504),
            ServiceUnavailable("jira", "500", status=500),
            ValueError("Expecting value: line 1 column 1 (char 0)"),
        ],
        ids=["dropped", "502", "504", "500", "unreadable"],
    )
    def test_a_write_whose_answer_is_lost_is_not_repeated(self, lost: Exception) -> None:
        """A non-idempotent write whose answer says nothing (5xx, dropped, unreadable) is sent once: OutcomeUnknown."""
        attempts = 0

        def request() -> None:
            nonlocal attempts
            attempts += 1
            raise lost

        def translate(error: Exception) -> ConnectorError:
            raise error

        with pytest.raises(OutcomeUnknown):
            call(request, bucket=None, policy=FAST, idempotent=False, translate=translate)
        assert attempts == 1

    def test_a_write_refused_with_429_is_sent_again(self) -> None:
        """A 429 refuses before applying: waited out and sent again, even for a create."""
        answers: list[Exception | str] = [RateLimited("trello", "slow down", retry_after_s=0), "made"]

        def request() -> str:
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        assert call(request, bucket=None, policy=FAST, idempotent=False) == "made"

    def test_every_attempt_spends_a_token(self) -> None:
        """Retries count against the credential's budget like first attempts."""
        clock = FakeTime()
        bucket = TokenBucket(rate=1, capacity=10, clock=clock)
        answers: list[Exception | str] = [ServiceUnavailable("trello", "502", status=502), "ok"]

        def request() -> str:
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        call(request, bucket=bucket, policy=FAST)
        waits = [bucket.reserve() for _ in range(9)]
        # Exactly two tokens went to the two attempts: eight more are free, the ninth must wait.
        assert waits[:8] == [0.0] * 8
        assert waits[8] > 0
