"""Jira admin webhooks: registrations, Jira's payload shape, JQL filters, signatures and delivery.

Each event that a registration subscribes to, and whose issue matches the registration's JQL filter, is POSTed
with Jira's body (``timestamp``, ``webhookEvent``, ``issue_event_type_name``, ``user``, ``issue``, ``changelog``,
``comment``), a unique ``X-Atlassian-Webhook-Identifier`` and, when the registration has a secret,
``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo

from sandbox.core import JSON, ApiError, Clock, WebhookSender
from sandbox.jira.jql import JqlError, parse
from sandbox.jira.jqleval import Context, compile_query
from sandbox.jira.model import JiraState, Webhook
from sandbox.jira.render import Renderer, select_fields
from sandbox.jira.service import Event

EVENTS = frozenset(
    {
        "jira:issue_created",
        "jira:issue_updated",
        "jira:issue_deleted",
        "comment_created",
        "comment_updated",
        "comment_deleted",
    }
)
FILTER_KEY = "issue-related-events-section"


class WebhookHub:
    """Holds the registrations of one site and delivers its events."""

    def __init__(
        self,
        state: JiraState,
        clock: Clock,
        sender: WebhookSender,
        *,
        cloud: bool,
        indexed: Callable[[], Iterable[str]] = frozenset,
    ) -> None:
        self.state = state
        self.clock = clock
        self.sender = sender
        self.cloud = cloud
        self.indexed = indexed
        """The issue properties JQL filters may search, read at each use (the emulator's set can change)."""
        self.base = ""

    def register(self, body: JSON, actor: str) -> Webhook:
        """Validate and store a registration from a request body."""
        if not isinstance(body, dict):
            raise ApiError(400, "The webhook body must be a JSON object.")
        name, url = body.get("name"), body.get("url")
        events = body.get("events") or []
        errors = {}
        if not isinstance(name, str) or not name.strip():
            errors["name"] = "Webhook name cannot be empty."
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            errors["url"] = "Webhook URL is invalid."
        if not isinstance(events, list):
            errors["events"] = "Webhook events must be a list."
        elif unknown := [e for e in events if e not in EVENTS]:
            errors["events"] = f"Unsupported webhook events: {', '.join(map(str, unknown))}"
        jql = str((body.get("filters") or {}).get(FILTER_KEY) or "")
        if jql:
            try:
                compile_query(parse(jql), self._context(actor))
            except JqlError as error:
                errors["filters"] = " ".join(error.messages)
        if errors:
            raise ApiError(400, "; ".join(errors.values()), detail={"errors": errors, "messages": []})
        webhook = Webhook(
            id=self.state.next_webhook_id,
            name=str(name),
            url=str(url),
            events=list(events),
            jql=jql,
            secret=body.get("secret") or None,
            enabled=bool(body.get("enabled", True)),
            exclude_body=bool(body.get("excludeBody", False)),
            updated_by=actor,
            updated=self.clock.now(),
        )
        self.state.next_webhook_id += 1
        self.state.webhooks[webhook.id] = webhook
        return webhook

    def describe(self, webhook: Webhook) -> JSON:
        """The registration as Jira lists it (the secret is write-only)."""
        user = self.state.users[webhook.updated_by]
        return {
            "name": webhook.name,
            "url": webhook.url,
            "excludeBody": webhook.exclude_body,
            "filters": {FILTER_KEY: webhook.jql},
            "events": webhook.events,
            "enabled": webhook.enabled,
            "self": f"{self.base}/rest/webhooks/1.0/webhook/{webhook.id}",
            "lastUpdatedUser": user.account_id if self.cloud else user.key,
            "lastUpdatedDisplayName": user.display_name,
            "lastUpdated": int(webhook.updated.timestamp() * 1000),
        }

    def _context(self, user: str) -> Context:
        zone = ZoneInfo(self.state.seed.jira.timezone)
        return Context(self.state, self.clock.now(), zone, user, self.cloud, frozenset(self.indexed()))

    def matches(self, webhook: Webhook, name: str, event: Event) -> bool:
        """Whether a registration wants this event (under this webhook event name) for this issue."""
        if not webhook.enabled or name not in webhook.events:
            return False
        if not webhook.jql:
            return True
        try:
            predicate, _ = compile_query(parse(webhook.jql), self._context(webhook.updated_by))
        except JqlError:
            # The filter no longer compiles (a property it searched is no longer indexed): it matches nothing,
            # the unfavourable reading, rather than failing the write that raised the event.
            return False
        return predicate(event.issue)

    def payload(self, name: str, event: Event, moment_ms: int) -> JSON:
        """Jira's webhook body for an event sent as ``name`` (REST v2 shapes)."""
        renderer = Renderer(self.state, self.base, "2", self.cloud, self.state.service_email)
        body: dict[str, JSON] = {
            "timestamp": moment_ms,
            "webhookEvent": name,
            "issue_event_type_name": event.type_name,
            "user": renderer.user(event.actor),
            "issue": renderer.issue(event.issue, select_fields(["*navigable"], custom=renderer.state.custom_fields)),
        }
        if event.history is not None:
            body["changelog"] = {
                "id": event.history.id,
                "items": [renderer.change_item(item) for item in event.history.items],
            }
        if event.comment is not None:
            body["comment"] = renderer.comment(event.issue, event.comment)
        if name.startswith("comment_"):
            del body["user"]
            del body["issue_event_type_name"]
        return body

    def dispatch(self, event: Event) -> None:
        """Deliver an event to every registration that wants it (called under the emulator's lock)."""
        moment_ms = int(self.clock.now().timestamp() * 1000)
        # A comment change is also announced as an issue update (issue_commented, ...), as Jira does.
        names = [event.name, "jira:issue_updated"] if event.comment is not None else [event.name]
        for name in names:
            for webhook in list(self.state.webhooks.values()):
                if self.matches(webhook, name, event):
                    self._send(webhook, self.payload(name, event, moment_ms))

    def _send(self, webhook: Webhook, payload: JSON) -> None:
        body = b"" if webhook.exclude_body else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Atlassian Webhook HTTP Client",
            "X-Atlassian-Webhook-Identifier": str(uuid.uuid4()),
        }
        if webhook.secret:
            digest = hmac.new(webhook.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature"] = f"sha256={digest}"
        self.sender.send(webhook.url, body, headers)
