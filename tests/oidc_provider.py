"""A local OpenID Connect provider on 127.0.0.1, standing for Keycloak, Okta, Entra ID or Google in the tests.

It is outside syncd, so emulating it is right: discovery, a key set, an authorize endpoint that signs ``user``
in at once and redirects back with a code, and a token endpoint that checks the client secret (HTTP Basic or
form), the redirect URI and the PKCE verifier, and accepts each code once. ID tokens are signed here with
``cryptography`` directly (not with the library syncd verifies them with), and a test can bend the next ones:
override claims or header fields, sign with ``none``, with HS256 keyed by the public key, or with a key that is
not published. Counters say how often discovery, the keys and the token endpoint were asked.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from werkzeug.datastructures import Authorization
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(value: int, size: int | None = None) -> str:
    return b64url(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


@functools.cache
def _rsa_key(kid: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class SigningKey:
    """One of the provider's keys: RSA (RS256) or P-256 (ES256), generated with ``cryptography``."""

    kid: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @classmethod
    def rsa(cls, kid: str) -> SigningKey:
        """The RSA key of this id: made once per test run (2048-bit generation takes a noticeable while)."""
        return cls(kid, _rsa_key(kid))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, ec.generate_private_key(ec.SECP256R1()))

    @property
    def alg(self) -> str:
        return "RS256" if isinstance(self.private, rsa.RSAPrivateKey) else "ES256"

    def jwk(self) -> dict[str, str]:
        if isinstance(self.private, rsa.RSAPrivateKey):
            numbers = self.private.public_key().public_numbers()
            return {
                "kty": "RSA",
                "kid": self.kid,
                "use": "sig",
                "alg": "RS256",
                "n": _uint(numbers.n),
                "e": _uint(numbers.e),
            }
        point = self.private.public_key().public_numbers()
        return {
            "kty": "EC",
            "kid": self.kid,
            "use": "sig",
            "crv": "P-256",
            "x": _uint(point.x, 32),
            "y": _uint(point.y, 32),
        }

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@dataclass
class Grant:
    """An authorization code the provider issued, and what it was issued for."""

    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    claims: dict[str, Any]
    used: bool = False


@dataclass
class Counters:
    discovery: int = 0
    keys: int = 0
    token: int = 0
    token_auth: list[str] = field(default_factory=list)


