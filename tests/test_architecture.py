"""House rules about dependencies, checked on the source so a violation fails CI, not a code review."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SDKS = {"jira", "trello", "asana"}
CLI = ROOT / "syncd" / "cli"
BUILDS_CONNECTORS = {CLI / "sync.py", CLI / "check.py"}
"""The composition root: the commands that build connectors for the engine (sync, check --online)."""


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

        The one exception is the composition root, the CLI's commands that sync or check online, which may build
        connectors through connectors.factory (and nothing else of connectors/, and no SDK).
        """
        allowed = {"connectors.factory"} if path in BUILDS_CONNECTORS else set()
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
        allowed = path in {CLI / "sandbox.py", ROOT / "syncd" / "demo.py"}
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
        assert any(name == "connectors.factory" for path in BUILDS_CONNECTORS for _, name in _imports(path))


EXITS = {"Exit", "exit", "_exit", "SystemExit", "Abort"}
"""Callee names that end the process or the command: typer.Exit, SystemExit, sys.exit, os._exit, ctx.exit, Abort."""
EXITS_ALLOWED = {
    ("syncd/cli/handler.py", "invoke"): "the handler: every error and every returned Outcome end up here",
    ("syncd/cli/__init__.py", "_print_version"): "--version is an eager option; Exit(0) is how Click stops after it",
    ("syncd/cli/sync.py", "run"): "after a drain that timed out, os._exit leaves without joining stuck pass threads",
}


def _exits(path: Path) -> Iterator[tuple[str, int, str]]:
    """Each call or raise of an exit in a module: the function it is in, its line, and what it calls."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def named(node: ast.expr) -> str | None:
        target = node.func if isinstance(node, ast.Call) else node
        if isinstance(target, ast.Attribute):
            return target.attr
        return target.id if isinstance(target, ast.Name) else None

    def visit(node: ast.AST, function: str) -> Iterator[tuple[str, int, str]]:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        # A call (sys.exit(2), typer.Exit(2)), or a class raised without calling it (raise typer.Exit); the call in
        # raise typer.Exit(2) is reported as a call, once.
        exiting: ast.expr | None = None
        if isinstance(node, ast.Call):
            exiting = node
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Name | ast.Attribute):
            exiting = node.exc
        if exiting is not None and named(exiting) in EXITS:
            yield function, exiting.lineno, ast.unparse(node)
        for child in ast.iter_child_nodes(node):
            yield from visit(child, function)

    yield from visit(tree, "<module>")


class TestOneErrorHandler:
    @pytest.mark.parametrize("path", sorted(CLI.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
    def test_only_the_handler_exits(self, path: Path) -> None:
        """Commands raise a SyncdError or return an Outcome; only syncd/cli/handler.py turns them into an exit.

        So every error reads the same (``error: ...``, exit 2) and no command can print one its own way. The few
        exits that are not errors are listed in EXITS_ALLOWED with their reason.
        """
        where = str(path.relative_to(ROOT))
        offending = [
            f"{where}:{line} in {function}: {code}"
            for function, line, code in _exits(path)
            if (where, function) not in EXITS_ALLOWED
        ]
        assert offending == []

    def test_the_rule_sees_the_exits_it_allows(self) -> None:
        """Each allowed exit is still there (the scan finds real exits), so the list cannot rot into a loophole."""
        found = {
            (str(path.relative_to(ROOT)), function) for path in CLI.rglob("*.py") for function, _, _ in _exits(path)
        }
        assert set(EXITS_ALLOWED) <= found
