"""The one interface every tool connector implements (``connectors/`` re-exports it), and nothing tool-specific.

The engine talks to Jira, Trello and Asana only through :class:`Connector`. Each method maps to a few requests of
the tool's real SDK; each raises only the errors of :mod:`syncd.errors`, so the engine decides retry, stop or
quarantine by kind. Writes return the new :class:`~syncd.model.Record` so the engine can recognise its own write
when the change feed brings it back (same ref, same version) and never echo it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from syncd.model import ChangeBatch, Comment, Cursor, FieldChange, Record, Schema


@runtime_checkable
class Connector(Protocol):
    """One endpoint (a Jira project, a Trello board, an Asana project) reached through its tool's SDK."""

    kind: ClassVar[str]
    """The tool: ``jira``, ``trello`` or ``asana`` (for messages and metrics; the engine never branches on it)."""

    handshake: ClassVar[bool]
    """Whether registering a webhook agrees its secret in a handshake the receiver must answer while the
    registration runs (:meth:`accept_handshake`), rather than a secret set in the configuration."""

    def changes(self, cursor: Cursor | None) -> ChangeBatch:
        """Records changed since ``cursor`` (None: everything in scope), at least once, with the next cursor."""
        ...

    def fetch(self, refs: Sequence[str]) -> list[Record]:
        """Current records for refs, in batches; refs that no longer exist are left out."""
        ...

    def create(self, fields: Mapping[str, Any], marker: str) -> Record:
        """Create an item carrying ``marker`` (the sync_id) where find_by_marker can find it after any edit.

        Exactly once: a create whose answer was lost is looked up by its marker before anything is sent again
        (:func:`syncd.uncertain.send_once`); what cannot be told yet raises OutcomeUnknown.
        """
        ...

    def update(self, ref: str, fields: Mapping[str, Any], expected_version: str | None = None) -> Record:
        """Write the given fields (status through the tool's own mechanism) and return the new record.

        ``expected_version`` is the version the plan was made from: none of the tools has a conditional write, so
        the connector reads the version first (one request) and a newer one raises ChangedMeanwhile: a person's
        edit made since the plan's read is planned again instead of overwritten. What remains is the window of
        that one request, instead of the whole pass.
        """
        ...

    def archive(self, ref: str) -> Record:
        """Take the item out of active work the tool's reversible way (never a hard delete)."""
        ...

    def find_by_marker(self, marker: str, since: datetime, fields: Mapping[str, Any] | None = None) -> Record | None:
        """The item syncd created for this sync_id since ``since`` (when the create was sent), if it exists.

        Recovers a create whose answer was lost, with the permissions of an ordinary API-token account, in a
        number of requests bounded by syncd's own creates since ``since``, never by the project's size.
        ``fields`` (the create's, as passed to :meth:`create`; their ``title`` is the name it was made with) narrow
        the candidates and recognise a mirror whose marker could not be attached yet, where a tool attaches it in
        a second request. Raises OutcomeUnknown when the tool cannot tell yet (a search
        index that has not caught up with a just-made item).
        """
        ...

    def history(self, ref: str) -> list[FieldChange]:
        """Each field's changes, from the tool's own history (Jira changelog, Trello actions, Asana stories).

        Read only when it matters: a conflict decided by time (``latest``) weighs when each field itself changed,
        since the item's modification time moves with any edit; and recovery after a crash finishes syncd's
        interrupted write only on fields no one else changed since. Creation counts as a change of every field.
        """
        ...

    def comments(self, ref: str) -> list[Comment]:
        """Comments on the item, oldest first."""
        ...

    def add_comment(self, ref: str, body: str) -> Comment:
        """Append a comment in the tool's native rich text."""
        ...

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[str]:
        """Refs a signed delivery hints at; raise AuthFailed on a bad signature. A hint, never trusted as data.

        Once :meth:`identify` has run, events that syncd's own account caused (its writes coming back) hint at
        nothing: they would only start a pass that reads the item and finds syncd's write.
        """
        ...

    def webhook_unready(self) -> str | None:
        """What the configuration lacks for this endpoint's webhooks to be registered and verified (None: nothing)."""
        ...

    def ensure_webhook(self, url: str) -> str:
        """Register the endpoint's webhook to ``url`` unless a working one exists; its id in the tool."""
        ...

    def is_handshake(self, headers: Mapping[str, str]) -> bool:
        """Whether a request to the webhook route is the tool's registration handshake rather than a delivery."""
        ...

    def accept_handshake(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Answer the tool's registration handshake (where :attr:`handshake`): keep its secret, return the headers."""
        ...

    def keep_agreed_secret(self, earlier: Connector) -> None:
        """Take over the webhook secret an earlier connector of the same endpoint agreed (a configuration reload)."""
        ...

    def verifiable(self) -> bool:
        """Whether deliveries can be verified now (a handshake's secret is known, a configured one is set)."""
        ...

    def identify(self) -> str | None:
        """The account syncd acts as in the tool (read once, one request), so deliveries of its own writes are told."""
        ...

    def describe(self) -> Schema:
        """Statuses, transitions, people and labels of the endpoint, for checks before any write."""
        ...
