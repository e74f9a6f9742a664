"""Notifications (issue 19): each event that waits for a person reaches its departments' targets exactly once.

Whole passes of the engine over the three sandbox tools produce the events (a held conflict, a quarantined item,
a mass-change hold, a failing endpoint); the notifier delivers the outbox through Apprise to receivers on
127.0.0.1: an HTTP endpoint for ``json://`` and an SMTP server for ``mailto://``. The configuration is the real
one, loaded from YAML files with the URLs in the environment. The daemon's side (a crash between commit and
delivery, a target that refuses) is in tests/test_daemon_notifications.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme
from typer.testing import CliRunner

from connectors.base import Connector
from connectors.factory import CAPABILITIES
from sandbox.core import FaultRule
from sandbox.org import Sandbox
from syncd.cli import app
from syncd.config import Config, ConfigError, load_config
from syncd.daemon.notifier import Notifier, register_secrets, targets
from syncd.engine import Pass, endpoint_key
from syncd.errors import FileError
from syncd.mapping import Group, compile_group
from syncd.notices import NO_LINK, Outbox, Queued, message
from syncd.redact import redact
from syncd.store import Store
from syncd.store import guards as stored
from tests.notify_receivers import HttpReceiver, SmtpReceiver, text_of
from tests.syncd_env import ROOT, run

PUBLIC = "https://syncd.corp.example"
CARD = "Bulk seat pricing for resellers"


@pytest.fixture(scope="module")
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


@pytest.fixture
def teams(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HttpReceiver]:
    """A Teams Workflows endpoint over TLS, its throwaway CA trusted by requests (and so by Apprise)."""
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    with HttpReceiver(ca=ca) as running:
        yield running


@pytest.fixture(scope="module")
def mailbox() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as running:
        yield running


def configure(
    environment: dict[str, str],
    notify: dict[str, str],
    *,
    urls: dict[str, str] | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> Config:
    """Write ``notify:`` sections into the department files (URLs in files or the environment); the loaded config."""
    config_dir = Path(environment["CONFIG_DIR"])
    (config_dir / "syncd.yaml").write_text(f"notify_digest_s: 0\npublic_url: {PUBLIC}\n")
    for department, section in notify.items():
        path = config_dir / "departments" / f"{department}.yaml"
        path.write_text(path.read_text().rstrip("\n") + "\nnotify:\n" + section)
    for variable, url in (urls or {}).items():
        assert monkeypatch is not None
        monkeypatch.setenv(variable, url)
    return load_config(config_dir)


@dataclass(frozen=True)
class World:
    """The sandbox mirrored by the shipped group, and the test's configuration directory."""

    sandbox: Sandbox
    group: Group
    connectors: dict[str, Connector]
    store: Store
    environment: dict[str, str]

    def notify(self, targets: dict[str, list[tuple[str, str]]]) -> Config:
        """Department -> [(Apprise URL, more YAML of the target)]: each URL in a file of its own, as a secret."""
        sections: dict[str, str] = {}
        for department, wanted in targets.items():
            sections[department] = ""
            for index, (url, more) in enumerate(wanted, 1):
                secret = Path(self.environment["CONFIG_DIR"]).parent / f"notify-{department}-{index}"
                secret.write_text(url + "\n")
                sections[department] += f"  - {{url: {{file: {secret}}}, {more}}}\n"
        return configure(self.environment, sections)

    def passes(self, config: Config, count: int, group: Group | None = None) -> None:
        """``count`` passes, each followed by one round of the notifier."""
        urls = targets(config)
        for _ in range(count):
            Pass(group or self.group, self.connectors, self.store, outbox=Outbox(config.routes())).run()
            Notifier(self.store, holder="test", config=lambda: config, urls=lambda: urls).deliver()


@pytest.fixture
def world(
    sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store, environment: dict[str, str]
) -> World:
    return World(sandbox, group, connectors, store, environment)


def unique_path(receiver: HttpReceiver, name: str) -> str:
    """A path of the shared receiver that no earlier test used."""
    return f"/{name}-{len(receiver.received)}-{id(receiver)}"


