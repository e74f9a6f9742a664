"""`syncd once` and `syncd plan` against the sandbox: configuration in, credentials from the environment, passes out."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.sandbox.org import Sandbox
from syncd.sandbox.seed import SERVICE_ACCOUNT

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


def syncd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(SYNCD), *args, "--config", env["CONFIG_DIR"], "--mappings", str(ROOT / "mappings")]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=300)


class TestOnceAndPlan:
    def test_once_mirrors_then_settles(self, environment: dict[str, str]) -> None:
        """The first `syncd once` mirrors the organisation; the second makes no write and exits 0."""
        first = syncd(environment, "once")
        assert first.returncode == 0, first.stderr
        assert " 0 writes" not in first.stderr
        second = syncd(environment, "once")
        assert second.returncode == 0, second.stderr
        assert "launch-requests:" in second.stderr
        assert " 0 writes" in second.stderr

    def test_plan_shows_and_does_not_write(self, sandbox: Sandbox, environment: dict[str, str]) -> None:
        """After a rename in Trello, `syncd plan` lists the writes it would make; nothing changes until `once`."""
        assert syncd(environment, "once").returncode == 0
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == "Bulk seat pricing for resellers")
        sandbox.trello.act_as("eli@corp.example").update_card(card.id, name="Planned rename")
        planned = syncd(environment, "plan")
        assert planned.returncode == 0, planned.stderr
        lines = [line for line in planned.stdout.splitlines() if "Planned rename" in line]
        assert {line.split()[3] for line in lines} == {"engineering", "marketing"}
        assert "Planned rename" not in {i.summary for i in sandbox.jira.state.issues.values()}
        assert syncd(environment, "once").returncode == 0
        assert "Planned rename" in {i.summary for i in sandbox.jira.state.issues.values()}

    def test_a_missing_credential_is_a_clear_error(self, environment: dict[str, str]) -> None:
        """An unset token variable fails naming the variable, without a traceback."""
        del environment["SYNCD_ASANA_TOKEN"]
        done = syncd(environment, "once")
        assert done.returncode != 0
        assert "SYNCD_ASANA_TOKEN is not set" in done.stderr
        assert "Traceback" not in done.stderr
