"""The web page's WSGI application: routes, sign-in, CSRF, security headers, and the pages' templates.

Server-rendered with Jinja2 (autoescaped), no JavaScript: every action is a form POST that answers with a
redirect. Every page but the sign-in ones (the token form, the OIDC start and callback) and the stylesheet needs a
session; every POST needs the session's CSRF token and, when the browser sends one, an ``Origin`` (or
``Referer``) of this site. Every answer carries a strict Content-Security-Policy and is never stored by caches
(the stylesheet aside). Sign-ins and refused sign-ins are logged (``syncd.ui``) with their reason, never with a
token, code or secret. Mounted under ``/ui/`` by the daemon (:mod:`syncd.daemon.web`) and by ``syncd web``; it
reads the store, and writes it only through :mod:`syncd.decisions`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import structlog
from jinja2 import Environment, PackageLoader, select_autoescape
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException, InternalServerError, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from syncd import decisions
from syncd.audit import AuditFilter, Recorded, export
from syncd.audit_export import COLUMNS, csv_lines, exported, jsonl
from syncd.config import Config
from syncd.connector import Capabilities
from syncd.errors import CommandRefused, LeaseHeld, ProviderUnavailable, SignInFailed
from syncd.leasing import Leases
from syncd.store import Store
from syncd.ui.auth import Session, Sessions, SignIn, TokenSignIn, Via, csrf_ok
from syncd.ui.identity import Identity
from syncd.ui.oidc import PENDING_MAX_AGE_S, OidcSignIn
from syncd.ui.review import (
    ChainState,
    audit_page,
    conflict_departments,
    item_view,
    quarantine_departments,
    visible_filter,
)
from syncd.ui.review import queues as waiting

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""No script, no frame, no foreign style or form target: a page can do nothing but show and post to itself."""
DECISION_WAIT_S = 10.0
"""How long a decision waits for a group another process (``syncd once``) is writing."""

FILTERS = ("item", "ref", "group", "department", "person", "field", "kind", "since", "until")
"""The audit page's filters, by their names in the query string (those of ``syncd audit``'s options)."""
CHUNK_CHARS = 64 * 1024
"""About how much of an export is sent at once."""

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
"""Hosts where the OIDC redirect URI may be derived from the request when ``public_url`` is not set."""

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
log: structlog.stdlib.BoundLogger = structlog.get_logger("syncd.ui")


