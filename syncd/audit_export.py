"""The audit log's export formats, JSON Lines and CSV: one definition for ``syncd audit`` and the web page.

The columns are the event's position and time, then every field of :class:`~syncd.audit.AuditEvent` as
recorded, then its place in the chain, so an export can be verified against the chain it came from. JSON Lines is
lossless; a CSV cell holds text as is, nothing as empty and anything else as compact JSON.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, fields
from datetime import UTC
from itertools import chain
from typing import Any

from syncd.audit import AuditEvent, Recorded

COLUMNS: tuple[str, ...] = (
    "seq",
    "at",
    *(each.name for each in fields(AuditEvent) if each.name != "at"),
    "prev_hash",
    "hash",
)
"""The export columns: position and time first, then the event as recorded, then its place in the chain."""


def exported(recorded: Recorded) -> dict[str, Any]:
    """One event as an export row, in :data:`COLUMNS` order."""
    content = asdict(recorded.event)
    content["at"] = recorded.event.at.astimezone(UTC).isoformat()
    every = {**content, "seq": recorded.seq, "prev_hash": recorded.prev_hash, "hash": recorded.hash}
    return {column: every[column] for column in COLUMNS}


def flat(value: Any) -> str:  # noqa: ANN401 - any JSON value of the log
    """One cell: text as is, nothing as empty, anything else (numbers, mappings, lists) as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def jsonl(recorded: Iterable[Recorded]) -> Iterator[str]:
    """Each event as one JSON line (with its newline)."""
    for each in recorded:
        yield json.dumps(exported(each), ensure_ascii=False, default=str) + "\n"


def csv_lines(recorded: Iterable[Recorded]) -> Iterator[str]:
    """The header, then each event as one CSV record (with its line end)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for each in chain([None], recorded):  # lazily: a list would read the whole export before its first line
        if each is not None:
            writer.writerow({column: flat(value) for column, value in exported(each).items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