class OidcProvider:
    """The provider's state and routes; ``start()`` serves it on an ephemeral port of 127.0.0.1."""

    def __init__(self, client_id: str, client_secret: str, *, host: str = "127.0.0.1", page: bool = False) -> None:
        """``host`` names the provider in its URLs: ``localhost`` makes it another site than a page on 127.0.0.1
        for a browser (as a real provider is), while it still listens on 127.0.0.1 only. With ``page``, the
        authorize endpoint shows a page whose button sends the browser back (as a person submits a real
        provider's sign-in form), so the way back is a navigation the provider's site starts."""
        self.client_id = client_id
        self.host = host
        self.page = page
        self.client_secret = client_secret
        self._lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    def reset(self) -> None:
        """A fresh key, the default user and no bent tokens: each test starts from here."""
        with self._lock:
            self.signer = SigningKey.rsa("key-1")
            self.published: list[SigningKey] = [self.signer]
            self.user: dict[str, Any] = {
                "sub": "u-ana",
                "name": "Ana Lead",
                "email": "ana@corp.example",
                "email_verified": True,
                "groups": ["eng-leads"],
            }
            self.claims: dict[str, Any] = {}
            """Overrides of the next ID tokens' claims (a value of None removes the claim)."""
            self.header: dict[str, Any] = {}
            self.mode = "signed"
            """``signed``, ``none`` (alg none, no signature) or ``hs256-public`` (HMAC keyed by the public key)."""
            self.issuer_named: str | None = None
            """What discovery names as the issuer (None: its own URL)."""
            self.codes: dict[str, Grant] = {}
            self.counters = Counters()

    # ----- serving ------------------------------------------------------------------------------------------

    def start(self) -> str:
        self._server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="oidc-provider", daemon=True
        )
        self._thread.start()
        return self.issuer

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def issuer(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_port}/realms/corp"

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        adapter = Map(
            [
                Rule("/realms/corp/.well-known/openid-configuration", endpoint="discovery"),
                Rule("/realms/corp/keys", endpoint="keys"),
                Rule("/realms/corp/authorize", endpoint="authorize"),
                Rule("/realms/corp/token", endpoint="token", methods=["POST"]),
            ]
        ).bind_to_environ(environ)
        endpoint, _ = adapter.match()
        response: Response = getattr(self, f"_{endpoint}")(request)
        return response(environ, start_response)

    @staticmethod
    def _json(body: object, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, content_type="application/json")

    # ----- routes --------------------------------------------------------------------------------------------

    def _discovery(self, request: Request) -> Response:
        with self._lock:
            self.counters.discovery += 1
        return self._json(
            {
                "issuer": self.issuer_named or self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/keys",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            }
        )

    def _keys(self, request: Request) -> Response:
        with self._lock:
            self.counters.keys += 1
            return self._json({"keys": [key.jwk() for key in self.published]})

    def _authorize(self, request: Request) -> Response:
        """Signs ``user`` in at once: an emulated person who always agrees."""
        args = request.args
        problems = [
            name
            for name, ok in (
                ("response_type", args.get("response_type") == "code"),
                ("client_id", args.get("client_id") == self.client_id),
                ("scope", "openid" in args.get("scope", "").split()),
                ("code_challenge_method", args.get("code_challenge_method") == "S256"),
                ("code_challenge", bool(args.get("code_challenge"))),
                ("redirect_uri", bool(args.get("redirect_uri"))),
            )
            if not ok
        ]
        if problems:
            return Response(f"bad authorization request: {', '.join(problems)}", status=400)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self.codes[code] = Grant(
                client_id=self.client_id,
                redirect_uri=args["redirect_uri"],
                challenge=args["code_challenge"],
                nonce=args.get("nonce"),
                claims=dict(self.user),
            )
        if self.page:
            fields = "".join(
                f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
                for name, value in (("code", code), ("state", args.get("state", "")))
            )
            action = html.escape(args["redirect_uri"])
            return Response(
                f'<!doctype html><form method="get" action="{action}">{fields}<button id="approve">Sign in</button>'
                "</form>",
                content_type="text/html",
            )
        query = urlencode({"code": code, "state": args.get("state", "")})
        return Response(status=302, headers={"Location": f"{args['redirect_uri']}?{query}"})

    def _token(self, request: Request) -> Response:
        form = request.form
        with self._lock:
            self.counters.token += 1
            auth = request.authorization
            if isinstance(auth, Authorization) and auth.type == "basic":
                client, secret, how = auth.username, auth.password, "client_secret_basic"
            else:
                client, secret, how = form.get("client_id"), form.get("client_secret"), "client_secret_post"
            self.counters.token_auth.append(how)
            if client != self.client_id or not hmac.compare_digest(str(secret or ""), self.client_secret):
                return self._json({"error": "invalid_client", "error_description": "bad client credentials"}, 401)
            grant = self.codes.get(form.get("code", ""))
            if form.get("grant_type") != "authorization_code" or grant is None or grant.used:
                return self._json({"error": "invalid_grant", "error_description": "code unknown or used"}, 400)
            grant.used = True
            verifier = form.get("code_verifier", "")
            if b64url(hashlib.sha256(verifier.encode()).digest()) != grant.challenge:
                return self._json({"error": "invalid_grant", "error_description": "PKCE verification failed"}, 400)
            if form.get("redirect_uri") != grant.redirect_uri:
                return self._json({"error": "invalid_grant", "error_description": "redirect_uri mismatch"}, 400)
            id_token = self._id_token(grant)
        return self._json(
            {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 300, "id_token": id_token}
        )

    def _id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300, **grant.claims}
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        claims.update(self.claims)
        claims = {name: value for name, value in claims.items() if value is not None}
        alg = {"signed": self.signer.alg, "none": "none", "hs256-public": "HS256"}[self.mode]
        header = {"alg": alg, "kid": self.signer.kid, "typ": "JWT", **self.header}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}".encode()
        if self.mode == "none":
            signature = b""
        elif self.mode == "hs256-public":
            signature = hmac.new(self.signer.public_pem(), signing_input, hashlib.sha256).digest()
        else:
            signature = self.signer.sign(signing_input)
        return f"{signing_input.decode()}.{b64url(signature)}"
