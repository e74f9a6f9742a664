"""syncd's configuration as code: who we are (``config/syncd.yaml``) and how each department connects.

- ``config/syncd.yaml``: the instance: store URL, poll interval, audit settings. Every setting can be overridden
  from the environment (``SYNCD_STORE``, ``SYNCD_POLL_INTERVAL_S``, ...), through pydantic-settings.
- ``config/departments/<name>.yaml``: one department: its tool, connection (base URL; credentials only *named*,
  by environment variable or file, never written here), workspace (Jira project key, Trello board id, Asana
  project gid), people directory overrides (e-mail -> account), Jira transition fields, and ``notify``: where
  the department is told what waits for a person (Apprise URLs, named like credentials; :mod:`syncd.notices`).

Every file is validated on load; unknown keys are rejected; every problem of every file is reported at once as
``file:line: what is wrong and how to fix it`` (:class:`syncd.yamlfile.FileError`, collected in
:class:`ConfigError`). JSON Schemas of the file kinds come from :func:`schemas` (``syncd schema``).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from syncd.errors import ConfigError as ConfigError  # noqa: PLC0414 - re-exported: its callers import it from here
from syncd.errors import SettingError, SyncdError
from syncd.guard import Threshold
from syncd.notices import KINDS, Kind, Route
from syncd.redact import remember
from syncd.yamlfile import FileError, line_of, load_yaml_model

MAX_CREDENTIAL_BYTES = 65_536
"""The largest credential file read: a token is a few hundred bytes; ``{file: /dev/zero}`` must not eat memory."""
DAY_S = 86_400.0
"""The longest poll interval: a longer one is a typo (and ``.inf`` would never poll again)."""


class _Strict(BaseModel):
    # ``.inf`` or ``.nan`` pass every ``gt``/``le`` check pydantic makes on its own, so they are refused first.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _http_url(url: str) -> str:
    """An http(s) URL with a host and no user or password in it, checked offline (a typo fails here, not later)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}: write https://host[:port][/path]") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("not an http(s) URL with a host: write https://host[:port][/path]")
    if parts.username or parts.password:
        raise ValueError("a URL here carries no user or password: name credentials as {env: ...} or {file: ...}")
    if parts.query or parts.fragment:
        raise ValueError("remove the ?query or #fragment: write https://host[:port][/path]")
    return url


HttpUrl = Annotated[str, AfterValidator(_http_url)]
"""A URL syncd sends requests to or gives the tools: validated when the file is loaded."""


