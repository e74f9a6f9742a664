"""Canonical Markdown: reading any CommonMark (with ``~~strike~~``) into the tree, and writing the one canonical form.

Reading uses markdown-it-py's CommonMark parser with raw HTML turned off (a tag is text, as Trello shows it).
Writing picks one spelling per construct (``**bold**``, ``_italic_``, ``~~strike~~``, `` `code` ``,
``[text](url)``, ``- `` and ``1. `` lists, ``#`` headings, fenced code, ``> `` quotes, ``---``), one blank line
between blocks, no trailing spaces and no final newline, and escapes a character only where it would otherwise
mean something. Where a mark cannot be written so that it reads back (CommonMark's flanking rules refuse some
emphasis next to punctuation), the writer keeps the text, drops that mark and says so in a warning.
"""

from __future__ import annotations

import re
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

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
    block_text,
    canonical,
    canonical_inlines,
    plain_text,
)

_MARK_KINDS: dict[str, MarkKind] = {"strong": "strong", "em": "em", "s": "strike"}


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("strikethrough")


def parse(markdown: str, warnings: list[str]) -> tuple[Block, ...]:
    """The canonical tree of a Markdown document."""
    root = SyntaxTreeNode(_parser().parse(markdown.replace("\r\n", "\n").replace("\r", "\n")))
    return canonical(_blocks(root.children, warnings))


def _blocks(nodes: list[SyntaxTreeNode], warnings: list[str]) -> list[Block]:
    out: list[Block] = []
    for node in nodes:
        if node.type == "paragraph":
            out.append(Paragraph(_inlines(node.children[0].children, warnings)))
        elif node.type == "heading":
            out.append(Heading(int(node.tag[1:]), _inlines(node.children[0].children, warnings)))
        elif node.type in ("bullet_list", "ordered_list"):
            ordered = node.type == "ordered_list"
            start = node.attrs.get("start", 1) if ordered else 1
            items = tuple(_item(child, warnings) for child in node.children)
            out.append(ListBlock(ordered, items, int(start)))
        elif node.type in ("fence", "code_block"):
            out.append(CodeBlock(node.info.strip() if node.type == "fence" else "", node.content))
        elif node.type == "blockquote":
            out.append(Quote(tuple(_blocks(node.children, warnings))))
        elif node.type == "hr":
            out.append(Rule())
        else:
            warnings.append(f"Markdown {node.type} is not supported: kept as plain text")
            out.append(Paragraph((Text(node.content),)))
    return out


def _item(node: SyntaxTreeNode, warnings: list[str]) -> Item:
    """A list item: its paragraphs joined by line breaks, its nested lists kept, anything else as plain text."""
    inlines: list[Inline] = []
    sublists: list[ListBlock] = []
    for block in _blocks(node.children, warnings):
        if isinstance(block, ListBlock):
            sublists.append(block)
            continue
        if inlines:
            inlines.append(Break())
        if isinstance(block, Paragraph):
            inlines.extend(block.inlines)
        else:
            warnings.append(f"a {type(block).__name__.lower()} inside a list item is not supported: kept as text")
            inlines.append(Text(block_text(block)))
    return Item(tuple(inlines), tuple(sublists))


def _inlines(nodes: list[SyntaxTreeNode], warnings: list[str]) -> tuple[Inline, ...]:
    out: list[Inline] = []
    for node in nodes:
        if node.type == "text":
            out.append(Text(node.content))
        elif node.type in ("softbreak", "hardbreak"):
            out.append(Break())
        elif node.type == "code_inline":
            out.append(Code(node.content))
        elif node.type in _MARK_KINDS:
            out.append(Mark(_MARK_KINDS[node.type], _inlines(node.children, warnings)))
        elif node.type == "link":
            out.append(Link(str(node.attrs["href"]), _inlines(node.children, warnings)))
        elif node.type == "image":
            warnings.append(f"image {node.attrs.get('src')} is not supported: kept as its description")
            out.append(Text(plain_text(_inlines(node.children, warnings))))
        else:
            warnings.append(f"Markdown {node.type} is not supported: kept as plain text")
            out.append(Text(node.content))
    return tuple(out)


# ---- writing ----------------------------------------------------------------------------------------------------

_ALWAYS = frozenset("*`[]<~")
_ENTITY = re.compile(r"&(#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_LIST_NUMBER = re.compile(r"\d{1,9}[.)](?= |$)")
_MAY_ESCAPE = re.compile(r"[*`\[\]<~_\\&]")
"""The characters :func:`escape` may escape anywhere (``_ALWAYS``, ``_``, a backslash, ``&``)."""


def render(blocks: tuple[Block, ...], warnings: list[str]) -> str:
    """Canonical Markdown for a canonical tree."""
    return "\n\n".join(_render_block(block, warnings) for block in blocks)


