"""Trello-shaped identifiers: 24-hex ObjectIds that start with their creation time, and 8-character short links.

Trello ids are MongoDB ObjectIds: the first 8 hex digits are the creation unix time, which clients read
(py-trello's ``Card.card_created_date``) and which ``since``/``before`` compare. The generator is deterministic
(a fixed "machine" part from the organisation name and one counter), so the same seed gives the same ids.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")


def is_object_id(value: str) -> bool:
    """Return whether ``value`` looks like a Trello id (24 hex digits)."""
    return bool(_OBJECT_ID.match(value))


def id_time(object_id: str) -> int:
    """Return the unix time (seconds) encoded in an id's first 8 hex digits."""
    return int(object_id[:8], 16)


@functools.lru_cache(maxsize=65536)
def short_link(object_id: str) -> str:
    """Return the 8-character short link Trello gives a board or card (stable for one id)."""
    number = int(hashlib.sha256(object_id.encode()).hexdigest(), 16)
    chars = []
    for _ in range(8):
        number, digit = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return "".join(chars)


def slug(name: str) -> str:
    """Return the URL slug Trello appends to card and board URLs ("Acme Foods asks" -> "acme-foods-asks")."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


class ObjectIds:
    """Monotonic ObjectId generator: time prefix, fixed machine part, increasing counter."""

    def __init__(self, namespace: str) -> None:
        self._machine = hashlib.sha256(namespace.encode()).hexdigest()[:10]
        self._counter = 0
        self._last_time = 0
        self._lock = threading.Lock()

    def new(self, at: datetime) -> str:
        """Return a new id created at ``at``; ids never go backwards, so sorting by id sorts by creation."""
        with self._lock:
            self._last_time = max(self._last_time, int(at.timestamp()))
            self._counter += 1
            return f"{self._last_time:08x}{self._machine}{self._counter:06x}"
