"""Engineering's Jira project, read and written through python-jira.

How the Connector protocol maps onto Jira (Cloud and Server / Data Center, told apart by serverInfo):

- ``title`` is ``summary``, ``description`` is wiki markup (REST v2, python-jira's default), ``status`` the
  workflow status, ``done`` whether that status is in the "done" category (read-only: it follows the status),
  ``assignees`` the assignee (accountId on Cloud, name on Server; e-mails hidden by privacy settings come from
  the people directory), ``due`` the ``duedate`` (a date: an instant is refused, never truncated), ``labels``.
- Status is written only through transitions: the shortest path over the workflow graph learned from Jira's own
  transition lists (read-only calls), including the fields a transition requires (``transition_fields``, per
  target status, from the department's config); an unreachable status raises :class:`NoTransition`.
- The marker is an issue property (``syncd``), set in the create request itself. JQL cannot search it (Cloud
  indexes only properties an installed app declared), so a lost create is found among the issues syncd's account
  created since it was sent, which a search returns with their property.
- The change feed is JQL on ``updated`` in epoch milliseconds (never the minute-precision, time-zone-dependent
  date strings) with an overlap window, de-duplicated by (key, updated). Cloud search is eventually consistent:
  the overlap re-reads the recent past, and the connector's own recent writes go in ``reconcileIssues``.
  Deletions are invisible to search; a full scan every ``reconcile_every`` lists the project so the engine sees
  which refs are gone, and between full scans a deletion check every ``deletion_check`` lists only the project's
  keys (``ChangeBatch.present``), so a deletion is noticed within minutes at a request per 5,000 issues on Cloud.
- Archive moves the issue to ``archive_status`` (default: the first "done" status) and flags the property.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, TypeAlias

from jira import JIRA

from connectors.base import Connector, ConnectorBase
from connectors.jira import custom
from connectors.jira.capabilities import CAPABILITIES
from connectors.jira.errors import TOOL, translate
from connectors.jira.workflow import Transition, Workflow
from connectors.pacing import RetryPolicy, TokenBucket, shared_bucket
from connectors.webhooks import DeliveryLog, body_identity
from syncd.connector import AgreedSecret, Capabilities
from syncd.crash import crash_point
from syncd.errors import (
    AuthFailed,
    ChangedMeanwhile,
    ConnectorError,
    InvalidItem,
    ItemNotFound,
    NoTransition,
    ToolConfigError,
)
from syncd.model import (
    ChangeBatch,
    Comment,
    Cursor,
    CustomField,
    FieldChange,
    History,
    LabelPart,
    Person,
    Placed,
    Record,
    Schema,
    custom_change,
    read_or_keep,
)
from syncd.uncertain import CLOCK_SLACK

Json: TypeAlias = Any
"""A decoded Jira JSON answer."""

PROPERTY = "syncd"
FIELDS = "summary,description,status,assignee,duedate,labels,updated,priority"
LISTED = "comment,created,creator"
PAGE_SIZE = 100
KEYS_PAGE_CLOUD = 5000  # /search/jql: "max 5000 issues", reached only when id or key alone is asked
KEYS_PAGE_SERVER = 1000  # /search: Server caps every page at jira.search.views.default.max, 1000 by default
DELETION_CHECK = timedelta(minutes=5)
"""Default period of the key-only listing: every 10th poll at the default 30 s, a deletion seen 12 times sooner than
by the hourly full scan for 11 requests an hour per 5,000 issues on Cloud, +9% (docs/benchmarks.md, section 7)."""
RECENT_WRITES = 50  # Jira accepts at most 50 ids in reconcileIssues


HISTORY_FIELDS: dict[str, tuple[str, ...]] = {
    "summary": ("title",),
    "description": ("description",),
    "status": ("status", "done"),
    "assignee": ("assignees",),
    "labels": ("labels",),
    "duedate": ("due",),
    "priority": ("priority",),
}
"""Changelog field name -> the record fields a change of it changes (a custom field's: see _changed_fields)."""
CREATED_FIELDS: tuple[str, ...] = tuple(name for names in HISTORY_FIELDS.values() for name in names)
"""The record fields an issue's creation set (credited to its creator until a changelog entry says otherwise); the
custom fields syncd reads are credited so too (:meth:`JiraConnector._created_fields`)."""


def _user_id(user: Json | None) -> str | None:
    """A user's stable id: accountId on Cloud, the user name on Server."""
    if not isinstance(user, dict):
        return None
    found = user.get("accountId") or user.get("name")
    return str(found) if found else None


def _comment_total(comment: object) -> int | None:
    """The issue's comment count from its ``comment`` field (a page with ``total``), if the read asked for it."""
    if isinstance(comment, dict) and isinstance(comment.get("total"), int):
        return int(comment["total"])
    return None


_JIRA_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,6}[+-]\d{4}\Z")
"""Jira's usual spelling of a moment: `datetime.fromisoformat` reads it as `strptime` does, many times faster."""


def _parse_time(text: str) -> datetime:
    """Jira's ``2026-11-24T10:05:30.123+0100`` (any zone) as an aware UTC datetime."""
    if _JIRA_TIME.match(text):
        return datetime.fromisoformat(text).astimezone(UTC)
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _format_due(due: date | None) -> str | None:
    """``duedate`` as Jira documents it (``yyyy-MM-dd``, four-digit year), or InvalidItem for what Jira cannot hold."""
    if due is None:
        return None
    if isinstance(due, datetime):
        raise InvalidItem(
            TOOL, f"Jira's due date is a date, not an instant ({due.isoformat()}): map it to a date", field="due"
        )
    first, last = CAPABILITIES.limits.due_range or (date.min, date.max)
    if not first <= due <= last:
        raise InvalidItem(
            TOOL, f"Jira holds due dates from {first.isoformat()} to {last.isoformat()}, not {due}", field="due"
        )
    return f"{due.year:04d}-{due.month:02d}-{due.day:02d}"


