"""The sandbox as one organisation: three emulators started together on one clock, driven over admin routes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from sandbox.core import ADMIN_PREFIX
from sandbox.org import Sandbox
from sandbox.seed import SERVICE_ACCOUNT, load_seed


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


class TestSandbox:
    def test_serves_three_apis_on_distinct_loopback_ports(self, sandbox: Sandbox) -> None:
        """Each emulator has its own ephemeral port on 127.0.0.1 and answers its health route."""
        urls = [emulator.url for emulator in sandbox.emulators]
        assert len(set(urls)) == 3
        for url in urls:
            assert url.startswith("http://127.0.0.1:")
            assert requests.get(f"{url}{ADMIN_PREFIX}/health", timeout=5).json()["ok"] is True

    def test_credentials_are_the_service_accounts_and_stable(self, sandbox: Sandbox) -> None:
        """The same seed gives the same credentials on every start (tests and scripts can rely on them)."""
        credentials = sandbox.credentials()
        assert credentials["jira"]["email"] == SERVICE_ACCOUNT
        with Sandbox(load_seed()) as again:
            repeated = again.credentials()
        for api, values in credentials.items():
            assert {k: v for k, v in repeated[api].items() if k != "url"} == {
                k: v for k, v in values.items() if k != "url"
            }

    def test_the_three_emulators_share_one_clock(self, sandbox: Sandbox) -> None:
        """Advancing the organisation's clock moves every emulator's time (token expiry, JQL windows)."""
        before = [emulator.clock.now() for emulator in sandbox.emulators]
        sandbox.clock.advance(3600)
        after = [emulator.clock.now() for emulator in sandbox.emulators]
        assert all((late - early).total_seconds() >= 3600 for early, late in zip(before, after, strict=True))

    def test_latency_applies_to_every_emulator(self, sandbox: Sandbox) -> None:
        """set_latency() slows every API request (admin routes excepted), for realistic benchmarks."""
        sandbox.set_latency(40)
        try:
            assert all(emulator.latency_ms == 40 for emulator in sandbox.emulators)
        finally:
            sandbox.set_latency(0)

    @pytest.mark.parametrize("api", ["jira", "trello", "asana"])
    def test_faults_switch_on_over_the_admin_route(self, sandbox: Sandbox, api: str) -> None:
        """An injected 503 over HTTP hits the next API request with the tool's own error shape, then clears."""
        emulator = getattr(sandbox, api)
        rules = {"rules": [{"kind": "status", "status": 503, "times": 1}]}
        assert requests.put(f"{emulator.url}{ADMIN_PREFIX}/faults", json=rules, timeout=5).status_code == 200
        response = requests.get(f"{emulator.url}/anything", timeout=5)
        assert response.status_code == 503
        assert response.headers["Content-Type"].startswith(("application/json", "text/plain"))
        cleared = requests.delete(f"{emulator.url}{ADMIN_PREFIX}/faults", timeout=5).json()
        assert cleared == {"rules": []}
        assert requests.get(f"{emulator.url}/anything", timeout=5).status_code != 503
