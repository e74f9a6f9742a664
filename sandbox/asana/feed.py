"""The change feeds: ``/events`` sync tokens and webhooks (handshake, filters, signed deliveries).

Asana's event stream is per resource and token based: the first call (no token) and any call with a token
older than 24 hours answer 412 with a fresh token; a valid token answers what happened since, oldest first, at
most 100 at a time with ``has_more``. Webhooks see the same events: each delivery is a POST of
``{"events": [...]}`` signed with ``X-Hook-Signature`` = hex HMAC-SHA256 of the body under the secret agreed in
the ``X-Hook-Secret`` handshake.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

from sandbox.asana.model import Event, Webhook
from sandbox.asana.render import Renderer
from sandbox.asana.state import AsanaState
from sandbox.core import ApiError, WebhookSender

TOKEN_LIFETIME = timedelta(hours=24)
EVENTS_PER_CALL = 100
SYNC_INVALID = (
    "Sync token invalid or too old. If you are attempting to keep resources in sync, you must fetch the full "
    "dataset for this query now and use the new sync token for the next sync."
)
HANDSHAKE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class SyncToken:
    """Where a client is in one resource's stream, and when the token was issued."""

    resource: str
    position: int
    issued_at: datetime


class SyncExpiredError(ApiError):
    """The 412 answer: the body carries a fresh sync token next to the error."""

    def __init__(self, token: str) -> None:
        super().__init__(412, SYNC_INVALID, detail={"sync": token})


class Feed:
    """Sync tokens of the ``/events`` endpoint and the webhooks of one emulator."""

    def __init__(self, state: AsanaState, renderer: Renderer, sender: WebhookSender) -> None:
        self.state = state
        self.renderer = renderer
        self.sender = sender
        self.tokens: dict[str, SyncToken] = {}
        state.listeners.append(self.deliver)

    def _issue(self, resource: str, position: int) -> str:
        token = hashlib.sha256(f"asana-sync/{resource}/{position}/{len(self.tokens)}".encode()).hexdigest()[:32]
        self.tokens[token] = SyncToken(resource, position, self.state.now())
        return token

    def poll(self, resource: str, token: str | None) -> tuple[list[Event], str, bool]:
        """Return (events since ``token``, the next token, has_more); raise the 412 when there is no valid token."""
        current = self.tokens.get(token or "")
        expired = current is None or self.state.now() - current.issued_at > TOKEN_LIFETIME
        if current is None or expired or current.resource != resource:
            raise SyncExpiredError(self._issue(resource, len(self.state.events)))
        pending = [e for e in self.state.events[current.position :] if resource in e.scopes]
        batch = pending[:EVENTS_PER_CALL]
        position = batch[-1].seq if len(pending) > EVENTS_PER_CALL else len(self.state.events)
        return batch, self._issue(resource, position), len(pending) > EVENTS_PER_CALL

    # ----- webhooks -----------------------------------------------------------------------------------------

    def handshake(self, target: str, secret: str) -> None:
        """POST the X-Hook-Secret handshake; Asana wants 200/204 echoing the same header, else the create fails."""
        try:
            response = requests.post(target, headers={"X-Hook-Secret": secret}, timeout=HANDSHAKE_TIMEOUT_S)
        except requests.RequestException as exc:
            raise ApiError(400, f"The remote server did not respond to the handshake request: {exc}") from exc
        if response.status_code not in (200, 204):
            raise ApiError(
                400, f"The remote server did not respond with 200 OK or 204 No Content ({response.status_code})."
            )
        if response.headers.get("X-Hook-Secret") != secret:
            raise ApiError(400, "The remote server did not respond with the handshake secret.")

    def deliver(self, event: Event) -> None:
        """Send ``event`` to every active webhook that watches one of its scopes and passes its filters."""
        for hook in self.state.webhooks.values():
            if hook.active and hook.resource.gid in event.scopes and _passes(hook, event):
                self.send(hook, [self.renderer.event(event, skinny=True)])

    def send(self, hook: Webhook, events: list[dict[str, Any]]) -> None:
        """POST one signed batch to the hook's target."""
        body = json.dumps({"events": events}, separators=(",", ":")).encode()
        signature = hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Hook-Signature": signature}
        self.sender.send(hook.target, body, headers)
        # Every send of this sender happens under the emulator lock, so the last delivery is this one.
        hook.deliveries.append((self.state.now(), self.sender.deliveries[-1]))


def _passes(hook: Webhook, event: Event) -> bool:
    if not hook.filters:
        return True
    for rule in hook.filters:
        resource = event.resource
        if rule.get("resource_type") not in (None, resource.resource_type):
            continue
        if rule.get("resource_subtype") not in (None, getattr(resource, "resource_subtype", None)):
            continue
        if rule.get("action") not in (None, event.action):
            continue
        fields = rule.get("fields")
        if fields and (event.change is None or event.change.get("field") not in fields):
            continue
        return True
    return False