class Secret(_Strict):
    """Where a credential comes from: an environment variable or a file (never the config itself)."""

    env: str | None = Field(None, description="name of the environment variable holding the credential")
    file: Path | None = Field(None, description="path of a file holding the credential (e.g. a mounted secret)")

    @model_validator(mode="before")
    @classmethod
    def _a_source_not_a_value(cls, data: object) -> object:
        if not isinstance(data, dict):
            raise ValueError(
                "write where the credential comes from, not the credential: {env: VARIABLE} or {file: PATH}"
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Secret:
        if (self.env is None) == (self.file is None):
            raise ValueError("name exactly one of 'env' (an environment variable) or 'file' (a path)")
        return self

    @field_validator("file")
    @classmethod
    def _a_small_regular_file(cls, path: Path | None) -> Path | None:
        """A file that is there must be one syncd can read whole; one missing may be mounted later (resolve says)."""
        try:
            status = path.stat() if path is not None else None
        except OSError:
            return path
        if status is not None and not stat.S_ISREG(status.st_mode):
            raise ValueError(f"{path} is not a regular file: point at the file holding the credential")
        if status is not None and status.st_size > MAX_CREDENTIAL_BYTES:
            raise ValueError(f"{path} is larger than {MAX_CREDENTIAL_BYTES // 1024} KiB: not a credential")
        return path

    def resolve(self) -> str:
        """Read the credential now, and register it with :mod:`syncd.redact` so no message can quote it back.

        The error names where it was looked for, never its value; nor a "variable name" that looks like the
        credential itself (``{env: <the token>}``), which is registered as a secret instead.
        """
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise SyncdError(f"{_variable(self.env)} is not set: export it with the credential")
            remember(value)
            return value
        assert self.file is not None  # guaranteed by the validator
        try:
            with self.file.open("rb") as file:
                if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                    raise SyncdError(f"the credential file {self.file} is not a regular file: point at the file")
                data = file.read(MAX_CREDENTIAL_BYTES + 1)
        except OSError as exc:
            raise SyncdError(f"cannot read the credential file {self.file}: {exc.strerror}") from exc
        if len(data) > MAX_CREDENTIAL_BYTES:
            raise SyncdError(f"the credential file {self.file} is larger than {MAX_CREDENTIAL_BYTES // 1024} KiB")
        try:
            value = data.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise SyncdError(
                f"the credential file {self.file} is not UTF-8 text: save the credential as UTF-8"
            ) from exc
        remember(value)
        return value


_VARIABLE_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
"""How syncd's docs name credential variables (``SYNCD_TRELLO_TOKEN``); a token is rarely all upper case."""


def _variable(name: str) -> str:
    """How an unset variable is named in a message: by its name, unless the name may be the credential itself."""
    if _VARIABLE_NAME.fullmatch(name):
        return f"environment variable {name}"
    remember(name)
    return (
        "the environment variable named in 'env' (its name is not shown: it does not look like a variable name, "
        "and may be the credential itself; write {env: VARIABLE})"
    )


class JiraConnection(_Strict):
    """Jira Cloud or Server / Data Center."""

    tool: Literal["jira"]
    base_url: HttpUrl
    user: str = Field(description="the account's e-mail (Cloud) or user name (Server)")
    token: Secret
    project: str = Field(description="the project key, e.g. ENG")
    transition_fields: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per target status, the fields its transition screen requires"
    )
    webhook_secret: Secret | None = None
    search_settle_s: float = Field(
        10.0,
        ge=0,
        le=600,
        description="how long Jira Cloud search may take to list a just-created issue; a create whose answer "
        "was lost is looked up no sooner",
    )
    deletion_check_s: float = Field(
        300.0,
        ge=10,
        le=3600,
        description="seconds between listings of the project's keys, which is how a deleted issue is noticed "
        "when polling (search never shows one); at most an hour, since the hourly full scan lists them anyway",
    )


class TrelloConnection(_Strict):
    """Trello (API key and token)."""

    tool: Literal["trello"]
    base_url: HttpUrl = "https://api.trello.com"
    key: Secret
    token: Secret
    board: str = Field(description="the board id")
    secret: Secret | None = Field(None, description="the application secret, to verify webhook signatures")


class AsanaConnection(_Strict):
    """Asana (personal access token or service account token)."""

    tool: Literal["asana"]
    base_url: HttpUrl = "https://app.asana.com"
    token: Secret
    project: str = Field(description="the project gid")


Connection = Annotated[JiraConnection | TrelloConnection | AsanaConnection, Field(discriminator="tool")]


ALL_DEPARTMENTS: Final = "all"
"""In an OIDC permission map, the key that grants a permission in every department."""
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _oidc_issuer(url: str) -> str:
    """An issuer is https (its keys and tokens travel over it); kept as written: ``iss`` must match it exactly."""
    parts = urlsplit(url)
    if parts.scheme != "https" and parts.hostname not in _LOOPBACK:
        raise ValueError("an OIDC issuer is an https:// URL (plain http only on 127.0.0.1 or localhost, for tests)")
    return url


def _groups_per_department(permissions: dict[str, list[str]]) -> dict[str, list[str]]:
    """A department granted to no group is a half-written entry: say so rather than grant nothing silently."""
    empty = sorted(department for department, groups in permissions.items() if not groups)
    if empty:
        raise ValueError(f"name at least one group for {', '.join(empty)}, or remove the entry")
    return permissions


