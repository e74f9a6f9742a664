"""``syncd web``: the web page (audit review and people's decisions) for a store alone, without the daemon.

It serves only ``/ui/`` (``/`` redirects there), on ``--listen`` or the configured ``listen``, with the same
waitress server the daemon uses; ``syncd run`` serves the same page beside its health and webhook routes. Needs the
configuration's ``web:`` section (users and tokens or OIDC, session secret) and the store, no tool's credential.
Prints ``{"listen": URL}`` on standard output once serving; SIGTERM or Ctrl-C stops it. Logs (sign-ins, refused
sign-ins) go to standard error as the daemon's do.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from syncd.cli.options import ConfigOption
from syncd.cli.store import open_store


def web(
    listen: Annotated[
        str | None,
        typer.Option(help="host:port to serve on (default: the configuration's listen; port 0 picks a free one)."),
    ] = None,
    config_dir: ConfigOption = Path("config"),
) -> None:
    """Serve the web page (audit log, items, the chain, decisions) for the configured store, until SIGTERM/Ctrl-C."""
    from connectors.factory import CAPABILITIES  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.config import load_config  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.daemon import configure_logging  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.daemon import web as http  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.ui import Mounted, Ui  # noqa: PLC0415 - keeps `syncd --help` fast

    configure_logging()
    config = load_config(config_dir)
    stop = threading.Event()

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    with open_store(config_dir) as store:
        ui = Ui(config, store, CAPABILITIES)
        try:
            server, url = http.serve(listen or config.instance.listen, Mounted(ui))
            try:
                signal.signal(signal.SIGTERM, on_stop)
                signal.signal(signal.SIGINT, on_stop)
                sys.stdout.write(json.dumps({"listen": url, "page": f"{url}/ui/"}) + "\n")
                sys.stdout.flush()
                while not stop.wait(1.0):
                    pass
            finally:
                http.stop(server)
        finally:
            ui.close()
