"""OIDC sign-in to the web page over real HTTP on 127.0.0.1: the page, the local provider of tests/oidc_provider.py
and a real SQLite store. Groups grant read and decide; replays and forged sessions are refused; decisions are
audited under the person's e-mail; refusals are shown and logged without a code or token."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from itsdangerous import URLSafeTimedSerializer
from structlog.testing import capture_logs

from connectors.factory import CAPABILITIES
from syncd.audit import query
from syncd.config import load_config
from syncd.daemon import web as http
from syncd.store import Store
from syncd.ui import Mounted, Ui
from syncd.ui.auth import Sessions, TokenSignIn
from tests.oidc_provider import OidcProvider
from tests.syncd_env import ROOT
from tests.test_web import C1, C2, _state

CLIENT_ID = "syncd-web"
CLIENT_SECRET = "web-oidc-client-secret-5d1e"
SESSION_SECRET = "oidc-session-secret-" + "q" * 40
OPERATOR_TOKEN = "ops-operator-token-8a2f11"


@dataclass(frozen=True)
class Site:
    """The page served over a real store, signing in through the provider (and one operator token)."""

    url: str
    store: Store
    config_dir: Path
    provider: OidcProvider


def _config(root: Path, name: str, web: str, *, public_url: str | None = None) -> Path:
    config = root / name
    (config / "departments").mkdir(parents=True)
    for path in (ROOT / "config" / "departments").glob("*.yaml"):
        (config / "departments" / path.name).write_text(path.read_text())
    public = f"public_url: {public_url}\n" if public_url else ""
    (config / "syncd.yaml").write_text(
        f"store: sqlite:///{root / 'syncd.db'}\nlisten: 127.0.0.1:0\n{public}web:\n"
        f"  session_secret: {{file: {root / 'session'}}}\n{web}"
    )
    return config


def _oidc(root: Path, issuer: str) -> str:
    return (
        f"  oidc:\n    issuer: {issuer}\n    label: Corp SSO\n    client_id: {CLIENT_ID}\n"
        f"    client_secret: {{file: {root / 'client-secret'}}}\n    discovery_cache_s: 0\n"
        "    read: {all: [auditors], sales: [sales-team]}\n    decide: {engineering: [eng-leads]}\n"
    )


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    emulated = OidcProvider(CLIENT_ID, CLIENT_SECRET)
    emulated.start()
    yield emulated
    emulated.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, provider: OidcProvider) -> Iterator[Site]:
    """The daemon's waitress server with the page; no public_url, so the callback is this loopback address."""
    root = tmp_path_factory.mktemp("web-oidc")
    (root / "session").write_text(SESSION_SECRET)
    (root / "client-secret").write_text(CLIENT_SECRET)
    (root / "ops.token").write_text(OPERATOR_TOKEN)
    users = f"  users:\n    - {{name: ops@corp.example, token: {{file: {root / 'ops.token'}}}, read: all}}\n"
    config = _config(root, "config", users + _oidc(root, provider.issuer))
    store = Store(f"sqlite:///{root / 'syncd.db'}")
    store.migrate()
    _state(store)
    ui = Ui(load_config(config), store, CAPABILITIES)
    server, url = http.serve("127.0.0.1:0", Mounted(ui))
    try:
        yield Site(url, store, config, provider)
    finally:
        http.stop(server)
        ui.close()
        store.close()


@pytest.fixture
def person(site: Site) -> dict[str, Any]:
    """Who the provider signs in next (Ana, an Engineering lead, unless a test changes her groups)."""
    site.provider.reset()
    return site.provider.user


@dataclass
class Flow:
    """One browser's way through a sign-in: the provider's redirect back, and the pending cookie it came with."""

    browser: requests.Session
    callback: str
    pending: str
    answer: requests.Response


def through_the_provider(site: Site, target: str = "/ui/") -> Flow:
    """Click 'Sign in with Corp SSO', let the provider sign its user in, and come back to the callback."""
    browser = requests.Session()
    page = browser.get(f"{site.url}/ui/sign-in", params={"next": target}, timeout=10).text
    link = re.search(r'id="oidc" href="([^"]+)"', page)
    assert link is not None
    start = browser.get(site.url + link.group(1).replace("&amp;", "&"), allow_redirects=False, timeout=10)
    assert start.status_code == 303, start.text
    at_provider = browser.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    callback = at_provider.headers["Location"]
    pending = browser.cookies["syncd_oidc"]
    answer = browser.get(callback, allow_redirects=False, timeout=10)
    return Flow(browser, callback, pending, answer)