GroupsPerDepartment = Annotated[
    dict[str, list[Annotated[str, Field(min_length=1)]]], AfterValidator(_groups_per_department)
]


class OidcSettings(_Strict):
    """Sign-in to the web page through an OpenID Connect provider (the ``oidc`` section of ``web``).

    Who may read and who may decide is granted per department to the groups the provider puts in the ID token;
    a person in no group that may read anywhere is refused sign-in.
    """

    issuer: Annotated[HttpUrl, AfterValidator(_oidc_issuer)] = Field(
        description="the provider's issuer URL, exactly as its /.well-known/openid-configuration names it, e.g. "
        "https://keycloak.corp.example/realms/corp"
    )
    label: str | None = Field(
        None,
        min_length=1,
        max_length=60,
        description="how the sign-in page names the provider ('Sign in with <label>'); default: the issuer's host",
    )
    client_id: str = Field(min_length=1, description="the client (application) id registered at the provider")
    client_secret: Secret = Field(description="where the client secret comes from: {env: VAR} or {file: PATH}")
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "email", "profile"],
        description="scopes asked for; 'openid' is required, some providers need another to send groups",
    )
    groups_claim: str = Field(
        "groups",
        min_length=1,
        description="the ID token claim holding the person's groups (a list, or one string such as Google's "
        "'hd'); a dotted path reaches into an object, e.g. realm_access.roles",
    )
    name_claim: str = Field("name", min_length=1, description="the claim naming the person (fallbacks: e-mail, sub)")
    email_claim: str = Field(
        "email", min_length=1, description="the claim holding the e-mail (Entra ID: 'email' or 'preferred_username')"
    )
    read: GroupsPerDepartment = Field(
        default_factory=dict,
        description="per department (or 'all'), the groups whose members see its audit events and items",
    )
    decide: GroupsPerDepartment = Field(
        default_factory=dict,
        description="per department (or 'all'), the groups whose members decide its held conflicts, quarantined "
        "items and mass changes (they also see them)",
    )
    email_domains: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, description="if set, only people whose e-mail is in one of these domains may sign in"
    )
    leeway_s: int = Field(60, ge=0, le=300, description="clock skew tolerated on the ID token's exp and iat")
    timeout_s: float = Field(10.0, gt=0, le=60, description="seconds to wait for the provider")
    discovery_cache_s: float = Field(
        3600.0, ge=0, le=DAY_S, description="how long the discovery document is reused before it is fetched again"
    )

    @field_validator("scopes")
    @classmethod
    def _openid(cls, scopes: list[str]) -> list[str]:
        if "openid" not in scopes:
            raise ValueError("add 'openid' to the scopes: without it the provider sends no ID token")
        return scopes

    @field_validator("email_domains")
    @classmethod
    def _domains(cls, domains: list[str] | None) -> list[str] | None:
        if domains is None:
            return None
        bad = [domain for domain in domains if "@" in domain or "." not in domain]
        if bad:
            raise ValueError(f"name domains such as corp.example, not {', '.join(map(repr, bad))}")
        return [domain.lower().lstrip(".") for domain in domains]

    @model_validator(mode="after")
    def _someone_may_read(self) -> OidcSettings:
        if not self.read and not self.decide:
            raise ValueError("grant 'read' (and 'decide') to at least one group, or nobody can sign in")
        return self

    @property
    def shown_name(self) -> str:
        """The provider as the sign-in page names it."""
        return self.label or urlsplit(self.issuer).hostname or self.issuer

    def unknown_departments(self, known: Iterable[str]) -> list[tuple[str, str]]:
        """``(permission, department)`` for each department named that is not configured: a typo grants nothing."""
        names = {*known, ALL_DEPARTMENTS}
        return [
            (permission, department)
            for permission in ("read", "decide")
            for department in getattr(self, permission)
            if department not in names
        ]


