"""Sign-in methods, sessions and CSRF tokens of the web page.

Sign-in is a seam: a method turns what the sign-in form or a provider gives into an
:class:`~syncd.ui.identity.Identity`, and the pages know nothing else of how it was made. Two methods exist:
operator tokens from the configuration (:class:`TokenSignIn`) and an OpenID Connect provider
(:class:`syncd.ui.oidc.OidcSignIn`, driven by the app's ``/auth/oidc`` and ``/auth/callback`` routes).

A session is a cookie signed with the configured session secret (itsdangerous), carrying a random CSRF token
bound to it and the time it was issued; it expires after ``session_max_age_s``. A token user's session names the
user only, and their permissions are looked up from the configuration on every request, so a user removed from
it is out at once. An OIDC session carries the identity itself (name, e-mail, the departments the provider's
groups granted at sign-in): those cannot be looked up in the configuration, so they hold until the session
expires, and only while OIDC with the same issuer stays configured.

An OIDC sign-in in progress (state, nonce, PKCE verifier, where to go after) lives in a second signed cookie,
``SameSite=Lax`` so that it comes back with the provider's redirect from another site (the session cookie is
``Strict`` and would not), for at most :data:`syncd.ui.oidc.PENDING_MAX_AGE_S`; the callback pops it, and a
process remembers the states it has popped until they expire, so a replayed callback is refused even with the
old cookie. No credential (token, secret, code) is ever put in a page, a cookie, a log line or an audit event.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from itsdangerous import BadSignature, URLSafeTimedSerializer

from syncd.config import Departments, Web
from syncd.errors import SignInRefused, SyncdError
from syncd.ui.identity import ALL, Identity
from syncd.ui.oidc import PENDING_MAX_AGE_S, Pending

MIN_SECRET_CHARS: Final = 32
"""A session secret shorter than this is refused: it signs every cookie, so it must not be guessable."""
MAX_SPENT_STATES: Final = 100_000
"""The most popped sign-in states remembered; beyond it the oldest are forgotten (the provider's one-time code
still refuses a replay)."""

Via = Literal["token", "oidc"]
"""How a session was signed in: an operator token, or an OIDC provider."""


def _departments(granted: Departments) -> frozenset[str] | Literal["all"]:
    return ALL if granted == "all" else frozenset(granted)


class SignIn(Protocol):
    """A way to sign in with a form: what it posted -> the person, or None (refused, with no reason given away)."""

    def identify(self, form: Mapping[str, str]) -> Identity | None:
        """The person the form's credentials name, or None."""
        ...

    def identity(self, name: str) -> Identity | None:
        """The person of that name as the configuration says now (None: no longer allowed in)."""
        ...


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


class TokenSignIn:
    """Operator tokens: each configured user's token, read from its env variable or file when the page starts."""

    def __init__(self, web: Web) -> None:
        self._users = {user.name: user for user in web.users}
        # Kept as digests: equal-length values compared in constant time, whatever length a token has.
        self._tokens = [(user.name, _digest(user.token.resolve())) for user in web.users]

    def identify(self, form: Mapping[str, str]) -> Identity | None:
        """The user whose token was posted; every token is compared (constant time), so timing tells nothing."""
        given = _digest(form.get("token", "").strip())
        found = None
        for name, token in self._tokens:
            if hmac.compare_digest(given, token) and found is None:
                found = name
        return None if found is None else self.identity(found)

    def identity(self, name: str) -> Identity | None:
        """The configured user of that name, with their permissions; audited under the name as written."""
        user = self._users.get(name)
        if user is None:
            return None
        email = user.name if "@" in user.name else None
        return Identity(user.name, user.name, email, _departments(user.read), _departments(user.decide))


@dataclass(frozen=True)
class Session:
    """A valid session: who, how they signed in, and the CSRF token every form of theirs must carry back."""

    identity: Identity
    csrf: str
    via: Via = "token"


