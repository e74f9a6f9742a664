"""Shared fixtures of the Asana emulator tests: a started emulator and SDK clients for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asana

from sandbox.asana import AsanaEmulator
from sandbox.seed import SERVICE_ACCOUNT, load_seed, token_for


def client_for(emulator: AsanaEmulator, email: str | None = None, *, token: str | None = None, **config: Any) -> Any:
    """Return an asana SDK ApiClient for the service account (or the given person, or an explicit token)."""
    cfg = asana.Configuration()
    cfg.host = emulator.api_url
    cfg.access_token = token or (token_for("asana", email) if email else emulator.credentials()["token"])
    for key, value in config.items():
        setattr(cfg, key, value)
    return asana.ApiClient(cfg)


def oauth_client(emulator: AsanaEmulator, app: str = "syncd-test-app", email: str = SERVICE_ACCOUNT) -> Any:
    """Return an SDK client authenticated with an OAuth token the person granted ``app``."""
    return client_for(emulator, token=emulator.oauth_token(email, app))


def started() -> Iterator[AsanaEmulator]:
    """Start an emulator of the shipped seed on an ephemeral port; stop it afterwards."""
    service = AsanaEmulator(load_seed())
    service.start()
    yield service
    service.stop()


def project_gid(emulator: AsanaEmulator) -> str:
    """The seeded Marketing project."""
    return next(iter(emulator.state.projects))


def section_gid(emulator: AsanaEmulator, name: str) -> str:
    """A section of the seeded project by name."""
    project = emulator.state.projects[project_gid(emulator)]
    return next(section.gid for section in project.sections if section.name == name)


def task_gid(emulator: AsanaEmulator, name: str) -> str:
    """A seeded task by name."""
    return next(task.gid for task in emulator.state.tasks.values() if task.name == name)
