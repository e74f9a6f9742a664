"""Asana's manners shared by every route: bearer auth, error bodies, rate limit, envelopes, paging, opt_fields.

Every body is ``{"data": ...}``; errors are ``{"errors": [{"message", "help"}]}`` (500s add a ``phrase``);
lists page with ``limit`` (1..100) and an opaque ``offset`` and answer ``next_page`` ({offset, path, uri} or
null); ``opt_pretty`` indents the JSON.

A token is a person's personal access token (every seeded person has one) or an OAuth access token that a person
granted an app (minted with :meth:`AsanaBase.oauth_token`); the principal's ``key`` is the app's id, or None for a
personal access token. Only OAuth apps see and set a task's custom external data, each app its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from sandbox.asana.feed import Feed
from sandbox.asana.model import Task, User
from sandbox.asana.render import FieldTree, Renderer, Resource, parse_opt_fields
from sandbox.asana.state import AsanaState
from sandbox.core import ApiError, Clock, Emulator, Principal, RateWindow
from sandbox.seed import Seed, token_for

API_PREFIX = "/api/1.0"
ERROR_HELP = (
    "For more information on API status codes and how to handle them, read the docs on errors: "
    "https://developers.asana.com/docs/errors"
)
RATE_LIMITED = "You have made too many requests recently. Please, be chill."
MAX_LIMIT = 100
_OFFSET_KEY = b"syncd-sandbox-asana-offset"


class AsanaBase(Emulator):
    """State, auth and response conventions of the Asana emulator; the routes live in the mixins."""

    name = "asana"

    def __init__(
        self,
        seed: Seed,
        *,
        latency_ms: int = 0,
        clock: Clock | None = None,
        fault_seed: int | None = None,
        requests_per_minute: int = 1500,
    ) -> None:
        super().__init__(latency_ms=latency_ms, clock=clock, fault_seed=fault_seed)
        self.seed = seed
        self.state = AsanaState(seed, self.clock)
        self.renderer = Renderer(self.state)
        self.feed = Feed(self.state, self.renderer, self.webhooks)
        self.tokens = {token_for("asana", user.email): user for user in self.state.users.values()}
        self.oauth_tokens: dict[str, tuple[User, str]] = {}
        self.per_minute = self.rate_window("requests-per-minute", requests_per_minute, 60.0)

    @property
    def hidden_emails(self) -> set[str]:
        """People whose e-mail only they see (add to it): others read them without one, and cannot name them by it."""
        return self.state.hidden_emails

    # ----- Emulator hooks -----------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Principal:
        """Accept ``Authorization: Bearer <token>``: a personal access token, or an OAuth token (``key``: its app)."""
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if token in self.oauth_tokens:
            granter, app = self.oauth_tokens[token]
            return Principal(user_id=granter.gid, email=granter.email, token=token, key=app)
        user = self.tokens.get(token)
        if user is None:
            raise ApiError(401, "Not Authorized")
        return Principal(user_id=user.gid, email=user.email, token=token_for("asana", user.email))

    def oauth_token(self, email: str, app: str = "syncd-test-app") -> str:
        """Return an OAuth access token that the seeded person ``email`` granted the app ``app`` (stable per pair).

        The act-as header swaps the principal for the person's personal access token one, so a request made with
        it acts without an app.
        """
        user = self.state.users_by_email.get(email.lower())
        if user is None:
            raise ApiError(400, f"unknown person {email}")
        token = token_for("asana", f"{app}/{user.email}", kind="oauth")
        self.oauth_tokens[token] = (user, app)
        return token

    def principal_for_email(self, email: str) -> Principal:
        """Return the principal of a seeded person (act-as header and Python actors)."""
        user = self.state.users_by_email.get(email.lower())
        if user is None:
            raise ApiError(400, f"unknown person {email}")
        return Principal(user_id=user.gid, email=user.email, token=token_for("asana", user.email))

    def rate_windows(self, principal: Principal) -> list[tuple[RateWindow, str]]:
        """Spend the per-token requests-per-minute budget (1500 paid, 150 free)."""
        return [(self.per_minute, principal.token)]

    def rate_limited(self, window: RateWindow, retry_after_s: float) -> Response:
        """Answer 429 with Retry-After in whole seconds and Asana's message."""
        retry = str(max(1, math.ceil(retry_after_s)))
        return self.error_response(ApiError(429, RATE_LIMITED, headers={"Retry-After": retry}))

    def error_response(self, error: ApiError) -> Response:
        """Shape an error as Asana does; extra top-level members (the 412's ``sync``) come from ``detail``."""
        entry: dict[str, Any] = {"message": error.message, "help": ERROR_HELP}
        if error.status >= 500:
            digest = hashlib.sha256(error.message.encode()).hexdigest()
            entry["phrase"] = f"{int(digest[:2], 16) % 20 + 2} sandbox squids swim {digest[2:8]}"
        body: dict[str, Any] = {"errors": [entry]}
        if error.status == 404 and error.message.startswith("No route"):
            entry["message"] = "No matching route for request"
        if isinstance(error.detail, dict):
            body |= error.detail
        return self.json(body, status=error.status, headers=error.headers)

    def admin_state(self) -> dict[str, object]:
        """Summarise the workspace for the admin route."""
        return {
            "workspace": self.state.workspace.gid,
            "projects": {p.gid: p.name for p in self.state.projects.values()},
            "tasks": len(self.state.tasks),
            "stories": len(self.state.stories),
            "events": len(self.state.events),
            "webhooks": len(self.state.webhooks),
        }

    # ----- helpers for handlers -------------------------------------------------------------------------------

    def user_of(self, principal: Principal) -> User:
        """Return the user a request acts as."""
        return self.state.users[principal.user_id]

    def task_of(self, principal: Principal, ref: str, param: str = "task") -> Task:
        """Resolve a task reference as ``principal`` may: ``external:<gid>`` only for its own OAuth app."""
        return self.state.task(ref, param, principal.key)

    @staticmethod
    def fields(request: Request) -> FieldTree | None:
        """Return the request's ``opt_fields`` (repeated parameters are joined, as a list would be)."""
        values = request.args.getlist("opt_fields")
        return parse_opt_fields(",".join(values)) if values else None

    def respond(self, request: Request, body: object, status: int = 200) -> Response:
        """Return a JSON response, indented when ``opt_pretty`` is true."""
        if request.args.get("opt_pretty", "").lower() in ("true", "1"):
            return Response(json.dumps(body, indent=2), status=status, content_type="application/json; charset=UTF-8")
        return self.json(body, status=status)

    def view(self, principal: Principal) -> Renderer:
        """The renderer for what ``principal`` may see (its OAuth app's external data, others' visible e-mails)."""
        return self.renderer.for_request(principal.key, self.state.users.get(principal.user_id))

    def one(self, request: Request, principal: Principal, obj: Resource, status: int = 200) -> Response:
        """Answer ``{"data": <full record>}``."""
        return self.respond(request, {"data": self.view(principal).full(obj, self.fields(request))}, status)

    def data(self, request: Request) -> dict[str, Any]:
        """Return the ``data`` object of a JSON request body."""
        body = self.body_json(request)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ApiError(400, "data: Missing input")
        return data

    @staticmethod
    def require(values: Mapping[str, object], key: str) -> str:
        """Return a required parameter (query or body) or Asana's 'Missing input' 400."""
        value = values.get(key)
        if value is None or value == "":
            raise ApiError(400, f"{key}: Missing input")
        return str(value)

    def page(self, request: Request, principal: Principal, items: Sequence[Resource]) -> Response:
        """Answer a list: compact records (or opt_fields), paged by ``limit`` and ``offset``."""
        tree = self.fields(request)
        start, limit = self._window(request)
        chosen = items[start : start + limit] if limit else items[start:]
        view = self.view(principal)
        body: dict[str, Any] = {"data": [view.compact(obj, tree) for obj in chosen]}
        if limit:
            end = start + limit
            body["next_page"] = self._next_page(request, end) if end < len(items) else None
        return self.respond(request, body)

    def _window(self, request: Request) -> tuple[int, int]:
        limit = 0
        raw_limit = request.args.get("limit")
        if raw_limit is not None:
            if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
                raise ApiError(400, f"limit: Must be between 1 and {MAX_LIMIT}, got {raw_limit}")
            limit = int(raw_limit)
        offset = request.args.get("offset")
        if offset is None:
            return 0, limit
        if not limit:
            raise ApiError(400, "offset: An offset can only be used together with limit")
        return self._read_offset(request, offset), limit

    def _query_key(self, request: Request) -> bytes:
        args = sorted((k, v) for k, v in request.args.items(multi=True) if k not in ("offset", "limit", "opt_pretty"))
        return f"{request.path}?{urlencode(args)}".encode()

    def _read_offset(self, request: Request, offset: str) -> int:
        try:
            index_text, signature = base64.urlsafe_b64decode(offset + "=" * (-len(offset) % 4)).decode().split(":")
            index = int(index_text)
        except ValueError:
            raise ApiError(400, "offset: Your pagination token is invalid.") from None
        expected = hmac.new(_OFFSET_KEY, self._query_key(request) + index_text.encode(), "sha256").hexdigest()[:24]
        if not hmac.compare_digest(signature, expected):
            raise ApiError(400, "offset: Your pagination token is invalid.")
        return index

    def _next_page(self, request: Request, index: int) -> dict[str, str]:
        signature = hmac.new(_OFFSET_KEY, self._query_key(request) + str(index).encode(), "sha256").hexdigest()[:24]
        offset = base64.urlsafe_b64encode(f"{index}:{signature}".encode()).decode().rstrip("=")
        args = [(k, v) for k, v in request.args.items(multi=True) if k != "offset"] + [("offset", offset)]
        path = request.path.removeprefix(API_PREFIX) + "?" + urlencode(args)
        return {"offset": offset, "path": path, "uri": request.host_url.rstrip("/") + API_PREFIX + path}
