"""Every error syncd raises on purpose, in one tree, so callers decide by kind and never by message text.

::

    SyncdError
    ├── InputError                        what a person wrote or typed is wrong: fix it and run the command again
    │   ├── FileError                     a file a person wrote is wrong: path, line, fix (every problem at once)
    │   ├── SettingError                  a setting given as SYNCD_<NAME> in the environment is wrong: the variable
    │   ├── ConfigError                   every problem of a configuration directory, each a FileError or SettingError
    │   ├── CheckFailed                   `syncd check` found problems (offline or online): each one, one a line
    │   ├── ScaffoldError                 `syncd init` cannot write a skeleton (a bad name, a file that exists)
    │   └── CommandRefused                an operator asked for what cannot be done (an unknown conflict id...)
    ├── StoreError                        the state store
    │   ├── StoreUnavailable              it cannot be opened or read (a directory, a database that does not answer)
    │   ├── DuplicateLink                 the database refused a second link for one item or one ref
    │   ├── SchemaTooNew                  the store was migrated by a newer syncd: upgrade this one
    │   ├── LeaseHeld                     another process holds a group's lease: a writing command gave up waiting
    │   └── LeaseLost                     this process lost a group's lease (fenced out): its pass stops at once
    ├── DemoError                         `syncd demo` cannot start (a broken configuration, a daemon that won't run)
    ├── SignInFailed                      a web page sign-in (OIDC) did not give a person access; safe to show them
    │   ├── SignInRefused                 the answer or the person is refused: state, code, ID token, permissions
    │   └── ProviderUnavailable           the OIDC provider did not answer, refused syncd's client, or is not OIDC
    ├── SideEmptied                       an endpoint lists far fewer linked items than before: an outage
    ├── NotDelivered                      a notification target did not accept a message (retried later)
    └── ConnectorError                    something a tool said or did not say; .tool names it
        ├── RetriableError                try again later; nothing was decided
        │   ├── RateLimited               429; .retry_after_s from the service when it said
        │   ├── ServiceUnavailable        5xx
        │   ├── ChangedMeanwhile          the item changed after syncd read it: nothing was written; plan again
        │   ├── ConnectionFailed          no answer (refused, reset, timeout) to a request that is safe to repeat
        │   ├── OutcomeUnknown            a write was sent and no clear answer came back: it may have happened
        │   └── EndpointDown              an item waits for a member whose tool cannot be read now
        ├── FatalError                    stop this endpoint until a person acts
        │   ├── AuthFailed                401: the credential is wrong or revoked
        │   ├── PermissionDenied          403: the account may not do this
        │   └── ToolConfigError           the tool's setup does not match the config (unknown project, list...)
        └── SkippableError                one item is bad; quarantine it and keep syncing the rest
            ├── ItemNotFound              404 for one item (deleted, or never visible to us)
            ├── InvalidItem               400 for one item: the tool refused these values; .field names which
            └── NoTransition              a Jira status cannot be reached from the current one

Messages say what happened and what to do, and never contain a credential: connectors build them from status
codes, the tool's own error text and refs, never from request headers or URLs with query strings. The ``syncd``
command turns any of them into one ``error:`` message on standard error and exit code 2 in one place
(:mod:`syncd.cli.handler`); no command prints an error itself.

The modules that raised these first still export them (``from syncd.config import ConfigError`` works). Three
exceptions live outside the tree on purpose, because nothing outside their module ever sees them:
``syncd.yamlfile.Located`` (a ``ValueError`` a pydantic validator raises to name a setting deeper than the model;
the loader turns it into a FileError line), ``syncd.mapping._UnmappableError`` (a ``ValueError`` inside a codec that
becomes a MappingProblem, data, not an error) and the demo's control-flow signals (``_Interrupted``,
``_OutOfTime``, ``_DaemonExited``: how its loop unwinds, not failures).
"""

# ruff: noqa: N818 - names say what happened (NoTransition, RateLimited), as STYLE.md asks; "Error" adds nothing

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path


class SyncdError(Exception):
    """Base of every error syncd raises deliberately."""


class InputError(SyncdError):
    """What a person wrote (a file) or typed (a command) is wrong; nothing was done, and the message says the fix."""


