"""Load YAML files into pydantic models with errors that name the file, the line and the fix.

Every file a person writes for syncd (seed files today; config and mappings later) goes through here, so a typo
is reported as ``config/departments/sales.yaml:12: 'lists' ...: Field required`` instead of a stack trace.
The line comes from the YAML node the failing pydantic location points at (or its nearest existing parent).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from syncd.errors import FileError as FileError  # noqa: PLC0414 - re-exported: its callers import it from here

ModelT = TypeVar("ModelT", bound=BaseModel)
SECRET_WORDS = ("token", "secret", "password", "key")
"""Settings whose values are never quoted back in an error message."""


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
        node, _ = _locate(yaml.compose(path.read_text(encoding="utf-8")), loc)
    except (OSError, yaml.YAMLError):
        return None
    return node.start_mark.line + 1 if node is not None else None


def load_yaml_model(
    path: Path | str, model: type[ModelT], text: str | None = None, context: dict[str, object] | None = None
) -> ModelT:
    """Parse and validate one YAML file; raise FileError naming the file and line of every mistake."""
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FileError(path, None, f"cannot read the file: {exc.strerror or exc}") from exc
    lines = max(1, len(text.splitlines()))
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = min(exc.problem_mark.line + 1, lines) if exc.problem_mark is not None else None
        problem = f"not valid YAML: {exc.problem}"
        if exc.problem and "'\\t'" in exc.problem:
            problem += ": indent with spaces, YAML does not allow tabs"
        raise FileError(path, line, problem) from exc
    twice = _duplicates(root)
    if twice:
        (line, message), *more = twice
        raise FileError(path, line, message, more)
    try:
        return model.model_validate(data if data is not None else {}, context=context)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            located = (error.get("ctx") or {}).get("error")
            loc = tuple(error["loc"]) + (located.loc if isinstance(located, Located) else ())
            node, shown = _locate(root, loc)
            at = node.start_mark.line + 1 if node is not None else 1
            problems.append((at, _describe(error, shown)))
        problems.sort(key=lambda problem: problem[0] or 0)
        (line, message), *more = problems
        raise FileError(path, line, message, more) from exc
