"""Configuration as code: valid files load, env overrides, and every mistake is reported with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.org import Sandbox
from syncd.config import ConfigError, JiraConnection, Secret, TrelloConnection, load_config, schemas
from syncd.errors import SyncdError
from syncd.guard import Threshold

ROOT = Path(__file__).resolve().parent.parent


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


JIRA = """connection:
  tool: jira
  base_url: https://acme.atlassian.net
  user: bot@acme.example
  token: {env: ACME_JIRA_TOKEN}
  project: ENG
"""


class TestLoading:
    def test_the_shipped_example_loads_and_matches_the_sandbox(self) -> None:
        """config/ is valid, and its workspaces are the sandbox organisation's (so the example stays true)."""
        config = load_config(ROOT / "config")
        assert set(config.departments) == {"engineering", "sales", "marketing"}
        sales = config.departments["sales"].connection
        assert isinstance(sales, TrelloConnection)
        sandbox = Sandbox()
        assert sales.board in sandbox.trello.state.boards
        assert config.departments["marketing"].connection.project in sandbox.asana.state.projects  # type: ignore[union-attr]
        assert config.departments["sales"].people["eli@corp.example"] == "eli"

    def test_the_department_name_defaults_to_the_file_name(self, tmp_path: Path) -> None:
        """departments/engineering.yaml is the department "engineering" unless it names itself."""
        write(tmp_path, "departments/engineering.yaml", JIRA)
        config = load_config(tmp_path)
        assert config.departments["engineering"].name == "engineering"
        assert isinstance(config.departments["engineering"].connection, JiraConnection)

    def test_the_environment_overrides_the_instance_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """SYNCD_POLL_INTERVAL_S beats poll_interval_s in syncd.yaml: operators change settings without an edit."""
        write(tmp_path, "syncd.yaml", "poll_interval_s: 30\nstore: sqlite:///x.db\n")
        monkeypatch.setenv("SYNCD_POLL_INTERVAL_S", "5")
        config = load_config(tmp_path)
        assert config.instance.poll_interval_s == 5
        assert config.instance.store == "sqlite:///x.db"

    def test_a_department_mass_change_overrides_the_instance(self, tmp_path: Path) -> None:
        """A department's `mass_change:` is its threshold; a department without one gets syncd.yaml's."""
        write(tmp_path, "syncd.yaml", "mass_change: {max_items: 40, max_share: 0.5, window_s: 60}\n")
        write(tmp_path, "departments/engineering.yaml", JIRA + "mass_change: {max_items: 3, max_share: 0.05}\n")
        write(tmp_path, "departments/ops.yaml", JIRA.replace("ENG", "OPS"))
        config = load_config(tmp_path)
        assert config.mass_change(["engineering", "ops", "nobody"]) == {
            "engineering": Threshold(max_items=3, max_share=0.05, window_s=600.0),
            "ops": Threshold(max_items=40, max_share=0.5, window_s=60.0),
        }


class TestSecrets:
    def test_a_secret_comes_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """{env: NAME} reads the variable at use, not at load."""
        monkeypatch.setenv("ACME_TOKEN", "t0k3n")
        assert Secret(env="ACME_TOKEN").resolve() == "t0k3n"

    def test_a_secret_comes_from_a_file(self, tmp_path: Path) -> None:
        """{file: path} reads a mounted secret, without the trailing newline."""
        path = write(tmp_path, "token", "from-file\n")
        assert Secret(file=path).resolve() == "from-file"

    def test_a_missing_variable_names_it_and_the_fix(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An unset variable is a clear error naming the variable."""
        monkeypatch.delenv("ACME_NOPE", raising=False)
        with pytest.raises(SyncdError, match="ACME_NOPE is not set"):
            Secret(env="ACME_NOPE").resolve()

    def test_a_token_typed_into_the_file_is_refused_without_echoing_it(self, tmp_path: Path) -> None:
        """token: <the token itself> is an error that says how to name it instead, and never prints the value."""
        write(tmp_path, "departments/engineering.yaml", JIRA.replace("{env: ACME_JIRA_TOKEN}", "sk-very-secret-value"))
        with pytest.raises(ConfigError) as raised:
            load_config(tmp_path)
        assert "sk-very-secret-value" not in str(raised.value)
        assert "engineering.yaml:5: 'connection.token': write where the credential comes from" in str(raised.value)


class TestErrors:
    def test_every_problem_of_every_file_is_reported_at_once(self, tmp_path: Path) -> None:
        """Two broken files, three mistakes: one ConfigError lists all of them with file:line and a fix."""
        write(tmp_path, "syncd.yaml", "poll_interval_s: -1\n")
        write(tmp_path, "departments/engineering.yaml", JIRA + "colour: blue\n")
        write(
            tmp_path,
            "departments/sales.yaml",
            "connection:\n  tool: trello\n  key: {env: K}\n  token: {env: T}\npeople:\n  eli: eli\n",
        )
        with pytest.raises(ConfigError) as raised:
            load_config(tmp_path)
        text = str(raised.value)
        assert "syncd.yaml:1: 'poll_interval_s'" in text
        assert "engineering.yaml:7: 'colour' is not a known setting: remove it" in text
        assert "sales.yaml:2: 'connection.board' is required but missing: add it" in text
        assert "not an e-mail: eli" in text

    def test_a_bad_variable_is_named_not_the_file_line(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """SYNCD_POLL_INTERVAL_S=inf over a right syncd.yaml: the error names the variable (the file is not wrong)."""
        write(tmp_path, "syncd.yaml", "poll_interval_s: 30\n")
        monkeypatch.setenv("SYNCD_POLL_INTERVAL_S", "inf")
        with pytest.raises(ConfigError) as raised:
            load_config(tmp_path)
        assert str(raised.value) == "SYNCD_POLL_INTERVAL_S: Input should be a finite number (got 'inf')"

    def test_an_unknown_tool_is_named(self, tmp_path: Path) -> None:
        """tool: monday is refused, naming the tools syncd knows."""
        write(tmp_path, "departments/ops.yaml", "connection:\n  tool: monday\n")
        with pytest.raises(ConfigError, match=r"ops.yaml:2.*'jira', 'trello', 'asana'"):
            load_config(tmp_path)

    def test_yaml_syntax_errors_have_a_line(self, tmp_path: Path) -> None:
        """Broken YAML is reported with its line, not a stack trace."""
        write(tmp_path, "departments/ops.yaml", "connection:\n  tool: [jira\n")
        with pytest.raises(ConfigError, match=r"ops.yaml:\d+: not valid YAML"):
            load_config(tmp_path)


class TestSchemas:
    def test_json_schemas_for_editors(self) -> None:
        """Each file kind has a JSON Schema naming its settings."""
        exported = schemas()
        assert set(exported) == {"syncd.yaml", "department.yaml"}
        assert "poll_interval_s" in exported["syncd.yaml"]["properties"]
        assert "connection" in exported["department.yaml"]["required"]