class FileError(InputError):
    """A file a person wrote is wrong: where (path and 1-based line) and what to change; every problem at once."""

    def __init__(
        self, path: Path, line: int | None, message: str, more: list[tuple[int | None, str]] | None = None
    ) -> None:
        self.path = path
        self.line = line
        self.message = message
        self.problems = [(line, message), *(more or [])]
        super().__init__(
            "\n".join(f"{path}:{at}: {text}" if at is not None else f"{path}: {text}" for at, text in self.problems)
        )


class SettingError(InputError):
    """A setting given in the environment (``SYNCD_<NAME>``) is wrong: named by its variable, not a file's line.

    The variable overrides the file, so blaming the file's line would send a person to edit the wrong place.
    """

    def __init__(self, variable: str, message: str) -> None:
        self.variable = variable
        self.message = message
        super().__init__(f"{variable}: {message}")


class ConfigError(InputError):
    """Every problem of every configuration file (``file:line: message``) and environment setting."""

    def __init__(self, errors: Sequence[FileError | SettingError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(error) for error in errors))


class CheckFailed(InputError):
    """``syncd check`` found problems: in the files, or (``--online``) in what the tools answered; one a line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ScaffoldError(InputError):
    """A skeleton cannot be written (bad name, file exists)."""


class CommandRefused(InputError):
    """An operator asked for something that cannot be done: an unknown or closed conflict, an item not quarantined."""


class StoreError(SyncdError):
    """The state store refused or could not do something."""


class StoreUnavailable(StoreError):
    """The store cannot be opened (its directory cannot be created, the database does not answer)."""


class DuplicateLink(StoreError):
    """A second mirror for the same item at an endpoint, or one ref linked to two items: refused by the database."""

    def __init__(self, sync_id: str, endpoint: str, ref: str) -> None:
        super().__init__(f"{endpoint}: {ref} cannot be linked to {sync_id}: the endpoint already has a link there")
        self.sync_id = sync_id
        self.endpoint = endpoint
        self.ref = ref


class SchemaTooNew(StoreError):
    """The store's schema is at a revision this syncd does not know: a newer syncd migrated it."""

    def __init__(self, found: str, known: str) -> None:
        super().__init__(
            f"the store's schema is at revision {found}, newer than this syncd knows ({known}): upgrade syncd"
        )
        self.found = found
        self.known = known


class LeaseHeld(StoreError):
    """Another process holds a group's lease (one writer per group), and it was not freed within the wait."""

    def __init__(self, group: str, holder: str, since: datetime, waited_s: float) -> None:
        host, pid = holder_host_pid(holder)
        super().__init__(
            f"group {group} is held by {host} pid {pid} since {since:%Y-%m-%d %H:%M:%S} UTC; waited {waited_s:g} s: "
            "run again once it is done (a stopped holder's lease expires after lease_ttl_s), or pass a longer --wait"
        )
        self.group = group
        self.holder = holder
        self.since = since


class LeaseLost(StoreError):
    """The process no longer holds the group's lease (it expired, another process took it): fenced out.

    Not an item's fault and not retriable within the pass: the pass stops and commits nothing more; what it had
    journaled is resolved by the lease's next holder, as after a crash.
    """

    def __init__(
        self, group: str, token: int, reason: str = "was lost (expired or taken over); this pass stops"
    ) -> None:
        super().__init__(f"group {group}: lease {token} {reason}")
        self.group = group
        self.token = token


class LeaseLapsed(LeaseLost):
    """The lease may run out before a request could be applied, by this process's own clock: nothing is sent.

    Raised before a request to a tool (:mod:`syncd.tenure`). As any LeaseLost, the pass stops, and what it
    journaled is resolved by the group's next holder (this process again, if the store still has it as holder).
    """

    def __init__(self, group: str, token: int, left_s: float, ttl_s: float) -> None:
        state = "ran out" if left_s <= 0 else f"has only {left_s:.1f} s left"
        super().__init__(
            group,
            token,
            f"{state} of its {ttl_s:g} s TTL by this process's clock (it was paused, or the store did not answer "
            "its renewals); nothing more is sent to the tools, and this pass stops",
        )


def holder_host_pid(holder: str) -> tuple[str, str]:
    """The host and pid a replica id (``host:pid:suffix``) names."""
    host, _, rest = holder.rpartition(":")[0].rpartition(":")
    return (host, rest) if host else (holder, "?")


class DemoError(SyncdError):
    """The demo cannot start (a broken configuration, a daemon that does not come up): exit 2, no traceback."""


class SignInFailed(SyncdError):
    """A sign-in through the OIDC provider gave nobody access; the message names why, never a code or token."""


