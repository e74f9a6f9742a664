"""The Trello emulator's manners: how a request authenticates, its rate limits, its error bodies, its webhooks.

Trello authenticates with the application key plus a member's token, either as ``key``/``token`` parameters
(query, form or JSON body) or in an ``Authorization: OAuth oauth_consumer_key="…", oauth_token="…"`` header;
failures are plain-text 401s ("invalid key", "invalid token", "unauthorized permission requested"). Budgets:
100 requests / 10 s per token and 300 / 10 s per key, reported on every answer in ``x-rate-limit-api-*``
headers; a 429 carries ``{"error": "API_TOKEN_LIMIT_EXCEEDED" | "API_KEY_LIMIT_EXCEEDED", ...}`` and, like
Trello, no Retry-After.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from sandbox.core import ApiError, Clock, Emulator, Principal, RateWindow
from sandbox.seed import SERVICE_ACCOUNT, Seed, token_for
from sandbox.trello.cards import CardEditor
from sandbox.trello.model import Action, Member
from sandbox.trello.render import action_json, board_json, card_json, list_json, member_json
from sandbox.trello.seeding import populate
from sandbox.trello.state import TrelloState
from sandbox.trello.webhooks import SIGNATURE_HEADER, delivery_body, signature, watches

TOKEN_LIMIT = 100
KEY_LIMIT = 300
WINDOW_S = 10.0
_OAUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')
_TOKEN_PATH = re.compile(r"^/1/tokens/([^/]+)/")


class _TrackedWindow(RateWindow):
    """A rate window that remembers, per request thread, what it had left (for the x-rate-limit headers)."""

    def __init__(self, name: str, limit: int, window_s: float, spent: threading.local) -> None:
        super().__init__(name, limit, window_s)
        self._spent = spent

    def hit(self, key: str) -> tuple[bool, int, float]:
        allowed, remaining, reset = super().hit(key)
        getattr(self._spent, "windows", {})[self.name] = (self.limit, remaining)
        return allowed, remaining, reset


class TrelloBase(Emulator):
    """State, authentication, limits, errors and webhook fan-out shared by all Trello routes."""

    name = "trello"

    def __init__(
        self, seed: Seed, *, latency_ms: int = 0, clock: Clock | None = None, fault_seed: int | None = None
    ) -> None:
        super().__init__(latency_ms=latency_ms, clock=clock, fault_seed=fault_seed)
        self.key = token_for("trello", SERVICE_ACCOUNT, "key")
        self.secret = token_for("trello", SERVICE_ACCOUNT, "secret")
        self._spent = threading.local()
        self.token_window = _TrackedWindow("api-token", TOKEN_LIMIT, WINDOW_S, self._spent)
        self.key_window = _TrackedWindow("api-key", KEY_LIMIT, WINDOW_S, self._spent)
        self._windows.extend([self.token_window, self.key_window])
        self.state = TrelloState(seed.organisation, self.clock, on_action=self._fan_out)
        self.editor = CardEditor(self.state)
        populate(self.state, self.editor, seed)

    # ----- authentication -------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Principal:
        """Find the key and token wherever Trello accepts them; answer Trello's plain-text 401s."""
        key, token = self._credentials_of(request)
        if key != self.key:
            raise ApiError(401, "invalid key")
        if not token:
            raise ApiError(401, "unauthorized permission requested")
        member = self.state.member_by_token(token)
        if member is None:
            raise ApiError(401, "invalid token")
        return Principal(user_id=member.id, email=member.email, token=token, key=key)

    def _credentials_of(self, request: Request) -> tuple[str | None, str | None]:
        header = request.headers.get("Authorization", "")
        if header.startswith("OAuth "):
            oauth = {name: unquote(value) for name, value in _OAUTH_PARAM.findall(header)}
            return oauth.get("oauth_consumer_key"), oauth.get("oauth_token")
        body = self._safe_body(request)
        key = request.args.get("key") or body.get("key")
        token = request.args.get("token") or body.get("token")
        if not token:
            # POST /1/tokens/{token}/webhooks names its token in the path (py-trello sends only the key).
            match = _TOKEN_PATH.match(request.path)
            token = unquote(match.group(1)) if match else None
        return (str(key) if key else None), (str(token) if token else None)

    def _safe_body(self, request: Request) -> dict[str, Any]:
        try:
            body = self.body_json(request)
        except ApiError:
            return {}
        return body if isinstance(body, dict) else {}

    def principal_for_email(self, email: str) -> Principal:
        """Return the principal of a seeded person (for ``X-Sandbox-Act-As`` and :meth:`act_as`)."""
        try:
            member = self.state.member_by_email(email)
        except KeyError:
            raise ApiError(400, f"unknown person {email}") from None
        return Principal(user_id=member.id, email=member.email, token=member.token, key=self.key)

    def actor(self, principal: Principal) -> Member:
        """Return the member a request acts as."""
        return self.state.members[principal.user_id]

    # ----- limits and errors ----------------------------------------------------------------------------

    def rate_windows(self, principal: Principal) -> list[tuple[RateWindow, str]]:
        """Spend the token's budget and the key's on every request."""
        return [(self.token_window, principal.token), (self.key_window, principal.key or self.key)]

    def rate_limited(self, window: RateWindow, retry_after_s: float) -> Response:
        """Answer Trello's 429: a JSON body naming the exhausted budget, no Retry-After."""
        error = "API_KEY_LIMIT_EXCEEDED" if window.name == "api-key" else "API_TOKEN_LIMIT_EXCEEDED"
        return self.json({"error": error, "message": "Rate limit exceeded"}, status=429)

    def error_response(self, error: ApiError) -> Response:
        """Answer an error in plain text, as Trello does."""
        if error.status == 429:
            return self.json({"error": "API_TOKEN_LIMIT_EXCEEDED", "message": error.message}, 429, error.headers)
        return Response(
            error.message, status=error.status, headers=error.headers, content_type="text/plain; charset=utf-8"
        )

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Serve one request and add the ``x-rate-limit-api-*`` headers of the budgets it spent."""
        self._spent.windows = {}

        def start(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
            for name, (limit, remaining) in getattr(self._spent, "windows", {}).items():
                headers = [
                    *headers,
                    (f"x-rate-limit-{name}-interval-ms", str(int(WINDOW_S * 1000))),
                    (f"x-rate-limit-{name}-max", str(limit)),
                    (f"x-rate-limit-{name}-remaining", str(remaining)),
                ]
            return start_response(status, headers, exc_info)

        return super().wsgi_app(environ, start)

    # ----- webhooks ---------------------------------------------------------------------------------------

    def _fan_out(self, action: Action) -> None:
        """Deliver a new action to every webhook watching one of its models."""
        for webhook in list(self.state.webhooks.values()):
            if not watches(webhook, action):
                continue
            model = self._model_json(webhook.id_model)
            if model is None:
                continue
            body = delivery_body(action_json(self.state, action), model, webhook)
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature(self.secret, body, webhook.callback_url),
            }
            self.webhooks.send(webhook.callback_url, body, headers)

    def _model_json(self, id_model: str) -> dict[str, Any] | None:
        state = self.state
        if id_model in state.boards:
            return board_json(state, state.boards[id_model], "all")
        if id_model in state.cards:
            return card_json(state, state.cards[id_model])
        if id_model in state.lists:
            return list_json(state.lists[id_model], "all")
        if id_model in state.members:
            return member_json(state, state.members[id_model], None)
        return None

    # ----- request helpers ----------------------------------------------------------------------------------

    def params(self, request: Request) -> dict[str, Any]:
        """Return query parameters overlaid with the form or JSON body, as Trello reads them."""
        merged: dict[str, Any] = {key: request.args.get(key) for key in request.args}
        body = self.body_json(request) if request.method in {"POST", "PUT", "DELETE"} else {}
        if isinstance(body, dict):
            merged.update(body)
        return merged

    def credentials(self) -> dict[str, str]:
        """Return what the service account connects with: URL (empty until started), key, its token, the app secret."""
        return {
            "url": self.url if self._server is not None else "",
            "key": self.key,
            "token": token_for("trello", SERVICE_ACCOUNT),
            "secret": self.secret,
        }

    def admin_state(self) -> dict[str, Any]:
        """Return a summary of the emulated account set."""
        state = self.state
        return {
            "boards": len(state.boards),
            "lists": len(state.lists),
            "cards": sum(1 for card in state.cards.values() if not card.deleted),
            "actions": len(state.actions),
            "webhooks": len(state.webhooks),
        }
