"""The document tree every rich-text format is read into and written from, and the rules that make it canonical.

A parser (Markdown, Jira wiki markup, Asana HTML) builds a tree of the frozen nodes below, then :func:`canonical`
puts it into the one form each writer expects: adjacent text merged, empty marks dropped, a mark never nested in
itself, whitespace and line breaks moved out of marks, runs of spaces collapsed. Two documents that look the same
to a reader end up as equal trees, which is what lets the writers round-trip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, TypeAlias

MarkKind: TypeAlias = Literal["strong", "em", "strike"]


@dataclass(frozen=True)
class Text:
    """Plain characters."""

    text: str


@dataclass(frozen=True)
class Code:
    """Inline code: characters shown as typed."""

    text: str


@dataclass(frozen=True)
class Break:
    """A line break inside a paragraph, list item or quote (every tool shows a newline as one)."""


@dataclass(frozen=True)
class Mark:
    """Bold, italic or strikethrough around some inline content."""

    kind: MarkKind
    children: tuple[Inline, ...]


@dataclass(frozen=True)
class Link:
    """A hyperlink; its text is inline content."""

    url: str
    children: tuple[Inline, ...]


Inline: TypeAlias = Text | Code | Break | Mark | Link


@dataclass(frozen=True)
class Paragraph:
    """A run of inline content."""

    inlines: tuple[Inline, ...]


@dataclass(frozen=True)
class Heading:
    """A heading of level 1 to 6."""

    level: int
    inlines: tuple[Inline, ...]


@dataclass(frozen=True)
class Item:
    """One list item: a line of inline content, then any nested lists."""

    inlines: tuple[Inline, ...]
    sublists: tuple[ListBlock, ...] = ()


@dataclass(frozen=True)
class ListBlock:
    """A bulleted or numbered list."""

    ordered: bool
    items: tuple[Item, ...]
    start: int = 1


@dataclass(frozen=True)
class CodeBlock:
    """A block of preformatted lines, with an optional language name."""

    lang: str
    text: str


@dataclass(frozen=True)
class Quote:
    """A block quotation."""

    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Rule:
    """A horizontal rule."""


Block: TypeAlias = Paragraph | Heading | ListBlock | CodeBlock | Quote | Rule

_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_NEWLINES = re.compile(r"\s*\n\s*")


def canonical(blocks: list[Block] | tuple[Block, ...]) -> tuple[Block, ...]:
    """The canonical form of a block sequence: what every writer expects and every parser returns."""
    out: list[Block] = []
    for block in blocks:
        fixed = _canonical_block(block)
        if fixed is None:
            continue
        previous = out[-1] if out else None
        # Two lists of one kind in a row are one list in Markdown, whatever the source meant.
        if isinstance(fixed, ListBlock) and isinstance(previous, ListBlock) and previous.ordered == fixed.ordered:
            out[-1] = ListBlock(previous.ordered, previous.items + fixed.items, previous.start)
        else:
            out.append(fixed)
    return tuple(out)


def _canonical_block(block: Block) -> Block | None:
    """One block in canonical form, or None when nothing of it would show."""
    if isinstance(block, Paragraph):
        inlines = canonical_inlines(block.inlines)
        return Paragraph(inlines) if inlines else None
    if isinstance(block, Heading):
        inlines = canonical_inlines(_breaks_to_spaces(block.inlines))
        return Heading(min(max(block.level, 1), 6), inlines) if inlines else None
    if isinstance(block, ListBlock):
        items = tuple(item for item in (_canonical_item(i) for i in block.items) if item is not None)
        return ListBlock(block.ordered, items, block.start if block.ordered else 1) if items else None
    if isinstance(block, CodeBlock):
        lines = [line.rstrip() for line in block.text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
        while lines and not lines[0]:
            lines.pop(0)
        while lines and not lines[-1]:
            lines.pop()
        lang = block.lang.split()[0] if block.lang.split() else ""
        return CodeBlock(lang, "\n".join(lines))
    if isinstance(block, Quote):
        inner = canonical(block.blocks)
        return Quote(inner) if inner else None
    return block


def _canonical_item(item: Item) -> Item | None:
    inlines = canonical_inlines(item.inlines)
    sublists = tuple(b for b in canonical(item.sublists) if isinstance(b, ListBlock))
    if not inlines and not sublists:
        return None
    return Item(inlines, sublists)


def _breaks_to_spaces(inlines: tuple[Inline, ...]) -> tuple[Inline, ...]:
    """Headings are one line: a break in one becomes a space."""
    out: list[Inline] = []
    for node in inlines:
        if isinstance(node, Break):
            out.append(Text(" "))
        elif isinstance(node, Text):
            out.append(Text(node.text.replace("\n", " ")))
        elif isinstance(node, Mark):
            out.append(Mark(node.kind, _breaks_to_spaces(node.children)))
        elif isinstance(node, Link):
            out.append(Link(node.url, _breaks_to_spaces(node.children)))
        else:
            out.append(node)
    return tuple(out)


def canonical_inlines(inlines: tuple[Inline, ...] | list[Inline]) -> tuple[Inline, ...]:
    """Canonical inline content: the same text and marks, written one way only."""
    flat = _fix(tuple(inlines), frozenset(), in_link=False)
    flat = _merge(flat)
    # Leading and trailing whitespace and breaks never show; whitespace next to a break neither.
    return _trim(flat)


def _fix(  # noqa: PLR0912 - one branch per inline node kind and mark rule
    inlines: tuple[Inline, ...], open_marks: frozenset[str], *, in_link: bool
) -> list[Inline]:
    """Inline nodes with marks flattened where redundant and whitespace moved out of marks and links."""
    out: list[Inline] = []
    for node in inlines:
        if isinstance(node, Text):
            text = _SPACES.sub(" ", node.text)
            parts = _NEWLINES.split(text)
            for index, part in enumerate(parts):
                if index:
                    out.append(Break())
                if part:
                    out.append(Text(part))
        elif isinstance(node, Code):
            text = _SPACES.sub(" ", node.text.replace("\n", " "))
            out.append(Code(node.text.replace("\n", " ")) if text.strip() else Text(" "))
        elif isinstance(node, Break):
            out.append(node)
        elif isinstance(node, Mark):
            inner = _fix(node.children, open_marks | {node.kind}, in_link=in_link)
            if node.kind in open_marks:
                out.extend(inner)
            else:
                out.extend(_wrap(inner, lambda kids, kind=node.kind: Mark(kind, kids)))
        elif isinstance(node, Link):
            if in_link:
                out.extend(_fix(node.children, open_marks, in_link=True))
                continue
            inner = _fix(node.children, open_marks, in_link=True)
            if not any(isinstance(n, Text | Code | Mark) for n in inner):
                inner = [Text(node.url)]
            out.extend(_wrap(inner, lambda kids, url=node.url: Link(url, kids)))
    return out


def _wrap(inner: list[Inline], make: object) -> list[Inline]:
    """Wrap inner content in a mark or link, splitting it at breaks and keeping edge spaces outside."""
    assert callable(make)
    out: list[Inline] = []
    run: list[Inline] = []

    def flush() -> None:
        nodes = _merge(run)
        lead = trail = ""
        if nodes and isinstance(nodes[0], Text) and nodes[0].text != nodes[0].text.lstrip(" "):
            lead = " "
            stripped = nodes[0].text.lstrip(" ")
            nodes = ([Text(stripped)] if stripped else []) + nodes[1:]
        if nodes and isinstance(nodes[-1], Text) and nodes[-1].text != nodes[-1].text.rstrip(" "):
            trail = " "
            stripped = nodes[-1].text.rstrip(" ")
            nodes = nodes[:-1] + ([Text(stripped)] if stripped else [])
        if lead:
            out.append(Text(lead))
        if nodes and not all(isinstance(n, Text) and not n.text.strip() for n in nodes):
            out.append(make(tuple(nodes)))
        elif nodes:
            out.append(Text(" "))
        if trail:
            out.append(Text(trail))
        run.clear()

    for node in inner:
        if isinstance(node, Break):
            flush()
            out.append(node)
        else:
            run.append(node)
    flush()
    return out


def _merge(nodes: list[Inline] | tuple[Inline, ...]) -> list[Inline]:
    """Adjacent texts joined, adjacent equal marks and links joined, spaces collapsed."""
    out: list[Inline] = []
    for node in nodes:
        previous = out[-1] if out else None
        if isinstance(node, Text) and isinstance(previous, Text):
            out[-1] = Text(_SPACES.sub(" ", previous.text + node.text))
        elif isinstance(node, Mark) and isinstance(previous, Mark) and previous.kind == node.kind:
            out[-1] = Mark(node.kind, tuple(_merge(previous.children + node.children)))
        elif isinstance(node, Link) and isinstance(previous, Link) and previous.url == node.url:
            out[-1] = Link(node.url, tuple(_merge(previous.children + node.children)))
        else:
            out.append(node)
    return out


def _trim(nodes: list[Inline]) -> tuple[Inline, ...]:
    """No whitespace at the edges or around breaks, no break at the edges or twice in a row."""
    out: list[Inline] = []
    for index, node in enumerate(nodes):
        if isinstance(node, Text):
            text = node.text
            at_start = not out or isinstance(out[-1], Break)
            at_end = index == len(nodes) - 1 or isinstance(nodes[index + 1], Break)
            if at_start:
                text = text.lstrip(" ")
            if at_end:
                text = text.rstrip(" ")
            if text:
                out.append(Text(text))
        elif isinstance(node, Break):
            # Two breaks in a row would be a paragraph end in Markdown: one break is all a line can carry.
            if out and not isinstance(out[-1], Break):
                out.append(node)
        else:
            out.append(node)
    while out and isinstance(out[-1], Break):
        out.pop()
    return tuple(out)


def plain_text(inlines: tuple[Inline, ...]) -> str:
    """The characters a reader sees, without formatting (for lossy fallbacks)."""
    parts: list[str] = []
    for node in inlines:
        if isinstance(node, Text | Code):
            parts.append(node.text)
        elif isinstance(node, Break):
            parts.append("\n")
        else:
            parts.append(plain_text(node.children))
    return "".join(parts)


def block_text(block: Block) -> str:
    """The characters a reader sees in a block, for carrying unsupported structure as plain text."""
    if isinstance(block, Paragraph | Heading):
        return plain_text(block.inlines)
    if isinstance(block, CodeBlock):
        return block.text
    if isinstance(block, Quote):
        return "\n".join(block_text(b) for b in block.blocks)
    if isinstance(block, ListBlock):
        lines: list[str] = []
        for item in block.items:
            lines.append(plain_text(item.inlines))
            lines.extend(block_text(sub) for sub in item.sublists)
        return "\n".join(lines)
    return ""