class MassChange(_Strict):
    """When the archives, deletes, unlinks or recreates toward an endpoint are a mass change held for a person.

    Held when those of one pass, with those applied toward it in the last ``window_s`` seconds, exceed both
    ``max_items`` and ``max_share`` of the endpoint's linked items (see :mod:`syncd.guard`).
    """

    max_items: int = Field(10, ge=0, description="more destructive steps than this toward one endpoint in one pass")
    max_share: float = Field(
        0.2, ge=0, le=1, description="... and more than this share of the items the endpoint links"
    )
    window_s: float = Field(
        600.0,
        ge=0,
        le=86_400,
        description="destructive steps applied toward the endpoint this many seconds before count too, so a mass "
        "change arriving one webhook at a time is held once it adds up (0: one pass alone)",
    )

    def threshold(self) -> Threshold:
        """The engine's form of it."""
        return Threshold(self.max_items, self.max_share, self.window_s)


class NotifyTarget(_Strict):
    """One place a department is told what waits for a person: an Apprise URL (Slack, Teams, e-mail, a webhook).

    The URL carries the channel's secret (a webhook token, an SMTP password), so it is named like a credential,
    ``{env: VARIABLE}`` or ``{file: PATH}``, never written here.
    """

    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]{1,60}$",
        description="names the target in logs and the outbox (default: its position, 1, 2, ...)",
    )
    url: Secret = Field(description="where the Apprise URL comes from: {env: VARIABLE} or {file: PATH}")
    events: list[Kind] = Field(
        default_factory=lambda: list(KINDS),
        min_length=1,
        description="which events to send: held_conflict, quarantined, guard_hold, endpoint_failing (default: all)",
    )
    failing_after_s: float = Field(
        900.0,
        ge=0,
        le=7 * DAY_S,
        description="an endpoint whose tool cannot be read for longer than this is notified (endpoint_failing)",
    )

    @field_validator("events")
    @classmethod
    def _once_each(cls, events: list[Kind]) -> list[Kind]:
        if len(set(events)) != len(events):
            raise ValueError("an event kind is listed twice: list each once")
        return events


class Department(_Strict):
    """One department and the tool it works in (``config/departments/<name>.yaml``)."""

    name: str | None = Field(None, description="defaults to the file name")
    connection: Connection
    people: dict[str, str] = Field(
        default_factory=dict,
        description="e-mail -> account in the tool (Jira accountId or name, Trello username, Asana user gid)",
    )
    poll_interval_s: float | None = Field(
        None, gt=0, le=DAY_S, description="overrides the instance's poll interval (at most a day)"
    )
    mass_change: MassChange | None = Field(None, description="overrides the instance's mass-change threshold")
    notify: list[NotifyTarget] = Field(
        default_factory=list,
        description="where this department is told what waits for a person (see docs/notifications.md)",
    )

    @field_validator("notify")
    @classmethod
    def _distinct_names(cls, notify: list[NotifyTarget]) -> list[NotifyTarget]:
        names = [target.name or str(index) for index, target in enumerate(notify, 1)]
        if len(set(names)) != len(names):
            raise ValueError("two notify targets have the same name: give each its own 'name'")
        return notify

    @field_validator("people")
    @classmethod
    def _emails(cls, people: dict[str, str]) -> dict[str, str]:
        bad = [key for key in people if "@" not in key]
        if bad:
            raise ValueError(f"people are keyed by e-mail address; not an e-mail: {', '.join(bad)}")
        return {key.lower(): value for key, value in people.items()}


Departments = list[str] | Literal["all"]
"""Which departments a permission covers: a list of department names, or ``all``."""