def _instant(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(
            f"{name}: {value!r} is not an ISO 8601 date or time, e.g. 2026-12-01 or 2026-12-01T09:30"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _filters(request: Request) -> AuditFilter:
    """The audit filters of the page's query string (``item`` is the item's sync id), as ``syncd audit`` takes them."""
    text = {key: (request.args.get(key) or "").strip() or None for key in FILTERS}
    return AuditFilter(
        sync_id=text["item"],
        ref=text["ref"],
        group=text["group"],
        department=text["department"],
        person=text["person"],
        field=text["field"],
        kind=text["kind"],
        since=_instant(text["since"], "since"),
        until=_instant(text["until"], "until"),
    )


def _chunked(lines: Iterable[str], size: int = CHUNK_CHARS) -> Iterator[str]:
    """Lines joined into chunks of about ``size`` characters: one line per chunk would be one socket write each."""
    chunk: list[str] = []
    held = 0
    for line in lines:
        chunk.append(line)
        held += len(line)
        if held >= size:
            yield "".join(chunk)
            chunk, held = [], 0
    if chunk:
        yield "".join(chunk)


def _shown(value: Any) -> str:  # noqa: ANN401 - any canonical (JSON-like) value
    """A value as a person reads it: text as is, nothing as (empty), anything else as compact JSON."""
    from syncd.audit_export import flat  # noqa: PLC0415 - one definition of a cell

    text = flat(value)
    return text if text else "(empty)"


class Ui:
    """The web page of one configuration and store (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        capabilities: Mapping[str, Capabilities],
        *,
        sign_in: SignIn | None = None,
    ) -> None:
        web = config.instance.web
        if web is None:
            raise CommandRefused("the web page is not configured: add a web: section to syncd.yaml (docs/web.md)")
        self.config = config
        self.store = store
        self.capabilities = capabilities
        self.sign_in = sign_in if sign_in is not None else TokenSignIn(web)
        self.tokens = bool(web.users)
        self.oidc = OidcSignIn(web.oidc) if web.oidc is not None else None
        self.sessions = Sessions(web, self.sign_in)
        public = config.instance.public_url
        self.secure = public is not None and public.startswith("https:")
        self.origins = {f"{urlsplit(public).scheme}://{urlsplit(public).netloc}"} if public else set()
        # Decisions are taken under a holder of their own: while this process's daemon holds a group, they are
        # written without its lease (syncd.decisions.decision_store), as from the CLI.
        self.leases = Leases(store, ttl_s=config.instance.lease_ttl_s)
        self.chain = ChainState(store)
        self.chunk_chars = CHUNK_CHARS
        """About how much of an export is sent at once."""
        self.templates = Environment(
            loader=PackageLoader("syncd.ui", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        self.templates.filters["shown"] = _shown
        self.templates.filters["utc"] = lambda moment: moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        self.css = files("syncd.ui").joinpath("static/ui.css").read_bytes()
        self.url_map = Map(
            [
                Rule("/", endpoint="home", methods=["GET"]),
                Rule("/sign-in", endpoint="sign_in", methods=["GET", "POST"]),
                Rule("/sign-out", endpoint="sign_out", methods=["POST"]),
                Rule("/auth/oidc", endpoint="oidc_start", methods=["GET"]),
                Rule("/auth/callback", endpoint="oidc_callback", methods=["GET"]),
                Rule("/static/ui.css", endpoint="css", methods=["GET"]),
                Rule("/audit", endpoint="audit", methods=["GET"]),
                Rule("/audit.csv", endpoint="export_csv", methods=["GET"]),
                Rule("/audit.jsonl", endpoint="export_jsonl", methods=["GET"]),
                Rule("/items/<sync_id>", endpoint="item", methods=["GET"]),
                Rule("/chain", endpoint="chain", methods=["GET"]),
                Rule("/chain/verify", endpoint="verify", methods=["POST"]),
                Rule("/conflicts/<conflict_id>", endpoint="conflict", methods=["GET"]),
                Rule("/guards/<guard_id>", endpoint="guard_row", methods=["GET"]),
                Rule("/conflicts/<conflict_id>/resolve", endpoint="resolve", methods=["POST"]),
                Rule("/quarantine/<sync_id>/retry", endpoint="retry", methods=["POST"]),
                Rule("/guards/<guard_id>/<any(confirm, reject):choice>", endpoint="guard", methods=["POST"]),
            ],
            strict_slashes=False,
        )

    def close(self) -> None:
        """Release any group lease a decision took."""
        self.leases.close()

    # ----- WSGI ------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Answer one request, with the security headers on every answer (errors too)."""
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except HTTPException as error:
            response = self._error(request, error)
        self._harden(response, cache=request.path.endswith("/static/ui.css") and response.status_code == 200)
        return response(environ, start_response)

    def _harden(self, response: Response, *, cache: bool) -> None:
        headers = response.headers
        headers["Content-Security-Policy"] = CSP
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        headers["X-Frame-Options"] = "DENY"
        headers["Cache-Control"] = "private, max-age=300" if cache else "no-store"

    def _error(self, request: Request, error: HTTPException) -> Response:
        code = error.code or 500
        body = self._render(
            "error.html", None, request.script_root, code=code, title=error.name, detail=error.description or ""
        )
        return Response(body, status=code, mimetype="text/html")

    def _dispatch(self, request: Request) -> Response:
        endpoint, arguments = self.url_map.bind_to_environ(request.environ).match()
        if endpoint == "css":
            return Response(self.css, mimetype="text/css")
        if endpoint == "sign_in":
            return self._sign_in(request)
        if endpoint == "oidc_start":
            return self._oidc_start(request)
        if endpoint == "oidc_callback":
            return self._oidc_callback(request)
        session = self.sessions.read(request.cookies.get(Sessions.COOKIE))
        if session is None:
            if request.method == "POST":
                raise _Unauthorized
            target = request.script_root + request.full_path.rstrip("?") if request.path != "/" else ""
            query = f"?{urlencode({'next': target})}" if target else ""
            return redirect(self._url(request, "/sign-in") + query, code=302)
        if request.method == "POST":
            self._check_post(request, session)
        handler: Callable[..., Response] = getattr(self, f"_page_{endpoint}")
        return handler(request, session, **arguments)

    def _url(self, request: Request, path: str) -> str:
        """A path of this app under wherever it is mounted (``/ui`` in the daemon)."""
        return request.script_root + path

    def _check_post(self, request: Request, session: Session) -> None:
        """Refuse a POST without the session's CSRF token, or sent from another site's page."""
        if not csrf_ok(session, request.form.get("csrf")):
            raise Forbidden("this form is missing its security token or it expired: reload the page and try again")
        self._check_origin(request)

    def _check_origin(self, request: Request) -> None:
        """Refuse a POST whose browser says it comes from another site's page (no header: nothing to check)."""
        origin = request.headers.get("Origin")
        if origin in (None, "null"):  # no-referrer pages make browsers send "null"; the token is the guard then
            referer = request.headers.get("Referer")
            origin = None if not referer else "{0.scheme}://{0.netloc}".format(urlsplit(referer))
        if origin is not None and origin not in {request.host_url.rstrip("/"), *self.origins}:
            raise Forbidden("this form was sent from another site")

    def _render(self, template: str, session: Session | None, root: str, **context: Any) -> str:  # noqa: ANN401 - template values
        return self.templates.get_template(template).render(session=session, root=root, **context)

    def _page(self, request: Request, session: Session | None, template: str, **context: Any) -> Response:  # noqa: ANN401 - template values
        body = self._render(template, session, request.script_root, **context)
        return Response(body, mimetype="text/html")

    # ----- sign-in -----------------------------------------------------------------------------------------

    def _target(self, request: Request, target: str | None) -> str:
        """Where to land after signing in: a path of this site only, never an open redirect."""
        if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
            return self._url(request, "/")
        return target

    def _sign_in_page(self, request: Request, target: str, *, failed: bool) -> Response:
        provider = self.oidc.settings.shown_name if self.oidc is not None else None
        response = self._page(
            request, None, "sign_in.html", next=target, failed=failed, tokens=self.tokens, provider=provider
        )
        response.status_code = 401 if failed else 200
        return response

    def _sign_in(self, request: Request) -> Response:
        target = self._target(request, request.values.get("next"))
        if request.method == "GET":
            return self._sign_in_page(request, target, failed=False)
        self._check_origin(request)  # no one signs a browser in from another site's page
        identity = self.sign_in.identify({key: request.form[key] for key in request.form})
        if identity is None:
            log.warning("web.sign_in.refused", method="token", reason="no user has the token given")
            return self._sign_in_page(request, target, failed=True)
        return self._signed_in(redirect(target, code=303), request, identity, "token")

    def _signed_in(self, response: Response, request: Request, identity: Identity, via: Via) -> Response:
        """``response`` carrying a new session for ``identity``, logged."""
        log.info("web.sign_in", method=via, person=identity.person)
        response.set_cookie(
            Sessions.COOKIE,
            self.sessions.issue(identity, via),
            max_age=int(self.sessions.max_age_s),
            path=request.script_root or "/",
            secure=self.secure,
            httponly=True,
            samesite="Strict",
        )
        return response

    def _callback_url(self, request: Request) -> str:
        """The redirect URI the provider sends the browser back to: under ``public_url``, else this loopback host."""
        path = request.script_root + "/auth/callback"
        public = self.config.instance.public_url
        if public is not None:
            return public.rstrip("/") + path
        if urlsplit(f"//{request.host}").hostname in LOOPBACK and request.remote_addr in {"127.0.0.1", "::1"}:
            return request.host_url.rstrip("/") + path
        raise _NoPublicUrlError

    def _oidc_start(self, request: Request) -> Response:
        """Send the browser to the provider, keeping the sign-in's state, nonce and verifier in a signed cookie."""
        if self.oidc is None:
            raise NotFound("sign-in through an OIDC provider is not configured here")
        target = self._target(request, request.args.get("next"))
        try:
            url, pending = self.oidc.start(self._callback_url(request))
        except SignInFailed as failed:
            return self._sign_in_failed(request, failed)
        response = redirect(url, code=303)
        response.set_cookie(
            Sessions.PENDING_COOKIE,
            self.sessions.pending(pending, target),
            max_age=int(PENDING_MAX_AGE_S),
            path=self._url(request, "/auth/"),
            secure=self.secure,
            httponly=True,
            samesite="Lax",  # it must come back with the provider's redirect, a navigation from another site
        )
        return response

    def _oidc_callback(self, request: Request) -> Response:
        """Finish the sign-in the provider sends the browser back from; the pending cookie is dropped either way.

        The answer is a page that moves on by itself (a meta refresh, no script) rather than a redirect: this
        request comes from the provider's site, and a browser withholds the ``SameSite=Strict`` session cookie
        from every step of a navigation another site started.
        """
        if self.oidc is None:
            raise NotFound("sign-in through an OIDC provider is not configured here")
        try:
            pending, target = self.sessions.pop_pending(request.cookies.get(Sessions.PENDING_COOKIE))
            identity = self.oidc.finish(request.args, pending, self._callback_url(request))
        except SignInFailed as failed:
            response = self._sign_in_failed(request, failed)
        else:
            target = self._target(request, target)
            page = self._page(request, None, "signed_in.html", target=target, identity=identity)
            response = self._signed_in(page, request, identity, "oidc")
        response.delete_cookie(
            Sessions.PENDING_COOKIE, path=self._url(request, "/auth/"), secure=self.secure, httponly=True
        )
        return response

    def _sign_in_failed(self, request: Request, failed: SignInFailed) -> Response:
        """A page with the refusal's message (written to be shown: no code, token or secret), logged."""
        unavailable = isinstance(failed, ProviderUnavailable)
        event = "web.sign_in.provider_unavailable" if unavailable else "web.sign_in.refused"
        (log.error if unavailable else log.warning)(event, method="oidc", reason=str(failed))
        code, title = (502, "Sign-in unavailable") if unavailable else (403, "Sign-in refused")
        body = self._render(
            "error.html", None, request.script_root, code=code, title=title, detail=str(failed),
            back=self._url(request, "/sign-in"), back_label="Sign in again",
        )  # fmt: skip
        return Response(body, status=code, mimetype="text/html")

    def _page_sign_out(self, request: Request, session: Session) -> Response:
        response = redirect(self._url(request, "/sign-in"), code=303)
        response.delete_cookie(
            Sessions.COOKIE, path=request.script_root or "/", secure=self.secure, httponly=True, samesite="Strict"
        )
        return response

    # ----- pages -------------------------------------------------------------------------------------------

    def _page_home(self, request: Request, session: Session) -> Response:
        return self._page(
            request,
            session,
            "home.html",
            request_done=request.args.get("done"),
            queues=waiting(self.store, session.identity),
            verdict=self.chain.last,
            checkpoint=self.chain.checkpoint(),
        )

    def _page_audit(self, request: Request, session: Session) -> Response:
        filters = _filters(request)
        before = request.args.get("before", type=int)
        page = audit_page(self.store, session.identity, filters, before=before)
        kept = {key: value for key, value in request.args.items() if key != "before" and value}
        older = None if page.older is None else "?" + urlencode({**kept, "before": page.older})
        export = urlencode(kept)
        return self._page(
            request,
            session,
            "audit.html",
            events=page.events,
            filters=request.args,
            older=older,
            export=export,
            departments=sorted(self.config.departments),
        )

    def _exported(
        self, request: Request, session: Session, lines: Callable[[Iterable[Recorded]], Iterator[str]], name: str
    ) -> Response:
        """Every event the person may see that matches the filters, oldest first, as ``syncd audit`` prints them.

        Streamed from one snapshot in batches (:func:`syncd.audit.export`), never all in memory. The server closes
        the body when the download ends or stops part-way: that closes the export, and with it the snapshot.
        """
        wanted = visible_filter(session.identity, _filters(request))

        def body() -> Iterator[str]:
            if wanted is None:  # a department the person may not read: the header (CSV) and nothing else
                yield from lines(())
                return
            events = export(self.store, wanted)
            try:
                yield from _chunked(lines(events), self.chunk_chars)
            finally:
                events.close()

        response = Response(body(), mimetype="text/csv" if name.endswith(".csv") else "application/x-ndjson")
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def _page_export_csv(self, request: Request, session: Session) -> Response:
        return self._exported(request, session, csv_lines, "audit.csv")

    def _page_export_jsonl(self, request: Request, session: Session) -> Response:
        return self._exported(request, session, jsonl, "audit.jsonl")

    def _page_item(self, request: Request, session: Session, sync_id: str) -> Response:
        view = item_view(self.store, self.config, self.capabilities, session.identity, sync_id)
        if view is None:
            raise NotFound(f"no item {sync_id} you may see")
        fields = sorted({name for tool in view.tools for name in tool.values} | set(view.base))
        rows = [(each, exported(each)) for each in view.timeline]
        return self._page(request, session, "item.html", item=view, fields=fields, timeline=rows, columns=COLUMNS)

    def _page_conflict(self, request: Request, session: Session, conflict_id: str) -> Response:
        """A notification's link to a held conflict: its row, with its buttons, in the queues on the first page."""
        return redirect(self._url(request, f"/#conflict-{quote(conflict_id, safe='')}"), code=303)

    def _page_guard_row(self, request: Request, session: Session, guard_id: str) -> Response:
        """A notification's link to a mass-change hold: its row in the queues on the first page."""
        return redirect(self._url(request, f"/#guard-{quote(guard_id, safe='')}"), code=303)

    def _page_chain(self, request: Request, session: Session) -> Response:
        return self._page(request, session, "chain.html", verdict=self.chain.last, checkpoint=self.chain.checkpoint())

    def _page_verify(self, request: Request, session: Session) -> Response:
        self.chain.start(session.identity.person)
        return redirect(self._url(request, "/chain"), code=303)

    # ----- decisions ---------------------------------------------------------------------------------------

    def _decided(self, request: Request, decide: Callable[[], str]) -> Response:
        """Run a decision; a refusal (closed, unknown, group busy) is a page saying why, not a crash."""
        try:
            done = decide()
        except (CommandRefused, LeaseHeld) as refused:
            body = self._render(
                "error.html", None, request.script_root, code=409, title="Not done", detail=str(refused)
            )
            return Response(body, status=409, mimetype="text/html")
        return redirect(self._url(request, "/") + f"?{urlencode({'done': done})}", code=303)

    def _page_resolve(self, request: Request, session: Session, conflict_id: str) -> Response:
        take = request.form.get("take", "")
        with self.store.transaction() as tx:
            try:
                conflict = decisions.find_conflict(tx, conflict_id)
            except CommandRefused as refused:
                raise NotFound(str(refused)) from None
        if not session.identity.decides(conflict_departments(conflict)):
            raise Forbidden("you may not decide conflicts of these departments")
        person = session.identity.person

        def decide() -> str:
            decisions.resolve_conflict(self.leases, conflict.id, take, person, wait_s=DECISION_WAIT_S)
            return f"{conflict.field} of {conflict.sync_id} takes {take}'s value on the next pass"

        return self._decided(request, decide)

    def _page_retry(self, request: Request, session: Session, sync_id: str) -> Response:
        holding = quarantine_departments(self.store, sync_id)
        if not session.identity.decides(holding):
            raise Forbidden("you may not retry items of these departments")
        person = session.identity.person

        def decide() -> str:
            entry = decisions.retry_item(self.leases, sync_id, person, wait_s=DECISION_WAIT_S)
            return f"{entry.sync_id} is tried again on the next pass of {entry.group}"

        return self._decided(request, decide)

    def _page_guard(self, request: Request, session: Session, guard_id: str, choice: str) -> Response:
        try:
            guard = decisions.guard_of(self.store, guard_id)
        except CommandRefused as refused:
            raise NotFound(str(refused)) from None
        if not session.identity.decides({guard.endpoint}):
            raise Forbidden(f"you may not decide mass changes at {guard.endpoint}")
        state = "confirmed" if choice == "confirm" else "rejected"
        person = session.identity.person

        def decide() -> str:
            decisions.decide_guard(self.leases, guard.id, state, person, wait_s=DECISION_WAIT_S)
            return f"guard {guard.id} {state}: the next pass of {guard.group} applies it"

        return self._decided(request, decide)


class _Unauthorized(HTTPException):
    code = 401
    description = "sign in first"


class _NoPublicUrlError(InternalServerError):
    description = (
        "sign-in through the OIDC provider needs public_url in syncd.yaml: the address people reach this page "
        "at, whose /ui/auth/callback is registered at the provider (only on 127.0.0.1 or localhost can it be "
        "taken from the request)"
    )


class Mounted:
    """``app`` under ``/ui/``, and ``/`` redirected there: what ``syncd web`` serves (the daemon mounts it itself)."""

    PREFIX = "/ui"

    def __init__(self, ui: WSGIApp) -> None:
        self.ui = ui

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The UI under its prefix; anything else is not found."""
        answer = mount(self.ui, environ, start_response)
        if answer is not None:
            return answer
        if environ.get("PATH_INFO", "") in ("", "/"):
            return redirect(self.PREFIX + "/", code=302)(environ, start_response)
        return NotFound()(environ, start_response)


def mount(ui: WSGIApp, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
    """Answer a request under ``/ui`` with ``ui`` (the prefix moved to SCRIPT_NAME); None for any other path."""
    path = environ.get("PATH_INFO", "")
    if path != Mounted.PREFIX and not path.startswith(Mounted.PREFIX + "/"):
        return None
    if path == Mounted.PREFIX:
        return redirect(Mounted.PREFIX + "/", code=301)(environ, start_response)
    shifted = {
        **environ,
        "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + Mounted.PREFIX,
        "PATH_INFO": path[len(Mounted.PREFIX) :],
    }
    return ui(shifted, start_response)
