"""What every Jira route shares: construction from the seed, authentication, rate limits and error bodies.

Jira Cloud authenticates with Basic ``email:api-token``; Server/Data Center with Basic ``username-or-email:token``
or a Bearer personal access token. Errors always have Jira's body ``{"errorMessages": [...], "errors": {...}}``,
and a burst over the per-user budget answers 429 with the headers Jira Cloud sends.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import timedelta

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.core import ApiError, Clock, Emulator, Principal, RateWindow
from sandbox.jira.fields import FieldReader
from sandbox.jira.model import JiraState
from sandbox.jira.render import Renderer
from sandbox.jira.service import JiraService
from sandbox.jira.webhooks import WebhookHub
from sandbox.seed import SERVICE_ACCOUNT, Seed, token_for

ANONYMOUS = Principal(user_id="", email="", token="")
UNAUTHENTICATED = "Client must be authenticated to access this resource."


class JiraBase(Emulator):
    """The Jira emulator's state and manners; route mixins add the handlers."""

    name = "jira"

    def __init__(
        self,
        seed: Seed,
        *,
        latency_ms: int = 0,
        clock: Clock | None = None,
        fault_seed: int | None = None,
        burst_limit: int = 100,
        burst_window_s: float = 1.0,
    ) -> None:
        self.seed = seed
        self.cloud = seed.jira.deployment == "Cloud"
        super().__init__(latency_ms=latency_ms, clock=clock, fault_seed=fault_seed)
        self.hidden_emails: set[str] = set()
        """Cloud: people whose profile hides their e-mail (``emailAddress`` is left out for others)."""
        self.search_lag_s: float = 0.0
        """Cloud: issues created less than this long ago (emulated clock) are missing from /search/jql."""
        self.indexed_properties: set[str] = set()
        """Issue properties JQL may search (``key``, or ``key.path``): what an installed app's
        ``jiraEntityProperties`` module would declare. Empty, as for an integration on an API token, so
        ``issue.property[...]`` clauses are refused with 400 until a test declares them."""
        self.state = JiraState.from_seed(seed, self.clock.now())
        self.hub = WebhookHub(
            self.state, self.clock, self.webhooks, cloud=self.cloud, indexed=lambda: self.indexed_properties
        )
        self.service = JiraService(self.state, self.clock, cloud=self.cloud, emit=self.hub.dispatch)
        self.burst = self.rate_window("jira-burst-based", burst_limit, burst_window_s)
        self._tokens = {token_for("jira", person.email): person.email for person in seed.people}

    # ----- routing --------------------------------------------------------------------------------

    @property
    def versions(self) -> str:
        """The REST API versions served: Cloud has v2 and v3, Server only v2 (and ``latest``)."""
        return "'2', '3', 'latest'" if self.cloud else "'2', 'latest'"

    def api_rule(self, path: str, endpoint: str, methods: list[str]) -> Rule:
        """A rule under ``/rest/api/<version>``."""
        return Rule(f"/rest/api/<any({self.versions}):version>{path}", endpoint=endpoint, methods=methods)

    def start(self, port: int = 0) -> str:
        """Serve, and tell the webhook payloads which base URL their ``self`` links use."""
        url = super().start(port)
        self.hub.base = url
        return url

    # ----- helpers for handlers -------------------------------------------------------------------

    def renderer(self, principal: Principal, version: str) -> Renderer:
        """The renderer for this request's viewer and version (``latest`` is v2)."""
        return Renderer(
            self.state,
            self.url,
            "3" if version == "3" else "2",
            self.cloud,
            principal.email,
            self.hidden_emails,
        )

    def reader(self, version: str) -> FieldReader:
        """The field parser for this request's version."""
        return FieldReader(self.state, version="3" if version == "3" else "2", cloud=self.cloud)

    @staticmethod
    def viewer(principal: Principal) -> str:
        """The acting person's e-mail (401 for anonymous requests outside serverInfo)."""
        if not principal.email:
            raise ApiError(401, UNAUTHENTICATED)
        return principal.email

    @staticmethod
    def listed(request: Request, name: str) -> list[str]:
        """A multi-valued, comma-separable query parameter (``fields``, ``expand``)."""
        return [part for value in request.args.getlist(name) for part in value.split(",") if part]

    @staticmethod
    def int_arg(request: Request, name: str, default: int) -> int:
        """An integer query parameter, 400 like Jira when it is not a number."""
        raw = request.args.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise ApiError(400, f"The '{name}' parameter must be a number.") from None

    # ----- hooks ------------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Principal:
        """Basic email:token (Cloud), Basic username-or-email:token or Bearer token (Server)."""
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        email: str | None = None
        if scheme.lower() == "basic":
            try:
                login, _, token = base64.b64decode(credential).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                login, token = "", ""
            owner = self._tokens.get(token)
            if owner is not None:
                user = self.state.users[owner]
                names = (user.email.lower(),) if self.cloud else (user.email.lower(), user.username.lower())
                email = owner if login.lower() in names else None
        elif scheme.lower() == "bearer" and not self.cloud:
            email = self._tokens.get(credential.strip())
        elif not header and request.path.rstrip("/").endswith("/serverInfo"):
            return ANONYMOUS
        if email is None:
            headers = {
                "WWW-Authenticate": 'Basic realm="protected-area"',
                "X-Seraph-LoginReason": "AUTHENTICATED_FAILED",
            }
            raise ApiError(401, UNAUTHENTICATED, headers=headers)
        return self.principal_for_email(email)

    def principal_for_email(self, email: str) -> Principal:
        """The principal of a seeded person."""
        user = self.state.users.get(email)
        if user is None:
            raise ApiError(400, f"The user '{email}' does not exist.")
        user_id = user.account_id if self.cloud else user.username
        return Principal(user_id=user_id, email=email, token=token_for("jira", email), key=user.key)

    def rate_windows(self, principal: Principal) -> list[tuple[RateWindow, str]]:
        """The per-user burst budget (anonymous requests share one)."""
        return [(self.burst, principal.email or "anonymous")]

    def rate_limited(self, window: RateWindow, retry_after_s: float) -> Response:
        """Jira Cloud's 429: Retry-After in seconds, X-RateLimit-* and RateLimit-Reason."""
        retry = max(1, math.ceil(retry_after_s))
        reset = (self.clock.now() + timedelta(seconds=retry)).strftime("%Y-%m-%dT%H:%MZ")
        headers = {
            "Retry-After": str(retry),
            "X-RateLimit-Limit": str(window.limit or self.burst.limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
            "RateLimit-Reason": "jira-burst-based",
        }
        return self.error_response(ApiError(429, "Rate limit exceeded.", headers=headers))

    def error_response(self, error: ApiError) -> Response:
        """Jira's error body."""
        if isinstance(error.detail, dict) and "errors" in error.detail:
            body = {"errorMessages": list(error.detail.get("messages", [])), "errors": dict(error.detail["errors"])}
        else:
            body = {"errorMessages": [error.message], "errors": {}}
        return self.json(body, status=error.status, headers=error.headers)

    def credentials(self) -> dict[str, str]:
        """The service account's connection info (the URL is empty until the emulator is started)."""
        url = self.url if self._server is not None else ""
        return {"url": url, "email": SERVICE_ACCOUNT, "token": token_for("jira", SERVICE_ACCOUNT)}
