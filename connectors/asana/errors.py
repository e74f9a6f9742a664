"""The Asana connector's one error table: every SDK outcome becomes an error of :mod:`syncd.errors`.

The asana v5 SDK raises ``asana.rest.ApiException`` for an HTTP error answer (with ``status``, ``headers`` and
the raw ``body``), and urllib3's exceptions when no answer came (the connector disables the SDK's own retries,
so these arrive unwrapped, or as ``MaxRetryError`` from the pool). Messages carry Asana's own error text and the
ref, never the token: the SDK keeps it in a header, which is never quoted here; the text passes
:func:`syncd.redact.redact` all the same (a proxy's page, or Asana's message, may echo the request).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping

from asana.rest import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

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

TOOL = "asana"


def asana_message(body: object) -> str:
    """Asana's own error text from an ``{"errors": [{"message": ...}]}`` body, or a short fallback."""
    try:
        parsed = json.loads(body if isinstance(body, str | bytes) else "")
        return redact("; ".join(str(error["message"]) for error in parsed["errors"]))
    except (ValueError, KeyError, TypeError):
        return "no error message in the answer"


def translate(error: BaseException, ref: str | None = None) -> ConnectorError:
    """Map one SDK exception to the error tree (the single table of this connector)."""
    if isinstance(error, ApiException):
        status = int(error.status or 0)
        headers: Mapping[str, str] = error.headers or {}
        message = f"{ref}: " if ref else ""
        message += asana_message(error.body)
        factory = _BY_STATUS.get(status)
        if status == 429:
            return RateLimited(TOOL, message, retry_after_s=parse_retry_after(headers.get("Retry-After")))
        if status >= 500:
            return ServiceUnavailable(TOOL, f"{status} {message}", status=status)
        if factory is not None:
            return factory(message, ref, status)
        return InvalidItem(TOOL, f"unexpected answer {status}: {message}", ref=ref, status=status)
    if isinstance(error, Urllib3Error | OSError):
        return ConnectionFailed(TOOL, f"no answer from Asana ({type(error).__name__})")
    raise error


_BY_STATUS: dict[int, Callable[[str, str | None, int], ConnectorError]] = {
    400: lambda message, ref, status: InvalidItem(TOOL, message, ref=ref, status=status),
    401: lambda message, ref, status: AuthFailed(
        TOOL, f"the token was refused ({message}): set a valid personal access token", status=status
    ),
    402: lambda message, ref, status: ToolConfigError(TOOL, f"this needs a paid Asana plan: {message}", status=status),
    403: lambda message, ref, status: PermissionDenied(
        TOOL, f"the account may not do this: {message}; add it to the project", status=status
    ),
    404: lambda message, ref, status: (
        ItemNotFound(TOOL, message, ref=ref, status=status)
        if ref
        else ToolConfigError(TOOL, f"not found: {message}; check the workspace and project ids", status=status)
    ),
}


REFUSED_FIELDS: dict[str, str] = {
    "name": "title",
    "notes": "description",
    "html_notes": "description",
    "completed": "done",
    "assignee": "assignees",
    "due_on": "due",
    "due_at": "due",
    "start_on": "due",
    "tags": "labels",
    "tag": "labels",
    "memberships": "status",
    "section": "status",
    "projects": "status",
    "project": "status",
}
"""A task property as Asana's 400 messages name it -> the record field syncd wrote it from.

``start_on`` is not written by syncd, but a due date before a person's start date is refused under its name."""
_NAMED = re.compile(r"(?:\d+: )?([a-z_]+)(?:\.[a-z_.]+)?:")
_IDENTIFIER = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")


def refused_field(message: str) -> str | None:
    """The record field a refused task write names, or None when it names none, or several.

    Asana's messages begin with the property (``"due_on: ..."``, ``"memberships.section: ..."``), sometimes after
    the ref the connector puts first; a few name properties only inside the text (``"You may only provide one of
    due_on or due_at."``), where only snake_case names count: ``name`` or ``project`` there are plain English.
    """
    found: set[str] = set()
    for part in message.split("; "):
        named = _NAMED.match(part.strip())
        if named is not None:
            field = REFUSED_FIELDS.get(named.group(1))
            found |= {field} if field else set()
            continue
        found |= {REFUSED_FIELDS[word] for word in _IDENTIFIER.findall(part) if word in REFUSED_FIELDS}
    return found.pop() if len(found) == 1 else None
