"""The machinery every emulator shares: routing, auth hook, counters, faults, rate limits, clock, webhooks."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import requests
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.core import ACT_AS_HEADER, ApiError, Clock, Emulator, FaultRule, Principal, RateWindow


class CounterEmulator(Emulator):
    """A minimal service: a counter that authenticated people increment, with a 3-per-second budget."""

    name = "counter"
    PEOPLE: ClassVar[dict[str, str]] = {"t-ana": "ana@corp.example", "t-ben": "ben@corp.example"}

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.value = 0
        self.last_actor = ""
        self.budget = self.rate_window("per-token", 3, 1.0)

    def routes(self) -> list[Rule]:
        return [
            Rule("/count", endpoint="increment", methods=["POST"]),
            Rule("/count", endpoint="read", methods=["GET"]),
        ]

    def authenticate(self, request: Request) -> Principal:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.PEOPLE:
            raise ApiError(401, "who are you?")
        return Principal(user_id=self.PEOPLE[token], email=self.PEOPLE[token], token=token)

    def principal_for_email(self, email: str) -> Principal:
        for token, known in self.PEOPLE.items():
            if known == email:
                return Principal(user_id=email, email=email, token=token)
        raise ApiError(400, f"unknown person {email}")

    def rate_windows(self, principal: Principal) -> list[tuple[RateWindow, str]]:
        return [(self.budget, principal.token)]

    def increment(self, request: Request, principal: Principal) -> Response:
        self.value += 1
        self.last_actor = principal.email
        return self.json({"value": self.value}, status=201)

    def read(self, request: Request, principal: Principal) -> Response:
        return self.json({"value": self.value})


@pytest.fixture
def emulator() -> Iterator[CounterEmulator]:
    service = CounterEmulator(fault_seed=7)
    service.rate_limits_enabled = False
    service.start()
    yield service
    service.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer t-ana"
        yield session


class TestRouting:
    def test_authenticated_request_reaches_its_handler(self, emulator: CounterEmulator, http: requests.Session) -> None:
        """A valid request runs the handler and its JSON comes back."""
        response = http.post(f"{emulator.url}/count", timeout=5)
        assert response.status_code == 201
        assert response.json() == {"value": 1}
        assert response.headers["Content-Type"].startswith("application/json")

    def test_bad_credentials_get_the_services_401(self, emulator: CounterEmulator) -> None:
        """authenticate() decides; its ApiError is shaped by error_response()."""
        response = requests.post(f"{emulator.url}/count", headers={"Authorization": "Bearer nope"}, timeout=5)
        assert response.status_code == 401
        assert response.json() == {"message": "who are you?"}
        assert emulator.value == 0

    def test_unknown_route_and_wrong_method_are_404_and_405(
        self, emulator: CounterEmulator, http: requests.Session
    ) -> None:
        """Routing errors use the service's error body too."""
        assert http.get(f"{emulator.url}/nowhere", timeout=5).status_code == 404
        assert http.delete(f"{emulator.url}/count", timeout=5).status_code == 405

    def test_act_as_header_makes_the_request_a_persons(self, emulator: CounterEmulator, http: requests.Session) -> None:
        """The HTTP act-as-a-human API: any authenticated request can act as a named person."""
        http.post(f"{emulator.url}/count", headers={ACT_AS_HEADER: "ben@corp.example"}, timeout=5)
        assert emulator.last_actor == "ben@corp.example"
        assert http.post(f"{emulator.url}/count", headers={ACT_AS_HEADER: "x@y"}, timeout=5).status_code == 400


