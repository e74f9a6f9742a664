"""House rules about dependencies, checked on the source so a violation fails CI, not a code review."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SDKS = {"jira", "trello", "asana"}


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


class TestDependenciesPointInward:
    @pytest.mark.parametrize("path", _modules("syncd"), ids=lambda p: str(p.relative_to(ROOT)))
    def test_the_engine_imports_no_sdk_and_no_connector(self, path: Path) -> None:
        """syncd/ never imports a tool SDK or connectors/: the engine stays tool-neutral and testable offline.

        The one exception is the composition root, the CLI, which may build connectors through
        connectors.factory (and nothing else of connectors/, and no SDK).
        """
        allowed = {"connectors.factory"} if path == ROOT / "syncd" / "cli.py" else set()
        offending = [
            f"{path.relative_to(ROOT)}:{line} imports {name}"
            for line, name in _imports(path)
            if name.split(".")[0] in SDKS | {"connectors"} and name not in allowed
        ]
        assert offending == []

    def test_the_rule_sees_real_modules(self) -> None:
        """The scan above covers the package (a rule that checks nothing would pass silently)."""
        assert len(_modules("syncd")) >= 5
        assert any(name == "werkzeug.routing" for _, name in _imports(ROOT / "syncd" / "sandbox" / "core.py"))
