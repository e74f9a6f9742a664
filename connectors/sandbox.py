"""The three departments' real connectors pointed at a running sandbox: one builder for tests and benchmarks.

Built as the daemon builds them from the shipped config (service account, Done's required resolution, the
seeded people), with the knobs a test or a benchmark turns: the retry policy, whether the connectors pace
themselves with their default per-credential budgets or never wait, a shared Jira workflow, the reconcile period.
A sandbox served by another process is reached through its :class:`Address` (plain data that pickles), so a
benchmark can measure syncd's own cost without the emulators competing for the same interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from connectors.asana import AsanaConnector
from connectors.jira import JiraConnector
from connectors.jira.workflow import Workflow
from connectors.pacing import RetryPolicy, TokenBucket
from connectors.trello import TrelloConnector
from sandbox.org import Sandbox
from sandbox.seed import SERVICE_ACCOUNT, token_for
from syncd.connector import Connector


@dataclass(frozen=True)
class Address:
    """Where a started sandbox serves and what the service account connects with (no emulator object needed)."""

    jira_url: str
    trello_url: str
    trello_key: str
    trello_token: str
    trello_board: str
    asana_url: str
    asana_token: str
    asana_project: str
    people: tuple[tuple[str, str], ...]
    """E-mail -> Trello username of each seeded person (Trello hides e-mails)."""


def address_of(sandbox: Sandbox) -> Address:
    """The address of a started sandbox."""
    trello = sandbox.trello.credentials()
    return Address(
        jira_url=sandbox.jira.url,
        trello_url=sandbox.trello.url,
        trello_key=trello["key"],
        trello_token=trello["token"],
        trello_board=next(iter(sandbox.trello.state.boards)),
        asana_url=sandbox.asana.url,
        asana_token=sandbox.asana.credentials()["token"],
        asana_project=next(iter(sandbox.asana.state.projects)),
        people=tuple((p.email, p.username) for p in sandbox.seed.people),
    )


def sandbox_connectors(
    sandbox: Sandbox | Address,
    *,
    policy: RetryPolicy | None = None,
    paced: bool = False,
    workflow: Workflow | None = None,
    reconcile_every: timedelta = timedelta(hours=1),
    search_settle_s: float = 1.0,
) -> dict[str, Connector]:
    """Member -> connector. ``paced``: the default shared budgets (as the daemon has); else buckets that never wait.

    ``search_settle_s`` must exceed the Jira emulator's search lag (``search_lag_s``) as the default exceeds
    Jira Cloud's: a lost create is looked up no sooner.
    """
    where = sandbox if isinstance(sandbox, Address) else address_of(sandbox)

    def free() -> TokenBucket | None:
        return None if paced else TokenBucket(rate=1e6, capacity=1e6)

    trello_bucket = free()
    return {
        "engineering": JiraConnector(
            base_url=where.jira_url,
            user=SERVICE_ACCOUNT,
            token=token_for("jira", SERVICE_ACCOUNT),
            project_key="ENG",
            transition_fields={"Done": {"resolution": {"name": "Done"}}},
            policy=policy,
            bucket=free(),
            workflow=workflow,
            reconcile_every=reconcile_every,
            search_settle_s=search_settle_s,
        ),
        "sales": TrelloConnector(
            base_url=where.trello_url,
            key=where.trello_key,
            token=where.trello_token,
            board_id=where.trello_board,
            people=dict(where.people),
            policy=policy,
            buckets=None if trello_bucket is None else [trello_bucket],
        ),
        "marketing": AsanaConnector(
            base_url=where.asana_url,
            token=where.asana_token,
            project_gid=where.asana_project,
            policy=policy,
            bucket=free(),
        ),
    }
