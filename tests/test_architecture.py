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

    @pytest.mark.parametrize("path", _modules("syncd"), ids=lambda p: str(p.relative_to(ROOT)))
    def test_the_engine_runs_the_sandbox_only_from_its_commands(self, path: Path) -> None:
        """The emulators are a package of their own: only the commands that start them (``syncd demo``, the
        CLI's sandbox) import them; nothing of the engine depends on them.
        """
        allowed = path in {ROOT / "syncd" / "cli.py", ROOT / "syncd" / "demo.py"}
        offending = [
            f"{path.relative_to(ROOT)}:{line} imports {name}"
            for line, name in _imports(path)
            if name.split(".")[0] == "sandbox" and not allowed
        ]
        assert offending == []

    @pytest.mark.parametrize("path", _modules("sandbox"), ids=lambda p: str(p.relative_to(ROOT)))
    def test_the_sandbox_uses_no_sdk_no_connector_and_no_engine(self, path: Path) -> None:
        """The emulators stand for the services: they share no code with the clients under test (an SDK, a
        connector) nor with the engine, beyond the YAML loader that reads their seed.
        """
        offending = [
            f"{path.relative_to(ROOT)}:{line} imports {name}"
            for line, name in _imports(path)
            if name.split(".")[0] in SDKS | {"connectors"}
            or (name.split(".")[0] == "syncd" and name != "syncd.yamlfile")
        ]
        assert offending == []

    @pytest.mark.parametrize("path", _modules("connectors"), ids=lambda p: str(p.relative_to(ROOT)))
    def test_connectors_know_the_sandbox_only_to_build_themselves_for_it(self, path: Path) -> None:
        """connectors/sandbox.py builds the real connectors against the emulators; no connector imports them."""
        allowed = path == ROOT / "connectors" / "sandbox.py"
        offending = [
            f"{path.relative_to(ROOT)}:{line} imports {name}"
            for line, name in _imports(path)
            if name.split(".")[0] == "sandbox" and not allowed
        ]
        assert offending == []

    def test_the_rule_sees_real_modules(self) -> None:
        """The scans above cover the packages (a rule that checks nothing would pass silently)."""
        assert len(_modules("syncd")) >= 5
        assert len(_modules("sandbox")) >= 5
        assert any(name == "werkzeug.routing" for _, name in _imports(ROOT / "sandbox" / "core.py"))
        assert any(name == "sandbox.org" for _, name in _imports(ROOT / "syncd" / "demo.py"))


# The configuration layer (the files people write name their tool) and the composition root (which builds each
# tool's connector) may name tools; the rest of syncd/ is the tool-neutral core.
CONFIGURATION_LAYER = {"config.py", "scaffold.py", "demo.py"}


def _core_modules() -> list[Path]:
    def configuration(path: Path) -> bool:
        relative = path.relative_to(ROOT / "syncd")
        return str(relative) in CONFIGURATION_LAYER or relative.parts[0] == "cli" or relative.name.startswith("cli")

    return [path for path in _modules("syncd") if not configuration(path)]


def _tool_names(path: Path) -> Iterator[tuple[int, str]]:
    """String literals (whole, case-insensitive) that are a tool's name: ``"jira"``, ``'Asana'``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower() in SDKS:
            yield node.lineno, node.value


def _declared(path: Path) -> Iterator[tuple[str, set[str]]]:
    """Classes that declare a tool ``kind`` (``kind = "jira"``), with the class attributes they assign."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        assigned: dict[str, ast.expr | None] = {}
        for statement in node.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                assigned[statement.target.id] = statement.value
            elif isinstance(statement, ast.Assign):
                assigned.update((t.id, statement.value) for t in statement.targets if isinstance(t, ast.Name))
        kind = assigned.get("kind")
        if isinstance(kind, ast.Constant) and isinstance(kind.value, str):
            yield kind.value, {name for name, value in assigned.items() if value is not None}


class TestTheCoreNamesNoTool:
    @pytest.mark.parametrize("path", _core_modules(), ids=lambda p: str(p.relative_to(ROOT)))
    def test_no_core_module_names_a_tool(self, path: Path) -> None:
        """What differs by tool reaches the core as the connector's declared capabilities, never by the tool's name.

        A string literal that is a tool's name (``"jira"``) in the core means a per-tool table or branch that a new
        connector would have to edit; the configuration layer and the composition root may name tools.
        """
        offending = [f"{path.relative_to(ROOT)}:{line} names {name!r}" for line, name in _tool_names(path)]
        assert offending == []

    def test_every_connector_declares_its_capabilities(self) -> None:
        """Each connector class with a tool ``kind`` declares ``capabilities`` next to it, for every tool."""
        declared = {kind: names for path in _modules("connectors") for kind, names in _declared(path)}
        assert set(declared) == SDKS
        assert {kind for kind, names in declared.items() if "capabilities" not in names} == set()

    def test_the_rule_sees_tool_names_where_they_are(self) -> None:
        """The scan finds the names the configuration layer holds (a rule that finds nothing would pass silently)."""
        assert {name for _, name in _tool_names(ROOT / "syncd" / "config.py")} >= SDKS
        assert ROOT / "syncd" / "mapping.py" in _core_modules()
        assert ROOT / "syncd" / "config.py" not in _core_modules()
