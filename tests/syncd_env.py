"""A live sandbox for tests: `syncd` as a subprocess (a config directory and an environment), or the engine
in-process (the shipped group over the real connectors, and a store).

Shared by the CLI, crash, daemon and engine tests (imported by them; the fixtures are registered in
tests/conftest.py, and a test module's own fixture of the same name takes precedence).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.base import Connector
from connectors.factory import CAPABILITIES
from connectors.jira.workflow import Workflow
from connectors.pacing import RetryPolicy
from connectors.sandbox import sandbox_connectors as build_connectors
from sandbox.org import Sandbox
from sandbox.seed import SERVICE_ACCOUNT
from syncd.engine import Pass
from syncd.mapping import Group, compile_group
from syncd.store import Store

FAST = RetryPolicy(attempts=4, max_total_s=30, initial_s=0.05, max_wait_s=2)
"""Retries for in-process tests: quick, so a test about faults does not wait for the production back-off."""

SYNCD = Path(sys.executable).with_name("syncd")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        for emulator in running.emulators:
            emulator.rate_limits_enabled = False
        yield running


@pytest.fixture
def environment(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    """A config directory pointing at the sandbox, and an environment holding the credentials."""
    config = tmp_path / "config"
    (config / "departments").mkdir(parents=True)
    for name in ("engineering", "sales", "marketing"):
        text = (ROOT / "config" / "departments" / f"{name}.yaml").read_text()
        url = {"engineering": sandbox.jira.url, "sales": sandbox.trello.url, "marketing": sandbox.asana.url}[name]
        (config / "departments" / f"{name}.yaml").write_text(
            "\n".join(
                f"  base_url: {url}" if line.strip().startswith("base_url:") else line for line in text.splitlines()
            )
        )
    credentials = sandbox.credentials()
    env = dict(os.environ)
    env.update(
        {
            "SYNCD_STORE": f"sqlite:///{tmp_path / 'syncd.db'}",
            "SYNCD_JIRA_TOKEN": credentials["jira"]["token"],
            "SYNCD_TRELLO_KEY": credentials["trello"]["key"],
            "SYNCD_TRELLO_TOKEN": credentials["trello"]["token"],
            "SYNCD_ASANA_TOKEN": credentials["asana"]["token"],
            "CONFIG_DIR": str(config),
        }
    )
    assert credentials["jira"]["email"] == SERVICE_ACCOUNT
    return env


def syncd(env: dict[str, str], *args: str, mappings: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `syncd ARGS --config DIR [--mappings DIR]` (commands that read only the store take no mappings)."""
    command = [str(SYNCD), *args, "--config", env["CONFIG_DIR"]]
    if mappings:
        command += ["--mappings", str(ROOT / "mappings")]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=300)


def sandbox_connectors(
    sandbox: Sandbox,
    *,
    policy: RetryPolicy = FAST,
    workflow: Workflow | None = None,
    reconcile_every: timedelta = timedelta(hours=1),
) -> dict[str, Connector]:
    """The real connectors on a running sandbox, with budgets that never throttle (pacing has its own tests)."""
    return build_connectors(sandbox, policy=policy, workflow=workflow, reconcile_every=reconcile_every)


@pytest.fixture
def group() -> Group:
    """The shipped example group (mappings/launch-requests.yaml) over Jira, Trello and Asana."""
    return compile_group(
        ROOT / "mappings" / "launch-requests.yaml",
        {"engineering": "jira", "sales": "trello", "marketing": "asana"},
        CAPABILITIES,
    )


@pytest.fixture
def connectors(sandbox: Sandbox) -> dict[str, Connector]:
    """The real connectors on the sandbox, with quick retries."""
    return sandbox_connectors(sandbox, policy=FAST)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store in the test's directory."""
    opened = Store(f"sqlite:///{tmp_path / 'syncd.db'}")
    opened.migrate()
    yield opened
    opened.close()


def run(group: Group, connectors: dict[str, Connector], store: Store) -> int:
    """One full pass that must succeed; the remote writes it made."""
    report = Pass(group, connectors, store).run()
    assert report.ok, report.failures
    return report.writes
