"""The web page over real HTTP on 127.0.0.1 against a real SQLite store: sign-in, CSRF, headers, permissions,
filters, decisions audited with the signed-in user's name, and exports equal to `syncd audit`'s."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy.pool import QueuePool
from typer.testing import CliRunner
from werkzeug.test import EnvironBuilder

from connectors.factory import CAPABILITIES
from syncd.audit import AuditEvent, AuditFilter, append, query
from syncd.cli import app
from syncd.config import ConfigError, load_config, schemas
from syncd.daemon import web as http
from syncd.errors import SyncdError
from syncd.store import Store, guards
from syncd.ui import Identity, Mounted, Ui
from syncd.ui.auth import Sessions
from syncd.ui.identity import ALL
from syncd.ui.review import ChainState, audit_page, departments_of, may_read
from tests.syncd_env import ROOT, SYNCD

TOKENS = {
    "ana@corp.example": "ana-secret-token-4f1c9a",
    "rita@corp.example": "rita-secret-token-77d0e2",
    "dave@corp.example": "dave-secret-token-0b93aa",
}
"""Ana reads and decides everything; Rita reads Sales only and decides nothing; Dave reads and decides Engineering."""
SESSION_SECRET = "session-secret-" + "k" * 40
C1, C2 = "01HXAAAA0000000000000000S1", "01HXBBBB0000000000000000S2"
GUARD = "01HXGGGG00000000000000000G"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class Site:
    """The page served from a real store, its configuration and where it answers."""

    url: str
    store: Store
    config_dir: Path


def _state(store: Store) -> None:
    """Items of the launch group as passes leave them, two held conflicts, a quarantined item, a held guard, and
    audit events of each department."""
    with store.transaction() as tx:
        for sync_id in ("S1", "S2", "S3", "S4"):
            tx.new_item(sync_id, "launch")
        for sync_id, endpoint, ref in (
            ("S1", "launch/engineering", "ENG-1"),
            ("S1", "launch/sales", "card-1"),
            ("S1", "launch/marketing", "1201"),
            ("S2", "launch/engineering", "ENG-2"),
            ("S2", "launch/sales", "card-2"),
            ("S3", "launch/engineering", "ENG-3"),
            ("S4", "launch/sales", "card-4"),
        ):
            tx.link(sync_id, endpoint, ref, "v1")
        tx.set_base("S1", {"title": "Launch <b>pricing</b>", "status": "doing"})
        tx.set_behind("S1", {"launch/marketing": {"status": "todo"}})
        tx.hold_conflict(
            C1, sync_id="S1", group="launch", field="status", base_value="todo",
            values={"engineering": "done", "sales": "doing"},
        )  # fmt: skip
        tx.hold_conflict(
            C2, sync_id="S2", group="launch", field="due", base_value=None,
            values={"engineering": "2026-12-01", "sales": "2026-12-09"},
        )  # fmt: skip
        for _ in range(3):
            tx.strike("S3", "launch", "ENG-3: 400 priority 'Urgent' is not allowed", counts=True, limit=3)
        guards.hold(
            tx, GUARD, group="launch", endpoint="sales", linked=1, reason="12 archives at sales in one pass",
            items={"S4": {"what": "archive", "ref": "card-4", "source": "engineering", "title": "Old", "reason": "x"}},
        )  # fmt: skip
        for event in (
            AuditEvent("create", group="launch", sync_id="S1", endpoint="sales", refs={"sales": "card-1"},
                       new={"title": "Launch pricing"}, origin="engineering", person="ana@corp.example"),
            AuditEvent("write", group="launch", sync_id="S1", endpoint="engineering", field="due",
                       new="2026-12-09", origin="sales", person="eli@corp.example"),
            AuditEvent("write", group="launch", sync_id="S1", endpoint="marketing", field="title",
                       new="<script>alert(1)</script>", origin="engineering", person="joe@corp.example"),
            AuditEvent("conflict", group="launch", sync_id="S1", field="status", rule="manual",
                       outcome="held", origin="engineering", loser="doing"),
            AuditEvent("write", group="launch", sync_id="S4", endpoint="sales", field="status",
                       new="doing", origin="sales", person="rita@corp.example"),
            AuditEvent("delete", group="launch", sync_id="S2", endpoint="marketing", refs={"marketing": "1202"},
                       old={"title": "Gone"}, origin="engineering,sales"),
            AuditEvent("unlink", group="launch", sync_id="S3", endpoint="marketing",
                       refs={"marketing": "1203", "sales": "card-3"}),
        ):  # fmt: skip
            append(tx, event)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`syncd web`'s application served by the daemon's waitress server on an ephemeral port, over a real store."""
    root = tmp_path_factory.mktemp("web")
    config = root / "config"
    (config / "departments").mkdir(parents=True)
    for path in (ROOT / "config" / "departments").glob("*.yaml"):
        (config / "departments" / path.name).write_text(path.read_text())
    for name, token in TOKENS.items():
        (root / f"{name}.token").write_text(token + "\n")
    (root / "session").write_text(SESSION_SECRET)
    store_url = f"sqlite:///{root / 'syncd.db'}"
    users = [
        ("ana@corp.example", "read: all, decide: all"),
        ("rita@corp.example", "read: [sales]"),
        ("dave@corp.example", "read: [engineering], decide: [engineering]"),
    ]
    listed = "".join(
        f"    - {{name: {name}, token: {{file: {root / name}.token}}, {rights}}}\n" for name, rights in users
    )
    (config / "syncd.yaml").write_text(
        f"store: {store_url}\nlisten: 127.0.0.1:0\nweb:\n  session_secret: {{file: {root / 'session'}}}\n"
        f"  users:\n{listed}"
    )
    store = Store(store_url)
    store.migrate()
    _state(store)
    ui = Ui(load_config(config), store, CAPABILITIES)
    server, url = http.serve("127.0.0.1:0", Mounted(ui))
    try:
        yield Site(url, store, config)
    finally:
        http.stop(server)
        ui.close()
        store.close()


