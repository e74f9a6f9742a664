"""OIDC sign-in for the web page, end to end against a local provider on 127.0.0.1 (tests/oidc_provider.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
import requests
from pydantic import ValidationError

from syncd.config import OidcSettings
from syncd.errors import FileError, ProviderUnavailable, SignInFailed, SignInRefused
from syncd.ui.identity import ALL, Identity, groups_of, identity_of
from syncd.ui.oidc import OidcSignIn, Pending
from syncd.yamlfile import load_yaml_model
from tests.oidc_provider import OidcProvider, SigningKey

CLIENT_ID = "syncd-web"
CLIENT_SECRET = "s3cret-client-secret-for-tests"
REDIRECT = "https://syncd.corp.example/ui/auth/callback"
GRANTS: dict[str, Any] = {
    "read": {"all": ["auditors"], "engineering": ["eng-leads"], "sales": ["sales-team"]},
    "decide": {"engineering": ["eng-leads"], "marketing": ["mkt-leads"]},
}


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    emulated = OidcProvider(CLIENT_ID, CLIENT_SECRET)
    emulated.start()
    yield emulated
    emulated.stop()


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oidc") / "client-secret"
    path.write_text(CLIENT_SECRET + "\n")
    return path


def settings_for(issuer: str, secret_file: Path, **overrides: Any) -> OidcSettings:
    return OidcSettings.model_validate(
        {"issuer": issuer, "client_id": CLIENT_ID, "client_secret": {"file": str(secret_file)}, **GRANTS, **overrides}
    )


@pytest.fixture
def sign_in(provider: OidcProvider, secret_file: Path) -> OidcSignIn:
    provider.reset()
    return OidcSignIn(settings_for(provider.issuer, secret_file))


def authorize(sign_in: OidcSignIn) -> tuple[dict[str, str], Pending]:
    """Start a sign-in and follow the browser to the provider, which signs its user in and redirects back."""
    url, pending = sign_in.start(REDIRECT)
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return dict(parse_qsl(urlsplit(location).query)), pending


def signed_in(sign_in: OidcSignIn) -> Identity:
    args, pending = authorize(sign_in)
    return sign_in.finish(args, pending, REDIRECT)


def refusal(sign_in: OidcSignIn, kind: type[SignInFailed] = SignInRefused) -> str:
    """The message of a refused sign-in, which must quote none of the secrets the flow handled."""
    args, pending = authorize(sign_in)
    with pytest.raises(kind) as raised:
        sign_in.finish(args, pending, REDIRECT)
    message = str(raised.value)
    for secret in (CLIENT_SECRET, args["code"], pending.code_verifier, pending.nonce, pending.state):
        assert secret not in message
    return message


class TestSignIn:
    def test_the_provider_signs_a_person_in_with_their_permissions(
        self, sign_in: OidcSignIn, provider: OidcProvider
    ) -> None:
        """The whole flow yields who signed in and what their groups grant; the code went with Basic auth."""
        identity = signed_in(sign_in)
        assert identity == Identity(
            subject="u-ana",
            name="Ana Lead",
            email="ana@corp.example",
            read=frozenset({"engineering"}),
            decide=frozenset({"engineering"}),
        )
        assert identity.may_read("engineering")
        assert identity.may_decide("engineering")
        assert not identity.may_read("sales")
        assert provider.counters.token_auth == ["client_secret_basic"]

    def test_the_authorization_request_carries_pkce_state_and_nonce(self, sign_in: OidcSignIn) -> None:
        """The browser is sent with a S256 challenge (never the verifier), the state, the nonce and the scopes."""
        url, pending = sign_in.start(REDIRECT)
        query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
        assert query["code_challenge_method"] == "S256"
        assert query["state"] == pending.state
        assert query["nonce"] == pending.nonce
        assert query["scope"] == "openid email profile"
        assert query["redirect_uri"] == REDIRECT
        assert pending.code_verifier not in url
        assert len(pending.code_verifier) >= 43

    def test_the_pending_sign_in_survives_the_session_cookie(self, sign_in: OidcSignIn) -> None:
        """What the web app keeps between the calls round-trips through plain JSON-able data."""
        args, pending = authorize(sign_in)
        restored = Pending.from_dict(pending.as_dict())
        assert restored == pending
        assert sign_in.finish(args, restored, REDIRECT).subject == "u-ana"

    def test_discovery_is_fetched_once_and_reused(self, sign_in: OidcSignIn, provider: OidcProvider) -> None:
        """Two sign-ins read the discovery document and the keys once."""
        signed_in(sign_in)
        signed_in(sign_in)
        assert (provider.counters.discovery, provider.counters.keys) == (1, 1)

    def test_a_rotated_key_is_fetched_and_accepted(self, sign_in: OidcSignIn, provider: OidcProvider) -> None:
        """After the provider rotates to a new key (here an ES256 one), the keys are fetched again, once."""
        signed_in(sign_in)
        provider.signer = SigningKey.ec("key-2")
        provider.published = [provider.signer]
        assert signed_in(sign_in).subject == "u-ana"
        assert provider.counters.keys == 2
        signed_in(sign_in)
        assert provider.counters.keys == 2

    def test_header_fields_beyond_the_registered_ones_are_tolerated(
        self, sign_in: OidcSignIn, provider: OidcProvider
    ) -> None:
        """Providers add their own header fields (thumbprints, vendor hints): the signature decides, not them."""
        provider.header = {"x5t": "abc", "pi.atm": "vendor-hint"}
        assert signed_in(sign_in).subject == "u-ana"

    def test_the_secret_may_travel_in_the_form(self, provider: OidcProvider, secret_file: Path) -> None:
        """A provider that takes only client_secret_post gets the secret in the form."""
        provider.reset()
        sign_in = OidcSignIn(settings_for(provider.issuer, secret_file))
        original = provider._discovery

        def post_only(request: Any) -> Any:
            response = original(request)
            document = response.get_json()
            document["token_endpoint_auth_methods_supported"] = ["client_secret_post"]
            return provider._json(document)

        provider._discovery = post_only  # type: ignore[method-assign]
        try:
            assert signed_in(sign_in).subject == "u-ana"
        finally:
            del provider._discovery
        assert provider.counters.token_auth == ["client_secret_post"]


class TestRefused:
    def test_a_wrong_state_is_refused_before_the_code_is_used(
        self, sign_in: OidcSignIn, provider: OidcProvider
    ) -> None:
        """An answer carrying another sign-in's state (CSRF) is refused, and its code is never exchanged."""
        args, pending = authorize(sign_in)
        with pytest.raises(SignInRefused, match="state mismatch"):
            sign_in.finish({**args, "state": "another-sign-in"}, pending, REDIRECT)
        with pytest.raises(SignInRefused, match="state mismatch"):
            sign_in.finish({"code": args["code"]}, pending, REDIRECT)
        assert provider.counters.token == 0

    def test_a_replayed_code_is_refused(self, sign_in: OidcSignIn) -> None:
        """The same callback twice: the provider refuses the code the second time, and so does syncd."""
        args, pending = authorize(sign_in)
        sign_in.finish(args, pending, REDIRECT)
        with pytest.raises(SignInRefused, match="refused the sign-in code \\(invalid_grant") as raised:
            sign_in.finish(args, pending, REDIRECT)
        assert args["code"] not in str(raised.value)

    def test_a_wrong_pkce_verifier_is_refused(self, sign_in: OidcSignIn) -> None:
        """A code stolen from the redirect is useless without the verifier of the browser that started it."""
        args, pending = authorize(sign_in)
        other = Pending(pending.state, pending.nonce, "x" * 64, pending.started_at)
        with pytest.raises(SignInRefused, match="PKCE verification failed"):
            sign_in.finish(args, other, REDIRECT)

    @pytest.mark.parametrize(
        ("claims", "expected"),
        [
            ({"nonce": "another-sign-ins-nonce"}, "nonce is not this sign-in's"),
            ({"nonce": None}, "nonce is not this sign-in's"),
            ({"aud": "another-app"}, "meant for another application"),
            ({"aud": [CLIENT_ID, "another-app"], "azp": "another-app"}, "meant for another application"),
            ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired at"),
            ({"iat": int(time.time()) + 3600}, "issued in the future"),
            ({"iss": "https://evil.example/realms/corp"}, "issued by 'https://evil.example/realms/corp'"),
            ({"sub": None}, "names no subject"),
        ],
        ids=["nonce", "no-nonce", "audience", "azp", "expired", "future", "issuer", "subject"],
    )
    def test_an_id_token_failing_a_claim_check_is_refused(
        self, sign_in: OidcSignIn, provider: OidcProvider, claims: dict[str, Any], expected: str
    ) -> None:
        """Each claim syncd relies on is checked, and the refusal says which one failed."""
        provider.claims = claims
        assert expected in refusal(sign_in)

    def test_an_expiry_within_the_leeway_is_accepted(self, sign_in: OidcSignIn, provider: OidcProvider) -> None:
        """A token that expired 30 s ago passes the default 60 s leeway (clock skew)."""
        provider.claims = {"exp": int(time.time()) - 30}
        assert signed_in(sign_in).subject == "u-ana"

    @pytest.mark.parametrize(("mode", "alg"), [("none", "'none'"), ("hs256-public", "'HS256'")])
    def test_an_unsigned_or_symmetric_token_is_refused(
        self, sign_in: OidcSignIn, provider: OidcProvider, mode: str, alg: str
    ) -> None:
        """``alg: none`` and HS256 keyed by the provider's public key (a forgery anyone can make) are refused."""
        provider.mode = mode
        assert f"signed with {alg}, which syncd refuses" in refusal(sign_in)

    def test_an_unknown_signing_key_is_refused_after_one_refetch(
        self, sign_in: OidcSignIn, provider: OidcProvider
    ) -> None:
        """A token signed by a key the provider does not publish fetches the keys once more, then is refused."""
        signed_in(sign_in)
        provider.signer = SigningKey.rsa("key-nobody-publishes")
        assert "key the provider does not publish (kid 'key-nobody-publishes'" in refusal(sign_in)
        assert provider.counters.keys == 2

    def test_a_forged_signature_is_refused(self, sign_in: OidcSignIn, provider: OidcProvider) -> None:
        """A token signed by another key under a published key id fails its signature check."""
        provider.signer = SigningKey("key-1", SigningKey.rsa("forger").private)
        assert "signature does not verify with the provider's key 'key-1'" in refusal(sign_in)

    def test_the_providers_error_is_shown_without_its_secrets(self, sign_in: OidcSignIn) -> None:
        """A person who declines at the provider is told so, with the provider's words (redacted)."""
        _, pending = authorize(sign_in)
        args = {"state": pending.state, "error": "access_denied", "error_description": "user said no; token=abc123xyz"}
        with pytest.raises(SignInRefused, match="did not sign you in: access_denied: user said no; token=\\*\\*\\*"):
            sign_in.finish(args, pending, REDIRECT)

    def test_a_stale_sign_in_is_refused(self, provider: OidcProvider, secret_file: Path) -> None:
        """Coming back from the provider more than ten minutes later means starting again."""
        provider.reset()
        now = [time.time()]
        sign_in = OidcSignIn(settings_for(provider.issuer, secret_file), clock=lambda: now[0])
        args, pending = authorize(sign_in)
        now[0] += 601
        with pytest.raises(SignInRefused, match="longer than 10 minutes"):
            sign_in.finish(args, pending, REDIRECT)

    def test_a_callback_nobody_started_is_refused(self) -> None:
        """A session without a pending sign-in (or a tampered one) is refused with what to do."""
        with pytest.raises(SignInRefused, match="no sign-in was started"):
            Pending.from_dict(None)
        with pytest.raises(SignInRefused, match="incomplete"):
            Pending.from_dict({"state": "s", "nonce": "", "code_verifier": "v", "started_at": 1.0})

    def test_a_person_who_may_read_nothing_is_refused(self, sign_in: OidcSignIn, provider: OidcProvider) -> None:
        """Signed in at the provider but in no granted group: refused, naming the groups the token carried."""
        provider.user["groups"] = ["interns"]
        assert "Ana Lead may read no department here" in refusal(sign_in)
        assert "'groups' claim: interns" in refusal(sign_in)


