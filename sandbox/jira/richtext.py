"""Jira's two rich-text dialects: wiki markup (REST v2) and the Atlassian Document Format (REST v3).

The emulator stores every description and comment body once, as an Atlassian Document, and converts at the edge:
a v2 write is parsed from wiki markup, a v2 read is rendered back to it, and v3 reads and writes ADF as is. The
supported subset is what people type in tickets: paragraphs (single newlines become hard breaks), ``*bold*``,
``_italic_``, ``{{code}}``, ``[text|url]`` links, headings ``h1.``-``h6.``, bullet (``*``) and numbered (``#``)
lists, possibly nested, ``{code}`` blocks, ``bq.`` quotes and ``----`` rules.
"""

from __future__ import annotations

import html
import re
from typing import Any

JSON = Any

_HEADING = re.compile(r"^h([1-6])\.\s+(.*)$")
_LIST_ITEM = re.compile(r"^([*#-]+)\s+(.*)$")
_CODE_OPEN = re.compile(r"^\{code(?::([^}|]*))?(?:\|[^}]*)?\}(.*)$")
_INLINE = re.compile(
    r"\{\{(?P<code>.+?)\}\}"
    r"|\[(?P<ltext>[^\]|]+)\|(?P<lurl>[^\]]+)\]"
    r"|\[(?P<bare>(?:https?|mailto):[^\]|]+)\]"
    r"|(?<![\w*])\*(?P<strong>\S(?:.*?\S)?)\*(?![\w*])"
    r"|(?<![\w_])_(?P<em>\S(?:.*?\S)?)_(?![\w_])"
)


def doc(content: list[JSON]) -> JSON:
    """Wrap block nodes in an Atlassian Document."""
    return {"type": "doc", "version": 1, "content": content}


def is_adf(value: JSON) -> bool:
    """Whether a value is an Atlassian Document (what v3 requires for rich-text fields)."""
    return (
        isinstance(value, dict)
        and value.get("type") == "doc"
        and value.get("version") == 1
        and isinstance(value.get("content"), list)
    )


# ----- wiki markup -> ADF -------------------------------------------------------------------------------


def wiki_to_adf(text: str) -> JSON:
    """Parse wiki markup into an Atlassian Document."""
    lines = text.replace("\r\n", "\n").split("\n")
    blocks: list[JSON] = []
    paragraph: list[str] = []
    index = 0

    def flush() -> None:
        if paragraph:
            blocks.append({"type": "paragraph", "content": _inline_lines(paragraph)})
            paragraph.clear()

    while index < len(lines):
        line = lines[index]
        if _CODE_OPEN.match(line.strip()):
            flush()
            node, index = _code_block(lines, index)
            blocks.append(node)
        elif _LIST_ITEM.match(line):
            flush()
            items: list[tuple[str, str]] = []
            while index < len(lines) and (match := _LIST_ITEM.match(lines[index])):
                items.append((match.group(1), match.group(2)))
                index += 1
            blocks.append(_list(items, 1))
            continue
        elif (single := _single_line_block(line)) is not None:
            flush()
            blocks.append(single)
        elif line.strip():
            paragraph.append(line)
        else:
            flush()
        index += 1
    flush()
    return doc(blocks)


def _code_block(lines: list[str], index: int) -> tuple[JSON, int]:
    """Parse a ``{code}`` block starting at ``lines[index]``; return it and the index of its closing line."""
    opening = _CODE_OPEN.match(lines[index].strip())
    assert opening is not None
    rest = opening.group(2)
    if "{code}" in rest:  # a one-line block: {code}x = 1{code}
        body = [rest[: rest.index("{code}")]]
    else:
        body = [rest] if rest else []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith("{code}"):
            body.append(lines[index])
            index += 1
    node: JSON = {"type": "codeBlock", "content": [{"type": "text", "text": "\n".join(body)}] if body else []}
    if opening.group(1):
        node["attrs"] = {"language": opening.group(1)}
    return node, index


def _single_line_block(line: str) -> JSON:
    """A heading, quote or rule line as its block node, or None for any other line."""
    heading = _HEADING.match(line)
    if heading:
        return {"type": "heading", "attrs": {"level": int(heading.group(1))}, "content": _inline(heading.group(2), [])}
    if line.startswith("bq. "):
        return {"type": "blockquote", "content": [{"type": "paragraph", "content": _inline(line[4:], [])}]}
    if line.strip() == "----":
        return {"type": "rule"}
    return None


def _list(items: list[tuple[str, str]], depth: int) -> JSON:
    """Build a (possibly nested) list from (marker, text) pairs whose markers are at least ``depth`` long."""
    ordered = items[0][0][depth - 1] == "#"
    nodes: list[JSON] = []
    position = 0
    while position < len(items):
        _, text = items[position]
        children: list[tuple[str, str]] = []
        position += 1
        while position < len(items) and len(items[position][0]) > depth:
            children.append(items[position])
            position += 1
        content: list[JSON] = [{"type": "paragraph", "content": _inline(text, [])}]
        if children:
            content.append(_list(children, depth + 1))
        nodes.append({"type": "listItem", "content": content})
    return {"type": "orderedList" if ordered else "bulletList", "content": nodes}


def _inline_lines(lines: list[str]) -> list[JSON]:
    nodes: list[JSON] = []
    for number, line in enumerate(lines):
        if number:
            nodes.append({"type": "hardBreak"})
        nodes.extend(_inline(line, []))
    return nodes


