"""The Trello emulator: every route group on one :class:`~sandbox.core.Emulator`."""

from __future__ import annotations

from werkzeug.routing import Rule

from sandbox.trello.actor import TrelloActor
from sandbox.trello.routes_batch import BatchRoutes


class TrelloEmulator(BatchRoutes):
    """Trello's REST API 1 under ``<url>/1/``, as py-trello and syncd's Trello connector use it."""

    def routes(self) -> list[Rule]:
        """Return the routes: boards, lists, labels, members; cards; actions, comments, attachments, webhooks; batch."""
        return [*self.board_rules(), *self.card_rules(), *self.activity_rules(), *self.batch_rules()]

    def act_as(self, email: str) -> TrelloActor:
        """Edit cards from Python as a named person (recorded as their actions, sent to webhooks)."""
        principal = self.principal_for_email(email)
        return TrelloActor(self, self.state.members[principal.user_id])