class TestProviderUnavailable:
    def test_a_wrong_client_secret_names_the_configuration(self, provider: OidcProvider, tmp_path: Path) -> None:
        """The provider refusing syncd's client is the operator's to fix, and the secret is not quoted."""
        provider.reset()
        wrong = tmp_path / "secret"
        wrong.write_text("not-the-client-secret")
        sign_in = OidcSignIn(settings_for(provider.issuer, wrong))
        message = refusal(sign_in, ProviderUnavailable)
        assert "refused syncd's client (invalid_client" in message
        assert "not-the-client-secret" not in message

    def test_a_discovery_document_of_another_issuer_is_refused(self, provider: OidcProvider, secret_file: Path) -> None:
        """The issuer must be written exactly as the provider names itself (here with a trailing slash)."""
        provider.reset()
        provider.issuer_named = provider.issuer + "/"
        sign_in = OidcSignIn(settings_for(provider.issuer, secret_file))
        with pytest.raises(ProviderUnavailable, match=r"names the issuer .*/realms/corp/', not"):
            sign_in.start(REDIRECT)

    def test_a_provider_that_does_not_answer(self, secret_file: Path) -> None:
        """No provider at the issuer: the message says where syncd looked."""
        sign_in = OidcSignIn(settings_for("http://127.0.0.1:9/realms/none", secret_file, timeout_s=2))
        with pytest.raises(
            ProviderUnavailable, match=r"discovery document at http://127\.0\.0\.1:9/.*: cannot connect"
        ):
            sign_in.start(REDIRECT)


