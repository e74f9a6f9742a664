"""Rich text between the three tools, through one canonical Markdown, so equal text compares equal (quirk 9).

Jira stores wiki markup, Trello Markdown, Asana a restricted HTML. The mapping never compares those raw strings:
it converts each to canonical Markdown (:func:`normalise` defines it) and compares that. Every converter reads
its format into one document tree (``syncd.richtext.model``) and writes the tree out, so for a canonical document
``D``, ``wiki_to_markdown(markdown_to_wiki(D)) == D`` and ``asana_html_to_markdown(markdown_to_asana_html(D)) == D``,
and any tool's text is stable after one conversion: two tools never rewrite each other's text forever.

What a format cannot carry (a table, an image, a mention, a colour, underline in Markdown, a heading below level 2
in Asana...) is kept as its plain text, and a sentence saying so is appended to the optional ``warnings`` list:
the mapping reports lossy conversions, it never loses content silently. All functions are pure.
"""

from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from syncd.richtext import asana, markdown, plain, wiki

__all__ = [
    "asana_html_to_markdown",
    "clear_memo",
    "markdown_to_asana_html",
    "markdown_to_trello",
    "markdown_to_wiki",
    "normalise",
    "trello_to_markdown",
    "wiki_to_markdown",
]

MEMO = 4096
"""Texts each converter remembers. Converting is the costliest part of decoding a record, and a daemon converts
the same texts again and again: each write's read-back, syncd's own writes coming back in the feeds, an item read
again after a failure. The converters are pure, so a remembered answer (with its warnings) is the answer."""


class Converter(Protocol):
    """A text converter: the converted text; what it could not carry is appended to ``warnings``."""

    def __call__(self, text: str, warnings: list[str] | None = None) -> str: ...


_MEMOS: list[Callable[[], None]] = []


_PLAIN = re.compile(r"[^\\\[\]<>&(){}%!]*\Z")
"""Converted text without escapes, links, brackets, entities or percent signs: canonical as it stands.

Not every converted text is canonical: a link whose address Markdown readers percent-encode, or an escape next to
a heading mark, reads back differently (``tests/test_richtext.py`` finds such texts). Text outside those
characters has always read back exactly, with nothing lost, in that test's thousands of arbitrary tool texts."""


class _Canonical:
    """The last :data:`MEMO` texts a converter produced as canonical Markdown, which :func:`normalise` returns as is.

    A Markdown tool mostly holds exactly the text another tool's text converts to, since syncd wrote it there:
    normalising it again would parse it for nothing, the costliest conversion of all. Only texts :data:`_PLAIN`
    accepts are kept.
    """

    def __init__(self) -> None:
        self._texts: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, text: str) -> None:
        if not _PLAIN.match(text):
            return
        with self._lock:
            self._texts[text] = None
            self._texts.move_to_end(text)
            if len(self._texts) > MEMO:
                self._texts.popitem(last=False)

    def __contains__(self, text: object) -> bool:
        with self._lock:
            return text in self._texts

    def clear(self) -> None:
        with self._lock:
            self._texts.clear()


_CANONICAL = _Canonical()
_MEMOS.append(_CANONICAL.clear)


def _memoised(convert: Callable[[str, list[str]], str], *, to_canonical: bool = False) -> Converter:
    """``convert`` remembering its last :data:`MEMO` texts, warnings included.

    ``to_canonical``: what it returns is canonical Markdown, remembered as such for :func:`normalise`.
    """

    @functools.lru_cache(maxsize=MEMO)
    def cached(text: str) -> tuple[str, tuple[str, ...]]:
        said: list[str] = []
        converted = convert(text, said)
        if to_canonical:
            _CANONICAL.add(converted)
        return converted, tuple(said)

    @functools.wraps(convert)
    def run(text: str, warnings: list[str] | None = None) -> str:
        converted, said = cached(text)
        if warnings is not None:
            warnings.extend(said)
        return converted

    _MEMOS.append(cached.cache_clear)
    return run


def _to_canonical(convert: Callable[[str, list[str]], str]) -> Converter:
    """:func:`_memoised` for a converter to canonical Markdown."""
    return _memoised(convert, to_canonical=True)


def clear_memo() -> None:
    """Forget every remembered conversion (a benchmark measuring conversion itself starts from here)."""
    for clear in _MEMOS:
        clear()


def _normalise(markdown_text: str, warnings: list[str]) -> str:
    """Parse any Markdown and write it back in the canonical spelling (what :func:`normalise` does unremembered)."""
    return markdown.render(markdown.parse(markdown_text, warnings), warnings)


_normalise_memo = _memoised(_normalise)


def normalise(markdown_text: str, warnings: list[str] | None = None) -> str:
    """The canonical Markdown for any Markdown: one spelling per construct, so equal text compares equal.

    A text another converter produced (see :class:`_Canonical`) is returned as it is, without parsing it again.
    """
    if markdown_text in _CANONICAL:
        return markdown_text
    return _normalise_memo(markdown_text, warnings)


trello_to_markdown = normalise
"""Trello stores Markdown: its canonical form is the normalised text."""

markdown_to_trello = normalise
"""What to write to Trello for some Markdown: the canonical Markdown itself."""


@_to_canonical
def wiki_to_markdown(wiki_text: str, warnings: list[str]) -> str:
    """Canonical Markdown for Jira wiki markup (Jira Server, and Cloud's v2 API)."""
    simple = plain.wiki_to_markdown(wiki_text)
    return simple if simple is not None else markdown.render(wiki.parse(wiki_text, warnings), warnings)


@_memoised
def markdown_to_wiki(markdown_text: str, warnings: list[str]) -> str:
    """Jira wiki markup for Markdown."""
    return wiki.render(markdown.parse(markdown_text, warnings), warnings)


@_to_canonical
def asana_html_to_markdown(html: str, warnings: list[str]) -> str:
    """Canonical Markdown for an Asana ``html_notes`` / ``html_text`` value."""
    simple = plain.asana_html_to_markdown(html)
    return simple if simple is not None else markdown.render(asana.parse(html, warnings), warnings)


@_memoised
def markdown_to_asana_html(markdown_text: str, warnings: list[str]) -> str:
    """An Asana ``html_notes`` / ``html_text`` value (``<body>`` root) for Markdown."""
    return asana.render(markdown.parse(markdown_text, warnings), warnings)
