"""Sign-in to the web page through any OpenID Connect provider: the authorization-code flow with PKCE.

The web app (:mod:`syncd.ui.app`) makes one :class:`OidcSignIn` from :class:`syncd.config.OidcSettings` and calls
it twice per sign-in, keeping what lies between the two calls in a signed cookie (:class:`syncd.ui.auth.Sessions`)::

    url, pending = sign_in.start(redirect_uri)                    # GET /ui/auth/oidc: redirect the browser to url
    cookie = sessions.pending(pending, next_page)
    ...                                                           # GET /ui/auth/callback
    pending, next_page = sessions.pop_pending(cookie)             # single use: popped before it is checked
    identity = sign_in.finish(request.args, pending, redirect_uri)

``finish`` checks, in this order, and refuses (:class:`SignInRefused`) at the first that fails: the sign-in is
younger than :data:`PENDING_MAX_AGE_S`; ``state`` is the one this browser was sent with (CSRF); the provider
reported no error; the code exchanges for tokens at the token endpoint, with the client secret and the PKCE
verifier (a code already used is refused there); the ID token is signed by a key the provider publishes with an
asymmetric algorithm (never ``none``, never HS* with a public key); ``iss`` is the issuer, ``aud`` holds the
client id (and ``azp``, if present, is it), ``exp`` and ``iat`` hold within ``leeway_s``, ``nonce`` is this
sign-in's; then :func:`syncd.ui.identity.identity_of` checks the e-mail domain and that the groups claim
grants reading at least one department.

Discovery (``<issuer>/.well-known/openid-configuration``) is fetched on first use and reused for
``discovery_cache_s``; the provider's keys are kept until an ID token names a key they lack, which fetches them
again once (key rotation). Authlib builds the authorization URL and exchanges the code; joserfc verifies the
signature. Messages name what failed and never the client secret, the code, the verifier or a token; the
provider's own words pass through :func:`syncd.redact.redact`. A provider that cannot be used raises
:class:`ProviderUnavailable`. Nothing here logs: the web app logs sign-ins and refusals.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeGuard
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey, JWKRegistry, Key, RSAKey
from joserfc.jws import JWSRegistry

from syncd.config import OidcSettings
from syncd.errors import ProviderUnavailable, SignInRefused
from syncd.redact import redact
from syncd.ui.identity import Identity, identity_of

SIGNING_ALGORITHMS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
"""ID token algorithms accepted: asymmetric only, so only the provider's private key can sign one."""
PENDING_MAX_AGE_S: Final = 600.0
"""How long a person may take at the provider: a sign-in started longer ago is refused (start again)."""
MAX_RESPONSE_BYTES: Final = 1_048_576
"""The largest discovery document or key set read: both are a few kilobytes."""
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


@dataclass(frozen=True)
class Pending:
    """One sign-in between :meth:`OidcSignIn.start` and :meth:`OidcSignIn.finish`, kept in the signed session."""

    state: str
    nonce: str
    code_verifier: str
    started_at: float

    def as_dict(self) -> dict[str, str | float]:
        """For the session cookie (signed by the web app, so the browser cannot change it)."""
        return {
            "state": self.state,
            "nonce": self.nonce,
            "code_verifier": self.code_verifier,
            "started_at": self.started_at,
        }

    @classmethod
    def from_dict(cls, data: object) -> Pending:
        """Back from the session; nothing there (a callback this browser did not start) is refused."""
        if not isinstance(data, Mapping):
            raise SignInRefused("no sign-in was started in this browser (or it was used already): sign in again")
        texts = [data.get(name) for name in ("state", "nonce", "code_verifier")]
        started_at = data.get("started_at")
        if not all(isinstance(text, str) and text for text in texts) or not isinstance(started_at, int | float):
            raise SignInRefused("this browser's sign-in record is incomplete: sign in again")
        state, nonce, code_verifier = (str(text) for text in texts)
        return cls(state, nonce, code_verifier, float(started_at))


@dataclass(frozen=True)
class _Provider:
    """What discovery said: where to send people, where to exchange codes, where the keys are."""

    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_auth_method: str
    fetched_at: float


