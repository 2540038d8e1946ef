"""The values of the mapping core: entries, sets, problems, Kubernetes users.

Shared by :mod:`authenticator.mapping_formats` (which builds them from the
three accepted formats) and :mod:`authenticator.mapping` (which evaluates
them); import them from :mod:`authenticator.mapping`.
"""

from __future__ import annotations

import marshal
import zlib
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, overload

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
        roles: Entries from mapRoles, in source order (a tuple, or for a
            large file parsed in a child process a :class:`PackedEntries`).
        users: Entries from mapUsers, in source order (likewise).
        accounts: Account IDs whose principals map to their canonical ARN.
        reserved_prefixes: Username prefixes this source may not grant.
        reserved_group_prefixes: Group prefixes this source may not grant: a
            mapping that renders such a group is refused whole.
    """

    source: str
    roles: Sequence[MappingEntry]
    users: Sequence[MappingEntry]
    accounts: tuple[str, ...]
    reserved_prefixes: tuple[str, ...] = ()
    reserved_group_prefixes: tuple[str, ...] = ()
    _find_role: Callable[[str], MappingEntry | None] = field(
        init=False, repr=False, compare=False
    )
    _find_user: Callable[[str], MappingEntry | None] = field(
        init=False, repr=False, compare=False
    )
    _accounts: frozenset[str] = field(init=False, repr=False, compare=False)
    _sso_roles: tuple[MappingEntry, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Index the entries by match key; the first entry in source order wins."""
        roles = self.roles
        if isinstance(roles, PackedEntries):  # indexed by the packer
            sso_roles = roles.sso_entries()
        else:
            sso_roles = tuple(e for e in roles if e.sso is not None)
        object.__setattr__(self, "_sso_roles", sso_roles)
        object.__setattr__(self, "_find_role", _finder(roles))
        object.__setattr__(self, "_find_user", _finder(self.users))
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
        found = self._find_role(match_key)
        if found is None:
            found = next(
                (e for e in self._sso_roles if e.sso and e.sso.matches(match_key)), None
            )
        return found or self._find_user(match_key)

    def maps_account(self, account_id: str) -> bool:
        """Return whether this source's mapAccounts lists ``account_id``."""
        return account_id in self._accounts


_PACK_SECTIONS = 6
# Offsets, slots and rows: signed 64-bit, native order (the packer and the
# reader are the same machine).
_INT: Literal["q"] = "q"


