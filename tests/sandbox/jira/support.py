"""Shared helpers of the Jira emulator tests: started emulators (Cloud and Server) and SDK clients for them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import requests
from jira import JIRA, JIRAError
from jira.resources import Issue

from sandbox.jira import JiraEmulator
from sandbox.seed import SERVICE_ACCOUNT, Seed, load_seed, token_for

ROOMY_BURST = 100_000
"""A burst budget no functional test reaches (the rate-limit test sets its own)."""


def server_seed() -> Seed:
    """The shipped seed, deployed as Jira Server/Data Center."""
    seed = load_seed()
    return seed.model_copy(update={"jira": seed.jira.model_copy(update={"deployment": "Server"})})


def started(seed: Seed | None = None, **options: Any) -> Iterator[JiraEmulator]:
    """Start an emulator on an ephemeral port; stop it afterwards."""
    options.setdefault("burst_limit", ROOMY_BURST)
    service = JiraEmulator(seed or load_seed(), **options)
    service.start()
    yield service
    service.stop()


def client(emulator: JiraEmulator, email: str = SERVICE_ACCOUNT, *, version: str = "2", **kwargs: Any) -> JIRA:
    """A python-jira client authenticated as a person with Basic e-mail:token (Cloud style)."""
    return JIRA(
        server=emulator.url,
        basic_auth=(email, token_for("jira", email)),
        options={"rest_api_version": version},
        **kwargs,
    )


def auth(email: str = SERVICE_ACCOUNT) -> tuple[str, str]:
    """Basic credentials for raw requests."""
    return email, token_for("jira", email)


def move_to_second(emulator: JiraEmulator, second: int) -> datetime:
    """Advance the emulated clock to ``second`` past a minute boundary at least a minute ahead; return that time."""
    now = emulator.clock.now()
    target = (now + timedelta(minutes=2)).replace(second=second, microsecond=0)
    emulator.clock.advance((target - now).total_seconds())
    return target


def shut(sdk: JIRA) -> None:
    """Close a client's session (python-jira leaves ``close`` untyped)."""
    sdk.close()  # type: ignore[no-untyped-call] # python-jira's close() has no annotations


def delete_issue(issue: Issue) -> None:
    """Delete an issue through its SDK resource (python-jira leaves ``Issue.delete`` untyped)."""
    issue.delete()  # type: ignore[no-untyped-call] # python-jira's Issue.delete() has no annotations


def error_response(error: JIRAError) -> requests.Response:
    """The HTTP response behind an SDK error (always present for HTTP errors)."""
    assert error.response is not None
    return error.response


def error_json(error: JIRAError) -> Any:
    """The JSON body of the HTTP response behind an SDK error."""
    return error_response(error).json()
