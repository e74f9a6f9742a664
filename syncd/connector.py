"""The one interface every tool connector implements (``connectors/`` re-exports it), and nothing tool-specific.

The engine talks to Jira, Trello and Asana only through :class:`Connector`. Each method maps to a few requests of
the tool's real SDK; each raises only the errors of :mod:`syncd.errors`, so the engine decides retry, stop or
quarantine by kind. Writes return the new :class:`~syncd.model.Record` so the engine can recognise its own write
when the change feed brings it back (same ref, same version) and never echo it.

What differs between tools and matters to the core (how a status moves, how many assignees an item holds, which
rich text it stores, what it refuses, how its webhooks are secured) is declared once per connector class as its
:class:`Capabilities`: the composition root hands them to the core by tool kind, so the core never names a tool.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit, urlunsplit

from syncd.model import ChangeBatch, Comment, Cursor, FieldChange, Record, Schema


class StatusMechanism(Enum):
    """How an item's status is changed in the tool."""

    WORKFLOW = "workflow transitions"
    """Along the transitions of a workflow, one at a time: a status may be unreachable from another."""
    CONTAINER = "container"
    """By moving the item into another container (a list, a section): any status is one move from any other."""


class TextFormat(Enum):
    """The rich text a tool stores; :data:`syncd.mapping.TEXT_FORMATS` gives its converters to and from Markdown."""

    JIRA_WIKI = "jira-wiki"
    """Jira wiki markup (Jira Server, and the v2 REST API of Jira Cloud)."""
    TRELLO_MARKDOWN = "trello-markdown"
    """Markdown, as Trello renders it."""
    ASANA_HTML = "asana-html"
    """Asana's restricted HTML with a ``<body>`` root."""


class WebhookKind(Enum):
    """How the tool's webhook deliveries are secured, and so what registering one takes."""

    SHARED_SECRET = "shared secret"  # noqa: S105 - the name of a kind of webhook, not a secret
    """Signed with a secret set both in the tool and in the configuration."""
    SIGNED_CALLBACK = "signed callback"
    """Signed with an application secret over the body and the callback URL, which the connector must know."""
    HANDSHAKE = "handshake"
    """The secret is agreed in a handshake: the tool calls the receiver back while the registration runs."""


@dataclass(frozen=True)
class ToolLimits:
    """What a tool refuses in the fields syncd writes there; lengths count UTF-16 code units (``utf16_len``)."""

    title_max: int | None = None
    title_required: bool = False
    """A blank title is refused."""
    title_one_line: bool = False
    """A title with a line break is refused."""
    label_max: int | None = None
    label_spaces: bool = True
    """Whether a label may contain whitespace."""
    due_range: tuple[date, date] | None = None
    """The first and last day a due date may fall on (for an instant: its day in UTC)."""


GREGORIAN = (date(1583, 1, 1), date(9999, 12, 31))
"""Due dates both date tools are trusted to hold (the unfavourable reading of vague documentation).

Jira documents ``yyyy-MM-dd`` and Trello an OpenAPI ``date`` (RFC 3339: a four-digit year), neither a range. ISO
8601 admits years before 1583 only "by mutual agreement of the partners in information interchange", which neither
documents, and Java's ``SimpleDateFormat`` (whose pattern Jira documents) reads days before 15 October 1582 in the
Julian calendar, so such a date would name another day in Jira than in Python or JavaScript.
"""


@dataclass(frozen=True)
class Capabilities:
    """The facts about a tool that the tool-neutral core needs, declared by its connector class."""

    name: str
    """The tool's name as people write it (``Jira``): in messages and in a mirrored comment's attribution."""
    workspace: str
    """What one endpoint is called in the tool (``project``, ``board``), for messages."""
    status_noun: str
    """What a status is called in the tool (``status``, ``list``, ``section``), for messages."""
    status: StatusMechanism
    single_assignee: bool
    """An item holds at most one assignee (the first of several is written, the rest reported)."""
    text: TextFormat
    webhook: WebhookKind
    assignable: str
    """What a person must be to be assigned there, completing "<e-mail> is not ..."; ``{workspace}`` stands for
    the endpoint as messages name it (``Jira project ENG``)."""
    limits: ToolLimits = field(default_factory=ToolLimits)
    browse: str = ""
    """Where a person opens an item in the tool, as a template of ``{site}`` (the endpoint's ``base_url`` without
    a leading ``api.`` host label: an API host is not where people browse), ``{workspace}`` and ``{ref}``; empty:
    the tool has no such address."""
    own_fields: frozenset[str] = frozenset()
    """The tool's own fields beyond the common ones that a mapping may keep a field in (``{field: priority}``)."""
    restore_needs_status: bool = False
    """Undoing an archive (:meth:`Connector.restore`) leaves the item where the archive put it unless the group maps
    its status there (Jira's archive moves the issue to a done status): without that, it cannot be restored."""

    @property
    def handshake(self) -> bool:
        """Whether registering a webhook agrees its secret in a handshake (:attr:`Connector.handshake`)."""
        return self.webhook is WebhookKind.HANDSHAKE


def browse_url(capabilities: Capabilities, base_url: str, workspace: str, ref: str) -> str | None:
    """The address of an item in its tool, for a person (the web page's links); None if the tool declares none."""
    if not capabilities.browse:
        return None
    parts = urlsplit(base_url.rstrip("/"))
    host = parts.netloc.removeprefix("api.")
    site = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return capabilities.browse.format(site=site, workspace=quote(workspace, safe=""), ref=quote(ref, safe=""))


@dataclass(frozen=True)
class AgreedSecret:
    """A webhook's id in its tool and the secret its registration handshake agreed (a credential: never shown)."""

    webhook: str
    secret: str = field(repr=False)


@runtime_checkable
class Connector(Protocol):
    """One endpoint (a Jira project, a Trello board, an Asana project) reached through its tool's SDK."""

    kind: ClassVar[str]
    """The tool: ``jira``, ``trello`` or ``asana`` (for messages and metrics; the engine never branches on it)."""

    capabilities: ClassVar[Capabilities]
    """What the core needs to know of the tool, declared by the class; the composition root passes them in."""

    handshake: ClassVar[bool]
    """Whether registering a webhook agrees its secret in a handshake the receiver must answer while the
    registration runs (:meth:`accept_handshake`), rather than a secret set in the configuration; the same as
    ``capabilities.handshake``, from which the connectors take it."""

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

    def delete(self, ref: str) -> None:
        """Delete the item for good (``on_delete: delete``); an item already gone counts as deleted.

        Idempotent, so retried like a read: a retry whose first try landed finds the item gone (404), which is the
        outcome asked for; a delete whose outcome stays unknown is resolved by reading the item afterwards.
        """
        ...

    def restore(self, ref: str) -> Record:
        """Undo :meth:`archive` (a person rejected a mass archive): the item is back in active work.

        Its agreed values are written after it, by :meth:`update`.
        """
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
        Changes are named by record field, a custom field's by :func:`~syncd.model.custom_change` of its name; the
        member's :meth:`~syncd.mapping.Codec.history` names them by the mapping's canonical fields.
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

    def agreed_secret(self) -> AgreedSecret | None:
        """The webhook and the secret its handshake agreed, for the store (None: none agreed, or one configured)."""
        ...

    def use_agreed_secret(self, agreed: AgreedSecret) -> None:
        """Verify deliveries with a secret agreed earlier, by any replica (read from the store); keep its webhook."""
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
