"""Sales' Trello board, read and written through py-trello.

How the Connector protocol maps onto Trello:

- ``status`` is the card's list, ``done`` is ``dueComplete``, ``description`` is ``desc`` (Markdown), ``labels`` are
  label names (a missing label is created on the board), ``assignees`` are the card's members, ``due`` is ``due``
  (always an instant in Trello: a date is written as midnight UTC and reads back as that instant).
- People: Trello shows a member's e-mail only to that member, so e-mails come from the department's people
  directory (``people``: e-mail -> Trello username or member id); a member missing from it is reported with no
  e-mail, and assigning an e-mail missing from it is an error, never a guess.
- The marker is an attachment whose URL names the sync_id, attached in the create request itself (``urlSource``)
  so that no card ever exists without it. A create whose answer was lost is found among the cards syncd's member
  created since (the board's ``createCard`` actions), never by listing the board.
- The change feed is the board's action log, newest first: ``since=<last action id>`` (paged with ``before``
  past Trello's 1000-per-call limit); the cards the actions touched are read with one listing of the board, or,
  on a big board (:data:`BY_CARD_FROM`), by id when they are few (:data:`BY_CARD_UP_TO`), so that the cost
  follows the change, not the board. A deleted card exists only as a ``deleteCard`` action and is reported as
  deleted. An idle poll is one request.
- Archive sets ``closed`` (reversible in Trello's UI).

One py-trello client per thread; py-trello's transport is our :class:`BaseUrlSession` (base URL and timeout).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, ClassVar, TypeAlias
from urllib.parse import urlencode

import requests
from trello import TrelloClient

from connectors.base import Connector, ConnectorBase
from connectors.pacing import RetryPolicy, TokenBucket, shared_bucket
from connectors.trello import custom
from connectors.trello.capabilities import CAPABILITIES
from connectors.trello.errors import TOOL, translate
from connectors.trello.http import BaseUrlSession
from connectors.webhooks import DeliveryLog, body_identity
from syncd.connector import AgreedSecret, Capabilities
from syncd.errors import AuthFailed, ConnectorError, InvalidItem, ItemNotFound, ToolConfigError
from syncd.model import (
    ChangeBatch,
    Comment,
    Cursor,
    FieldChange,
    LabelPart,
    Person,
    Placed,
    Record,
    Schema,
    Unreadable,
    custom_change,
    read_or_keep,
    utc,
)
from syncd.uncertain import CLOCK_SLACK, MARKER_URL

Json: TypeAlias = Any
"""A decoded Trello JSON answer (py-trello returns plain dicts and lists)."""

ACTIONS_PER_CALL = 1000
HISTORY_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("title",),
    "desc": ("description",),
    "idList": ("status",),
    "due": ("due",),
    "dueComplete": ("done",),
}
"""A card field an ``updateCard`` action names in ``data.old`` -> the record fields it changes."""
HISTORY_ACTIONS: dict[str, tuple[str, ...]] = {
    "createCard": (),
    "updateCard": (),
    "addLabelToCard": ("labels",),
    "removeLabelFromCard": ("labels",),
    "addMemberToCard": ("assignees",),
    "removeMemberFromCard": ("assignees",),
    "updateCustomFieldItem": (),
}
"""The card actions that change a field (createCard, updateCard and updateCustomFieldItem: see
:meth:`TrelloConnector.history`)."""
CARD_FIELDS = "name,desc,idList,idMembers,idLabels,due,dueComplete,closed,dateLastActivity,shortUrl,badges"
CARD_PARAMS = {
    "fields": f"{CARD_FIELDS},idBoard",
    "attachments": "true",
    "attachment_fields": "url",
    "customFieldItems": "true",
}
"""One card read with everything a record needs (the board it is on, to tell a card moved elsewhere)."""
BATCH_URLS = 10
"""Trello's batch route takes "a list of API routes. Maximum of 10 routes allowed" (API reference, GET /batch)."""
BY_CARD_UP_TO = 10
"""At most this many cards are read by id (one plain read, or one batch call); more, with one board listing."""
BY_CARD_FROM = 500
"""Cards are read by id only on a board this big (as its last listing counted, archived cards included).

A listing costs one request of the rate limits whatever it holds; a batch call, as syncd reads Trello's reference
(silent on it), one request per route plus one: 10 cards cost 11 of the token's 100 per 10 s. On a small board the
listing is both cheaper and small. On a big one its answer grows with every card ever archived (5,000 cards: about
1 s to serve here, megabytes over the network, and Trello may stop "expensive" requests), so a few changed cards
are read by id and the cost follows the change, not the board."""


