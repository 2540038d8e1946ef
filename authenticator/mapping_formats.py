"""Parse the three mapping formats into :class:`MappingSet` values, purely.

* ``mapRoles``/``mapUsers``/``mapAccounts`` documents (the server config's
  inline mappings and mapping files);
* the ``aws-auth`` ConfigMap's ``data``: YAML strings, entry keys in any case;
* ``IAMIdentityMapping`` objects (``iamauthenticator.k8s.aws/v1alpha1``).

Every problem is collected with where it is (``file.yaml: mapRoles[2].rolearn``);
``parse_*`` raise one :class:`ConfigError` listing them all, ``validate_*`` and
:func:`inspect_mapping_text` return them. Import these from
:mod:`authenticator.mapping`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeGuard, TypeVar

from authenticator.arn import canonicalize_arn
from authenticator.errors import ConfigError, InvalidARNError
from authenticator.mapping_model import (
    MappingEntry,
    MappingProblem,
    MappingSet,
    SSOMatch,
)
from authenticator.partitions import PARTITIONS
from authenticator.yamlio import NumericText, load_yaml_documents

# aws-auth: a value that is blank, "", '' or two backticks counts as empty (section 8).
EMPTY_AWS_AUTH_VALUES = frozenset({"", '""', "''", "``"})
# AWS account IDs are exactly 12 digits, kept as text (docs/configuration.md).
ACCOUNT_ID_RE = re.compile(r"[0-9]{12}")
# Entry fields (lower-cased: entry keys are matched case-insensitively).
_ENTRY_KEYS = {
    "role": ("rolearn", "username", "groups"),
    "user": ("userarn", "username", "groups"),
}
# Reference-only entry keys that kubeiam's formats do not have (section 7.1).
_UNSUPPORTED_KEYS = {
    "userid": "'userid' (DynamicFile) is not supported: map the ARN",
}
# sso: {permissionSetName, accountID, partition?} (reference validation, section 7.1).
_SSO_KEYS = ("permissionSetName", "accountID", "partition")
_PERMISSION_SET_RE = re.compile(r"[\w+=,.@-]{1,32}")
_T = TypeVar("_T")
# Entry keys already in the usual spelling (lower case), per kind.
_PLAIN_KEYS = {
    "role": frozenset({*_ENTRY_KEYS["role"], "sso"}),
    "user": frozenset(_ENTRY_KEYS["user"]),
}
# The IAM user and role ARNs canonicalize_arn returns unchanged (the usual
# mapping entry), matched at once; anything else takes the full check.
_IAM_NAMED_ARN = re.compile(
    r"(arn:(?:" + "|".join(re.escape(p) for p in PARTITIONS) + r"):iam::[0-9]{12}:)"
    r"(user|role)/((?:[\x21-\x2e\x30-\x7e]+/)*)([A-Za-z0-9_+=,.@-]+)"
)


@dataclass(frozen=True, slots=True)
class MappingReport:
    """Everything a linter wants from one mapping text.

    Attributes:
        mapping_set: The entries that parsed (problems leave gaps).
        problems: Every validation problem.
        numeric_accounts: Where an account ID was an unquoted number in the text.
    """

    mapping_set: MappingSet
    problems: tuple[MappingProblem, ...]
    numeric_accounts: tuple[str, ...]


class _Parser:
    """Collects entries and every problem of one document."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.problems: list[MappingProblem] = []
        self.numeric_accounts: list[str] = []
        self.roles: list[MappingEntry] = []
        self.users: list[MappingEntry] = []
        self.accounts: list[str] = []
        # Interned values: a large table repeats a few templates and group
        # lists, so equal ones share one object (memory, not semantics).
        self._interned: dict[object, object] = {}
        # The match key of each ARN _arn accepted (entry_match_key, computed
        # from the one canonicalisation the validation does anyway).
        self._keys: dict[str, str] = {}

    def intern(self, value: _T) -> _T:
        """Return the one shared object equal to ``value``."""
        return self._interned.setdefault(value, value)  # type: ignore[return-value]  # equal keys hold equal values

    def entry(
        self,
        arn: str,
        username: str,
        groups: tuple[str, ...],
        kind: str,
        path: str,
        sso: SSOMatch | None,
    ) -> MappingEntry:
        """Build an entry, sharing equal templates and group lists."""
        return MappingEntry(
            arn,
            self.intern(username),
            self.intern(groups),
            kind,
            f"{self.where}: {path}",
            sso,
            "" if sso is not None else self._keys.pop(arn, ""),
        )

    def problem(self, path: str, message: str) -> None:
        self.problems.append(MappingProblem(f"{self.where}: {path}", message))

    def entries(self, items: object, path: str, kind: str) -> None:
        if items is None:
            return
        if not isinstance(items, list):
            self.problem(path, "must be a list of entries")
            return
        for i, item in enumerate(items):
            entry = self._entry(item, f"{path}[{i}]", kind)
            if entry is not None:
                (self.roles if kind == "role" else self.users).append(entry)

    def _entry(self, item: object, path: str, kind: str) -> MappingEntry | None:
        fields: dict[str, object] | None
        if type(item) is dict and _PLAIN_KEYS[kind].issuperset(item):
            # The usual spelling (lower-case keys, none unknown): nothing to check.
            fields, ok = item, True
        else:
            fields, ok = self._fields(item, path, kind)
        if fields is None:
            return None
        arn_key = _ENTRY_KEYS[kind][0]
        sso: SSOMatch | None = None
        if "sso" in fields:
            if fields.get(arn_key) is not None:
                self.problem(path, f"give either {arn_key} or sso, not both")
                return None
            sso = self._sso(fields["sso"], f"{path}.sso")
            arn = sso.arn_pattern if sso is not None else None
        else:
            arn = self._arn(fields.get(arn_key), f"{path}.{arn_key}")
        username = self._text(fields.get("username"), f"{path}.username")
        groups = self._groups(fields.get("groups"), f"{path}.groups")
        if not ok or arn is None or username is None or groups is None:
            return None
        return self.entry(arn, username, groups, kind, path, sso)

    def _fields(
        self, item: object, path: str, kind: str
    ) -> tuple[dict[str, object] | None, bool]:
        """An entry's fields by lower-cased key, each problem recorded."""
        if not isinstance(item, Mapping):
            self.problem(path, "must be a mapping with " + ", ".join(_ENTRY_KEYS[kind]))
            return None, False
        fields: dict[str, object] = {}
        ok = True
        for raw_key, value in item.items():
            key = str(raw_key).lower()
            if key in fields:
                self.problem(f"{path}.{raw_key}", "duplicate key (keys ignore case)")
                ok = False
            elif key not in _ENTRY_KEYS[kind] and not (kind == "role" and key == "sso"):
                expected = ", ".join(_ENTRY_KEYS[kind])
                hint = _UNSUPPORTED_KEYS.get(key, f"unknown key (expected {expected})")
                self.problem(f"{path}.{raw_key}", hint)
                ok = False
            fields[key] = value
        return fields, ok

    def _sso(self, value: object, path: str) -> SSOMatch | None:
        if not isinstance(value, Mapping):
            self.problem(path, "must be a mapping with permissionSetName, accountID")
            return None
        by_lower = {k.lower(): k for k in _SSO_KEYS}
        fields: dict[str, object] = {}
        for raw_key, item in value.items():
            key = by_lower.get(str(raw_key).lower())
            if key is None:
                self.problem(
                    f"{path}.{raw_key}",
                    "unknown key (expected permissionSetName, accountID, partition)",
                )
                return None
            fields[key] = item
        name = fields.get("permissionSetName")
        account = fields.get("accountID")
        partition = fields.get("partition", "aws")
        ok = True
        if not isinstance(name, str) or not _PERMISSION_SET_RE.fullmatch(name):
            self.problem(
                f"{path}.permissionSetName",
                f"must be a permission set name ([\\w+=,.@-], 1-32), not {name!r}",
            )
            ok = False
        if isinstance(account, int) and not isinstance(account, bool):
            self.numeric_accounts.append(f"{self.where}: {path}.accountID")
            account = str(account)
        if not isinstance(account, str) or not ACCOUNT_ID_RE.fullmatch(account):
            self.problem(
                f"{path}.accountID",
                f"must be a 12-digit account ID (quoted), not {account!r}",
            )
            ok = False
        if not isinstance(partition, str) or partition not in PARTITIONS:
            self.problem(
                f"{path}.partition",
                f"must be an AWS partition ({', '.join(PARTITIONS)}), "
                f"not {partition!r}",
            )
            ok = False
        if not ok:
            return None
        return SSOMatch(str(name), str(account), str(partition))

    def _arn(self, value: object, path: str) -> str | None:
        if type(value) is str:
            match = _IAM_NAMED_ARN.fullmatch(value)
            if match is not None:  # a user or role ARN canonicalize_arn keeps as is
                self._keys[value] = _match_key(value, match)
                return value
        arn = self._text(value, path)
        if arn is None:
            return None
        try:
            canonical = canonicalize_arn(arn)
        except InvalidARNError as exc:
            self.problem(path, str(exc))
            return None
        if canonical == arn:  # else (a session ARN) it never matches: no key
            self._keys[arn] = _valid_arn_match_key(arn)
        return arn

    def _text(self, value: object, path: str) -> str | None:
        if value is None or value == "":
            self.problem(path, "is required")
            return None
        if not isinstance(value, str):
            self.problem(path, f"must be text, not {value!r}")
            return None
        return str(value)

    def _groups(self, value: object, path: str) -> tuple[str, ...] | None:
        if value is None:
            return ()
        if type(value) is list and all(type(g) is str and g for g in value):
            return tuple(value)
        if not isinstance(value, list):
            self.problem(path, "must be a list of group names")
            return None
        groups: list[str] = []
        for i, group in enumerate(value):
            if not isinstance(group, str) or not group:
                self.problem(
                    f"{path}[{i}]", f"must be a non-empty group name, not {group!r}"
                )
                return None
            groups.append(str(group))
        return tuple(groups)

    def account_list(self, items: object, path: str) -> None:
        if items is None:
            return
        if not isinstance(items, list):
            self.problem(path, "must be a list of 12-digit account IDs")
            return
        for i, value in enumerate(items):
            self.account(value, f"{path}[{i}]")

    def account(self, value: object, path: str) -> None:
        if isinstance(value, bool) or value is None:
            self.problem(path, f"must be a 12-digit account ID, not {value!r}")
        elif isinstance(value, int):
            # A 12-digit int is exactly what was written (a leading 0 would
            # make it octal or text); anything shorter lost its leading zeros.
            self.numeric_accounts.append(f"{self.where}: {path}")
            if len(str(value)) == 12:
                self.accounts.append(str(value))
            else:
                self.problem(
                    path,
                    f"YAML read an unquoted account ID as the number {value}; "
                    'quote it ("012345678901") to keep its leading zeros',
                )
        elif isinstance(value, str) and ACCOUNT_ID_RE.fullmatch(value):
            if isinstance(value, NumericText):
                self.numeric_accounts.append(f"{self.where}: {path}")
            self.accounts.append(str(value))
        else:
            self.problem(path, f"must be a 12-digit account ID, not {value!r}")

    def build(self, source: str, reserved_prefixes: Sequence[str]) -> MappingSet:
        return MappingSet(
            source=source,
            roles=tuple(self.roles),
            users=tuple(self.users),
            accounts=tuple(self.accounts),
            reserved_prefixes=tuple(reserved_prefixes),
        )


