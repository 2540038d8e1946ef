"""Request principals: classification and Principal/NotPrincipal matching (pure).

Rules (**AWS JSON policy elements: Principal**, **NotPrincipal**,
docs/policy-semantics.md):

- An account principal (12-digit ID or ``arn:<p>:iam::<acct>:root``) matches any
  principal of that account; it delegates to the account's IAM policies.
- A role ARN matches the role's sessions (compared by account and role name:
  a session ARN carries no role path). A session ARN matches only that session.
- A user ARN matches the federated-user sessions that user created with
  ``GetFederationToken`` (``federated-user/<name>``, same account), for Allow
  and Deny alike; the session policy still limits such a grant.
- ``"*"`` / ``{"AWS": "*"}`` match everyone, anonymous included. Partial
  wildcards in principals are literal text (they match nothing).
- ``Deny`` + ``NotPrincipal`` excepts a principal only when each of its
  identities is listed: the session, its role and its account for a role
  session; the user and its account for a user.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from policy.errors import InvalidPolicyError
from policy.iam.statement import PrincipalSpec

__all__ = [
    "Grant",
    "PrincipalInfo",
    "PrincipalKind",
    "grant_for",
    "not_principal_excepts",
    "parse_principal",
]

_ACCOUNT = re.compile(r"^\d{12}$")
# Path prefix of service-linked roles (Using service-linked roles); SCPs and RCPs
# do not restrict them.
_SLR_PATH = "aws-service-role/"
_SLR_NAME_PREFIX = "AWSServiceRoleFor"
# Identity providers that are web-identity principals even without an ARN
# (AWS JSON policy elements: Principal, "Federated").
_WEB_IDENTITY_HOSTS = frozenset(
    {
        "accounts.google.com",
        "graph.facebook.com",
        "www.amazon.com",
        "cognito-identity.amazonaws.com",
    }
)
_ANONYMOUS = frozenset({"", "*", "anonymous"})


class PrincipalKind(enum.Enum):
    """What kind of caller made the request (value: ``aws:PrincipalType``)."""

    USER = "User"
    ROLE = "Role"
    ASSUMED_ROLE = "AssumedRole"
    FEDERATED_USER = "FederatedUser"
    ROOT = "Account"
    SERVICE = "Service"
    WEB_IDENTITY = "WebIdentity"
    CANONICAL_USER = "CanonicalUser"
    ANONYMOUS = "Anonymous"

    @property
    def is_iam(self) -> bool:
        """True for principals that belong to an account and have identity policies."""
        return self in _IAM_KINDS


_IAM_KINDS = frozenset(
    {
        PrincipalKind.USER,
        PrincipalKind.ROLE,
        PrincipalKind.ASSUMED_ROLE,
        PrincipalKind.FEDERATED_USER,
        PrincipalKind.ROOT,
    }
)


class Grant(enum.IntEnum):
    """How a resource policy names the principal (docs/policy-semantics.md); higher
    wins."""

    ACCOUNT = 1
    ROLE = 2
    DIRECT = 3


@dataclass(frozen=True, slots=True)
class PrincipalInfo:
    """A classified request principal.

    Attributes:
        kind: The principal kind.
        arn: The principal as given (ARN, service name, provider, or ``*``).
        account: The owning account, when there is one.
        partition: The ARN partition (``aws`` by default).
        role_name: For roles and role sessions, the role's name.
        principal_arn: The ``aws:PrincipalArn`` value (the role ARN for a session).
        is_service_linked: True for service-linked roles and their sessions.
        name: The user name (``aws:username``) for IAM users; for federated-user
            sessions, the name of the IAM user that created them.
    """

    kind: PrincipalKind
    arn: str
    account: str | None = None
    partition: str = "aws"
    role_name: str | None = None
    principal_arn: str | None = None
    is_service_linked: bool = False
    name: str | None = None


def _bad(message: str) -> InvalidPolicyError:
    return InvalidPolicyError(message, pointer="/request/principal", policy="request")


def parse_principal(value: object, *, action: str = "") -> PrincipalInfo:
    """Classify a request principal.

    Args:
        value: An ARN, account ID, service principal, identity provider,
            ``"*"``/None for anonymous, or ``{"AWS"|"Service"|"Federated"|
            "CanonicalUser": value}``.
        action: The request's action; web-identity and SAML role assumption make
            a non-ARN principal a federated one.

    Returns:
        The classified principal.

    Raises:
        InvalidPolicyError: The principal is not a recognised form.
    """
    if value is None:
        return PrincipalInfo(PrincipalKind.ANONYMOUS, "*")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value).zfill(12)  # an account ID given as a JSON number
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise _bad(
                "an object principal needs exactly one of "
                "AWS/Service/Federated/CanonicalUser"
            )
        ((ptype, inner),) = value.items()
        if not isinstance(inner, str):
            raise _bad("the principal must be a string")
        if ptype == "Service":
            return PrincipalInfo(PrincipalKind.SERVICE, inner)
        if ptype == "Federated":
            return PrincipalInfo(PrincipalKind.WEB_IDENTITY, inner)
        if ptype == "CanonicalUser":
            return PrincipalInfo(PrincipalKind.CANONICAL_USER, inner)
        if ptype != "AWS":
            raise _bad(f"unknown principal type {ptype!r}")
        value = inner
    if not isinstance(value, str):
        raise _bad("the principal must be a string or an object")
    if value in _ANONYMOUS:
        return PrincipalInfo(PrincipalKind.ANONYMOUS, "*")
    if _ACCOUNT.match(value):
        return PrincipalInfo(
            PrincipalKind.ROOT,
            f"arn:aws:iam::{value}:root",
            value,
            principal_arn=f"arn:aws:iam::{value}:root",
        )
    if not value.startswith("arn:"):
        web = action.lower() in (
            "sts:assumerolewithwebidentity",
            "sts:assumerolewithsaml",
        )
        if web or value in _WEB_IDENTITY_HOSTS:
            return PrincipalInfo(PrincipalKind.WEB_IDENTITY, value)
        if "." in value:
            return PrincipalInfo(PrincipalKind.SERVICE, value)
        raise _bad(f"{value!r} is not an ARN, account ID or service principal")
    return _parse_arn(value)


def _parse_arn(value: str) -> PrincipalInfo:
    parts = value.split(":", 5)
    if len(parts) != 6:
        raise _bad(f"{value!r} is not an ARN")
    _, partition, service, _region, account, resource = parts
    if service == "iam" and resource == "root":
        return PrincipalInfo(
            PrincipalKind.ROOT, value, account, partition, principal_arn=value
        )
    rtype, _, rest = resource.partition("/")
    if service == "iam" and rtype == "user" and rest:
        return PrincipalInfo(
            PrincipalKind.USER,
            value,
            account,
            partition,
            principal_arn=value,
            name=rest.rsplit("/", 1)[-1],
        )
    if service == "iam" and rtype == "role" and rest:
        role_name = rest.rsplit("/", 1)[-1]
        slr = rest.startswith(_SLR_PATH) or role_name.startswith(_SLR_NAME_PREFIX)
        return PrincipalInfo(
            PrincipalKind.ROLE,
            value,
            account,
            partition,
            role_name,
            value,
            is_service_linked=slr,
        )
    if service == "iam" and rtype in ("oidc-provider", "saml-provider") and rest:
        return PrincipalInfo(PrincipalKind.WEB_IDENTITY, value, account, partition)
    if service == "sts" and rtype == "assumed-role" and "/" in rest:
        role_name, _, session = rest.partition("/")
        if not role_name or not session:
            raise _bad(f"{value!r}: assumed-role ARNs are .../<role>/<session>")
        role_arn = f"arn:{partition}:iam::{account}:role/{role_name}"
        return PrincipalInfo(
            PrincipalKind.ASSUMED_ROLE,
            value,
            account,
            partition,
            role_name,
            role_arn,
            is_service_linked=role_name.startswith(_SLR_NAME_PREFIX),
        )
    if service == "sts" and rtype == "federated-user" and rest:
        # GetFederationToken sessions belong to the IAM user that created them;
        # the session ARN carries the user's name (no path).
        return PrincipalInfo(
            PrincipalKind.FEDERATED_USER,
            value,
            account,
            partition,
            principal_arn=value,
            name=rest,
        )
    raise _bad(f"{value!r} is not a user, role, session, root or identity-provider ARN")


def _account_of(entry: str) -> str | None:
    """The account an account principal names (ID or ``:root`` ARN), else None."""
    if _ACCOUNT.match(entry):
        return entry
    parts = entry.split(":")
    if (
        len(parts) == 6
        and parts[0] == "arn"
        and parts[2] == "iam"
        and parts[5] == "root"
    ):
        return parts[4]
    return None


def _names_role(entry: str, p: PrincipalInfo) -> bool:
    parts = entry.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return False
    return (
        parts[1] == p.partition
        and parts[4] == p.account
        and parts[5].rsplit("/", 1)[-1] == p.role_name
    )


def _names_session_user(entry: str, p: PrincipalInfo) -> bool:
    """Whether ``entry`` is the IAM user behind a federated-user session."""
    if p.kind is not PrincipalKind.FEDERATED_USER or p.name is None:
        return False
    parts = entry.split(":", 5)
    return (
        len(parts) == 6
        and parts[0] == "arn"
        and parts[1] == p.partition
        and parts[2] == "iam"
        and parts[4] == p.account
        and parts[5] == f"user/{p.name}"
    )


def grant_for(spec: PrincipalSpec, p: PrincipalInfo) -> Grant | None:
    """How a Principal element names the request principal.

    Args:
        spec: The statement's Principal.
        p: The request principal.

    Returns:
        ``DIRECT`` (the user, session, service, provider or ``*``), ``ROLE`` (the
        role of a session), ``ACCOUNT`` (its account), or None.
    """
    if spec.wildcard:
        return Grant.DIRECT
    kind = p.kind
    if kind is PrincipalKind.SERVICE:
        return Grant.DIRECT if p.arn in spec.service else None
    if kind is PrincipalKind.WEB_IDENTITY:
        return Grant.DIRECT if p.arn in spec.federated else None
    if kind is PrincipalKind.CANONICAL_USER:
        return Grant.DIRECT if p.arn in spec.canonical else None
    if kind is PrincipalKind.ANONYMOUS:
        return None
    best: Grant | None = None
    for entry in spec.aws:
        if entry == p.arn and kind is not PrincipalKind.ROLE:
            return Grant.DIRECT
        if p.role_name is not None and _names_role(entry, p):
            best = Grant.ROLE
        elif _names_session_user(entry, p):
            # The user that called GetFederationToken: like a role for its
            # sessions, the session policy still limits (Session policies).
            best = Grant.ROLE
        elif best is None and p.account is not None and _account_of(entry) == p.account:
            best = Grant.ACCOUNT
    return best


def not_principal_excepts(spec: PrincipalSpec, p: PrincipalInfo) -> bool:
    """Whether a NotPrincipal element excepts the request principal.

    Args:
        spec: The statement's NotPrincipal.
        p: The request principal.

    Returns:
        True when every identity of the principal is listed (so the statement
        does not apply to it).
    """
    if spec.wildcard:
        return True
    kind = p.kind
    if kind is PrincipalKind.SERVICE:
        return p.arn in spec.service
    if kind is PrincipalKind.WEB_IDENTITY:
        return p.arn in spec.federated
    if kind is PrincipalKind.CANONICAL_USER:
        return p.arn in spec.canonical
    if kind is PrincipalKind.ANONYMOUS:
        return False
    account_listed = any(_account_of(e) == p.account for e in spec.aws)
    if kind is PrincipalKind.ROOT:
        return account_listed
    role_listed = p.role_name is None or any(_names_role(e, p) for e in spec.aws)
    self_listed = kind is PrincipalKind.ROLE or p.arn in spec.aws
    return account_listed and role_listed and self_listed
