"""Who is signed in to the web page, and which departments they may read and decide for.

An :class:`Identity` is the one description of a signed-in person the pages, the permission checks and the audit
use, however the person signed in. An operator token's user (:class:`syncd.ui.auth.TokenSignIn`) is made from
their entry in ``web.users``; an OIDC provider's verified ID token by :func:`identity_of`: the groups in the
configured claim are matched against the ``read`` and ``decide`` grants of :class:`syncd.config.OidcSettings` (a
department's groups, or ``all``'s). Deciding implies reading (a person resolves only what they see); a person
who may read nothing is refused. Decisions are audited under :attr:`Identity.person`: the e-mail when there is
one (people are e-mail addresses everywhere in the audit log), else the token user's name or the OIDC subject.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from syncd.config import ALL_DEPARTMENTS, OidcSettings
from syncd.errors import SignInRefused

ALL: Final[Literal["all"]] = ALL_DEPARTMENTS
"""A permission that covers every department."""
Departments = frozenset[str] | Literal["all"]
"""The departments a permission covers: a set of names, or :data:`ALL`."""


@dataclass(frozen=True)
class Identity:
    """Who signed in, and which departments they may read and decide for (deciding implies reading).

    ``subject`` is stable per person and sign-in method (the token user's name, the provider's ``sub``);
    ``name`` is what the page shows; ``email`` is set when the person has one.
    """

    subject: str
    name: str
    email: str | None
    read: Departments
    decide: Departments

    @property
    def person(self) -> str:
        """Who the audit log names for this person's decisions: the e-mail, else the subject."""
        return self.email or self.subject

    def may_read(self, department: str) -> bool:
        """Whether this person sees the department's audit events, items and queues (deciding shows them too)."""
        return self.read == ALL or department in self.read or self.may_decide(department)

    def may_decide(self, department: str) -> bool:
        """Whether this person resolves the department's held conflicts, quarantined items and mass changes."""
        return self.decide == ALL or department in self.decide

    def reads(self, departments: Collection[str]) -> bool:
        """Whether any of ``departments`` is one this person sees."""
        return self.reads_all or any(self.may_read(department) for department in departments)

    def decides(self, departments: Collection[str]) -> bool:
        """Whether this person may decide for any of ``departments``."""
        return any(self.may_decide(department) for department in departments)

    @property
    def reads_all(self) -> bool:
        """Whether this person sees every department, those added to the configuration later included."""
        return ALL in (self.read, self.decide)

    def visible(self) -> frozenset[str]:
        """The departments this person sees (meaningful only when not :attr:`reads_all`)."""
        return frozenset(
            name for granted in (self.read, self.decide) if isinstance(granted, frozenset) for name in granted
        )

    def as_dict(self) -> dict[str, Any]:
        """For the signed session cookie: plain JSON, no credential (the permissions were decided at sign-in)."""
        return {
            "subject": self.subject,
            "name": self.name,
            "email": self.email,
            "read": _listed(self.read),
            "decide": _listed(self.decide),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Identity:
        """Back from the session cookie the web app signed (so its shape is :meth:`as_dict`'s)."""
        return cls(
            subject=str(data["subject"]),
            name=str(data["name"]),
            email=None if data.get("email") is None else str(data["email"]),
            read=_departments(data["read"]),
            decide=_departments(data["decide"]),
        )


def identity_of(claims: Mapping[str, Any], settings: OidcSettings) -> Identity:
    """Who the verified claims name, and what their groups grant; refused if the e-mail or groups allow nothing."""
    email_claim = claims.get(settings.email_claim)
    email = email_claim.lower() if isinstance(email_claim, str) and "@" in email_claim else None
    name_claim = claims.get(settings.name_claim)
    subject = str(claims["sub"])
    name = name_claim if isinstance(name_claim, str) and name_claim.strip() else email or subject
    if settings.email_domains is not None:
        if email is None:
            raise SignInRefused(
                f"the provider sent no e-mail address (claim {settings.email_claim!r}) and sign-in is limited to "
                "e-mail domains: the administrator should ask for the 'email' scope or set email_claim"
            )
        if claims.get("email_verified") is False:
            raise SignInRefused(f"the provider has not verified {email}: verify it there, then sign in again")
        if email.rpartition("@")[2] not in settings.email_domains:
            raise SignInRefused(f"{email} is not in a domain allowed to sign in here")
    groups = groups_of(claims, settings.groups_claim)
    decide = granted(settings.decide, groups)
    read = granted(settings.read, groups)
    if isinstance(read, frozenset):
        read = read | decide if isinstance(decide, frozenset) else ALL  # what one may decide, one must see
    if not read:
        seen = ", ".join(sorted(groups)[:10]) or "none"
        raise SignInRefused(
            f"{name} may read no department here: ask an administrator for a group that grants it (your groups "
            f"in the ID token's {settings.groups_claim!r} claim: {seen})"
        )
    return Identity(subject=subject, name=name, email=email, read=read, decide=decide)


def groups_of(claims: Mapping[str, Any], path: str) -> frozenset[str]:
    """The groups the claim at ``path`` (dotted into objects) names: a list of strings, or one string."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        overage = claims.get("_claim_names")
        if isinstance(overage, Mapping) and path in overage:
            raise SignInRefused(
                f"the provider left your groups out of the ID token ('{path}' overage: too many groups): the "
                "administrator should limit the token to the groups assigned to the application"
            )
        return frozenset()
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def granted(grants: Mapping[str, Iterable[str]], groups: frozenset[str]) -> Departments:
    """The departments whose granted groups share one with ``groups``; :data:`ALL` if ``all`` does."""
    departments = frozenset(department for department, allowed in grants.items() if groups.intersection(allowed))
    return ALL if ALL in departments else departments


def _listed(departments: Departments) -> str | list[str]:
    return departments if departments == ALL else sorted(departments)


def _departments(value: object) -> Departments:
    if value == ALL:
        return ALL
    if not isinstance(value, list):
        raise ValueError(f"not a list of departments or 'all': {value!r}")
    return frozenset(str(name) for name in value)