class WebUser(_Strict):
    """One person who may sign in to the web page with an operator token, and what they may read and decide."""

    name: str = Field(min_length=1, description="who this is, as audit events name a decision (e.g. an e-mail)")
    token: Secret = Field(description="where the user's sign-in token comes from: {env: VAR} or {file: PATH}")
    read: Departments = Field(
        default_factory=list, description="departments whose audit events and items the user sees, or 'all'"
    )
    decide: Departments = Field(
        default_factory=list,
        description="departments whose held conflicts, quarantined items and mass changes the user may decide "
        "(they are also shown to the user), or 'all'",
    )


class Web(_Strict):
    """The web page (audit review and people's decisions): who may sign in, and how sessions are signed."""

    session_secret: Secret = Field(
        description="where the key that signs session cookies comes from (at least 32 characters): "
        "{env: SYNCD_WEB_SESSION_SECRET} or {file: PATH}"
    )
    session_max_age_s: float = Field(
        28_800.0, ge=60, le=DAY_S * 30, description="seconds a sign-in lasts (default 8 hours)"
    )
    users: list[WebUser] = Field(
        default_factory=list, description="who may sign in with an operator token (none: OIDC only)"
    )
    oidc: OidcSettings | None = Field(
        None, description="sign-in through an OpenID Connect provider, permissions granted to its groups"
    )

    @model_validator(mode="after")
    def _a_way_in(self) -> Web:
        if not self.users and self.oidc is None:
            raise ValueError(
                "nobody could sign in: list operator-token users under 'users', or configure 'oidc' (docs/web.md)"
            )
        return self

    @field_validator("users")
    @classmethod
    def _unique_names(cls, users: list[WebUser]) -> list[WebUser]:
        names = [user.name for user in users]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"user names must be unique; named twice: {', '.join(twice)}")
        return users


class _Environment(EnvSettingsSource):
    """``SYNCD_<NAME>`` overrides, except of ``audit_key``.

    Its conventional variable, ``SYNCD_AUDIT_KEY``, holds the key itself: never to be read as the setting naming
    where the key is (nor echoed in a validation error).
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Nothing for ``audit_key``; every other setting as pydantic-settings reads it."""
        if field_name == "audit_key":
            return None, field_name, False
        return super().get_field_value(field, field_name)