def signed_in(site: Site, name: str) -> requests.Session:
    """A browser-like session signed in as ``name`` with their token."""
    session = requests.Session()
    answer = session.post(f"{site.url}/ui/sign-in", data={"token": TOKENS[name]}, allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.text
    return session


def csrf(session: requests.Session, site: Site) -> str:
    """The CSRF token the session's pages carry in their forms."""
    page = session.get(f"{site.url}/ui/", timeout=10).text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


class TestSignIn:
    def test_every_page_needs_a_session(self, site: Site) -> None:
        """Pages redirect to the sign-in form, exports too; a POST without a session is 401."""
        for path in ("/ui/", "/ui/audit", "/ui/audit.csv", "/ui/items/S1", "/ui/chain"):
            answer = requests.get(site.url + path, allow_redirects=False, timeout=10)
            assert answer.status_code == 302, path
            assert answer.headers["Location"].startswith("/ui/sign-in")
        refused = requests.post(f"{site.url}/ui/quarantine/S3/retry", data={"csrf": "x"}, timeout=10)
        assert refused.status_code == 401

    def test_a_wrong_token_is_refused_and_sets_no_session(self, site: Site) -> None:
        """A token of no user answers 401 with the form again, and no cookie."""
        answer = requests.post(f"{site.url}/ui/sign-in", data={"token": "ana-secret-token-4f1c9"}, timeout=10)
        assert answer.status_code == 401
        assert "syncd_session" not in answer.cookies
        assert "not one of this page" in answer.text

    def test_the_session_cookie_is_httponly_strict_and_expiring(self, site: Site) -> None:
        """HttpOnly, SameSite=Strict, a Max-Age; it names no token."""
        answer = requests.post(
            f"{site.url}/ui/sign-in", data={"token": TOKENS["ana@corp.example"]}, allow_redirects=False, timeout=10
        )
        cookie = answer.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Max-Age=28800" in cookie
        assert TOKENS["ana@corp.example"] not in cookie

    def test_a_forged_cookie_is_no_session(self, site: Site) -> None:
        """Rita's cookie edited to name Ana (signature kept), or with its signature changed, is no session."""
        import base64  # noqa: PLC0415 - only this test builds a cookie by hand

        value = signed_in(site, "rita@corp.example").cookies["syncd_session"]
        payload, stamp, signature = value.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["user"] = "ana@corp.example"
        edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        # The first character: the last one of unpadded base64 also carries bits the decoder drops, so changing it
        # may leave the signature's bytes as they were (a valid cookie, in 1 of 16 runs).
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        for forged in (f"{edited}.{stamp}.{signature}", f"{payload}.{stamp}.{flipped}", value):
            answer = requests.get(
                f"{site.url}/ui/", headers={"Cookie": f"syncd_session={forged}"}, allow_redirects=False, timeout=10
            )
            assert answer.status_code == (200 if forged == value else 302)

    def test_sign_out_ends_the_session(self, site: Site) -> None:
        """After signing out, the page asks to sign in again."""
        session = signed_in(site, "rita@corp.example")
        token = csrf(session, site)
        assert session.post(f"{site.url}/ui/sign-out", data={"csrf": token}, timeout=10).status_code == 200
        assert session.get(f"{site.url}/ui/", allow_redirects=False, timeout=10).status_code == 302


class TestProtections:
    def test_every_answer_carries_the_security_headers(self, site: Site) -> None:
        """CSP, nosniff, no-referrer on pages, the sign-in form, errors and the stylesheet; pages are not stored."""
        session = signed_in(site, "ana@corp.example")
        for path in ("/ui/", "/ui/audit", "/ui/sign-in", "/ui/items/nope", "/ui/static/ui.css"):
            answer = session.get(site.url + path, timeout=10)
            assert answer.headers["Content-Security-Policy"] == CSP, path
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
            assert answer.headers["Referrer-Policy"] == "no-referrer"
            if not path.endswith(".css"):
                assert answer.headers["Cache-Control"] == "no-store"
        assert session.get(f"{site.url}/ui/static/ui.css", timeout=10).headers["Content-Type"].startswith("text/css")

    def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(self, site: Site) -> None:
        """403, and nothing is decided."""
        session = signed_in(site, "ana@corp.example")
        url = f"{site.url}/ui/conflicts/{C2}/resolve"
        assert session.post(url, data={"take": "sales"}, timeout=10).status_code == 403
        assert session.post(url, data={"take": "sales", "csrf": "guessed"}, timeout=10).status_code == 403
        other = signed_in(site, "ana@corp.example")  # another session's token is not this one's
        assert session.post(url, data={"take": "sales", "csrf": csrf(other, site)}, timeout=10).status_code == 403
        with site.store.transaction() as tx:
            conflict = tx.conflict(C2)
        assert conflict is not None
        assert conflict.state == "open"

    def test_a_post_from_another_site_is_refused(self, site: Site) -> None:
        """Even with the token, an Origin of another site is 403."""
        session = signed_in(site, "ana@corp.example")
        answer = session.post(
            f"{site.url}/ui/chain/verify",
            data={"csrf": csrf(session, site)},
            headers={"Origin": "https://evil.example"},
            timeout=10,
        )
        assert answer.status_code == 403

    def test_a_sign_in_from_another_site_is_refused(self, site: Site) -> None:
        """A sign-in form posted from another site's page (a login CSRF) is 403, even with a right token."""
        answer = requests.post(
            f"{site.url}/ui/sign-in",
            data={"token": TOKENS["ana@corp.example"]},
            headers={"Origin": "https://evil.example"},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 403
        assert "syncd_session" not in answer.cookies

    def test_the_sign_in_never_redirects_off_the_site(self, site: Site) -> None:
        """A next= of another site (or a protocol-relative one) lands on the page's own start instead."""
        for target in ("https://evil.example/", "//evil.example/", "/\\evil.example/"):
            answer = requests.post(
                f"{site.url}/ui/sign-in",
                data={"token": TOKENS["rita@corp.example"], "next": target},
                allow_redirects=False,
                timeout=10,
            )
            assert answer.headers["Location"] == "/ui/", target

    def test_values_from_the_tools_are_escaped(self, site: Site) -> None:
        """A title holding markup is shown as text, never as markup."""
        page = signed_in(site, "ana@corp.example").get(f"{site.url}/ui/audit", timeout=10).text
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page

    def test_no_credential_reaches_any_page(self, site: Site) -> None:
        """No token and no session secret appears in any page or export, whoever is signed in."""
        for name in TOKENS:
            session = signed_in(site, name)
            for path in ("/ui/", "/ui/audit", "/ui/audit.csv", "/ui/audit.jsonl", "/ui/items/S1", "/ui/chain"):
                text = session.get(site.url + path, timeout=10).text
                for secret in (*TOKENS.values(), SESSION_SECRET):
                    assert secret not in text, (name, path)


def seqs(page: str) -> list[int]:
    return [int(each) for each in re.findall(r'data-seq="(\d+)"', page)]


class TestReading:
    def test_a_department_reader_sees_only_its_departments_events(self, site: Site) -> None:
        """Rita reads Sales: events written to Sales or carrying its change, nothing of Marketing's title write."""
        page = signed_in(site, "rita@corp.example").get(f"{site.url}/ui/audit", timeout=10).text
        events = {each.seq: each.event for each in query(site.store)}
        shown = seqs(page)
        assert shown
        assert all("sales" in departments_of(events[s]) for s in shown)
        hidden = [s for s, e in events.items() if e.field == "title" and e.endpoint == "marketing"]
        assert hidden
        assert not set(hidden) & set(shown)
        assert "&lt;script&gt;" not in page

    def test_filters_select_like_syncd_audit(self, site: Site) -> None:
        """field=due and department=engineering show exactly what `syncd.audit.query` answers, newest first."""
        session = signed_in(site, "ana@corp.example")
        page = session.get(f"{site.url}/ui/audit", params={"field": "due", "department": "engineering"}, timeout=10)
        expected = [each.seq for each in query(site.store, field="due", department="engineering")]
        assert expected
        assert seqs(page.text) == expected[::-1]

    @pytest.mark.parametrize("person", sorted(TOKENS))
    def test_each_person_sees_exactly_the_events_they_may_read(self, site: Site, person: str) -> None:
        """Pages of two, walked back over HTTP, and the export hold what may_read allows (its origins' departments
        and its refs' too), the page newest first and the export oldest first: the database decides as Python."""
        session = signed_in(site, person)
        identity = Ui(load_config(site.config_dir), site.store, CAPABILITIES).sign_in.identity(person)
        assert identity is not None
        allowed = [each.seq for each in query(site.store) if may_read(identity, each.event)]
        assert allowed
        walked: list[int] = []
        before: int | None = None
        while True:
            page = audit_page(site.store, identity, AuditFilter(), before=before, page=2)
            walked += [each.seq for each in page.events]
            if page.older is None:
                break
            before = page.older
        assert walked == allowed[::-1]
        assert seqs(session.get(f"{site.url}/ui/audit", timeout=10).text) == allowed[::-1]
        lines = session.get(f"{site.url}/ui/audit.jsonl", timeout=10).text.splitlines()
        assert [json.loads(line)["seq"] for line in lines] == allowed

    def test_a_reader_asking_for_another_department_sees_nothing(self, site: Site) -> None:
        """Rita filtering on Engineering gets no event (not Engineering's events)."""
        page = signed_in(site, "rita@corp.example").get(
            f"{site.url}/ui/audit", params={"department": "engineering"}, timeout=10
        )
        assert seqs(page.text) == []

    def test_pages_are_keyset_links_newest_first(self, site: Site) -> None:
        """With a page of two, the 'older' link continues before the last seq shown, and the pages cover all."""
        everyone = Identity("ana@corp.example", "Ana", "ana@corp.example", ALL, ALL)
        first = audit_page(site.store, everyone, AuditFilter(), page=2)
        assert first.older is not None
        second = audit_page(site.store, everyone, AuditFilter(), before=first.older, page=2)
        shown = [each.seq for each in first.events + second.events]
        assert shown == sorted(shown, reverse=True)
        assert len(set(shown)) == len(shown) == 4
        page = signed_in(site, "ana@corp.example").get(f"{site.url}/ui/audit", params={"kind": "write"}, timeout=10)
        assert 'id="older"' not in page.text  # three writes fit one page

    def test_an_items_page_shows_refs_links_values_and_timeline(self, site: Site) -> None:
        """S1: each tool's ref linked to the tool, the value Marketing still holds, the held conflict, its events."""
        page = signed_in(site, "ana@corp.example").get(f"{site.url}/ui/items/S1", timeout=10).text
        links = {name: load_config(site.config_dir).departments[name].connection.base_url for name in ("engineering",)}
        assert f'href="{links["engineering"].rstrip("/")}/browse/ENG-1"' in page
        assert re.search(r'href="[^"]+/c/card-1"', page)
        assert re.search(r'href="[^"]+/0/[^"/]+/1201"', page)
        assert "Launch &lt;b&gt;pricing&lt;/b&gt;" in page
        assert 'class="differs">todo' in page  # Marketing still holds the older status
        assert set(seqs(page)) == {each.seq for each in query(site.store, sync_id="S1")}

    def test_an_item_no_department_of_the_reader_holds_is_not_found(self, site: Site) -> None:
        """Dave reads Engineering; S4 lives at Sales only."""
        answer = signed_in(site, "dave@corp.example").get(f"{site.url}/ui/items/S4", timeout=10)
        assert answer.status_code == 404

    def test_the_chain_is_verified_on_demand_and_the_verdict_kept(self, site: Site) -> None:
        """The button starts a verification; the page then shows its verdict and when, and the last checkpoint."""
        session = signed_in(site, "dave@corp.example")
        answer = session.post(f"{site.url}/ui/chain/verify", data={"csrf": csrf(session, site)}, timeout=10)
        assert answer.status_code == 200
        for _ in range(100):
            page = session.get(f"{site.url}/ui/chain", timeout=10).text
            if "Chain ok" in page or "Chain broken" in page:
                break
        head = site.store.audit_head()
        assert head is not None
        assert "Chain ok" in page
        assert f'id="head-seq">{head[0]}<' in page
        assert head[1] in page

    def test_every_replica_shows_the_same_verdict(self, site: Site) -> None:
        """A verdict computed through one replica's page is the one another replica's page shows (the store keeps
        it); the other replica's button does not start a second one while it runs."""
        mine, theirs = ChainState(site.store), ChainState(site.store)
        assert mine.start("dave@corp.example")
        for _ in range(200):
            shown = theirs.last
            if shown is not None and shown.finished_at is not None:
                break
            assert not theirs.start("ana@corp.example")
            time.sleep(0.05)
        assert shown is not None
        assert shown.verification is not None
        assert shown.verification.ok
        assert shown.by == "dave@corp.example"


class TestExports:
    @pytest.mark.parametrize(("suffix", "cli_format"), [("csv", "csv"), ("jsonl", "jsonl")])
    def test_an_export_is_what_syncd_audit_prints(
        self, site: Site, suffix: str, cli_format: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Same filters, same bytes: the page and the command share one export."""
        session = signed_in(site, "ana@corp.example")
        exported = session.get(f"{site.url}/ui/audit.{suffix}", params={"item": "S1"}, timeout=10)
        assert exported.headers["Content-Disposition"] == f'attachment; filename="audit.{suffix}"'
        printed = CliRunner().invoke(
            app, ["audit", "--item", "S1", "--format", cli_format, "--config", str(site.config_dir)]
        )
        assert printed.exit_code == 0, printed.output
        assert exported.text == printed.stdout
        assert exported.text.count("\n") >= 4

    def test_an_export_holds_only_what_the_reader_may_see(self, site: Site) -> None:
        """Rita's JSON Lines export names Sales in every event."""
        lines = signed_in(site, "rita@corp.example").get(f"{site.url}/ui/audit.jsonl", timeout=10).text.splitlines()
        assert lines
        for line in lines:
            event = json.loads(line)
            assert "sales" in {event["endpoint"], *(event["origin"] or "").split(","), *event["refs"]}

    def test_an_export_stopped_part_way_releases_its_snapshot(self, site: Site) -> None:
        """The server closing the body of a download left part-way closes the export's snapshot (its connection)."""
        ui = Ui(load_config(site.config_dir), site.store, CAPABILITIES)
        ui.chunk_chars = 1  # a line at a time, as a long export is sent: its snapshot stays open between chunks
        cookie = signed_in(site, "ana@corp.example").cookies[Sessions.COOKIE]
        environ = EnvironBuilder(path="/audit.csv", headers=[("Cookie", f"{Sessions.COOKIE}={cookie}")]).get_environ()
        started: list[str] = []
        body = iter(ui(environ, lambda status, headers, *_: started.append(status)))
        try:
            assert next(body).startswith(b"seq,")  # the header, before any event is read
            pool = site.store.engine.pool
            assert isinstance(pool, QueuePool)
            idle = pool.checkedout()
            assert next(body).startswith(b"1,")  # the first event: the export's snapshot is open
            assert pool.checkedout() == idle + 1
        finally:
            body.close()  # type: ignore[attr-defined]  # what waitress does when the client goes away
            ui.close()
        assert started == ["200 OK"]
        assert pool.checkedout() == idle


class TestDecisions:
    def test_a_reader_without_decide_sees_no_buttons_and_is_refused(self, site: Site) -> None:
        """Rita sees Sales' conflicts but no form; her POST (with a valid token) is 403 and nothing changes."""
        session = signed_in(site, "rita@corp.example")
        page = session.get(f"{site.url}/ui/", timeout=10).text
        assert C2 in page
        assert f"/conflicts/{C2}/resolve" not in page
        assert "/quarantine/S3/retry" not in page
        token = csrf(session, site)
        answer = session.post(
            f"{site.url}/ui/conflicts/{C2}/resolve", data={"take": "sales", "csrf": token}, timeout=10
        )
        assert answer.status_code == 403
        assert (
            session.post(f"{site.url}/ui/guards/{GUARD}/confirm", data={"csrf": token}, timeout=10).status_code == 403
        )
        with site.store.transaction() as tx:
            conflict = tx.conflict(C2)
        assert conflict is not None
        assert conflict.state == "open"

    def test_a_notifications_links_lead_to_the_rows_in_the_queues(self, site: Site) -> None:
        """/ui/conflicts/ID and /ui/guards/ID (what notifications link to) open the first page at that row."""
        session = signed_in(site, "rita@corp.example")
        for path, anchor in ((f"conflicts/{C2}", f"conflict-{C2}"), (f"guards/{GUARD}", f"guard-{GUARD}")):
            answer = session.get(f"{site.url}/ui/{path}", allow_redirects=False, timeout=10)
            assert answer.status_code == 303
            assert answer.headers["Location"].endswith(f"/ui/#{anchor}")
        assert f'id="conflict-{C2}"' in session.get(f"{site.url}/ui/", timeout=10).text
        assert requests.get(f"{site.url}/ui/conflicts/{C2}", allow_redirects=False, timeout=10).status_code == 302

    def test_resolving_a_conflict_is_audited_with_the_users_name(self, site: Site) -> None:
        """Dave decides Engineering's conflict: the conflict takes sales, the decision event names him."""
        session = signed_in(site, "dave@corp.example")
        page = session.get(f"{site.url}/ui/", timeout=10).text
        assert f"/conflicts/{C1}/resolve" in page
        answer = session.post(
            f"{site.url}/ui/conflicts/{C1}/resolve", data={"take": "sales", "csrf": csrf(session, site)}, timeout=10
        )
        assert answer.status_code == 200
        assert "takes sales" in answer.text
        with site.store.transaction() as tx:
            conflict = tx.conflict(C1)
        assert conflict is not None
        assert (conflict.state, conflict.take, conflict.resolved_by) == ("decided", "sales", "dave@corp.example")
        decision = query(site.store, kind="decision", sync_id="S1")[-1].event
        assert (decision.person, decision.origin, decision.field) == ("dave@corp.example", "sales", "status")

    def test_retrying_a_quarantined_item_is_audited_with_the_users_name(self, site: Site) -> None:
        """Ana retries S3: released, and the release event names her."""
        session = signed_in(site, "ana@corp.example")
        answer = session.post(f"{site.url}/ui/quarantine/S3/retry", data={"csrf": csrf(session, site)}, timeout=10)
        assert answer.status_code == 200
        with site.store.transaction() as tx:
            entry = tx.quarantine_entry("S3")
        assert entry is None or not entry.held
        release = query(site.store, kind="release", sync_id="S3")[-1].event
        assert release.person == "ana@corp.example"

    def test_confirming_a_mass_change_is_audited_with_the_users_name(self, site: Site) -> None:
        """Ana confirms the guard at Sales (Dave may not: it is not Engineering's); the guard event names her."""
        dave = signed_in(site, "dave@corp.example")
        url = f"{site.url}/ui/guards/{GUARD}/confirm"
        assert dave.post(url, data={"csrf": csrf(dave, site)}, timeout=10).status_code == 403
        ana = signed_in(site, "ana@corp.example")
        assert ana.post(url, data={"csrf": csrf(ana, site)}, timeout=10).status_code == 200
        with site.store.transaction() as tx:
            (guard,) = guards.matching(tx, GUARD)
        assert (guard.state, guard.decided_by) == ("confirmed", "ana@corp.example")
        event = query(site.store, kind="guard")[-1].event
        assert (event.person, event.outcome) == ("ana@corp.example", "confirmed")
        again = ana.post(url, data={"csrf": csrf(ana, site)}, timeout=10)
        assert again.status_code == 409
        assert "already confirmed" in again.text


class TestCommand:
    def test_syncd_web_serves_the_page_and_redirects_the_root(self, site: Site) -> None:
        """`syncd web` prints where it listens; / redirects to /ui/, which asks to sign in; a refused sign-in is
        a JSON log line on standard error, without the token tried."""
        command = [str(SYNCD), "web", "--config", str(site.config_dir), "--listen", "127.0.0.1:0"]
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
            try:
                assert process.stdout is not None
                announced = json.loads(process.stdout.readline())
                root = requests.get(announced["listen"] + "/", allow_redirects=False, timeout=10)
                assert (root.status_code, root.headers["Location"]) == (302, "/ui/")
                page = requests.get(announced["page"], allow_redirects=False, timeout=10)
                assert page.status_code == 302
                wrong = requests.post(f"{announced['page']}sign-in", data={"token": "wrong-token-3c9d"}, timeout=10)
                assert wrong.status_code == 401
            finally:
                process.terminate()
                assert process.wait(timeout=20) == 0
            assert process.stderr is not None
            logged = [json.loads(line) for line in process.stderr.read().splitlines() if line.startswith("{")]
        (refused,) = [line for line in logged if line["event"] == "web.sign_in.refused"]
        assert (refused["method"], refused["logger"]) == ("token", "syncd.ui")
        assert "wrong-token-3c9d" not in json.dumps(logged)


class TestConfiguration:
    def write(self, root: Path, web: str) -> Path:
        config = root / "config"
        (config / "departments").mkdir(parents=True)
        for path in (ROOT / "config" / "departments").glob("*.yaml"):
            (config / "departments" / path.name).write_text(path.read_text())
        (config / "syncd.yaml").write_text("store: sqlite:///x.db\n" + web)
        return config

    def test_an_unknown_department_is_a_file_line_error(self, tmp_path: Path) -> None:
        """A permission naming no department says which file, line and user, and what exists."""
        config = self.write(
            tmp_path,
            "web:\n  session_secret: {env: S}\n  users:\n"
            "    - name: ana@corp.example\n      token: {env: T}\n      read: [sales, salse]\n",
        )
        with pytest.raises(ConfigError) as raised:
            load_config(config)
        message = str(raised.value)
        assert f"{config / 'syncd.yaml'}:7:" in message  # the read: line
        assert "'salse', which is not a department" in message
        assert "engineering, marketing, sales" in message

    def test_an_unknown_department_granted_by_oidc_is_a_file_line_error(self, tmp_path: Path) -> None:
        """A department typo in the OIDC grants names the file and the line of the grant."""
        config = self.write(
            tmp_path,
            "web:\n  session_secret: {env: S}\n  oidc:\n    issuer: https://id.corp.example\n"
            "    client_id: syncd\n    client_secret: {env: C}\n    read:\n      all: [auditors]\n"
            "      salse: [sales-team]\n",
        )
        with pytest.raises(ConfigError) as raised:
            load_config(config)
        message = str(raised.value)
        assert f"{config / 'syncd.yaml'}:10: oidc grants read of 'salse', which is not a department" in message
        assert "engineering, marketing, sales" in message

    def test_a_web_section_nobody_can_sign_in_with_is_refused(self, tmp_path: Path) -> None:
        """Neither token users nor OIDC: the error says to add one."""
        config = self.write(tmp_path, "web:\n  session_secret: {env: S}\n")
        with pytest.raises(ConfigError, match=r"syncd.yaml:3: .*nobody could sign in: list operator-token users"):
            load_config(config)

    def test_a_token_written_in_the_file_is_refused(self, tmp_path: Path) -> None:
        """A token is named by its source, never written: the error does not echo it."""
        config = self.write(
            tmp_path,
            "web:\n  session_secret: {env: S}\n  users:\n    - {name: ana, token: hunter2-token-value, read: all}\n",
        )
        with pytest.raises(ConfigError) as raised:
            load_config(config)
        assert "{env: VARIABLE} or {file: PATH}" in str(raised.value)
        assert "hunter2-token-value" not in str(raised.value)

    def test_a_short_session_secret_is_refused_at_start(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A guessable session secret stops the page from starting, saying how to make one."""
        config = self.write(tmp_path, "web:\n  session_secret: {env: S}\n  users:\n    - {name: a, token: {env: T}}\n")
        monkeypatch.setenv("S", "short")
        monkeypatch.setenv("T", "token-of-a")
        with pytest.raises(SyncdError, match="shorter than 32 characters"):
            Ui(load_config(config), Store("sqlite://"), CAPABILITIES)

    def test_the_schema_describes_the_web_section(self) -> None:
        """`syncd schema syncd.yaml` offers the web keys to editors."""
        schema = json.dumps(schemas()["syncd.yaml"])
        for key in ("session_secret", "session_max_age_s", "users", "decide", "oidc", "issuer", "groups_claim"):
            assert key in schema
