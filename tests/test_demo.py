"""`syncd demo`, the embedded default, run as a newcomer runs it: one command, no account, from any directory.

The demo is run as a subprocess with its own temporary directory (TMPDIR), so the tests can tell that everything
it started (the daemon, the lead's `syncd conflicts resolve`, the dry run) is gone afterwards, and that it cleaned up.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import requests
import yaml
from rich.console import Console

from sandbox import scenario
from sandbox.org import Sandbox
from syncd.config import load_config
from syncd.demo import RULES, prepare_config
from syncd.demo.compare import mismatches
from syncd.demo.view import View
from tests.syncd_env import ROOT, SYNCD, syncd

SHIPPED = ["--config", str(ROOT / "config"), "--mappings", str(ROOT / "mappings")]


def running_with(marker: str) -> list[str]:
    """Command lines of live (not zombie) processes that mention ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:  # it ended while we looked
            continue
        if marker in command and state != "Z":
            found.append(command)
    return found


def demo(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path, Path]:
    """Start `syncd demo ARGS` in a fresh working directory with its own TMPDIR and none of the caller's SYNCD_*."""
    work, temp = tmp_path / "elsewhere", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYNCD_")}
    env["TMPDIR"] = str(temp)
    process = subprocess.Popen(
        [str(SYNCD), "demo", *args, *SHIPPED],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, work, temp


def assert_nothing_left(temp: Path, work: Path) -> None:
    """No process the demo started still runs, its temporary directory is gone, the working directory untouched."""
    assert running_with(str(temp)) == []
    assert list(temp.iterdir()) == []
    assert list(work.iterdir()) == []


def sandbox_secrets(sandbox: Sandbox) -> list[str]:
    """The sandbox's credentials (derived from the seed: the demo's own sandbox has the same)."""
    return [
        value
        for credentials in sandbox.credentials().values()
        for name, value in credentials.items()
        if name in {"token", "key", "secret"}
    ]


def test_the_demo_plays_every_rule_and_converges(tmp_path: Path, sandbox: Sandbox) -> None:
    """`syncd demo --duration 60`: each rule decides its conflict, the lead decides the held one, all converges."""
    started = time.monotonic()
    process, work, temp = demo(tmp_path, "--duration", "60")
    out, err = process.communicate(timeout=120)
    took = time.monotonic() - started
    assert process.returncode == 0, out[-4000:] + err[-4000:]
    lines = out.splitlines()
    assert lines[-1] == "converged", out[-4000:]
    assert took < 75  # it stops early once everything converged

    summary = {
        key.strip(): value.strip() for key, _, value in (line.partition(": ") for line in lines if line[:2] == "  ")
    }
    decided = dict(entry.rsplit(" ", 1) for entry in summary["conflicts decided"].split(", "))
    assert decided == dict.fromkeys(RULES, "1")  # each rule decided exactly its one conflict
    assert summary["held conflicts left"] == "0"
    assert summary["quarantined items"].startswith("0 ")
    assert summary["edits played"] == "13 of 13"
    assert summary["subject matches the expected item in Jira, Trello and Asana"] == "yes"
    mirrored = dict(entry.split(" ") for entry in summary["items mirrored"].split(", "))
    assert set(mirrored) == {"Jira", "Trello", "Asana"}
    assert len(set(mirrored.values())) == 1  # every item is in all three tools
    assert int(mirrored["Jira"]) > 12  # the seeded launch work of all three departments, not just Jira's
    for rule in RULES:  # the edits, as played, name their rule
        assert any(line.endswith(f"[{rule}]") for line in lines if " edit " in line), rule
    assert any("resolve" in line and "lead@corp.example" in line for line in lines if " audit " in line)
    # The uncontested priority edit: Gus' Asana Priority is then written to Jira's priority and Trello's Priority.
    played = "Gus (Asana) lowers the task's Priority to Medium [latest]"
    after = lines[next(i for i, line in enumerate(lines) if line.endswith(played)) :]
    for where in ("engineering (Jira)", "sales (Trello)"):
        assert any(f" write {where} priority=medium" in line for line in after if " audit " in line), where
    assert not [secret for secret in sandbox_secrets(sandbox) if secret in out + err], "a credential was printed"
    assert_nothing_left(temp, work)


def test_too_short_a_run_says_so_and_fails(tmp_path: Path) -> None:
    """A duration too short to play the scenario ends with exit 1, saying why, and still cleans up."""
    process, work, temp = demo(tmp_path, "--duration", "3")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, out + err
    assert "the scenario needs more time" in out
    assert out.splitlines()[-1] == "NOT converged"
    assert_nothing_left(temp, work)


def test_sigterm_stops_everything(tmp_path: Path) -> None:
    """Without --duration the demo runs until stopped; SIGTERM (like Ctrl-C) stops it all cleanly, exit 0."""
    process, work, temp = demo(tmp_path)
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 60
    for line in process.stdout:
        seen.append(line)
        if " edit " in line or time.monotonic() > deadline:
            break
    assert any(" edit " in line for line in seen), "".join(seen)
    assert running_with(str(temp)), "the daemon should be running by now"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, out + err
    assert "stopped by SIGTERM" in out
    assert_nothing_left(temp, work)


def test_the_held_conflict_appears_on_the_web_page(tmp_path: Path) -> None:
    """The demo prints the page's address and where its token is; signed in, the held due conflict is there."""
    process, work, temp = demo(tmp_path)
    assert process.stdout is not None
    found = None
    deadline = time.monotonic() + 90
    for line in process.stdout:
        found = found or re.search(r"the web page: (\S+)/ui/ \(sign in as (\S+) with the token in (\S+)\)", line)
        if ("[manual]" in line and "lead@corp.example" in line) or time.monotonic() > deadline:
            break  # the lead decided it: the conflict and its decision are in the store
    try:
        assert found is not None, "the demo did not print the web page's address"
        url, user, token_file = found.groups()
        session = requests.Session()
        token = Path(token_file).read_text().strip()
        assert session.post(f"{url}/ui/sign-in", data={"token": token}, timeout=10).url.endswith("/ui/")
        page = session.get(f"{url}/ui/audit", params={"kind": "conflict", "field": "due"}, timeout=10).text
        held = re.search(r'<a href="/ui/items/(\w+)">', page)
        assert held is not None, page
        item = session.get(f"{url}/ui/items/{held.group(1)}", timeout=10).text
        assert re.search(r"<li>due: sales 2027-02-01; marketing 2027-02-03; (open|decided|closed)", item), item
        assert user == "lead@corp.example"
        assert token not in page + item
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, out + err
    assert_nothing_left(temp, work)


def test_the_config_copy_points_at_the_sandbox_with_webhook_secrets(sandbox: Sandbox, tmp_path: Path) -> None:
    """Each department's base_url is its emulator's; Jira and Trello name their webhook secrets; nothing else moves."""
    tools = prepare_config(ROOT / "config", tmp_path / "config", sandbox)
    assert tools == {"engineering": "jira", "sales": "trello", "marketing": "asana"}
    config = load_config(tmp_path / "config")
    assert {name: d.connection.base_url for name, d in config.departments.items()} == {
        "engineering": sandbox.jira.url,
        "sales": sandbox.trello.url,
        "marketing": sandbox.asana.url,
    }
    engineering = yaml.safe_load((tmp_path / "config" / "departments" / "engineering.yaml").read_text())
    assert engineering["connection"]["webhook_secret"] == {"env": "SYNCD_JIRA_WEBHOOK_SECRET"}
    sales = yaml.safe_load((tmp_path / "config" / "departments" / "sales.yaml").read_text())
    assert sales["connection"]["secret"] == {"env": "SYNCD_TRELLO_SECRET"}
    original = yaml.safe_load((ROOT / "config" / "departments" / "sales.yaml").read_text())
    assert sales["people"] == original["people"]
    assert (tmp_path / "config" / "syncd.yaml").read_text() == (ROOT / "config" / "syncd.yaml").read_text()


def rendered_priority(sandbox: Sandbox, refs: scenario.Refs) -> list[str]:
    """The live view's priority row as a terminal shows it: the Jira, Trello and Asana cells."""
    console = Console(file=io.StringIO(), force_terminal=True, width=200, record=True)
    with View(console, sandbox, {}, duration_s=None, lead="lead@corp.example") as view:
        view.refs = refs
        view.refresh()
    rows = [line for line in console.export_text().splitlines() if re.match(r"^\W*priority\b", line)]
    assert rows, console.export_text()
    return [cell.strip() for cell in re.split(r"[│┃|]", rows[-1]) if cell.strip()][1:]


def test_the_priority_edit_reaches_the_other_tools_and_the_view(sandbox: Sandbox, environment: dict[str, str]) -> None:
    """The scenario's priority edit in Asana's custom field reaches Jira's priority and Trello's; the view shows it."""
    assert syncd(environment, "once").returncode == 0
    refs = scenario.find(sandbox)
    assert rendered_priority(sandbox, refs) == ["High", "High", "High"]  # seeded in Jira, mirrored as created

    (edit,) = [edit for edit in scenario.EDITS if edit.field == "priority"]
    assert (edit.person, edit.tool, edit.rule) == ("gus@corp.example", "asana", "latest")
    edit.apply(sandbox, refs)
    assert rendered_priority(sandbox, refs) == ["High", "High", "Medium"]
    assert any(problem.startswith("Jira priority is 'High'") for problem in mismatches(sandbox, refs))

    carried = syncd(environment, "once")
    assert carried.returncode == 0, carried.stderr
    assert rendered_priority(sandbox, refs) == ["Medium", "Medium", "Medium"]
    assert not [problem for problem in mismatches(sandbox, refs) if "priority" in problem]
    assert scenario.EXPECTED["priority"] == "medium"
