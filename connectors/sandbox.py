"""The three departments' real connectors pointed at a running sandbox: one builder for tests and benchmarks.

Built as the daemon builds them from the shipped config (service account, Done's required resolution, the
seeded people), with the knobs a test or a benchmark turns: the retry policy, whether the connectors pace
themselves with their default per-credential budgets or never wait, a shared Jira workflow, the reconcile period.
"""

from __future__ import annotations

from datetime import timedelta

from connectors.asana import AsanaConnector
from connectors.jira import JiraConnector
from connectors.jira.workflow import Workflow
from connectors.pacing import RetryPolicy, TokenBucket
from connectors.trello import TrelloConnector
from sandbox.org import Sandbox
from sandbox.seed import SERVICE_ACCOUNT, token_for
from syncd.connector import Connector


def sandbox_connectors(
    sandbox: Sandbox,
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

    def free() -> TokenBucket | None:
        return None if paced else TokenBucket(rate=1e6, capacity=1e6)

    trello = sandbox.trello.credentials()
    trello_bucket = free()
    return {
        "engineering": JiraConnector(
            base_url=sandbox.jira.url,
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
            base_url=sandbox.trello.url,
            key=trello["key"],
            token=trello["token"],
            board_id=next(iter(sandbox.trello.state.boards)),
            people={p.email: p.username for p in sandbox.seed.people},
            policy=policy,
            buckets=None if trello_bucket is None else [trello_bucket],
        ),
        "marketing": AsanaConnector(
            base_url=sandbox.asana.url,
            token=sandbox.asana.credentials()["token"],
            project_gid=next(iter(sandbox.asana.state.projects)),
            policy=policy,
            bucket=free(),
        ),
    }
