"""Routes for the activity log (actions, comments), attachments and webhooks."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.core import JSON, ApiError, Principal
from sandbox.trello import actions
from sandbox.trello.model import Action, Webhook
from sandbox.trello.render import action_json, attachment_json, webhook_json
from sandbox.trello.routes_cards import CardRoutes
from sandbox.trello.state import not_found
from sandbox.trello.webhooks import check_callback

DUPLICATE_WEBHOOK = "A webhook with that callback, model, and token already exists"


class ActivityRoutes(CardRoutes):
    """Actions, comments, attachments and webhooks."""

    def activity_rules(self) -> list[Rule]:
        """Return the routes of this group."""
        return [
            Rule("/1/boards/<board>/actions", endpoint="get_board_actions", methods=["GET"]),
            Rule("/1/cards/<card>/actions", endpoint="get_card_actions", methods=["GET"]),
            Rule("/1/lists/<list_id>/actions", endpoint="get_list_actions", methods=["GET"]),
            Rule("/1/members/<member>/actions", endpoint="get_member_actions", methods=["GET"]),
            Rule("/1/actions/<action_id>", endpoint="get_action", methods=["GET"]),
            Rule("/1/actions/<action_id>", endpoint="put_action", methods=["PUT"]),
            Rule("/1/actions/<action_id>/text", endpoint="put_action", methods=["PUT"]),
            Rule("/1/actions/<action_id>", endpoint="delete_action", methods=["DELETE"]),
            Rule("/1/cards/<card>/actions/comments", endpoint="post_comment", methods=["POST"]),
            Rule("/1/cards/<card>/actions/<action_id>/comments", endpoint="put_comment", methods=["PUT"]),
            Rule("/1/cards/<card>/actions/<action_id>/comments", endpoint="delete_comment", methods=["DELETE"]),
            Rule("/1/cards/<card>/attachments", endpoint="get_attachments", methods=["GET"]),
            Rule("/1/cards/<card>/attachments", endpoint="post_attachment", methods=["POST"]),
            Rule("/1/cards/<card>/attachments/<attachment_id>", endpoint="get_attachment", methods=["GET"]),
            Rule("/1/cards/<card>/attachments/<attachment_id>", endpoint="delete_attachment", methods=["DELETE"]),
            Rule("/1/webhooks", endpoint="post_webhook", methods=["POST"]),
            Rule("/1/webhooks/<webhook_id>", endpoint="get_webhook", methods=["GET"]),
            Rule("/1/webhooks/<webhook_id>", endpoint="put_webhook", methods=["PUT"]),
            Rule("/1/webhooks/<webhook_id>", endpoint="delete_webhook", methods=["DELETE"]),
            Rule("/1/tokens/<token>/webhooks", endpoint="get_token_webhooks", methods=["GET"]),
            Rule("/1/tokens/<token>/webhooks", endpoint="post_webhook", methods=["POST"]),
            Rule("/1/tokens/<token>/webhooks/<webhook_id>", endpoint="get_webhook", methods=["GET"]),
            Rule("/1/tokens/<token>/webhooks/<webhook_id>", endpoint="put_webhook", methods=["PUT"]),
            Rule("/1/tokens/<token>/webhooks/<webhook_id>", endpoint="delete_webhook", methods=["DELETE"]),
        ]

    # ----- actions -----------------------------------------------------------------------------------------

    def _render(self, request: Request, action: Action) -> dict[str, Any]:
        args = request.args
        return action_json(
            self.state,
            action,
            fields=args.get("fields"),
            member_creator=args.get("memberCreator", "true") != "false",
            member_creator_fields=args.get("memberCreator_fields"),
            member=args.get("member", "true") != "false",
            member_fields=args.get("member_fields"),
        )

    def _actions_body(self, request: Request, found: list[Action]) -> Response:
        return self.json([self._render(request, action) for action in found])

    def get_board_actions(self, request: Request, principal: Principal, board: str) -> Response:
        """GET /1/boards/{id}/actions: all types by default, newest first."""
        found = self.board_for(principal, board)
        log = (a for a in self.state.actions if a.id_board == found.id)
        return self._actions_body(request, actions.query(log, request.args, actions.BOARD_DEFAULT_FILTER))

    def get_card_actions(self, request: Request, principal: Principal, card: str) -> Response:
        """GET /1/cards/{id}/actions: ``commentCard,updateCard:idList`` by default, like Trello."""
        found = self.card_for(principal, card)
        log = (a for a in self.state.actions if a.id_card == found.id)
        return self._actions_body(request, actions.query(log, request.args, actions.CARD_DEFAULT_FILTER))

    def get_list_actions(self, request: Request, principal: Principal, list_id: str) -> Response:
        """GET /1/lists/{id}/actions."""
        found = self.list_for(principal, list_id)
        log = (a for a in self.state.actions if found.id in {a.id_list, a.data.get("listBefore", {}).get("id")})
        return self._actions_body(request, actions.query(log, request.args, actions.BOARD_DEFAULT_FILTER))

    def get_member_actions(self, request: Request, principal: Principal, member: str) -> Response:
        """GET /1/members/{id}/actions: what the member did, on boards the requester can see."""
        found = self.state.member(member, me=self.actor(principal))
        visible = {board.id for board in self.state.boards.values() if principal.user_id in board.members}
        log = (a for a in self.state.actions if a.id_member_creator == found.id and a.id_board in visible)
        return self._actions_body(request, actions.query(log, request.args, actions.BOARD_DEFAULT_FILTER))

    def _visible_action(self, principal: Principal, action_id: str) -> Action:
        action = self.state.action(action_id)
        if action.id_board is not None:
            self.board_for(principal, action.id_board)
        return action

    def get_action(self, request: Request, principal: Principal, action_id: str) -> Response:
        """GET /1/actions/{id}."""
        return self.json(self._render(request, self._visible_action(principal, action_id)))

    def put_action(self, request: Request, principal: Principal, action_id: str) -> Response:
        """PUT /1/actions/{id} (``text``) or /1/actions/{id}/text (``value``): edit one's own comment."""
        params = self.params(request)
        text = params.get("text", params.get("value"))
        comment = self.editor.comment_action(None, action_id, self.actor(principal))
        self._visible_action(principal, action_id)
        self.editor.edit_comment(comment, text, self.actor(principal))
        return self.json(action_json(self.state, comment))

    def delete_action(self, request: Request, principal: Principal, action_id: str) -> Response:
        """DELETE /1/actions/{id}: only comments can be deleted, and only by their author."""
        self._visible_action(principal, action_id)
        comment = self.editor.comment_action(None, action_id, self.actor(principal))
        self.editor.delete_comment(comment, self.actor(principal))
        return self.json({"_value": None})

    # ----- comments ----------------------------------------------------------------------------------------

    def post_comment(self, request: Request, principal: Principal, card: str) -> Response:
        """POST /1/cards/{id}/actions/comments (``text``): answers the commentCard action."""
        found = self.card_for(principal, card)
        action = self.editor.comment(found, self.params(request).get("text"), self.actor(principal))
        return self.json(action_json(self.state, action))

    def put_comment(self, request: Request, principal: Principal, card: str, action_id: str) -> Response:
        """PUT /1/cards/{id}/actions/{idAction}/comments (``text``)."""
        found = self.card_for(principal, card)
        comment = self.editor.comment_action(found, action_id, self.actor(principal))
        self.editor.edit_comment(comment, self.params(request).get("text"), self.actor(principal))
        return self.json(action_json(self.state, comment))

    def delete_comment(self, request: Request, principal: Principal, card: str, action_id: str) -> Response:
        """DELETE /1/cards/{id}/actions/{idAction}/comments."""
        found = self.card_for(principal, card)
        comment = self.editor.comment_action(found, action_id, self.actor(principal))
        self.editor.delete_comment(comment, self.actor(principal))
        return self.json({"_value": None})

    # ----- attachments -------------------------------------------------------------------------------------

    def get_attachments(self, request: Request, principal: Principal, card: str) -> Response:
        """GET /1/cards/{id}/attachments (``filter=cover`` keeps only the cover)."""
        found = self.card_for(principal, card)
        listed = found.attachments
        if request.args.get("filter") == "cover":
            listed = [a for a in listed if a.id == found.id_attachment_cover]
        return self.json([attachment_json(a, request.args.get("fields")) for a in listed])

    def post_attachment(self, request: Request, principal: Principal, card: str) -> Response:
        """POST /1/cards/{id}/attachments with ``url`` (and ``name``, ``mimeType``, ``setCover``)."""
        found = self.card_for(principal, card)
        params = self.params(request)
        actor = self.actor(principal)
        attachment = self.editor.add_attachment(
            found, actor, url=params.get("url"), name=params.get("name"), mime_type=params.get("mimeType")
        )
        if params.get("setCover") not in {None, "", "false", False}:
            self.editor.update_card(found, {"idAttachmentCover": attachment.id}, actor)
        return self.json(attachment_json(attachment))

    def get_attachment(self, request: Request, principal: Principal, card: str, attachment_id: str) -> Response:
        """GET /1/cards/{id}/attachments/{idAttachment}."""
        found = self.card_for(principal, card)
        attachment = next((a for a in found.attachments if a.id == attachment_id), None)
        if attachment is None:
            raise not_found()
        return self.json(attachment_json(attachment, request.args.get("fields")))

    def delete_attachment(self, request: Request, principal: Principal, card: str, attachment_id: str) -> Response:
        """DELETE /1/cards/{id}/attachments/{idAttachment}."""
        found = self.card_for(principal, card)
        self.editor.delete_attachment(found, attachment_id, self.actor(principal))
        return self.json({"limits": {}})

    # ----- webhooks ----------------------------------------------------------------------------------------

    def _check_model(self, principal: Principal, id_model: JSON) -> str:
        state = self.state
        ident = str(id_model or "")
        if ident in state.boards:
            self.board_for(principal, ident)
        elif ident in state.lists or (ident in state.cards and not state.cards[ident].deleted):
            board_id = state.lists[ident].id_board if ident in state.lists else state.cards[ident].id_board
            self.board_for(principal, board_id)
        elif ident not in state.members:
            raise ApiError(400, "invalid value for idModel")
        return ident

    def _owned_webhook(self, principal: Principal, webhook_id: str, token: str | None) -> Webhook:
        webhook = self.state.webhooks.get(webhook_id)
        if webhook is None or webhook.token != (token or principal.token):
            raise not_found()
        return webhook

    def post_webhook(self, request: Request, principal: Principal, token: str | None = None) -> Response:
        """POST /1/webhooks or /1/tokens/{token}/webhooks: refused unless the callback answers HEAD with 200."""
        params = self.params(request)
        owner = token or principal.token
        if self.state.member_by_token(owner) is None:
            raise ApiError(401, "invalid token")
        id_model = self._check_model(principal, params.get("idModel"))
        url = str(params.get("callbackURL") or "")
        if any(
            w.callback_url == url and w.id_model == id_model and w.token == owner for w in self.state.webhooks.values()
        ):
            raise ApiError(400, DUPLICATE_WEBHOOK)
        check_callback(url)
        webhook = Webhook(
            id=self.state.ids.new(self.clock.now()),
            token=owner,
            id_model=id_model,
            callback_url=url,
            description=str(params.get("description") or ""),
            active=self.state.flag(params.get("active", True), "active"),
        )
        self.state.webhooks[webhook.id] = webhook
        return self.json(webhook_json(webhook))

    def get_webhook(
        self, request: Request, principal: Principal, webhook_id: str, token: str | None = None
    ) -> Response:
        """GET /1/webhooks/{id} (a token sees only its own webhooks)."""
        return self.json(webhook_json(self._owned_webhook(principal, webhook_id, token)))

    def put_webhook(
        self, request: Request, principal: Principal, webhook_id: str, token: str | None = None
    ) -> Response:
        """PUT /1/webhooks/{id}: description, callbackURL (HEAD-checked again), idModel, active."""
        webhook = self._owned_webhook(principal, webhook_id, token)
        params = self.params(request)
        if "idModel" in params:
            webhook.id_model = self._check_model(principal, params["idModel"])
        if "callbackURL" in params and params["callbackURL"] != webhook.callback_url:
            check_callback(str(params["callbackURL"]))
            webhook.callback_url = str(params["callbackURL"])
        if "description" in params:
            webhook.description = str(params["description"] or "")
        if "active" in params:
            webhook.active = self.state.flag(params["active"], "active")
        return self.json(webhook_json(webhook))

    def delete_webhook(
        self, request: Request, principal: Principal, webhook_id: str, token: str | None = None
    ) -> Response:
        """DELETE /1/webhooks/{id}."""
        webhook = self._owned_webhook(principal, webhook_id, token)
        del self.state.webhooks[webhook.id]
        return self.json({"_value": None})

    def get_token_webhooks(self, request: Request, principal: Principal, token: str) -> Response:
        """GET /1/tokens/{token}/webhooks: the token's webhooks."""
        if self.state.member_by_token(token) is None:
            raise ApiError(401, "invalid token")
        return self.json([webhook_json(w) for w in self.state.webhooks.values() if w.token == token])