def _between(pages: Sequence[Sequence[str]]) -> frozenset[str]:
    """The keys numbered between the last key of each page and the first of the next (pages in key order).

    Only such a key can be missed by a listing paged by position: an issue deleted from a page already read moves
    every later issue one place forward, and the first one after the page boundary is then in neither page.
    """
    found: set[str] = set()
    for before, after in itertools.pairwise(keys for keys in pages if keys):
        project, _, low = before[-1].rpartition("-")
        other, _, high = after[0].rpartition("-")
        if project == other and low.isdigit() and high.isdigit():
            found.update(f"{project}-{number}" for number in range(int(low) + 1, int(high)))
    return frozenset(found)


class JiraConnector(ConnectorBase[JIRA]):
    """One Jira project behind the Connector protocol."""

    kind: ClassVar[str] = "jira"
    capabilities: ClassVar[Capabilities] = CAPABILITIES
    handshake: ClassVar[bool] = CAPABILITIES.handshake

    def __init__(
        self,
        *,
        base_url: str,
        user: str,
        token: str,
        project_key: str,
        people: Mapping[str, str] | None = None,
        bucket: TokenBucket | None = None,
        policy: RetryPolicy | None = None,
        timeout_s: float = 30.0,
        overlap: timedelta = timedelta(minutes=2),
        reconcile_every: timedelta = timedelta(hours=1),
        deletion_check: timedelta = DELETION_CHECK,
        transition_fields: Mapping[str, Mapping[str, Json]] | None = None,
        archive_status: str | None = None,
        webhook_secret: str | None = None,
        workflow: Workflow | None = None,
        search_settle_s: float = 10.0,
    ) -> None:
        # Jira Cloud publishes no fixed budget (cost-based limits); 10 requests per second per user stays clear.
        super().__init__(
            buckets=bucket if bucket is not None else shared_bucket(TOOL, f"{user}:{token}", 100, 10), policy=policy
        )
        self.project_key = project_key
        self.people = {email.lower(): account for email, account in (people or {}).items()}
        self._emails: dict[str, str] = {}
        """Account -> e-mail from ``people`` (the first listed wins), for users whose e-mail Jira hides."""
        for email, account in self.people.items():
            self._emails.setdefault(account, email)
        self._authors: dict[tuple[str | None, str | None], str | None] = {}
        """(account, e-mail shown) -> the author's e-mail: a listing names the same few people on every issue."""
        self.overlap = overlap
        self.reconcile_every = reconcile_every
        self.deletion_check = deletion_check
        self.transition_fields = {k: dict(v) for k, v in (transition_fields or {}).items()}
        self.archive_status = archive_status
        self.webhook_secret = webhook_secret
        # How long Cloud search may take to list a just-created issue (it is eventually consistent); a marker
        # lookup waits until then before it trusts a miss.
        self.search_settle_s = search_settle_s
        # Shared by the connectors of several threads when the caller passes one (connectors/factory.py does).
        self.workflow = workflow if workflow is not None else Workflow()
        self._barren: set[str] = set()  # statuses no issue is in: their transitions cannot be read
        self._me: str | None = None  # syncd's own account id here, read once (see _my_id)
        self._custom: dict[str, CustomField] | None = None
        self._custom_names: dict[str, str] = {}  # custom field id -> its name (the key of the record's values)
        self._made_fields: tuple[str, ...] | None = None  # CREATED_FIELDS and custom fields: one tuple, all issues
        self._placed: dict[str, str] = {}  # custom field id -> the write field last placed there (for refusals)
        self._base_url = base_url.rstrip("/")
        self._auth = (user, token)
        self._timeout_s = timeout_s
        self._recent: deque[str] = deque(maxlen=RECENT_WRITES)
        self._made: dict[str, str] = {}  # marker -> key of the creates whose answer this connector read, newest last
        self._deliveries = DeliveryLog()
        self._categories: dict[str, str] | None = None

    # ----- plumbing ---------------------------------------------------------------------------------------

    def _new_client(self) -> JIRA:
        """python-jira's client; building it reads serverInfo, so it is one paced request."""
        # max_retries=0: python-jira would retry POSTs and crash on an HTTP-date Retry-After; pacing decides.
        return self._call(
            lambda: JIRA(server=self._base_url, basic_auth=self._auth, max_retries=0, timeout=self._timeout_s)
        )

    def _translate(self, error: Exception, ref: str | None) -> ConnectorError:
        return translate(error, ref)

    @property
    def cloud(self) -> bool:
        """Whether this is Jira Cloud (accountIds, /search/jql) rather than Server / Data Center."""
        return bool(self._client()._is_cloud)  # python-jira's own deployment flag

    def _rest(
        self,
        method: str,
        path: str,
        *,
        ref: str | None = None,
        idempotent: bool = True,
        root: str = "rest/api/2",
        **kwargs: Any,  # noqa: ANN401 - forwarded to requests
    ) -> Json:
        """One REST call through python-jira's own session (for calls its high-level API makes twice)."""
        client = self._client()
        url = f"{self._base_url}/{root}/{path}"

        def request() -> Json:
            response = client._session.request(method, url, **kwargs)  # the SDK's own session
            return response.json() if response.content else None

        return self._call(request, ref=ref, idempotent=idempotent)

    # ----- people -----------------------------------------------------------------------------------------

    def _person(self, user: Json) -> Person:
        account = user.get("accountId") or user.get("name")
        email = user.get("emailAddress") or (self._emails.get(account) if account else None)
        return Person(email.lower() if email else None, account=account, name=user.get("displayName"))

    def _user_ref(self, person: Person) -> dict[str, str]:
        account = person.account or self.people.get((person.email or "").lower())
        if account is None and person.email:
            found = self._rest(
                "GET", "user/search", params={"query": person.email} if self.cloud else {"username": person.email}
            )
            matches = [u for u in found or [] if (u.get("emailAddress") or "").lower() == person.email.lower()]
            if len(matches) == 1:
                account = matches[0].get("accountId") or matches[0].get("name")
        if account is None:
            raise InvalidItem(
                TOOL,
                f"{person.label()} is not known to Jira (or hides their e-mail): "
                "add 'e-mail: accountId' to the department's people",
                field="assignees",
            )
        return {"accountId": account} if self.cloud else {"name": account}

    # ----- reading --------------------------------------------------------------------------------------------

    def _record(self, issue: Json) -> Record:
        fields = issue["fields"]
        status = fields["status"]
        marker = (
            ((issue.get("properties") or {}).get(PROPERTY) or {}) if isinstance(issue.get("properties"), dict) else {}
        )
        values: dict[str, Any] = {
            "title": fields.get("summary") or "",
            "description": fields.get("description") or "",
            "status": status["name"],
            "done": (status.get("statusCategory") or {}).get("key") == "done",
            "assignees": (self._person(fields["assignee"]),) if fields.get("assignee") else (),
            "due": read_or_keep(str(fields["duedate"]), date.fromisoformat) if fields.get("duedate") else None,
            "labels": tuple(sorted(fields.get("labels") or [])),
        }
        if "priority" in fields:
            values["priority"] = (fields["priority"] or {}).get("name")
        if self._custom:
            values["custom"] = custom.issue_values(fields, self._custom, self._person)
        return Record(
            tool=TOOL,
            ref=issue["key"],
            version=fields["updated"],
            modified=_parse_time(fields["updated"]),
            fields=values,
            marker=marker.get("sync_id"),
            archived=bool(marker.get("archived")),
            url=f"{self._base_url}/browse/{issue['key']}",
            comments=_comment_total(fields.get("comment")),
            history=self._changes(issue),
        )

    def history(self, ref: str) -> list[FieldChange]:
        """The issue's field changes from its changelog, creation included.

        One read (``expand=changelog``) while the issue has at most the 100 entries that read carries; a longer one
        is paged from ``/issue/{key}/changelog`` on Cloud. On Server, which has no such resource, the recent
        entries alone are used and the creation is left out: a field whose last change was cut would otherwise be
        credited to the issue's creator.
        """
        issue = self._rest("GET", f"issue/{ref}", ref=ref, params={"fields": "created,creator", "expand": "changelog"})
        whole = self._changes(issue)
        if whole is not None:
            return whole.expanded()
        if self.cloud:
            return self._from_changelog(issue["fields"], self._every_history(ref), complete=True)
        recent = (issue.get("changelog") or {}).get("histories") or []
        return self._from_changelog(issue["fields"], recent, complete=False)

    def _changes(self, issue: Json) -> History | None:
        """The history an issue read with ``created,creator`` and ``expand=changelog`` carries whole.

        None where the read did not ask for them or Jira cut the changelog to its recent entries (``total`` says).
        """
        log, fields = issue.get("changelog"), issue.get("fields") or {}
        if not isinstance(log, dict) or "created" not in fields:
            return None
        histories = log.get("histories") or []
        total = log.get("total")
        if not isinstance(total, int) or total > len(histories):
            return None
        creator = fields.get("creator")
        return History(
            _parse_time(fields["created"]),
            _user_id(creator) == self._my_id(),
            self._author(creator),
            self._created_fields(),
            tuple(self._from_changelog(fields, histories, complete=False)),
        )

    def _every_history(self, ref: str) -> list[Json]:
        """Every changelog entry of an issue, from the paged resource (Cloud), oldest first."""
        entries: list[Json] = []
        while True:
            page = self._rest(
                "GET", f"issue/{ref}/changelog", ref=ref, params={"startAt": len(entries), "maxResults": 100}
            )
            values = page.get("values") or []
            entries += values
            if page.get("isLast", True) or not values:
                return entries

    def _from_changelog(self, fields: Json, histories: Sequence[Json], *, complete: bool) -> list[FieldChange]:
        """Field changes from changelog entries; the creation (each field set by the creator) only when complete."""
        me = self._my_id()
        changes: list[FieldChange] = []
        if complete:
            created = _parse_time(fields["created"])
            creator = fields.get("creator")
            by_self, person = _user_id(creator) == me, self._author(creator)
            changes += [FieldChange(name, created, by_self, person) for name in self._created_fields()]
        for entry in histories:
            moment, author = _parse_time(entry["created"]), entry.get("author")
            by_self, person = _user_id(author) == me, self._author(author)
            for item in entry.get("items") or []:
                changes += [FieldChange(n, moment, by_self, person) for n in self._changed_fields(item)]
        return changes

    def _changed_fields(self, item: Json) -> tuple[str, ...]:
        """The record fields one changelog item changed.

        A custom field's item (``fieldtype`` ``custom``) names it by ``fieldId`` (``customfield_10020``) and by
        ``field``, its name when the change was made (ChangeDetails, jira-cloud.v3.json): the id is looked up
        among the fields syncd reads, so a renamed field keeps its history (the name only where no id is given);
        one syncd does not read is left out.
        """
        if item.get("fieldtype") != "custom":
            return HISTORY_FIELDS.get(str(item.get("field")), ())
        known = self._custom_fields()
        field_id, shown = item.get("fieldId"), str(item.get("field"))
        name = self._custom_names.get(str(field_id)) if field_id else (shown if shown in known else None)
        return (custom_change(name),) if name is not None else ()

    def _created_fields(self) -> tuple[str, ...]:
        """The record fields an issue's creation set: CREATED_FIELDS and every custom field syncd reads.

        Jira logs no changelog item for a value given in the create, so it is the creator's until one says otherwise.
        """
        if self._made_fields is None:
            self._made_fields = CREATED_FIELDS + tuple(custom_change(name) for name in self._custom_fields())
        return self._made_fields

    def _author(self, user: Json | None) -> str | None:
        """The e-mail of a changelog entry's author, mapped as assignees are (no request: the entry names them)."""
        if not isinstance(user, dict) or not user:
            return None
        key = (user.get("accountId") or user.get("name"), user.get("emailAddress"))
        if key not in self._authors:
            self._authors[key] = self._person(user).email
        return self._authors[key]

    def _custom_fields(self) -> dict[str, CustomField]:
        """The site's custom fields by name (``GET /field``, read once)."""
        if self._custom is None:
            self._custom = custom.definitions(self._rest("GET", "field") or [])
            self._custom_names = {field.id: name for name, field in self._custom.items()}
        return self._custom

    def _read_fields(self) -> str:
        """What every read asks for: the system fields syncd maps and every custom field it can carry."""
        return ",".join([FIELDS, *(field.id for field in self._custom_fields().values())])

    def _listed_fields(self) -> str:
        """What a search asks for besides: the comments, and who created the issue when.

        The comments' count says whether to read them; with ``expand=changelog``, the creation and the changelog
        tell who changed what, without a read per issue.
        """
        return f"{self._read_fields()},{LISTED}"

    def _my_id(self) -> str | None:
        """The account syncd uses here (``/myself``, read once), to tell its own changes from people's."""
        if self._me is None:
            self._me = _user_id(self._rest("GET", "myself")) or ""
        return self._me or None

    def _search(self, jql: str, *, reconcile: Sequence[str] = (), limit: int | None = None) -> list[Json]:
        """Issues matching ``jql`` (raw JSON; all, or the first ``limit``), paging the way this deployment pages."""
        issues: list[Json] = []
        size = min(PAGE_SIZE, limit or PAGE_SIZE)
        client = self._client()
        if self.cloud:
            token: str | None = None
            while True:
                page: Json = self._call(
                    functools.partial(
                        client.enhanced_search_issues,
                        jql,
                        nextPageToken=token,
                        maxResults=size,
                        fields=self._listed_fields(),
                        expand="changelog",
                        properties=PROPERTY,
                        reconcileIssues=[int(i) for i in reconcile] or None,
                        json_result=True,
                    )
                )
                issues.extend(page.get("issues") or [])
                token = page.get("nextPageToken")
                if page.get("isLast", True) or not token or (limit and len(issues) >= limit):
                    return issues[:limit] if limit else issues
        start = 0
        while True:
            page = self._call(
                functools.partial(
                    client.search_issues,
                    jql,
                    startAt=start,
                    maxResults=size,
                    fields=self._listed_fields(),
                    expand="changelog",
                    properties=PROPERTY,
                    json_result=True,
                )
            )
            batch = page.get("issues") or []
            issues.extend(batch)
            start += len(batch)
            if not batch or start >= int(page.get("total", 0)) or (limit and len(issues) >= limit):
                return issues[:limit] if limit else issues

    def fetch(self, refs: Sequence[str]) -> list[Record]:
        """Current records for refs, PAGE_SIZE keys per JQL query; a key the search leaves out is read by itself.

        Cloud search is eventually consistent: an issue made moments ago (by another thread's connector, whose
        writes this one cannot name in ``reconcileIssues``) may be missing from it, and a missing record reads as
        deleted. A ``GET`` of the issue says for sure, at one request per key missing (normally the deleted ones).
        """
        records: list[Record] = []
        wanted = list(dict.fromkeys(refs))
        for start in range(0, len(wanted), PAGE_SIZE):
            chunk = wanted[start : start + PAGE_SIZE]
            keys = ", ".join(json.dumps(key) for key in chunk)
            try:
                found = self._search(f"key in ({keys})", reconcile=list(self._recent))
            except InvalidItem:
                found = []  # Jira rejects the whole query when one key no longer exists: each is read by itself
            listed = {str(issue["key"]) for issue in found}
            found += [issue for key in chunk if key not in listed for issue in self._one_or_none(key)]
            records.extend(self._record(issue) for issue in found)
        return records

    def _one_or_none(self, key: str) -> list[Json]:
        try:
            return [
                self._rest(
                    "GET", f"issue/{key}", ref=key, params={"fields": self._read_fields(), "properties": PROPERTY}
                )
            ]
        except ConnectorError as error:
            if getattr(error, "status", None) == 404:
                return []
            raise

    def _read(self, key: str) -> Record:
        """Read one issue; remember its id so the next searches reconcile it (read-after-write on Cloud).

        This is a write's read-back: it carries the comment total, so a comment posted during the write is noticed.
        """
        issue = self._rest(
            "GET", f"issue/{key}", ref=key, params={"fields": f"{self._read_fields()},comment", "properties": PROPERTY}
        )
        if str(issue["id"]) not in self._recent:
            self._recent.append(str(issue["id"]))
        return self._record(issue)

    def find_by_marker(self, marker: str, since: datetime, fields: Mapping[str, Any] | None = None) -> Record | None:
        """The issue syncd created since ``since`` whose ``syncd`` property holds this sync_id.

        Jira Cloud's JQL cannot search an issue property that no installed app declared for indexing (an API-token
        integration cannot declare one), so the marker is read, not searched: the issues syncd's account created
        since then come with their property in one search (paged by 100; bounded by syncd's own creates, not by
        the project). Cloud search is eventually consistent, so a miss counts only once the index has had
        ``search_settle_s`` to catch up: the look waits for that at most once, then trusts what it reads.
        """
        made = self._made.get(marker)
        if made is not None:  # this connector's own create: read it by key, no search (and no wait for one)
            issues = self._one_or_none(made)
            if issues and self._record(issues[0]).marker == marker:
                return self._record(issues[0])
        self._await_index(since)
        start = _millis(since - CLOCK_SLACK)
        jql = (
            f"project = {json.dumps(self.project_key)} AND creator = currentUser() AND created >= {start} "
            "ORDER BY created DESC, key DESC"
        )
        # Newest first: the create looked for is among the first, on the first page, where a search that pages by
        # position cannot skip it as issues made meanwhile shift later pages. Only a miss reads every page.
        for limit in (PAGE_SIZE, None):
            issues = self._search(jql, reconcile=list(self._recent), limit=limit)
            found = next((r for r in map(self._record, issues) if r.marker == marker), None)
            if found is not None or len(issues) < PAGE_SIZE:
                return found
        return None

    def _await_index(self, moment: datetime) -> None:
        """Wait until Cloud search has had ``search_settle_s`` to index what was made before ``moment``."""
        wait = self.search_settle_s - (datetime.now(UTC) - moment).total_seconds() if self.cloud else 0.0
        if wait > 0:
            time.sleep(wait)

    # ----- change feed -------------------------------------------------------------------------------------------

    def changes(self, cursor: Cursor | None) -> ChangeBatch:
        """Issues updated since the cursor (epoch-ms JQL, overlapped); full scans first and every reconcile_every.

        Between full scans, every ``deletion_check`` the batch also carries every key of the project (``present``,
        from :meth:`_keys`), since no search shows a deleted issue: a poll when it is not due costs nothing more.
        """
        now = datetime.now(UTC)
        cursor = cursor or {}
        scanned_at = datetime.fromisoformat(cursor["scanned_at"]) if cursor.get("scanned_at") else None
        # A full scan lists every key too, so it counts as a check (and a cursor older than the check, from its scan).
        checked_at = datetime.fromisoformat(cursor["checked_at"]) if cursor.get("checked_at") else scanned_at
        project = f"project = {json.dumps(self.project_key)}"
        since = int(cursor.get("since_ms") or 0)
        if scanned_at is None or since <= 0 or now - scanned_at >= self.reconcile_every:
            issues = self._search(f"{project} ORDER BY updated ASC, key ASC", reconcile=list(self._recent))
            records = [self._record(issue) for issue in issues]
            # An empty scan (a new project, or issues the search index has not caught up with) keeps the scan's
            # time: the feed then asks from it, minus the overlap, never from a time Jira refuses (before 1970).
            start = _millis(now) if not records else 0
            return ChangeBatch(
                records=tuple(records),
                deleted=(),
                cursor=self._next_cursor(records, {}, start, now, now),
                full_scan=True,
            )
        seen: dict[str, str] = dict(cursor.get("seen") or {})
        window = since - int(self.overlap.total_seconds() * 1000)
        issues = self._search(
            f"{project} AND updated >= {window} ORDER BY updated ASC, key ASC", reconcile=list(self._recent)
        )
        records = [r for r in (self._record(issue) for issue in issues) if seen.get(r.ref) != r.version]
        present: frozenset[str] | None = None
        if checked_at is None or now - checked_at >= self.deletion_check:
            present, checked_at = self._keys(), now
        return ChangeBatch(
            records=tuple(records),
            deleted=(),
            cursor=self._next_cursor(records, seen, since, scanned_at, checked_at),
            present=present,
        )

    def _keys(self) -> frozenset[str]:
        """Every issue key of the project, read with no field at all: the deletion check's listing.

        Pages are as large as Jira serves keys alone: 5,000 on Cloud (``/search/jql`` gives its largest pages only
        when ``id`` or ``key`` alone is asked), 1,000 on Server. The request goes through python-jira's session,
        not its search methods, which would rename ``key`` to ``issuekey`` (a clause name in the site's field list)
        and so no longer ask for the key alone. syncd's recent writes are reconciled, so a mirror it just created is
        listed despite Cloud's search lag. The listing pages by position (Server's startAt; Cloud's token promises
        nothing better), so an issue deleted while it runs would slide the next page's first key into the page
        already read, unseen: the keys between two pages count as present (:func:`_between`) until the next check.
        """
        jql = f"project = {json.dumps(self.project_key)} ORDER BY key ASC"
        pages: list[list[str]] = []
        if self.cloud:
            params: dict[str, Any] = {"jql": jql, "fields": "key", "maxResults": KEYS_PAGE_CLOUD}
            if self._recent:
                params["reconcileIssues"] = [int(i) for i in self._recent]
            token: str | None = None
            while True:
                page = self._rest("GET", "search/jql", params={**params, **({"nextPageToken": token} if token else {})})
                pages.append([str(issue["key"]) for issue in page.get("issues") or []])
                token = page.get("nextPageToken")
                if page.get("isLast", True) or not token:
                    break
        else:
            start = 0
            while True:
                page = self._rest(
                    "GET",
                    "search",
                    params={"jql": jql, "fields": "key", "startAt": start, "maxResults": KEYS_PAGE_SERVER},
                )
                pages.append([str(issue["key"]) for issue in page.get("issues") or []])
                start += len(pages[-1])
                if not pages[-1] or start >= int(page.get("total", 0)):
                    break
        return frozenset(key for keys in pages for key in keys) | _between(pages)

    def _next_cursor(
        self, records: Sequence[Record], seen: dict[str, str], since: int, scanned_at: datetime, checked_at: datetime
    ) -> Cursor:
        """Advance to the newest change read; remember (key, updated) inside the overlap to skip re-reads.

        ``scanned_at`` and ``checked_at`` are when the project was last read in full and last listed by key.
        """
        newest = max([since, *(_millis(r.modified) for r in records)])
        horizon = newest - int(self.overlap.total_seconds() * 1000)
        merged = {**seen, **{r.ref: r.version for r in records}}
        kept = {key: version for key, version in merged.items() if _millis(_parse_time(version)) >= horizon}
        return {
            "since_ms": newest,
            "seen": kept,
            "scanned_at": scanned_at.isoformat(),
            "checked_at": checked_at.isoformat(),
        }

    # ----- writing ----------------------------------------------------------------------------------------------

    def _write_fields(self, fields: Mapping[str, Any]) -> dict[str, Json]:
        """The ``fields`` of a create or edit; a value Jira cannot hold raises InvalidItem naming its field.

        The codec already fits titles, labels and dates to Jira (:data:`syncd.mapping.LIMITS`); these checks are
        the last line for a caller that did not, so nothing malformed is ever sent.
        """
        body: dict[str, Json] = {}
        if "title" in fields:
            body["summary"] = fields["title"]
        if "description" in fields:
            body["description"] = fields["description"] or None
        if "assignees" in fields:
            people: Sequence[Person] = fields["assignees"]
            if len(people) > 1:
                raise InvalidItem(
                    TOOL, f"Jira has one assignee; got {len(people)}: map people to one first", field="assignees"
                )
            body["assignee"] = self._user_ref(people[0]) if people else None
        if "due" in fields:
            body["duedate"] = _format_due(fields["due"])
        if "labels" in fields:
            body["labels"] = sorted(fields["labels"])
        for name, placed in fields.items():
            if not isinstance(placed, Placed):
                continue
            if placed.field == "priority":
                body["priority"] = {"name": placed.value} if placed.value else None
            elif placed.custom is not None:
                definition = self._custom_fields().get(placed.custom)
                if definition is None:
                    raise InvalidItem(TOOL, f"no custom field {placed.custom!r} in Jira", field=name)
                self._placed[definition.id] = name
                body[definition.id] = custom.to_write(definition, placed.value, self._user_ref, field=name)
        return body

    def _edit(self, ref: str | None, method: str, path: str, body: Mapping[str, Json], **kwargs: Any) -> Json:  # noqa: ANN401
        """A create or edit; a refusal of a placed field (``customfield_N``, ``priority``) names the write field."""
        try:
            return self._rest(method, path, ref=ref, data=json.dumps(body), **kwargs)
        except InvalidItem as refused:
            named = self._placed.get(refused.field or "")
            if named is None:
                raise
            raise InvalidItem(TOOL, refused.message, ref=refused.ref, status=refused.status, field=named) from refused

    def _create_body(self, fields: Mapping[str, Any], marker: str) -> dict[str, Json]:
        """An issue with its marker property in the same request (:meth:`create` is the base's, exactly once)."""
        body = self._write_fields(fields)
        body["project"] = {"key": self.project_key}
        body["issuetype"] = {"name": "Task"}
        return {"fields": body, "properties": [{"key": PROPERTY, "value": {"sync_id": marker}}]}

    def _send_create(self, body: dict[str, Json], marker: str) -> str:
        """POST the issue; its key (the answer holds no fields), remembered so a lookup reads it by key."""
        created = self._edit(None, "POST", "issue", body, idempotent=False)
        self._recent.append(str(created["id"]))
        self._made[marker] = str(created["key"])
        while len(self._made) > RECENT_WRITES:
            del self._made[next(iter(self._made))]
        return str(created["key"])

    def _find_lost_create(self, marker: str, sent: datetime, fields: Mapping[str, Any]) -> Record | None:
        # The issue may have been made any time until its answer was lost (a gateway can hold a request for
        # seconds before the service applies it): the index gets its time from now, not from the send.
        self._await_index(datetime.now(UTC))
        return super()._find_lost_create(marker, sent, fields)

    def _created(self, made: Record | str, fields: Mapping[str, Any]) -> Record:
        """Transition the new issue to its status (a create cannot set one), then read it back."""
        key = made.ref if isinstance(made, Record) else made
        if fields.get("status"):
            crash_point("new-issue")
            self._move(key, str(fields["status"]), fresh=True)
        return self._read(key)

    def update(self, ref: str, fields: Mapping[str, Any], expected_version: str | None = None) -> Record:
        """Edit the fields with one PUT, move status through transitions, return the issue afterwards.

        With ``expected_version``, one read first checks nobody changed the issue since the plan was made (Jira
        has no conditional write), so an edit made meanwhile, say a person moving it, is planned again rather than
        overwritten; what remains is the window of that one request.
        """
        # The labels a part leaves as they are; that read's version then serves the check (no second read).
        current = self._read(ref) if isinstance(fields.get("labels"), LabelPart) else None
        fields = self._whole_labels(fields, current) if current is not None else fields
        body = self._write_fields(fields)
        target = str(fields["status"]) if fields.get("status") else None
        if target is not None and body:
            # The fields first, right after the version check: a person's edit landing meanwhile is overwritten
            # only within that one request, not within the walk's several. The walk then starts where it was read.
            start, _, _ = self._transitions(ref, expected_version)
            self._edit(ref, "PUT", f"issue/{ref}", {"fields": body})
            self._move(ref, target, start=start)
        elif target is not None:
            self._move(ref, target, expected_version)
        else:
            self._check_version(ref, expected_version, current.version if current is not None else None)
            if body:
                self._edit(ref, "PUT", f"issue/{ref}", {"fields": body})
        return self._read(ref)

    def _current_version(self, ref: str) -> str:
        """``updated``, read alone."""
        return str(self._rest("GET", f"issue/{ref}", ref=ref, params={"fields": "updated"})["fields"]["updated"])

    def _transitions(
        self, ref: str, expected_version: str | None = None, *, fresh: bool = False
    ) -> tuple[str, list[Transition], bool]:
        """The issue's status and the transitions Jira offers from it there, learned into the workflow.

        Both come from one read (``GET issue`` with ``expand=transitions``): read apart, a person moving the issue
        between the two reads would make syncd learn one status's transitions as another's, a wrong graph that
        every thread shares and that would refuse moves for good (found by the long fault run). Which fields a
        transition's screen requires is read once per transition (``GET .../transitions``, by id).

        ``fresh``: the issue syncd has just created; the same read carries its changelog, and the third value says
        whether a person moved it since (a create has no changelog entry of its own; another field's edit, an
        automation's say, does not stop syncd's move).
        """
        expand = "transitions,changelog" if fresh else "transitions"
        issue = self._rest("GET", f"issue/{ref}", ref=ref, params={"fields": "status,updated", "expand": expand})
        self._check_version(ref, expected_version, str(issue["fields"]["updated"]))
        moved = fresh and self._moved_by_others(issue)
        status = issue["fields"]["status"]["name"]
        offered = issue.get("transitions") or []
        if any(str(t["id"]) not in self.workflow.screens for t in offered):
            screens = self._rest("GET", f"issue/{ref}/transitions", ref=ref, params={"expand": "transitions.fields"})
            self.workflow.learn_screens(
                {
                    str(t["id"]): tuple(sorted(n for n, f in (t.get("fields") or {}).items() if f.get("required")))
                    for t in screens["transitions"]
                }
            )
        transitions = [
            Transition(
                id=str(t["id"]),
                name=t["name"],
                to=t["to"]["name"],
                required=self.workflow.screens.get(str(t["id"]), ()),
            )
            for t in offered
        ]
        self.workflow.learn(status, transitions)
        return status, transitions, moved

    def _moved_by_others(self, issue: Json) -> bool:
        """Whether the issue's changelog (read with it) holds a status change by someone other than syncd."""
        me = self._my_id()
        return any(
            _user_id(entry.get("author")) != me
            and any(item.get("field") == "status" for item in entry.get("items") or [])
            for entry in (issue.get("changelog") or {}).get("histories") or []
        )

    def _path(self, ref: str, status: str, target: str) -> list[Transition]:
        """The transitions from ``status`` toward ``target``, exploring the workflow where it is not known yet."""
        path = self.workflow.path(status, target)
        while path is None and self._explore():
            path = self.workflow.path(status, target)
        if path is None and self._barren:
            # A status may have been empty only for a moment (other threads move issues too): look again.
            self._barren.clear()
            while path is None and self._explore():
                path = self.workflow.path(status, target)
        if path is None:
            # No issue sits in the statuses still unexplored, so their transitions cannot be read from one: walk
            # this issue toward the nearest of them (over the transitions known so far) and read them there; each
            # step learns the transitions of the status it reaches.
            detours = [p for goal in sorted(self.workflow.unexplored()) if (p := self.workflow.path(status, goal))]
            if not detours:
                raise NoTransition(TOOL, ref, status, target)
            path = min(detours, key=len)
        return path

    def _move(
        self,
        ref: str,
        target: str,
        expected_version: str | None = None,
        *,
        fresh: bool = False,
        start: str | None = None,
    ) -> None:
        """Walk the shortest known chain of transitions to ``target``, exploring the workflow when needed.

        ``expected_version`` is checked by the first read (see :meth:`update`). Each later read must find the issue
        where syncd's last transition left it: a person who moved it meanwhile made an edit of their own, which
        raises ChangedMeanwhile (planned again), never a stop on syncd's way. ``fresh``: the issue syncd has just
        created (Jira creates in the workflow's first status); a person's edit since the create, or during the
        walk, ends the walk quietly, and the read-back shows their status for the next pass to carry. ``start``:
        the status the first read must find (the caller checked the version on a read that found it there).
        """
        left = start
        for attempt in range(12):
            status, _, moved_by_others = self._transitions(ref, expected_version, fresh=fresh and attempt == 0)
            if moved_by_others:
                return  # a person moved the new issue already: theirs is the edit to carry, not syncd's status
            expected_version = None
            if left is not None and status != left:
                if fresh:
                    return
                raise ChangedMeanwhile(TOOL, f"{ref} was moved while syncd moved it; it is planned again")
            path = self._path(ref, status, target)
            if not path:
                return
            step = path[0]
            extra = dict(self.transition_fields.get(step.to, {}))
            missing = [name for name in step.required if name not in extra]
            if missing:
                raise InvalidItem(
                    TOOL,
                    f"{ref}: transition {step.name!r} to {step.to!r} requires {', '.join(missing)}: "
                    f"set transition_fields for {step.to!r} in the department's config",
                    ref=ref,
                )
            payload = {"transition": {"id": step.id}, **({"fields": extra} if extra else {})}
            try:
                moved = self._transition(ref, payload, status, step.to)
            except InvalidItem:
                # Jira refuses a transition its issue no longer offers: if a person moved the issue since the
                # read, that is their edit, to be planned again, not a fault of the item.
                now = self._rest("GET", f"issue/{ref}", ref=ref, params={"fields": "status"})
                if now["fields"]["status"]["name"] == status:
                    raise
                if fresh:
                    return
                raise ChangedMeanwhile(TOOL, f"{ref} was moved while syncd moved it; it is planned again") from None
            crash_point("mid-transition")
            if moved == target:
                return  # the issue is there (the caller reads it back anyway)
            left = moved
        raise NoTransition(TOOL, ref, "(too many steps)", target)

    def _transition(self, ref: str, payload: Json, status: str, to: str) -> str:
        """Make one transition exactly once; the status the issue is in afterwards.

        A transition is a POST that moves the issue on: sent twice, it walks one step too far or is refused
        because the issue already moved. When its answer is lost, the issue's status decides: still where it
        was, the transition did not happen and is sent again; anywhere else, the move resumes from there (the
        caller's loop reads the transitions offered there).
        """

        def post() -> str:
            self._rest("POST", f"issue/{ref}/transitions", ref=ref, data=json.dumps(payload), idempotent=False)
            return to

        def look() -> str | None:
            now = self._rest("GET", f"issue/{ref}", ref=ref, params={"fields": "status"})
            current = str(now["fields"]["status"]["name"])
            return None if current == status else current

        return self._send_once(post, look, what="transition", ref=ref)

    def _explore(self) -> bool:
        """Read the transitions offered from statuses not yet explored, through an issue in each (read-only).

        Returns whether anything new was learned; a status no issue is in stays unexplored.
        """
        known = set(self.workflow.edges)
        for status in sorted(self.workflow.unexplored() - self._barren):
            jql = f"project = {json.dumps(self.project_key)} AND status = {json.dumps(status)}"
            sample = self._search(jql, limit=1)
            if not sample:
                self._barren.add(status)
            for issue in sample:
                self._transitions(issue["key"])
        return set(self.workflow.edges) != known

    def archive(self, ref: str) -> Record:
        """Move the issue to the archive status and flag it archived in its property (both reversible)."""
        target = self.archive_status or self._first_done_status()
        self._move(ref, target)
        try:
            marker = self._rest("GET", f"issue/{ref}/properties/{PROPERTY}", ref=ref)
        except ItemNotFound:
            marker = None  # a person's issue (syncd did not create it) has no property yet: start one
        value = dict((marker or {}).get("value") or {})
        value["archived"] = True
        self._rest("PUT", f"issue/{ref}/properties/{PROPERTY}", ref=ref, data=json.dumps(value))
        return self._read(ref)

    def delete(self, ref: str) -> None:
        """DELETE the issue; already gone (404) is done.

        Subtasks are not deleted with it (``deleteSubtasks`` is left false): syncd does not mirror them, so their
        deletion would go unaudited. Jira's 400 for an issue with subtasks becomes InvalidItem saying so and what
        to do: the item fails, for a person to decide.
        """
        try:
            self._rest("DELETE", f"issue/{ref}", ref=ref)
        except ItemNotFound:
            return
        except InvalidItem as refused:
            if "subtask" not in refused.message.lower():
                raise
            raise InvalidItem(
                TOOL,
                f"{ref} has subtasks, which syncd does not delete (they are not mirrored, so their deletion could not "
                f"be audited): delete or move them in Jira first (Jira: {refused.message})",
                ref=ref,
                status=refused.status,
            ) from refused

    def restore(self, ref: str) -> Record:
        """Clear the archived flag in the issue's property.

        The engine then moves the issue back to its agreed status with :meth:`update`: a group that maps no status
        for Jira cannot restore (``restore_needs_status``).
        """
        try:
            marker = self._rest("GET", f"issue/{ref}/properties/{PROPERTY}", ref=ref)
        except ItemNotFound:
            return self._read(ref)  # never flagged: nothing to clear
        value = dict((marker or {}).get("value") or {})
        if value.pop("archived", None) is not None:
            self._rest("PUT", f"issue/{ref}/properties/{PROPERTY}", ref=ref, data=json.dumps(value))
        return self._read(ref)

    def _status_categories(self) -> dict[str, str]:
        if self._categories is None:
            statuses = self._rest("GET", f"project/{self.project_key}/statuses")
            self._categories = {
                s["name"]: s["statusCategory"]["key"] for issuetype in statuses for s in issuetype["statuses"]
            }
        return self._categories

    def _first_done_status(self) -> str:
        done = [name for name, category in self._status_categories().items() if category == "done"]
        if not done:
            raise ToolConfigError(TOOL, f"project {self.project_key} has no done status: set archive_status")
        return done[0]

    # ----- comments, webhooks, schema ------------------------------------------------------------------------

    def comments(self, ref: str) -> list[Comment]:
        """Comments, oldest first (wiki markup)."""
        body = self._rest("GET", f"issue/{ref}/comment", ref=ref, params={"maxResults": 1000, "orderBy": "created"})
        return [self._comment(ref, c) for c in body["comments"]]

    def _comment(self, ref: str, comment: Json) -> Comment:
        return Comment(
            ref=ref,
            id=str(comment["id"]),
            author=self._person(comment.get("author") or {}),
            body=comment.get("body") or "",
            created=_parse_time(comment["created"]),
        )

    def _post_comment(self, ref: str, body: str) -> Comment:
        """Comment on the issue in wiki markup (:meth:`add_comment` is the base's, exactly once)."""
        created = self._rest("POST", f"issue/{ref}/comment", ref=ref, data=json.dumps({"body": body}), idempotent=False)
        return self._comment(ref, created)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[str]:
        """Issue keys of a signed admin-webhook delivery; a repeated or stale signed body yields nothing.

        Repeats are recognised by the signed body (its digest, and its ``timestamp``), never by the
        ``X-Atlassian-Webhook-Identifier`` header: the signature does not cover it, so a replay could change it.
        """
        if not self.webhook_secret:
            raise ToolConfigError(TOOL, "no webhook secret configured: set the secret the Jira webhook signs with")
        lowered = {k.lower(): v for k, v in headers.items()}
        expected = "sha256=" + hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(lowered.get("x-hub-signature", "").encode(), expected.encode()):
            raise AuthFailed(TOOL, "webhook signature does not match: not from Jira, or the secret changed")
        try:
            event = json.loads(body)
            key = event["issue"]["key"]
        except (ValueError, KeyError, TypeError, RecursionError) as error:
            raise InvalidItem(TOOL, "webhook body names no issue") from error
        stamp = event.get("timestamp")
        signed_at = stamp / 1000 if isinstance(stamp, int | float) and not isinstance(stamp, bool) else None
        if not self._deliveries.first_time(body_identity(body), signed_at):
            return []
        if self._me and _user_id(event.get("user")) == self._me:
            return []  # syncd's own write (the event's user is syncd's account): nothing new to read
        return [str(key)]

    def identify(self) -> str | None:
        """The account syncd acts as: an event it caused is syncd's own (see :meth:`verify_webhook`)."""
        return self._my_id()

    def webhook_unready(self) -> str | None:
        """Jira signs deliveries with the secret syncd registers: without one they could not be verified."""
        return None if self.webhook_secret else "set connection.webhook_secret to sign them"

    def is_handshake(self, headers: Mapping[str, str]) -> bool:
        """Jira has no handshake."""
        return False

    def accept_handshake(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Jira has no handshake: its webhooks are signed with the configured secret."""
        raise ToolConfigError(TOOL, "Jira webhooks have no handshake")

    def agreed_secret(self) -> AgreedSecret | None:
        """Nothing is agreed: the secret is the configured one."""
        return None

    def use_agreed_secret(self, agreed: AgreedSecret) -> None:
        """Nothing is agreed: the secret is the configured one."""

    def keep_agreed_secret(self, earlier: Connector) -> None:
        """Nothing is agreed (the secret is the configured one); deliveries seen stay seen across a reload."""
        if isinstance(earlier, JiraConnector):
            self._deliveries = earlier._deliveries

    def verifiable(self) -> bool:
        """Deliveries can be checked while a secret is configured."""
        return bool(self.webhook_secret)

    def ensure_webhook(self, url: str) -> str:
        """Register the project's admin webhook to ``url`` (signed with webhook_secret) unless it exists; its id.

        Admin webhooks do not expire (only apps' dynamic webhooks do, after 30 days), so renewing is making sure
        the registration still exists, e.g. after an admin removed it.
        """
        if not self.webhook_secret:
            raise ToolConfigError(TOOL, "set a webhook secret before registering a Jira webhook: deliveries are signed")
        for hook in self._rest("GET", "webhook", root="rest/webhooks/1.0") or []:
            if hook.get("url") == url:
                return str(hook["self"]).rstrip("/").rsplit("/", 1)[-1]
        body = {
            "name": f"syncd {self.project_key}",
            "url": url,
            "events": ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted", "comment_created"],
            "filters": {"issue-related-events-section": f"project = {json.dumps(self.project_key)}"},
            "secret": self.webhook_secret,
        }
        created = self._rest("POST", "webhook", root="rest/webhooks/1.0", data=json.dumps(body), idempotent=False)
        return str(created["self"]).rstrip("/").rsplit("/", 1)[-1]

    def describe(self) -> Schema:
        """Statuses, the transition graph (explored read-only), assignable people."""
        statuses = tuple(self._status_categories())
        meta: Json = {}
        for issue in self._search(f"project = {json.dumps(self.project_key)} ORDER BY key ASC", limit=1):
            self._transitions(issue["key"])
            meta = self._rest("GET", f"issue/{issue['key']}/editmeta", ref=issue["key"]) or {}
        while self._explore():
            pass
        users = self._rest("GET", "user/assignable/search", params={"project": self.project_key, "maxResults": 1000})
        return Schema(
            tool=TOOL,
            statuses=statuses,
            transitions=self.workflow.reachable(),
            requirements=self.workflow.requirements(),
            people=tuple(sorted(self._person(u) for u in users or [])),
            labels=(),
            custom_fields=custom.with_options(self._custom_fields(), meta),
            priorities=custom.priorities(meta),
        )