class Instance(BaseSettings):
    """The instance (``config/syncd.yaml``); any setting can be overridden by ``SYNCD_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="SYNCD_", extra="forbid", frozen=True, allow_inf_nan=False)

    store: str = Field("sqlite:///var/syncd.db", description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://")

    @field_validator("store")
    @classmethod
    def _store_url(cls, url: str) -> str:
        """Refuse a URL syncd cannot open now, not at the first pass (the credentials in it are never echoed)."""
        try:
            parsed = make_url(url)
            remember(parsed.password if isinstance(parsed.password, str) else None)
            dialect = parsed.get_backend_name()
        except ArgumentError:
            dialect = None
        if dialect not in {"sqlite", "postgresql"}:
            raise ValueError(
                "not a store URL syncd can use: write sqlite:///path/to/syncd.db or postgresql+psycopg://user@host/db"
            )
        return url

    poll_interval_s: float = Field(30.0, gt=0, le=DAY_S, description="seconds between polls of each endpoint")
    listen: str = Field("127.0.0.1:8787", description="host:port of the health, metrics and webhook server")
    public_url: HttpUrl | None = Field(None, description="the URL the tools deliver webhooks to (None: polling only)")
    workers: int = Field(4, ge=1, le=64, description="threads running passes (each keeps its own connectors)")
    apply_workers: int = Field(
        4, ge=1, le=64, description="threads applying one pass's items in parallel (1: in order)"
    )
    shutdown_timeout_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="seconds in-flight passes may take to finish after SIGTERM before syncd gives up",
    )
    webhook_debounce_s: float = Field(
        0.05, ge=0, le=60, description="seconds webhook hints are collected before their targeted pass runs"
    )
    max_webhook_bytes: int = Field(
        1_048_576, gt=0, le=67_108_864, description="largest webhook body accepted (larger: 413; at most 64 MiB)"
    )
    lease_ttl_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="seconds a group's lease outlives its holder's last renewal (renewed every third of it); "
        "shorter fails over sooner after a crash, but a paused process loses its groups sooner",
    )
    mass_change: MassChange = Field(
        default_factory=MassChange,
        description="when archives, unlinks or recreates toward one endpoint in one pass are held for a person "
        "(`syncd guard`); a department's own setting overrides it",
    )
    notify_digest_s: float = Field(
        60.0,
        ge=0,
        le=DAY_S,
        description="seconds a target's notifications are collected from the first one, then sent as one digest "
        "(0: each as soon as the notifier runs)",
    )
    audit_key: Secret | None = Field(
        None,
        description="where the audit chain's HMAC key comes from, e.g. {env: SYNCD_AUDIT_KEY}: kept out of the "
        "database, so someone who can write there cannot re-chain edited events (None: the chain is unkeyed)",
    )

    web: Web | None = Field(
        None,
        description="the web page for audit review and people's decisions, served under /ui/ by `syncd run` and "
        "by `syncd web` (None: not served)",
    )

    def audit_secret(self) -> bytes | None:
        """The audit chain's HMAC key, read now (a missing one raises naming where it was looked for); None: unkeyed."""
        return None if self.audit_key is None else self.audit_key.resolve().encode()

    @field_validator("listen")
    @classmethod
    def _host_port(cls, listen: str) -> str:
        """A host and a port the server can bind, checked offline rather than at the first start."""
        host, colon, port = listen.rpartition(":")
        if not colon or not host.strip("[]") or not port.isdigit() or int(port) > 65535:
            raise ValueError("write host:port, e.g. 127.0.0.1:8787 or [::1]:8787 (port 0 to 65535; 0: any free one)")
        return listen

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment overrides the file (init values), so an operator can change a setting without an edit."""
        return (_Environment(settings_cls), init_settings)

    @classmethod
    def variable_of(cls, setting: str) -> str | None:
        """The ``SYNCD_<NAME>`` variable that sets ``setting`` now, if one does: its mistakes are named by it."""
        if setting == "audit_key" or setting not in cls.model_fields:
            return None
        wanted = f"syncd_{setting}"  # pydantic-settings matches the name in any case
        return next((name for name in os.environ if name.lower() == wanted), None)


class Config(_Strict):
    """The whole configuration directory, validated."""

    root: Path
    instance: Instance
    departments: dict[str, Department]

    def mass_change(self, members: Iterable[str]) -> dict[str, Threshold]:
        """Each member's mass-change threshold: its department's, else the instance's."""
        return {
            member: (department.mass_change or self.instance.mass_change).threshold()
            for member in members
            if (department := self.departments.get(member)) is not None
        }

    def routes(self) -> dict[str, list[Route]]:
        """Department -> its notification targets and the events each wants (see :mod:`syncd.notices`)."""
        return {
            name: [
                Route(
                    f"{name}/{target.name or index}",
                    name,
                    frozenset(target.events),
                    target.failing_after_s,
                )
                for index, target in enumerate(department.notify, 1)
            ]
            for name, department in self.departments.items()
            if department.notify
        }

    def notify_urls(self) -> dict[str, str]:
        """Target -> its Apprise URL, read now (each registered as a secret; a missing one raises naming where)."""
        return {
            f"{name}/{target.name or index}": target.url.resolve()
            for name, department in self.departments.items()
            for index, target in enumerate(department.notify, 1)
        }


