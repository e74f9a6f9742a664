"""Asana's restricted HTML (``html_notes``, ``html_text``) read into the document tree and written from it.

Asana keeps rich text as a ``<body>`` root with a small tag set: ``strong``, ``em``, ``u``, ``s``, ``code``,
``a href``, ``ul``/``ol``/``li``, ``h1``, ``h2``, ``pre``, ``blockquote``, ``hr``; there is no ``<p>``: newlines
are literal, a blank line separates paragraphs. Anything else is read as its text with a warning (never
dropped), and what Asana cannot hold (headings below level 2, a list's start number, a code block's language) is
written in the nearest form with a warning.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser

from syncd.richtext.model import (
    Block,
    Break,
    Code,
    CodeBlock,
    Heading,
    Inline,
    Item,
    Link,
    ListBlock,
    Mark,
    MarkKind,
    Paragraph,
    Quote,
    Rule,
    Text,
    canonical,
)

_MARKS: dict[str, MarkKind] = {
    "strong": "strong",
    "b": "strong",
    "em": "em",
    "i": "em",
    "s": "strike",
    "strike": "strike",
}
_BLOCKS = {"ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "hr", "p", "body"}
_VOID = {"hr", "br", "img"}


@dataclass
class _Element:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[_Element | str] = field(default_factory=list)


class _TreeBuilder(HTMLParser):
    """A forgiving element tree: unclosed tags close with their parent, stray end tags are ignored."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Element("root")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = _Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(_Element(tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(text: str, warnings: list[str]) -> tuple[Block, ...]:
    """The canonical tree of an Asana rich-text value."""
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return canonical(_blocks(builder.root.children, warnings))


def _blocks(nodes: list[_Element | str], warnings: list[str]) -> list[Block]:
    blocks: list[Block] = []
    run: list[Inline] = []

    def flush() -> None:
        blocks.extend(_paragraphs(run))
        run.clear()

    for node in nodes:
        if isinstance(node, str) or node.tag not in _BLOCKS:
            run.extend(_inline(node, warnings))
            continue
        flush()
        blocks.extend(_block(node, warnings))
    flush()
    return blocks


def _block(node: _Element, warnings: list[str]) -> list[Block]:  # noqa: PLR0911 - one return per tag kind
    tag = node.tag
    if tag in {"body", "p"}:
        return _blocks(node.children, warnings)
    if tag in {"ul", "ol"}:
        items = [_item(child, warnings) for child in node.children if isinstance(child, _Element) and child.tag == "li"]
        return [ListBlock(tag == "ol", tuple(items))]
    if tag == "li":  # an item outside a list: read it as a one-item list
        return [ListBlock(False, (_item(node, warnings),))]
    if tag.startswith("h") and tag[1:].isdigit():
        return [Heading(int(tag[1:]), tuple(_inline_all(node.children, warnings)))]
    if tag == "pre":
        return [CodeBlock("", _text_of(node))]
    if tag == "blockquote":
        return [Quote(tuple(_blocks(node.children, warnings)))]
    return [Rule()]


def _item(node: _Element, warnings: list[str]) -> Item:
    inlines: list[Inline] = []
    sublists: list[ListBlock] = []
    for child in node.children:
        if isinstance(child, _Element) and child.tag in {"ul", "ol"}:
            sublists.extend(b for b in _block(child, warnings) if isinstance(b, ListBlock))
        else:
            inlines.extend(_inline(child, warnings))
    return Item(tuple(inlines), tuple(sublists))


def _paragraphs(run: list[Inline]) -> list[Block]:
    """Split inline content into paragraphs at blank lines (two breaks in a row)."""
    paragraphs: list[Block] = []
    current: list[Inline] = []
    previous_break = False
    for node in _with_breaks(run):
        if isinstance(node, Break) and previous_break:
            paragraphs.append(Paragraph(tuple(current[:-1])))
            current = []
            previous_break = False
            continue
        current.append(node)
        previous_break = isinstance(node, Break)
    paragraphs.append(Paragraph(tuple(current)))
    return paragraphs


