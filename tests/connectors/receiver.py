"""A real HTTP endpoint on 127.0.0.1 standing in for the daemon's webhook receiver in connector tests.

It answers HEAD (Trello checks the callback URL), hands Asana's X-Hook-Secret handshake to a callback and echoes
what it returns, and keeps every POST delivery (headers and raw body) for the test to verify.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass
class Delivery:
    """One POST the receiver got."""

    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Start with ``with Receiver(...) as receiver:``; ``receiver.url`` is where tools deliver."""

    handshake: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None
    deliveries: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self.send_response(200)
                self.end_headers()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = dict(self.headers.items())
                extra: Mapping[str, str] = {}
                if "X-Hook-Secret" in self.headers and owner.handshake is not None:
                    extra = owner.handshake(headers)
                else:
                    owner.deliveries.append(Delivery(headers, body))
                self.send_response(200)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The callback URL."""
        return f"http://127.0.0.1:{self._server.server_port}/hooks"

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Delivery]:
        """Block until at least ``count`` deliveries arrived (or fail)."""
        deadline = time.monotonic() + timeout_s
        while len(self.deliveries) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} webhook deliveries, got {len(self.deliveries)}")
            time.sleep(0.02)
        return list(self.deliveries)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