class OidcSignIn:
    """The authorization-code flow with PKCE against one provider; safe to share between threads."""

    def __init__(self, settings: OidcSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._provider: _Provider | None = None
        self._keys: list[Key] | None = None

    def start(self, redirect_uri: str) -> tuple[str, Pending]:
        """The provider's authorization URL to redirect the browser to, and what to keep until the callback."""
        provider = self._discover()
        pending = Pending(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),
            started_at=self._clock(),
        )
        with OAuth2Session(
            self.settings.client_id,
            scope=" ".join(self.settings.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        ) as client:
            url, _ = client.create_authorization_url(
                provider.authorization_endpoint,
                state=pending.state,
                code_verifier=pending.code_verifier,
                nonce=pending.nonce,
            )
        return str(url), pending

    def finish(self, query_args: Mapping[str, str], pending: Pending, redirect_uri: str) -> Identity:
        """Check the provider's answer (``request.args`` of the callback) and say who signed in, with what rights."""
        if self._clock() - pending.started_at > PENDING_MAX_AGE_S:
            raise SignInRefused(f"the sign-in took longer than {PENDING_MAX_AGE_S / 60:.0f} minutes: sign in again")
        if not hmac.compare_digest(query_args.get("state", "").encode(), pending.state.encode()):
            raise SignInRefused(
                "the provider's answer does not belong to the sign-in this browser started (state mismatch): "
                "sign in again"
            )
        error = query_args.get("error")
        if error is not None:
            raise SignInRefused(f"the provider did not sign you in: {_provider_words(error, query_args)}")
        code = query_args.get("code", "")
        if not code or len(code) > 4096:
            raise SignInRefused("the provider's answer carries no authorization code: sign in again")
        provider = self._discover()
        id_token = self._exchange(provider, code, pending.code_verifier, redirect_uri)
        claims = self._verify(id_token, pending.nonce)
        return identity_of(claims, self.settings)

    # ----- discovery and keys -------------------------------------------------------------------------------

    def _discover(self) -> _Provider:
        with self._lock:
            cached = self._provider
        if cached is not None and self._clock() - cached.fetched_at < self.settings.discovery_cache_s:
            return cached
        issuer = self.settings.issuer
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self._get_json(url, "discovery document")
        if document.get("issuer") != issuer:
            named = _shown(document.get("issuer"))
            raise ProviderUnavailable(
                f"the provider's discovery document ({url}) names the issuer {named}, not {issuer}: write the "
                "issuer in the configuration exactly as the provider names itself"
            )
        endpoints = {name: document.get(name) for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")}
        for name, value in endpoints.items():
            if not isinstance(value, str) or not _secure(value, issuer):
                raise ProviderUnavailable(f"the provider's discovery document ({url}) has no https {name}")
        challenges = document.get("code_challenge_methods_supported")
        if isinstance(challenges, list) and "S256" not in challenges:
            raise ProviderUnavailable(f"the provider at {issuer} does not offer PKCE with S256, which syncd requires")
        provider = _Provider(
            authorization_endpoint=str(endpoints["authorization_endpoint"]),
            token_endpoint=str(endpoints["token_endpoint"]),
            jwks_uri=str(endpoints["jwks_uri"]),
            token_auth_method=_client_auth(document.get("token_endpoint_auth_methods_supported"), issuer),
            fetched_at=self._clock(),
        )
        with self._lock:
            if self._provider is None or self._provider.jwks_uri != provider.jwks_uri:
                self._keys = None
            self._provider = provider
        return provider

    def _signing_key(self, kid: str | None, alg: str) -> Key:
        """The provider's key for this token; a key id not among those cached fetches the key set once more."""
        with self._lock:
            keys = self._keys
        found = _pick(keys, kid, alg) if keys is not None else None
        if found is None:
            keys = self._fetch_keys()
            found = _pick(keys, kid, alg)
        if found is None:
            raise SignInRefused(
                f"the ID token is signed with a key the provider does not publish (kid {_shown(kid)}, {alg}), "
                "even after fetching its keys again: sign in again, and if it persists, check the issuer"
            )
        return found

    def _fetch_keys(self) -> list[Key]:
        provider = self._discover()
        document = self._get_json(provider.jwks_uri, "signing keys")
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise ProviderUnavailable(f"the provider's key set at {provider.jwks_uri} has no 'keys' list")
        keys = []
        for entry in entries:
            try:
                key = JWKRegistry.import_key(entry)
            except (JoseError, ValueError, TypeError):
                continue  # a key of a kind syncd cannot use (or a broken one) cannot have signed a token it accepts
            if key.get("use") in (None, "sig"):
                keys.append(key)
        with self._lock:
            self._keys = keys
        return keys

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            with requests.get(url, timeout=self.settings.timeout_s, stream=True) as response:
                body = response.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True)
                status = response.status_code
        except requests.RequestException as exc:
            raise ProviderUnavailable(f"cannot read the provider's {what} at {url}: {_reason(exc)}") from exc
        if status != 200:
            raise ProviderUnavailable(f"the provider answered HTTP {status} for its {what} at {url}")
        if len(body) > MAX_RESPONSE_BYTES:
            raise ProviderUnavailable(f"the provider's {what} at {url} is larger than 1 MiB")
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise ProviderUnavailable(f"the provider's {what} at {url} is not JSON") from exc
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"the provider's {what} at {url} is not a JSON object")
        return document

    # ----- the code exchange and the ID token -------------------------------------------------------------

    def _exchange(self, provider: _Provider, code: str, verifier: str, redirect_uri: str) -> str:
        """The ID token the token endpoint gives for the code, proving the client secret and the PKCE verifier."""
        with OAuth2Session(
            self.settings.client_id,
            self.settings.client_secret.resolve(),
            token_endpoint_auth_method=provider.token_auth_method,
        ) as client:
            try:
                token = client.fetch_token(
                    provider.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    redirect_uri=redirect_uri,
                    code_verifier=verifier,
                    timeout=self.settings.timeout_s,
                )
            except OAuthError as exc:
                words = _provider_words(str(exc.error), {"error_description": str(exc.description or "")}, code)
                if exc.error == "invalid_client":
                    raise ProviderUnavailable(
                        f"the provider refused syncd's client ({words}): check client_id and client_secret"
                    ) from None
                why = ": it was used already or has expired" if exc.error == "invalid_grant" else ""
                raise SignInRefused(f"the provider refused the sign-in code ({words}){why}; sign in again") from None
            except (requests.RequestException, ValueError) as exc:
                raise ProviderUnavailable(
                    f"the provider's token endpoint {provider.token_endpoint} failed: {_reason(exc)}"
                ) from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise ProviderUnavailable("the provider's token answer has no ID token: is 'openid' among the scopes?")
        return id_token

    def _verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, once its signature and every claim syncd relies on hold."""
        try:
            header = jws.extract_compact(id_token.encode()).headers()
        except (JoseError, ValueError, TypeError):
            raise SignInRefused("the provider's ID token is not a signed JWT: sign in again") from None
        alg = header.get("alg")
        if alg not in SIGNING_ALGORITHMS:
            raise SignInRefused(
                f"the ID token is signed with {_shown(alg)}, which syncd refuses: only a provider's private key "
                f"may sign one ({', '.join(sorted(SIGNING_ALGORITHMS))})"
            )
        kid = header.get("kid")
        key = self._signing_key(kid if isinstance(kid, str) else None, str(alg))
        try:
            claims = jwt.decode(id_token, key, registry=_registry(str(alg))).claims
        except BadSignatureError:
            raise SignInRefused(
                f"the ID token's signature does not verify with the provider's key {_shown(kid)}: sign in again"
            ) from None
        except (JoseError, ValueError, TypeError):
            raise SignInRefused("the provider's ID token cannot be read: sign in again") from None
        self._check_claims(claims, nonce)
        return claims

    def _check_claims(self, claims: dict[str, Any], nonce: str) -> None:
        settings, now, leeway = self.settings, self._clock(), self.settings.leeway_s
        if claims.get("iss") != settings.issuer:
            raise SignInRefused(
                f"the ID token was issued by {_shown(claims.get('iss'))}, not by the configured issuer "
                f"{settings.issuer}"
            )
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
        if settings.client_id not in audiences or claims.get("azp", settings.client_id) != settings.client_id:
            raise SignInRefused(
                f"the ID token is meant for another application (aud {_shown(audience)}), not client "
                f"{settings.client_id!r}: check client_id"
            )
        expires, issued = claims.get("exp"), claims.get("iat")
        if not _numeric(expires) or not _numeric(issued):
            raise SignInRefused("the ID token lacks a numeric 'exp' or 'iat': the provider is not OIDC compliant")
        if expires + leeway <= now:
            raise SignInRefused(
                f"the ID token expired at {_moment(expires)}: sign in again (if it keeps happening, check that "
                "this server's clock is right)"
            )
        if issued - leeway > now:
            raise SignInRefused(
                f"the ID token was issued in the future ({_moment(issued)}): this server's clock or the "
                "provider's is wrong"
            )
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(
            str(claims["nonce"]).encode(), nonce.encode()
        ):
            raise SignInRefused("the ID token's nonce is not this sign-in's (a replayed token?): sign in again")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise SignInRefused("the ID token names no subject ('sub'): the provider is not OIDC compliant")


def _registry(alg: str) -> JWSRegistry:
    """Only ``alg``; header fields a provider adds beyond the registered ones are tolerated (``crit`` still holds)."""
    return JWSRegistry(algorithms=[alg], strict_check_header=False)


def _client_auth(methods: object, issuer: str) -> str:
    """How syncd proves its client secret: HTTP Basic where offered (the default), else in the form."""
    if not isinstance(methods, list):
        return "client_secret_basic"  # the default the discovery specification names
    for method in ("client_secret_basic", "client_secret_post"):
        if method in methods:
            return method
    raise ProviderUnavailable(
        f"the provider at {issuer} takes neither client_secret_basic nor client_secret_post at its token endpoint"
    )


def _pick(keys: list[Key], kid: str | None, alg: str) -> Key | None:
    """The published key that can have signed with ``alg`` under ``kid`` (a lone candidate when no kid is named)."""
    kind = ECKey if alg.startswith("ES") else RSAKey
    candidates = [
        key
        for key in keys
        if isinstance(key, kind) and key.get("alg") in (None, alg) and (kid is None or key.kid == kid)
    ]
    if kid is None and len(candidates) > 1:
        return None  # a token naming no key, from a provider publishing several: which one is not ours to guess
    return candidates[0] if candidates else None


def _secure(url: str, issuer: str) -> bool:
    """An https URL, or http on the loopback interface when the issuer itself is there (tests, a local provider)."""
    parts = urlsplit(url)
    local = urlsplit(issuer).hostname in _LOOPBACK and parts.hostname in _LOOPBACK
    return bool(parts.hostname) and (parts.scheme == "https" or (parts.scheme == "http" and local))


def _numeric(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _moment(epoch: float) -> str:
    try:
        return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        return "an impossible time"


def _shown(value: object) -> str:
    """A value from the provider, quoted for a message: printable, short, and redacted."""
    text = _UNPRINTABLE.sub("?", redact(str(value)))
    return repr(text if len(text) <= 120 else text[:117] + "...")


def _provider_words(error: str, args: Mapping[str, str], *secrets_seen: str) -> str:
    """The provider's error code and description, made safe to show: no code or token, nothing unprintable."""
    code = error if _ERROR_CODE.fullmatch(error) else "an unreadable error"
    description = args.get("error_description") or ""
    for secret in secrets_seen:
        description = description.replace(secret, "***")
    description = _UNPRINTABLE.sub("?", redact(description)).strip()[:200]
    return f"{code}: {description}" if description else code


def _reason(exc: Exception) -> str:
    """What went wrong talking to the provider, by kind: the exception's own text may quote a URL with a code."""
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__
