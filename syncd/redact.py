"""The one redaction layer: every text syncd prints, logs, serves or stores passes :func:`redact` first.

A secret reaches a message by two roads: a value syncd knows (a credential it resolved, the store URL's password)
quoted back by a tool, a proxy or a library; or a credential-shaped piece of a request a tool echoed (a Trello URL
carries the key and token in its query string, an error page may print the request's headers). So the layer
masks both, with ``***``, and nothing else:

======================================  ===================================================================
what                                    masked as
======================================  ===================================================================
a registered value (:func:`remember`)   ``***``, also URL-encoded (``quote``, ``quote_plus``) or JSON-escaped
URL userinfo                            ``scheme://user:***@host``
a credential-named query/form value     ``?key=***&token=***`` (:data:`SECRET_NAMES`, ``*_token`` ...)
a credential header or JSON field       ``Authorization: ***``, ``"api_key": "***"``
an authorization scheme's value         ``Bearer ***``, ``Basic ***``
======================================  ===================================================================

Values shorter than :data:`MIN_LENGTH` are not registered: masking every "abc" in a message would hide more than
it protects, and no tool issues credentials that short. The registry is per process and only grows (a value
rotated away stays masked). Pure: no I/O, imports nothing of syncd, so every layer may call it.
"""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_LENGTH = 6
"""Shorter values are not registered (see the module docstring)."""

SECRET_NAMES = frozenset(
    {
        "key",
        "token",
        "api_key",
        "apikey",
        "api-key",
        "access_token",
        "refresh_token",
        "id_token",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "signature",
        "sig",
        "x-amz-signature",
        "x-goog-signature",
    }
)
"""Query-string and form parameter names whose value is masked; also any name ending in one of :data:`_ENDINGS`."""
_ENDINGS = ("_token", "-token", "_key", "-key", "_secret", "-secret", "_password", "-password", "signature")

_HEADERS = (
    r"authorization|proxy-authorization|x-api-key|api-key|x-auth-token|x-access-token|x-hook-secret|"
    r"x-trello-secret|cookie|set-cookie|password|passwd|secret|client_secret|token|access_token|refresh_token|"
    r"api_key|apikey"
)
_URL_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@?#]*:)(?P<password>[^\s/@?#]+)(?=@)")
_PARAMETER = re.compile(r"(?P<name>(?<![\w.-])[A-Za-z][\w.-]*)=(?P<value>[^&\s#\"'<>,;)]+)")
# "Authorization: Basic x" on its own line (an echoed request), or "'authorization': '...'" / '"token": "..."'
# in a quoted dict or JSON body: the name, its separator and an optional quote are kept, the value goes.
_HEADER_LINE = re.compile(rf"(?im)^(?P<head>[ \t]*(?:{_HEADERS})[ \t]*:[ \t]*)(?P<value>\S.*?)[ \t]*$")
_QUOTED_FIELD = re.compile(rf"(?i)(?P<head>(?P<q>[\"'])(?:{_HEADERS})(?P=q)\s*:\s*(?P<v>[\"']))(?P<value>.*?)(?P=v)")
_SCHEME = re.compile(r"(?i)\b(?P<head>(?:Bearer|Basic|Digest|Token|OAuth)\s+)(?P<value>[A-Za-z0-9._~+/=:-]{6,})")

_lock = threading.Lock()
_known: tuple[str, ...] = ()
"""Every registered value and its encoded forms, longest first (so a value containing another goes whole)."""


def remember(value: str | None) -> None:
    """Register a secret value (a resolved credential, a store password): from now on it is masked everywhere."""
    global _known  # noqa: PLW0603 - one registry per process, by design: every exit point reads the same one
    if value is None or len(value) < MIN_LENGTH:
        return
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    with _lock:
        if value not in _known:
            _known = tuple(sorted({*_known, *forms}, key=len, reverse=True))


def known() -> tuple[str, ...]:
    """The registered values and their encoded forms (for tests and the docs' table)."""
    return _known


def is_secret_name(name: str) -> bool:
    """Whether a parameter or field named so holds a credential (``token``, ``api_key``, ``client_secret`` ...)."""
    lowered = name.lower()
    return lowered in SECRET_NAMES or lowered.endswith(_ENDINGS)


def redact(text: str) -> str:
    """``text`` with every registered value and every credential-shaped piece masked (the module's table)."""
    for value in _known:
        if value in text:
            text = text.replace(value, MASK)
    text = _URL_USERINFO.sub(lambda m: m["head"] + MASK, text)
    text = _PARAMETER.sub(lambda m: f"{m['name']}={MASK}" if is_secret_name(m["name"]) else m[0], text)
    text = _HEADER_LINE.sub(lambda m: m["head"] + MASK, text)
    text = _QUOTED_FIELD.sub(lambda m: m["head"] + MASK + m["v"], text)
    return _SCHEME.sub(lambda m: m["head"] + MASK, text)
