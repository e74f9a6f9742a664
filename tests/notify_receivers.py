"""Local receivers for notification tests: an HTTP endpoint (Apprise ``json://``; over TLS, a Microsoft Teams
Workflows endpoint for ``workflows://``) and an SMTP server (aiosmtpd).

They listen on 127.0.0.1 only and record what arrives; the HTTP one can be told to refuse its first deliveries.
Its TLS certificate comes from a throwaway CA (trustme) the client is told to trust: verification stays on.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class HttpReceiver:
    """Records each JSON body POSTed to it, by path; answers 500 to the first ``refuse`` deliveries."""

    def __init__(self, refuse: int = 0, ca: trustme.CA | None = None) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.refused = 0
        self.refuse = refuse
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    refusing = receiver.refused < receiver.refuse
                    if refusing:
                        receiver.refused += 1
                    else:
                        receiver.received.append((self.path.split("?")[0], json.loads(body)))
                self.send_response(500 if refusing else 200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test asserts on what arrived."""

        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if ca is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1").configure_cert(context)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str, token: str = "receiver-token-0123456789") -> str:  # noqa: S107 - a test's token
        """An Apprise URL delivering to ``path`` here (with a secret-looking token, which must never be logged)."""
        return f"json://127.0.0.1:{self.port}{path}?token={token}"

    def workflow_url(self, workflow: str, signature: str) -> str:
        """An Apprise URL of a Teams Workflows trigger here (Apprise posts to ``/workflows/<workflow>/...``)."""
        return f"workflows://127.0.0.1:{self.port}/{workflow}/{signature}"

    def at(self, path: str) -> list[dict[str, Any]]:
        """The messages delivered to ``path``."""
        with self.lock:
            return [body for where, body in self.received if where == path]

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """An SMTP server on 127.0.0.1 that keeps each message it is handed."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's name
        """Keep the message (aiosmtpd's handler hook)."""
        content = envelope.original_content or b""
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(content)))
        return "250 OK"

    def url(self, to: str) -> str:
        """An Apprise URL sending plain SMTP here (no TLS: a local test server) to ``to``."""
        return f"mailto://127.0.0.1:{self.port}?from=syncd@corp.example&to={to}"

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._controller.stop()


def text_of(message: Message) -> str:
    """The plain-text part of an e-mail."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/plain part")
