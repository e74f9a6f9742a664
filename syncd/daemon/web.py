"""The daemon's HTTP face: the WSGI routes and the production server (waitress) they are served on.

One application answers ``/healthz``, ``/readyz``, ``/metrics``, ``/webhooks/<department>`` and, when the web page
is configured, everything under ``/ui/`` (:mod:`syncd.ui`). Its own module
because routing and serving are plumbing the other parts should not know about: liveness, readiness, metrics and
webhooks each come from their own owner, and this only turns their answers into HTTP. (Named ``web``, not
``http``, so that it is never mistaken for the standard library's package.) The server bounds what a client can
hold: connections, idle and slow requests, header and body sizes, worker threads (see the constants below).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from syncd.daemon.metrics import Metrics
from syncd.daemon.webhooks import Webhooks
from syncd.errors import SyncdError
from syncd.ui.app import mount


class Served(Protocol):
    """What :func:`serve` serves: an object with a WSGI application (the daemon's :class:`App`, ``syncd web``'s)."""

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:  # noqa: ANN401 - WSGI
        """Answer one request."""
        ...


class App:
    """The routes; each answer comes from the part that owns it."""

    def __init__(
        self,
        *,
        alive: Callable[[], bool],
        readiness: Callable[[], dict[str, Any]],
        metrics: Metrics,
        webhooks: Webhooks,
        ui: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]] | None = None,
    ) -> None:
        self.ui = ui
        """The web page, mounted under ``/ui/`` (None: not configured); swapped on reload."""
        self._alive = alive
        self._readiness = readiness
        self._metrics = metrics
        self._webhooks = webhooks
        self._url_map = Map(
            [
                Rule("/healthz", endpoint="healthz", methods=["GET"]),
                Rule("/readyz", endpoint="readyz", methods=["GET"]),
                Rule("/metrics", endpoint="metrics", methods=["GET"]),
                Rule("/webhooks/<department>", endpoint="webhook", methods=["HEAD", "POST"]),
            ]
        )

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:  # noqa: ANN401 - WSGI
        """The daemon's one HTTP application: health, readiness, metrics, webhooks and the web page."""
        ui = self.ui
        if ui is not None:
            answer = mount(ui, environ, start_response)
            if answer is not None:
                return answer
        request = Request(environ)
        try:
            endpoint, arguments = self._url_map.bind_to_environ(environ).match()
            if endpoint == "healthz":
                response = self._healthz()
            elif endpoint == "readyz":
                response = self._readyz()
            elif endpoint == "metrics":
                response = Response(self._metrics.render(), mimetype=None, content_type=CONTENT_TYPE_LATEST)
            else:
                response = self._webhooks.answer(request, arguments["department"])
        except HTTPException as error:
            return error(environ, start_response)
        return response(environ, start_response)

    def _healthz(self) -> Response:
        alive = self._alive()
        body = {"status": "ok" if alive else "the scheduler thread stopped"}
        return Response(json.dumps(body), status=200 if alive else 503, mimetype="application/json")

    def _readyz(self) -> Response:
        body = self._readiness()
        return Response(json.dumps(body), status=200 if body["ready"] else 503, mimetype="application/json")


def _split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise SyncdError(f"listen must be host:port (e.g. 127.0.0.1:8787), not {listen!r}")
    return host.strip("[]"), int(port)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


THREADS = 4
"""Worker threads answering requests: every answer is quick (a verify and a queue, a render), so few suffice."""
CONNECTION_LIMIT = 500
"""Open connections beyond which waitress stops accepting (the backlog waits): file descriptors stay bounded."""
IDLE_TIMEOUT_S = 10
"""A connection silent this long, with no request being answered, is closed (a request line and then nothing)."""
REQUEST_DEADLINE_S = 30
"""A request (headers and body) must arrive whole within this, however slowly it trickles."""
MAX_HEADER_BYTES = 64 * 1024
"""Request line and headers beyond this are refused with 431; the tools send a few KB."""


class _TimedParser(HTTPRequestParser):  # type: ignore[misc] # waitress has no type hints
    """A request parser that remembers when the request's first bytes arrived (for :attr:`Server.maintenance`)."""

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.time()  # waitress's own activity times are wall-clock: compared with them


class _Channel(HTTPChannel):  # type: ignore[misc] # waitress has no type hints
    parser_class = _TimedParser


