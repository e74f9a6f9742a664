"""The Connector protocol, and the one base every tool connector builds on.

:class:`Connector` (defined in :mod:`syncd.connector`, so that the engine calls connectors without importing
anything from ``connectors/``) is what the engine sees. :class:`ConnectorBase` is how a connector is built: it
owns, once, the mechanics every tool needs the same way, which three copies would let drift apart:

- one SDK client per thread (the SDKs' clients are not thread-safe), built on first use by the tool's hook;
- every request through :func:`connectors.pacing.call`: the credential's rate limiters, the retry policy, and the
  tool's one error table, so callers only ever see :mod:`syncd.errors`;
- the version check before a write: none of the tools has a conditional write, so the item's version is read
  first and a newer one raises :class:`~syncd.errors.ChangedMeanwhile` (planned again, never overwritten);
- writes that must happen exactly once (:func:`syncd.uncertain.send_once`): a create whose answer was lost is
  found by its marker before anything is sent again, a comment by its text, any other such write by the tool's
  look; each resolution is recorded for the audit log.

A tool's connector fills in the hooks (``_new_client``, ``_translate``, ``_read``, ``_create_body``,
``_send_create``, ``_post_comment``, and the Protocol's own ``find_by_marker``) and overrides the defaults
(``_current_version``, ``_find_lost_create``, ``_created``) where its API lets it save a request.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from connectors.pacing import RetryPolicy, TokenBucket, call
from syncd.connector import Connector
from syncd.errors import ChangedMeanwhile, ConnectorError, InvalidItem, OutcomeUnknown
from syncd.model import Comment, LabelPart, Record, Unreadable
from syncd.uncertain import comment_once, send_once

__all__ = ["Connector", "ConnectorBase"]

ClientT = TypeVar("ClientT")
T = TypeVar("T")


class ConnectorBase(Connector, abc.ABC, Generic[ClientT]):
    """Pacing, the thread's SDK client, version checks, exactly-once writes and create recovery, for every tool.

    ``ClientT`` is what the tool's ``_new_client`` builds.
    """

    def __init__(self, *, buckets: TokenBucket | Sequence[TokenBucket], policy: RetryPolicy | None) -> None:
        # The services count per credential, not per connector: callers pass the shared buckets (pacing).
        self.buckets = [buckets] if isinstance(buckets, TokenBucket) else list(buckets)
        self.policy = policy or RetryPolicy()
        self._local = threading.local()

    # ----- the thread's client, and every request ---------------------------------------------------------

    def _client(self) -> ClientT:
        """The calling thread's SDK client, built on first use: the SDKs' clients and sessions are not thread-safe."""
        client: ClientT | None = getattr(self._local, "client", None)
        if client is None:
            client = self._new_client()
            self._local.client = client
        return client

    @abc.abstractmethod
    def _new_client(self) -> ClientT:
        """A new SDK client for the calling thread, with the SDK's own retries off (pacing is the one policy)."""

    def _call(self, request: Callable[[], T], *, ref: str | None = None, idempotent: bool = True, cost: int = 1) -> T:
        """Run one request under the credential's budget and the retry policy; errors come out of the tool's table.

        ``idempotent=False`` for a request that makes something: it is never retried, and a lost answer raises
        OutcomeUnknown (see :meth:`_send_once`). ``cost`` is what the service counts the request as.
        """
        answer = call(
            request,
            bucket=self.buckets,
            policy=self.policy,
            idempotent=idempotent,
            translate=lambda error: self._translate(error, ref),
            tool=self.kind,
            cost=cost,
        )
        if not idempotent:
            self._local.writes_answered = self._writes_answered() + 1
        return answer

    def _writes_answered(self) -> int:
        """How many requests that make something this thread has had answered (see :meth:`create`)."""
        answered: int = getattr(self._local, "writes_answered", 0)
        return answered

    @abc.abstractmethod
    def _translate(self, error: Exception, ref: str | None) -> ConnectorError:
        """The tool's one error table (``connectors/<tool>/errors.py``) for an SDK exception about ``ref``."""

    @abc.abstractmethod
    def _read(self, ref: str) -> Record:
        """One item by ref, as a write reads it back."""

    # ----- writes ------------------------------------------------------------------------------------------------

    def _check_version(self, ref: str, expected_version: str | None, current: str | None = None) -> None:
        """Raise ChangedMeanwhile when the item is no longer at the version the plan was made from.

        No tool has a conditional write, so the version is read just before writing (:meth:`_current_version`,
        one request; ``current`` when the write's own first read already gave it): a person's edit made since the
        plan's read is planned again instead of overwritten, and what remains is the window of that one request.
        """
        if expected_version is None:
            return
        if current is None:
            current = self._current_version(ref)
        if current != expected_version:
            raise ChangedMeanwhile(self.kind, f"{ref} changed since it was read; it is planned again")

    def _current_version(self, ref: str) -> str:
        """The item's version now, in one request: the whole item unless the tool can read its version alone."""
        return self._read(ref).version

    def _whole_labels(self, fields: Mapping[str, Any], current: Record | None) -> Mapping[str, Any]:
        """``fields`` with a :class:`LabelPart` made the item's whole labels, from ``current`` (None: a new item).

        Every tool's label write sets them all, so part of them is written as the item's other labels plus the part.
        """
        part = fields.get("labels")
        if not isinstance(part, LabelPart):
            return fields
        held = () if current is None else current.fields.get("labels") or ()
        if isinstance(held, Unreadable):
            raise InvalidItem(
                self.kind,
                f"the item's labels cannot be read ({held}): part of them cannot be written without the rest",
                ref=None if current is None else current.ref,
                field="labels",
            )
        return {**fields, "labels": part.applied(held)}

    def _send_once(
        self,
        post: Callable[[], T],
        look: Callable[[], T | None],
        *,
        what: str,
        ref: str | None = None,
        attempts: int | None = None,
    ) -> T:
        """A write that must happen once (:func:`syncd.uncertain.send_once`): a lost answer is looked up first.

        ``attempts`` defaults to the retry policy's.
        """
        tries = self.policy.attempts if attempts is None else attempts
        return send_once(post, look, tool=self.kind, what=what, ref=ref, attempts=tries)

    def create(self, fields: Mapping[str, Any], marker: str) -> Record:
        """Create an item carrying ``marker``, exactly once: a lost answer is looked up by the marker first.

        The request is built (and every value checked) before the send; what the send or the look made is
        finished by :meth:`_created`.
        """
        fields = self._whole_labels(fields, None)
        body = self._create_body(fields, marker)
        sent = datetime.now(UTC)

        def post() -> Record | str:
            before = self._writes_answered()
            try:
                return self._send_create(body, marker)
            except OutcomeUnknown:
                raise
            except ConnectorError as refused:
                # Refused before any request that makes something was answered (Asana's create is a POST and then
                # its marker; a refused marker leaves a task): no item was made, so nobody need look for one, a
                # look that may wait for the tool's search index.
                refused.nothing_written = self._writes_answered() == before
                raise

        made = self._send_once(post, lambda: self._find_lost_create(marker, sent, fields), what="create")
        return self._created(made, fields)

    @abc.abstractmethod
    def _create_body(self, fields: Mapping[str, Any], marker: str) -> dict[str, Any]:
        """The create request with the marker in it; a value the tool cannot hold raises InvalidItem, unsent."""

    @abc.abstractmethod
    def _send_create(self, body: dict[str, Any], marker: str) -> Record | str:
        """Send the create (``idempotent=False``): the item's record when the answer holds one, else its ref."""

    def _find_lost_create(self, marker: str, sent: datetime, fields: Mapping[str, Any]) -> Record | None:
        """The item a create sent at ``sent`` made, if any: looked up by its marker (:meth:`find_by_marker`)."""
        return self.find_by_marker(marker, sent, fields)

    def _created(self, made: Record | str, fields: Mapping[str, Any]) -> Record:
        """The new item's record, from what the create's answer (or the look) gave."""
        return made if isinstance(made, Record) else self._read(made)

    def add_comment(self, ref: str, body: str) -> Comment:
        """Comment once: a post whose answer was lost is looked for among the item's comments first."""
        return comment_once(
            lambda: self._post_comment(ref, body),
            lambda: self.comments(ref),
            body,
            tool=self.kind,
            ref=ref,
            attempts=self.policy.attempts,
        )

    @abc.abstractmethod
    def _post_comment(self, ref: str, body: str) -> Comment:
        """Post one comment in the tool's rich text (``idempotent=False``)."""
