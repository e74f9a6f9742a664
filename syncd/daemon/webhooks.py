"""Webhooks: registering them with the tools, and answering the tools' calls by turning deliveries into hints.

Its own module because a webhook is a trust boundary: every delivery is verified by the department's connector
(which knows its tool's signature scheme; this module names no tool), a registration handshake is accepted only
while syncd itself is registering, and the HTTP status tells the tool whether to deliver again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from syncd.connector import Connector
from syncd.daemon.logs import log
from syncd.daemon.metrics import Metrics
from syncd.daemon.runtime import ConnectorFactory, Runtime
from syncd.errors import AuthFailed, ConnectorError, SyncdError, ToolConfigError

OTHER_DEPARTMENT = "other"
"""The metric label of every webhook path that names no configured department (the series stay bounded)."""


class Webhooks:
    """The webhooks of the running configuration: registered in the background, deliveries queued as hints."""

    def __init__(
        self,
        *,
        runtime: Callable[[], Runtime],
        connector_for: ConnectorFactory,
        hint: Callable[[str, str, list[str]], str],
        metrics: Metrics,
        stopping: threading.Event,
    ) -> None:
        self._runtime = runtime
        """The configuration in force now (a reload swaps it while a registration may run)."""
        self._connector_for = connector_for
        self._hint = hint
        """Queues a delivery's refs for a group: here if this replica holds it, else forwarded to its owner."""
        self._metrics = metrics
        self._stopping = stopping
        self._lock = threading.Lock()
        self._handshakes: set[str] = set()
        """Departments being registered right now: the only ones whose handshake is answered."""

    def register(self, runtime: Runtime) -> None:
        """Register every member department's webhook in the background (Asana's handshake calls us back)."""
        if runtime.config.instance.public_url is None:
            return
        members = sorted({m for group in runtime.groups.values() for m in group.codecs})
        threading.Thread(
            target=self._register_each, args=(runtime, members), name="syncd-webhooks", daemon=True
        ).start()

    def _register_each(self, runtime: Runtime, departments: list[str]) -> None:
        for name in departments:
            if self._stopping.is_set():
                return
            url = runtime.callback_url(name)
            assert url is not None  # only called with a public URL
            department = runtime.config.departments[name]
            try:
                connector = self._connector_for(department, callback_url=url)
                unready = connector.webhook_unready()
                if unready is not None:
                    log.warning("webhook.skipped", department=name, reason=unready)
                    continue
                known = self._runtime().verifiers.get(name)
                if known is not None:
                    # A secret agreed earlier in this process keeps the webhook; none (a restart) replaces it.
                    connector.keep_agreed_secret(known)
                if connector.handshake:
                    with self._lock:
                        self._handshakes.add(name)  # the tool calls back during the registration
                try:
                    hook = connector.ensure_webhook(url)
                finally:
                    with self._lock:
                        self._handshakes.discard(name)
            except SyncdError as error:
                log.error("webhook.registration_failed", department=name, error=str(error))
                continue
            log.info("webhook.registered", department=name, url=url, id=hook)
            verifier = self._runtime().verifiers.get(name)
            if verifier is not None:
                try:
                    # Once syncd's own account there is known, deliveries of syncd's own writes start no pass.
                    verifier.identify()
                except SyncdError as error:
                    log.warning("webhook.identity_unknown", department=name, error=str(error))
            if verifier is not None and not verifier.verifiable():
                # No handshake reached this process (the tool could not call it back): deliveries cannot be
                # verified and are refused; the department is polled meanwhile.
                log.warning("webhook.secret_unknown", department=name, url=url, id=hook)

    def answer(self, request: Request, department: str) -> Response:
        """Answer a tool's webhook call; the status tells the tool whether to deliver again."""
        verifier = self._runtime().verifiers.get(department)
        if verifier is None:
            return self._answer(department, "unknown_department", 404)
        if request.method == "HEAD":
            return Response(status=200)  # Trello checks the callback URL before it creates the webhook
        if self._stopping.is_set():
            return self._answer(department, "stopping", 503)
        if verifier.handshake and verifier.is_handshake(dict(request.headers)):
            return self._handshake(request, department, verifier)
        return self._delivery(request, department, verifier)

    def _handshake(self, request: Request, department: str, verifier: Connector) -> Response:
        """A registration handshake: answer it and keep the secret, but only while syncd is registering.

        Outside a registration anyone could otherwise replace the secret deliveries are verified with.
        """
        with self._lock:
            expected = department in self._handshakes
        if not expected:
            return self._answer(department, "handshake_refused", 403)
        try:
            echoed = verifier.accept_handshake(dict(request.headers))
        except ConnectorError as error:  # a handshake without its secret
            return self._answer(department, "malformed", 400, error=error.message)
        log.info("webhook.handshake", department=department)
        return Response(status=200, headers=echoed)

    def _delivery(self, request: Request, department: str, verifier: Connector) -> Response:
        """Verify a delivery, then queue its refs as hints for every group the department is a member of.

        A group another replica holds gets them forwarded (``forwarded``); on SQLite there is one host, and a
        group held by another process (a ``syncd once``) reads the change at its next poll here.
        """
        runtime = self._runtime()
        limit = runtime.config.instance.max_webhook_bytes
        if request.content_length is not None and request.content_length > limit:
            return self._answer(department, "too_large", 413)
        body = request.stream.read(limit + 1)
        if len(body) > limit:
            return self._answer(department, "too_large", 413)
        try:
            refs = verifier.verify_webhook(dict(request.headers), body)
        except (AuthFailed, ToolConfigError) as error:
            # A wrong signature, or no secret to check one with: either way the sender is not authenticated.
            return self._answer(department, "unauthorized", 401, error=error.message)
        except ConnectorError as error:
            return self._answer(department, "malformed", 400, error=error.message)
        outcomes = {self._hint(group, department, refs) for group in runtime.groups_of(department)}
        outcome = next((each for each in ("overflow", "queued", "forwarded") if each in outcomes), "queued")
        outcome = outcome if refs else "no_refs"
        return self._answer(department, outcome, 200, refs=len(refs))

    def _answer(self, department: str, outcome: str, status: int, **details: Any) -> Response:  # noqa: ANN401 - log fields
        # Anyone can call any path: only configured departments get their own series, the rest share one.
        label = department if department in self._runtime().verifiers else OTHER_DEPARTMENT
        self._metrics.webhooks.labels(department=label, outcome=outcome).inc()
        if label == OTHER_DEPARTMENT:
            details["path"] = department[:100]  # whatever the caller sent, cut short for the log
            department = OTHER_DEPARTMENT
        (log.info if status < 400 else log.warning)("webhook", department=department, outcome=outcome, **details)
        return Response(json.dumps({"outcome": outcome}), status=status, mimetype="application/json")
