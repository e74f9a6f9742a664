r"""Jira wiki markup (Jira Server, and the v2 REST API of Jira Cloud) read into the document tree and written.

Blocks: paragraphs separated by blank lines, ``h1.``-``h6.`` headings, ``*``/``#`` lists (nesting by repeating the
character, ``*#`` mixing), ``{code:lang}``/``{noformat}`` blocks, ``bq.`` and ``{quote}`` quotes, ``----`` rules.
Inline: ``*strong*``, ``_em_``, ``-strike-`` (and the ``{*}...{*}`` forms that work inside words), ``{{code}}``,
``[text|url]`` and ``[url]`` links, a newline or ``\\\\`` for a line break, and backslash escapes. The writer
escapes every character the reader would take for markup, so what it writes reads back as the same tree. Other
markup (``+underline+``, colours, panels, images) is read as its text with a warning.
"""

from __future__ import annotations

import re

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

_DELIMITERS: dict[str, MarkKind] = {"*": "strong", "_": "em", "-": "strike"}
_SPECIAL = set("*_-{}[]|\\!^~+?#")
_HEADING = re.compile(r"^h([1-6])\.\s+(.*)$")
_LIST = re.compile(r"^([*#]+)(?:\s+(.*))?$")  # a bare "*" line is an empty item (text stars are escaped)
_CODE_OPEN = re.compile(r"^\{(code|noformat)(?::([^}]*))?\}(.*)$")
_MACRO = re.compile(r"\{(color|panel)(:[^}]*)?\}")
_INLINE_START = re.compile(r"[\\{\[*_-]")
"""What may start an escape, a break, monospace, a link or a mark: every other character is plain text."""


def parse(text: str, warnings: list[str]) -> tuple[Block, ...]:
    """The canonical tree of a wiki-markup value."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return canonical(_blocks(lines, warnings))


def _blocks(lines: list[str], warnings: list[str]) -> list[Block]:
    blocks: list[Block] = []
    paragraph: list[str] = []
    items: list[tuple[str, str]] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Paragraph(_inline_lines(paragraph, warnings)))
            paragraph.clear()
        if items:
            blocks.extend(_lists(items, warnings))
            items.clear()

    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        index += 1
        code = _CODE_OPEN.match(stripped)
        if code:
            flush()
            body, index = _until(lines, index, code.group(3), "{" + code.group(1) + "}")
            blocks.append(CodeBlock((code.group(2) or "").split("|")[0].strip(), body))
            continue
        if stripped == "{quote}":
            flush()
            body, index = _until(lines, index, "", "{quote}")
            blocks.append(Quote(tuple(_blocks(body.split("\n"), warnings))))
            continue
        heading = _HEADING.match(stripped)
        listed = _LIST.match(stripped)
        if not stripped:
            flush()
        elif stripped.startswith("bq. "):
            flush()
            blocks.append(Quote((Paragraph(_inline_lines([stripped[4:]], warnings)),)))
        elif heading:
            flush()
            blocks.append(Heading(int(heading.group(1)), _inline_lines([heading.group(2)], warnings)))
        elif re.fullmatch(r"-{4,}", stripped):
            flush()
            blocks.append(Rule())
        elif listed:
            if paragraph:
                flush()
            items.append((listed.group(1), listed.group(2) or ""))
        else:
            if items:
                flush()
            paragraph.append(line)
    flush()
    return blocks


def _until(lines: list[str], index: int, first: str, closing: str) -> tuple[str, int]:
    """The lines of a block macro up to its closing tag (which may end the opening line), and where to go on."""
    body: list[str] = []
    current = first
    while True:
        if closing in current:
            body.append(current[: current.index(closing)])
            return "\n".join(body), index
        body.append(current)
        if index >= len(lines):
            return "\n".join(body), index
        current = lines[index]
        index += 1


def _lists(items: list[tuple[str, str]], warnings: list[str]) -> list[Block]:
    """Nested ListBlocks from (prefix, text) lines: the prefix's length is the depth, its last character the kind."""

    def build(start: int, depth: int) -> tuple[ListBlock, int]:
        ordered = items[start][0][depth - 1] == "#"
        built: list[Item] = []
        index = start
        while index < len(items) and len(items[index][0]) >= depth:
            prefix, text = items[index]
            if len(prefix) > depth:  # a deeper item without a parent at this depth: give it an empty parent
                sub, index = build(index, depth + 1)
                built.append(Item((), (sub,)))
                continue
            index += 1
            sublists: list[ListBlock] = []
            while index < len(items) and len(items[index][0]) > depth:
                sub, index = build(index, depth + 1)
                sublists.append(sub)
            built.append(Item(_inline_lines([text], warnings), tuple(sublists)))
        return ListBlock(ordered, tuple(built)), index

    blocks: list[Block] = []
    index = 0
    while index < len(items):
        block, index = build(index, 1)
        blocks.append(block)
    return blocks


