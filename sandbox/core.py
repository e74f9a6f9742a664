"""The machinery every emulator shares: HTTP serving, auth hook, rate limits, faults, counters, clock, webhooks.

An emulator (Jira, Trello, Asana) subclasses :class:`Emulator`, declares its routes as werkzeug ``Rule`` objects
whose ``endpoint`` names a handler method, and implements the hooks that make it look like its real service:
how a request authenticates, which rate-limit windows a principal spends, and how an error body is shaped.
Everything else (the threaded server on 127.0.0.1, the admin routes under ``/_sandbox/``, request counters,
fault injection, the adjustable clock, signed webhook delivery) lives here once.

Handlers run under the emulator's re-entrant lock, so state changes are atomic per request; added latency is
slept outside the lock so a slow emulator still serves requests concurrently.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import random
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, NoReturn

import requests
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, make_server
from werkzeug.wrappers import Request, Response

JSON = Any
"""A JSON-serialisable value."""

ADMIN_PREFIX = "/_sandbox"
ACT_AS_HEADER = "X-Sandbox-Act-As"

logging.getLogger("werkzeug").setLevel(logging.WARNING)


class ApiError(Exception):
    """Raised by a handler to answer with an error; the emulator shapes the body like its real service."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        detail: JSON = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.detail = detail


