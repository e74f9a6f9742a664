"""Helpers shared by the Trello emulator tests: clients through the connector transport, a webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from trello import TrelloClient

from connectors.trello.http import BaseUrlSession
from sandbox.seed import load_seed, token_for
from sandbox.trello import TrelloEmulator


@contextmanager
def running_emulator() -> Iterator[TrelloEmulator]:
    """A freshly seeded emulator on an ephemeral port."""
    emulator = TrelloEmulator(load_seed())
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def client_for(emulator: TrelloEmulator, email: str | None = None, *, oauth: bool = False) -> TrelloClient:
    """A py-trello client as a person (the service account by default), key+token params or OAuth header."""
    credentials = emulator.credentials()
    token = token_for("trello", email) if email else credentials["token"]
    session = BaseUrlSession(emulator.url, timeout_s=10.0)
    if oauth:
        return TrelloClient(
            api_key=credentials["key"], api_secret="unused", token=token, token_secret="unused", http_service=session
        )
    return TrelloClient(api_key=credentials["key"], api_secret=token, http_service=session)


def auth_params(emulator: TrelloEmulator, email: str | None = None) -> dict[str, str]:
    """The key/token query parameters of a person."""
    credentials = emulator.credentials()
    token = token_for("trello", email) if email else credentials["token"]
    return {"key": credentials["key"], "token": token}


class Receiver:
    """A tiny webhook receiver on 127.0.0.1:0 that answers HEAD with ``head_status`` and records POSTs."""

    def __init__(self, head_status: int = 200) -> None:
        self.head_status = head_status
        self.posts: list[tuple[bytes, dict[str, str]]] = []
        self.heads = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                receiver.heads += 1
                self.send_response(receiver.head_status)
                self.end_headers()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.posts.append((body, dict(self.headers.items())))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """The callback URL."""
        return f"http://127.0.0.1:{self.server.server_port}/trello/hook?board=sales"

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies received so far."""
        return [json.loads(body) for body, _ in self.posts]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
