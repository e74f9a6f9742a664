"""Issue 6's reliability suite: bad input, secrets, audit tampering (and, later, faults and crashes).

Shared here: a configuration directory and environment pointing at a live sandbox, for fixtures wider than one
test (tests/syncd_env.py has the per-test ``environment`` fixture; module-scoped setups need the same thing once).
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.org import Sandbox
from tests.syncd_env import ROOT


def sandbox_environment(sandbox: Sandbox, directory: Path) -> dict[str, str]:
    """Copy config/ into ``directory`` pointing at ``sandbox``; the environment holds its credentials and store."""
    config = directory / "config"
    (config / "departments").mkdir(parents=True)
    urls = {"engineering": sandbox.jira.url, "sales": sandbox.trello.url, "marketing": sandbox.asana.url}
    for name, url in urls.items():
        text = (ROOT / "config" / "departments" / f"{name}.yaml").read_text()
        lines = [f"  base_url: {url}" if line.strip().startswith("base_url:") else line for line in text.splitlines()]
        (config / "departments" / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    credentials = sandbox.credentials()
    return {
        **os.environ,
        "SYNCD_STORE": f"sqlite:///{directory / 'syncd.db'}",
        "SYNCD_JIRA_TOKEN": credentials["jira"]["token"],
        "SYNCD_TRELLO_KEY": credentials["trello"]["key"],
        "SYNCD_TRELLO_TOKEN": credentials["trello"]["token"],
        "SYNCD_ASANA_TOKEN": credentials["asana"]["token"],
        "CONFIG_DIR": str(config),
    }
