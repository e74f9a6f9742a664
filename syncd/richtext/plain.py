"""Plain text read without the document tree: paragraphs and one level of bullets, no markup characters.

Most descriptions are sentences and bullet points. Through the tree (parse, :func:`~syncd.richtext.model.canonical`,
render) one costs 30 to 70 µs to convert, the largest part of a fresh process's decoding; here, 6 to 10. A text
is read here only if every line is blank, a bullet (``*`` in Jira, ``<li>`` in Asana) or a paragraph line, and
holds nothing but letters, digits, spaces and ``.,:;'"?()/``, starting with a letter: characters no format
reads as markup and Markdown writes without an escape. Anything else returns None and takes the full path.
``tests/test_richtext.py`` checks both paths give the same Markdown for every text this one accepts, on arbitrary
text of this grammar and outside it.
"""

from __future__ import annotations

import re

_CHARS = r"(?:[^\W_]|[ .,:;'\"?()/])"
"""A letter or digit of any script, a space, or punctuation that is plain text in wiki markup, HTML and Markdown."""
_TEXT = rf"(?!h[1-6]\.|bq\.)[^\W\d_]{_CHARS}*"
"""A line's text: from a letter (a digit could start a numbered list; ``h1.`` and ``bq.`` open wiki blocks)."""
_WIKI_LINE = re.compile(rf" *(?:(?P<item>\* +)?(?P<text>{_TEXT}))? *")
_ASANA_LINE = re.compile(rf" *(?P<text>{_TEXT})? *")
_ASANA = re.compile(rf"<body>((?:{_CHARS}|\n|<ul>(?:<li> *{_TEXT}</li>)+</ul>)*)</body>")
_ASANA_PARTS = re.compile(r"<ul>((?:<li>[^<]*</li>)+)</ul>")


class _Markdown:
    """Canonical Markdown built line by line: paragraphs, bullet lists, blank lines between blocks."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.lines: list[str] = []
        self.listing: bool | None = None  # the open block: a list (True), a paragraph (False), none (None)
        self.last_was_list = False

    def paragraph_line(self, text: str) -> None:
        if self.listing is not False:
            self.end()
            self.listing = False
        self.lines.append(" ".join(text.split()))

    def item(self, text: str) -> None:
        if self.listing is not True:
            self.end()
            if self.last_was_list:  # two lists of one kind with only blank lines between are one list
                self.lines = self.blocks.pop().split("\n")
            self.listing = True
        self.lines.append("- " + " ".join(text.split()))

    def end(self) -> None:
        if self.listing is not None:
            self.blocks.append("\n".join(self.lines))
            self.last_was_list = self.listing
            self.lines = []
            self.listing = None

    def add_lines(self, text: str, line: re.Pattern[str]) -> bool:
        """Add each line of ``text`` as ``line`` reads it (blank, a bullet, a paragraph's); False at one not plain."""
        for each in text.split("\n"):
            found = line.fullmatch(each)
            if found is None:
                return False
            words = found.group("text")
            if words is None:
                self.end()
            elif found.groupdict().get("item") is not None:
                self.item(words)
            else:
                self.paragraph_line(words)
        return True

    def text(self) -> str:
        self.end()
        return "\n\n".join(self.blocks)


def wiki_to_markdown(wiki: str) -> str | None:
    """The canonical Markdown of plain wiki text, or None when the text needs the full reader."""
    out = _Markdown()
    return out.text() if out.add_lines(wiki, _WIKI_LINE) else None


def asana_html_to_markdown(html: str) -> str | None:
    """The canonical Markdown of plain Asana rich text, or None when the text needs the full reader."""
    whole = _ASANA.fullmatch(html)
    if whole is None:
        return None
    out = _Markdown()
    for index, part in enumerate(_ASANA_PARTS.split(whole.group(1))):
        if index % 2:  # a list's items, between <ul> and </ul>
            for item in part[len("<li>") : -len("</li>")].split("</li><li>"):
                out.item(item)
        elif not out.add_lines(part, _ASANA_LINE):
            return None
    return out.text()
