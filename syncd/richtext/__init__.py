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

from syncd.richtext import asana, markdown, wiki

__all__ = [
    "asana_html_to_markdown",
    "markdown_to_asana_html",
    "markdown_to_trello",
    "markdown_to_wiki",
    "normalise",
    "trello_to_markdown",
    "wiki_to_markdown",
]


def _sink(warnings: list[str] | None) -> list[str]:
    return warnings if warnings is not None else []


def normalise(markdown_text: str, warnings: list[str] | None = None) -> str:
    """The canonical Markdown for any Markdown: one spelling per construct, so equal text compares equal."""
    sink = _sink(warnings)
    return markdown.render(markdown.parse(markdown_text, sink), sink)


trello_to_markdown = normalise
"""Trello stores Markdown: its canonical form is the normalised text."""


def markdown_to_trello(markdown_text: str, warnings: list[str] | None = None) -> str:
    """What to write to Trello for some Markdown: the canonical Markdown itself."""
    return normalise(markdown_text, warnings)


def wiki_to_markdown(wiki_text: str, warnings: list[str] | None = None) -> str:
    """Canonical Markdown for Jira wiki markup (Jira Server, and Cloud's v2 API)."""
    sink = _sink(warnings)
    return markdown.render(wiki.parse(wiki_text, sink), sink)


def markdown_to_wiki(markdown_text: str, warnings: list[str] | None = None) -> str:
    """Jira wiki markup for Markdown."""
    sink = _sink(warnings)
    return wiki.render(markdown.parse(markdown_text, sink), sink)


def asana_html_to_markdown(html: str, warnings: list[str] | None = None) -> str:
    """Canonical Markdown for an Asana ``html_notes`` / ``html_text`` value."""
    sink = _sink(warnings)
    return markdown.render(asana.parse(html, sink), sink)


def markdown_to_asana_html(markdown_text: str, warnings: list[str] | None = None) -> str:
    """An Asana ``html_notes`` / ``html_text`` value (``<body>`` root) for Markdown."""
    sink = _sink(warnings)
    return asana.render(markdown.parse(markdown_text, sink), sink)