class Clock:
    """Wall-clock time that tests can move forward (token expiry, `updated >=` windows) without sleeping."""

    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()
        self._last = datetime.min.replace(tzinfo=UTC)

    def now(self) -> datetime:
        """The emulated current time (UTC, strictly increasing at millisecond resolution)."""
        with self._lock:
            current = datetime.now(UTC) + self._offset
            current = current.replace(microsecond=current.microsecond // 1000 * 1000)
            if current <= self._last:
                # Two edits in the same millisecond must still be ordered, as the real services order them.
                current = self._last + timedelta(milliseconds=1)
            self._last = current
            return current

    def advance(self, seconds: float) -> None:
        """Move the emulated time forward."""
        with self._lock:
            self._offset += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a person (or the service account) known to the emulator."""

    user_id: str
    email: str
    token: str
    key: str | None = None


class RateWindow:
    """A sliding-window request budget: at most ``limit`` requests per ``window_s`` seconds per key."""

    def __init__(self, name: str, limit: int, window_s: float) -> None:
        self.name = name
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> tuple[bool, int, float]:
        """Spend one request for ``key``: (allowed, remaining, seconds until a slot frees)."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return False, 0, max(0.0, hits[0] + self.window_s - now)
            hits.append(now)
            reset = hits[0] + self.window_s - now
            return True, self.limit - len(hits), reset

    def reset(self) -> None:
        """Forget all spent requests."""
        with self._lock:
            self._hits.clear()


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""The methods a ``writes=True`` fault rule matches."""
GATEWAY_CONTENT_TYPE = "text/html"


@dataclass
class FaultRule:
    """One kind of injected fault. Rules are checked in order; the first that fires decides.

    ``kind``, before the request is processed: ``status`` (answer ``status`` with the tool's error body),
    ``drop`` (close the connection), ``delay`` (add ``delay_ms`` and carry on; not terminal). After it was
    processed (a write is applied, only its answer is lost or late): ``drop_after`` (close without answering),
    ``status_after`` (answer ``status``, a 5xx, with a gateway's page: see :meth:`Emulator.gateway_error`),
    ``delay_after`` (sleep ``delay_ms`` before answering, so a client with a shorter timeout gives up).
    ``rate`` is the probability per matching request; ``times`` caps how often the rule fires (None: no cap);
    ``method``, ``writes`` (only POST, PUT, PATCH, DELETE) and ``path`` (a regular expression searched in the
    path) restrict which requests match; ``after`` lets that many matching requests through first (the second
    transition of a move, not the first). ``echo`` (``status``, ``status_after``): the error text quotes the
    request, its URL with the query string and its headers, as many proxies' error pages do (a Trello URL holds
    the key and token, an ``Authorization`` header the Jira and Asana credentials).
    """

    kind: str = "status"
    status: int = 500
    rate: float = 1.0
    times: int | None = None
    method: str | None = None
    path: str | None = None
    delay_ms: int = 0
    retry_after: str | None = None
    writes: bool = False
    after: int = 0
    echo: bool = False

    KINDS: ClassVar[frozenset[str]] = frozenset(
        {"status", "status_after", "drop", "drop_after", "delay", "delay_after"}
    )

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"fault kind must be one of {sorted(self.KINDS)}, not {self.kind!r}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, not {self.rate}")
        if not isinstance(self.writes, bool):
            raise ValueError(f"fault writes must be true or false, not {self.writes!r}")
        if self.writes and self.method is not None and self.method.upper() not in WRITE_METHODS:
            raise ValueError(f"fault method {self.method!r} is not a write, so writes=True would never fire")
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise ValueError(f"fault status must be an HTTP error (400..599), not {self.status}")
        if self.kind == "status_after" and not 500 <= self.status <= 599:
            raise ValueError(f"a lost answer is a gateway's 5xx (502, 504), not {self.status}")
        if self.after < 0:
            raise ValueError(f"fault after must be a count of requests (>= 0), not {self.after}")
        if self.delay_ms < 0 or (self.kind == "delay_after" and self.delay_ms == 0):
            raise ValueError(f"fault delay_ms must be positive for {self.kind}, not {self.delay_ms}")

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule applies to a request."""
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if self.writes and method not in WRITE_METHODS:
            return False
        return self.path is None or re.search(self.path, path) is not None


class Faults:
    """The fault plan of one emulator, changeable at run time from Python or the admin route."""

    def __init__(self, seed: int | None = None) -> None:
        self.rules: list[FaultRule] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def set(self, rules: Iterable[FaultRule], seed: int | None = None) -> None:
        """Replace the plan."""
        with self._lock:
            self.rules = list(rules)
            if seed is not None:
                self._random.seed(seed)

    def add(self, rule: FaultRule) -> None:
        """Append one rule to the plan."""
        with self._lock:
            self.rules.append(rule)

    def clear(self) -> None:
        """Remove every rule."""
        self.set([])

    def pick(self, method: str, path: str) -> list[FaultRule]:
        """The rules that fire for this request: any number of delays, then at most one terminal fault."""
        fired: list[FaultRule] = []
        with self._lock:
            for rule in self.rules:
                if not rule.matches(method, path):
                    continue
                if rule.after > 0:
                    rule.after -= 1
                    continue
                if self._random.random() >= rule.rate:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                fired.append(rule)
                if rule.kind != "delay":
                    break
        return fired


@dataclass
class Delivery:
    """One webhook delivery attempt, kept so tests can inspect exactly what was sent."""

    url: str
    body: bytes
    headers: dict[str, str]
    status: int | None = None
    error: str | None = None


class WebhookSender:
    """Posts signed webhook bodies from a small thread pool, like the services' own delivery workers."""

    def __init__(self, timeout_s: float = 5.0) -> None:
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-webhook")
        self._session = requests.Session()
        self._timeout_s = timeout_s
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        """Queue one delivery; it is attempted once, in the background."""
        delivery = Delivery(url=url, body=body, headers=dict(headers))
        with self._lock:
            self.deliveries.append(delivery)
            self._pending += 1
        self._pool.submit(self._deliver, delivery)

    def _deliver(self, delivery: Delivery) -> None:
        try:
            response = self._session.post(
                delivery.url, data=delivery.body, headers=delivery.headers, timeout=self._timeout_s
            )
            delivery.status = response.status_code
        except requests.RequestException as exc:
            delivery.error = type(exc).__name__
        finally:
            with self._lock:
                self._pending -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until every queued delivery was attempted; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def close(self) -> None:
        """Stop the delivery pool."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._session.close()


Handler = Callable[..., Response]


class Emulator:
    """Base class of the three API emulators: subclasses add routes, state and the service's manners."""

    name: ClassVar[str] = "emulator"

    def __init__(self, *, latency_ms: int = 0, clock: Clock | None = None, fault_seed: int | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = clock or Clock()
        self.latency_ms = latency_ms
        self.faults = Faults(fault_seed)
        self.webhooks = WebhookSender()
        self.rate_limits_enabled = True
        self._windows: list[RateWindow] = []
        self._counts: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._counts_lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._url_map = Map([*self.routes(), *self._admin_routes()], strict_slashes=False, merge_slashes=False)
        self._adapter_lock = threading.Lock()

    # ----- hooks for subclasses -----------------------------------------------------------------

    def routes(self) -> list[Rule]:
        """The service's routes; each rule's endpoint is the name of a handler method."""
        return []

    def authenticate(self, request: Request) -> Principal:
        """Who sent the request; raise ApiError(401) if nobody valid did."""
        raise ApiError(401, "Unauthorized")

    def principal_for_email(self, email: str) -> Principal:
        """The principal of a seeded person, for the act-as header and the Python act-as API."""
        raise ApiError(400, f"unknown person {email}")

    def rate_windows(self, principal: Principal) -> list[tuple[RateWindow, str]]:
        """The budgets this principal's request spends, with the key it spends them under."""
        return []

    def rate_limited(self, window: RateWindow, retry_after_s: float) -> Response:
        """The service's 429 answer."""
        return self.error_response(
            ApiError(429, "Rate limit exceeded", headers={"Retry-After": str(max(1, round(retry_after_s)))})
        )

    def error_response(self, error: ApiError) -> Response:
        """The service's error body for ``error``."""
        return self.json({"message": error.message}, status=error.status, headers=error.headers)

    def admin_state(self) -> JSON:
        """A JSON summary of the emulator's state, for the admin route and debugging."""
        return {}

    # ----- helpers for handlers ---------------------------------------------------------------

    @staticmethod
    def json(body: JSON, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        """A JSON response."""
        return Response(
            json.dumps(body, separators=(",", ":")),
            status=status,
            headers=dict(headers or {}),
            content_type="application/json;charset=UTF-8",
        )

    @staticmethod
    def empty(status: int = 204) -> Response:
        """A response with no body."""
        return Response(status=status)

    @staticmethod
    def body_json(request: Request) -> JSON:
        """The request's JSON body (form bodies as a dict), or a 400 the way the services answer bad JSON."""
        if request.mimetype == "application/json" or (request.data and request.data.lstrip()[:1] in (b"{", b"[")):
            if not request.data:
                return {}
            try:
                return json.loads(request.data)
            except ValueError as exc:
                raise ApiError(400, f"Unexpected character in request body: {exc}") from exc
        if request.form:
            return {key: request.form.get(key) for key in request.form}
        return {}

    # ----- lifecycle ------------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 in a background thread; returns the base URL."""
        server = make_server("127.0.0.1", port, self.wsgi_app, threaded=True)
        if isinstance(server, ThreadedWSGIServer):
            server.daemon_threads = True  # a hung client connection must not keep the process alive
        self._server = server
        # A short poll interval makes stop() quick; the server sleeps in select() meanwhile, so it costs nothing.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"sandbox-{self.name}", daemon=True
        )
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        """The base URL the emulator serves on."""
        if self._server is None:
            raise RuntimeError(f"the {self.name} emulator is not running")
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        """Stop serving and delivering webhooks."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.webhooks.close()

    # ----- counters ---------------------------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        """Requests served, per route (``METHOD rule``) and per status, admin routes excluded."""
        with self._counts_lock:
            return {
                "total": sum(self._counts.values()),
                "routes": dict(self._counts),
                "statuses": {str(code): n for code, n in self._statuses.items()},
            }

    def request_count(self, route: str | None = None) -> int:
        """Requests served on one route (``"GET /rest/api/3/myself"``), or in all."""
        with self._counts_lock:
            return self._counts[route] if route else sum(self._counts.values())

    def reset_counters(self) -> None:
        """Zero the counters (and the rate-limit windows, so a test starts with a full budget)."""
        with self._counts_lock:
            self._counts.clear()
            self._statuses.clear()
        for window in self._windows:
            window.reset()

    def rate_window(self, name: str, limit: int, window_s: float) -> RateWindow:
        """Create a budget of this emulator (so resets and the admin routes know it)."""
        window = RateWindow(name, limit, window_s)
        self._windows.append(window)
        return window

    # ----- request pipeline -------------------------------------------------------------------------

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """WSGI entry point."""
        request = Request(environ)
        response = self._dispatch(request, environ)
        return response(environ, start_response)

    def _dispatch(self, request: Request, environ: dict[str, Any]) -> Response:
        if request.path.startswith(ADMIN_PREFIX + "/"):
            return self._route(request, admin=True)
        fired = self.faults.pick(request.method, request.path)
        delay_ms = self.latency_ms + sum(rule.delay_ms for rule in fired if rule.kind == "delay")
        if delay_ms:
            time.sleep(delay_ms / 1000)
        terminal = next((rule for rule in fired if rule.kind != "delay"), None)
        if terminal is not None and terminal.kind in ("status", "drop"):
            return self._fault_before(request, environ, terminal)
        response = self._route(request, admin=False)
        if terminal is not None:
            request.get_data()  # a handler that refused early left the body unread: read it as a server would
            response = self._fault_after(environ, terminal, response, request)
        return response

    def _fault_before(self, request: Request, environ: dict[str, Any], rule: FaultRule) -> Response:
        """Fail a request without processing it: drop the connection or answer the tool's error."""
        if rule.kind == "drop":
            self._count(request, 0, None)
            self._drop(environ)
        # Read the body a real server would have received: left unread on a kept-alive connection, werkzeug
        # would parse it as the next request there (and log a 400 for it).
        request.get_data()
        response = self._injected_status(rule, request)
        self._count(request, response.status_code, None)
        return response

    def _fault_after(self, environ: dict[str, Any], rule: FaultRule, response: Response, request: Request) -> Response:
        """Lose or delay the answer of a request that was processed (counters keep the upstream's status)."""
        if rule.kind == "drop_after":
            self._drop(environ)
        if rule.kind == "delay_after":
            # Slept outside the lock: the write is visible to other requests while this answer is late.
            time.sleep(rule.delay_ms / 1000)
            return response
        return self.gateway_error(rule, request)

    @staticmethod
    def _echoed(rule: FaultRule, request: Request | None) -> str:
        """The request as an echoing proxy quotes it (``rule.echo``), on lines after the message; else nothing."""
        if not rule.echo or request is None:
            return ""
        # Authorization first: the connectors quote the first 200 characters, and the test is about that header.
        ordered = sorted(request.headers.items(), key=lambda header: header[0].lower() != "authorization")
        headers = "".join(f"\n{name}: {value}" for name, value in ordered)
        return f"\n{request.method} {request.url}{headers}"

    def _injected_status(self, rule: FaultRule, request: Request | None = None) -> Response:
        if rule.status == 429:
            response = self.rate_limited(RateWindow("injected", 0, 1), 1.0)
            if rule.retry_after is not None:
                response.headers["Retry-After"] = rule.retry_after
            return response
        headers = {"Retry-After": rule.retry_after} if rule.retry_after is not None else None
        return self.error_response(
            ApiError(rule.status, "Injected fault" + self._echoed(rule, request), headers=headers)
        )

    def gateway_error(self, rule: FaultRule, request: Request | None = None) -> Response:
        """A proxy's 5xx for an answer it lost (``status_after``): its own short HTML page, not the tool's JSON.

        No vendor documents this body; the unfavourable reading is the one chosen: the load balancer or edge in
        front of the service answers with its own ``text/html`` page, so only the status code is reliable and a
        client that parses every error body as the tool's JSON breaks here as it would in production. The SDKs
        keep the status: python-jira's ``JIRAError.status_code`` (its body parser falls back to the text),
        py-trello's ``ResourceUnavailable`` and asana's ``ApiException.status``.
        """
        phrase = HTTP_STATUS_CODES.get(rule.status, "Server Error")
        echoed = html.escape(self._echoed(rule, request), quote=False)
        page = f"<html><body><h1>{rule.status} {phrase}</h1>{f'<pre>{echoed}</pre>' if echoed else ''}</body></html>\n"
        headers = {"Retry-After": rule.retry_after} if rule.retry_after is not None else None
        return Response(page, status=rule.status, headers=headers, content_type=GATEWAY_CONTENT_TYPE)

    @staticmethod
    def _drop(environ: dict[str, Any]) -> NoReturn:
        sock: socket.socket = environ["werkzeug.socket"]
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        raise ConnectionAbortedError("sandbox fault: connection dropped")

    def _route(self, request: Request, *, admin: bool) -> Response:
        with self._adapter_lock:
            adapter = self._url_map.bind_to_environ(request.environ)
        rule_text: str | None = None
        try:
            rule, values = adapter.match(return_rule=True)
            rule_text = rule.rule
            handler: Handler = getattr(self, str(rule.endpoint))
            if admin:
                return handler(request, **values)
            principal = self.authenticate(request)
            act_as = request.headers.get(ACT_AS_HEADER)
            if act_as:
                principal = self.principal_for_email(act_as)
            if self.rate_limits_enabled:
                for window, key in self.rate_windows(principal):
                    allowed, _, retry_after = window.hit(key)
                    if not allowed:
                        response = self.rate_limited(window, retry_after)
                        self._count(request, response.status_code, rule_text)
                        return response
            with self.lock:
                response = handler(request, principal, **values)
        except ApiError as error:
            response = self.error_response(error)
        except MethodNotAllowed:
            response = self.error_response(ApiError(405, f"Method {request.method} is not allowed"))
        except NotFound:
            response = self.error_response(ApiError(404, f"No route for {request.method} {request.path}"))
        except HTTPException as exc:
            response = self.error_response(ApiError(exc.code or 500, exc.description or "error"))
        if not admin:
            self._count(request, response.status_code, rule_text)
        return response

    def _count(self, request: Request, status: int, rule_text: str | None) -> None:
        with self._counts_lock:
            self._counts[f"{request.method} {rule_text or request.path}"] += 1
            self._statuses[status] += 1

    # ----- admin routes (loopback tooling, no auth, never counted, rate-limited or faulted) ---------------

    def _admin_routes(self) -> list[Rule]:
        return [
            Rule(f"{ADMIN_PREFIX}/health", endpoint="_admin_health", methods=["GET"]),
            Rule(f"{ADMIN_PREFIX}/counters", endpoint="_admin_counters", methods=["GET", "DELETE"]),
            Rule(f"{ADMIN_PREFIX}/faults", endpoint="_admin_faults", methods=["GET", "PUT", "DELETE"]),
            Rule(f"{ADMIN_PREFIX}/latency", endpoint="_admin_latency", methods=["PUT"]),
            Rule(f"{ADMIN_PREFIX}/rate-limits", endpoint="_admin_rate_limits", methods=["PUT"]),
            Rule(f"{ADMIN_PREFIX}/clock", endpoint="_admin_clock", methods=["GET", "POST"]),
            Rule(f"{ADMIN_PREFIX}/webhook-deliveries", endpoint="_admin_deliveries", methods=["GET"]),
            Rule(f"{ADMIN_PREFIX}/state", endpoint="_admin_state", methods=["GET"]),
        ]

    def _admin_health(self, request: Request) -> Response:
        return self.json({"emulator": self.name, "ok": True})

    def _admin_counters(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.reset_counters()
        return self.json(self.counters())

    def _admin_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.clear()
        elif request.method == "PUT":
            spec = self.body_json(request)
            try:
                rules = [FaultRule(**rule) for rule in spec.get("rules", [])]
            except (TypeError, ValueError) as exc:
                return self.json({"error": str(exc)}, status=400)
            self.faults.set(rules, seed=spec.get("seed"))
        return self.json({"rules": [vars(rule) for rule in self.faults.rules]})

    def _admin_latency(self, request: Request) -> Response:
        self.latency_ms = int(self.body_json(request).get("latency_ms", 0))
        return self.json({"latency_ms": self.latency_ms})

    def _admin_rate_limits(self, request: Request) -> Response:
        self.rate_limits_enabled = bool(self.body_json(request).get("enabled", True))
        return self.json({"enabled": self.rate_limits_enabled})

    def _admin_clock(self, request: Request) -> Response:
        if request.method == "POST":
            self.clock.advance(float(self.body_json(request).get("advance_seconds", 0)))
        return self.json({"now": self.clock.now().isoformat()})

    def _admin_deliveries(self, request: Request) -> Response:
        return self.json(
            [
                {
                    "url": d.url,
                    "headers": d.headers,
                    "body": d.body.decode("utf-8", "replace"),
                    "status": d.status,
                    "error": d.error,
                }
                for d in list(self.webhooks.deliveries)
            ]
        )

    def _admin_state(self, request: Request) -> Response:
        with self.lock:
            return self.json(self.admin_state())


@dataclass
class IdSequence:
    """Deterministic id generator, so a seeded organisation has the same ids on every start."""

    prefix: str = ""
    start: int = 1
    _next: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._next = self.start

    def next_int(self) -> int:
        """The next integer."""
        value = self._next
        self._next += 1
        return value

    def next(self) -> str:
        """The next id as a string with the prefix."""
        return f"{self.prefix}{self.next_int()}"