class TestCounters:
    def test_counts_per_route_and_status_but_not_admin_routes(
        self, emulator: CounterEmulator, http: requests.Session
    ) -> None:
        """Benchmarks and budget tests read exact request counts per route."""
        http.post(f"{emulator.url}/count", timeout=5)
        http.post(f"{emulator.url}/count", timeout=5)
        http.get(f"{emulator.url}/count", timeout=5)
        requests.get(f"{emulator.url}/_sandbox/health", timeout=5)
        counters = requests.get(f"{emulator.url}/_sandbox/counters", timeout=5).json()
        assert counters["routes"] == {"POST /count": 2, "GET /count": 1}
        assert counters["statuses"] == {"201": 2, "200": 1}
        assert counters["total"] == 3
        assert emulator.request_count("POST /count") == 2

    def test_reset_zeroes_counters(self, emulator: CounterEmulator, http: requests.Session) -> None:
        """DELETE on the admin counters route starts a fresh count."""
        http.get(f"{emulator.url}/count", timeout=5)
        assert requests.delete(f"{emulator.url}/_sandbox/counters", timeout=5).json()["total"] == 0
        assert emulator.request_count() == 0


class TestFaults:
    def test_injected_status_fires_exactly_times(self, emulator: CounterEmulator, http: requests.Session) -> None:
        """A rule with times=2 fails two matching requests and then lets traffic through, unprocessed meanwhile."""
        emulator.faults.add(FaultRule(kind="status", status=503, times=2, method="POST", retry_after="2"))
        statuses = [http.post(f"{emulator.url}/count", timeout=5).status_code for _ in range(3)]
        assert statuses == [503, 503, 201]
        assert emulator.value == 1

    def test_injected_429_carries_retry_after(self, emulator: CounterEmulator, http: requests.Session) -> None:
        """An injected 429 is the emulator's own rate-limit answer, with the requested Retry-After."""
        emulator.faults.add(FaultRule(kind="status", status=429, times=1, retry_after="Wed, 21 Oct 2026 07:28:00 GMT"))
        response = http.get(f"{emulator.url}/count", timeout=5)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "Wed, 21 Oct 2026 07:28:00 GMT"

    def test_drop_before_processing_changes_nothing(self, emulator: CounterEmulator, http: requests.Session) -> None:
        """A dropped connection surfaces as a connection error and the write did not happen."""
        emulator.faults.add(FaultRule(kind="drop", times=1))
        with pytest.raises(requests.ConnectionError):
            http.post(f"{emulator.url}/count", timeout=5)
        assert emulator.value == 0

    def test_drop_after_processing_loses_only_the_answer(
        self, emulator: CounterEmulator, http: requests.Session
    ) -> None:
        """The hard case for a sync engine: the create happened, but the client never heard back."""
        emulator.faults.add(FaultRule(kind="drop_after", times=1, method="POST"))
        with pytest.raises(requests.ConnectionError):
            http.post(f"{emulator.url}/count", timeout=5)
        assert emulator.value == 1

    @pytest.mark.parametrize("status", [502, 504])
    def test_status_after_applies_the_write_and_answers_a_gateway_page(
        self, emulator: CounterEmulator, http: requests.Session, status: int
    ) -> None:
        """The write is applied, yet the client sees a gateway's 5xx with an HTML page it cannot parse as JSON."""
        emulator.faults.add(FaultRule(kind="status_after", status=status, times=1, writes=True))
        response = http.post(f"{emulator.url}/count", timeout=5)
        assert response.status_code == status
        assert response.headers["Content-Type"].startswith("text/html")
        assert f"<h1>{status} " in response.text
        with pytest.raises(ValueError, match="Expecting value"):
            response.json()
        assert emulator.value == 1
        assert http.get(f"{emulator.url}/count", timeout=5).json() == {"value": 1}

    def test_delay_after_applies_the_write_but_the_client_gives_up(
        self, emulator: CounterEmulator, http: requests.Session
    ) -> None:
        """A client whose timeout is shorter than the late answer times out although the write applied."""
        emulator.faults.add(FaultRule(kind="delay_after", delay_ms=1500, times=1, method="POST"))
        started = time.monotonic()
        with pytest.raises(requests.Timeout):
            http.post(f"{emulator.url}/count", timeout=0.3)
        assert time.monotonic() - started < 1.0
        assert emulator.value == 1
        # The write is visible to others while its own answer is still late.
        assert http.get(f"{emulator.url}/count", timeout=5).json() == {"value": 1}

    def test_writes_rule_leaves_reads_alone(self, emulator: CounterEmulator, http: requests.Session) -> None:
        """``writes=True`` fires on POST, PUT, PATCH and DELETE only: a GET passes untouched."""
        emulator.faults.add(FaultRule(kind="status", status=503, writes=True))
        assert http.get(f"{emulator.url}/count", timeout=5).status_code == 200
        assert http.post(f"{emulator.url}/count", timeout=5).status_code == 503
        assert emulator.value == 0

    def test_after_lets_the_first_matching_requests_through(
        self, emulator: CounterEmulator, http: requests.Session
    ) -> None:
        """``after=2`` lets two matching requests pass, then fires (``times`` counts only the ones it hit)."""
        emulator.faults.add(FaultRule(kind="status", status=503, method="POST", after=2, times=1))
        answers = [http.post(f"{emulator.url}/count", timeout=5).status_code for _ in range(4)]
        assert answers == [201, 201, 503, 201]
        assert emulator.value == 3

    @pytest.mark.parametrize(
        ("rule", "message"),
        [
            ({"kind": "status", "after": -1}, "count of requests"),
            ({"kind": "status_after", "status": 404}, "gateway's 5xx"),
            ({"kind": "status", "status": 200}, "HTTP error"),
            ({"kind": "delay_after"}, "delay_ms must be positive"),
            ({"kind": "drop", "writes": "yes"}, "writes must be true or false"),
            ({"kind": "drop", "writes": True, "method": "GET"}, "is not a write"),
        ],
    )
    def test_new_fields_are_validated(self, emulator: CounterEmulator, rule: dict[str, object], message: str) -> None:
        """The admin route builds FaultRule(**rule): a rule that could not mean anything is a 400."""
        answer = requests.put(f"{emulator.url}/_sandbox/faults", json={"rules": [rule]}, timeout=5)
        assert answer.status_code == 400
        assert message in answer.json()["error"]

    def test_admin_route_accepts_the_lost_answer_kinds(self, emulator: CounterEmulator, http: requests.Session) -> None:
        """``status_after``, ``delay_after`` and ``writes`` can be set over HTTP and are listed back."""
        rules = [
            {"kind": "status_after", "status": 504, "writes": True, "times": 1},
            {"kind": "delay_after", "delay_ms": 50, "writes": True},
        ]
        listed = requests.put(f"{emulator.url}/_sandbox/faults", json={"rules": rules}, timeout=5).json()
        assert [(r["kind"], r["writes"]) for r in listed["rules"]] == [("status_after", True), ("delay_after", True)]
        assert http.post(f"{emulator.url}/count", timeout=5).status_code == 504
        assert http.post(f"{emulator.url}/count", timeout=5).status_code == 201
        assert emulator.value == 2

    def test_delay_and_path_filter(self, emulator: CounterEmulator, http: requests.Session) -> None:
        """A delay rule slows only the requests its path matches."""
        emulator.faults.add(FaultRule(kind="delay", delay_ms=300, path="^/count$", method="GET"))
        started = time.monotonic()
        http.get(f"{emulator.url}/count", timeout=5)
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        http.post(f"{emulator.url}/count", timeout=5)
        assert time.monotonic() - started < 0.3

    def test_error_rate_is_roughly_the_configured_rate(self, emulator: CounterEmulator, http: requests.Session) -> None:
        """rate=0.2 fails about a fifth of requests (seeded, so the figure is stable)."""
        emulator.faults.add(FaultRule(kind="status", status=500, rate=0.2))
        failures = sum(http.get(f"{emulator.url}/count", timeout=5).status_code == 500 for _ in range(200))
        assert 20 <= failures <= 60

    def test_admin_route_sets_and_clears_faults(self, emulator: CounterEmulator, http: requests.Session) -> None:
        """Fault plans can be changed over HTTP by a process that does not hold the emulator object."""
        body = {"rules": [{"kind": "status", "status": 500, "times": 1}], "seed": 1}
        assert requests.put(f"{emulator.url}/_sandbox/faults", json=body, timeout=5).status_code == 200
        assert http.get(f"{emulator.url}/count", timeout=5).status_code == 500
        bad = requests.put(f"{emulator.url}/_sandbox/faults", json={"rules": [{"kind": "explode"}]}, timeout=5)
        assert bad.status_code == 400
        assert "fault kind" in bad.json()["error"]
        requests.delete(f"{emulator.url}/_sandbox/faults", timeout=5)
        assert emulator.faults.rules == []