def _inline_lines(lines: list[str], warnings: list[str]) -> tuple[Inline, ...]:
    joined: list[Inline] = []
    for number, line in enumerate(lines):
        if number:
            joined.append(Break())
        joined.extend(_inlines(line.strip(), warnings))
    return tuple(joined)


def _inlines(text: str, warnings: list[str]) -> list[Inline]:
    if _MACRO.search(text):
        warnings.append("colour and panel macros have no Markdown form: kept as plain text")
        text = _MACRO.sub("", text)
    out: list[Inline] = []
    buffer: list[str] = []
    index = 0

    def flush() -> None:
        if buffer:
            out.append(Text("".join(buffer)))
            buffer.clear()

    while index < len(text):
        char = text[index]
        if text.startswith("\\\\", index):
            flush()
            out.append(Break())
            index += 2
        elif char == "\\" and index + 1 < len(text):
            buffer.append(text[index + 1])
            index += 2
        elif text.startswith("{{", index) and (end := _closing_code(text, index + 2)) is not None:
            flush()
            out.append(Code(re.sub(r"\\(.)", r"\1", text[index + 2 : end])))
            index = end + 2
        elif char == "[" and _closing_bracket(text, index) is not None:
            end = _closing_bracket(text, index) or index
            flush()
            out.append(_link(text[index + 1 : end], warnings))
            index = end + 1
        elif (mark := _mark_at(text, index)) is not None:
            kind, inner, index = mark
            flush()
            out.append(Mark(kind, tuple(_inlines(inner, warnings))))
        else:
            # This character and the plain text after it, up to the next one that may start something, in one go.
            start = _INLINE_START.search(text, index + 1)
            stop = start.start() if start is not None else len(text)
            buffer.append(text[index:stop])
            index = stop
    flush()
    return out


def _closing_code(text: str, start: int) -> int | None:
    """Where ``}}`` closes a monospace run, skipping escaped characters."""
    index = start
    while index < len(text) - 1:
        if text[index] == "\\":
            index += 2
            continue
        if text.startswith("}}", index):
            return index
        index += 1
    return None


def _closing_bracket(text: str, start: int) -> int | None:
    index = start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == "]":
            return index
        index += 1
    return None


def _link(inner: str, warnings: list[str]) -> Inline:
    split = _unescaped_bar(inner)
    if split is None:
        url = inner.replace("\\", "")
        return Link(url, (Text(url),))
    return Link(inner[split + 1 :].strip(), tuple(_inlines(inner[:split], warnings)))


def _unescaped_bar(text: str) -> int | None:
    found = None
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == "|":
            found = index
        index += 1
    return found


