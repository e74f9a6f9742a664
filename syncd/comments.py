"""Comment mirroring, the pure part: who said what where, how a mirror is attributed, and what to copy where.

Comments are append-only: an original comment (one a person wrote in one tool) is copied once into every other
tool holding the item, attributed to its author and tool, and ends with a mark naming the original
(``mirrored by syncd · sales/5f3a...``). The mark is what keeps mirroring from echoing: a comment carrying it is
never an original, even if syncd's own records of it were lost, and a mirror found after a crash (posted, not yet
recorded) is recognised by it and adopted instead of being posted twice. Edits and deletions of comments are not
propagated: a comment is a statement made at a time, and the audit log records each copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_MARK = re.compile(r"mirrored by syncd · ([A-Za-z0-9.-]+)/([A-Za-z0-9]+)")


@dataclass(frozen=True)
class Original:
    """A comment a person wrote at one endpoint, as canonical Markdown."""

    endpoint: str
    comment_id: str
    author: str
    """The author's name and e-mail as the tool showed them (for the attribution line and the audit log)."""
    body: str


@dataclass(frozen=True)
class Copy:
    """Post ``original`` at ``endpoint`` (a linked endpoint that has no copy of it yet)."""

    original: Original
    endpoint: str


def mirrored_from(markdown: str) -> tuple[str, str] | None:
    """The (endpoint, comment id) a mirror comment names, or None for a comment a person wrote."""
    found = _MARK.search(markdown)
    return (found.group(1), found.group(2)) if found else None


def attributed(original: Original, tool: str) -> str:
    """The mirror's canonical Markdown: who wrote it where, the text, and the mark naming the original.

    ``tool`` is the name of the original's tool as people write it (its ``Capabilities.name``).
    """
    where = f"{tool} ({original.endpoint})"
    return (
        f"**{original.author}** commented in {where}:\n\n{original.body.strip()}\n\n"
        f"_mirrored by syncd · {original.endpoint}/{original.comment_id}_\n"
    )


def copies(
    originals: Iterable[Original], mirrored: Mapping[tuple[str, str], set[str]], linked: Iterable[str]
) -> list[Copy]:
    """Every (original, endpoint) pair still missing: each original goes to each other linked endpoint once.

    ``mirrored`` maps (origin endpoint, comment id) to the endpoints that already hold a copy.
    """
    endpoints = sorted(set(linked))
    missing = []
    for original in originals:
        have = mirrored.get((original.endpoint, original.comment_id), set())
        missing += [
            Copy(original, endpoint) for endpoint in endpoints if endpoint != original.endpoint and endpoint not in have
        ]
    return missing