class SignInRefused(SignInFailed):
    """The provider's answer failed a check (state, code, ID token) or the person may read nothing: sign in again."""


class ProviderUnavailable(SignInFailed):
    """The OIDC provider cannot be used now: no answer, syncd's client refused, or an answer that is not OIDC."""


class ConnectorError(SyncdError):
    """A tool answered with an error, or did not answer."""

    def __init__(self, tool: str, message: str, *, status: int | None = None) -> None:
        self.tool = tool
        self.status = status
        self.message = message
        self.nothing_written = False
        """Set by the writer when the tool refused a write's first request: nothing of that write exists."""
        super().__init__(f"{tool}: {message}")


class RetriableError(ConnectorError):
    """Nothing was decided: the same request may succeed later."""


class RateLimited(RetriableError):
    """The tool said slow down (429); ``retry_after_s`` is how long it asked for, when it said."""

    def __init__(self, tool: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(tool, message, status=429)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(RetriableError):
    """The tool failed on its side (5xx)."""


class ChangedMeanwhile(RetriableError):
    """The item changed at the tool after syncd read it: nothing was written; the next pass plans it with the change."""


class ConnectionFailed(RetriableError):
    """No answer arrived (refused, reset, timed out); for a write that is not idempotent see OutcomeUnknown."""


class OutcomeUnknown(RetriableError):
    """A write that is not idempotent was sent and no clear answer came back: it may or may not have happened.

    A gateway's 502/503/504 or any 5xx, a timeout, a connection dropped after sending, an answer that cannot be
    read: none says whether the service applied the write. It is never sent again blind; the writer looks first
    (:func:`syncd.uncertain.send_once`), and what cannot be told yet stays in the journal for the next pass.
    """


class EndpointDown(RetriableError):
    """An item waits for a member that could not be read this pass; it catches up once the member answers again.

    Not a fault of the item: it never counts toward quarantine. ``error`` is what the member's tool said.
    """

    def __init__(self, member: str, error: ConnectorError) -> None:
        super().__init__(error.tool, f"waits for {member}, which cannot be read now ({error.message})")
        self.member = member
        self.error = error


class FatalError(ConnectorError):
    """The endpoint cannot work until a person fixes something; retrying only burns the budget."""


class AuthFailed(FatalError):
    """The credential was refused (401)."""


class PermissionDenied(FatalError):
    """The account is known but may not do this (403)."""


class ToolConfigError(FatalError):
    """The tool's setup does not match the configuration (an unknown project, list, section or status)."""


class SkippableError(ConnectorError):
    """One item cannot be synced; it is quarantined and the others keep syncing."""

    def __init__(self, tool: str, message: str, *, ref: str | None = None, status: int | None = None) -> None:
        super().__init__(tool, message, status=status)
        self.ref = ref


class ItemNotFound(SkippableError):
    """The item does not exist (any more), or the account cannot see it."""


class InvalidItem(SkippableError):
    """The tool refused the values written to this item.

    ``field`` is the canonical field (``title``, ``description``, ``status``, ``done``, ``assignees``, ``due``,
    ``labels``) whose value was refused, when the tool's answer or the connector's own check names it: the caller
    can then write the item again without that field, so one refused value does not hold back the rest.
    """

    def __init__(
        self,
        tool: str,
        message: str,
        *,
        ref: str | None = None,
        status: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(tool, message, ref=ref, status=status)
        self.field = field


class NoTransition(SkippableError):
    """No path of workflow transitions leads from the item's status to the wanted one."""

    def __init__(self, tool: str, ref: str, from_status: str, to_status: str) -> None:
        super().__init__(
            tool,
            f"{ref}: no workflow transition path from {from_status!r} to {to_status!r}; "
            "add a transition to the workflow or map this status differently",
            ref=ref,
        )
        self.from_status = from_status
        self.to_status = to_status


class NotDelivered(SyncdError):
    """A notification target did not accept a message: what Apprise said, redacted (its URL is a secret)."""


class SideEmptied(SyncdError):
    """An endpoint suddenly lists none (or far fewer) of its linked items: an outage, not a mass deletion."""

    def __init__(self, endpoint: str, linked: int, listed: int) -> None:
        super().__init__(
            f"{endpoint}: lists {listed} of {linked} linked items; what is missing is held as a mass change, not "
            "propagated (check the endpoint's scope and credentials, then `syncd guard list` to decide)"
        )
        self.endpoint = endpoint
        self.linked = linked
        self.listed = listed