class Server(TcpWSGIServer):  # type: ignore[misc] # waitress has no type hints
    """Waitress's server plus a deadline for a whole request, and a stop that ends its loop from its own thread.

    ``channel_timeout`` closes a connection that sends nothing for a while; a client trickling a byte every few
    seconds would keep one forever, so an unfinished request also has a deadline. Connections cost no thread
    here (waitress reads them all on one loop): a slow client holds a socket, never a worker.
    """

    channel_class = _Channel

    def __init__(self, app: Callable[..., Any], listener: socket.socket, adjustments: Adjustments) -> None:
        sockinfo = (listener.family, listener.type, listener.proto, listener.getsockname())
        super().__init__(app, None, True, listener, adj=adjustments, bind_socket=False, sockinfo=sockinfo)
        self.stopping = threading.Event()
        self._closing = threading.RLock()
        self._closed = False
        """Whether the loop has closed its sockets (under ``_closing``): the trigger is not pulled after."""
        self.thread = threading.Thread(target=self._loop, name="syncd-http", daemon=True)

    def maintenance(self, now: float) -> None:
        """Close idle connections (waitress's rule), and any whose unfinished request began too long ago."""
        super().maintenance(now)
        cutoff = now - REQUEST_DEADLINE_S
        for channel in list(self.active_channels.values()):
            request = channel.request
            if not channel.requests and isinstance(request, _TimedParser) and request.started < cutoff:
                channel.will_close = True

    def _loop(self) -> None:
        """Waitress's event loop, one poll at a time, so that :meth:`stop` ends it here and not under its feet."""
        while not self.stopping.is_set():
            wasyncore.loop(timeout=1.0, map=self._map, use_poll=True, count=1)
        with self._closing:
            wasyncore.close_all(self._map)
            self._closed = True

    def pull_trigger(self) -> None:
        """Wake the loop (a worker's response is ready, or :meth:`stop`), unless it has closed its sockets.

        Closed, the trigger's pipe is gone and its descriptor may be another file's already: a write there is
        EBADF (seen in CI) or worse. The loop closes under the same lock (reentrant: a channel closed there may
        pull the trigger from the loop's own thread).
        """
        with self._closing:
            if not self._closed:
                super().pull_trigger()

    def stop(self) -> None:
        """Close the listening socket and every connection, then let the workers finish (5 s at most)."""
        self.stopping.set()
        self.pull_trigger()  # wakes the loop's poll at once
        self.thread.join(timeout=5)
        self.task_dispatcher.shutdown(cancel_pending=True, timeout=5)


def serve(
    listen: str, app: Served, *, max_body_bytes: int = 1_048_576, connection_limit: int = CONNECTION_LIMIT
) -> tuple[Server, str]:
    """Serve ``app`` on ``listen`` (host:port) from a background thread; the server and the URL it serves on.

    The webhook route refuses (and counts) bodies over ``max_body_bytes`` itself; the server refuses with 413,
    before buffering them, bodies over twice that (waitress reads a whole body before the app runs, so this is
    what bounds memory and disk). ``connection_limit``: :data:`CONNECTION_LIMIT` (a test sets a smaller one to
    reach it quickly). Raises SyncdError for a malformed ``listen``, OSError when the address cannot be bound.
    """
    host, port = _split_listen(listen)
    # Bound here, not by waitress: a port in use is then an OSError the CLI reports, with the daemon's wording.
    listener = socket.create_server((host, port), family=_family(host), backlog=1024)
    try:
        adjustments = Adjustments(
            threads=THREADS,
            connection_limit=connection_limit,
            channel_timeout=IDLE_TIMEOUT_S,
            cleanup_interval=1,  # how often timeouts are checked: the default 30 s would triple IDLE_TIMEOUT_S
            max_request_header_size=MAX_HEADER_BYTES,
            max_request_body_size=2 * max_body_bytes,
            asyncore_use_poll=True,  # select() stops at file descriptor 1024
            ident="syncd",
            clear_untrusted_proxy_headers=False,  # no proxy is trusted, and no route reads those headers
        )
        server = Server(app.wsgi_app, listener, adjustments)
    except BaseException:
        listener.close()
        raise
    server.thread.start()
    return server, f"http://{host}:{server.effective_port}"


def stop(server: Server) -> None:
    """Stop serving and close the listening socket and every connection."""
    server.stop()