def _raise_if_problems(problems: Sequence[MappingProblem], where: str) -> None:
    if problems:
        # One line (CLIs print errors as one line; logs keep one record).
        listed = "; ".join(str(p) for p in problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise ConfigError(f"{where}: {count} in the mappings: {listed}")


def _doc_into(parser: _Parser, doc: object) -> None:
    if not isinstance(doc, Mapping):
        parser.problem(
            "(top level)", "must be a mapping with mapRoles, mapUsers, mapAccounts"
        )
        return
    parser.entries(doc.get("mapRoles"), "mapRoles", "role")
    parser.entries(doc.get("mapUsers"), "mapUsers", "user")
    parser.account_list(doc.get("mapAccounts"), "mapAccounts")


def _aws_auth_into(parser: _Parser, data: object) -> None:
    if data is None:
        return
    if not isinstance(data, Mapping):
        parser.problem("data", "must be a mapping of strings")
        return
    for key, kind in (("mapRoles", "role"), ("mapUsers", "user"), ("mapAccounts", "")):
        raw = data.get(key)
        path = f"data.{key}"
        if raw is None:
            continue
        if not isinstance(raw, str):
            parser.problem(
                path, "must be a YAML string (a block scalar), not nested YAML"
            )
            continue
        if raw.strip() in EMPTY_AWS_AUTH_VALUES:
            continue
        try:
            docs = load_yaml_documents(raw, scalars="text")
        except ConfigError as exc:
            parser.problem(path, str(exc))
            continue
        if len(docs) > 1:
            parser.problem(path, "must hold one YAML document")
            continue
        value = docs[0] if docs else None
        if kind:
            parser.entries(value, path, kind)
        else:
            parser.account_list(value, path)


def _is_mapping(value: object) -> TypeGuard[Mapping[str, object]]:
    """isinstance(value, Mapping), with the usual case (a dict) checked first."""
    return type(value) is dict or isinstance(value, Mapping)


def _crd_into(parser: _Parser, items: Sequence[object]) -> None:
    for i, item in enumerate(items):
        _crd_object(parser, item, i)


def _crd_object(parser: _Parser, item: object, i: int) -> None:
    """Parse ``items[i]`` into ``parser`` (an entry, or its problems)."""
    if not _is_mapping(item):
        parser.problem(f"items[{i}]", "must be an IAMIdentityMapping object")
        return
    metadata = item.get("metadata")
    name = metadata.get("name") if _is_mapping(metadata) else None
    path = f"iamidentitymapping/{name}" if isinstance(name, str) else f"items[{i}]"
    spec = item.get("spec")
    if type(spec) is dict and spec.get("sso") is None:
        arn, username, groups = (
            spec.get("arn"),
            spec.get("username"),
            spec.get("groups"),
        )
        if (
            type(arn) is str
            and type(username) is str
            and username
            and (
                groups is None
                or (type(groups) is list and all(type(g) is str and g for g in groups))
            )
            and (match := _IAM_NAMED_ARN.fullmatch(arn)) is not None
        ):
            # The usual object (a user or role ARN kept as is by
            # canonicalize_arn, text, plain groups): nothing to report.
            parser._keys[arn] = _match_key(arn, match)
            kind = match[2]
            entry = parser.entry(arn, username, tuple(groups or ()), kind, path, None)
            (parser.roles if kind == "role" else parser.users).append(entry)
            return
    if not _is_mapping(spec):
        parser.problem(f"{path}.spec", "is required")
        return
    sso: SSOMatch | None = None
    if spec.get("sso") is not None:
        if spec.get("arn") is not None:
            parser.problem(f"{path}.spec", "give either arn or sso, not both")
            return
        sso = parser._sso(spec["sso"], f"{path}.spec.sso")
        arn = sso.arn_pattern if sso is not None else None
    else:
        arn = parser._arn(spec.get("arn"), f"{path}.spec.arn")
    username = parser._text(spec.get("username"), f"{path}.spec.username")
    groups = parser._groups(spec.get("groups"), f"{path}.spec.groups")
    if arn is None or username is None or groups is None:
        return
    kind = "role" if sso is not None or _is_role_arn(arn) else "user"
    entry = parser.entry(arn, username, groups, kind, path, sso)
    (parser.roles if kind == "role" else parser.users).append(entry)


# One object as parsed: its resourceVersion, its entry (None if invalid),
# its problems.
_ParsedObject = tuple[str, MappingEntry | None, tuple[MappingProblem, ...]]


class IdentityMappingTable:
    """IAMIdentityMapping objects parsed one at a time, for a source following events.

    Parsing 100,000 objects again for every watch event takes about a second.
    Here each object is parsed once, and again only when its resourceVersion
    changes; :meth:`build` assembles the set in name order from what is kept,
    and gives what :func:`parse_identity_mappings` gives for the same objects
    in name order (the same entries, the same problems in the same message).

    Args:
        where: The source name used in problems.
        reserved_prefixes: Username prefixes this source may not grant.
        source: The source name.
    """

    def __init__(
        self, *, where: str, reserved_prefixes: Sequence[str] = (), source: str = "crd"
    ) -> None:
        self._where = where
        self._reserved = tuple(reserved_prefixes)
        self._source = source
        self._parsed: dict[str, _ParsedObject] = {}
        self._interned: dict[object, object] = {}

    def __len__(self) -> int:
        return len(self._parsed)

    def put(self, name: str, obj: Mapping[str, object]) -> None:
        """Add or replace the object ``name`` (parsed unless its version is known)."""
        self.put_many(((name, obj),))

    def put_many(self, objects: Iterable[tuple[str, Mapping[str, object]]]) -> None:
        """Add or replace objects by name (each parsed unless its version is known)."""
        parser = _Parser(self._where)
        parser._interned = self._interned  # equal templates shared across objects
        parsed = self._parsed
        roles, users, problems = parser.roles, parser.users, parser.problems
        for name, obj in objects:
            metadata = obj.get("metadata")
            version = metadata.get("resourceVersion") if _is_mapping(metadata) else None
            version = version if isinstance(version, str) else ""
            known = parsed.get(name)
            if known is not None and version and known[0] == version:
                continue
            r, u, p = len(roles), len(users), len(problems)
            _crd_object(parser, obj, 0)
            entry = roles[r] if len(roles) > r else users[u] if len(users) > u else None
            parsed[name] = (version, entry, tuple(problems[p:]))

    def remove(self, name: str) -> None:
        """Forget the object ``name``."""
        self._parsed.pop(name, None)

    def keep_only(self, names: Iterable[str]) -> None:
        """Forget every object not in ``names`` (after a fresh list)."""
        keep = set(names)
        for name in [n for n in self._parsed if n not in keep]:
            del self._parsed[name]

    def build(self) -> MappingSet:
        """The set of every object, in name order.

        Raises:
            ConfigError: An object is invalid; the message lists every problem.
        """
        roles: list[MappingEntry] = []
        users: list[MappingEntry] = []
        problems: list[MappingProblem] = []
        parsed = self._parsed
        for name in sorted(parsed):
            _, entry, found = parsed[name]
            if found:
                problems += found
            if entry is not None:
                (roles if entry.kind == "role" else users).append(entry)
        _raise_if_problems(problems, self._where)
        return MappingSet(
            source=self._source,
            roles=tuple(roles),
            users=tuple(users),
            accounts=(),
            reserved_prefixes=self._reserved,
        )


def _valid_arn_match_key(arn: str) -> str:
    """entry_match_key of an ARN canonicalize_arn returned unchanged, parsed once.

    The same result as ``strip_role_path(arn).lower()`` (a test compares them).
    """
    parts = arn.split(":", 5)
    segments = parts[5].split("/")
    if parts[2] == "iam" and segments[0] == "role" and len(segments) > 2:
        parts[5] = "role/" + segments[-1]
        return ":".join(parts).lower()
    return arn.lower()


def _match_key(arn: str, match: re.Match[str]) -> str:
    """entry_match_key of an ARN _IAM_NAMED_ARN matched (role paths dropped)."""
    if match[2] == "role" and match[3]:
        return f"{match[1]}role/{match[4]}".lower()
    return arn.lower()


def _is_role_arn(arn: str) -> bool:
    resource = arn.split(":", 5)[-1]
    return resource.startswith(("role/", "assumed-role/"))


def validate_mappings(doc: Mapping[str, object], *, where: str) -> list[MappingProblem]:
    """Return every problem of a mapRoles/mapUsers/mapAccounts document.

    Args:
        doc: The parsed document (other top-level keys are ignored).
        where: The file or object name used in each problem.

    Returns:
        The problems, in document order (empty when valid).
    """
    parser = _Parser(where)
    _doc_into(parser, doc)
    return parser.problems


def parse_mappings(
    doc: Mapping[str, object],
    *,
    source: str,
    where: str,
    reserved_prefixes: Sequence[str] = (),
) -> MappingSet:
    """Parse a mapRoles/mapUsers/mapAccounts document (server config or file).

    Args:
        doc: The parsed document (other top-level keys are ignored).
        source: The source name (``"inline"``, ``"file"``, ...).
        where: The file name used in problems.
        reserved_prefixes: Username prefixes this source may not grant.

    Returns:
        The mapping set.

    Raises:
        ConfigError: The document is invalid; the message lists every problem.
    """
    parser = _Parser(where)
    _doc_into(parser, doc)
    _raise_if_problems(parser.problems, where)
    return parser.build(source, reserved_prefixes)


def validate_aws_auth(
    data: Mapping[str, object] | None, *, where: str
) -> list[MappingProblem]:
    """Return every problem of an aws-auth ConfigMap's ``data``.

    Args:
        data: The ConfigMap's ``data`` (YAML strings).
        where: The object name used in each problem.

    Returns:
        The problems (empty when valid).
    """
    parser = _Parser(where)
    _aws_auth_into(parser, data)
    return parser.problems


def parse_aws_auth(
    data: Mapping[str, object] | None,
    *,
    where: str,
    reserved_prefixes: Sequence[str] = (),
    source: str = "configMap",
) -> MappingSet:
    """Parse an aws-auth ConfigMap's ``data`` (docs/configuration.md).

    Each of ``mapRoles``, ``mapUsers``, ``mapAccounts`` is a YAML string; entry
    keys ignore case; account IDs stay text.

    Args:
        data: The ConfigMap's ``data``; None for a ConfigMap without data.
        where: The object name used in problems (``kube-system/aws-auth``).
        reserved_prefixes: Username prefixes this source may not grant.
        source: The source name.

    Returns:
        The mapping set.

    Raises:
        ConfigError: The data is invalid; the message lists every problem.
    """
    parser = _Parser(where)
    _aws_auth_into(parser, data)
    _raise_if_problems(parser.problems, where)
    return parser.build(source, reserved_prefixes)


def parse_identity_mappings(
    items: Sequence[Mapping[str, object]],
    *,
    where: str,
    reserved_prefixes: Sequence[str] = (),
    source: str = "crd",
) -> MappingSet:
    """Parse IAMIdentityMapping objects (``iamauthenticator.k8s.aws/v1alpha1``).

    The canonical ARN is computed here from ``spec.arn``; no controller has to
    fill ``status.canonicalARN`` first. Role ARNs become role entries, the rest
    user entries, in the order given.

    Args:
        items: The objects (``metadata.name``, ``spec.arn``/``username``/``groups``).
        where: The source name used in problems.
        reserved_prefixes: Username prefixes this source may not grant.
        source: The source name.

    Returns:
        The mapping set (never any accounts).

    Raises:
        ConfigError: An object is invalid; the message lists every problem.
    """
    parser = _Parser(where)
    _crd_into(parser, items)
    _raise_if_problems(parser.problems, where)
    return parser.build(source, reserved_prefixes)


def inspect_mapping_text(
    text: str, *, source: str, where: str, reserved_prefixes: Sequence[str] = ()
) -> MappingReport:
    """Parse a mapping file leniently: the entries that parse, and every problem.

    The text may hold a server config or plain mapping document (top-level
    mapRoles/mapUsers/mapAccounts), an aws-auth ConfigMap (``kind: ConfigMap``)
    or IAMIdentityMapping objects (``kind: IAMIdentityMapping`` or a ``List``).

    Args:
        text: The YAML text.
        source: The source name for the resulting set.
        where: The file name used in problems.
        reserved_prefixes: Username prefixes this source may not grant.

    Returns:
        The report.
    """
    parser = _Parser(where)
    try:
        docs = load_yaml_documents(text, scalars="text")
    except ConfigError as exc:
        parser.problem("(file)", str(exc))
        docs = []
    crd_items: list[object] = []
    for doc in docs:
        kind = doc.get("kind") if isinstance(doc, Mapping) else None
        if isinstance(doc, Mapping) and kind == "ConfigMap":
            _aws_auth_into(parser, doc.get("data"))
        elif isinstance(doc, Mapping) and kind == "IAMIdentityMapping":
            crd_items.append(doc)
        elif isinstance(doc, Mapping) and kind in ("List", "IAMIdentityMappingList"):
            items = doc.get("items")
            crd_items.extend(items if isinstance(items, list) else [items])
        else:
            _doc_into(parser, doc)
    _crd_into(parser, crd_items)
    return MappingReport(
        parser.build(source, reserved_prefixes),
        tuple(parser.problems),
        tuple(parser.numeric_accounts),
    )


def parse_mapping_text(
    text: str, *, source: str, where: str, reserved_prefixes: Sequence[str] = ()
) -> MappingSet:
    """Parse a mapping file strictly (see :func:`inspect_mapping_text` for formats).

    Args:
        text: The YAML text.
        source: The source name for the resulting set.
        where: The file name used in problems.
        reserved_prefixes: Username prefixes this source may not grant.

    Returns:
        The mapping set.

    Raises:
        ConfigError: The text is invalid; the message lists every problem.
    """
    report = inspect_mapping_text(
        text, source=source, where=where, reserved_prefixes=reserved_prefixes
    )
    _raise_if_problems(report.problems, where)
    return report.mapping_set