def _inline(text: str, marks: list[JSON]) -> list[JSON]:
    """Parse inline markup into text nodes carrying marks."""
    nodes: list[JSON] = []
    position = 0
    for match in _INLINE.finditer(text):
        if match.start() > position:
            nodes.append(_text(text[position : match.start()], marks))
        if match.group("code") is not None:
            nodes.append(_text(match.group("code"), [*marks, {"type": "code"}]))
        elif match.group("ltext") is not None:
            link = {"type": "link", "attrs": {"href": match.group("lurl")}}
            nodes.extend(_inline(match.group("ltext"), [*marks, link]))
        elif match.group("bare") is not None:
            url = match.group("bare")
            nodes.append(_text(url, [*marks, {"type": "link", "attrs": {"href": url}}]))
        elif match.group("strong") is not None:
            nodes.extend(_inline(match.group("strong"), [*marks, {"type": "strong"}]))
        else:
            nodes.extend(_inline(match.group("em"), [*marks, {"type": "em"}]))
        position = match.end()
    if position < len(text):
        nodes.append(_text(text[position:], marks))
    return nodes


def _text(value: str, marks: list[JSON]) -> JSON:
    node: JSON = {"type": "text", "text": value}
    if marks:
        node["marks"] = list(marks)
    return node


# ----- ADF -> wiki markup -------------------------------------------------------------------------------


def adf_to_wiki(document: JSON) -> str:
    """Render an Atlassian Document as wiki markup."""
    if not is_adf(document):
        return ""
    return "\n\n".join(_block_wiki(block, "") for block in document["content"]).strip("\n")


def _block_wiki(node: JSON, prefix: str) -> str:  # noqa: PLR0911 - one rendering per block type
    kind = node.get("type")
    content = node.get("content", [])
    if kind == "paragraph":
        return _inline_wiki(content)
    if kind == "heading":
        return f"h{node.get('attrs', {}).get('level', 1)}. {_inline_wiki(content)}"
    if kind in ("bulletList", "orderedList"):
        marker = prefix + ("#" if kind == "orderedList" else "*")
        lines: list[str] = []
        for item in content:
            parts = item.get("content", [])
            first = parts[0] if parts else {"type": "paragraph", "content": []}
            lines.append(f"{marker} {_block_wiki(first, marker) if first.get('type') == 'paragraph' else ''}")
            lines.extend(_block_wiki(nested, marker) for nested in parts[1:])
        return "\n".join(lines)
    if kind == "codeBlock":
        language = node.get("attrs", {}).get("language")
        text = "".join(child.get("text", "") for child in content)
        return f"{{code:{language}}}\n{text}\n{{code}}" if language else f"{{code}}\n{text}\n{{code}}"
    if kind == "rule":
        return "----"
    if kind == "blockquote":
        return "\n".join(f"bq. {_block_wiki(child, prefix)}" for child in content)
    if any("content" in child or child.get("type") not in ("text", "hardBreak") for child in content):
        # Blocks this subset has no markup for (panels, tables, ...) keep their text.
        return "\n".join(_block_wiki(child, prefix) for child in content)
    return _inline_wiki(content)


def _inline_wiki(nodes: list[JSON]) -> str:
    out: list[str] = []
    for node in nodes:
        if node.get("type") == "hardBreak":
            out.append("\n")
            continue
        text = str(node.get("text", ""))
        link: str | None = None
        for mark in node.get("marks", []):
            kind = mark.get("type")
            if kind == "strong":
                text = f"*{text}*"
            elif kind == "em":
                text = f"_{text}_"
            elif kind == "code":
                text = f"{{{{{text}}}}}"
            elif kind == "link":
                link = str(mark.get("attrs", {}).get("href", ""))
        if link is not None:
            text = f"[{link}]" if text == link else f"[{text}|{link}]"
        out.append(text)
    return "".join(out)


# ----- ADF -> HTML (renderedFields) ----------------------------------------------------------------------


def adf_to_html(document: JSON) -> str:
    """Render an Atlassian Document as the HTML Jira puts in ``renderedFields``."""
    if not is_adf(document):
        return ""
    return "".join(_block_html(block) for block in document["content"])


def _block_html(node: JSON) -> str:
    kind = node.get("type")
    content = node.get("content", [])
    if kind == "paragraph":
        return f"<p>{_inline_html(content)}</p>"
    if kind == "heading":
        level = node.get("attrs", {}).get("level", 1)
        return f"<h{level}>{_inline_html(content)}</h{level}>"
    if kind in ("bulletList", "orderedList"):
        tag = "ol" if kind == "orderedList" else "ul"
        items = "".join(
            "<li>"
            + "".join(
                _block_html(c) if c.get("type") != "paragraph" else _inline_html(c.get("content", []))
                for c in item.get("content", [])
            )
            + "</li>"
            for item in content
        )
        return f"<{tag}>{items}</{tag}>"
    if kind == "codeBlock":
        text = html.escape("".join(child.get("text", "") for child in content))
        return f'<div class="code panel"><pre>{text}</pre></div>'
    return _inline_html(content)


def _inline_html(nodes: list[JSON]) -> str:
    out: list[str] = []
    for node in nodes:
        if node.get("type") == "hardBreak":
            out.append("<br/>")
            continue
        text = html.escape(str(node.get("text", "")))
        for mark in node.get("marks", []):
            kind = mark.get("type")
            if kind == "strong":
                text = f"<b>{text}</b>"
            elif kind == "em":
                text = f"<em>{text}</em>"
            elif kind == "code":
                text = f"<tt>{text}</tt>"
            elif kind == "link":
                href = html.escape(str(mark.get("attrs", {}).get("href", "")))
                text = f'<a href="{href}">{text}</a>'
        out.append(text)
    return "".join(out)
