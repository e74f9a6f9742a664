"""Webhooks: registering them with the tools, and answering the tools' calls by turning deliveries into hints.

Its own module because a webhook is a trust boundary: every delivery is verified by the department's connector
(which knows its tool's signature scheme; this module names no tool), a registration handshake is accepted only
while syncd itself is registering, and the HTTP status tells the tool whether to deliver again.

A secret agreed in a handshake (Asana's) is kept in the store (:mod:`syncd.store.hooks`), because the handshake and
the deliveries may each reach any replica behind the load balancer: the registering replica marks the department
pending in the store, so any replica answers its handshake; it stores the secret the create answered; and a replica
whose secret does not verify a delivery reads the stored one again. A restart keeps the webhook and its secret.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from syncd.connector import AgreedSecret, Connector
from syncd.daemon.logs import log
from syncd.daemon.metrics import Metrics
from syncd.daemon.runtime import ConnectorFactory, Runtime
from syncd.errors import AuthFailed, ConnectorError, SyncdError, ToolConfigError
from syncd.store import HookSecret, Store
from syncd.store.hooks import HANDSHAKE_S

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
        store: Store,
        replica: str,
    ) -> None:
        self._runtime = runtime
        """The configuration in force now (a reload swaps it while a registration may run)."""
        self._store = store
        self._replica = replica
        """This replica's id: whose registration a pending department is."""
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
                hook = self._ensure(name, url, connector) if connector.handshake else connector.ensure_webhook(url)
            except SyncdError as error:
                log.error("webhook.registration_failed", department=name, error=str(error))
                continue
            except Exception as error:  # the store did not answer: registered again at the next start or SIGHUP
                log.error("webhook.registration_failed", department=name, error=type(error).__name__)
                continue
            if hook is None:
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
                # No secret: deliveries cannot be verified and are refused; the department is polled meanwhile.
                log.warning("webhook.secret_unknown", department=name, url=url, id=hook)

    def _ensure(self, name: str, url: str, connector: Connector) -> str | None:
        """Register a webhook whose secret a handshake agrees, one replica at a time; its id (None: not now).

        The department is marked pending in the store while this runs, so that any replica answers the handshake;
        the secret is stored for every replica, and a stored one for the same URL keeps the webhook it belongs to.
        """
        deadline = time.monotonic() + HANDSHAKE_S + 5.0
        while not self._store.claim_handshake(name, self._replica):  # another replica registers it right now
            if self._stopping.is_set() or time.monotonic() > deadline:
                log.warning("webhook.skipped", department=name, reason="another replica is registering it")
                return None
            self._stopping.wait(0.5)
        try:
            with self._lock:
                self._handshakes.add(name)  # the tool calls back during the registration
            stored = self._store.hook_secret(name)
            if stored is not None and stored.target == url:
                connector.use_agreed_secret(AgreedSecret(stored.webhook, stored.secret))
            hook = connector.ensure_webhook(url)
            agreed = connector.agreed_secret()
            if agreed is None:  # the create's answer had no secret: the handshake's, wherever it was answered
                offered = self._store.offered_hook_secret(name)
                agreed = AgreedSecret(hook, offered) if offered else None
            if agreed is not None:
                stored = HookSecret(name, url, agreed.webhook, agreed.secret)
                self._store.agree_hook_secret(stored)
                self._use(name, stored)
        finally:
            with self._lock:
                self._handshakes.discard(name)
            self._store.finish_handshake(name, self._replica)
        return hook

    def _use(self, department: str, stored: HookSecret) -> None:
        """Verify the department's deliveries with a stored secret from now on."""
        verifier = self._runtime().verifiers.get(department)
        if verifier is not None and stored.target == self._runtime().callback_url(department):
            verifier.use_agreed_secret(AgreedSecret(stored.webhook, stored.secret))

    def _refresh(self, department: str, verifier: Connector) -> None:
        """Read the department's stored secret again: another replica may have agreed a new one."""
        try:
            stored = self._store.hook_secret(department)
        except Exception as error:  # the store did not answer: the delivery is refused, the department polled
            log.warning("webhook.secret_unread", department=department, error=type(error).__name__)
            return
        if stored is not None:
            self._use(department, stored)

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
            return self._handshake(request, department)
        return self._delivery(request, department, verifier)

    def _handshake(self, request: Request, department: str) -> Response:
        """A registration handshake: echo its secret, but only while a replica of syncd is registering.

        Outside a registration anyone could otherwise have a webhook established toward syncd. The secret is
        offered to the registering replica through the store, for a create whose answer would lack it.
        """
        with self._lock:
            mine = department in self._handshakes
        try:
            expected = mine or self._store.handshake_pending(department)
        except Exception as error:  # the store did not answer: nobody can be told the secret, so refuse it
            return self._answer(department, "handshake_refused", 503, error=type(error).__name__)
        if not expected:
            return self._answer(department, "handshake_refused", 403)
        try:
            echoed = self._echo(department, request)
        except ConnectorError as error:  # a handshake without its secret
            return self._answer(department, "malformed", 400, error=error.message)
        log.info("webhook.handshake", department=department, registering="here" if mine else "elsewhere")
        return Response(status=200, headers=echoed)

    def _echo(self, department: str, request: Request) -> dict[str, str]:
        """Echo a handshake's secret, offering it to the registering replica (here or elsewhere) through the store.

        Through a connector of its own: the webhook is not established yet, so deliveries are not checked with it.
        """
        scratch = self._connector_for(self._runtime().config.departments[department])
        echoed = scratch.accept_handshake(dict(request.headers))
        secret = next(iter(echoed.values()))
        self._store.offer_hook_secret(department, secret)
        return echoed

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
            refs = self._verify(department, verifier, request, body)
        except (AuthFailed, ToolConfigError) as error:
            # A wrong signature, or no secret to check one with: either way the sender is not authenticated.
            return self._answer(department, "unauthorized", 401, error=error.message)
        except ConnectorError as error:
            return self._answer(department, "malformed", 400, error=error.message)
        outcomes = {self._hint(group, department, refs) for group in runtime.groups_of(department)}
        outcome = next((each for each in ("overflow", "queued", "forwarded") if each in outcomes), "queued")
        outcome = outcome if refs else "no_refs"
        return self._answer(department, outcome, 200, refs=len(refs))

    def _verify(self, department: str, verifier: Connector, request: Request, body: bytes) -> list[str]:
        """The delivery's refs; a secret agreed in a handshake that does not verify it is read from the store again.

        Another replica may have registered the webhook (at its start, or replacing an inactive one) since this one
        read the secret: the stored one is the current one. While that registration runs, the tool may deliver
        before the registering replica has stored the secret; the handshake's secret, offered in the store by the
        replica that answered it, then verifies (on a connector of its own: it is not agreed yet).
        """
        headers = dict(request.headers)
        used = verifier.agreed_secret()
        try:
            return verifier.verify_webhook(headers, body)
        except (AuthFailed, ToolConfigError):
            if not verifier.handshake:
                raise
            self._refresh(department, verifier)
            if verifier.agreed_secret() != used:  # read again here, or by a delivery alongside
                return verifier.verify_webhook(headers, body)
            try:
                offered = self._store.offered_hook_secret(department)
            except Exception:  # the store did not answer: the delivery is refused (the tool delivers again)
                offered = None
            if offered is None:
                raise
        scratch = self._connector_for(self._runtime().config.departments[department])
        scratch.use_agreed_secret(AgreedSecret("offered", offered))
        return scratch.verify_webhook(headers, body)

    def _answer(self, department: str, outcome: str, status: int, **details: Any) -> Response:  # noqa: ANN401 - log fields
        # Anyone can call any path: only configured departments get their own series, the rest share one.
        label = department if department in self._runtime().verifiers else OTHER_DEPARTMENT
        self._metrics.webhooks.labels(department=label, outcome=outcome).inc()
        if label == OTHER_DEPARTMENT:
            details["path"] = department[:100]  # whatever the caller sent, cut short for the log
            department = OTHER_DEPARTMENT
        (log.info if status < 400 else log.warning)("webhook", department=department, outcome=outcome, **details)
        return Response(json.dumps({"outcome": outcome}), status=status, mimetype="application/json")
