"""The web page in headless Chromium, served by `syncd run` against the sandbox: sign in, filter the audit log,
open an item's timeline, resolve a held conflict and see the next pass apply it, retry a quarantined item; a user
without the decide permission cannot, and a form without its CSRF token is refused.

Debian's ``chromium`` and ``chromium-driver`` (/usr/bin); nothing is downloaded. Without them the tests skip,
except in CI (``CI=1``), where they fail: `.ci/run` installs them. With ``SYNCD_SCREENSHOTS=DIR`` the main pages
are saved there as PNGs (docs/images/ holds the committed ones).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox import scenario
from sandbox.org import Sandbox
from syncd.audit import query
from syncd.store import Store
from syncd.ui.review import departments_of
from tests.oidc_provider import OidcProvider
from tests.syncd_env import ROOT, SYNCD

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
GROUP = "launch-requests"
TOKENS = {"lead@corp.example": "lead-browser-token-51c0", "rita@corp.example": "rita-browser-token-9e2a"}
"""The lead reads and decides every department; Rita reads Sales only."""
OIDC_CLIENT = ("syncd-browser", "browser-oidc-client-secret-2b7e")

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    if os.environ.get("CI") == "1":
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are required in CI: apt-get install chromium chromium-driver")
    pytest.skip(
        "headless Chromium is not installed (apt-get install chromium chromium-driver)", allow_module_level=True
    )

from selenium import webdriver  # noqa: E402 - only once the browser is known to be there
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy (and return it); fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = condition()
        except (NoSuchElementException, StaleElementReferenceException):  # not there yet, or the page just left
            found = None
        except WebDriverException as error:
            # ChromeDriver's word for an element whose page was replaced between finding and reading it (seen in
            # CI after a form's click): the page just left, as above.
            if "does not belong to the document" not in str(error):
                raise
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class World:
    """The sandbox, `syncd run` serving the page, its store, and the subject's refs."""

    sandbox: Sandbox
    url: str
    store: Store
    refs: scenario.Refs
    subject: str


def _config(root: Path, sandbox: Sandbox, issuer: str) -> Path:
    config = root / "config"
    (config / "departments").mkdir(parents=True)
    urls = {"engineering": sandbox.jira.url, "sales": sandbox.trello.url, "marketing": sandbox.asana.url}
    for name, url in urls.items():
        text = (ROOT / "config" / "departments" / f"{name}.yaml").read_text()
        lines = [f"  base_url: {url}" if line.strip().startswith("base_url:") else line for line in text.splitlines()]
        (config / "departments" / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    for name, token in TOKENS.items():
        (root / f"{name}.token").write_text(token)
    users = [("lead@corp.example", "read: all, decide: all"), ("rita@corp.example", "read: [sales]")]
    listed = "".join(f"    - {{name: {who}, token: {{file: {root / who}.token}}, {can}}}\n" for who, can in users)
    (config / "syncd.yaml").write_text(
        f"store: sqlite:///{root / 'syncd.db'}\nlisten: 127.0.0.1:0\npoll_interval_s: 0.5\n"
        f"web:\n  session_secret: {{env: SYNCD_WEB_SESSION_SECRET}}\n  users:\n{listed}"
        f"  oidc:\n    issuer: {issuer}\n    label: Corp SSO\n    client_id: {OIDC_CLIENT[0]}\n"
        "    client_secret: {env: SYNCD_OIDC_CLIENT_SECRET}\n    read: {all: [auditors]}\n"
        "    decide: {engineering: [eng-leads]}\n"
    )
    return config


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    """The OIDC provider, named ``localhost``: another site than the page on 127.0.0.1, as a real one is."""
    emulated = OidcProvider(*OIDC_CLIENT, host="localhost", page=True)
    emulated.start()
    yield emulated
    emulated.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, provider: OidcProvider) -> Iterator[World]:
    """`syncd run` with the shipped mappings against a fresh sandbox, once the subject is mirrored everywhere."""
    root = tmp_path_factory.mktemp("browser")
    with Sandbox() as sandbox:
        for emulator in sandbox.emulators:
            emulator.rate_limits_enabled = False
        config = _config(root, sandbox, provider.issuer)
        credentials = sandbox.credentials()
        env = {key: value for key, value in os.environ.items() if not key.startswith("SYNCD_")}
        env |= {
            "SYNCD_JIRA_TOKEN": credentials["jira"]["token"],
            "SYNCD_TRELLO_KEY": credentials["trello"]["key"],
            "SYNCD_TRELLO_TOKEN": credentials["trello"]["token"],
            "SYNCD_ASANA_TOKEN": credentials["asana"]["token"],
            "SYNCD_WEB_SESSION_SECRET": "browser-test-session-secret-" + "x" * 16,
            "SYNCD_OIDC_CLIENT_SECRET": OIDC_CLIENT[1],
        }
        command = [str(SYNCD), "run", "--config", str(config), "--mappings", str(ROOT / "mappings")]
        with (
            (root / "daemon.log").open("w") as log,
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log, text=True) as daemon,
        ):
            try:
                assert daemon.stdout is not None
                url = json.loads(daemon.stdout.readline())["listen"]
                store = Store(f"sqlite:///{root / 'syncd.db'}")
                refs = wait_for(lambda: _mirrored(sandbox), 90, "the first pass to mirror the subject")
                subject = wait_for(lambda: _linked(store, refs), 30, "the subject's links to be committed")
                wait_for(lambda: _ready(url), 90, "the first full pass to finish (/readyz 200)")
                yield World(sandbox, url, store, refs, subject)
                store.close()
            finally:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(timeout=60)


