"""One rule for writes whose outcome is unknown: look before sending again, and say what was found.

A write that is not idempotent (a create, a comment, a Jira transition, an attachment) can be applied by the
service while its answer is lost: a gateway answers 502 or 504, the connection drops, the client times out.
Sending it again blind makes a second item or a second comment, or walks a workflow one step too far. So the
request layer (:func:`connectors.pacing.call`) never repeats such a request; it raises
:class:`~syncd.errors.OutcomeUnknown`, and the writer calls :func:`send_once` with a ``look``: the item by its
marker, the comment by syncd's mirror mark, the issue's status now. What the look finds is taken as the write's
result; only what it shows was not applied is sent again; what it cannot tell yet (a search index that has not
caught up) is raised as OutcomeUnknown, and the write's journal entry waits for the next pass, as after a crash.

Each resolution is noted as an :class:`Uncertain` for the audit log: the executor collects them per item with
:func:`recording` and commits one ``uncertain`` event for each, next to the write it belongs to.
"""

from __future__ import annotations

import contextvars
import html
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from syncd.errors import OutcomeUnknown, RetriableError
from syncd.model import Comment

T = TypeVar("T")

MARKER_URL = "https://syncd.invalid/sync/"
"""Where marker attachments (Trello, Asana) point: the reserved .invalid domain resolves nowhere, so a person who
clicks one is sent nowhere; the sync_id follows the slash."""

CLOCK_SLACK = timedelta(seconds=60)
"""How far a tool's clock may be behind syncd's: a look for what a write made starts this long before it was sent."""

LANDED = "applied; its answer was lost and the write was found at the tool"
RESENT = "not applied; sent again after looking"
UNKNOWN = "not known yet; looked up again on the next pass, never sent blind"
GIVEN_UP = "not applied; every answer was lost, so it is tried again on the next pass"


@dataclass(frozen=True)
class Uncertain:
    """One write whose answer was lost, and what looking found."""

    tool: str
    what: str
    """What the write makes: ``create``, ``comment``, ``transition``, ``attach``."""
    ref: str | None
    outcome: str
    """:data:`LANDED`, :data:`RESENT`, :data:`UNKNOWN` or :data:`GIVEN_UP`."""
    error: str
    """The lost answer (a status, a timeout), as the error tree worded it: never a credential."""


_recording: contextvars.ContextVar[tuple[list[Uncertain], ...]] = contextvars.ContextVar("uncertain", default=())
"""The open collections, innermost last: a context variable, so calls fanned out to other threads
(:func:`syncd.fanout.each`) report into the block that sent them."""


@contextmanager
def recording() -> Iterator[list[Uncertain]]:
    """Collect the uncertain writes resolved in this context until the block ends (nested blocks each see theirs)."""
    found: list[Uncertain] = []
    token = _recording.set((*_recording.get(), found))
    try:
        yield found
    finally:
        _recording.reset(token)


def _note(event: Uncertain) -> None:
    for collected in _recording.get():
        collected.append(event)


def send_once(
    send: Callable[[], T],
    look: Callable[[], T | None],
    *,
    tool: str,
    what: str,
    ref: str | None = None,
    attempts: int = 3,
) -> T:
    """Send a write that must happen exactly once; when its answer is lost, look before sending it again.

    ``look`` returns what the write made if it was applied (the write's result), None if it certainly was not,
    and raises OutcomeUnknown if it cannot tell yet. After ``attempts`` lost answers in a row the last
    OutcomeUnknown is raised: the caller's journal keeps the write for the next pass.
    """
    for attempt in range(1, max(1, attempts) + 1):
        try:
            return send()
        except OutcomeUnknown as error:
            lost = error
        try:
            found = look()
        except RetriableError:  # the look met an outage, or the tool cannot tell yet: nothing is sent blind
            _note(Uncertain(tool, what, ref, UNKNOWN, lost.message))
            raise lost from None
        if found is not None:
            _note(Uncertain(tool, what, ref, LANDED, lost.message))
            return found
        if attempt == attempts:
            _note(Uncertain(tool, what, ref, GIVEN_UP, lost.message))
            raise lost
        _note(Uncertain(tool, what, ref, RESENT, lost.message))
    raise AssertionError("unreachable: the last attempt returns or raises")


_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """Text as a comparison sees it: tags dropped, entities decoded, runs of white space as one space.

    A tool may return a comment's body re-rendered (Asana's restricted HTML); the words stay the same.
    """
    return " ".join(html.unescape(_TAG.sub(" ", text)).split())


def comment_once(
    post: Callable[[], Comment],
    comments: Callable[[], Iterable[Comment]],
    body: str,
    *,
    tool: str,
    ref: str,
    attempts: int,
) -> Comment:
    """Post a comment exactly once: a post whose answer was lost is looked for among the record's comments first."""
    sent = datetime.now(UTC)
    return send_once(
        post, lambda: find_comment(comments(), body, sent), tool=tool, what="comment", ref=ref, attempts=attempts
    )


def find_comment(comments: Iterable[Comment], body: str, since: datetime) -> Comment | None:
    """The comment with this body posted since ``since`` (minus clock slack): a post whose answer was lost.

    syncd's comments are mirrors whose body ends with a mark naming the original, so the body is unique.
    """
    wanted, earliest = plain(body), since - CLOCK_SLACK
    return next((c for c in comments if c.created >= earliest and plain(c.body) == wanted), None)
