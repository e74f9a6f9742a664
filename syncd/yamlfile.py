"""Load YAML files into pydantic models with errors that name the file, the line and the fix.

Every file a person writes for syncd (seed files today; config and mappings later) goes through here, so a typo
is reported as ``config/departments/sales.yaml:12: 'lists' ...: Field required`` instead of a stack trace.
The line comes from the YAML node the failing pydantic location points at (or its nearest existing parent).

Reading is bounded, because a file is input like any other: a regular file of at most :data:`MAX_BYTES`, strict
UTF-8, nested at most :data:`MAX_DEPTH` deep, aliases adding at most :data:`MAX_ALIAS_NODES` nodes (a 484-byte
"billion laughs" file would otherwise keep pydantic busy for minutes). Each limit is a ``file:line`` error with the
fix, as is every error of the reader, the decoder and the YAML parser.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from syncd.errors import ConfigError, SettingError
from syncd.errors import FileError as FileError  # noqa: PLC0414 - re-exported: its callers import it from here

ModelT = TypeVar("ModelT", bound=BaseModel)
SECRET_WORDS = ("token", "secret", "password", "key")
"""Settings whose values are never quoted back in an error message."""
MAX_BYTES = 1_048_576
"""The largest file read: configuration is written by hand, so a bigger one is a mistake (or /dev/zero)."""
MAX_DEPTH = 100
"""The deepest nesting composed: syncd's files need a handful, and far deeper ends in a RecursionError."""
MAX_ALIAS_NODES = 10_000
"""The most nodes aliases may add, expanded: an anchor reused a few times is fine, a "billion laughs" is not."""
_BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}
_AS_UTF8 = "save the file as UTF-8"


