"""What the core needs to know of Trello (:class:`~syncd.connector.Capabilities`), declared by its connector."""

from __future__ import annotations

from syncd.connector import GREGORIAN, Capabilities, StatusMechanism, TextFormat, ToolLimits, WebhookKind

CAPABILITIES = Capabilities(
    name="Trello",
    workspace="board",
    status_noun="list",
    status=StatusMechanism.CONTAINER,
    single_assignee=False,  # a card has members, any number of them
    text=TextFormat.TRELLO_MARKDOWN,
    webhook=WebhookKind.SIGNED_CALLBACK,
    assignable="a member of the Trello board",
    # Trello's API reference (POST /1/cards, PUT /1/cards/{id}/name): name "a string with a length from 1 to
    # 16384", refused blank with "invalid value for name"; due: see GREGORIAN. JavaScript counts UTF-16 code units.
    limits=ToolLimits(title_max=16384, title_required=True, due_range=GREGORIAN),
    browse="{site}/c/{ref}",  # where a person opens the item
)
