"""``syncd check`` and ``syncd schema``: is what people wrote right, before syncd acts on it.

``check`` validates the configuration and every mapping offline and, with ``--online``, asks each department's tool
whether they match it; every problem found is raised at once (:class:`syncd.errors.CheckFailed`), so a person fixes
them in one round. ``schema`` prints the JSON Schema of each file kind for editors and CI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from syncd.cli.console import stderr
from syncd.cli.options import ConfigOption, MappingsOption
from syncd.errors import CheckFailed, CommandRefused, ConfigError, SyncdError

if TYPE_CHECKING:
    from syncd.config import Config


def schema(
    kind: Annotated[
        str | None, typer.Argument(help="syncd.yaml, department.yaml or mapping.yaml (default: all, as one object).")
    ] = None,
) -> None:
    """Print the JSON Schema of syncd's file kinds, for editor completion and CI validation."""
    from syncd.config import schemas  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.mapping import GroupFile  # noqa: PLC0415 - keeps `syncd --help` fast

    every = {**schemas(), "mapping.yaml": GroupFile.model_json_schema(by_alias=True)}
    if kind is not None and kind not in every:
        raise CommandRefused(f"no file kind {kind!r}; choose one of {', '.join(every)}")
    sys.stdout.write(json.dumps(every[kind] if kind else every, indent=2) + "\n")


def _notify_problems(config: Config) -> list[str]:
    """Each notification target's URL read and accepted by Apprise (as ``syncd run`` does at start); no message."""
    from syncd.daemon.notifier import targets  # noqa: PLC0415 - Apprise loads its plugins: only --online pays

    try:
        targets(config)
    except ConfigError as error:
        return [str(each) for each in error.errors]
    except SyncdError as error:
        return [str(error)]
    return []


def check(
    config_dir: ConfigOption = Path("config"),
    mappings_dir: MappingsOption = Path("mappings"),
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Then ask each department's tool: credentials, workspace, statuses, workflow paths and people;"
            " and read each notification URL.",
        ),
    ] = False,
) -> None:
    """Validate the configuration and every mapping (offline); list every problem with file and line."""
    from connectors.factory import CAPABILITIES  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.config import load_config  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.mapping import Group, compile_groups  # noqa: PLC0415 - keeps `syncd --help` fast

    problems: list[str] = []
    try:
        config = load_config(config_dir)
    except ConfigError as error:
        problems += [str(each) for each in error.errors]
        config = None
    groups: list[Group] = []
    if config is not None:
        tools = {name: department.connection.tool for name, department in config.departments.items()}
        try:
            groups = compile_groups(mappings_dir, tools, CAPABILITIES)
        except ConfigError as error:
            problems += [str(each) for each in error.errors]
    if not problems and online:
        # The composition root builds the connectors; syncd.checks only calls describe() on them.
        from connectors.factory import connector_for  # noqa: PLC0415 - keeps `syncd --help` fast
        from syncd.checks import online_problems  # noqa: PLC0415 - keeps `syncd --help` fast

        assert config is not None
        problems = online_problems(config, groups, connector_for, CAPABILITIES) + _notify_problems(config)
    if problems:
        raise CheckFailed(problems)
    assert config is not None
    checked = "; every tool answered and matches the mappings" if online else ""
    stderr.print(f"[green]ok:[/] {len(config.departments)} departments, {len(groups)} sync groups{checked}")