def load_config(root: Path | str) -> Config:
    """Load ``<root>/syncd.yaml`` and ``<root>/departments/*.yaml``; raise ConfigError listing every problem."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(
            [FileError(root, None, "no such configuration directory: check --config (or run syncd init)")]
        )
    errors: list[FileError | SettingError] = []
    instance: Instance | None = None
    instance_file = root / "syncd.yaml"
    try:
        text = None if instance_file.exists() else ""  # no file: the defaults and the environment
        instance = load_yaml_model(instance_file, Instance, text, variable_of=Instance.variable_of)
    except FileError as error:
        errors.append(error)
    except ConfigError as error:
        errors += error.errors
    departments: dict[str, Department] = {}
    files: dict[str, Path] = {}
    for path in sorted((root / "departments").glob("*.yaml")):
        try:
            department = load_yaml_model(path, Department)
        except FileError as error:
            errors.append(error)
            continue
        name = department.name or path.stem
        if name in files:
            errors.append(
                FileError(path, line_of(path, ("name",)), f"department {name!r} is also {files[name]}: rename one")
            )
            continue
        departments[name] = department.model_copy(update={"name": name})
        files[name] = path
    errors += _shared_endpoints(departments, files)
    if instance is not None and instance.web is not None:
        errors += _web_departments(instance.web, departments, instance_file)
    if errors or instance is None:
        raise ConfigError(errors)
    return Config(root=root, instance=instance, departments=departments)


def _web_departments(web: Web, departments: dict[str, Department], path: Path) -> list[FileError]:
    """A permission naming a department that does not exist is a typo that would silently grant nothing."""
    errors = []
    known = ", ".join(sorted(departments)) or "none configured"
    if web.oidc is not None:
        for permission, department in web.oidc.unknown_departments(departments):
            errors.append(
                FileError(
                    path,
                    line_of(path, ("web", "oidc", permission, department)),
                    f"oidc grants {permission} of {department!r}, which is not a department: name configured ones "
                    f"({known}) or write 'all'",
                )
            )
    for index, user in enumerate(web.users):
        for permission in ("read", "decide"):
            granted = getattr(user, permission)
            unknown = [] if granted == "all" else [name for name in granted if name not in departments]
            if unknown:
                errors.append(
                    FileError(
                        path,
                        line_of(path, ("web", "users", index, permission)),
                        f"user {user.name!r} may {permission} {', '.join(map(repr, unknown))}, which is not a "
                        f"department: name configured ones ({known}) or write 'all'",
                    )
                )
    return errors


def endpoint_of(connection: JiraConnection | TrelloConnection | AsanaConnection) -> tuple[str, str, str]:
    """What a department syncs, as one key: its tool, its site (case and trailing slash aside) and workspace."""
    workspace = connection.board if isinstance(connection, TrelloConnection) else connection.project
    return connection.tool, connection.base_url.rstrip("/").lower(), workspace


def _shared_endpoints(departments: dict[str, Department], files: dict[str, Path]) -> list[FileError]:
    """Two departments on one project or board would mirror it into itself: every item twice, then again."""
    first: dict[tuple[str, str, str], str] = {}
    errors = []
    for name, department in departments.items():
        endpoint = endpoint_of(department.connection)
        if endpoint in first:
            other = first[endpoint]
            path = files[name]
            key = "board" if department.connection.tool == "trello" else "project"
            errors.append(
                FileError(
                    path,
                    line_of(path, ("connection", key)),
                    f"department {name!r} syncs the same {department.connection.tool} {key} as {other!r} "
                    f"({files[other]}): one department per {key}; remove the copy or point it at its own {key}",
                )
            )
        else:
            first[endpoint] = name
    return errors


def schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of the file kinds, for editor completion (``syncd schema``)."""
    return {
        "syncd.yaml": Instance.model_json_schema(),
        "department.yaml": Department.model_json_schema(),
    }


def config_version(config_dir: Path, mappings_dir: Path) -> str:
    """A short hash of every configuration and mapping file: audit events say which configuration decided."""
    digest = hashlib.sha256()
    files = [config_dir / "syncd.yaml", *sorted((config_dir / "departments").glob("*.yaml"))]
    for path in [*files, *sorted(mappings_dir.glob("*.yaml"))]:
        if path.exists():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]
