"""The daemon's logs: one structlog setup for syncd and the libraries, and the logger every daemon module writes to.

Its own module because an operator reads the daemon through these lines: JSON on a pipe, text on a terminal,
credentials blanked, tracebacks without local variables. Every module of the package logs as ``syncd.daemon``
(the logger name is part of each line), so splitting the code changed no line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from syncd.redact import MASK, redact

_SECRET_WORDS = ("token", "secret", "password", "authorization", "credential", "signature")


def _redact(logger: object, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Blank any field named like a credential and mask credentials in every text field (:mod:`syncd.redact`).

    Fields are masked one by one so the JSON stays well formed; :func:`_redact_line` then covers what is rendered
    later (an exception's traceback, a library's message).
    """
    for key, value in event.items():
        if any(word in key.lower() for word in _SECRET_WORDS):
            event[key] = MASK
        elif isinstance(value, str):
            event[key] = redact(value)
    return event


def _redact_line(logger: object, method: str, line: str) -> str:
    """The rendered line, masked again: tracebacks are rendered after the field processors ran."""
    return redact(line)


def configure_logging(stream: TextIO | None = None) -> None:
    """Set up structlog for syncd and the libraries' stdlib logging: JSON lines, or readable text on a terminal.

    Tracebacks never show local variables: a frame of a connector holds its token.
    """
    stream = stream or sys.stderr
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    if stream.isatty():
        renderer: Any = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        tail: list[Any] = [renderer, _redact_line]
    else:
        tail = [
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(default=str),
            _redact_line,
        ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared, processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail]
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request would drown the passes


log: structlog.stdlib.BoundLogger = structlog.get_logger("syncd.daemon")
"""The one logger of the package (its name is in every line, so it stays ``syncd.daemon``)."""
