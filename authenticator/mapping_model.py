"""The values of the mapping core: entries, sets, problems, Kubernetes users.

Shared by :mod:`authenticator.mapping_formats` (which builds them from the
three accepted formats) and :mod:`authenticator.mapping` (which evaluates
them); import them from :mod:`authenticator.mapping`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from authenticator.arn import canonicalize_arn, strip_role_path
from authenticator.errors import InvalidARNError


@dataclass(frozen=True, slots=True)
class SSOMatch:
    """An ``sso:`` mapRoles entry: the IAM Identity Center roles of one permission set.

    IAM Identity Center creates, per account, a role named
    ``aws-reserved/sso.amazonaws.com[/<region>]/AWSReservedSSO_<set>_<suffix>``
    (random suffix). As in aws-iam-authenticator, an entry matches every role
    whose path-stripped ARN is ``arn:<partition>:iam::<account>:role/
    AWSReservedSSO_<set>_*`` (case-insensitive).

    Attributes:
        permission_set: ``permissionSetName``.
        account_id: ``accountID`` (12 digits).
        partition: ``partition`` (default ``aws``).
    """

    permission_set: str
    account_id: str
    partition: str = "aws"

    @property
    def arn_pattern(self) -> str:
        """The ARN pattern shown for the entry (``...:role/AWSReservedSSO_<set>_*``)."""
        return (
            f"arn:{self.partition}:iam::{self.account_id}:role/"
            f"AWSReservedSSO_{self.permission_set}_*"
        )

    def matches(self, match_key: str) -> bool:
        """Whether a caller's match key (:func:`identity_match_key`) is such a role."""
        return match_key.startswith(self.arn_pattern[:-1].lower())