def signed_in(site: Site) -> requests.Session:
    flow = through_the_provider(site)
    assert flow.answer.status_code == 200, flow.answer.text
    return flow.browser


def cookie(answer: requests.Response, name: str) -> tuple[str, set[str]]:
    """The value a response set for cookie ``name`` and its attributes (``HttpOnly``, ``Path=/ui``, ...)."""
    for header in answer.raw.headers.getlist("Set-Cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        if first.startswith(f"{name}="):
            return first.partition("=")[2], {
                attribute for attribute in attributes if not attribute.startswith("Expires")
            }
    raise AssertionError(f"no {name} cookie set")


def csrf(browser: requests.Session, site: Site) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', browser.get(f"{site.url}/ui/", timeout=10).text)
    assert found is not None
    return found.group(1)


class TestSignIn:
    def test_the_sign_in_page_offers_the_provider_and_the_token_form(self, site: Site) -> None:
        """With both methods configured, the page links to the provider by its label and keeps the token form."""
        page = requests.get(f"{site.url}/ui/sign-in", timeout=10).text
        assert ">Sign in with Corp SSO</a>" in page
        assert 'id="token"' in page

    def test_a_full_sign_in_lands_on_the_page_asked_for(self, site: Site, person: dict[str, Any]) -> None:
        """From /ui/audit through the provider and back: a Strict session, the pending cookie dropped, the
        audit log shown under the person's name, and the sign-in logged with their e-mail and no secret."""
        asked = requests.get(f"{site.url}/ui/audit", allow_redirects=False, timeout=10)
        target = parse_qs(urlsplit(asked.headers["Location"]).query)["next"][0]
        assert target == "/ui/audit"
        with capture_logs() as logs:
            flow = through_the_provider(site, target)
        answer = flow.answer
        assert answer.status_code == 200, answer.text
        assert '<meta http-equiv="refresh" content="0; url=/ui/audit">' in answer.text
        assert "Signed in as Ana Lead (ana@corp.example)" in answer.text
        session, attributes = cookie(answer, "syncd_session")
        assert session
        assert attributes == {"HttpOnly", "Max-Age=28800", "Path=/ui", "SameSite=Strict"}
        assert cookie(answer, "syncd_oidc") == ("", {"HttpOnly", "Max-Age=0", "Path=/ui/auth/"})
        assert "syncd_oidc" not in flow.browser.cookies
        page = flow.browser.get(f"{site.url}/ui/audit", allow_redirects=False, timeout=10)
        assert page.status_code == 200
        assert "<span>Ana Lead</span>" in page.text
        shown = {int(seq) for seq in re.findall(r'data-seq="(\d+)"', page.text)}
        assert shown
        assert all("engineering" in each.event.refs or each.event.endpoint == "engineering"
                   or "engineering" in (each.event.origin or "") for each in query(site.store)
                   if each.seq in shown)  # fmt: skip
        code = parse_qs(urlsplit(flow.callback).query)["code"][0]
        assert [entry["person"] for entry in logs if entry["event"] == "web.sign_in"] == ["ana@corp.example"]
        for text in (json.dumps(logs), answer.text, page.text):
            for secret in (code, CLIENT_SECRET, flow.pending, SESSION_SECRET):
                assert secret not in text

    def test_the_pending_cookie_comes_back_from_another_site(self, site: Site) -> None:
        """The sign-in in progress is Lax (it must return with the provider's redirect), HttpOnly, 10 minutes."""
        start = requests.get(f"{site.url}/ui/auth/oidc", allow_redirects=False, timeout=10)
        value, attributes = cookie(start, "syncd_oidc")
        assert value
        assert attributes == {"HttpOnly", "Max-Age=600", "Path=/ui/auth/", "SameSite=Lax"}
        sent = parse_qs(urlsplit(start.headers["Location"]).query)
        assert sent["redirect_uri"] == [f"{site.url}/ui/auth/callback"]

    def test_an_operator_token_still_signs_in_beside_the_provider(self, site: Site) -> None:
        """Token users keep working when OIDC is configured."""
        browser = requests.Session()
        answer = browser.post(
            f"{site.url}/ui/sign-in", data={"token": OPERATOR_TOKEN}, allow_redirects=False, timeout=10
        )
        assert answer.status_code == 303
        assert "<span>ops@corp.example</span>" in browser.get(f"{site.url}/ui/", timeout=10).text


class TestPermissions:
    def test_a_reader_sees_their_department_and_may_not_decide(self, site: Site, person: dict[str, Any]) -> None:
        """Sales' readers see the conflict Sales is part of, with no button; posting a decision anyway is 403."""
        person["groups"] = ["sales-team"]
        browser = signed_in(site)
        home = browser.get(f"{site.url}/ui/", timeout=10).text
        assert C2 in home
        assert f"/conflicts/{C2}/resolve" not in home
        answer = browser.post(
            f"{site.url}/ui/conflicts/{C2}/resolve", data={"take": "sales", "csrf": csrf(browser, site)}, timeout=10
        )
        assert answer.status_code == 403
        with site.store.transaction() as tx:
            conflict = tx.conflict(C2)
        assert conflict is not None
        assert conflict.state == "open"
        lines = browser.get(f"{site.url}/ui/audit.jsonl", timeout=10).text.splitlines()
        assert lines
        for line in lines:
            event = json.loads(line)
            assert "sales" in {event["endpoint"], *(event["origin"] or "").split(","), *event["refs"]}

    def test_a_decision_is_audited_under_the_persons_email(self, site: Site, person: dict[str, Any]) -> None:
        """An Engineering lead resolves Engineering's conflict: the decision names ana@corp.example, not 'Ana
        Lead', as every person in the audit log is named."""
        browser = signed_in(site)
        answer = browser.post(
            f"{site.url}/ui/conflicts/{C1}/resolve", data={"take": "sales", "csrf": csrf(browser, site)}, timeout=10
        )
        assert answer.status_code == 200
        with site.store.transaction() as tx:
            conflict = tx.conflict(C1)
        assert conflict is not None
        assert (conflict.state, conflict.resolved_by) == ("decided", "ana@corp.example")
        decision = query(site.store, kind="decision", sync_id="S1")[-1].event
        assert decision.person == "ana@corp.example"

    def test_a_person_whose_groups_grant_nothing_is_refused_with_why(self, site: Site, person: dict[str, Any]) -> None:
        """Signed in at the provider but in no granted group: a 403 page naming the groups, no session, logged."""
        person["groups"] = ["interns"]
        with capture_logs() as logs:
            flow = through_the_provider(site)
        assert flow.answer.status_code == 403
        assert "Ana Lead may read no department here" in flow.answer.text
        assert "Sign in again" in flow.answer.text
        assert "syncd_session" not in flow.browser.cookies
        (refused,) = [entry for entry in logs if entry["event"] == "web.sign_in.refused"]
        assert "interns" in refused["reason"]
        code = parse_qs(urlsplit(flow.callback).query)["code"][0]
        assert code not in json.dumps(logs)


class TestRefused:
    def test_a_replayed_callback_is_refused_before_the_provider_is_asked(
        self, site: Site, person: dict[str, Any]
    ) -> None:
        """After a sign-in, its callback again (with the browser's cookies, or with the pending cookie it had)
        is refused at once: the state was popped, and the code is not sent to the provider again."""
        flow = through_the_provider(site)
        assert flow.answer.status_code == 200
        exchanges = site.provider.counters.token
        again = flow.browser.get(flow.callback, allow_redirects=False, timeout=10)
        assert again.status_code == 403
        assert "no sign-in was started in this browser" in again.text
        replayed = requests.get(flow.callback, cookies={"syncd_oidc": flow.pending}, allow_redirects=False, timeout=10)
        assert replayed.status_code == 403
        assert "finished already" in replayed.text
        assert "syncd_session" not in replayed.cookies
        assert site.provider.counters.token == exchanges

    def test_a_callback_with_another_sign_ins_state_is_refused(self, site: Site, person: dict[str, Any]) -> None:
        """A callback carrying the state of someone else's sign-in (login CSRF) is refused; nobody signs in."""
        victim = requests.Session()
        started = victim.get(f"{site.url}/ui/auth/oidc", allow_redirects=False, timeout=10)
        assert started.status_code == 303
        attacker = through_the_provider(site)  # the attacker's own code and state ...
        assert attacker.answer.status_code == 200
        planted = victim.get(attacker.callback, allow_redirects=False, timeout=10)  # ... planted on the victim
        assert planted.status_code == 403
        assert "state mismatch" in planted.text
        assert "syncd_session" not in victim.cookies

    def test_a_forged_session_is_refused(self, site: Site, person: dict[str, Any]) -> None:
        """A reader's OIDC session edited to decide everywhere, or one signed with another secret, is no session."""
        person["groups"] = ["sales-team"]
        value = signed_in(site).cookies["syncd_session"]
        claims = URLSafeTimedSerializer(SESSION_SECRET, salt="syncd-ui-session").loads(value)
        _, stamp, signature = value.rsplit(".", 2)  # the payload may be compressed (a leading dot): rebuilt below
        assert claims["via"] == "oidc"
        claims["identity"] |= {"read": "all", "decide": "all"}
        edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        other_key = URLSafeTimedSerializer("another-secret-" + "z" * 40, salt="syncd-ui-session").dumps(claims)
        for forged in (f"{edited}.{stamp}.{signature}", other_key):
            answer = requests.get(
                f"{site.url}/ui/", headers={"Cookie": f"syncd_session={forged}"}, allow_redirects=False, timeout=10
            )
            assert answer.status_code == 302
        assert requests.get(f"{site.url}/ui/", cookies={"syncd_session": value}, timeout=10).status_code == 200

    def test_a_session_of_another_issuer_is_refused(self, site: Site, person: dict[str, Any], tmp_path: Path) -> None:
        """Configured for another provider (or without OIDC) since, the page no longer takes OIDC sessions."""
        value = signed_in(site).cookies["syncd_session"]
        web = load_config(site.config_dir).instance.web
        assert web is not None
        assert web.oidc is not None
        assert Sessions(web, TokenSignIn(web)).read(value) is not None
        moved = web.model_copy(update={"oidc": web.oidc.model_copy(update={"issuer": "https://id.corp.example"})})
        assert Sessions(moved, TokenSignIn(moved)).read(value) is None
        without = web.model_copy(update={"oidc": None})
        assert Sessions(without, TokenSignIn(without)).read(value) is None

    def test_an_unavailable_provider_is_a_page_saying_why(self, site: Site, person: dict[str, Any]) -> None:
        """A discovery document naming another issuer: 502, the message to fix it, logged as an error."""
        site.provider.issuer_named = "https://elsewhere.example/realms/corp"
        with capture_logs() as logs:
            answer = requests.get(f"{site.url}/ui/auth/oidc", allow_redirects=False, timeout=10)
        assert answer.status_code == 502
        assert "names the issuer" in answer.text
        assert "syncd_oidc" not in answer.cookies
        assert [entry["log_level"] for entry in logs if entry["event"] == "web.sign_in.provider_unavailable"] == [
            "error"
        ]

    def test_without_public_url_only_a_loopback_host_is_trusted(self, site: Site) -> None:
        """Asked under another host name, the page cannot know its public address: it says to set public_url."""
        answer = requests.get(
            f"{site.url}/ui/auth/oidc", headers={"Host": "syncd.corp.example"}, allow_redirects=False, timeout=10
        )
        assert answer.status_code == 500
        assert "needs public_url" in answer.text


class TestOidcOnly:
    def test_public_url_names_the_callback_and_no_token_form_is_shown(
        self, tmp_path: Path, provider: OidcProvider
    ) -> None:
        """OIDC alone, behind https://syncd.corp.example: the redirect URI is under it, the cookie is Secure."""
        provider.reset()
        (tmp_path / "session").write_text(SESSION_SECRET)
        (tmp_path / "client-secret").write_text(CLIENT_SECRET)
        config = _config(tmp_path, "config", _oidc(tmp_path, provider.issuer), public_url="https://syncd.corp.example")
        store = Store(f"sqlite:///{tmp_path / 'syncd.db'}")
        store.migrate()
        ui = Ui(load_config(config), store, CAPABILITIES)
        server, url = http.serve("127.0.0.1:0", Mounted(ui))
        try:
            page = requests.get(f"{url}/ui/sign-in", timeout=10).text
            assert "Sign in with Corp SSO" in page
            assert 'id="token"' not in page
            start = requests.get(f"{url}/ui/auth/oidc", allow_redirects=False, timeout=10)
            sent = parse_qs(urlsplit(start.headers["Location"]).query)
            assert sent["redirect_uri"] == ["https://syncd.corp.example/ui/auth/callback"]
            assert "Secure" in cookie(start, "syncd_oidc")[1]
            token_post = requests.post(f"{url}/ui/sign-in", data={"token": OPERATOR_TOKEN}, timeout=10)
            assert token_post.status_code == 401
        finally:
            http.stop(server)
            ui.close()
            store.close()
