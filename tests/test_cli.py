"""The `syncd` command as a person or a script uses it: a real process, real signals, real output."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asana
import pytest
from jira import JIRA
from trello import TrelloClient

from connectors.trello.http import BaseUrlSession
from syncd import __version__

SYNCD = Path(sys.executable).with_name("syncd")


def _serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(SYNCD), "sandbox", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], dict[str, dict[str, str]], float]]:
    started = time.monotonic()
    process = _serve()
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        elapsed = time.monotonic() - started
        yield process, json.loads(line), elapsed
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)  # reaps the process and closes its pipes


class TestSandboxServe:
    def test_prints_one_json_line_with_every_api(
        self, served: tuple[subprocess.Popen[str], dict[str, dict[str, str]], float]
    ) -> None:
        """The one line on stdout holds each API's URL and credentials, in the documented keys."""
        _, credentials, _ = served
        assert set(credentials) == {"jira", "trello", "asana"}
        assert set(credentials["jira"]) == {"url", "email", "token"}
        assert set(credentials["trello"]) == {"url", "key", "token", "secret"}
        assert set(credentials["asana"]) == {"url", "token"}
        for api in credentials.values():
            assert api["url"].startswith("http://127.0.0.1:")

    def test_the_printed_credentials_open_each_api_through_its_sdk(
        self, served: tuple[subprocess.Popen[str], dict[str, dict[str, str]], float]
    ) -> None:
        """A script can connect the real SDKs with nothing but the printed line."""
        _, credentials, _ = served
        jira = JIRA(
            server=credentials["jira"]["url"], basic_auth=(credentials["jira"]["email"], credentials["jira"]["token"])
        )
        assert jira.myself()["emailAddress"] == credentials["jira"]["email"]
        trello = TrelloClient(
            # py-trello sends `api_secret` as the `token` query parameter when it has no OAuth token secret.
            api_key=credentials["trello"]["key"],
            api_secret=credentials["trello"]["token"],
            http_service=BaseUrlSession(credentials["trello"]["url"]),
        )
        assert [board.name for board in trello.list_boards()] == ["Sales Requests"]
        configuration = asana.Configuration()
        configuration.host = credentials["asana"]["url"] + "/api/1.0"
        configuration.access_token = credentials["asana"]["token"]
        me = asana.UsersApi(asana.ApiClient(configuration)).get_user("me", {"opt_fields": "email"})
        assert me["email"] == "syncd-bot@corp.example"

    def test_starts_quickly(self, served: tuple[subprocess.Popen[str], dict[str, dict[str, str]], float]) -> None:
        """Startup (process start to the JSON line) stays well inside the 2 s target; the benchmark gives the figure."""
        _, _, elapsed = served
        assert elapsed < 10  # generous bound against CI noise; benchmarks/bench_sandbox.py measures the real figure

    @pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
    def test_stops_cleanly_on_a_signal(
        self, served: tuple[subprocess.Popen[str], dict[str, dict[str, str]], float], signum: signal.Signals
    ) -> None:
        """SIGTERM and SIGINT both stop the sandbox with exit code 0."""
        process, _, _ = served
        process.send_signal(signum)
        assert process.wait(10) == 0

    def test_a_broken_seed_file_names_file_line_and_fix(self, tmp_path: Path) -> None:
        """A mistake in a seed file is reported with its file and line, and the command fails without serving."""
        seed = tmp_path / "seed.yaml"
        seed.write_text(
            "organisation: X\npeople:\n  - {name: A, email: a@x.example, username: a, shoe_size: 9}\n"
            "jira: {projects: []}\ntrello: {boards: []}\nasana: {workspace: w, projects: []}\n"
        )
        process = _serve("--seed", str(seed))
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 2
        assert f"{seed}:3" in " ".join(stderr.split())
        assert "shoe_size" in stderr
        assert "remove it" in stderr


class TestVersion:
    def test_prints_the_package_version(self) -> None:
        """`syncd --version` prints the installed version."""
        output = subprocess.run([str(SYNCD), "--version"], capture_output=True, text=True, check=True).stdout
        assert output.strip() == __version__


ROOT = Path(__file__).resolve().parent.parent


class TestCheckAndSchema:
    def test_check_accepts_the_shipped_configuration(self) -> None:
        """`syncd check` validates config/ and mappings/ and says what it found."""
        done = subprocess.run(
            [str(SYNCD), "check", "--config", str(ROOT / "config"), "--mappings", str(ROOT / "mappings")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "3 departments, 1 sync groups" in done.stderr

    def test_check_lists_every_problem_with_file_and_line(self, tmp_path: Path) -> None:
        """A broken mapping fails the check with exit code 2, naming file and line."""
        mappings = tmp_path / "mappings"
        mappings.mkdir()
        (mappings / "bad.yaml").write_text("members:\n  sales: {}\nfields:\n  title: {rule: sometimes}\n")
        done = subprocess.run(
            [str(SYNCD), "check", "--config", str(ROOT / "config"), "--mappings", str(mappings)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2
        assert "bad.yaml:4" in done.stderr

    def test_schema_prints_json_schemas(self) -> None:
        """`syncd schema mapping.yaml` prints the JSON Schema an editor can use."""
        done = subprocess.run([str(SYNCD), "schema", "mapping.yaml"], capture_output=True, text=True, check=True)
        schema = json.loads(done.stdout)
        assert "members" in schema["properties"]
        field = schema["$defs"]["FieldSpec"]["properties"]
        assert {"at", "type", "except"} <= set(field)
        assert field["at"]["additionalProperties"] == {"$ref": "#/$defs/Place"}
        assert "on_delete" in schema["$defs"]["Member"]["properties"]
        place = schema["$defs"]["Place"]["properties"]
        assert set(place) == {"custom", "field", "labels"}
        assert place["labels"]["anyOf"][0] == {"type": "array", "items": {"type": "string"}}
        assert "priority only" in place["labels"]["description"]
