"""Asana's rich text: ``html_notes`` / ``html_text`` in its restricted HTML, and their plain-text readings.

Asana stores rich text and derives ``notes`` from it; writing ``notes`` stores the escaped text in a ``<body>``.
Only a small XML-like subset is accepted (anything else is a 400), so a sync engine that sends arbitrary HTML
learns it here rather than in production.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

from sandbox.core import ApiError

ALLOWED_TAGS = frozenset(
    {"body", "strong", "em", "u", "s", "code", "pre", "a", "ul", "ol", "li", "blockquote", "h1", "h2", "hr"}
)
VOID_TAGS = frozenset({"hr"})


def text_to_html(text: str) -> str:
    """Return the rich text Asana stores for plain ``text``."""
    return f"<body>{html.escape(text, quote=False)}</body>"


class _Reader(HTMLParser):
    """Check the restricted HTML and collect its plain-text reading and a normalised copy."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.lists: list[list[int]] = []
        self.error: str | None = None
        self.seen_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.error = f"Unsupported tag <{tag}>"
            return
        if tag == "body":
            if self.stack or self.seen_body:
                self.error = "body must be the single root element"
            self.seen_body = True
        elif not self.stack:
            self.error = "content must be inside <body>"
        if tag in VOID_TAGS:
            self.text.append("\n")
            return
        self.stack.append(tag)
        if tag in ("ul", "ol"):
            self.lists.append([0 if tag == "ol" else -1])
        elif tag == "li" and self.lists:
            counter = self.lists[-1]
            if counter[0] >= 0:
                counter[0] += 1
                self.text.append(f"{counter[0]}. ")
            else:
                self.text.append("• ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID_TAGS:
            self.error = f"Unsupported self-closing tag <{tag}/>"
            return
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_TAGS:
            return
        if not self.stack or self.stack[-1] != tag:
            self.error = f"Unexpected closing tag </{tag}>"
            return
        self.stack.pop()
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        if tag in ("li", "h1", "h2", "blockquote", "pre") and not (self.text and self.text[-1].endswith("\n")):
            self.text.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.stack and data.strip():
            self.error = "text must be inside <body>"
        self.text.append(data)


def html_to_text(rich: str, *, field: str) -> str:
    """Return the plain-text reading of restricted HTML, or raise Asana's 400 if it is not valid."""
    reader = _Reader()
    try:
        reader.feed(rich)
        reader.close()
    except AssertionError as exc:  # HTMLParser signals malformed markup this way on some inputs
        reader.error = str(exc)
    if reader.error is None and (reader.stack or not reader.seen_body):
        reader.error = "document must be one <body> element"
    if reader.error is not None:
        raise ApiError(400, f"{field}: XML is invalid: {reader.error}")
    return "".join(reader.text).strip("\n")