class TestEvents:
    def test_a_held_conflict_is_sent_once_to_each_department_in_it_with_its_links(
        self, world: World, receiver: HttpReceiver, teams: HttpReceiver, tmp_path: Path
    ) -> None:
        """Sales and Marketing rename one item differently under `manual`: Sales' webhook and Marketing's Teams
        channel each get one message naming the item, the field and both values, linking the conflict's and the
        item's pages; Engineering, not in it, gets none."""
        paths = {name: unique_path(receiver, name) for name in ("sales", "engineering")}
        wanted = "events: [held_conflict]"
        config = world.notify(
            {
                **{name: [(receiver.url(path), wanted)] for name, path in paths.items()},
                "marketing": [(teams.workflow_url("mkt0123456789", "sig-0123456789abcdef"), wanted)],
            }
        )
        text = (ROOT / "mappings" / "launch-requests.yaml").read_text()
        mapping = tmp_path / "launch-requests.yaml"
        mapping.write_text(text.replace("title: {rule: latest}", "title: {rule: manual}"))
        group = compile_group(mapping, {"engineering": "jira", "sales": "trello", "marketing": "asana"}, CAPABILITIES)
        run(group, world.connectors, world.store)
        sandbox = world.sandbox
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == CARD)
        task = next(t for t in sandbox.asana.state.tasks.values() if t.name == CARD)
        sandbox.trello.act_as("eli@corp.example").update_card(card.id, name="Sales' title")
        sandbox.asana.act_as("dana@corp.example").update_task(task.gid, name="Marketing's title")
        world.passes(config, 2, group)  # the second pass finds the same conflict still waiting
        with world.store.transaction() as tx:
            (queued,) = tx.conflicts(group=group.name)
        (card_sent,) = teams.at("/workflows/mkt0123456789/triggers/manual/paths/invoke")
        (adaptive,) = card_sent["attachments"]
        # A card's text is Markdown: Apprise escapes the plain text's punctuation, which Teams shows unescaped.
        title, body = (
            re.sub(r"\\(.)", r"\1", block["text"])
            for block in adaptive["content"]["body"]
            if block["type"] == "TextBlock"
        )
        (sales,) = receiver.at(paths["sales"])
        for department, sent in (("sales", (sales["title"], sales["message"])), ("marketing", (title, body))):
            assert sent[0] == f"syncd, {department}: a conflict waits for a decision"
            assert f"'{CARD}'" in sent[1]
            assert "field title differs (marketing: Marketing's title; sales: Sales' title)" in sent[1]
            assert f"decide: {PUBLIC}/ui/conflicts/{queued.id}" in sent[1]
            assert f"item: {PUBLIC}/ui/items/{queued.sync_id}" in sent[1]
        assert receiver.at(paths["engineering"]) == []

    def test_a_quarantined_item_is_e_mailed_once_with_its_page(self, world: World, mailbox: SmtpReceiver) -> None:
        """Jira refuses every write to one issue: when it is held out, Engineering's e-mail target gets one mail
        naming the item and the error, linking the item's page; later passes and rounds send nothing more."""
        config = world.notify({"engineering": [(mailbox.url("eng-leads@corp.example"), "events: [quarantined]")]})
        before = len(mailbox.messages)
        run(world.group, world.connectors, world.store)
        sandbox = world.sandbox
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == CARD)
        key = next(k for k, issue in sandbox.jira.state.issues.items() if issue.summary == CARD)
        sandbox.jira.faults.add(FaultRule(kind="status", status=400, method="PUT", path=f"/issue/{key}$"))
        sandbox.trello.act_as("eli@corp.example").update_card(card.id, name="Refused by Jira")
        world.passes(config, 4)
        with world.store.transaction() as tx:
            (held,) = tx.quarantined(world.group.name, held=True)
        assert len(mailbox.messages) == before + 1
        recipients, mail = mailbox.messages[-1]
        assert recipients == ["eng-leads@corp.example"]
        assert mail["Subject"] == "syncd, engineering: an item is quarantined"
        body = text_of(mail)
        assert f"is quarantined after 3 failed passes: jira: {key}: Injected fault" in body
        assert f"item: {PUBLIC}/ui/items/{held.sync_id}" in body

    def test_a_mass_change_hold_is_one_digest_for_the_source_and_one_message_per_endpoint(
        self, world: World, receiver: HttpReceiver
    ) -> None:
        """Eli archives 24 cards: the guards held at Engineering and Marketing reach Sales (whose archives they
        are) as one digest listing both with their pages, and Engineering as one message about its own."""
        paths = {name: unique_path(receiver, name) for name in ("sales", "engineering")}
        config = world.notify({name: [(receiver.url(path), "events: [guard_hold]")] for name, path in paths.items()})
        run(world.group, world.connectors, world.store)
        assert run(world.group, world.connectors, world.store) == 0
        with world.store.transaction() as tx:
            refs = [link.ref for link in tx.endpoint_links(endpoint_key(world.group.name, "sales"))]
        eli = world.sandbox.trello.act_as("eli@corp.example")
        for ref in refs[:24]:
            eli.archive(ref)
        world.passes(config, 2)  # the guards still wait at the second pass: not notified again
        with world.store.transaction() as tx:
            guards = {guard.endpoint: guard for guard in stored.active(tx)}
        assert sorted(guards) == ["engineering", "marketing"]
        (digest,) = receiver.at(paths["sales"])
        assert digest["title"] == "syncd, sales: 2 things wait for a person"
        for guard in guards.values():
            assert f"decide: {PUBLIC}/ui/guards/{guard.id}" in digest["message"]
        assert digest["message"].count("- 24 items of group launch-requests held") == 2
        (own,) = receiver.at(paths["engineering"])
        assert own["title"] == "syncd, engineering: a mass change is held"
        assert f"{PUBLIC}/ui/guards/{guards['engineering'].id}" in own["message"]
        assert guards["marketing"].id not in own["message"]

    def test_an_endpoint_failing_longer_than_a_targets_threshold_is_sent_once(
        self, world: World, receiver: HttpReceiver
    ) -> None:
        """Jira refuses syncd's token: a target with a 0.5 s threshold hears of it once, at the first pass after
        0.5 s; a target with an hour's threshold hears nothing; later passes while it fails send nothing more."""
        quick, patient = unique_path(receiver, "quick"), unique_path(receiver, "patient")
        config = world.notify(
            {
                "engineering": [
                    (receiver.url(quick), "events: [endpoint_failing], failing_after_s: 0.5"),
                    (receiver.url(patient), "failing_after_s: 3600"),
                ]
            }
        )
        run(world.group, world.connectors, world.store)
        world.sandbox.jira.faults.add(FaultRule(kind="status", status=401))
        world.passes(config, 1)
        assert receiver.at(quick) == []  # failing, but not for 0.5 s yet
        for _ in range(2):
            time.sleep(0.6)
            world.passes(config, 1)
        (sent,) = receiver.at(quick)
        assert sent["title"] == "syncd, engineering: a tool keeps failing"
        assert "engineering's tool cannot be read in group launch-requests since" in sent["message"]
        assert "AuthFailed" in sent["message"]
        assert NO_LINK not in sent["message"]  # nothing to link: no page is about an endpoint
        assert receiver.at(patient) == []


