"""`syncd once` and `syncd plan` against the sandbox: configuration in, credentials from the environment, passes out."""

from __future__ import annotations

from sandbox.org import Sandbox
from tests.syncd_env import syncd


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