class _Refused(Exception):  # noqa: N818 - never leaves this module: it becomes a FileError line
    """A limit of :class:`_BoundedLoader` was crossed at ``line``."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, limiting nesting and what aliases expand to while it composes (before any is built)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._open: list[str | None] = []
        """Anchors of the collections being composed, innermost last: an alias to one of them is a cycle."""
        self._sizes: dict[int, int] = {}
        self._added = 0
        self.constructing: yaml.Node | None = None

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """One node; an alias counts as the size of what it repeats, a collection as one level deeper."""
        event = self.peek_event()  # type: ignore[no-untyped-call]  # PyYAML's stubs leave it untyped
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _Refused(line, f"alias *{event.anchor} is inside the collection it names: write the values out")
            node: yaml.Node | None = super().compose_node(parent, index)
            self._added += self._size(node)
            if self._added > MAX_ALIAS_NODES:
                raise _Refused(
                    line,
                    f"aliases expand to more than {MAX_ALIAS_NODES} values (a 'billion laughs' file?): "
                    "write the values out, or use fewer aliases",
                )
            return node
        if not isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            scalar: yaml.Node | None = super().compose_node(parent, index)
            return scalar
        if len(self._open) >= MAX_DEPTH:
            raise _Refused(line, f"nested more than {MAX_DEPTH} levels deep: syncd's files need a few; flatten it")
        self._open.append(event.anchor)
        try:
            collection: yaml.Node | None = super().compose_node(parent, index)
        finally:
            self._open.pop()
        return collection

    def construct_object(self, node: yaml.Node, deep: bool = False) -> object:
        """As PyYAML's, remembering the node, so a value Python refuses (5,000 digits) is reported at its line."""
        self.constructing = node
        return super().construct_object(node, deep)

    def _size(self, node: yaml.Node | None) -> int:
        """How many nodes ``node`` stands for, aliases expanded (memoised: each distinct node is visited once)."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._size(key) + self._size(value) for key, value in node.value)
        self._sizes[id(node)] = size
        return size


def read_text(path: Path) -> str:
    """A regular file of at most MAX_BYTES, strictly UTF-8 with no NUL; FileError naming the line otherwise."""
    try:
        # Non-blocking, or opening a named pipe nobody writes would wait forever (`syncd check`, a reload).
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise FileError(path, None, "not a regular file: point at a file syncd can read")
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise FileError(path, None, f"cannot read the file: {exc.strerror or exc}") from exc
    if len(data) > MAX_BYTES:
        line = data[:MAX_BYTES].count(b"\n") + 1
        raise FileError(
            path,
            line,
            f"larger than {MAX_BYTES // 1024} KiB: a configuration file is far smaller; "
            "remove what does not belong in it",
        )
    for bom, encoding in _BOMS.items():
        if data.startswith(bom):
            raise FileError(path, 1, f"saved as {encoding}: {_AS_UTF8}")
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise FileError(
            path, line, f"contains a NUL byte (a binary file, or UTF-16 without a byte order mark): {_AS_UTF8}"
        )
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        byte = data[exc.start]
        raise FileError(
            path, line, f"byte 0x{byte:02x} is not UTF-8 (the file may be Latin-1 or Windows-1252): {_AS_UTF8}"
        ) from exc


def _parse(path: Path, text: str) -> tuple[yaml.Node | None, object]:
    """The file's node tree and its data, bounded; FileError with the line for any reader, parser or limit error."""
    lines = max(1, len(text.splitlines()))
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters already here
        root = loader.get_single_node()
        return root, loader.construct_document(root) if root is not None else None
    except _Refused as exc:
        raise FileError(path, exc.line, exc.message) from exc
    except yaml.MarkedYAMLError as exc:
        line = min(exc.problem_mark.line + 1, lines) if exc.problem_mark is not None else None
        problem = f"not valid YAML: {exc.problem}"
        if exc.problem and "'\\t'" in exc.problem:
            problem += ": indent with spaces, YAML does not allow tabs"
        raise FileError(path, line, problem) from exc
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise FileError(path, line, f"control character U+{code:04X} cannot appear in YAML: remove it") from exc
    except yaml.YAMLError as exc:
        raise FileError(path, None, f"not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise FileError(path, None, "nested too deeply to read: syncd's files need a few levels; flatten it") from exc
    except ValueError as exc:  # a value Python refuses to build, like an integer of 5,000 digits
        line = loader.constructing.start_mark.line + 1 if loader and loader.constructing else None
        raise FileError(path, line, f"a value cannot be read ({str(exc).partition(':')[0]}): shorten it") from exc
    finally:
        if loader is not None:
            loader.dispose()


def _child(node: yaml.Node | None, part: int | str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        found: yaml.Node | None = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        return found
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item: yaml.Node = node.value[part]
        return item
    return None


def _is_tag(node: yaml.Node | None, part: int | str) -> bool:
    """Whether ``part`` is the value of one of the mapping's scalar settings (a discriminator like ``tool``)."""
    if not isinstance(node, yaml.MappingNode):
        return False
    return any(isinstance(value, yaml.ScalarNode) and value.value == part for _, value in node.value)


def _locate(root: yaml.Node | None, loc: tuple[int | str, ...]) -> tuple[yaml.Node | None, tuple[int | str, ...]]:
    """The deepest YAML node on the path ``loc``, and ``loc`` as the person wrote it.

    pydantic puts a discriminated union's tag into the path (``connection.jira.token``) where the file has none
    (``connection.token``): a part the mapping lacks, followed by one it has, is such a tag and is skipped.
    """
    node = root
    shown: list[int | str] = []
    for index, part in enumerate(loc):
        child = _child(node, part)
        if child is None:
            if index + 1 < len(loc) and _is_tag(node, part):
                continue  # a union tag

            shown.extend(loc[index:])
            break
        shown.append(part)
        node = child
    return node, tuple(shown)


def _describe(error: ErrorDetails, shown: tuple[int | str, ...]) -> str:
    """One pydantic error as a sentence a person can act on."""
    loc = ".".join(str(part) for part in shown)
    kind = error["type"]
    if kind == "missing":
        return f"'{loc}' is required but missing: add it"
    if kind == "extra_forbidden":
        return f"'{loc}' is not a known setting: remove it or check its spelling"
    message = str(error["msg"]).removeprefix("Value error, ")
    if not loc:
        return message
    if any(word in loc.lower() for word in SECRET_WORDS):
        return f"'{loc}': {message}"  # never echo what may be a credential
    quoted = repr(_masked(error.get("input")))
    return f"'{loc}': {message} (got {quoted if len(quoted) <= 120 else quoted[:117] + '...'})"


def _masked(value: object) -> object:
    """The input as quoted back, with every value under a credential-like key replaced (a token typed inline)."""
    if isinstance(value, dict):
        return {
            key: "***" if isinstance(key, str) and any(w in key.lower() for w in SECRET_WORDS) else _masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


class Located(ValueError):  # noqa: N818 - raised by validators, read here
    """A validator's error about one setting deeper than the model it validates, with that setting's path.

    A ``ValueError`` because pydantic wraps only those into its ValidationError; it never leaves this loader (it
    becomes a FileError line), so it is not part of :mod:`syncd.errors`.
    """

    def __init__(self, loc: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _duplicates(node: yaml.Node | None) -> list[tuple[int | None, str]]:
    """Keys written twice in one mapping: YAML keeps the last one silently, so a person's edit could vanish."""
    found: list[tuple[int | None, str]] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name = getattr(key, "value", None)
            if isinstance(name, str) and name in first:
                found.append(
                    (
                        key.start_mark.line + 1,
                        f"'{name}' is written more than once (first on line {first[name]}): keep one",
                    )
                )
            elif isinstance(name, str):
                first[name] = key.start_mark.line + 1
            found += _duplicates(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found += _duplicates(item)
    return found


def line_of(path: Path, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of a setting in a YAML file (or of its nearest existing parent), for errors found later."""
    try:
        node, _ = _locate(_parse(path, read_text(path))[0], loc)
    except FileError:
        return None
    return node.start_mark.line + 1 if node is not None else None


def load_yaml_data(path: Path | str) -> object:
    """The file's data, read within the same bounds as :func:`load_yaml_model`, without validating it."""
    path = Path(path)
    return _parse(path, read_text(path))[1]


def load_yaml_model(
    path: Path | str,
    model: type[ModelT],
    text: str | None = None,
    context: dict[str, object] | None = None,
    variable_of: Callable[[str], str | None] | None = None,
) -> ModelT:
    """Parse and validate one YAML file; raise FileError naming the file and line of every mistake.

    ``variable_of`` names the environment variable that set a top-level setting, if one did (a settings model
    reads ``SYNCD_<NAME>`` over the file): a mistake there is a SettingError naming the variable, since the file's
    line is not what to fix; with mistakes of both kinds, a ConfigError holds them all.
    """
    path = Path(path)
    root, data = _parse(path, read_text(path) if text is None else text)
    twice = _duplicates(root)
    if twice:
        (line, message), *more = twice
        raise FileError(path, line, message, more)
    try:
        return model.model_validate(data if data is not None else {}, context=context)
    except ValidationError as exc:
        problems = []
        settings: list[FileError | SettingError] = []
        for error in exc.errors():
            variable = variable_of(str(error["loc"][0])) if variable_of is not None and error["loc"] else None
            if variable is not None:  # "'poll_interval_s': ..." named by its variable instead
                described = _describe(error, tuple(error["loc"]))
                settings.append(SettingError(variable, described.removeprefix(f"'{error['loc'][0]}': ")))
                continue
            located = (error.get("ctx") or {}).get("error")
            loc = tuple(error["loc"]) + (located.loc if isinstance(located, Located) else ())
            node, shown = _locate(root, loc)
            at = node.start_mark.line + 1 if node is not None else 1
            problems.append((at, _describe(error, shown)))
        problems.sort(key=lambda problem: problem[0] or 0)
        if settings:
            if problems:
                (line, message), *more = problems
                settings.insert(0, FileError(path, line, message, more))
            raise ConfigError(settings) from exc
        (line, message), *more = problems
        raise FileError(path, line, message, more) from exc