def _with_breaks(run: list[Inline]) -> list[Inline]:
    """Top-level text split at newlines into Text and Break nodes (blank-only text between breaks dropped)."""
    out: list[Inline] = []
    for node in run:
        if not isinstance(node, Text) or "\n" not in node.text:
            out.append(node)
            continue
        for index, part in enumerate(node.text.split("\n")):
            if index:
                out.append(Break())
            if part.strip():
                out.append(Text(part))
    return out


def _inline_all(nodes: list[_Element | str], warnings: list[str]) -> list[Inline]:
    return [inline for node in nodes for inline in _inline(node, warnings)]


def _inline(node: _Element | str, warnings: list[str]) -> list[Inline]:
    if isinstance(node, str):
        return [Text(node)]
    tag = node.tag
    if tag in _MARKS:
        return [Mark(_MARKS[tag], tuple(_inline_all(node.children, warnings)))]
    if tag == "code":
        return [Code(_text_of(node))]
    if tag == "a":
        children = _inline_all(node.children, warnings)
        href = node.attrs.get("href", "")
        return [Link(href, tuple(children))] if href else children
    if tag == "br":
        return [Break()]
    if tag == "u":
        warnings.append("underline has no Markdown form: kept as plain text")
    elif tag not in {"span", "body"}:
        warnings.append(f"<{tag}> is not Asana rich text: kept as its text")
    return _inline_all(node.children, warnings)


def _text_of(node: _Element) -> str:
    return "".join(child if isinstance(child, str) else _text_of(child) for child in node.children)


def render(blocks: tuple[Block, ...], warnings: list[str]) -> str:
    """Asana rich text (``<body>`` root) for a canonical tree."""
    return "<body>" + "\n\n".join(_render_block(block, warnings) for block in blocks) + "</body>"


def _render_block(block: Block, warnings: list[str]) -> str:
    if isinstance(block, Paragraph):
        return _render_inlines(block.inlines)
    if isinstance(block, Heading):
        if block.level > 2:
            warnings.append(f"Asana has no level-{block.level} heading: written as level 2")
        level = min(block.level, 2)
        return f"<h{level}>{_render_inlines(block.inlines)}</h{level}>"
    if isinstance(block, ListBlock):
        return _render_list(block, warnings)
    if isinstance(block, CodeBlock):
        if block.lang:
            warnings.append(f"Asana code blocks carry no language: {block.lang!r} dropped")
        return f"<pre>{html.escape(block.text, quote=False)}</pre>"
    if isinstance(block, Quote):
        return "<blockquote>" + "\n\n".join(_render_block(b, warnings) for b in block.blocks) + "</blockquote>"
    return "<hr/>"


def _render_list(block: ListBlock, warnings: list[str]) -> str:
    if block.ordered and block.start != 1:
        warnings.append(f"Asana lists always start at 1: the start {block.start} is dropped")
    tag = "ol" if block.ordered else "ul"
    items = "".join(
        "<li>" + _render_inlines(item.inlines) + "".join(_render_list(sub, warnings) for sub in item.sublists) + "</li>"
        for item in block.items
    )
    return f"<{tag}>{items}</{tag}>"


def _render_inlines(inlines: tuple[Inline, ...]) -> str:
    return "".join(_render_inline(node) for node in inlines)


def _render_inline(node: Inline) -> str:
    if isinstance(node, Text):
        return html.escape(node.text, quote=False)
    if isinstance(node, Break):
        return "\n"
    if isinstance(node, Code):
        return f"<code>{html.escape(node.text, quote=False)}</code>"
    if isinstance(node, Mark):
        tag = {"strong": "strong", "em": "em", "strike": "s"}[node.kind]
        return f"<{tag}>{_render_inlines(node.children)}</{tag}>"
    return f'<a href="{html.escape(node.url, quote=True)}">{_render_inlines(node.children)}</a>'