class TestMessages:
    def test_without_public_url_a_message_says_it_has_no_link(self) -> None:
        """No public_url: the text says why there is no link instead of a broken one."""
        links = [["item", "/ui/items/S1"]]
        row = Queued("1", "sales/1", "sales", "quarantined", "an item", links, datetime.now(UTC), 0)
        title, body = message("sales", [row], None)
        assert title == "syncd, sales: an item is quarantined"
        assert body == f"an item\n{NO_LINK}"
        assert message("sales", [row], "https://s.example/")[1] == "an item\nitem: https://s.example/ui/items/S1"


class TestConfiguration:
    def test_a_url_apprise_cannot_send_to_is_refused_at_its_line_without_quoting_it(
        self, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A typo in the URL's scheme fails the start (file:line, where the URL came from), never echoing it."""
        config = configure(
            environment,
            {"sales": "  - url: {env: SYNCD_NOTIFY_SALES}\n"},
            urls={"SYNCD_NOTIFY_SALES": "slak://T0000000/B00000000/secret-webhook-token-42"},
            monkeypatch=monkeypatch,
        )
        with pytest.raises(ConfigError) as raised:
            targets(config)
        (error,) = raised.value.errors
        assert str(error).startswith(f"{Path(environment['CONFIG_DIR']) / 'departments' / 'sales.yaml'}:")
        assert isinstance(error, FileError)
        assert error.line is not None
        assert "notify target sales/1: the URL in $SYNCD_NOTIFY_SALES is not one Apprise can send to" in str(error)
        assert "secret-webhook-token" not in str(error)
        checked = CliRunner().invoke(
            app,
            ["check", "--online", "--config", environment["CONFIG_DIR"], "--mappings", str(ROOT / "mappings")],
            env={**environment, "SYNCD_NOTIFY_SALES": "slak://T0000000/B00000000/secret-webhook-token-42"},
        )
        assert checked.exit_code == 2
        assert "notify target sales/1" in checked.output
        assert "secret-webhook-token" not in checked.output

    def test_an_apprise_urls_tokens_are_masked_and_peoples_addresses_are_not(self) -> None:
        """Pieces of a Slack URL or an SMTP password quoted in an error are masked; e-mail addresses stay readable."""
        register_secrets("slack://T0AAAA11112222/B0BBBB22223333/Xyz0123456789slackpart")
        assert redact("refused B0BBBB22223333 and Xyz0123456789slackpart") == "refused *** and ***"
        register_secrets(
            "mailtos://mailer-user:pw-9f8e7d6c5b4a@smtp.corp.example?from=notify-from@corp.example"
            "&to=leads-team@corp.example"
        )
        said = "535 auth failed for mailer-user (pw-9f8e7d6c5b4a) sending to leads-team@corp.example"
        assert redact(said) == "535 auth failed for mailer-user (***) sending to leads-team@corp.example"

    @pytest.mark.parametrize(
        ("section", "said"),
        [
            ("  - url: json://127.0.0.1/hook\n", "write where the credential comes from"),
            ("  - {url: {env: X_URL}, events: [held_conflict, held_conflict]}\n", "listed twice"),
            ("  - {url: {env: X_URL}, events: [deleted]}\n", "held_conflict"),
            ("  - {url: {env: X_URL}, failing_after_s: -1}\n", "greater than or equal to 0"),
            ("  - {url: {env: X_URL}}\n  - {url: {env: Y_URL}, name: '1'}\n", "the same name"),
        ],
    )
    def test_a_wrong_notify_section_is_reported_at_its_line(
        self, environment: dict[str, str], section: str, said: str
    ) -> None:
        """Written URLs, repeated or unknown kinds, negative thresholds and clashing names are refused on load."""
        with pytest.raises(ConfigError) as raised:
            configure(environment, {"marketing": section})
        assert "marketing.yaml:" in str(raised.value)
        assert said in str(raised.value)
