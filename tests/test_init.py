"""`syncd init`: skeletons that pass `syncd check` as written, name credentials only by variable, never overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.factory import CAPABILITIES
from syncd.cli import app
from syncd.config import load_config
from syncd.mapping import compile_group

runner = CliRunner()


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "config", tmp_path / "mappings"


def init(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["init", *args])
    return result.exit_code, result.stdout, result.stderr


class TestInit:
    def test_three_departments_and_a_group_pass_the_offline_check(
        self, dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A new organisation from nothing: every skeleton loads, compiles and passes `syncd check`."""
        config, mappings = dirs
        for name, tool in (("support", "jira"), ("field-sales", "trello"), ("brand", "asana")):
            code, out, err = init("department", name, "--tool", tool, "--config", str(config))
            assert code == 0, err
            assert out.strip().endswith(f"departments/{name}.yaml")
        code, out, err = init(
            "group",
            "escalations",
            "--members",
            "support,field-sales,brand",
            "--config",
            str(config),
            "--mappings",
            str(mappings),
        )
        assert code == 0, err
        assert out.strip() == str(mappings / "escalations.yaml")

        loaded = load_config(config)
        assert sorted(loaded.departments) == ["brand", "field-sales", "support"]
        assert loaded.departments["support"].connection.tool == "jira"
        group = compile_group(
            mappings / "escalations.yaml", {"support": "jira", "field-sales": "trello", "brand": "asana"}, CAPABILITIES
        )
        assert group.policy.members == ("support", "field-sales", "brand")
        assert group.policy.fields["assignees"].rule.order == ("support", "field-sales", "brand")
        assert group.policy.fields["due"].rule.owner == "support"

        text = (config / "departments" / "field-sales.yaml").read_text()
        assert "{env: SYNCD_FIELD_SALES_KEY}" in text
        assert "{env: SYNCD_FIELD_SALES_TOKEN}" in text
        checked = runner.invoke(app, ["check", "--config", str(config), "--mappings", str(mappings)])
        assert checked.exit_code == 0, checked.stderr

    def test_nothing_is_overwritten(self, dirs: tuple[Path, Path]) -> None:
        config, _ = dirs
        assert init("department", "support", "--tool", "jira", "--config", str(config))[0] == 0
        before = (config / "departments" / "support.yaml").read_text()
        code, _, err = init("department", "support", "--tool", "asana", "--config", str(config))
        assert code == 2
        assert "exists: syncd init never overwrites" in err
        assert (config / "departments" / "support.yaml").read_text() == before

    def test_a_group_of_unknown_departments_is_refused(self, dirs: tuple[Path, Path]) -> None:
        config, mappings = dirs
        assert init("department", "support", "--tool", "jira", "--config", str(config))[0] == 0
        code, _, err = init(
            "group", "g", "--members", "support,nobody", "--config", str(config), "--mappings", str(mappings)
        )
        assert code == 2
        assert "no department nobody" in err
        assert not (mappings / "g.yaml").exists()

    @pytest.mark.parametrize("name", ["Support", "2nd", "a b", "../x"])
    def test_a_bad_name_is_refused(self, dirs: tuple[Path, Path], name: str) -> None:
        config, _ = dirs
        code, _, err = init("department", name, "--tool", "jira", "--config", str(config))
        assert code == 2
        assert "use lower-case letters, digits and dashes" in err

    def test_a_directory_that_cannot_be_written_is_one_error_line(self, tmp_path: Path) -> None:
        """The system's refusal (a file where the config directory should be) is an `error:` line and exit 2."""
        blocker = tmp_path / "blocker"
        blocker.write_text("a file where the configuration directory should be")
        code, out, err = init("department", "support", "--tool", "jira", "--config", str(blocker))
        assert (code, out) == (2, "")
        assert err.startswith("error: ")
        assert str(blocker) in " ".join(err.split())
        assert "Traceback" not in err
