"""The Trello connector's one error table: py-trello and requests outcomes become :mod:`syncd.errors`.

py-trello raises ``Unauthorized`` for 401 and ``ResourceUnavailable`` (status and body text only) for every other
non-200 answer; it drops the response, so the transport keeps the last one to read Retry-After from. Trello's
error bodies are short plain text ("invalid id", "invalid token"); messages quote them, never the URL, whose query
string carries the key and token. A proxy's error page may echo the request, URL included: a body is quoted only
after :func:`syncd.redact.redact`, and cut only after that (a cut token would no longer match).
"""

from __future__ import annotations

import re

import requests
from trello.exceptions import ResourceUnavailable, Unauthorized

from connectors.pacing import parse_retry_after
from syncd.errors import (
    AuthFailed,
    ConnectionFailed,
    ConnectorError,
    InvalidItem,
    ItemNotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    ToolConfigError,
)
from syncd.redact import redact

TOOL = "trello"
REFUSED_FIELDS = {
    "name": "title",
    "desc": "description",
    "idList": "status",
    "dueComplete": "done",
    "idMembers": "assignees",
    "due": "due",
    "idLabels": "labels",
}
"""Trello card parameter -> the canonical field it holds, to tell :class:`InvalidItem` which value was refused."""
_INVALID_VALUE = re.compile(r"invalid value for (\w+)")


def refused_field(message: str) -> str | None:
    """The canonical field Trello's 400 text names: "invalid value for due", or "invalid date" (also the due date)."""
    found = _INVALID_VALUE.search(message)
    if found:
        return REFUSED_FIELDS.get(found.group(1))
    return "due" if "invalid date" in message.lower() else None


def _body_text(error: ResourceUnavailable) -> str:
    """Trello's message without py-trello's " at <url>" suffix (the URL holds credentials), redacted."""
    message = str(getattr(error, "_msg", "")).split(" at https://", 1)[0].split(" at http://", 1)[0]
    return redact(message).strip()[:200] or "no message"


def translate(  # noqa: PLR0911 - one return per row of the table reads best
    error: BaseException, ref: str | None = None, last: requests.Response | None = None
) -> ConnectorError:
    """Map one py-trello or requests exception to the error tree (the single table of this connector)."""
    if isinstance(error, Unauthorized):
        return AuthFailed(TOOL, f"the key or token was refused ({_body_text(error)}): set a valid API key and token")
    if isinstance(error, ResourceUnavailable):
        status = int(getattr(error, "_status", 0))
        text = (f"{ref}: " if ref else "") + _body_text(error)
        if status == 429:
            retry_after = last.headers.get("Retry-After") if last is not None and last.status_code == 429 else None
            return RateLimited(TOOL, text, retry_after_s=parse_retry_after(retry_after))
        if status >= 500:
            return ServiceUnavailable(TOOL, f"{status} {text}", status=status)
        if status == 403:
            return PermissionDenied(TOOL, f"{text}; add the account to the board", status=status)
        if status == 404:
            if ref:
                return ItemNotFound(TOOL, text, ref=ref, status=status)
            return ToolConfigError(TOOL, f"{text}; check the board id", status=status)
        return InvalidItem(TOOL, text, ref=ref, status=status, field=refused_field(_body_text(error)))
    if isinstance(error, requests.RequestException):
        return ConnectionFailed(TOOL, f"no answer from Trello ({type(error).__name__})")
    raise error