class Sessions:
    """Signed, expiring session cookies and the cookie of an OIDC sign-in in progress (see the module docstring)."""

    COOKIE: Final = "syncd_session"
    PENDING_COOKIE: Final = "syncd_oidc"

    def __init__(self, web: Web, sign_in: SignIn, *, clock: Callable[[], float] = time.monotonic) -> None:
        secret = web.session_secret.resolve()
        if len(secret) < MIN_SECRET_CHARS:
            raise SyncdError(
                f"web.session_secret is shorter than {MIN_SECRET_CHARS} characters: generate one, e.g. "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        self._serializer = URLSafeTimedSerializer(secret, salt="syncd-ui-session")
        self._pending = URLSafeTimedSerializer(secret, salt="syncd-ui-oidc-pending")
        self.max_age_s = web.session_max_age_s
        self._sign_in = sign_in
        self._issuer = web.oidc.issuer if web.oidc is not None else None
        self._clock = clock
        self._lock = threading.Lock()
        self._spent: dict[str, float] = {}
        """Digest of a popped sign-in state -> when it may be forgotten (its pending cookie has expired by then)."""

    def issue(self, identity: Identity, via: Via) -> str:
        """A new session cookie's value for ``identity`` (a fresh CSRF token each time)."""
        payload: dict[str, Any] = {"via": via, "csrf": secrets.token_urlsafe(32)}
        if via == "token":
            payload["user"] = identity.subject
        else:
            payload |= {"issuer": self._issuer, "identity": identity.as_dict()}
        return self._serializer.dumps(payload)

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None if absent, forged, expired, or no longer allowed in."""
        if not cookie:
            return None
        try:
            payload: Any = self._serializer.loads(cookie, max_age=int(self.max_age_s))
        except BadSignature:  # a SignatureExpired is a BadSignature too
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("csrf"), str):
            return None
        identity = self._identity(payload)
        return None if identity is None else Session(identity, payload["csrf"], payload["via"])

    def _identity(self, payload: dict[str, Any]) -> Identity | None:
        if payload.get("via") == "token" and isinstance(payload.get("user"), str):
            return self._sign_in.identity(payload["user"])
        if payload.get("via") == "oidc" and self._issuer is not None and payload.get("issuer") == self._issuer:
            try:
                return Identity.from_dict(payload["identity"])
            except (KeyError, TypeError, ValueError):
                return None
        return None  # OIDC no longer configured, or another provider now: sign in again

    # ----- an OIDC sign-in in progress -----------------------------------------------------------------------

    def pending(self, pending: Pending, target: str) -> str:
        """The pending-sign-in cookie's value: what the callback needs, and the page to land on after."""
        return self._pending.dumps({"pending": pending.as_dict(), "next": target})

    def pop_pending(self, cookie: str | None) -> tuple[Pending, str]:
        """The sign-in this browser started and where it goes after; refused if absent, forged, stale or used.

        Marked used before anything is checked against the provider, so the same state can never finish twice.
        """
        try:
            payload: Any = self._pending.loads(cookie or "", max_age=int(PENDING_MAX_AGE_S))
        except BadSignature:
            payload = None
        data = payload.get("pending") if isinstance(payload, dict) else None
        pending = Pending.from_dict(data)  # refuses what is missing or incomplete, saying what to do
        target = payload.get("next") if isinstance(payload, dict) else None
        spent = hashlib.sha256(pending.state.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            for old in [state for state, until in self._spent.items() if until <= now]:
                del self._spent[old]
            if spent in self._spent:
                raise SignInRefused("this sign-in was finished already (a replayed answer?): sign in again")
            if len(self._spent) >= MAX_SPENT_STATES:
                del self._spent[next(iter(self._spent))]
            self._spent[spent] = now + PENDING_MAX_AGE_S + 1
        return pending, target if isinstance(target, str) else ""


def csrf_ok(session: Session, given: str | None) -> bool:
    """Whether a form carried its session's CSRF token (constant-time comparison)."""
    return given is not None and hmac.compare_digest(given.encode(), session.csrf.encode())
