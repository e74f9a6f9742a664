"""The Jira connector's one error table: python-jira and requests outcomes become :mod:`syncd.errors`.

python-jira raises ``JIRAError`` (``status_code``, ``text``, ``response``) once its own retries are exhausted;
the connector sets them to zero, so every outcome arrives here once and :mod:`connectors.pacing` decides. Jira's
error bodies are ``{"errorMessages": [...], "errors": {field: message}}``; messages quote those, never the URL or
headers (the Authorization header holds the token), and only after :func:`syncd.redact.redact`: a proxy's page
may echo the request.
"""

from __future__ import annotations

import json

import requests
from jira.exceptions import JIRAError

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
from syncd.model import FIELDS
from syncd.redact import redact

TOOL = "jira"
REFUSED_FIELDS = {
    "summary": "title",
    "description": "description",
    "assignee": "assignees",
    "duedate": "due",
    "labels": "labels",
    "priority": "priority",
}
"""Jira field -> the canonical field it holds, to tell :class:`InvalidItem` which value a 400's ``errors`` refused."""


def jira_message(text: str | None) -> str:
    """Jira's own error text from an errorMessages/errors body, or a short fallback; redacted, then cut."""
    try:
        body = json.loads(text or "")
        parts = [str(m) for m in body.get("errorMessages") or []]
        parts += [f"{field}: {message}" for field, message in (body.get("errors") or {}).items()]
        return redact("; ".join(parts)) or "no error message in the answer"
    except (ValueError, AttributeError):
        return redact(text or "no error message in the answer").strip()[:200]


def refused_field(error: JIRAError) -> str | None:
    """The canonical field a 400's ``errors`` object names (the first in canonical order), else a custom field's id.

    A custom field is named by its id (``customfield_10003``): the connector knows which write field it placed there.

    python-jira puts its digest of the body in ``text`` and keeps the body in ``response``: both are read.
    """
    response = getattr(error, "response", None)
    for text in (getattr(response, "text", None), error.text):
        try:
            errors = json.loads(text or "").get("errors") or {}
        except (ValueError, AttributeError, TypeError):
            continue
        if isinstance(errors, dict):
            named = {REFUSED_FIELDS[name] for name in errors if name in REFUSED_FIELDS}
            # A custom field is named by its id: the connector knows which write field it placed there.
            return next((name for name in FIELDS if name in named), None) or next(
                (name for name in errors if name.startswith("customfield_")), None
            )
    return None


def translate(  # noqa: PLR0911 - one return per row of the table reads best
    error: BaseException, ref: str | None = None
) -> ConnectorError:
    """Map one python-jira or requests exception to the error tree (the single table of this connector)."""
    if isinstance(error, JIRAError):
        status = int(error.status_code or 0)
        text = (f"{ref}: " if ref else "") + jira_message(error.text)
        response = getattr(error, "response", None)
        if status == 401:
            return AuthFailed(TOOL, f"the credential was refused ({text}): set a valid user and API token", status=401)
        if status == 403:
            return PermissionDenied(TOOL, f"{text}; give the account the project permission", status=403)
        if status == 404:
            if ref:
                return ItemNotFound(TOOL, text, ref=ref, status=404)
            return ToolConfigError(TOOL, f"{text}; check the base URL and project key", status=404)
        if status == 410:
            return ToolConfigError(TOOL, f"{text}; this Jira removed the API (Cloud: use /search/jql)", status=410)
        if status == 429:
            retry_after = response.headers.get("Retry-After") if response is not None else None
            return RateLimited(TOOL, text, retry_after_s=parse_retry_after(retry_after))
        if status >= 500:
            return ServiceUnavailable(TOOL, f"{status} {text}", status=status)
        return InvalidItem(TOOL, text, ref=ref, status=status, field=refused_field(error))
    if isinstance(error, requests.RequestException):
        return ConnectionFailed(TOOL, f"no answer from Jira ({type(error).__name__})")
    raise error