class _RecordingSession(BaseUrlSession):
    """Keeps the last response, because py-trello drops it (and with it a 429's Retry-After)."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        super().__init__(base_url, timeout_s=timeout_s)
        self.last: requests.Response | None = None

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # noqa: ANN401 - forwarded to requests
        """Send, and remember the answer."""
        self.last = super().request(method, url, *args, **kwargs)
        return self.last


@dataclass(frozen=True)
class _Client:
    """One thread's py-trello client and its transport (which keeps the response py-trello drops)."""

    sdk: TrelloClient
    session: _RecordingSession


def _comment_badge(badges: object) -> int | None:
    """The card's comment count from its badges (in a PUT's answer and in reads that ask for ``badges``)."""
    if isinstance(badges, dict) and isinstance(badges.get("comments"), int):
        return int(badges["comments"])
    return None


def _parse_time(text: str) -> datetime:
    return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _signed_at(date: object) -> float | None:
    """A delivery's action date as epoch seconds (for replay detection); None if it has none readable."""
    try:
        return _parse_time(date).timestamp() if isinstance(date, str) else None
    except ValueError:
        return None


def _format_due(due: date | datetime | None) -> str | None:
    """``due`` as Trello writes it (``2027-01-18T17:00:00.000Z``: UTC, milliseconds, always a four-digit year).

    A day Trello cannot hold (its ``CAPABILITIES.limits``) raises InvalidItem naming the due date: nothing
    malformed is ever sent. A date is midnight UTC.
    """
    if due is None:
        return None
    try:
        moment: datetime | None = utc(due) if isinstance(due, datetime) else datetime.combine(due, time(0), UTC)
    except OverflowError:  # an instant whose UTC day is before year 1 or after 9999
        moment = None
    first, last = CAPABILITIES.limits.due_range or (date.min, date.max)
    if moment is None or not first <= moment.date() <= last:
        raise InvalidItem(
            TOOL,
            f"Trello holds due dates from {first.isoformat()} to {last.isoformat()}, not {due.isoformat()}",
            field="due",
        )
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


