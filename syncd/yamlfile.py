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

from syncd.errors import SyncdError

ModelT = TypeVar("ModelT", bound=BaseModel)


class FileError(SyncdError):
    """A file a person wrote is wrong: where (path and 1-based line) and what to change."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


def _node_at(root: yaml.Node | None, loc: tuple[int | str, ...]) -> yaml.Node | None:
    """The deepest node on the path ``loc`` (mapping keys by name, sequence items by index)."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if getattr(key, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        else:
            child = None
        if child is None:
            break
        node = child
    return node


def _describe(error: ErrorDetails) -> str:
    """One pydantic error as a sentence a person can act on."""
    loc = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "missing":
        return f"'{loc}' is required but missing: add it"
    if kind == "extra_forbidden":
        return f"'{loc}' is not a known setting: remove it or check its spelling"
    return f"'{loc}': {error['msg']} (got {error.get('input')!r})" if loc else str(error["msg"])


def load_yaml_model(path: Path | str, model: type[ModelT], text: str | None = None) -> ModelT:
    """Parse and validate one YAML file; raise FileError naming the file and line on any mistake."""
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FileError(path, None, f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise FileError(path, line, f"not valid YAML: {exc.problem}") from exc
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        node = _node_at(root, tuple(first["loc"]))
        line = node.start_mark.line + 1 if node is not None else None
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise FileError(path, line, _describe(first) + more) from exc
