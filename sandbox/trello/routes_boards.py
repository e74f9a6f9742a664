"""Routes for members, the workspace, boards, lists and labels."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.core import ApiError, Principal
from sandbox.trello.actions import int_param
from sandbox.trello.base import TrelloBase
from sandbox.trello.customfields import field_json
from sandbox.trello.ids import is_object_id
from sandbox.trello.model import Board, Card, TrelloList
from sandbox.trello.render import (
    board_json,
    card_json,
    label_json,
    list_json,
    member_json,
    organization_json,
)

CARD_FILTERS = {"all", "closed", "none", "open", "visible"}
LIST_FILTERS = {"all", "closed", "none", "open"}
BOARD_FIELDS = (
    "closed, dateLastActivity, desc, idMemberCreator, idOrganization, labelNames, name, pinned, prefs, shortLink, "
    "shortUrl, starred, subscribed, url"
)


class BoardRoutes(TrelloBase):
    """Members, boards, lists and labels."""

    def board_rules(self) -> list[Rule]:
        """Return the routes of this group."""
        return [
            Rule("/1/members/<member>", endpoint="get_member", methods=["GET"]),
            Rule("/1/members/<member>/boards", endpoint="get_member_boards", methods=["GET"]),
            Rule("/1/organizations/<org>", endpoint="get_organization", methods=["GET"]),
            Rule("/1/boards/<board>", endpoint="get_board", methods=["GET"]),
            Rule("/1/boards/<board>/lists", endpoint="get_board_lists", methods=["GET"]),
            Rule("/1/boards/<board>/lists", endpoint="post_board_list", methods=["POST"]),
            Rule("/1/boards/<board>/lists/<which>", endpoint="get_board_lists", methods=["GET"]),
            Rule("/1/boards/<board>/labels", endpoint="get_board_labels", methods=["GET"]),
            Rule("/1/boards/<board>/labels", endpoint="post_board_label", methods=["POST"]),
            Rule("/1/boards/<board>/members", endpoint="get_board_members", methods=["GET"]),
            Rule("/1/boards/<board>/customFields", endpoint="get_board_custom_fields", methods=["GET"]),
            Rule("/1/customFields/<field_id>", endpoint="get_custom_field", methods=["GET"]),
            Rule("/1/boards/<board>/cards", endpoint="get_board_cards", methods=["GET"]),
            Rule("/1/boards/<board>/cards/<which>", endpoint="get_board_cards", methods=["GET"]),
            Rule(f"/1/boards/<board>/<any({BOARD_FIELDS}):field>", endpoint="get_board_field", methods=["GET"]),
            Rule("/1/lists", endpoint="post_list", methods=["POST"]),
            Rule("/1/lists/<list_id>", endpoint="get_list", methods=["GET"]),
            Rule("/1/lists/<list_id>", endpoint="put_list", methods=["PUT"]),
            Rule("/1/lists/<list_id>/<any(closed, name, pos):field>", endpoint="put_list_field", methods=["PUT"]),
            Rule("/1/lists/<list_id>/cards", endpoint="get_list_cards", methods=["GET"]),
            Rule("/1/lists/<list_id>/board", endpoint="get_list_board", methods=["GET"]),
            Rule("/1/labels", endpoint="post_label", methods=["POST"]),
            Rule("/1/labels/<label_id>", endpoint="get_label", methods=["GET"]),
        ]

    # ----- access -------------------------------------------------------------------------------------------

    def board_for(self, principal: Principal, ident: str) -> Board:
        """Return a board the requester is a member of (others' boards are a 401, as for a private board)."""
        board = self.state.board(ident)
        if principal.user_id not in board.members:
            raise ApiError(401, "unauthorized permission requested")
        return board

    def list_for(self, principal: Principal, ident: str) -> TrelloList:
        """Return a list on a board the requester can see."""
        trello_list = self.state.trello_list(ident)
        self.board_for(principal, trello_list.id_board)
        return trello_list

    def render_cards(self, request: Request, cards: list[Card]) -> Response:
        """Return cards as a list route returns them, honouring fields, limit, before/since (ids) and attachments."""
        args = request.args
        before, since = args.get("before"), args.get("since")
        for bound in (before, since):
            if bound and not is_object_id(bound):
                raise ApiError(400, "invalid id")
        if before:
            cards = [card for card in cards if card.id < before.lower()]
        if since:
            cards = [card for card in cards if card.id > since.lower()]
        if args.get("limit"):
            newest = sorted(cards, key=lambda card: card.id, reverse=True)[: int_param(args, "limit", 0, 1000)]
            keep = {card.id for card in newest}
            cards = [card for card in cards if card.id in keep]
        return self.json([self.card_body(request, card) for card in cards])

    def card_body(self, request: Request, card: Card) -> dict[str, Any]:
        """Return one card as ``fields``, ``customFieldItems``, ``attachments`` and ``attachment_fields`` ask."""
        args = request.args
        return card_json(
            self.state,
            card,
            args.get("fields"),
            custom_fields=args.get("customFieldItems") == "true",
            attachments=args.get("attachments"),
            attachment_fields=args.get("attachment_fields"),
        )

    # ----- members and the workspace ----------------------------------------------------------------------

    def get_member(self, request: Request, principal: Principal, member: str) -> Response:
        """GET /1/members/{idOrUsername|me}: the e-mail only for oneself."""
        viewer = self.actor(principal)
        found = self.state.member(member, me=viewer)
        return self.json(member_json(self.state, found, viewer, request.args.get("fields")))

    def get_member_boards(self, request: Request, principal: Principal, member: str) -> Response:
        """GET /1/members/{id}/boards with ``filter`` (all, open, closed, members) and ``fields``."""
        found = self.state.member(member, me=self.actor(principal))
        which = request.args.get("filter", "all")
        boards = [board for board in self.state.boards.values() if found.id in board.members]
        if which == "open":
            boards = [board for board in boards if not board.closed]
        elif which == "closed":
            boards = [board for board in boards if board.closed]
        elif which not in {"all", "members", "organization"}:
            raise ApiError(400, "invalid value for filter")
        fields = request.args.get("fields", "all")
        return self.json([board_json(self.state, board, fields) for board in boards])

    def get_organization(self, request: Request, principal: Principal, org: str) -> Response:
        """GET /1/organizations/{id}: the seeded workspace."""
        if org not in {self.state.organization.id, self.state.organization.name}:
            raise ApiError(404, "model not found")
        return self.json(organization_json(self.state))

    # ----- boards ------------------------------------------------------------------------------------------

    def get_board(self, request: Request, principal: Principal, board: str) -> Response:
        """GET /1/boards/{id}."""
        return self.json(board_json(self.state, self.board_for(principal, board), request.args.get("fields")))

    def get_board_custom_fields(self, request: Request, principal: Principal, board: str) -> Response:
        """GET /1/boards/{id}/customFields: the board's Custom Fields power-up definitions, in position order."""
        found = self.board_for(principal, board)
        return self.json([field_json(f) for f in self.state.board_custom_fields(found)])

    def get_custom_field(self, request: Request, principal: Principal, field_id: str) -> Response:
        """GET /1/customFields/{id}: one definition, on a board the requester can see."""
        custom_field = self.state.custom_field(field_id)
        self.board_for(principal, custom_field.id_board)
        return self.json(field_json(custom_field))

    def get_board_field(self, request: Request, principal: Principal, board: str, field: str) -> Response:
        """GET /1/boards/{id}/{field}: one field as ``{"_value": ...}`` (py-trello's get_last_activity)."""
        found = self.board_for(principal, board)
        return self.json({"_value": board_json(self.state, found, "all")[field]})

    def get_board_lists(self, request: Request, principal: Principal, board: str, which: str | None = None) -> Response:
        """GET /1/boards/{id}/lists[/{filter}]: open (default), closed, all or none."""
        found = self.board_for(principal, board)
        which = which or request.args.get("filter", "open")
        if which not in LIST_FILTERS:
            raise ApiError(400, "invalid value for filter")
        lists = self.state.board_lists(found)
        if which != "all":
            lists = [lst for lst in lists if which == ("closed" if lst.closed else "open")]
        fields = request.args.get("fields", "all")
        return self.json([list_json(lst, fields) for lst in lists])

    def post_board_list(self, request: Request, principal: Principal, board: str) -> Response:
        """POST /1/boards/{id}/lists."""
        params = self.params(request)
        found = self.board_for(principal, board)
        created = self.state.create_list(found, params.get("name"), params.get("pos"), self.actor(principal))
        return self.json(list_json(created, "all"))

    def get_board_labels(self, request: Request, principal: Principal, board: str) -> Response:
        """GET /1/boards/{id}/labels with ``fields`` and ``limit`` (default 50, at most 1000)."""
        found = self.board_for(principal, board)
        limit = int_param(request.args, "limit", 50, 1000)
        labels = self.state.board_labels(found)[:limit]
        return self.json([label_json(label, request.args.get("fields")) for label in labels])

    def post_board_label(self, request: Request, principal: Principal, board: str) -> Response:
        """POST /1/boards/{id}/labels (name, color)."""
        params = self.params(request)
        found = self.board_for(principal, board)
        return self.json(label_json(self.state.create_label(found, params.get("name"), params.get("color"))))

    def get_board_members(self, request: Request, principal: Principal, board: str) -> Response:
        """GET /1/boards/{id}/members (fullName and username unless ``fields`` says more)."""
        found = self.board_for(principal, board)
        viewer = self.actor(principal)
        fields = request.args.get("fields")
        return self.json(
            [
                member_json(self.state, self.state.members[m], viewer, fields, ("fullName", "username"))
                for m in found.members
            ]
        )

    def get_board_cards(self, request: Request, principal: Principal, board: str, which: str | None = None) -> Response:
        """GET /1/boards/{id}/cards[/{filter}] (visible by default), or one card by id there."""
        found = self.board_for(principal, board)
        if which is not None and which not in CARD_FILTERS:
            card = self.state.card(which)
            if card.id_board != found.id:
                raise ApiError(404, "The requested resource was not found.")
            return self.json(self.card_body(request, card))
        which = which or request.args.get("filter", "visible")
        if which not in CARD_FILTERS:
            raise ApiError(400, "invalid value for filter")
        cards = self.state.board_cards(found)
        lists = self.state.lists
        keep: dict[str, Any] = {
            "all": lambda c: True,
            "closed": lambda c: c.closed,
            "open": lambda c: not c.closed,
            "visible": lambda c: not c.closed and not lists[c.id_list].closed,
            "none": lambda c: False,
        }
        return self.render_cards(request, [card for card in cards if keep[which](card)])

    # ----- lists -------------------------------------------------------------------------------------------

    def post_list(self, request: Request, principal: Principal) -> Response:
        """POST /1/lists (name, idBoard, pos)."""
        params = self.params(request)
        id_board = str(params.get("idBoard") or "")
        if not is_object_id(id_board):
            raise ApiError(400, "invalid value for idBoard")
        board = self.board_for(principal, id_board)
        created = self.state.create_list(board, params.get("name"), params.get("pos"), self.actor(principal))
        return self.json(list_json(created, "all"))

    def get_list(self, request: Request, principal: Principal, list_id: str) -> Response:
        """GET /1/lists/{id}."""
        return self.json(list_json(self.list_for(principal, list_id), request.args.get("fields")))

    def put_list(self, request: Request, principal: Principal, list_id: str) -> Response:
        """PUT /1/lists/{id} (name, closed, pos)."""
        found = self.list_for(principal, list_id)
        params = self.params(request)
        changes: dict[str, Any] = {key: params[key] for key in ("name", "closed", "pos") if key in params}
        self.state.update_list(found, changes, self.actor(principal))
        return self.json(list_json(found, "all"))

    def put_list_field(self, request: Request, principal: Principal, list_id: str, field: str) -> Response:
        """PUT /1/lists/{id}/closed|name|pos with ``value``."""
        found = self.list_for(principal, list_id)
        params = self.params(request)
        if "value" not in params:
            raise ApiError(400, "invalid value for value")
        self.state.update_list(found, {field: params["value"]}, self.actor(principal))
        return self.json(list_json(found, "all"))

    def get_list_cards(self, request: Request, principal: Principal, list_id: str) -> Response:
        """GET /1/lists/{id}/cards with ``filter`` (open by default, closed, all, none)."""
        found = self.list_for(principal, list_id)
        which = request.args.get("filter", "open")
        if which not in LIST_FILTERS:
            raise ApiError(400, "invalid value for filter")
        cards = self.state.list_cards(found)
        if which != "all":
            cards = [card for card in cards if which == ("closed" if card.closed else "open")]
        return self.render_cards(request, cards)

    def get_list_board(self, request: Request, principal: Principal, list_id: str) -> Response:
        """GET /1/lists/{id}/board."""
        found = self.list_for(principal, list_id)
        board = self.state.boards[found.id_board]
        return self.json(board_json(self.state, board, request.args.get("fields")))

    # ----- labels ------------------------------------------------------------------------------------------

    def post_label(self, request: Request, principal: Principal) -> Response:
        """POST /1/labels (name, color, idBoard)."""
        params = self.params(request)
        id_board = str(params.get("idBoard") or "")
        if not is_object_id(id_board):
            raise ApiError(400, "invalid value for idBoard")
        board = self.board_for(principal, id_board)
        return self.json(label_json(self.state.create_label(board, params.get("name"), params.get("color"))))

    def get_label(self, request: Request, principal: Principal, label_id: str) -> Response:
        """GET /1/labels/{id}."""
        label = self.state.label(label_id)
        self.board_for(principal, label.id_board)
        return self.json(label_json(label, request.args.get("fields")))
