"""House rules about dependencies, checked on the source so a violation fails CI, not a code review."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.asana import AsanaConnector
from connectors.base import ConnectorBase
from connectors.jira import JiraConnector
from connectors.trello import TrelloConnector

ROOT = Path(__file__).resolve().parent.parent
SDKS = {"jira", "trello", "asana"}
CLI = ROOT / "syncd" / "cli"
BUILDS_CONNECTORS = {CLI / "sync.py", CLI / "check.py", CLI / "web.py"}
"""The composition root: the commands that build connectors for the engine (sync, check --online), or hand the
core the tools' capabilities (web: where an item opens in its tool)."""
DEMO = ROOT / "syncd" / "demo"
"""``syncd demo``, a composition root of the sandbox: every module of the package may import it and name tools."""


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
        allowed = path == CLI / "sandbox.py" or path.parent == DEMO
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

    @pytest.mark.parametrize(
        ("name", "known"), [("daemon", {"core", "scheduler", "web"}), ("demo", {"core", "child", "view"})]
    )
    def test_a_packages_parts_import_each_other_without_cycles(self, name: str, known: set[str]) -> None:
        """syncd/daemon/ and syncd/demo/ are layered: their modules import one another in one direction, and only
        the package's ``__init__`` imports ``core``, the composition of the parts.
        """
        package = ROOT / "syncd" / name
        parts = {path.stem for path in package.glob("*.py")} - {"__init__"}
        imports: dict[str, set[str]] = {}
        for part in parts:
            named = {module.removeprefix(f"syncd.{name}.") for _, module in _imports(package / f"{part}.py")}
            tree = ast.parse((package / f"{part}.py").read_text(encoding="utf-8"))
            named |= {  # `from syncd.daemon import web`
                alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module == f"syncd.{name}"
                for alias in node.names
            }
            imports[part] = named & parts
        assert [part for part, named in imports.items() if "core" in named] == []
        done: set[str] = set()

        def visit(part: str, path: tuple[str, ...]) -> None:
            assert part not in path, f"import cycle: {' -> '.join((*path, part))}"
            if part not in done:
                for imported in sorted(imports[part]):
                    visit(imported, (*path, part))
                done.add(part)

        for part in sorted(parts):
            visit(part, ())
        assert known <= parts  # the scan sees the real package

    def test_the_rule_sees_real_modules(self) -> None:
        """The scans above cover the packages (a rule that checks nothing would pass silently)."""
        assert len(_modules("syncd")) >= 5
        assert len(_modules("sandbox")) >= 5
        assert any(name == "werkzeug.routing" for _, name in _imports(ROOT / "sandbox" / "core.py"))
        assert any(name == "sandbox.org" for path in DEMO.glob("*.py") for _, name in _imports(path))


def _tool_modules() -> list[Path]:
    """Every module of connectors/ but the base itself."""
    return [path for path in _modules("connectors") if path != ROOT / "connectors" / "base.py"]


def _thread_locals(path: Path) -> list[int]:
    """Lines where a module names ``threading.local``, through the module or imported by its own name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    imported = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "threading"
        for alias in node.names
        if alias.name == "local"
    }
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "local":
            if isinstance(node.value, ast.Name) and node.value.id == "threading":
                lines.append(node.lineno)
        elif isinstance(node, ast.Name) and node.id in imported:
            lines.append(node.lineno)
    return lines


def _declares_kind(node: ast.ClassDef) -> bool:
    for statement in node.body:
        targets = statement.targets if isinstance(statement, ast.Assign) else [getattr(statement, "target", None)]
        if any(isinstance(target, ast.Name) and target.id == "kind" for target in targets):
            return True
    return False


def _connector_classes(path: Path) -> list[ast.ClassDef]:
    """Classes that declare a ``kind`` (the Protocol's per-tool fact): the tool connectors."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef) and _declares_kind(node)]


def _base_name(base: ast.expr) -> str | None:
    """``ConnectorBase`` for ``ConnectorBase`` and ``ConnectorBase[Client]`` alike."""
    node = base.value if isinstance(base, ast.Subscript) else base
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


class TestOneConnectorBase:
    """Pacing, the thread's client, version checks, uncertain writes and marker recovery live in connectors/base.py."""

    @pytest.mark.parametrize("connector", [JiraConnector, TrelloConnector, AsanaConnector], ids=lambda c: c.kind)
    def test_every_tool_connector_subclasses_the_base(self, connector: type[object]) -> None:
        """Each tool's connector is a ConnectorBase, so none carries its own copy of the shared mechanics."""
        assert issubclass(connector, ConnectorBase)

    @pytest.mark.parametrize("path", _tool_modules(), ids=lambda p: str(p.relative_to(ROOT)))
    def test_a_class_declaring_a_kind_names_the_base(self, path: Path) -> None:
        """A new connector (a class with a ``kind``) starts from ConnectorBase, not from a copy of another."""
        offending = [
            f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
            for node in _connector_classes(path)
            if "ConnectorBase" not in {_base_name(base) for base in node.bases}
        ]
        assert offending == []

    @pytest.mark.parametrize("path", _tool_modules(), ids=lambda p: str(p.relative_to(ROOT)))
    def test_no_connector_module_keeps_its_own_thread_local(self, path: Path) -> None:
        """The per-thread SDK client is the base's (``ConnectorBase._client``): no other module keeps one."""
        assert [f"{path.relative_to(ROOT)}:{line}" for line in _thread_locals(path)] == []

    def test_the_rules_see_the_connectors(self) -> None:
        """The scans find the three connector classes and do see a thread-local where one is (no silent pass)."""
        found = {node.name for path in _tool_modules() for node in _connector_classes(path)}
        assert {"JiraConnector", "TrelloConnector", "AsanaConnector"} <= found
        assert _thread_locals(ROOT / "connectors" / "base.py") != []


# The configuration layer (the files people write name their tool) and the composition root (which builds each
# tool's connector) may name tools; the rest of syncd/ is the tool-neutral core.
CONFIGURATION_LAYER = {"config.py", "scaffold.py"}
CONFIGURATION_PACKAGES = {"cli", "demo"}


def _core_modules() -> list[Path]:
    def configuration(path: Path) -> bool:
        relative = path.relative_to(ROOT / "syncd")
        return str(relative) in CONFIGURATION_LAYER or relative.parts[0] in CONFIGURATION_PACKAGES

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
        assert {name for _, name in _tool_names(DEMO / "compare.py")} >= SDKS
        assert DEMO / "compare.py" not in _core_modules()

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