def _mirrored(sandbox: Sandbox) -> scenario.Refs | None:
    with contextlib.suppress(StopIteration):
        return scenario.find(sandbox)
    return None


def _ready(url: str) -> bool:
    """The daemon's every endpoint polled successfully: the first pass is over, the audit log holds still."""
    try:
        return requests.get(f"{url}/readyz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _linked(store: Store, refs: scenario.Refs) -> str | None:
    with store.transaction() as tx:
        link = tx.find_link(f"{GROUP}/engineering", refs.jira)
        if link is None or len(tx.links(link.sync_id)) < 3:
            return None
        return link.sync_id


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Headless Chromium through chromedriver, both Debian's."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    # A form's answer may still be loading when click() returns (seen on a loaded CI machine): a lookup waits for
    # its element up to 5 s, where the page it expects has not come yet.
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(browser: WebDriver, name: str) -> None:
    """Save the page as ``$SYNCD_SCREENSHOTS/<name>.png`` when asked to (the docs' images)."""
    folder = os.environ.get("SYNCD_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1400, max(700, min(int(height) + 40, 1400)))
        browser.save_screenshot(str(Path(folder) / f"{name}.png"))
        browser.set_window_size(1400, 1000)


def sign_in(browser: WebDriver, world: World, name: str) -> None:
    """Sign out whoever is signed in, then sign in as ``name`` through the form."""
    browser.delete_all_cookies()
    browser.get(f"{world.url}/ui/")
    assert urlsplit(browser.current_url).path == "/ui/sign-in"
    browser.find_element(By.ID, "token").send_keys(TOKENS[name])
    browser.find_element(By.CSS_SELECTOR, "form.sign-in button").click()
    wait_for(lambda: name in browser.find_element(By.CSS_SELECTOR, "header .who").text, 10, f"{name} signed in")


def hold_due_conflict(world: World) -> str:
    """Sales and Marketing promise different dates in one pass's window (the manual rule's pair of edits)."""
    pair = [edit for edit in scenario.EDITS if edit.rule == "manual"]
    with world.sandbox.trello.lock, world.sandbox.asana.lock:  # syncd's next pass sees both edits
        for edit in pair:
            world.sandbox.clock.advance(60)
            edit.apply(world.sandbox, world.refs)

    def held() -> str | None:
        with world.store.transaction() as tx:
            found = tx.conflicts(sync_id=world.subject, states=("open",))
        return next((conflict.id for conflict in found if conflict.field == "due"), None)

    conflict_id: str = wait_for(held, 60, "the manual rule to hold the due conflict")
    return conflict_id


class TestInTheBrowser:
    """One story, in order: the daemon keeps running between the steps."""

    def test_sign_in(self, browser: WebDriver, world: World) -> None:
        """The page asks for a token; a wrong one is refused; the lead's signs in and the queues show."""
        browser.delete_all_cookies()
        browser.get(f"{world.url}/ui/audit")
        assert urlsplit(browser.current_url).path == "/ui/sign-in"
        browser.find_element(By.ID, "token").send_keys("not-a-token")
        browser.find_element(By.CSS_SELECTOR, "form.sign-in button").click()
        assert browser.find_element(By.ID, "refused").is_displayed()
        sign_in(browser, world, "lead@corp.example")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Waiting for a person"

    def test_filter_the_audit_log(self, browser: WebDriver, world: World) -> None:
        """Filtering on kind=create and department=sales lists exactly the creates at Sales, newest first."""
        browser.get(f"{world.url}/ui/audit")
        browser.find_element(By.NAME, "kind").send_keys("create")
        browser.find_element(By.CSS_SELECTOR, "select[name=department] option[value=sales]").click()
        browser.find_element(By.ID, "filter").click()
        wait_for(lambda: "kind=create" in browser.current_url, 10, "the filtered page")
        assert parse_qs(urlsplit(browser.current_url).query)["department"] == ["sales"]
        rows = browser.find_elements(By.CSS_SELECTOR, "tr.event")
        expected = [each.seq for each in query(world.store, kind="create", department="sales")][::-1][:50]
        assert expected
        assert [int(row.get_attribute("data-seq") or 0) for row in rows] == expected
        assert all("kind-create" in (row.get_attribute("class") or "") for row in rows)
        screenshot(browser, "audit")

    def test_open_an_items_timeline(self, browser: WebDriver, world: World) -> None:
        """From the audit log to the subject's page: its refs in the three tools, its values, its writes."""
        browser.get(f"{world.url}/ui/audit?item={world.subject}")
        browser.find_element(By.CSS_SELECTOR, f"a[href$='/items/{world.subject}']").click()
        wait_for(lambda: world.subject in browser.find_element(By.TAG_NAME, "h1").text, 10, "the item's page")
        header = browser.find_element(By.CSS_SELECTOR, "#values tr").text
        for ref in (world.refs.jira, world.refs.trello, world.refs.asana):
            assert ref in header
        links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#values th a")]
        assert any(str(link).endswith(f"/browse/{world.refs.jira}") for link in links)
        assert scenario.SUBJECT in browser.find_element(By.ID, "values").text
        rows = browser.find_elements(By.CSS_SELECTOR, "tr.event")
        assert {int(row.get_attribute("data-seq") or 0) for row in rows} == {
            each.seq for each in query(world.store, sync_id=world.subject)
        }

    def test_a_form_without_its_csrf_token_is_refused(self, browser: WebDriver, world: World) -> None:
        """The chain's verify form with its token removed answers 403 and verifies nothing."""
        browser.get(f"{world.url}/ui/chain")
        browser.execute_script("document.querySelector('form[action$=\"/chain/verify\"] input[name=csrf]').remove()")
        browser.find_element(By.ID, "verify").click()
        # The click navigates: wait for the answer's page, not the form's (its h1 is found at once).
        wait_for(lambda: "403" in browser.find_element(By.TAG_NAME, "h1").text, 10, "the refusal")
        assert "security token" in browser.find_element(By.ID, "error").text
        browser.get(f"{world.url}/ui/chain")
        assert "Not verified" in browser.find_element(By.ID, "verdict").text

    def test_a_user_without_decide_permission_cannot_resolve(self, browser: WebDriver, world: World) -> None:
        """Rita (reads Sales) sees the held conflict but no button; a form built by hand with her token is 403."""
        conflict_id = hold_due_conflict(world)
        sign_in(browser, world, "rita@corp.example")
        row = browser.find_element(By.CSS_SELECTOR, f"tr.conflict[data-id='{conflict_id}']")
        assert row.find_elements(By.TAG_NAME, "button") == []
        assert "you may not decide" in row.text
        browser.execute_script(
            """const form = document.createElement('form');
            form.method = 'post'; form.action = arguments[0];
            for (const [name, value] of [['take', 'sales'], ['csrf', arguments[1]]]) {
              const input = document.createElement('input'); input.type = 'hidden';
              input.name = name; input.value = value; form.appendChild(input);
            }
            document.body.appendChild(form); form.submit();""",
            f"/ui/conflicts/{conflict_id}/resolve",
            browser.find_element(By.CSS_SELECTOR, "header input[name=csrf]").get_attribute("value"),
        )
        wait_for(lambda: "403" in browser.find_element(By.TAG_NAME, "h1").text, 10, "the refusal")
        with world.store.transaction() as tx:
            conflict = tx.conflict(conflict_id)
        assert conflict is not None
        assert conflict.state == "open"

    def test_resolve_a_held_conflict_and_the_next_pass_applies_it(self, browser: WebDriver, world: World) -> None:
        """The lead takes Sales' date: audited with the lead's name, and every tool ends with 1 February."""
        sign_in(browser, world, "lead@corp.example")
        with world.store.transaction() as tx:
            (conflict,) = [each for each in tx.conflicts(sync_id=world.subject) if each.field == "due"]
        screenshot(browser, "queues")
        row = browser.find_element(By.CSS_SELECTOR, f"tr.conflict[data-id='{conflict.id}']")
        row.find_element(By.CSS_SELECTOR, "button[value=sales]").click()
        wait_for(lambda: "takes sales" in browser.page_source, 15, "the decision's confirmation")
        decision = query(world.store, kind="decision", sync_id=world.subject)[-1].event
        assert (decision.person, decision.origin, decision.field) == ("lead@corp.example", "sales", "due")

        def applied() -> bool:
            with world.store.transaction() as tx:
                closed = tx.conflict(conflict.id)
            issue = world.sandbox.jira.state.issues[world.refs.jira]
            task = world.sandbox.asana.state.tasks[world.refs.asana]
            due = (str(issue.duedate), str(task.due_on))
            return closed is not None and closed.state == "closed" and due == ("2027-02-01", "2027-02-01")

        wait_for(applied, 60, "the next pass to write Sales' date to Jira and Asana and close the conflict")
        browser.get(f"{world.url}/ui/items/{world.subject}")
        assert "decided" in browser.find_element(By.CSS_SELECTOR, "tr.kind-decision").text
        screenshot(browser, "item")

    def test_retry_a_quarantined_item(self, browser: WebDriver, world: World) -> None:
        """An item held after three failures shows a Retry button; retrying releases it, audited with the lead."""
        with world.store.transaction() as tx:
            other = next(
                link.sync_id for link in tx.endpoint_links(f"{GROUP}/engineering") if link.sync_id != world.subject
            )
            for _ in range(3):
                tx.strike(other, GROUP, "ENG: 400 priority 'Urgent' is not allowed", counts=True, limit=3)
        browser.get(f"{world.url}/ui/")
        row = browser.find_element(By.CSS_SELECTOR, f"tr.quarantined[data-id='{other}']")
        row.find_element(By.TAG_NAME, "button").click()
        wait_for(lambda: "tried again" in browser.page_source, 15, "the retry's confirmation")
        assert browser.find_elements(By.CSS_SELECTOR, f"tr.quarantined[data-id='{other}']") == []
        release = query(world.store, kind="release", sync_id=other)[-1].event
        assert release.person == "lead@corp.example"
        with world.store.transaction() as tx:
            entry = tx.quarantine_entry(other)
        assert entry is None or not entry.held

    def test_the_chain_page(self, browser: WebDriver, world: World) -> None:
        """Verifying from the page shows the verdict over every event and the last checkpoint."""
        browser.get(f"{world.url}/ui/chain")
        browser.find_element(By.ID, "verify").click()

        def verdict() -> bool:
            browser.get(f"{world.url}/ui/chain")
            return "Chain ok" in browser.find_element(By.ID, "verdict").text

        wait_for(verdict, 30, "the chain's verdict")
        screenshot(browser, "chain")

    def test_sign_in_through_the_oidc_provider(self, browser: WebDriver, world: World) -> None:
        """From the audit log's address, 'Sign in with Corp SSO' goes to the provider (another site) and back:
        the person lands signed in on the audit log (the Strict session cookie is sent although the way back
        started on the provider's site), which shows them what their group may read: Engineering's."""
        browser.delete_all_cookies()
        browser.get(f"{world.url}/ui/audit")
        assert urlsplit(browser.current_url).path == "/ui/sign-in"
        browser.find_element(By.ID, "oidc").click()
        wait_for(lambda: browser.find_element(By.ID, "approve"), 15, "the provider's page")
        assert urlsplit(browser.current_url).hostname == "localhost"
        browser.find_element(By.ID, "approve").click()  # the way back starts on the provider's site
        wait_for(lambda: urlsplit(browser.current_url).path == "/ui/audit", 15, "the audit log after signing in")
        assert browser.find_element(By.CSS_SELECTOR, "header .who span").text == "Ana Lead"
        shown = {int(row.get_attribute("data-seq") or 0) for row in browser.find_elements(By.CSS_SELECTOR, "tr.event")}
        engineering = [each.seq for each in query(world.store) if "engineering" in departments_of(each.event)]
        assert shown
        assert shown <= set(engineering)


def test_the_browser_is_debians(tmp_path: Path) -> None:
    """The tests drive the system's Chromium, never a downloaded one."""
    assert shutil.which("chromium") == str(CHROMIUM) or CHROMIUM.exists()
    version = subprocess.run([str(CHROMEDRIVER), "--version"], capture_output=True, text=True, check=True, timeout=30)
    assert "ChromeDriver" in version.stdout