def _mark_at(text: str, index: int) -> tuple[MarkKind, str, int] | None:
    """A mark opening at ``index``: (kind, inner text, index after it), in the plain or the ``{*}`` form."""
    for symbol, kind in _DELIMITERS.items():
        braced = "{" + symbol + "}"
        if text.startswith(braced, index):
            end = text.find(braced, index + 3)
            if end > index + 3:
                return kind, text[index + 3 : end], end + 3
        if text[index] != symbol or index + 1 >= len(text) or text[index + 1].isspace():
            continue
        if index > 0 and (text[index - 1].isalnum() or text[index - 1] == symbol):
            continue
        end = index + 1
        while end < len(text):
            if text[end] == "\\":
                end += 2
                continue
            if text.startswith("{{", end) and (closing := _closing_code(text, end + 2)) is not None:
                end = closing + 2  # a delimiter inside monospace is text
                continue
            after = text[end + 1] if end + 1 < len(text) else ""
            if end > index + 1 and text[end] == symbol and not text[end - 1].isspace() and not after.isalnum():
                return kind, text[index + 1 : end], end + 1
            end += 1
    return None


def render(blocks: tuple[Block, ...], warnings: list[str]) -> str:
    """Wiki markup for a canonical tree (reads back as the same tree)."""
    return "\n\n".join(_render_block(block, warnings) for block in blocks)


def _render_block(block: Block, warnings: list[str]) -> str:
    if isinstance(block, Paragraph):
        return _render_inlines(block.inlines, break_as="\n")
    if isinstance(block, Heading):
        return f"h{block.level}. {_render_inlines(block.inlines, break_as=' ')}"
    if isinstance(block, ListBlock):
        return "\n".join(_render_list(block, ""))
    if isinstance(block, CodeBlock):
        opening = "{code:" + block.lang + "}" if block.lang else "{noformat}"
        closing = "{code}" if block.lang else "{noformat}"
        return f"{opening}\n{block.text}\n{closing}" if block.text else f"{opening}{closing}"
    if isinstance(block, Quote):
        inner: list[Block] = []
        for child in block.blocks:
            if isinstance(child, Quote):
                warnings.append("Jira quotes do not nest: the inner quote is written as part of the outer one")
                inner.extend(child.blocks)
            else:
                inner.append(child)
        return "{quote}\n" + render(tuple(inner), warnings) + "\n{quote}"
    return "----"


def _render_list(block: ListBlock, prefix: str) -> list[str]:
    mine = prefix + ("#" if block.ordered else "*")
    lines: list[str] = []
    for item in block.items:
        lines.append(f"{mine} {_render_inlines(item.inlines, break_as=chr(92) * 2)}")
        for sub in item.sublists:
            lines.extend(_render_list(sub, mine))
    return lines


def _render_inlines(inlines: tuple[Inline, ...], *, break_as: str) -> str:
    parts: list[str] = []
    for index, node in enumerate(inlines):
        before = inlines[index - 1] if index else None
        after = inlines[index + 1] if index + 1 < len(inlines) else None
        parts.append(_render_inline(node, before, after, break_as))
    return "".join(parts)


def _render_inline(node: Inline, before: Inline | None, after: Inline | None, break_as: str) -> str:
    if isinstance(node, Text):
        return "".join("\\" + char if char in _SPECIAL else char for char in node.text)
    if isinstance(node, Break):
        return break_as
    if isinstance(node, Code):
        return "{{" + re.sub(r"([\\{}\[\]|])", r"\\\1", node.text) + "}}"
    if isinstance(node, Mark):
        symbol = {"strong": "*", "em": "_", "strike": "-"}[node.kind]
        inner = _render_inlines(node.children, break_as=break_as)
        # The plain form needs a non-word character on both sides; next to a word, use the braced form.
        glued = _ends_with_word(before) or _starts_with_word(after)
        return ("{" + symbol + "}" + inner + "{" + symbol + "}") if glued else symbol + inner + symbol
    inner = _render_inlines(node.children, break_as=break_as)
    return f"[{inner}|{node.url}]"


def _ends_with_word(node: Inline | None) -> bool:
    return isinstance(node, Text | Code | Mark | Link) and (
        not isinstance(node, Text) or (bool(node.text) and (node.text[-1].isalnum() or node.text[-1] in _SPECIAL))
    )


def _starts_with_word(node: Inline | None) -> bool:
    return isinstance(node, Text | Code | Mark | Link) and (
        not isinstance(node, Text) or (bool(node.text) and (node.text[0].isalnum() or node.text[0] in _SPECIAL))
    )