def settings(**overrides: Any) -> OidcSettings:
    return OidcSettings.model_validate(
        {"issuer": "https://id.corp.example", "client_id": "c", "client_secret": {"env": "X"}, **GRANTS, **overrides}
    )


def claims(**overrides: Any) -> dict[str, Any]:
    return {"sub": "u-1", "name": "Ben", "email": "Ben@Corp.example", "email_verified": True, **overrides}


class TestPermissions:
    @pytest.mark.parametrize(
        ("groups", "read", "decide"),
        [
            (["auditors"], ALL, frozenset()),
            (["eng-leads"], frozenset({"engineering"}), frozenset({"engineering"})),
            (["sales-team", "mkt-leads"], frozenset({"sales", "marketing"}), frozenset({"marketing"})),
            (["auditors", "mkt-leads"], ALL, frozenset({"marketing"})),
        ],
        ids=["auditor", "lead", "decide-implies-read", "both"],
    )
    def test_groups_grant_read_and_decide_per_department(self, groups: list[str], read: object, decide: object) -> None:
        """Each department's groups grant it; 'all' grants every department; deciding implies reading."""
        identity = identity_of(claims(groups=groups), settings())
        assert (identity.read, identity.decide) == (read, decide)

    def test_an_identity_round_trips_through_the_session(self) -> None:
        """The web app keeps who signed in, with their permissions, as plain JSON-able data."""
        for groups in (["auditors", "mkt-leads"], ["sales-team"]):
            identity = identity_of(claims(groups=groups), settings())
            assert Identity.from_dict(json.loads(json.dumps(identity.as_dict()))) == identity

    def test_decide_all_reads_all(self) -> None:
        """A group that may decide everywhere sees everything."""
        identity = identity_of(claims(groups=["ops"]), settings(decide={"all": ["ops"]}, read={}))
        assert (identity.read, identity.decide) == (ALL, ALL)
        assert identity.may_decide("anything")

    def test_the_groups_claim_may_be_nested_or_one_string(self) -> None:
        """Keycloak's realm_access.roles and Google's hd (one string) serve as groups."""
        keycloak = claims(realm_access={"roles": ["eng-leads", 7]})
        assert groups_of(keycloak, "realm_access.roles") == {"eng-leads"}
        google = identity_of(claims(hd="corp.example"), settings(groups_claim="hd", read={"all": ["corp.example"]}))
        assert google.read == ALL

    def test_a_group_overage_is_explained(self) -> None:
        """Entra ID leaves groups out past its limit and says so in _claim_names: the refusal says what to do."""
        overage = claims(_claim_names={"groups": "src1"})
        with pytest.raises(SignInRefused, match="left your groups out"):
            identity_of(overage, settings())

    def test_the_name_falls_back_to_the_email_then_the_subject(self) -> None:
        """A token without a name claim still names the person."""
        assert identity_of(claims(name=None, groups=["auditors"]), settings()).name == "ben@corp.example"
        assert identity_of(claims(name="", email=None, groups=["auditors"]), settings()).name == "u-1"

    @pytest.mark.parametrize(
        ("person", "expected"),
        [
            ({"email": "eve@evil.example"}, "eve@evil.example is not in a domain allowed"),
            ({"email_verified": False}, "has not verified ben@corp.example"),
            ({"email": None}, "sent no e-mail address"),
        ],
        ids=["other-domain", "unverified", "no-email"],
    )
    def test_email_domains_limit_who_signs_in(self, person: dict[str, Any], expected: str) -> None:
        """With email_domains set, only verified addresses in those domains pass."""
        limited = settings(email_domains=["corp.example"])
        assert identity_of(claims(groups=["auditors"]), limited).email == "ben@corp.example"
        with pytest.raises(SignInRefused, match=expected):
            identity_of(claims(groups=["auditors"], **person), limited)