def _render_block(block: Block, warnings: list[str]) -> str:
    if isinstance(block, Paragraph):
        return _render_checked(block.inlines, warnings)
    if isinstance(block, Heading):
        text = _render_checked(block.inlines, warnings)
        if text.endswith("#"):
            text = text[:-1] + "\\#"
        return "#" * block.level + " " + text
    if isinstance(block, ListBlock):
        return _render_list(block, warnings)
    if isinstance(block, CodeBlock):
        longest = max((len(run) for run in re.findall(r"`+", block.text)), default=0)
        fence = "`" * max(3, longest + 1)
        body = block.text + "\n" if block.text else ""
        return f"{fence}{block.lang}\n{body}{fence}"
    if isinstance(block, Quote):
        inner = render(block.blocks, warnings)
        return "\n".join("> " + line if line else ">" for line in inner.split("\n"))
    return "---"


def _render_list(block: ListBlock, warnings: list[str]) -> str:
    lines: list[str] = []
    for index, item in enumerate(block.items):
        marker = f"{block.start + index}. " if block.ordered else "- "
        indent = " " * len(marker)
        body = _render_checked(item.inlines, warnings) if item.inlines else ""
        parts = [body] + [_render_list(sub, warnings) for sub in item.sublists]
        text = "\n".join(parts)
        for number, line in enumerate(text.split("\n")):
            if number == 0:
                lines.append((marker + line).rstrip())
            else:
                lines.append(indent + line if line else "")
    return "\n".join(lines)


def _render_checked(inlines: tuple[Inline, ...], warnings: list[str]) -> str:
    """Inline Markdown that reads back as the same content, dropping marks CommonMark cannot delimit there."""
    current = inlines
    while True:
        text = render_inlines(current)
        marks = list(_marks(current))
        if not marks:
            return text  # nothing to drop: the text stands whether or not it reads back (no parse needed)
        if _reads_back(text, current):
            return text
        for mark in marks:
            candidate = canonical_inlines(_without(current, mark))
            if _reads_back(render_inlines(candidate), candidate):
                current = candidate
                warnings.append(f"{mark.kind} around {plain_text(mark.children)!r} cannot be written in Markdown there")
                break
        else:
            warnings.append(f"{marks[0].kind} around {plain_text(marks[0].children)!r} cannot be written in Markdown")
            current = canonical_inlines(_without(current, marks[0]))


def _reads_back(text: str, inlines: tuple[Inline, ...]) -> bool:
    return parse(text, []) == ((Paragraph(inlines),) if inlines else ())


def _marks(inlines: tuple[Inline, ...]) -> list[Mark]:
    found: list[Mark] = []
    for node in inlines:
        if isinstance(node, Mark):
            found.append(node)
        if isinstance(node, Mark | Link):
            found.extend(_marks(node.children))
    return found


def _without(inlines: tuple[Inline, ...], target: Mark) -> tuple[Inline, ...]:
    """The same content with one mark (by identity) replaced by its children."""
    out: list[Inline] = []
    for node in inlines:
        if node is target:
            out.extend(node.children)
        elif isinstance(node, Mark):
            out.append(Mark(node.kind, _without(node.children, target)))
        elif isinstance(node, Link):
            out.append(Link(node.url, _without(node.children, target)))
        else:
            out.append(node)
    return tuple(out)


def render_inlines(inlines: tuple[Inline, ...]) -> str:
    """Inline Markdown for canonical inline content (line starts escaped as at the start of a paragraph)."""
    parts: list[str] = []
    line_start = True
    for node in inlines:
        parts.append(_render_inline(node, line_start=line_start))
        line_start = isinstance(node, Break)
    return "".join(parts)


def _render_inline(node: Inline, *, line_start: bool) -> str:
    if isinstance(node, Text):
        return escape(node.text, line_start=line_start)
    if isinstance(node, Break):
        return "\n"
    if isinstance(node, Code):
        longest = max((len(run) for run in re.findall(r"`+", node.text)), default=0)
        fence = "`" * (longest + 1)
        pad = node.text.startswith(("`", " ")) or node.text.endswith(("`", " "))
        body = f" {node.text} " if pad else node.text
        return fence + body + fence
    if isinstance(node, Mark):
        inner = "".join(_render_inline(n, line_start=False) for n in node.children)
        delimiter = {"strong": "**", "em": "_", "strike": "~~"}[node.kind]
        return delimiter + inner + delimiter
    inner = "".join(_render_inline(n, line_start=False) for n in node.children)
    return f"[{inner}]({_destination(node.url)})"


def _destination(url: str) -> str:
    out = []
    for char in url:
        if char == " ":
            out.append("%20")
        elif char in "()<>\\":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def escape(text: str, *, line_start: bool) -> str:
    """Text with a backslash before each character that Markdown would otherwise read as syntax."""
    if not _MAY_ESCAPE.search(text) and not (line_start and text and (text[0] in "#>-+=" or _LIST_NUMBER.match(text))):
        return text  # no character below would be escaped: most text, returned without a pass over each character
    out: list[str] = []
    number = _LIST_NUMBER.match(text) if line_start else None
    for index, char in enumerate(text):
        before = text[index - 1] if index else ""
        after = text[index + 1] if index + 1 < len(text) else ""
        if (
            char in _ALWAYS
            or (char == "_" and not (before.isalnum() and after.isalnum()))
            or (char == "\\" and (after == "" or after in _ASCII_PUNCT))
            or (char == "&" and _ENTITY.match(text, index))
            or (index == 0 and line_start and char in "#>-+=")
            or (number is not None and index == number.end() - 1)
        ):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)
