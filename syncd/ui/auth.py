"""Who is signed in to the web page, and what they may read and decide; sessions and CSRF tokens.

Sign-in is a seam: a method (today :class:`TokenSignIn`, operator tokens from the configuration; OIDC can be
another) turns what the sign-in form or a provider gives into an :class:`Identity`, and the pages know nothing else
of how it was made. A session is a cookie signed with the configured session secret (itsdangerous), carrying the
user's name, a random CSRF token bound to it and the time it was issued; it expires after ``session_max_age_s``.
The user's permissions are looked up from the configuration on every request, so a user removed from it is out
at once. No credential (token, secret) is ever put in a page, a cookie, a log line or an audit event.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from itsdangerous import BadSignature, URLSafeTimedSerializer

from syncd.config import Departments, Web
from syncd.errors import SyncdError

MIN_SECRET_CHARS = 32
"""A session secret shorter than this is refused: it signs every cookie, so it must not be guessable."""


@dataclass(frozen=True)
class Identity:
    """A signed-in person: the name decisions are audited under, and the departments they may read and decide.

    ``None`` for a permission means every department (``all`` in the configuration).
    """

    name: str
    read_departments: frozenset[str] | None
    decide_departments: frozenset[str] | None

    def reads(self, departments: Collection[str]) -> bool:
        """Whether any of ``departments`` is one this person may see (read, or decide, which shows it too)."""
        if self.read_departments is None or self.decide_departments is None:
            return True
        return bool((self.read_departments | self.decide_departments) & set(departments))

    def decides(self, departments: Collection[str]) -> bool:
        """Whether this person may decide for any of ``departments``."""
        if self.decide_departments is None:
            return True
        return bool(self.decide_departments & set(departments))

    @property
    def reads_all(self) -> bool:
        """Whether this person sees every department's events."""
        return self.read_departments is None or self.decide_departments is None

    def visible(self) -> frozenset[str]:
        """The departments this person sees (meaningful only when not :attr:`reads_all`)."""
        return (self.read_departments or frozenset()) | (self.decide_departments or frozenset())


def _departments(granted: Departments) -> frozenset[str] | None:
    return None if granted == "all" else frozenset(granted)


class SignIn(Protocol):
    """A way to sign in: what the form posted -> the person, or None (refused, with no reason given away)."""

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
        """The configured user of that name, with their permissions."""
        user = self._users.get(name)
        if user is None:
            return None
        return Identity(user.name, _departments(user.read), _departments(user.decide))


@dataclass(frozen=True)
class Session:
    """A valid session: who, and the CSRF token every form of theirs must carry back."""

    identity: Identity
    csrf: str


class Sessions:
    """Signed, expiring session cookies (see the module docstring)."""

    COOKIE = "syncd_session"

    def __init__(self, web: Web, sign_in: SignIn) -> None:
        secret = web.session_secret.resolve()
        if len(secret) < MIN_SECRET_CHARS:
            raise SyncdError(
                f"web.session_secret is shorter than {MIN_SECRET_CHARS} characters: generate one, e.g. "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        self._serializer = URLSafeTimedSerializer(secret, salt="syncd-ui-session")
        self.max_age_s = web.session_max_age_s
        self._sign_in = sign_in

    def issue(self, identity: Identity) -> str:
        """A new session cookie's value for ``identity`` (a fresh CSRF token each time)."""
        return self._serializer.dumps({"user": identity.name, "csrf": secrets.token_urlsafe(32)})

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None if absent, forged, expired, or its user is no longer configured."""
        if not cookie:
            return None
        try:
            payload: Any = self._serializer.loads(cookie, max_age=int(self.max_age_s))
        except BadSignature:  # a SignatureExpired is a BadSignature too
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("user"), str):
            return None
        csrf = payload.get("csrf")
        identity = self._sign_in.identity(payload["user"])
        if identity is None or not isinstance(csrf, str):
            return None
        return Session(identity, csrf)


def csrf_ok(session: Session, given: str | None) -> bool:
    """Whether a form carried its session's CSRF token (constant-time comparison)."""
    return given is not None and hmac.compare_digest(given.encode(), session.csrf.encode())