class TestSettings:
    @pytest.mark.parametrize(
        ("overrides", "expected"),
        [
            ({"scopes": ["email"]}, "add 'openid' to the scopes"),
            ({"issuer": "http://id.corp.example"}, "an OIDC issuer is an https:// URL"),
            ({"read": {"sales": []}}, "name at least one group for sales"),
            ({"read": {}, "decide": {}}, "or nobody can sign in"),
            ({"email_domains": ["@corp.example"]}, "name domains such as corp.example"),
            ({"client_secret": "the-secret-itself"}, "not the credential"),
            ({"leeway_s": 3600}, "less than or equal to 300"),
        ],
        ids=["openid", "https", "empty-groups", "nobody", "domain", "literal-secret", "leeway"],
    )
    def test_a_wrong_setting_says_the_fix(self, overrides: dict[str, Any], expected: str) -> None:
        """Each mistake an operator is likely to make is refused with what to write instead."""
        with pytest.raises(ValidationError, match=expected):
            settings(**overrides)

    def test_departments_that_do_not_exist_are_named(self) -> None:
        """The web configuration can report a department typo (it would grant nothing)."""
        assert settings().unknown_departments(["engineering", "sales"]) == [("decide", "marketing")]

    def test_a_file_names_the_line(self, tmp_path: Path) -> None:
        """Loaded from YAML, a mistake is reported with the file and line."""
        path = tmp_path / "oidc.yaml"
        path.write_text(
            "issuer: https://id.corp.example\nclient_id: syncd\nclient_secret: {env: SECRET}\n"
            "read: {all: [auditors]}\nscopes: [email]\n"
        )
        with pytest.raises(FileError, match=f"{path}:5: .*add 'openid'"):
            load_yaml_model(path, OidcSettings)

    def test_a_secret_written_in_the_file_is_not_quoted_back(self, tmp_path: Path) -> None:
        """A client secret pasted into the file is refused without repeating it."""
        path = tmp_path / "oidc.yaml"
        path.write_text(
            "issuer: https://id.corp.example\nclient_id: syncd\nclient_secret: pasted-client-secret\n"
            "read: {all: [auditors]}\n"
        )
        with pytest.raises(FileError, match=f"{path}:3: .*not the credential") as raised:
            load_yaml_model(path, OidcSettings)
        assert "pasted-client-secret" not in str(raised.value)