class PackedEntries(Sequence[MappingEntry]):
    """Mapping entries and their match-key index packed into six buffers.

    A 100,000-entry table as :class:`MappingEntry` objects is about half a
    million Python objects (40 MB, more once the allocator's pages are
    fragmented) that a serving process must build, keep and free beside its
    requests. Packed, it is five flat buffers, built by the process that
    parsed the text (:mod:`authenticator.mapping_child`) and served from the
    bytes it sent: nothing to build, a few buffers to free, pages that forked
    workers share untouched.

    The buffers: each entry as a :mod:`marshal` tuple (``data``) with its
    start offsets (``offsets``, one more than entries); the match keys of the
    indexed entries as UTF-8 (``keys``, ``key_offsets`` by row); an
    open-addressing hash table (``slots``, a power of two, ``-1`` empty, CRC-32
    of the key, linear probing) of row numbers; and the rows of the ``sso``
    entries (``sso``). An entry is decoded when it is looked up or iterated.
    """

    __slots__ = (
        "_data",
        "_key_offsets",
        "_keys",
        "_mask",
        "_offsets",
        "_slots",
        "_sso",
        "_sso_rows",
    )

    def __init__(self, buffers: Sequence[bytes | memoryview]) -> None:
        """Serve entries from :meth:`pack`'s buffers (bytes or views of them).

        Raises:
            ValueError: The buffers do not fit together.
        """
        if len(buffers) != _PACK_SECTIONS:
            raise ValueError(f"packed entries need {_PACK_SECTIONS} buffers")
        data, offsets, keys, key_offsets, slots, sso_rows = (
            memoryview(b) for b in buffers
        )
        self._data = data
        self._offsets = offsets.cast(_INT)
        self._keys = keys
        self._key_offsets = key_offsets.cast(_INT)
        self._slots = slots.cast(_INT)
        self._sso_rows = sso_rows.cast(_INT)
        size = len(self._slots)
        count = len(self._offsets) - 1
        if (
            count < 0
            or self._offsets[-1] != len(data)
            or len(self._key_offsets) != count + 1
            or self._key_offsets[-1] != len(keys)
            or size < 1
            or size & (size - 1)
            or any(not 0 <= row < count for row in self._sso_rows)
        ):
            raise ValueError("packed entries: the buffers do not fit together")
        self._mask = size - 1
        self._sso: tuple[MappingEntry, ...] | None = None

    @staticmethod
    def pack(entries: Sequence[MappingEntry]) -> list[bytes]:
        """Pack entries (in source order) and their index into six buffers."""
        blobs: list[bytes] = []
        keys: list[bytes] = []
        sso_rows = array(_INT)
        rows = index_rows(entries)
        for row, entry in enumerate(entries):
            sso = entry.sso
            if sso is not None:
                sso_rows.append(row)
            blobs.append(
                marshal.dumps(
                    (
                        entry.arn,
                        entry.username,
                        entry.groups,
                        entry.kind,
                        entry.where,
                        (sso.permission_set, sso.account_id, sso.partition)
                        if sso
                        else None,
                        entry.match_key,
                    )
                )
            )
            keys.append(b"")
        size = 1
        while size < 2 * len(rows) or size < 1:
            size *= 2
        mask = size - 1
        slots = array(_INT, [-1]) * size
        for key, row in rows.items():
            encoded = key.encode("utf-8")
            keys[row] = encoded
            i = zlib.crc32(encoded) & mask
            while slots[i] >= 0:
                i = (i + 1) & mask
            slots[i] = row
        return [
            b"".join(blobs),
            _starts(blobs).tobytes(),
            b"".join(keys),
            _starts(keys).tobytes(),
            slots.tobytes(),
            sso_rows.tobytes(),
        ]

    def get(self, match_key: str) -> MappingEntry | None:
        """Return the indexed entry for a match key (the first in source order)."""
        encoded = match_key.encode("utf-8")
        mask, slots, keys = self._mask, self._slots, self._keys
        starts = self._key_offsets
        i = zlib.crc32(encoded) & mask
        while (row := slots[i]) >= 0:
            if keys[starts[row] : starts[row + 1]] == encoded:
                return self._entry(row)
            i = (i + 1) & mask
        return None

    def sso_entries(self) -> tuple[MappingEntry, ...]:
        """Return the ``sso`` entries, in source order (decoded once)."""
        if self._sso is None:
            self._sso = tuple(self._entry(row) for row in self._sso_rows)
        return self._sso

    def _entry(self, row: int) -> MappingEntry:
        start, end = self._offsets[row], self._offsets[row + 1]
        # marshal our own packer wrote (a child process of this server)
        arn, username, groups, kind, where, sso, key = marshal.loads(  # noqa: S302
            self._data[start:end]
        )
        return MappingEntry(
            arn,
            username,
            groups,
            kind,
            where,
            SSOMatch(*sso) if sso is not None else None,
            key,
        )

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, index: int) -> MappingEntry: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[MappingEntry, ...]: ...

    def __getitem__(
        self, index: int | slice
    ) -> MappingEntry | tuple[MappingEntry, ...]:
        if isinstance(index, slice):
            return tuple(self._entry(i) for i in range(*index.indices(len(self))))
        count = len(self)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError("packed entry index out of range")
        return self._entry(index)

    def __iter__(self) -> Iterator[MappingEntry]:
        return (self._entry(i) for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(
            a == b for a, b in zip(self, other, strict=True)
        )

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"PackedEntries({len(self)} entries)"


def _starts(blobs: Sequence[bytes]) -> array[int]:
    starts = array(_INT, [0]) * (len(blobs) + 1)
    total = 0
    for i, blob in enumerate(blobs, 1):
        total += len(blob)
        starts[i] = total
    return starts


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


def index_rows(entries: Sequence[MappingEntry]) -> dict[str, int]:
    """Return each match key's winning row: the first non-``sso`` entry with it.

    Args:
        entries: Entries in source order.

    Returns:
        Match key to row number; entries whose ARN can never match are left out.
    """
    rows: dict[str, int] = {}
    for key, row in _keyed(entries):
        rows.setdefault(key, row)
    return rows


def _finder(entries: Sequence[MappingEntry]) -> Callable[[str], MappingEntry | None]:
    """The lookup by match key: the packer's index, or a dict built here."""
    if isinstance(entries, PackedEntries):
        return entries.get
    index = _index(entries)
    return lambda key: index.get(key)


def _index(entries: Sequence[MappingEntry]) -> dict[str, MappingEntry]:
    index: dict[str, MappingEntry] = {}
    for key, row in _keyed(entries):
        index.setdefault(key, entries[row])
    return index


def _keyed(entries: Sequence[MappingEntry]) -> Iterator[tuple[str, int]]:
    for row, entry in enumerate(entries):
        if entry.sso is not None:
            continue
        key = entry.match_key or entry_match_key(entry.arn)
        if key is not None:
            yield key, row


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