class TrelloConnector(ConnectorBase[_Client]):
    """One Trello board behind the Connector protocol."""

    kind: ClassVar[str] = "trello"
    capabilities: ClassVar[Capabilities] = CAPABILITIES
    handshake: ClassVar[bool] = CAPABILITIES.handshake

    def __init__(
        self,
        *,
        base_url: str,
        key: str,
        token: str,
        board_id: str,
        people: Mapping[str, str] | None = None,
        buckets: Sequence[TokenBucket] | None = None,
        policy: RetryPolicy | None = None,
        timeout_s: float = 30.0,
        secret: str | None = None,
        callback_url: str | None = None,
    ) -> None:
        # Trello allows 100 requests per 10 s per token, and 300 per 10 s per API key (all tokens of the app).
        super().__init__(
            buckets=buckets
            if buckets is not None
            else [shared_bucket(TOOL, token, 100, 10), shared_bucket(TOOL, key, 300, 10)],
            policy=policy,
        )
        self.board_id = board_id
        self.secret = secret
        self.callback_url = callback_url
        self.people = {email.lower(): who for email, who in (people or {}).items()}
        self._base_url = base_url
        self._key = key
        self._token = token
        self._timeout_s = timeout_s
        self._me: str | None = None  # syncd's own id in the tool, read once (see _my_id)
        self._lists: dict[str, str] | None = None
        self._custom: dict[str, custom.Definition] | None = None
        self._labels: dict[str, str] | None = None
        self._looked_up: set[str | None] = set()
        self._board_cards: int | None = None
        """How many cards the board's last listing held (None: not listed yet)."""
        self._members: list[Json] | None = None
        self._names_of: tuple[object, object, dict[str, str], dict[str, str]] | None = None
        """The lists and labels read last, with their names by id (rebuilt when either is read again, and
        dropped when syncd adds a label to the board, which changes the labels read in place)."""
        self._people_of: tuple[object, dict[str, Person]] | None = None
        """The board members read last, with each one's Person by member id, made as it is first met."""
        self._deliveries = DeliveryLog()

    # ----- plumbing ---------------------------------------------------------------------------------------

    def _new_client(self) -> _Client:
        """py-trello's client on our transport (base URL, timeout, last response); it makes no request."""
        session = _RecordingSession(self._base_url, self._timeout_s)
        # Without an OAuth token secret, py-trello sends api_secret as the `token` query parameter.
        return _Client(TrelloClient(api_key=self._key, api_secret=self._token, http_service=session), session)

    def _translate(self, error: Exception, ref: str | None) -> ConnectorError:
        """The error table, given the last response: py-trello's exceptions drop a 429's Retry-After."""
        return translate(error, ref, self._client().session.last)

    def _fetch(
        self,
        path: str,
        method: str = "GET",
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        ref: str | None = None,
        idempotent: bool = True,
        cost: int = 1,
    ) -> Json:
        client = self._client().sdk
        return self._call(
            lambda: client.fetch_json(path, http_method=method, query_params=dict(params or {}), post_args=body),
            ref=ref,
            idempotent=idempotent,
            cost=cost,
        )

    # ----- directory ----------------------------------------------------------------------------------------

    def _list_ids(self) -> dict[str, str]:
        if self._lists is None:
            lists = self._fetch(f"/boards/{self.board_id}/lists", params={"filter": "open", "fields": "name"})
            self._lists = {item["name"]: item["id"] for item in lists}
        return self._lists

    def _label_ids(self) -> dict[str, str]:
        if self._labels is None:
            labels = self._fetch(f"/boards/{self.board_id}/labels", params={"fields": "name", "limit": "1000"})
            self._labels = {item["name"]: item["id"] for item in labels if item.get("name")}
        return self._labels

    def _board_members(self) -> list[Json]:
        if self._members is None:
            self._members = self._fetch(f"/boards/{self.board_id}/members", params={"fields": "username,fullName"})
        return self._members

    def _person(self, member_id: str) -> Person:
        members = self._board_members()
        if self._people_of is None or self._people_of[0] is not members:
            self._people_of = (members, {})
        known = self._people_of[1]
        if member_id not in known:
            member = next((m for m in members if m["id"] == member_id), None)
            username = member["username"] if member else None
            email = next((e for e, who in self.people.items() if who in {member_id, username}), None)
            known[member_id] = Person(email, account=member_id, name=member.get("fullName") if member else None)
        return known[member_id]

    def _names(self) -> tuple[dict[str, str], dict[str, str]]:
        """List id -> name and label id -> name, as the board's lists and labels were last read."""
        lists, labels = self._list_ids(), self._label_ids()
        if self._names_of is None or self._names_of[0] is not lists or self._names_of[1] is not labels:
            by_id = {list_id: name for name, list_id in lists.items()}
            self._names_of = (lists, labels, by_id, {label_id: name for name, label_id in labels.items()})
        return self._names_of[2], self._names_of[3]

    def _member_id(self, person: Person) -> str:
        if person.account and any(m["id"] == person.account for m in self._board_members()):
            return person.account
        who = self.people.get((person.email or "").lower())
        member = next((m for m in self._board_members() if who in {m["id"], m["username"]}), None)
        if member is None:
            raise InvalidItem(
                TOOL,
                f"{person.label()} is not in the Trello people directory or not a board member: "
                "add 'e-mail: username' to the department's people",
                field="assignees",
            )
        return str(member["id"])

    # ----- reading --------------------------------------------------------------------------------------------

    def _record(self, card: Json) -> Record:
        list_names, label_names = self._names()
        unseen = ({card.get("idList")} | set(card.get("idLabels") or ())) - list_names.keys() - label_names.keys()
        if unseen - self._looked_up:
            # A list or label created since the board was first read (a daemon runs for months): read them again,
            # once per unknown id (a card in a closed list must not cost two requests every time it is read).
            self._looked_up |= unseen
            self._lists = self._labels = None
            list_names, label_names = self._names()
        unknown_labels = [i for i in card.get("idLabels") or [] if i not in label_names]
        markers = [
            a["url"][len(MARKER_URL) :]
            for a in card.get("attachments") or []
            if a.get("url", "").startswith(MARKER_URL)
        ]
        fields: dict[str, Any] = {
            "title": card["name"],
            "description": card.get("desc") or "",
            "done": bool(card.get("dueComplete")),
            "assignees": tuple(
                sorted(
                    (self._person(m) for m in card.get("idMembers") or []),
                    key=lambda person: (person.email is None, person.email or "", person.account or ""),
                )
            ),
            "due": read_or_keep(str(card["due"]), _parse_time) if card.get("due") else None,
            # A label the board does not list (not even after a fresh read) is reported, never named by its id.
            "labels": Unreadable(f"unknown label ids {', '.join(unknown_labels)}")
            if unknown_labels
            else tuple(sorted(label_names[i] for i in card.get("idLabels") or [])),
        }
        if "customFieldItems" in card:  # a PUT's answer has none: such a record says nothing of custom fields
            fields["custom"] = custom.card_values(card, self._custom_fields())
        if card.get("idList") in list_names:
            fields["status"] = list_names[card["idList"]]
        elif card.get("idList"):
            fields["status"] = Unreadable(f"list {card['idList']} (closed, or not on the board)")
        return Record(
            tool=TOOL,
            ref=card["id"],
            version=card["dateLastActivity"],
            modified=_parse_time(card["dateLastActivity"]),
            fields=fields,
            marker=markers[0] if markers else None,
            archived=bool(card.get("closed")),
            url=card.get("shortUrl"),
            comments=_comment_badge(card.get("badges")),
        )

    def _all_cards(self) -> list[Json]:
        """Every card of the board, archived included, with attachments (one request)."""
        params = {"fields": CARD_FIELDS, "attachments": "true", "attachment_fields": "url", "customFieldItems": "true"}
        cards: list[Json] = self._fetch(f"/boards/{self.board_id}/cards/all", params=params)
        self._board_cards = len(cards)
        return cards

    def fetch(self, refs: Sequence[str]) -> list[Record]:
        """Current records for refs: one board listing, or on a big board a few read by id (:data:`BY_CARD_FROM`)."""
        cards = self._cards(refs)
        return [self._record(cards[ref]) for ref in dict.fromkeys(refs) if ref in cards]

    def _cards(self, refs: Iterable[str]) -> dict[str, Json]:
        """The cards of this board among refs, by id; a card deleted or moved to another board is left out."""
        wanted = list(dict.fromkeys(refs))
        if len(wanted) > BY_CARD_UP_TO or (self._board_cards or 0) < BY_CARD_FROM:
            named = set(wanted)
            return {card["id"]: card for card in self._all_cards() if card["id"] in named}
        found: dict[str, Json] = {}
        for start in range(0, len(wanted), BATCH_URLS):
            chunk = wanted[start : start + BATCH_URLS]
            # One route alone is read plainly: a batch call would only spend one request more.
            cards = [self._card(chunk[0])] if len(chunk) == 1 else self._batch(chunk)
            found |= {ref: card for ref, card in zip(chunk, cards, strict=True) if _on_board(card, self.board_id)}
        return found

    def _batch(self, refs: Sequence[str]) -> list[Json | None]:
        """Up to ten cards by id in one batch call (None for one that does not exist)."""
        # Each route's own query is encoded once here and once more with the batch call's: Trello splits ``urls``
        # on commas, so a comma inside one route (the field list) must arrive encoded.
        urls = ",".join(f"/cards/{ref}?{urlencode(CARD_PARAMS)}" for ref in refs)
        # Spent from the budget as the service may count it: one request per route, plus the batch call.
        answers: list[Json] = self._fetch("/batch", params={"urls": urls}, cost=len(refs) + 1)
        cards: list[Json | None] = []
        for ref, answer in zip(refs, answers, strict=True):
            card = answer.get("200") if isinstance(answer, dict) else None
            if card is None and (not isinstance(answer, dict) or answer.get("statusCode") not in {400, 404}):
                # Not "no such card" but a failed read of it (a 429 for one route, a 5xx): read on its own, with
                # the retry policy, which says what is wrong if it keeps failing.
                card = self._card(ref)
            cards.append(card)
        return cards

    def _card(self, ref: str) -> Json | None:
        """One card by id with its attachments (None if it does not exist)."""
        try:
            return self._fetch(f"/cards/{ref}", params=CARD_PARAMS, ref=ref)
        except ItemNotFound:
            return None

    def find_by_marker(self, marker: str, since: datetime, fields: Mapping[str, Any] | None = None) -> Record | None:
        """The card syncd created since ``since`` carrying this sync_id's attachment.

        The board's ``createCard`` actions since then (newest first, one request per 1000) name the cards syncd's
        member created, with the name each was created with; those with the name the create sent (all of them
        when it is not known) are read with their attachments, one request each: bounded by syncd's own
        creates since ``since``, not by the board.
        """
        me = self._my_id()
        earliest = (since - CLOCK_SLACK).astimezone(UTC).isoformat().replace("+00:00", "Z")
        name = (fields or {}).get("title")
        made = [
            action["data"]["card"]
            for action in reversed(self._actions_since(earliest, kind="createCard"))
            if action.get("idMemberCreator") == me
        ]
        for card in made:
            if name is not None and card.get("name") != name:
                continue
            try:
                record = self._read(str(card["id"]))
            except ItemNotFound:
                continue  # deleted since: not a mirror to adopt
            if record.marker == marker:
                return record
        return None

    # ----- change feed -------------------------------------------------------------------------------------------

    def _actions_since(self, since: str, kind: str = "all") -> list[Json]:
        """Every board action (of ``kind``) after ``since``, newest first, paging with ``before`` past 1000 per call."""
        actions: list[Json] = []
        before: str | None = None
        while True:
            params = {"filter": kind, "limit": str(ACTIONS_PER_CALL), "since": since, "memberCreator": "false"}
            if before:
                params["before"] = before
            page: list[Json] = self._fetch(f"/boards/{self.board_id}/actions", params=params)
            actions.extend(page)
            if len(page) < ACTIONS_PER_CALL:
                return actions
            before = page[-1]["id"]

    def changes(self, cursor: Cursor | None) -> ChangeBatch:
        """Cards touched since the cursor's action; a full board listing on first use."""
        if not cursor or not cursor.get("since"):
            newest = self._fetch(f"/boards/{self.board_id}/actions", params={"filter": "all", "limit": "1"})
            since = newest[0]["id"] if newest else "1970-01-01T00:00:00.000Z"
            records = tuple(self._record(card) for card in self._all_cards())
            return ChangeBatch(records=records, deleted=(), cursor={"since": since}, full_scan=True)
        actions = self._actions_since(str(cursor["since"]))
        if not actions:
            return ChangeBatch(records=(), deleted=(), cursor=dict(cursor))
        return self._from_actions(actions, {"since": actions[0]["id"]})

    def _from_actions(self, actions: Iterable[Json], cursor: Cursor) -> ChangeBatch:
        touched: set[str] = set()
        deleted: set[str] = set()
        for action in actions:
            card = (action.get("data") or {}).get("card") or {}
            if "id" not in card:
                continue
            (deleted if action.get("type") == "deleteCard" else touched).add(card["id"])
        records: list[Record] = []
        if touched - deleted:
            cards = self._cards(sorted(touched - deleted))
            records = [self._record(cards[ref]) for ref in sorted(touched - deleted) if ref in cards]
            # A card moved to another board is no longer ours: it left scope like a deleted one.
            deleted |= {ref for ref in touched - deleted if ref not in cards}
        return ChangeBatch(records=tuple(records), deleted=tuple(sorted(deleted)), cursor=cursor)

    # ----- writing ----------------------------------------------------------------------------------------------

    def _list_id(self, status: str, ref: str | None) -> str:
        lists = self._list_ids()
        if status not in lists:
            raise InvalidItem(TOOL, f"no list {status!r} on the board; known: {sorted(lists)}", ref=ref, field="status")
        return lists[status]

    def _label_id(self, name: str) -> str:
        """The label's id, created on the board when missing (exactly once: a lost answer re-reads the labels)."""
        labels = self._label_ids()
        if name not in labels:

            def post() -> str:
                body = {"name": name, "color": None}
                return str(self._fetch(f"/boards/{self.board_id}/labels", "POST", body=body, idempotent=False)["id"])

            def look() -> str | None:
                self._labels = None
                return self._label_ids().get(name)

            labels[name] = self._send_once(post, look, what="label")
            self._labels = labels
            self._names_of = None  # changed in place: the names by id are built again
        return labels[name]

    def _custom_fields(self) -> dict[str, custom.Definition]:
        """The board's custom fields by name, with their options' ids (one request, read once)."""
        if self._custom is None:
            self._custom = custom.definitions(self._fetch(f"/boards/{self.board_id}/customFields"))
        return self._custom

    def _custom_items(self, fields: Mapping[str, Any], ref: str | None) -> list[tuple[str, str, dict[str, Any]]]:
        """(write field, custom field id, item body) for each placed value; what Trello lacks raises InvalidItem."""
        items = []
        for name, placed in fields.items():
            if not isinstance(placed, Placed) or placed.custom is None:
                continue
            definition = self._custom_fields().get(placed.custom)
            if definition is None:
                raise InvalidItem(TOOL, f"no custom field {placed.custom!r} on the board", ref=ref, field=name)
            items.append((name, definition[0].id, custom.item_body(definition, placed.value, field=name, ref=ref)))
        return items

    def _write_items(self, ref: str, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        """One PUT per custom field (Trello's only way); a refusal names the write field."""
        for name, field_id, body in items:
            try:
                self._fetch(f"/cards/{ref}/customField/{field_id}/item", "PUT", body=body, ref=ref)
            except InvalidItem as refused:
                raise InvalidItem(TOOL, refused.message, ref=ref, status=refused.status, field=name) from refused

    def _created(self, made: Record | str, fields: Mapping[str, Any]) -> Record:
        """The new card, with its custom fields written after the create (Trello's create cannot set them)."""
        record = super()._created(made, fields)
        items = self._custom_items(fields, record.ref)
        if not items:
            return record
        self._write_items(record.ref, items)
        return dataclasses.replace(self._read(record.ref), marker=record.marker)

    def _card_body(self, fields: Mapping[str, Any], ref: str | None) -> dict[str, Any]:
        """The parameters of a create or PUT; a value Trello cannot take raises InvalidItem naming its field."""
        body: dict[str, Any] = {}
        if "title" in fields:
            body["name"] = fields["title"]
        if "description" in fields:
            body["desc"] = fields["description"] or ""
        if "done" in fields:
            body["dueComplete"] = bool(fields["done"])
        if "due" in fields:
            body["due"] = _format_due(fields["due"])
        if fields.get("status") is not None and not isinstance(fields["status"], Placed):
            body["idList"] = self._list_id(fields["status"], ref)
        if "assignees" in fields:
            body["idMembers"] = ",".join(self._member_id(person) for person in fields["assignees"])
        if "labels" in fields:
            try:
                body["idLabels"] = ",".join(self._label_id(name) for name in fields["labels"])
            except InvalidItem as refused:
                # Trello refused to create a board label; its "invalid value for name" is the label's name.
                raise InvalidItem(TOOL, refused.message, ref=ref, status=refused.status, field="labels") from refused
        return body

    def _create_body(self, fields: Mapping[str, Any], marker: str) -> dict[str, Any]:
        """A card with its marker attached in the same request (:meth:`create` is the base's, exactly once)."""
        body = self._card_body(fields, None)
        self._custom_items(fields, None)  # checked before the card is made; written once it is (_created)
        if "idList" not in body:
            body["idList"] = next(iter(self._list_ids().values()), "")
        body["urlSource"] = MARKER_URL + marker
        return body

    def _send_create(self, body: dict[str, Any], marker: str) -> Record:
        """POST the card; Trello answers with it (no read-back), though without the attachment it was made with."""
        card = self._fetch("/cards", "POST", body=body, idempotent=False)
        return self._record({**card, "attachments": [{"url": MARKER_URL + marker}]})

    def update(self, ref: str, fields: Mapping[str, Any], expected_version: str | None = None) -> Record:
        """Write the fields in one PUT (a list move included) and return the card as it is afterwards.

        With ``expected_version``, one read of the card's last activity first checks nobody changed it since the
        plan was made (Trello has no conditional write): an edit made meanwhile is planned again, not overwritten.
        """
        if isinstance(fields.get("labels"), LabelPart):
            current = self._read(ref)  # the labels a part leaves as they are, and the version with them
            self._check_version(ref, expected_version, current.version)
            fields = self._whole_labels(fields, current)
        else:
            self._check_version(ref, expected_version)
        body = self._card_body(fields, ref)
        items = self._custom_items(fields, ref)
        if items:
            # Trello answers an item PUT with the item alone: the card is read once after them all.
            if body:
                self._fetch(f"/cards/{ref}", "PUT", body=body, ref=ref)
            self._write_items(ref, items)
            return self._read(ref)
        if body:
            card = self._fetch(f"/cards/{ref}", "PUT", body=body, ref=ref)
            # Trello answers a PUT with the card as it is now: no second request to read it back. (It carries no
            # attachments, so no marker: the engine knows whose card it wrote.)
            if isinstance(card, dict) and {"id", "dateLastActivity", "idList", "name"} <= card.keys():
                return self._record(card)
        return self._read(ref)

    def _read(self, ref: str) -> Record:
        return self._record(self._fetch(f"/cards/{ref}", params=CARD_PARAMS, ref=ref))

    def _current_version(self, ref: str) -> str:
        """``dateLastActivity``, read alone."""
        return str(self._fetch(f"/cards/{ref}", params={"fields": "dateLastActivity"}, ref=ref)["dateLastActivity"])

    def archive(self, ref: str) -> Record:
        """Close the card (Trello's archive; reopening it restores it)."""
        self._fetch(f"/cards/{ref}", "PUT", body={"closed": True}, ref=ref)
        return self._read(ref)

    def delete(self, ref: str) -> None:
        """DELETE the card (gone for good: only its ``deleteCard`` action remains); already gone (404) is done."""
        try:
            self._fetch(f"/cards/{ref}", "DELETE", ref=ref)
        except ItemNotFound:
            return

    def restore(self, ref: str) -> Record:
        """Reopen the card (``PUT /cards/{id}`` with ``closed: false``): it is back in its list."""
        self._fetch(f"/cards/{ref}", "PUT", body={"closed": False}, ref=ref)
        return self._read(ref)

    # ----- comments, schema ------------------------------------------------------------------------------------

    def history(self, ref: str) -> list[FieldChange]:
        """The card's field changes from its actions (one read; a PUT logs one action per field), creation included.

        A custom field's change (``updateCustomFieldItem``: Trello's create cannot set one, so it is always logged)
        names the field as :func:`~syncd.model.custom_change` does; the card feed shows it only when the filter
        asks for it.
        """
        actions = self._fetch(
            f"/cards/{ref}/actions",
            params={"filter": ",".join(HISTORY_ACTIONS), "limit": str(ACTIONS_PER_CALL)},
            ref=ref,
        )
        me = self._my_id()
        changes: list[FieldChange] = []
        for action in actions:
            moment, by_self = _parse_time(str(action["date"])), action.get("idMemberCreator") == me
            # Mapped as card members are: the board's member list is read once per connector, then cached.
            person = self._person(str(action["idMemberCreator"])).email if action.get("idMemberCreator") else None
            kind = action.get("type")
            if kind == "createCard":
                names: tuple[str, ...] = tuple(name for fields in HISTORY_FIELDS.values() for name in fields)
            elif kind == "updateCard":
                old = (action.get("data") or {}).get("old") or {}
                names = tuple(name for key in old for name in HISTORY_FIELDS.get(key, ()))
            elif kind == "updateCustomFieldItem":
                names = self._custom_changed((action.get("data") or {}).get("customField") or {})
            else:
                names = HISTORY_ACTIONS[str(kind)]
            changes += [FieldChange(name, moment, by_self, person) for name in names]
        return changes

    def _custom_changed(self, field: Json) -> tuple[str, ...]:
        """The record field an ``updateCustomFieldItem`` action changed: its ``data.customField`` {id, name, type}.

        The id is looked up among the board's fields (read once), so a field renamed since keeps its history; a
        field syncd does not read (a kind it cannot carry, or one deleted since) changed nothing it reads.
        """
        found = next((name for name, (d, _) in self._custom_fields().items() if d.id == field.get("id")), None)
        return (custom_change(found),) if found is not None else ()

    def _my_id(self) -> str:
        """The member syncd's token acts as (``/members/me``, read once), to tell its own actions from people's."""
        if self._me is None:
            self._me = str(self._fetch("/members/me", params={"fields": "id"})["id"])
        return self._me

    def comments(self, ref: str) -> list[Comment]:
        """Comments (the card's commentCard actions), oldest first."""
        actions = self._fetch(
            f"/cards/{ref}/actions", params={"filter": "commentCard", "limit": str(ACTIONS_PER_CALL)}, ref=ref
        )
        return [self._comment(ref, action) for action in reversed(actions)]

    def _comment(self, ref: str, action: Json) -> Comment:
        return Comment(
            ref=ref,
            id=action["id"],
            author=self._person(action["idMemberCreator"]),
            body=action["data"]["text"],
            created=_parse_time(action["date"]),
        )

    def _post_comment(self, ref: str, body: str) -> Comment:
        """Comment on the card in Markdown (:meth:`add_comment` is the base's, exactly once)."""
        path = f"/cards/{ref}/actions/comments"
        return self._comment(ref, self._fetch(path, "POST", body={"text": body}, ref=ref, idempotent=False))

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[str]:
        """Card ids a delivery names, after checking X-Trello-Webhook: base64 HMAC-SHA1 of body + callback URL."""
        if not self.secret or not self.callback_url:
            raise ToolConfigError(TOOL, "webhook verification needs the application secret and the callback URL")
        received = next((v for k, v in headers.items() if k.lower() == "x-trello-webhook"), "")
        digest = hmac.new(self.secret.encode(), body + self.callback_url.encode(), hashlib.sha1).digest()
        if not hmac.compare_digest(received.encode(), base64.b64encode(digest)):
            raise AuthFailed(TOOL, "webhook signature does not match: not from Trello, or the secret or URL changed")
        try:
            action = json.loads(body)["action"]
            card = action["data"].get("card") or {}
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
            raise InvalidItem(TOOL, "webhook body is not a Trello action delivery") from error
        # The action id and date are in the signed body (signed with the callback URL): a replay keeps both.
        identity = str(action["id"]) if "id" in action else body_identity(body)
        if not self._deliveries.first_time(identity, _signed_at(action.get("date"))):
            return []
        if self._me is not None and action.get("idMemberCreator") == self._me:
            return []  # syncd's own write (the action's creator is syncd's member): nothing new to read
        return [str(card["id"])] if "id" in card else []

    def identify(self) -> str:
        """The member syncd's token acts as: an action it created is syncd's own (see :meth:`verify_webhook`)."""
        return self._my_id()

    def webhook_unready(self) -> str | None:
        """Trello signs each delivery with the application secret over body and callback URL: both are needed."""
        if not self.secret:
            return "set connection.secret to verify them"
        return None if self.callback_url else "no callback URL: set public_url"

    def is_handshake(self, headers: Mapping[str, str]) -> bool:
        """Trello has no handshake (its HEAD check of the callback URL is answered by the route itself)."""
        return False

    def accept_handshake(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Trello has no handshake: it HEAD-checks the callback URL before creating the webhook."""
        raise ToolConfigError(TOOL, "Trello webhooks have no handshake")

    def agreed_secret(self) -> AgreedSecret | None:
        """Nothing is agreed: the secret is the application's."""
        return None

    def use_agreed_secret(self, agreed: AgreedSecret) -> None:
        """Nothing is agreed: the secret is the application's."""

    def keep_agreed_secret(self, earlier: Connector) -> None:
        """Nothing is agreed (the secret is the application's); deliveries seen stay seen across a reload."""
        if isinstance(earlier, TrelloConnector):
            self._deliveries = earlier._deliveries

    def verifiable(self) -> bool:
        """Deliveries can be checked with the application secret and the callback URL they were signed over."""
        return bool(self.secret and self.callback_url)

    def ensure_webhook(self, url: str | None = None) -> str:
        """Register (or reactivate) the board's webhook to callback_url; its id. Trello HEAD-checks the URL first.

        The callback URL is part of every delivery's signature, so it is fixed when the connector is built; a
        ``url`` given here must be that one.
        """
        if not self.callback_url:
            raise ToolConfigError(TOOL, "set the webhook callback URL before registering a Trello webhook")
        if url is not None and url != self.callback_url:
            raise ToolConfigError(TOOL, "the webhook URL must be the callback URL the connector verifies with")
        for hook in self._fetch(f"/tokens/{self._token}/webhooks"):
            if hook.get("callbackURL") == self.callback_url and hook.get("idModel") == self.board_id:
                if not hook.get("active", True):
                    self._fetch(f"/webhooks/{hook['id']}", "PUT", body={"active": True})
                return str(hook["id"])
        body = {"callbackURL": self.callback_url, "idModel": self.board_id, "description": "syncd"}
        return str(self._fetch("/webhooks", "POST", body=body, idempotent=False)["id"])

    def describe(self) -> Schema:
        """Lists (a card moves between any two), board members with directory e-mails, labels."""
        lists = tuple(self._list_ids())
        return Schema(
            tool=TOOL,
            statuses=lists,
            transitions=dict.fromkeys(lists, lists),
            # Members outside the people directory have no e-mail: sort them after those who have one.
            people=tuple(
                sorted(
                    (self._person(m["id"]) for m in self._board_members()),
                    key=lambda person: (person.email is None, person.email or "", person.account or ""),
                )
            ),
            labels=tuple(sorted(self._label_ids())),
            custom_fields=tuple(definition for definition, _ in self._custom_fields().values()),
        )


def _on_board(card: Json | None, board_id: str) -> bool:
    """Whether a card read by id exists and is still on this board (one moved to another board left the scope)."""
    return card is not None and card.get("idBoard") == board_id
