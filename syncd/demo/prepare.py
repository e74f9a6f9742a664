"""What the demo's syncd processes are given: the shipped files, the command, the configuration and environment.

The demo runs the real ``syncd`` on a copy of the operator's files, pointed at the emulators and with the
sandbox's credentials; the benchmarks and tests start syncd the same way, so these are public.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path

import yaml

from sandbox.org import Sandbox
from syncd.config import ConfigError, load_config
from syncd.demo.timing import POLL_INTERVAL_S, SHUTDOWN_TIMEOUT_S, WEBHOOK_DEBOUNCE_S
from syncd.errors import DemoError


def shipped(name: str) -> Path:
    """The repository's ``config/`` or ``mappings/``: beside the package in a checkout, else in the working directory.

    They are not package data (operators edit them), so an installed package finds them only where it was built from.
    """
    beside = Path(__file__).resolve().parents[2] / name
    return beside if beside.is_dir() else Path(name)


def syncd_command() -> list[str]:
    """How to run ``syncd`` as a subprocess with this interpreter (the console script beside it, if installed)."""
    script = Path(sys.executable).with_name("syncd")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from syncd.cli import main; main()"]


# ----- configuration and daemon --------------------------------------------------------------------------------

_WEBHOOK_SECRETS = {
    "jira": ("webhook_secret", "SYNCD_JIRA_WEBHOOK_SECRET"),
    "trello": ("secret", "SYNCD_TRELLO_SECRET"),
}
"""Per tool, the connection setting naming the webhook secret and the variable that holds it (Asana: handshake)."""


def prepare_config(source: Path, target: Path, sandbox: Sandbox) -> dict[str, str]:
    """Copy ``source`` to ``target`` with each department pointed at its emulator and its webhook secret named.

    Line edits rather than a YAML round trip keep the copy reading like the original (comments, layout). Returns
    department -> tool. A broken configuration is reported with every ``file:line`` problem.
    """
    try:
        load_config(source)
    except ConfigError as error:
        raise DemoError(str(error)) from error
    shutil.copytree(source, target)
    urls = {"jira": sandbox.jira.url, "trello": sandbox.trello.url, "asana": sandbox.asana.url}
    for path in sorted((target / "departments").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        tool = str(yaml.safe_load(text)["connection"]["tool"])
        lines: list[str] = []
        for line in text.splitlines():
            if line.startswith("  ") and line.strip().split(":", 1)[0] in {"base_url", "webhook_secret", "secret"}:
                continue  # replaced below: never the real service, and the demo's own secrets
            lines.append(line)
            if line.rstrip() == "connection:":
                lines.append(f"  base_url: {urls[tool]}")
                if tool in _WEBHOOK_SECRETS:
                    setting, variable = _WEBHOOK_SECRETS[tool]
                    lines.append(f"  {setting}: {{env: {variable}}}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        config = load_config(target)
    except ConfigError as error:
        raise DemoError(str(error)) from error
    return {name: department.connection.tool for name, department in config.departments.items()}


WEB_USER = "lead@corp.example"
"""Who signs in to the demo's web page (the lead who decides the held conflict)."""


def add_web_page(config_dir: Path, token_file: Path) -> str:
    """Serve the web page from the demo's daemon; the session secret to give it (``SYNCD_WEB_SESSION_SECRET``).

    One user, the lead, who reads and decides every department, with a fresh random operator token in
    ``token_file`` (readable by its owner only). A configuration that has its own ``web:`` section keeps it.
    """
    token_file.touch(mode=0o600)
    token_file.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
    instance = config_dir / "syncd.yaml"
    text = instance.read_text(encoding="utf-8") if instance.exists() else ""
    if not any(line.startswith("web:") for line in text.splitlines()):
        user = f"{{name: {WEB_USER}, token: {{file: {token_file}}}, read: all, decide: all}}"
        section = f"web:\n  session_secret: {{env: SYNCD_WEB_SESSION_SECRET}}\n  users:\n    - {user}\n"
        instance.write_text(text.rstrip("\n") + ("\n" if text else "") + section, encoding="utf-8")
    return secrets.token_urlsafe(32)


def daemon_environment(sandbox: Sandbox, store_url: str) -> dict[str, str]:
    """The environment of every syncd subprocess: the sandbox's credentials and the demo's settings.

    The caller's own ``SYNCD_*`` variables are left out, so a production store or token in the shell is never used.
    """
    credentials = sandbox.credentials()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYNCD_")}
    env.update(
        {
            "SYNCD_STORE": store_url,
            "SYNCD_JIRA_TOKEN": credentials["jira"]["token"],
            "SYNCD_TRELLO_KEY": credentials["trello"]["key"],
            "SYNCD_TRELLO_TOKEN": credentials["trello"]["token"],
            "SYNCD_ASANA_TOKEN": credentials["asana"]["token"],
            "SYNCD_JIRA_WEBHOOK_SECRET": secrets.token_urlsafe(24),
            "SYNCD_TRELLO_SECRET": credentials["trello"]["secret"],
            "SYNCD_POLL_INTERVAL_S": str(POLL_INTERVAL_S),
            "SYNCD_WEBHOOK_DEBOUNCE_S": str(WEBHOOK_DEBOUNCE_S),
            "SYNCD_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
        }
    )
    return env
