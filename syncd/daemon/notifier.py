"""The notifier: delivers the outbox (:mod:`syncd.store.notifications`) to each target through Apprise.

Its own thread, so a target that is slow or down never holds up a pass. Each second it claims the due rows of the
targets whose digest window has passed (one short transaction; on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so with
several replicas each row is claimed by one), sends each target's rows as one message (one event, or a digest
listing each with its links), retrying a few times at once (tenacity), then marks them sent; a target still
failing gets its rows back with a back-off (:data:`BACKOFF_S` doubling up to :data:`MAX_BACKOFF_S`) and is tried
again, for ever, its last error kept in the row (``syncd status`` and the logs show it, redacted).

Exactly once, as far as a remote side effect allows: an event is in the outbox iff its cause committed, a sent row
is never sent again, and a claim lapses (``lease_ttl_s``, at least :data:`MIN_CLAIM_S`) so the rows of a daemon
that died holding them are delivered by the next. Only a crash between a target accepting a message and the
``sent`` commit (milliseconds) sends that message again.

Apprise URLs carry secrets: they are resolved like credentials (registered with :mod:`syncd.redact`, with their
password, query values and long path segments), and what Apprise says about a failure passes
:func:`syncd.redact.redact` before it is logged or stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_exponential

from syncd.config import Config
from syncd.crash import crash_point
from syncd.daemon.logs import log
from syncd.errors import ConfigError, NotDelivered
from syncd.notices import Queued, message
from syncd.redact import is_secret_name, redact, remember
from syncd.store import Store
from syncd.store import notifications as outbox
from syncd.yamlfile import FileError, line_of

TICK_S = 1.0
"""How often the outbox is looked at."""
BACKOFF_S = 5.0
"""A target that failed is tried again after this, doubled per failed round..."""
MAX_BACKOFF_S = 900.0
"""... up to this."""
MIN_CLAIM_S = 10.0
"""The shortest claim: a message (with its quick retries) is sent well within it."""
ATTEMPTS = 3
"""Tries of one message at once, before its rows go back with a back-off."""
SECRET_SEGMENT = 12
"""A path or host segment of an Apprise URL at least this long with a digit in it is taken for a token."""


def register_secrets(url: str) -> None:
    """Register an Apprise URL and the secret parts inside it with :mod:`syncd.redact`.

    A Slack or Teams URL is mostly token (``slack://T000/B000/XXXX``, a workflow's ``sig=``), an e-mail URL has a
    password: Apprise may quote a piece of one in an error, never the whole. Addresses (``to=``, ``from=``, an
    SMTP user name) are not registered: they are people's e-mails, which logs and the audit must keep showing.
    """
    remember(url)
    parts = urlsplit(url)
    remember(unquote(parts.password) if parts.password else None)
    for name, value in parse_qsl(parts.query):
        if is_secret_name(name) or _token_like(value):
            remember(value)
    for segment in [*(parts.hostname or "").split("."), *parts.path.split("/")]:
        if _token_like(unquote(segment)):
            remember(unquote(segment))


def _token_like(text: str) -> bool:
    """Long, with a digit, and no ``@``: a token rather than a word, a host name or an address."""
    return len(text) >= SECRET_SEGMENT and any(char.isdigit() for char in text) and "@" not in text


def targets(config: Config) -> dict[str, str]:
    """Target -> its Apprise URL, each read now and checked; ConfigError naming the file and line of a bad one.

    The URL itself never appears in the error: it is a secret. A variable that is not set raises SyncdError
    naming it (as for every credential).
    """
    urls: dict[str, str] = {}
    errors: list[FileError] = []
    for name, department in config.departments.items():
        path = _department_file(config.root, name)
        for index, target in enumerate(department.notify, 1):
            key = f"{name}/{target.name or index}"
            url = target.url.resolve()
            register_secrets(url)
            if apprise.Apprise.instantiate(url, suppress_exceptions=True) is None:
                where = f"the file {target.url.file}" if target.url.env is None else f"${target.url.env}"
                errors.append(
                    FileError(
                        path,
                        line_of(path, ("notify", index - 1, "url")),
                        f"notify target {key}: the URL in {where} is not one Apprise can send to: write e.g. "
                        "slack://..., workflows://..., mailtos://..., jsons://host/path (docs/notifications.md)",
                    )
                )
            urls[key] = url
    if errors:
        raise ConfigError(errors)
    return urls


def _department_file(root: Path, name: str) -> Path:
    """The file a department came from: ``<name>.yaml``, or the one whose ``name:`` says so."""
    path = root / "departments" / f"{name}.yaml"
    if path.exists():
        return path
    for candidate in sorted((root / "departments").glob("*.yaml")):
        if f"name: {name}" in candidate.read_text(encoding="utf-8", errors="replace"):
            return candidate
    return path


def send(url: str, title: str, body: str) -> None:
    """Send one message through Apprise; NotDelivered with what Apprise said (redacted) if it was not accepted."""
    sender = apprise.Apprise()
    if not sender.add(url):
        raise NotDelivered("the target's URL is not one Apprise can send to")
    with apprise.LogCapture(level=logging.WARNING) as said:  # type: ignore[no-untyped-call]  # unannotated upstream
        accepted = sender.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT)
    if not accepted:
        words = " ".join(said.getvalue().split())
        raise NotDelivered(redact(words or "the target did not accept the message"))


class Notifier:
    """Delivers the outbox of one store on a thread of its own (start, then stop at shutdown)."""

    def __init__(
        self,
        store: Store,
        *,
        holder: str,
        config: Callable[[], Config],
        urls: Callable[[], Mapping[str, str]],
        sender: Callable[[str, str, str], None] = send,
    ) -> None:
        self.store = store
        self.holder = holder
        self._config = config
        self._urls = urls
        self._send = sender
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Deliver every second until :meth:`stop` (nothing to do without targets: the rounds are cheap)."""
        self._thread = threading.Thread(target=self._loop, name="syncd-notify", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the round in flight (within ``timeout_s``) and stop; unsent rows wait in the store."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.deliver()
            except Exception:
                log.exception("notify", outcome="error")  # the store did not answer: next round

    def deliver(self) -> int:
        """One round: claim what is due, send it, record the outcome; the messages sent."""
        urls = dict(self._urls())
        if not urls or not self.store.unsent_notifications():
            return 0  # a read without a write lock: on SQLite an idle round never holds up a pass
        config = self._config()
        claim_s = max(config.instance.lease_ttl_s, MIN_CLAIM_S)
        with self.store.engine.begin() as connection:
            due = outbox.claim(
                connection,
                self.holder,
                digest_s=config.instance.notify_digest_s,
                claim_s=claim_s,
                targets=set(urls),
            )
        sent = 0
        for target, rows in due.items():
            if self._stop.is_set():  # shutting down: hand the rest back rather than let their claim lapse
                with self.store.engine.begin() as connection:
                    outbox.release(connection, [row.id for row in rows], self.holder)
                continue
            sent += self._deliver(target, urls[target], rows, config, claim_s)
        return sent

    def _deliver(self, target: str, url: str, rows: list[Queued], config: Config, claim_s: float) -> int:
        ids = [row.id for row in rows]
        kinds = sorted({row.kind for row in rows})
        title, body = message(rows[0].department, rows, config.instance.public_url)
        crash_point("before-notify")
        retrying = Retrying(
            stop=stop_after_attempt(ATTEMPTS) | stop_after_delay(claim_s / 3),
            wait=wait_exponential(multiplier=0.5, max=4),
            retry=retry_if_exception_type(NotDelivered),
            reraise=True,
        )
        try:
            retrying(self._send, url, title, body)
        except NotDelivered as error:
            attempts = max(row.attempts for row in rows) + 1
            backoff = min(BACKOFF_S * 2 ** (attempts - 1), MAX_BACKOFF_S)
            with self.store.engine.begin() as connection:
                outbox.failed(connection, ids, self.holder, str(error), backoff)
            log.warning(
                "notify",
                target=target,
                events=len(rows),
                kinds=kinds,
                outcome="retry",
                attempts=attempts,
                retry_in_s=backoff,
                error=str(error),
            )
            return 0
        with self.store.engine.begin() as connection:
            still_ours = outbox.sent(connection, ids, self.holder)
        log.info(
            "notify",
            target=target,
            events=len(rows),
            kinds=kinds,
            outcome="sent" if still_ours == len(ids) else "sent_late",
            digest=len(rows) > 1,
        )
        return 1
