"""The daemon's HTTP face: the WSGI routes and the threaded server they are served on.

One application answers ``/healthz``, ``/readyz``, ``/metrics`` and ``/webhooks/<department>``. Its own module
because routing and serving are plumbing the other parts should not know about: liveness, readiness, metrics and
webhooks each come from their own owner, and this only turns their answers into HTTP. (Named ``web``, not
``http``, so that it is never mistaken for the standard library's package.)
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from syncd.daemon.metrics import Metrics
from syncd.daemon.webhooks import Webhooks
from syncd.errors import SyncdError


class App:
    """The routes; each answer comes from the part that owns it."""

    def __init__(
        self,
        *,
        alive: Callable[[], bool],
        readiness: Callable[[], dict[str, Any]],
        metrics: Metrics,
        webhooks: Webhooks,
    ) -> None:
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
        """The daemon's one HTTP application: health, readiness, metrics and webhooks."""
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


def serve(listen: str, app: App) -> tuple[BaseWSGIServer, str]:
    """Serve ``app`` on ``listen`` (host:port) from a background thread; the server and the URL it serves on.

    Raises SyncdError for a malformed ``listen``, OSError when the address cannot be bound.
    """
    host, port = _split_listen(listen)
    # Bound here, not by werkzeug: a port in use is then an OSError the CLI reports, not werkzeug's sys.exit.
    with socket.create_server((host, port), family=_family(host)) as listener:
        server = make_server(host, port, app.wsgi_app, threaded=True, fd=listener.fileno())
    if isinstance(server, ThreadedWSGIServer):
        server.daemon_threads = True  # a hung client connection must not hold the process at exit
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="syncd-http", daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"


def stop(server: BaseWSGIServer) -> None:
    """Stop serving and close the listening socket."""
    server.shutdown()
    server.server_close()
