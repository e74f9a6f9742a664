"""Routes that create, read, change and delete cards, and put members and labels on them."""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.core import ApiError, Principal
from sandbox.trello.cards import CARD_FIELDS
from sandbox.trello.customfields import item_json, set_item
from sandbox.trello.ids import is_object_id
from sandbox.trello.model import Card
from sandbox.trello.render import MEMBER_NESTED_FIELDS, board_json, card_json, list_json, member_json
from sandbox.trello.routes_boards import BoardRoutes

_PUT_FIELDS = "name, desc, closed, due, start, dueComplete, pos, idList, subscribed, idAttachmentCover"


class CardRoutes(BoardRoutes):
    """Cards and their members and labels."""

    def card_rules(self) -> list[Rule]:
        """Return the routes of this group."""
        return [
            Rule("/1/cards", endpoint="post_card", methods=["POST"]),
            Rule("/1/cards/<card>", endpoint="get_card", methods=["GET"]),
            Rule("/1/cards/<card>", endpoint="put_card", methods=["PUT"]),
            Rule("/1/cards/<card>", endpoint="delete_card", methods=["DELETE"]),
            Rule(f"/1/cards/<card>/<any({_PUT_FIELDS}):field>", endpoint="put_card_field", methods=["PUT"]),
            Rule("/1/cards/<card>/idMembers", endpoint="post_card_member", methods=["POST"]),
            Rule("/1/cards/<card>/idMembers/<member_id>", endpoint="delete_card_member", methods=["DELETE"]),
            Rule("/1/cards/<card>/members", endpoint="get_card_members", methods=["GET"]),
            Rule("/1/cards/<card>/idLabels", endpoint="post_card_label", methods=["POST"]),
            Rule("/1/cards/<card>/idLabels/<label_id>", endpoint="delete_card_label", methods=["DELETE"]),
            Rule("/1/cards/<card>/list", endpoint="get_card_list", methods=["GET"]),
            Rule("/1/cards/<card>/board", endpoint="get_card_board", methods=["GET"]),
            Rule("/1/cards/<card>/checklists", endpoint="get_card_checklists", methods=["GET"]),
            Rule("/1/cards/<card>/pluginData", endpoint="get_card_plugin_data", methods=["GET"]),
            Rule("/1/cards/<card>/customFieldItems", endpoint="get_card_custom_items", methods=["GET"]),
            Rule("/1/cards/<card>/customField/<field_id>/item", endpoint="put_card_custom_item", methods=["PUT"]),
            # py-trello's Card.set_custom_field and CustomField setters PUT to the singular /1/card/..., which
            # Trello serves as the same route; the spec names only /cards/.
            Rule("/1/card/<card>/customField/<field_id>/item", endpoint="put_card_custom_item", methods=["PUT"]),
        ]

    def card_for(self, principal: Principal, ident: str) -> Card:
        """Return a card on a board the requester can see."""
        card = self.state.card(ident)
        self.board_for(principal, card.id_board)
        return card

    def _card_body(self, request: Request, card: Card) -> Response:
        args = request.args
        body = self.card_body(request, card)
        if args.get("members") == "true":
            state = self.state
            body["members"] = [
                member_json(state, state.members[m], None, args.get("member_fields"), MEMBER_NESTED_FIELDS)
                for m in card.id_members
            ]
        if args.get("list") == "true":
            body["list"] = list_json(self.state.lists[card.id_list])
        if args.get("board") == "true":
            body["board"] = board_json(self.state, self.state.boards[card.id_board], args.get("board_fields"))
        return self.json(body)

    def _member_list(self, card: Card) -> Response:
        state = self.state
        return self.json(
            [member_json(state, state.members[m], None, None, MEMBER_NESTED_FIELDS) for m in card.id_members]
        )

    # ----- create / read / update / delete --------------------------------------------------------------

    def post_card(self, request: Request, principal: Principal) -> Response:
        """POST /1/cards: ``idList`` is required; pos top/bottom/number; idMembers/idLabels comma lists."""
        params = self.params(request)
        id_list = str(params.get("idList") or "")
        if not is_object_id(id_list) or id_list not in self.state.lists:
            raise ApiError(400, "invalid value for idList")
        trello_list = self.list_for(principal, id_list)
        card = self.editor.create_card(
            trello_list,
            self.actor(principal),
            name=params.get("name"),
            desc=params.get("desc"),
            pos=params.get("pos"),
            due=params.get("due"),
            start=params.get("start"),
            due_complete=params.get("dueComplete"),
            id_members=params.get("idMembers"),
            id_labels=params.get("idLabels"),
            url_source=params.get("urlSource"),
            mime_type=params.get("mimeType"),
        )
        return self.json(card_json(self.state, card))

    def get_card(self, request: Request, principal: Principal, card: str) -> Response:
        """GET /1/cards/{id} (``fields``, ``attachments``, ``members``, ``list``, ``board``, ``customFieldItems``)."""
        return self._card_body(request, self.card_for(principal, card))

    def put_card(self, request: Request, principal: Principal, card: str) -> Response:
        """PUT /1/cards/{id}: each changed field is logged as its own updateCard action."""
        found = self.card_for(principal, card)
        params = self.params(request)
        fields = (*CARD_FIELDS, "subscribed", "idMembers", "idLabels")
        self.editor.update_card(found, {k: params[k] for k in fields if k in params}, self.actor(principal))
        return self.json(card_json(self.state, found))

    def put_card_field(self, request: Request, principal: Principal, card: str, field: str) -> Response:
        """PUT /1/cards/{id}/{field} with ``value`` (how py-trello's setters change one field)."""
        found = self.card_for(principal, card)
        params = self.params(request)
        if "value" not in params:
            raise ApiError(400, "invalid value for value")
        self.editor.update_card(found, {field: params["value"]}, self.actor(principal))
        return self.json(card_json(self.state, found))

    def delete_card(self, request: Request, principal: Principal, card: str) -> Response:
        """DELETE /1/cards/{id}: gone for good, remembered only by its deleteCard action."""
        self.editor.delete_card(self.card_for(principal, card), self.actor(principal))
        return self.json({"limits": {}})

    # ----- members and labels -----------------------------------------------------------------------------

    def post_card_member(self, request: Request, principal: Principal, card: str) -> Response:
        """POST /1/cards/{id}/idMembers with ``value``: answers the card's members."""
        found = self.card_for(principal, card)
        self.editor.add_member(found, str(self.params(request).get("value") or ""), self.actor(principal))
        return self._member_list(found)

    def delete_card_member(self, request: Request, principal: Principal, card: str, member_id: str) -> Response:
        """DELETE /1/cards/{id}/idMembers/{idMember}: answers the card's remaining members."""
        found = self.card_for(principal, card)
        self.editor.remove_member(found, member_id, self.actor(principal))
        return self._member_list(found)

    def get_card_members(self, request: Request, principal: Principal, card: str) -> Response:
        """GET /1/cards/{id}/members."""
        return self._member_list(self.card_for(principal, card))

    def post_card_label(self, request: Request, principal: Principal, card: str) -> Response:
        """POST /1/cards/{id}/idLabels with ``value``: answers the card's label ids."""
        found = self.card_for(principal, card)
        self.editor.add_label(found, str(self.params(request).get("value") or ""), self.actor(principal))
        return self.json(list(found.id_labels))

    def delete_card_label(self, request: Request, principal: Principal, card: str, label_id: str) -> Response:
        """DELETE /1/cards/{id}/idLabels/{idLabel}: answers the card's remaining label ids."""
        found = self.card_for(principal, card)
        self.editor.remove_label(found, label_id, self.actor(principal))
        return self.json(list(found.id_labels))

    # ----- the card's surroundings --------------------------------------------------------------------------

    def get_card_list(self, request: Request, principal: Principal, card: str) -> Response:
        """GET /1/cards/{id}/list."""
        found = self.card_for(principal, card)
        return self.json(list_json(self.state.lists[found.id_list], request.args.get("fields", "all")))

    def get_card_board(self, request: Request, principal: Principal, card: str) -> Response:
        """GET /1/cards/{id}/board."""
        found = self.card_for(principal, card)
        return self.json(board_json(self.state, self.state.boards[found.id_board], request.args.get("fields")))

    def get_card_checklists(self, request: Request, principal: Principal, card: str) -> Response:
        """GET /1/cards/{id}/checklists: the sandbox keeps no checklists, so always empty."""
        self.card_for(principal, card)
        return self.json([])

    def get_card_custom_items(self, request: Request, principal: Principal, card: str) -> Response:
        """GET /1/cards/{id}/customFieldItems: the card's set custom fields (a blank field has no item)."""
        return self.json([item_json(item) for item in self.card_for(principal, card).custom_items])

    def put_card_custom_item(self, request: Request, principal: Principal, card: str, field_id: str) -> Response:
        """PUT /1/cards/{idCard}/customField/{idCustomField}/item: set or clear one custom field (JSON body)."""
        found = self.card_for(principal, card)
        custom_field = self.state.custom_field(field_id)
        body = self.body_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid custom field item value.")
        body = {key: value for key, value in body.items() if key not in {"key", "token"}}
        return self.json(set_item(self.state, found, custom_field, body, self.actor(principal)))

    def get_card_plugin_data(self, request: Request, principal: Principal, card: str) -> Response:
        """GET /1/cards/{id}/pluginData: no Power-Ups in the sandbox, so always empty."""
        self.card_for(principal, card)
        return self.json([])
