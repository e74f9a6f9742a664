"""Routes of the change feeds: ``GET /events`` and the webhooks API."""

from __future__ import annotations

import secrets

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.asana.base import API_PREFIX, AsanaBase
from sandbox.asana.model import Webhook
from sandbox.core import ApiError, Principal


def feed_rules() -> list[Rule]:
    """Return the rules of this module's handlers."""
    p = API_PREFIX
    return [
        Rule(f"{p}/events", endpoint="get_events", methods=["GET"]),
        Rule(f"{p}/webhooks", endpoint="list_webhooks", methods=["GET"]),
        Rule(f"{p}/webhooks", endpoint="create_webhook", methods=["POST"]),
        Rule(f"{p}/webhooks/<webhook_gid>", endpoint="get_webhook", methods=["GET"]),
        Rule(f"{p}/webhooks/<webhook_gid>", endpoint="update_webhook", methods=["PUT"]),
        Rule(f"{p}/webhooks/<webhook_gid>", endpoint="delete_webhook", methods=["DELETE"]),
    ]


class FeedRoutes(AsanaBase):
    """Handlers of events and webhooks."""

    def get_events(self, request: Request, principal: Principal) -> Response:
        """GET /events?resource=&sync=: 412 with a fresh token, or the events since the token."""
        resource = self.state.resource(self.require(request.args, "resource"))
        events, token, has_more = self.feed.poll(resource.gid, request.args.get("sync"))
        data = [self.renderer.event(event, skinny=False) for event in events]
        return self.respond(request, {"data": data, "sync": token, "has_more": has_more})

    def list_webhooks(self, request: Request, principal: Principal) -> Response:
        """GET /webhooks?workspace=[&resource=]."""
        self.state.workspace_ref(self.require(request.args, "workspace"))
        hooks = list(self.state.webhooks.values())
        if request.args.get("resource"):
            hooks = [hook for hook in hooks if hook.resource.gid == request.args["resource"]]
        return self.page(request, principal, hooks)

    def create_webhook(self, request: Request, principal: Principal) -> Response:
        """POST /webhooks: handshake with the target first; only an echoed X-Hook-Secret establishes it."""
        data = self.data(request)
        resource = self.state.resource(self.require(data, "resource"))
        target = self.require(data, "target")
        filters = data.get("filters") or []
        if not isinstance(filters, list) or not all(isinstance(f, dict) for f in filters):
            raise ApiError(400, "filters: Must be a list of objects")
        if resource is self.state.workspace and not filters:
            raise ApiError(400, "filters: Workspace webhooks require filters")
        secret = secrets.token_hex(16)
        self.feed.handshake(target, secret)
        hook = Webhook(
            gid=self.state.new_gid(),
            resource=resource,
            target=target,
            secret=secret,
            created_at=self.state.now(),
            filters=filters,
            last_success_at=self.state.now(),
        )
        self.state.webhooks[hook.gid] = hook
        # As the OpenAPI description's 201 shows: the secret beside ``data``, for whoever created the webhook (the
        # handshake may have reached another process behind the target's load balancer).
        data = self.view(principal).full(hook, self.fields(request))
        return self.respond(request, {"data": data, "X-Hook-Secret": secret}, 201)

    def get_webhook(self, request: Request, principal: Principal, webhook_gid: str) -> Response:
        """GET /webhooks/{gid}."""
        return self.one(request, principal, self.state.webhook(webhook_gid))

    def update_webhook(self, request: Request, principal: Principal, webhook_gid: str) -> Response:
        """PUT /webhooks/{gid}: replace the filters."""
        hook = self.state.webhook(webhook_gid)
        filters = self.data(request).get("filters") or []
        if not isinstance(filters, list) or not all(isinstance(f, dict) for f in filters):
            raise ApiError(400, "filters: Must be a list of objects")
        hook.filters = filters
        return self.one(request, principal, hook)

    def delete_webhook(self, request: Request, principal: Principal, webhook_gid: str) -> Response:
        """DELETE /webhooks/{gid}."""
        del self.state.webhooks[self.state.webhook(webhook_gid).gid]
        return self.respond(request, {"data": {}})
