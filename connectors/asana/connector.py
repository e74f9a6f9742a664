"""Marketing's Asana project, read and written through the official asana v5 SDK.

How the Connector protocol maps onto Asana:

- ``status`` is the task's section in the synced project (moved with ``POST /sections/{gid}/addTask``), ``done`` is
  ``completed``, ``description`` is ``html_notes`` (Asana's restricted HTML), ``labels`` are tag names (a missing tag
  is created, as a person typing it would), ``due`` is ``due_on`` (a date) or ``due_at`` (an instant), never both.
- The marker is an external attachment on the task whose URL names the sync_id. (Asana's ``external`` data needs
  OAuth: a personal access token can neither set nor look it up.) It is attached right after the create, so a
  create whose answer was lost is found among the tasks syncd's account created since it was sent, by the marker
  or, before the marker is on, by the name it was created with; the marker is then attached.
- The change feed is the project's event stream. Asana answers 412 on the first call and when a token expired (24
  h): the connector then lists the whole project (a full scan) with the fresh token taken *before* listing, so a
  change made during the listing is seen again, never lost. Events are delivered at most once, so a full scan also
  runs every ``reconcile_every`` regardless. Changed tasks are read with one paged ``modified_since`` listing; the
  ones it misses are read on their own (one full listing when there are many): tasks that left the project, and
  tasks moved to another section, since "moving to a new container" does not change ``modified_at`` (the spec's
  Task ``modified_at``), so such a task comes back with its old version and its new status. An idle poll costs
  exactly one request.
- People: a user's ``email`` may be missing (hidden from syncd's account); the department's people directory
  (``people``: e-mail -> Asana user gid, or the e-mail Asana knows them by) names them, else one ``GET /users/{gid}``
  per person (cached), else the person has no e-mail and the mapping reports them. Assignees are written by gid from
  the directory, else by e-mail, which Asana accepts as a user reference.
- Archive removes the task from the synced project (it stays in the workspace and can be added back), because
  Asana has no archive and ``completed`` is a synced field of its own.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, TypeAlias, TypeVar

import asana
from asana.rest import ApiException

from connectors.asana import custom
from connectors.asana.capabilities import CAPABILITIES
from connectors.asana.errors import TOOL, refused_field, translate
from connectors.base import Connector, ConnectorBase
from connectors.pacing import RetryPolicy, TokenBucket, shared_bucket
from connectors.webhooks import DeliveryLog, body_identity
from syncd.connector import AgreedSecret, Capabilities
from syncd.crash import crash_point
from syncd.errors import (
    AuthFailed,
    ConnectorError,
    InvalidItem,
    ItemNotFound,
    OutcomeUnknown,
    PermissionDenied,
    ToolConfigError,
)
from syncd.model import (
    ChangeBatch,
    Comment,
    Cursor,
    CustomField,
    FieldChange,
    Person,
    Placed,
    Record,
    Schema,
    Unreadable,
    custom_change,
    read_or_keep,
    utc,
)
from syncd.redact import remember
from syncd.uncertain import CLOCK_SLACK, MARKER_URL

T = TypeVar("T")
Sdk: TypeAlias = Any
"""An object of the asana SDK, which ships no type hints."""

TASK_FIELDS = ",".join(
    [
        "name",
        "html_notes",
        "completed",
        "assignee.email",
        "assignee.name",
        "due_on",
        "due_at",
        "memberships.project.gid",
        "memberships.section.name",
        "tags.name",
        "modified_at",
        "permalink_url",
        "created_by",
        *custom.VALUE_FIELDS,
    ]
)
PAGE_SIZE = 100
ADD_PERSON = "add 'e-mail: user gid' to the department's people"
MARKER_NAME = "syncd marker (keep: it links this task to its mirrors)"

_MARKING: dict[str, set[str]] = {}
_MARKING_LOCK = threading.Lock()


def _marking(project: str, gid: str, *, start: bool | None = None) -> bool:
    """Tasks whose marker a thread of this process is attaching right now (none of another create's business).

    With ``start`` True or False, register or release ``gid``; without, say whether it is registered.
    """
    with _MARKING_LOCK:
        held = _MARKING.setdefault(project, set())
        if start is True:
            held.add(gid)
        elif start is False:
            held.discard(gid)
        return gid in held


HISTORY_STORIES: dict[str, tuple[str, ...]] = {
    "name_changed": ("title",),
    "notes_changed": ("description",),
    "section_changed": ("status",),
    "marked_complete": ("done",),
    "marked_incomplete": ("done",),
    "assigned": ("assignees",),
    "unassigned": ("assignees",),
    "due_date_changed": ("due",),
    "added_to_tag": ("labels",),
    "removed_from_tag": ("labels",),
}
"""A system story's subtype -> the record fields the change it tells of changed (custom fields: CUSTOM_STORIES)."""
CUSTOM_STORIES = frozenset(
    f"{kind}_custom_field_changed" for kind in ("enum", "multi_enum", "text", "number", "date", "people")
)
"""The stories of a custom field's change (StoryResponse ``custom_field``, asana.oas.yaml): the field they name."""


def _story_fields(story: Mapping[str, Any]) -> tuple[str, ...]:
    """The record fields a system story tells a change of (none for a comment or a story syncd does not read).

    Tasks key their custom values by the field's name (:func:`connectors.asana.custom.task_values`), and a story's
    ``custom_field`` is the field as it is now, so a field renamed since keeps its history.
    """
    subtype = str(story.get("resource_subtype"))
    if subtype in CUSTOM_STORIES:
        name = (story.get("custom_field") or {}).get("name")
        return (custom_change(str(name)),) if name else ()
    return HISTORY_STORIES.get(subtype, ())


def _parse_time(text: str) -> datetime:
    return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


class AsanaConnector(ConnectorBase[Sdk]):
    """One Asana project behind the Connector protocol."""

    kind: ClassVar[str] = "asana"
    capabilities: ClassVar[Capabilities] = CAPABILITIES
    handshake: ClassVar[bool] = CAPABILITIES.handshake

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        project_gid: str,
        bucket: TokenBucket | None = None,
        policy: RetryPolicy | None = None,
        timeout_s: float = 30.0,
        reconcile_every: timedelta = timedelta(hours=1),
        webhook_secret: str | None = None,
        people: Mapping[str, str] | None = None,
    ) -> None:
        # 1500 requests per minute per token on paid plans (150 on the free plan: pass a smaller bucket).
        super().__init__(buckets=bucket if bucket is not None else shared_bucket(TOOL, token, 1500, 60), policy=policy)
        self.project_gid = project_gid
        self.people = {email.lower(): account for email, account in (people or {}).items()}
        self._people_back = {account.lower(): email for email, account in self.people.items()}
        self._looked_up: dict[str, str | None] = {}  # user gid -> the e-mail GET /users/{gid} showed (None: hidden)
        self.webhook_secret = webhook_secret
        self.webhook_id: str | None = None
        """The webhook ``webhook_secret`` belongs to, once known (created here, or read from the store)."""
        self._tags: dict[str, str] | None = None
        self.reconcile_every = reconcile_every
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout_s = timeout_s
        self._me: str | None = None  # syncd's own id in the tool, read once (see _my_id)
        self._sections: dict[str, str] | None = None
        self._custom: dict[str, tuple[CustomField, dict[str, str]]] | None = None
        self._placed: dict[str, str] = {}  # custom field gid -> the write field last placed there (for refusals)
        self._workspace: str | None = None
        self._deliveries = DeliveryLog()

    # ----- plumbing ---------------------------------------------------------------------------------------

    def _new_client(self) -> Sdk:
        """The asana SDK's API client, its own retries switched off; it makes no request."""
        configuration = asana.Configuration()
        configuration.host = self._base_url + "/api/1.0"
        configuration.access_token = self._token
        configuration.retry_strategy = False  # one retry policy: connectors.pacing
        client = asana.ApiClient(configuration)
        # The SDK starts a thread pool per client for asynchronous requests, which syncd never makes; its
        # finaliser closes that pool, and at interpreter exit that fails on torn-down pipes ("Exception ignored
        # ... Bad file descriptor" on standard error). Closed here, and forgotten, the finaliser has nothing to do.
        pool = getattr(client, "pool", None)
        if pool is not None:
            del client.pool
            pool.close()
            pool.join()
        return client

    def _translate(self, error: Exception, ref: str | None) -> ConnectorError:
        return translate(error, ref)

    def _write(
        self,
        request: Callable[[], T],
        body: Mapping[str, Any],
        *,
        ref: str | None,
        field: str | None = None,
        idempotent: bool = True,
    ) -> T:
        """One write of a task's values; a refusal names the record field (``field``, else Asana's message's).

        An assignee written by e-mail that Asana does not know (or whose e-mail is hidden) gets the fix in the message.
        """
        try:
            return self._call(request, ref=ref, idempotent=idempotent)
        except InvalidItem as error:
            named = error.field or field or refused_field(error.message) or self._placed_named(error.message, body)
            if named is None:
                raise
            message, assignee = error.message, body.get("assignee")
            if named == "assignees" and isinstance(assignee, str) and "@" in assignee:
                message = f"{assignee} is not known to Asana (or hides their e-mail): {ADD_PERSON}"
            elif (email := _refused_email(error.message, body)) is not None:
                message = f"{email} is not known to Asana (or hides their e-mail): {ADD_PERSON}"
            raise InvalidItem(TOOL, message, ref=error.ref, status=error.status, field=named) from error

    def _placed_named(self, message: str, body: Mapping[str, Any]) -> str | None:
        """The write field whose custom field Asana's refusal of ``body`` names (by gid), if one."""
        gid = next((str(gid) for gid in body.get("custom_fields") or {} if str(gid) in message), None)
        return None if gid is None else self._placed.get(gid)

    def _opts(self, **extra: object) -> dict[str, object]:
        return {"opt_fields": TASK_FIELDS, **extra}

    @property
    def _timeout(self) -> dict[str, Any]:
        return {"_request_timeout": self._timeout_s}

    def _tasks_api(self) -> Sdk:
        return asana.TasksApi(self._client())

    # ----- people -----------------------------------------------------------------------------------------

    def _person(self, user: Mapping[str, Any], *, look_up: bool = True) -> Person:
        """The person behind an Asana user: the e-mail the directory gives them, else the one Asana shows.

        Else, with ``look_up``, the one ``GET /users/{gid}`` shows (read once per connector); else none: the mapping
        reports the person, nobody guesses. The directory wins over a shown e-mail: it is the explicit override.
        """
        gid, shown = str(user.get("gid") or ""), str(user.get("email") or "").lower()
        email = self._people_back.get(gid) or self._people_back.get(shown) or shown or None
        if email is None and gid and look_up:
            if gid not in self._looked_up:
                self._looked_up[gid] = self._user_email(gid)
            found = self._looked_up[gid]
            email = self._people_back.get(found or "") or found
        return Person(email, account=gid or None, name=user.get("name"))

    def _user_email(self, gid: str) -> str | None:
        """The e-mail ``GET /users/{gid}`` shows, or None when it hides it or the user cannot be read."""
        try:
            user = self._call(
                lambda: asana.UsersApi(self._client()).get_user(gid, {"opt_fields": "email,name"}, **self._timeout),
                ref=gid,
            )
        except (ItemNotFound, PermissionDenied):
            return None
        return str(user.get("email") or "").lower() or None

    def _user_ref(self, person: Person) -> str:
        """How a write names a person (assignee, people field): the account read, the directory's gid, else e-mail.

        Asana takes an e-mail too (``CustomFieldRequest.people_value``: "user GIDs, emails, or the string "me""), but
        a gid names the person even when Asana hides their e-mail from syncd's account, so it is used where known.
        """
        ref = person.account or self.people.get((person.email or "").lower()) or person.email
        if not ref:
            raise InvalidItem(TOOL, f"{person.label()} has no e-mail: {ADD_PERSON}", field="assignees")
        return ref

    # ----- reading --------------------------------------------------------------------------------------------

    def _record(self, task: Mapping[str, Any]) -> Record:
        membership = next(
            (m for m in task.get("memberships") or [] if (m.get("project") or {}).get("gid") == self.project_gid),
            None,
        )
        assignee = task.get("assignee")
        due: date | datetime | Unreadable | None = None
        if task.get("due_at"):
            due = read_or_keep(str(task["due_at"]), _parse_time)
        elif task.get("due_on"):
            due = read_or_keep(str(task["due_on"]), date.fromisoformat)
        fields: dict[str, Any] = {
            "title": task.get("name") or "",
            "description": task.get("html_notes") or "<body></body>",
            "done": bool(task.get("completed")),
            "assignees": (self._person(assignee),) if assignee else (),
            "due": due,
            "labels": tuple(sorted(tag.get("name") or "" for tag in task.get("tags") or [])),
            "custom": custom.task_values(task, self._person),
        }
        section = (membership or {}).get("section") or {}
        if section:
            fields["status"] = section.get("name")
        creator = (task.get("created_by") or {}).get("gid")
        return Record(
            tool=TOOL,
            ref=str(task["gid"]),
            # A section move leaves modified_at alone ("moving to a new container" does not change it), so the
            # version also names the section: a person's move since syncd's read is seen by the version check.
            version=f"{task.get('modified_at')}@{section.get('gid') or section.get('name') or '-'}",
            modified=_parse_time(task["modified_at"]),
            fields=fields,
            marker=None,  # an attachment, read only when a create is looked up (see find_by_marker)
            archived=membership is None,
            url=task.get("permalink_url"),
            mine=creator is not None and creator == self._my_id(),
        )

    def _read(self, gid: str) -> Record:
        task = self._call(lambda: self._tasks_api().get_task(gid, self._opts(), **self._timeout), ref=gid)
        return self._record(task)

    def _list_project(self, modified_since: datetime | None = None) -> list[Record]:
        opts = self._opts(limit=PAGE_SIZE, project=self.project_gid)
        if modified_since is not None:
            opts["modified_since"] = modified_since.isoformat().replace("+00:00", "Z")
        # The SDK's page iterator follows next_page lazily; drain it inside one retried call per listing.
        tasks = self._call(lambda: list(self._tasks_api().get_tasks(opts, **self._timeout)))
        return [self._record(task) for task in tasks]

    def fetch(self, refs: Sequence[str]) -> list[Record]:
        """Current records for refs; many refs are read with one paged project listing instead of one GET each."""
        wanted = list(dict.fromkeys(refs))
        if len(wanted) > PAGE_SIZE // 10:
            listed = {record.ref: record for record in self._list_project()}
            missing = [ref for ref in wanted if ref not in listed]
            records = [listed[ref] for ref in wanted if ref in listed]
        else:
            records, missing = [], wanted
        for ref in missing:
            try:
                records.append(self._read(ref))
            except ItemNotFound:
                continue
        return records

    def find_by_marker(self, marker: str, since: datetime, fields: Mapping[str, Any] | None = None) -> Record | None:
        """The task syncd created since ``since`` for this sync_id, its marker attached if it still lacked it.

        One paged listing of the project's tasks modified since then (creation modifies) gives the ones syncd's
        account created; their attachments are read, one request each. A task of syncd's with no marker at all is
        a create whose answer was lost before the marker went on: it is this item's if the name it was created
        with is the one this create sent and no other such task has it. A person may rename such a task before
        recovery looks (people edit what they see), so it is judged by its first name, read from its stories (one
        request; only tasks without any marker, which are rare, cost it).
        """
        earliest = since - CLOCK_SLACK
        opts = self._opts(limit=PAGE_SIZE, project=self.project_gid)
        opts["opt_fields"] = f"{TASK_FIELDS},created_at"
        opts["modified_since"] = earliest.astimezone(UTC).isoformat().replace("+00:00", "Z")
        tasks = self._call(lambda: list(self._tasks_api().get_tasks(opts, **self._timeout)))
        me, name = self._my_id(), (fields or {}).get("title")
        mine = [
            task
            for task in sorted(tasks, key=lambda t: str(t.get("created_at") or ""))
            if (task.get("created_by") or {}).get("gid") == me
            and _parse_time(str(task.get("created_at") or "1970-01-01T00:00:00Z")) >= earliest
        ]
        # The tasks still carrying the name sent are read first: in the usual case the first read finds the marker.
        mine.sort(key=lambda task: name is not None and task.get("name") != name)
        unmarked: list[Mapping[str, Any]] = []
        for task in mine:
            gid = str(task["gid"])
            found = self._markers(gid)
            if marker in found:
                return dataclasses.replace(self._record(task), marker=marker)
            if found or name is None or _marking(self.project_gid, gid):
                continue
            # Only a task created with the name this create sent is taken for its own: a task of syncd's without a
            # marker and another first name may be another item's lost create (found by the long fault run:
            # adopting "the one orphan in the window" linked an item to another's task).
            if self._first_name(gid, str(task.get("name") or "")) == name:
                unmarked.append(task)
        return self._adopt(unmarked, marker)

    def _first_name(self, gid: str, name: str) -> str:
        """The name a task was created with: the oldest rename's ``old_name``, else its name now (``name``)."""
        stories = self._call(
            lambda: list(
                asana.StoriesApi(self._client()).get_stories_for_task(
                    gid, {"opt_fields": "resource_subtype,old_name", "limit": PAGE_SIZE}, **self._timeout
                )
            ),
            ref=gid,
        )
        renames = [story for story in stories if story.get("resource_subtype") == "name_changed"]
        first = renames[0].get("old_name") if renames else None
        return name if first is None else str(first)

    def _adopt(self, unmarked: Sequence[Mapping[str, Any]], marker: str) -> Record | None:
        """The one task of syncd's without a marker, now carrying this one; None if there is none."""
        if len(unmarked) > 1:
            raise OutcomeUnknown(
                TOOL, f"{len(unmarked)} tasks syncd created have no marker: cannot tell which one is this item's"
            )
        if not unmarked:
            return None
        self._attach_marker(str(unmarked[0]["gid"]), marker)
        return dataclasses.replace(self._record(unmarked[0]), marker=marker)

    def _markers(self, gid: str) -> set[str]:
        """The sync_ids of the marker attachments on a task."""
        attachments = self._call(
            lambda: list(
                asana.AttachmentsApi(self._client()).get_attachments_for_object(
                    gid, {"opt_fields": "name,view_url"}, **self._timeout
                )
            ),
            ref=gid,
        )
        urls = [str(a.get("view_url") or "") for a in attachments]
        return {url[len(MARKER_URL) :] for url in urls if url.startswith(MARKER_URL)}

    def _attach_marker(self, gid: str, marker: str) -> None:
        """Attach the marker to a task syncd created, exactly once (a lost answer reads the attachments first)."""
        form = {"resource_subtype": "external", "url": MARKER_URL + marker, "name": MARKER_NAME, "parent": gid}

        def post() -> bool:
            self._call(
                lambda: asana.AttachmentsApi(self._client()).create_attachment_for_object(form, **self._timeout),
                ref=gid,
                idempotent=False,
            )
            return True

        self._send_once(
            post, lambda: True if marker in self._markers(gid) else None, what="attach", ref=gid, attempts=3
        )

    # ----- change feed -------------------------------------------------------------------------------------------

    def _events(self, sync: str | None) -> tuple[list[dict[str, Any]], str, bool] | str:
        """One events call: (events, next token, has_more), or the fresh token of a 412."""
        opts: dict[str, Any] = {"sync": sync} if sync else {}

        def request() -> Sdk:
            try:
                return asana.EventsApi(self._client()).get_events(
                    self.project_gid, opts, full_payload=True, **self._timeout
                )
            except ApiException as error:
                if error.status == 412:
                    return {"__412__": json.loads(error.body)["sync"]}
                raise

        answer = self._call(request)
        if "__412__" in answer:
            return str(answer["__412__"])
        return list(answer.get("data") or []), str(answer["sync"]), bool(answer.get("has_more"))

    def _full_scan(self, token: str, now: datetime) -> ChangeBatch:
        records = tuple(self._list_project())
        return ChangeBatch(
            records=records, deleted=(), cursor={"sync": token, "scanned_at": now.isoformat()}, full_scan=True
        )

    def changes(self, cursor: Cursor | None) -> ChangeBatch:
        """Tasks changed since the cursor; a full project scan on first use, on token expiry and periodically."""
        now = datetime.now(UTC)
        cursor = cursor or {}
        scanned_at = datetime.fromisoformat(cursor["scanned_at"]) if cursor.get("scanned_at") else None
        if scanned_at is None or now - scanned_at >= self.reconcile_every:
            answer = self._events(None)
            return self._full_scan(answer if isinstance(answer, str) else answer[1], now)
        events: list[dict[str, Any]] = []
        token = str(cursor["sync"])
        while True:
            answer = self._events(token)
            if isinstance(answer, str):
                return self._full_scan(answer, now)
            batch, token, more = answer
            events.extend(batch)
            if not more:
                break
        return self._apply_events(events, {**cursor, "sync": token})

    def _apply_events(self, events: Iterable[Mapping[str, Any]], cursor: Cursor) -> ChangeBatch:
        """The tasks the events name, read in one listing; events syncd's own account caused are not news.

        syncd's writes come back as events (its creates, the marker it attaches, which moves ``modified_at``, its
        updates): reading those tasks again would only find syncd's write, and a new task's version stored before
        its marker went on would make every new task planned again on the next poll. An event has its ``user`` (the
        API reference: the user who triggered it; null for the system's own), so they are left out once syncd's
        account is known (one request, once). A person's edit is an event of its own and is read; the hourly full
        scan reads every task whatever the events said.
        """
        changed: dict[str, datetime] = {}
        deleted: set[str] = set()
        self._my_id()
        for event in events:
            gid = _task_of(event)
            if gid is None:
                continue
            if self._caused(event) and event.get("action") != "deleted":
                continue
            if event.get("action") == "deleted" and (event.get("resource") or {}).get("resource_type") == "task":
                deleted.add(gid)
                changed.pop(gid, None)
                continue
            deleted.discard(gid)
            at = _parse_time(event["created_at"])
            changed[gid] = min(at, changed.get(gid, at))
        records: list[Record] = []
        if changed:
            # One paged listing covers every task changed since the oldest event (minus a second of clock slack).
            listed = {r.ref: r for r in self._list_project(min(changed.values()) - timedelta(seconds=1))}
            records = [listed[gid] for gid in changed if gid in listed]
            # Not listed: tasks that left the project, and tasks moved between sections (modified_at stays).
            records += self.fetch([gid for gid in changed if gid not in listed])
            gone = set(changed) - {record.ref for record in records}
            deleted |= gone
        return ChangeBatch(records=tuple(records), deleted=tuple(sorted(deleted)), cursor=cursor)

    # ----- writing ----------------------------------------------------------------------------------------------

    def _section_gids(self) -> dict[str, str]:
        if self._sections is None:
            sections = self._call(
                lambda: list(
                    asana.SectionsApi(self._client()).get_sections_for_project(
                        self.project_gid, {"opt_fields": "name"}, **self._timeout
                    )
                )
            )
            self._sections = {section["name"]: section["gid"] for section in sections}
        return self._sections

    def _custom_fields(self) -> dict[str, tuple[CustomField, dict[str, str]]]:
        """The project's custom fields by name, with their options' gids (one request, read once)."""
        if self._custom is None:
            settings = self._call(
                lambda: list(
                    asana.CustomFieldSettingsApi(self._client()).get_custom_field_settings_for_project(
                        self.project_gid, {"opt_fields": custom.SETTING_FIELDS}, **self._timeout
                    )
                )
            )
            self._custom = custom.definitions(settings)
        return self._custom

    def _custom_body(self, fields: Mapping[str, Any], ref: str | None) -> dict[str, Any]:
        """The ``custom_fields`` of a task write (field gid -> value), for every placed value among ``fields``."""
        body: dict[str, Any] = {}
        for name, placed in fields.items():
            if not isinstance(placed, Placed) or placed.custom is None:
                continue
            definition = self._custom_fields().get(placed.custom)
            if definition is None:
                raise InvalidItem(
                    TOOL, f"no custom field {placed.custom!r} in the project", ref=ref, field=name, status=400
                )
            self._placed[definition[0].id] = name
            body[definition[0].id] = custom.to_write(definition, placed.value, self._user_ref, field=name, ref=ref)
        return body

    def _section_for(self, status: str, ref: str | None) -> str:
        sections = self._section_gids()
        if status not in sections:
            raise InvalidItem(
                TOOL, f"no section {status!r} in the project; known: {sorted(sections)}", ref=ref, field="status"
            )
        return sections[status]

    def _workspace_gid(self) -> str:
        if self._workspace is None:
            project = self._call(
                lambda: asana.ProjectsApi(self._client()).get_project(
                    self.project_gid, {"opt_fields": "workspace"}, **self._timeout
                )
            )
            self._workspace = str(project["workspace"]["gid"])
        return self._workspace

    def _tag_gid(self, name: str) -> str:
        """The tag's gid: from the cached listing, listed again on a miss (a tag made since), else created."""
        if self._tags is None or name not in self._tags:
            tags = self._call(
                lambda: list(
                    asana.TagsApi(self._client()).get_tags_for_workspace(
                        self._workspace_gid(), {"opt_fields": "name"}, **self._timeout
                    )
                )
            )
            self._tags = {str(tag["name"]): str(tag["gid"]) for tag in tags}
        if name not in self._tags:
            api = asana.TagsApi(self._client())

            def post() -> str:
                body = {"data": {"name": name}}
                made = self._write(
                    lambda: api.create_tag_for_workspace(body, self._workspace_gid(), {}, **self._timeout),
                    body["data"],
                    ref=None,
                    field="labels",
                    idempotent=False,
                )
                return str(made["gid"])

            def look() -> str | None:
                tags = self._call(
                    lambda: list(
                        api.get_tags_for_workspace(self._workspace_gid(), {"opt_fields": "name"}, **self._timeout)
                    )
                )
                return next((str(tag["gid"]) for tag in tags if tag["name"] == name), None)

            self._tags[name] = self._send_once(post, look, what="tag")
        return self._tags[name]

    def _task_body(self, fields: Mapping[str, Any], ref: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        values = self._custom_body(fields, ref)
        if values:
            body["custom_fields"] = values
        if "title" in fields:
            body["name"] = fields["title"]
        if "description" in fields:
            body["html_notes"] = fields["description"]
        if "done" in fields:
            body["completed"] = bool(fields["done"])
        if "assignees" in fields:
            people: Sequence[Person] = fields["assignees"]
            body["assignee"] = self._user_ref(people[0]) if people else None
        if "due" in fields:
            due = fields["due"]
            if isinstance(due, datetime):
                body["due_at"] = utc(due).isoformat().replace("+00:00", "Z")
            elif isinstance(due, date):
                body["due_on"] = due.isoformat()
            else:
                # Asana refuses both keys in one write, even as nulls; clearing the date clears the time with it.
                body["due_on"] = None
        return body

    def _create_body(self, fields: Mapping[str, Any], marker: str) -> dict[str, Any]:
        """A task in the project (with its section and tags); the marker is attached after (:meth:`_send_create`)."""
        body = self._task_body(fields)
        body["projects"] = [self.project_gid]
        if fields.get("status") and not isinstance(fields["status"], Placed):
            body["memberships"] = [{"project": self.project_gid, "section": self._section_for(fields["status"], None)}]
        if fields.get("labels"):
            body["tags"] = [self._tag_gid(name) for name in fields["labels"]]
        return body

    def _send_create(self, body: dict[str, Any], marker: str) -> Record:
        """Create the task, then attach its marker, each exactly once (a lost answer is looked up)."""
        task = self._write(
            lambda: self._tasks_api().create_task({"data": body}, self._opts(), **self._timeout),
            body,
            ref=None,
            idempotent=False,
        )
        _marking(self.project_gid, str(task["gid"]), start=True)
        crash_point("mid-create")
        try:
            self._attach_marker(str(task["gid"]), marker)
        finally:
            _marking(self.project_gid, str(task["gid"]), start=False)
        return dataclasses.replace(self._record(task), marker=marker)

    def _created(self, made: Record | str, fields: Mapping[str, Any]) -> Record:
        # The task came to be in this pass: nobody can have commented on it yet (Asana has no count).
        return dataclasses.replace(super()._created(made, fields), comments=0)

    def update(self, ref: str, fields: Mapping[str, Any], expected_version: str | None = None) -> Record:
        """Edit, move and retag the task; return it as it is afterwards.

        With ``expected_version``, the task is read first to check nobody changed it since the plan was made
        (Asana has no conditional write): an edit made meanwhile is planned again, not overwritten. The version
        names the section as well as ``modified_at``, which a section move leaves alone, so a move made meanwhile
        is caught too. That read also gives the tags to add and remove.
        """
        current = self._read(ref) if "labels" in fields else None
        self._check_version(ref, expected_version, current.version if current is not None else None)
        fields = self._whole_labels(fields, current)
        body = self._task_body(fields, ref)
        moves = "status" in fields and fields["status"] is not None and not isinstance(fields["status"], Placed)
        if body and (moves or "labels" in fields):
            # The task's own fields first, right after the version check: a person's rename landing meanwhile is
            # overwritten only within that one request, not within the section move's and the tags' requests.
            self._write(
                lambda: self._tasks_api().update_task({"data": body}, ref, self._opts(), **self._timeout),
                body,
                ref=ref,
            )
            body = {}
        if moves:
            section = self._section_for(fields["status"], ref)
            self._write(
                lambda: asana.SectionsApi(self._client()).add_task_for_section(
                    section, {"body": {"data": {"task": ref}}}, **self._timeout
                ),
                {},
                ref=ref,
                field="status",
            )
        if "labels" in fields:
            held = set(current.fields["labels"]) if current is not None else set()
            wanted = set(fields["labels"])
            api = self._tasks_api()
            for name in sorted(wanted ^ held):
                tag_body = {"data": {"tag": self._tag_gid(name)}}
                method = api.add_tag_for_task if name in wanted else api.remove_tag_for_task
                self._write(functools.partial(method, tag_body, ref, **self._timeout), {}, ref=ref, field="labels")
        if not body:
            return self._read(ref)
        task = self._write(
            lambda: self._tasks_api().update_task({"data": body}, ref, self._opts(), **self._timeout), body, ref=ref
        )
        return self._record(task)

    def archive(self, ref: str) -> Record:
        """Take the task out of the synced project (it stays in the workspace; adding it back restores it)."""
        self._call(
            lambda: self._tasks_api().remove_project_for_task(
                {"data": {"project": self.project_gid}}, ref, **self._timeout
            ),
            ref=ref,
        )
        return self._read(ref)

    def delete(self, ref: str) -> None:
        """DELETE the task (into the deleting user's trash for 30 days, then gone); already gone (404) is done."""
        try:
            self._call(lambda: self._tasks_api().delete_task(ref, **self._timeout), ref=ref)
        except ItemNotFound:
            return

    def restore(self, ref: str) -> Record:
        """Add the task back to the synced project (``POST /tasks/{gid}/addProject``), in its default section.

        The engine then moves it to its agreed section with :meth:`update`.
        """
        self._call(
            lambda: self._tasks_api().add_project_for_task(
                {"data": {"project": self.project_gid}}, ref, **self._timeout
            ),
            ref=ref,
        )
        return self._read(ref)

    # ----- comments, schema ------------------------------------------------------------------------------------

    def history(self, ref: str) -> list[FieldChange]:
        """The task's field changes: its creation (the task's ``created_by``, opt-in), then its system stories.

        Two reads: Asana tells no story of a task's creation, so a field nobody changed since (its custom fields
        included) is credited to whoever created the task, as Jira's changelog credits the issue's creator. A
        custom field's change names the field as :func:`~syncd.model.custom_change` does.
        """
        task = self._call(
            lambda: asana.TasksApi(self._client()).get_task(
                ref,
                {"opt_fields": "created_at,created_by.gid,created_by.email,created_by.name,custom_fields.name"},
                **self._timeout,
            ),
            ref=ref,
        )
        stories = self._call(
            lambda: list(
                asana.StoriesApi(self._client()).get_stories_for_task(
                    ref,
                    {
                        "opt_fields": "resource_subtype,created_at,created_by.gid,created_by.email,created_by.name,"
                        "custom_field.name",
                        "limit": PAGE_SIZE,
                    },
                    **self._timeout,
                )
            ),
            ref=ref,
        )
        me = self._my_id()
        changes: list[FieldChange] = []
        creator = task.get("created_by") or {}
        if task.get("created_at") and creator.get("gid"):
            by_self = str(creator["gid"]) == me
            person = self._person(creator, look_up=not by_self).email
            created = _parse_time(task["created_at"])
            fields = sorted({name for names in HISTORY_STORIES.values() for name in names})
            fields += [custom_change(str(each["name"])) for each in task.get("custom_fields") or [] if each.get("name")]
            changes += [FieldChange(name, created, by_self, person) for name in fields]
        for story in stories:
            moment = _parse_time(story["created_at"])
            author = story.get("created_by") or {}
            by_self = str(author.get("gid")) == me
            # As comments map their authors: the directory, else the e-mail shown (looked up once per user, cached).
            person = self._person(author, look_up=not by_self).email if author else None
            changes += [FieldChange(name, moment, by_self, person) for name in _story_fields(story)]
        return changes

    def _my_id(self) -> str:
        """The user syncd's token acts as (``/users/me``, read once), to tell its own stories from people's."""
        if self._me is None:
            me = self._call(
                lambda: asana.UsersApi(self._client()).get_user("me", {"opt_fields": "gid"}, **self._timeout)
            )
            self._me = str(me["gid"])
        return self._me

    def comments(self, ref: str) -> list[Comment]:
        """Comment stories of the task, oldest first (system stories are not comments)."""
        stories = self._call(
            lambda: list(
                asana.StoriesApi(self._client()).get_stories_for_task(
                    ref,
                    {"opt_fields": "type,html_text,created_at,created_by.email,created_by.name", "limit": PAGE_SIZE},
                    **self._timeout,
                )
            ),
            ref=ref,
        )
        return [self._comment(ref, story) for story in stories if story.get("type") == "comment"]

    def _comment(self, ref: str, story: Mapping[str, Any]) -> Comment:
        return Comment(
            ref=ref,
            id=str(story["gid"]),
            author=self._person(story.get("created_by") or {}),
            body=story.get("html_text") or "",
            created=_parse_time(story["created_at"]),
        )

    def _post_comment(self, ref: str, body: str) -> Comment:
        """Post a comment story in Asana's restricted HTML (:meth:`add_comment` is the base's, exactly once)."""
        story = self._call(
            lambda: asana.StoriesApi(self._client()).create_story_for_task(
                {"data": {"html_text": body}},
                ref,
                {"opt_fields": "type,html_text,created_at,created_by.email,created_by.name"},
                **self._timeout,
            ),
            ref=ref,
            idempotent=False,
        )
        return self._comment(ref, story)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[str]:
        """Task gids a delivery names, after checking X-Hook-Signature (HMAC-SHA256 under the handshake secret)."""
        if self.webhook_secret is None:
            raise ToolConfigError(TOOL, "no webhook secret configured: register the webhook through syncd first")
        received = next((v for k, v in headers.items() if k.lower() == "x-hook-signature"), "")
        expected = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(received.encode(), expected.encode()):
            raise AuthFailed(
                TOOL, "webhook signature does not match: the delivery is not from Asana, or the secret changed"
            )
        if not self._deliveries.first_time(body_identity(body)):  # the body is all Asana signs
            return []
        try:
            events = json.loads(body)["events"]
        except (ValueError, KeyError, TypeError, RecursionError) as error:
            raise InvalidItem(TOOL, "webhook body is not an Asana event delivery") from error
        refs = [gid for event in events if (gid := _task_of(event)) is not None and not self._caused(event)]
        return list(dict.fromkeys(refs))

    def _caused(self, event: Mapping[str, Any]) -> bool:
        """Whether syncd's own account caused an event (its write coming back); False while that is not known."""
        user = event.get("user") or {}
        return self._me is not None and isinstance(user, dict) and str(user.get("gid")) == self._me

    def identify(self) -> str:
        """The user syncd's token acts as: an event it caused is syncd's own (see :meth:`verify_webhook`)."""
        return self._my_id()

    def webhook_unready(self) -> str | None:
        """Nothing to configure: the secret is agreed in the handshake when the webhook is registered."""
        return None

    def keep_agreed_secret(self, earlier: Connector) -> None:
        """An unchanged registration keeps the secret its handshake agreed (a reload builds a new connector)."""
        if isinstance(earlier, AsanaConnector) and earlier.project_gid == self.project_gid:
            self.webhook_secret = earlier.webhook_secret
            self.webhook_id = earlier.webhook_id
            self._deliveries = earlier._deliveries  # deliveries seen stay seen across a reload

    def agreed_secret(self) -> AgreedSecret | None:
        """The webhook this connector registered or was given, and its secret, once both are known."""
        if self.webhook_id is None or self.webhook_secret is None:
            return None
        return AgreedSecret(self.webhook_id, self.webhook_secret)

    def use_agreed_secret(self, agreed: AgreedSecret) -> None:
        """Verify deliveries with a secret agreed earlier (by any replica); :meth:`ensure_webhook` keeps its webhook."""
        self.webhook_secret = agreed.secret
        self.webhook_id = agreed.webhook

    def verifiable(self) -> bool:
        """Deliveries can be checked once a handshake gave the secret (none reached this process: polled only)."""
        return self.webhook_secret is not None

    def is_handshake(self, headers: Mapping[str, str]) -> bool:
        """Asana's handshake carries the secret it offers in X-Hook-Secret; a delivery never does."""
        return any(k.lower() == "x-hook-secret" for k in headers)

    def accept_handshake(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Answer Asana's webhook handshake: keep the secret it offers (persist it!) and echo it back."""
        secret = next((v for k, v in headers.items() if k.lower() == "x-hook-secret"), None)
        if not secret:
            raise InvalidItem(TOOL, "webhook handshake without X-Hook-Secret")
        remember(secret)
        self.webhook_secret = secret
        return {"X-Hook-Secret": secret}

    def ensure_webhook(self, target: str) -> str:
        """Register the project's webhook to ``target`` unless the active one whose secret is known exists; its gid.

        Asana deactivates a webhook whose deliveries keep failing; an inactive one is replaced, and so is one whose
        secret is not known (agreed before the store kept secrets, or lost). During the create call Asana performs
        the handshake with whichever receiver its POST reaches (:meth:`accept_handshake`), and answers the create
        with the same secret beside ``data`` (the OpenAPI description's 201 ``X-Hook-Secret``): the one kept here.
        """
        api = asana.WebhooksApi(self._client())
        opts = {"resource": self.project_gid, "opt_fields": "target,active"}
        for hook in self._call(lambda: list(api.get_webhooks(self._workspace_gid(), opts, **self._timeout))):
            if hook.get("target") != target:
                continue
            known = self.webhook_secret is not None and self.webhook_id in (None, str(hook["gid"]))
            if hook.get("active") and known:
                self.webhook_id = str(hook["gid"])
                return self.webhook_id
            # Inactive, or active but its handshake secret is unknown: replace it, so a new handshake gives a
            # secret deliveries can be checked with.
            self._call(functools.partial(api.delete_webhook, hook["gid"], **self._timeout))
        self.webhook_secret = self.webhook_id = None  # a handshake answered here during the create sets the secret
        body = {"data": {"resource": self.project_gid, "target": target}}
        created = self._call(lambda: api.create_webhook(body, {}, full_payload=True, **self._timeout), idempotent=False)
        answered = created.get("X-Hook-Secret") if isinstance(created, dict) else None
        if isinstance(answered, str) and answered:
            remember(answered)  # a credential: masked wherever it might be printed
            self.webhook_secret = answered
        self.webhook_id = str(created["data"]["gid"])
        return self.webhook_id

    def describe(self) -> Schema:
        """Sections (any section is reachable from any other), the workspace's people and tags."""
        sections = tuple(self._section_gids())
        users = self._call(
            lambda: list(
                asana.UsersApi(self._client()).get_users_for_workspace(
                    self._workspace_gid(), {"opt_fields": "name,email"}, **self._timeout
                )
            )
        )
        tags = self._call(
            lambda: list(
                asana.TagsApi(self._client()).get_tags_for_workspace(
                    self._workspace_gid(), {"opt_fields": "name"}, **self._timeout
                )
            )
        )
        return Schema(
            tool=TOOL,
            statuses=sections,
            transitions=dict.fromkeys(sections, sections),
            # Users listed with a hidden e-mail take it from the directory only (one lookup each would be a storm).
            people=tuple(
                sorted(
                    (self._person(user, look_up=False) for user in users),
                    key=lambda person: (person.email is None, person.email or "", person.account or ""),
                )
            ),
            labels=tuple(sorted(tag["name"] for tag in tags)),
            custom_fields=tuple(definition for definition, _ in self._custom_fields().values()),
        )


def _refused_email(message: str, body: Mapping[str, Any]) -> str | None:
    """The e-mail, written to a people custom field in ``body``, that Asana's refusal names, if one."""
    for value in (body.get("custom_fields") or {}).values():
        for item in value if isinstance(value, list) else ():
            if isinstance(item, str) and "@" in item and item in message:
                return item
    return None


def _task_of(event: Mapping[str, Any]) -> str | None:
    """The task an event is about: the task itself, or the task a story (a comment, a change note) belongs to."""
    resource = event.get("resource") or {}
    if resource.get("resource_type") == "task":
        return str(resource["gid"])
    parent = event.get("parent") or {}
    if resource.get("resource_type") == "story" and parent.get("resource_type") == "task":
        return str(parent["gid"])
    return None