class TestRateLimits:
    def test_budget_answers_429_then_recovers(self, emulator: CounterEmulator, http: requests.Session) -> None:
        """Past the budget the service says 429 with Retry-After; after the window it serves again."""
        emulator.rate_limits_enabled = True
        statuses = [http.get(f"{emulator.url}/count", timeout=5).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = http.get(f"{emulator.url}/count", timeout=5)
        assert int(limited.headers["Retry-After"]) >= 1
        time.sleep(1.05)
        assert http.get(f"{emulator.url}/count", timeout=5).status_code == 200

    def test_budgets_are_per_key(self, emulator: CounterEmulator) -> None:
        """One token's burst does not spend another token's budget."""
        emulator.rate_limits_enabled = True
        for _ in range(3):
            requests.get(f"{emulator.url}/count", headers={"Authorization": "Bearer t-ana"}, timeout=5)
        ben = requests.get(f"{emulator.url}/count", headers={"Authorization": "Bearer t-ben"}, timeout=5)
        assert ben.status_code == 200

    def test_sliding_window_reports_remaining(self) -> None:
        """The window counts down and refuses at the limit."""
        window = RateWindow("w", 2, 10.0)
        assert window.hit("k")[:2] == (True, 1)
        assert window.hit("k")[:2] == (True, 0)
        allowed, remaining, retry_after = window.hit("k")
        assert (allowed, remaining) == (False, 0)
        assert 9.0 < retry_after <= 10.0


class TestClock:
    def test_now_is_strictly_increasing(self) -> None:
        """Two edits in the same millisecond still get distinct, ordered timestamps."""
        clock = Clock()
        stamps = [clock.now() for _ in range(500)]
        assert all(a < b for a, b in itertools.pairwise(stamps))
        assert all(stamp.microsecond % 1000 == 0 for stamp in stamps)

    def test_advance_moves_time_forward(self, emulator: CounterEmulator) -> None:
        """Tests move time (token expiry) without sleeping, from Python or over HTTP."""
        before = emulator.clock.now()
        requests.post(f"{emulator.url}/_sandbox/clock", json={"advance_seconds": 86_400}, timeout=5)
        assert (emulator.clock.now() - before).total_seconds() >= 86_400


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []  # noqa: RUF012 - shared by design: the test reads what arrived

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.headers["X-Signature"], body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


class TestWebhooks:
    def test_sender_posts_body_and_headers_and_records_the_outcome(self, emulator: CounterEmulator) -> None:
        """Deliveries arrive as sent and the attempt is recorded for inspection."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_port}/hook"
            emulator.webhooks.send(url, b'{"a":1}', {"X-Signature": "sig", "Content-Type": "application/json"})
            emulator.webhooks.send("http://127.0.0.1:9/closed", b"{}", {})
            assert emulator.webhooks.wait_idle()
        finally:
            server.shutdown()
            server.server_close()
        assert _Receiver.received == [("sig", b'{"a":1}')]
        outcomes = {d.url: (d.status, d.error) for d in emulator.webhooks.deliveries}
        assert outcomes[url] == (200, None)
        assert outcomes["http://127.0.0.1:9/closed"][1] == "ConnectionError"
        listed = requests.get(f"{emulator.url}/_sandbox/webhook-deliveries", timeout=5).json()
        assert {d["url"] for d in listed} == set(outcomes)