@dataclass(frozen=True, slots=True)
class MappingEntry:
    """One explicit mapping entry, as written.

    Attributes:
        arn: The ARN as written (``rolearn``/``userarn``/``spec.arn``).
        username: The username template.
        groups: The group templates.
        kind: ``"role"`` (from mapRoles) or ``"user"`` (from mapUsers).
        where: Where the entry was written, e.g. ``file.yaml: mapRoles[2]``.
        sso: For an ``sso:`` entry, what it matches (``arn`` is then its
            pattern, for display).
        match_key: :func:`entry_match_key` of ``arn`` when the parser already
            computed it (so a large table canonicalises each ARN once); ``""``
            means "not given", and the set computes it. Not compared.
    """

    arn: str
    username: str
    groups: tuple[str, ...]
    kind: str
    where: str = ""
    sso: SSOMatch | None = None
    match_key: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class MappingSet:
    """The complete, immutable mappings of one source.

    Attributes:
        source: ``"inline"``, ``"file"``, ``"configMap"`` or ``"crd"``.
        roles: Entries from mapRoles, in source order.
        users: Entries from mapUsers, in source order.
        accounts: Account IDs whose principals map to their canonical ARN.
        reserved_prefixes: Username prefixes this source may not grant.
        reserved_group_prefixes: Group prefixes this source may not grant: a
            mapping that renders such a group is refused whole.
    """

    source: str
    roles: tuple[MappingEntry, ...]
    users: tuple[MappingEntry, ...]
    accounts: tuple[str, ...]
    reserved_prefixes: tuple[str, ...] = ()
    reserved_group_prefixes: tuple[str, ...] = ()
    _roles_by_key: dict[str, MappingEntry] = field(
        init=False, repr=False, compare=False
    )
    _users_by_key: dict[str, MappingEntry] = field(
        init=False, repr=False, compare=False
    )
    _accounts: frozenset[str] = field(init=False, repr=False, compare=False)
    _sso_roles: tuple[MappingEntry, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Index the entries by match key; the first entry in source order wins."""
        object.__setattr__(
            self, "_sso_roles", tuple(e for e in self.roles if e.sso is not None)
        )
        object.__setattr__(self, "_roles_by_key", _index(self.roles))
        object.__setattr__(self, "_users_by_key", _index(self.users))
        object.__setattr__(self, "_accounts", frozenset(self.accounts))

    @property
    def entries(self) -> int:
        """Return the number of entries (roles + users + accounts)."""
        return len(self.roles) + len(self.users) + len(self.accounts)

    def find_entry(self, match_key: str) -> MappingEntry | None:
        """Return the winning explicit entry for a match key (roles, then users).

        Args:
            match_key: See :func:`identity_match_key`.

        Returns:
            The first matching entry in source order (an exact role ARN before
            an ``sso`` pattern), or None.
        """
        found = self._roles_by_key.get(match_key)
        if found is None:
            found = next(
                (e for e in self._sso_roles if e.sso and e.sso.matches(match_key)), None
            )
        return found or self._users_by_key.get(match_key)

    def maps_account(self, account_id: str) -> bool:
        """Return whether this source's mapAccounts lists ``account_id``."""
        return account_id in self._accounts


@dataclass(frozen=True, slots=True)
class KubernetesUser:
    """The user a TokenReview answers with (docs/operations.md).

    Attributes:
        username: The rendered username.
        uid: ``aws-iam-authenticator:<accountId>:<userId>``.
        groups: The rendered groups.
        extra: ``arn``, ``canonicalArn``, ``sessionName``, ``accessKeyId``,
            ``principalId`` and ``sigs.k8s.io/aws-iam-authenticator/principalId``.
    """

    username: str
    uid: str
    groups: tuple[str, ...]
    extra: Mapping[str, tuple[str, ...]]

    def to_json(self) -> dict[str, object]:
        """Return the TokenReview ``status.user`` object."""
        return {
            "username": self.username,
            "uid": self.uid,
            "groups": list(self.groups),
            "extra": {key: list(values) for key, values in self.extra.items()},
        }


@dataclass(frozen=True, slots=True)
class MappingProblem:
    """One reason a mapping document is invalid.

    Attributes:
        where: The file or object and the path inside it.
        message: What is wrong.
    """

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def entry_match_key(arn: str) -> str | None:
    """Return the key an entry ARN matches on, or None if it can never match.

    Args:
        arn: An entry's ARN as written.

    Returns:
        The canonical, path-stripped, lower-cased ARN; None for a malformed ARN
        or an assumed-role (session) ARN, which is not canonical.
    """
    try:
        canonical = canonicalize_arn(arn)
    except InvalidARNError:
        return None
    if canonical != arn:
        return None
    try:
        return strip_role_path(canonical).lower()
    except InvalidARNError:
        return None


def identity_match_key(canonical_arn: str) -> str | None:
    """Return the key a caller's canonical ARN is looked up with.

    Args:
        canonical_arn: The identity's canonical ARN.

    Returns:
        The path-stripped, lower-cased ARN, or None if it does not parse.
    """
    try:
        return strip_role_path(canonical_arn).lower()
    except InvalidARNError:
        return None


def _index(entries: Iterable[MappingEntry]) -> dict[str, MappingEntry]:
    index: dict[str, MappingEntry] = {}
    for entry in entries:
        if entry.sso is not None:
            continue
        key = entry.match_key or entry_match_key(entry.arn)
        if key is not None:
            index.setdefault(key, entry)
    return index


# Group prefixes each source kind may not grant unless configured otherwise
# (``reservedGroupPrefixes``): whoever may create IAMIdentityMapping objects
# must not be able to grant system:masters (or any system: group); aws-auth
# keeps system:bootstrappers/system:nodes for its node roles.
DEFAULT_RESERVED_GROUP_PREFIXES: Mapping[str, tuple[str, ...]] = {
    "crd": ("system:",),
}


def with_group_prefixes(mapping_set: MappingSet, prefixes: Sequence[str]) -> MappingSet:
    """Return ``mapping_set`` reserving ``prefixes`` for groups.

    Args:
        mapping_set: A parsed set.
        prefixes: Group prefixes the source may not grant.
    """
    if tuple(prefixes) == mapping_set.reserved_group_prefixes:
        return mapping_set
    return replace(mapping_set, reserved_group_prefixes=tuple(prefixes))
