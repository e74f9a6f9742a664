"""The configuration the daemon runs on: files in, one validated :class:`Runtime` out, and again on SIGHUP.

Its own module because start-up and reload must judge a configuration the same way: everything is loaded and
validated (every file problem at once, credentials too) before anything runs on it, and a reload that fails keeps
the running configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from syncd.config import Config, ConfigError, Department, config_version, load_config
from syncd.connector import Capabilities, Connector
from syncd.daemon.logs import log
from syncd.daemon.notifier import targets as notify_targets
from syncd.errors import SyncdError
from syncd.mapping import Group, compile_groups

RESTART_ONLY = ("store", "listen", "workers", "audit_key")
"""Instance settings a reload cannot change: the store (with its audit key), the server and the pool are built once."""


class ConnectorFactory(Protocol):
    """Builds one department's connector, credentials resolved now (``connectors.factory.connector_for``)."""

    def __call__(self, department: Department, *, callback_url: str | None = None) -> Connector:
        """The connector; ``callback_url`` is where this department's webhooks arrive (Trello signs over it)."""
        ...


@dataclass(frozen=True)
class Runtime:
    """One validated configuration: groups, departments and webhook verifiers, swapped whole on SIGHUP."""

    generation: int
    config: Config
    groups: Mapping[str, Group]
    version: str
    """A digest of the configuration and mapping files, recorded in audit events."""
    verifiers: Mapping[str, Connector]
    """Per department, a connector used only to verify webhook deliveries (no I/O, safe from any thread)."""
    notify_urls: Mapping[str, str]
    """Notification target (``department/name``) -> its Apprise URL, read and checked (a secret: never logged)."""

    def interval(self, group: str) -> float:
        """Seconds between full passes of a group: the shortest poll interval of its members."""
        default = self.config.instance.poll_interval_s
        members = self.groups[group].codecs
        return min(self.config.departments[m].poll_interval_s or default for m in members)

    def groups_of(self, department: str) -> list[str]:
        """The groups a department is a member of."""
        return [name for name, group in self.groups.items() if department in group.codecs]

    def callback_url(self, department: str) -> str | None:
        """Where the department's webhooks are delivered, or None when polling only."""
        return _callback_url(self.config, department)


def _callback_url(config: Config, department: str) -> str | None:
    public = config.instance.public_url
    return f"{public.rstrip('/')}/webhooks/{department}" if public else None


def load_runtime(
    config_dir: Path,
    mappings_dir: Path,
    factory: ConnectorFactory,
    *,
    capabilities: Mapping[str, Capabilities],
    generation: int,
    previous: Runtime | None,
) -> Runtime:
    """Load and validate everything before anything runs on it: every file problem at once, credentials too.

    Raises ConfigError (file:line problems of configuration and mappings) or SyncdError (a credential).
    """
    config = load_config(config_dir)
    tools = {name: department.connection.tool for name, department in config.departments.items()}
    groups = {group.name: group for group in compile_groups(mappings_dir, tools, capabilities)}
    verifiers: dict[str, Connector] = {}
    for name, department in config.departments.items():
        verifier = factory(department, callback_url=_callback_url(config, name))  # resolves the credentials now
        old = previous.verifiers.get(name) if previous else None
        if old is not None:
            verifier.keep_agreed_secret(old)  # a secret agreed in a handshake outlives a reload
        verifiers[name] = verifier
    urls = notify_targets(config)  # read and checked now: a bad URL fails the start or the reload, not a delivery
    return Runtime(generation, config, groups, config_version(config_dir, mappings_dir), verifiers, urls)


def reload_runtime(
    config_dir: Path,
    mappings_dir: Path,
    factory: ConnectorFactory,
    *,
    capabilities: Mapping[str, Capabilities],
    current: Runtime,
) -> Runtime | None:
    """The next generation of ``current``, or None (logged) when the files are rejected and ``current`` stays.

    A setting only a restart can change is logged and otherwise ignored: the rest of the reload still applies.
    """
    try:
        fresh = load_runtime(
            config_dir,
            mappings_dir,
            factory,
            capabilities=capabilities,
            generation=current.generation + 1,
            previous=current,
        )
    except ConfigError as error:
        log.error("reload.rejected", errors=[str(each) for each in error.errors], kept=current.version)
        return None
    except SyncdError as error:
        log.error("reload.rejected", errors=[str(error)], kept=current.version)
        return None
    old, new = current.config.instance, fresh.config.instance
    restart_only = [name for name in RESTART_ONLY if getattr(old, name) != getattr(new, name)]
    if restart_only:
        log.warning("reload.needs_restart", settings=restart_only)
    return fresh
