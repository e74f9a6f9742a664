"""What the core needs to know of Asana (:class:`~syncd.connector.Capabilities`), declared by its connector."""

from __future__ import annotations

from syncd.connector import Capabilities, StatusMechanism, TextFormat, ToolLimits, WebhookKind

CAPABILITIES = Capabilities(
    name="Asana",
    workspace="project",
    status_noun="section",
    status=StatusMechanism.CONTAINER,
    single_assignee=True,
    text=TextFormat.ASANA_HTML,
    webhook=WebhookKind.HANDSHAKE,
    assignable="a member of the Asana workspace",
    limits=ToolLimits(),  # no limit on these fields could be sourced; none is assumed
    browse="{site}/0/{workspace}/{ref}",  # where a person opens the item
)
