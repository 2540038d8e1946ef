"""Map a verified IAM identity to a Kubernetes user (SPEC section 6), purely.

Parsing turns the three accepted formats (``mapRoles``/``mapUsers``/
``mapAccounts`` documents, the ``aws-auth`` ConfigMap's ``data`` and
``IAMIdentityMapping`` objects) into immutable :class:`MappingSet` values;
:func:`evaluate_mapping` (and its short form :func:`map_identity`) decides who a
caller is. Nothing here reads files, the network, the clock or the environment:
the EC2 private-DNS lookup is injected as a callable.

Rules (authentication.md section 7, SPEC section 6):

* Matching is on the canonical ARN, case-insensitive, with role paths ignored
  on both sides. An entry written as an STS assumed-role ARN is not canonical
  and never matches (the EKS ConfigMap mapper never matches it either; turning
  it into the role ARN would silently widen one session's grant to the role).
* Per source in order: explicit entries (the ``mapRoles`` list, then
  ``mapUsers``), then that source's ``mapAccounts``; the first entry in source
  order wins, deterministically.
* The first explicit entry that matches decides. If its templates cannot be
  rendered, or the rendered username begins with one of that source's reserved
  prefixes, the identity is not authenticated: the search does not fall through
  to later entries or sources (the reference returns an error at that point).
* Templates are replaced in one pass, so a value can never inject another
  placeholder.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import yaml

from authenticator.arn import canonicalize_arn, strip_role_path
from authenticator.errors import ConfigError, InvalidARNError
from authenticator.identity import Identity

# The uid and extra keys of the reference authenticator (authentication.md section 6).
UID_PREFIX = "aws-iam-authenticator"
PRINCIPAL_ID_EXTRA = "sigs.k8s.io/aws-iam-authenticator/principalId"
# Reference check before {{EC2PrivateDNSName}}: ^i-(\w{8}|\w{17})$ (Go's \w is ASCII).
INSTANCE_ID_RE = re.compile(r"i-(\w{8}|\w{17})", re.ASCII)
# The five placeholders of authentication.md section 7.4; unknown ones stay literal.
TEMPLATE_RE = re.compile(
    r"\{\{(EC2PrivateDNSName|AccountID|SessionName|SessionNameRaw|AccessKeyID)\}\}"
)
EC2_TEMPLATE = "{{EC2PrivateDNSName}}"
# aws-auth: a value that is blank, "", '' or two backticks counts as empty (section 8).
EMPTY_AWS_AUTH_VALUES = frozenset({"", '""', "''", "``"})
# AWS account IDs are exactly 12 digits, kept as text (SPEC section 6).
ACCOUNT_ID_RE = re.compile(r"[0-9]{12}")
# Entry fields (lower-cased: entry keys are matched case-insensitively).
_ENTRY_KEYS = {
    "role": ("rolearn", "username", "groups"),
    "user": ("userarn", "username", "groups"),
}
# Reference-only entry keys that kubeiam's formats do not have (section 7.1).
_UNSUPPORTED_KEYS = {
    "sso": "'sso' entries are not supported: write the role ARN (paths are ignored)",
    "userid": "'userid' (DynamicFile) is not supported: map the ARN",
}
_NUMERIC_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
_MAX_YAML_NODES = 100_000


class NumericText(str):
    """A plain YAML scalar kept as text that YAML 1.1 would have read as a number."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class MappingEntry:
    """One explicit mapping entry, as written.

    Attributes:
        arn: The ARN as written (``rolearn``/``userarn``/``spec.arn``).
        username: The username template.
        groups: The group templates.
        kind: ``"role"`` (from mapRoles) or ``"user"`` (from mapUsers).
        where: Where the entry was written, e.g. ``file.yaml: mapRoles[2]``.
    """

    arn: str
    username: str
    groups: tuple[str, ...]
    kind: str
    where: str = ""


@dataclass(frozen=True, slots=True)
class MappingSet:
    """The complete, immutable mappings of one source.

    Attributes:
        source: ``"inline"``, ``"file"``, ``"configMap"`` or ``"crd"``.
        roles: Entries from mapRoles, in source order.
        users: Entries from mapUsers, in source order.
        accounts: Account IDs whose principals map to their canonical ARN.
        reserved_prefixes: Username prefixes this source may not grant.
    """

    source: str
    roles: tuple[MappingEntry, ...]
    users: tuple[MappingEntry, ...]
    accounts: tuple[str, ...]
    reserved_prefixes: tuple[str, ...] = ()
    _roles_by_key: dict[str, MappingEntry] = field(
        init=False, repr=False, compare=False
    )
    _users_by_key: dict[str, MappingEntry] = field(
        init=False, repr=False, compare=False
    )
    _accounts: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Index the entries by match key; the first entry in source order wins."""
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
            The first matching entry in source order, or None.
        """
        return self._roles_by_key.get(match_key) or self._users_by_key.get(match_key)

    def maps_account(self, account_id: str) -> bool:
        """Return whether this source's mapAccounts lists ``account_id``."""
        return account_id in self._accounts


@dataclass(frozen=True, slots=True)
class KubernetesUser:
    """The user a TokenReview answers with (SPEC section 4).

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


class MappingOutcome(enum.Enum):
    """How :func:`evaluate_mapping` ended; the value is a stable reason code."""

    MAPPED = "mapped"
    NOT_MAPPED = "not_mapped"
    RESERVED_PREFIX = "reserved_prefix"
    TEMPLATE_ERROR = "template_error"


@dataclass(frozen=True, slots=True)
class MappingResult:
    """The answer of :func:`evaluate_mapping`.

    Attributes:
        user: The Kubernetes user, or None when not authenticated.
        outcome: Why.
        source: The source that decided (empty when nothing matched).
        detail: A human explanation for logs (no secrets).
        entry: The explicit entry that matched, if any.
    """

    user: KubernetesUser | None
    outcome: MappingOutcome
    source: str = ""
    detail: str = ""
    entry: MappingEntry | None = None


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
        key = entry_match_key(entry.arn)
        if key is not None:
            index.setdefault(key, entry)
    return index


# --- YAML that keeps scalars as text ---------------------------------------


def parse_yaml_text(text: str) -> list[object]:
    """Parse YAML documents, keeping every scalar as its text.

    ``000123456789`` stays that string (PyYAML would make an int, or an octal);
    plain scalars YAML 1.1 reads as numbers become :class:`NumericText`, nulls
    become None. Duplicate keys are an error (PyYAML keeps the last silently).

    Args:
        text: The YAML text.

    Returns:
        One value per document.

    Raises:
        ConfigError: The text is not valid YAML, or has duplicate keys.
    """
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {_one_line(str(exc))}") from exc
    budget = [_MAX_YAML_NODES]
    return [_construct(node, budget) for node in nodes if node is not None]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _construct(node: yaml.Node, budget: list[int]) -> object:
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError("YAML document too large (aliases?)")
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:null":
            return None
        if node.style is None and node.tag in _NUMERIC_TAGS:
            return NumericText(node.value)
        return str(node.value)
    if isinstance(node, yaml.SequenceNode):
        return [_construct(child, budget) for child in node.value]
    if isinstance(node, yaml.MappingNode):
        out: dict[str, object] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    f"line {key_node.start_mark.line + 1}: a key must be text"
                )
            key = str(key_node.value)
            if key in out:
                line = key_node.start_mark.line + 1
                raise ConfigError(f"line {line}: duplicate key {key!r}")
            out[key] = _construct(value_node, budget)
        return out
    raise ConfigError(f"unsupported YAML node {node.tag}")  # pragma: no cover


# --- parsing ----------------------------------------------------------------


class _Parser:
    """Collects entries and every problem of one document."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.problems: list[MappingProblem] = []
        self.numeric_accounts: list[str] = []
        self.roles: list[MappingEntry] = []
        self.users: list[MappingEntry] = []
        self.accounts: list[str] = []

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
        if not isinstance(item, Mapping):
            self.problem(path, "must be a mapping with " + ", ".join(_ENTRY_KEYS[kind]))
            return None
        fields: dict[str, object] = {}
        ok = True
        for raw_key, value in item.items():
            key = str(raw_key).lower()
            if key in fields:
                self.problem(f"{path}.{raw_key}", "duplicate key (keys ignore case)")
                ok = False
            elif key not in _ENTRY_KEYS[kind]:
                expected = ", ".join(_ENTRY_KEYS[kind])
                hint = _UNSUPPORTED_KEYS.get(key, f"unknown key (expected {expected})")
                self.problem(f"{path}.{raw_key}", hint)
                ok = False
            fields[key] = value
        arn_key = _ENTRY_KEYS[kind][0]
        arn = self._arn(fields.get(arn_key), f"{path}.{arn_key}")
        username = self._text(fields.get("username"), f"{path}.username")
        groups = self._groups(fields.get("groups"), f"{path}.groups")
        if not ok or arn is None or username is None or groups is None:
            return None
        return MappingEntry(arn, username, groups, kind, f"{self.where}: {path}")

    def _arn(self, value: object, path: str) -> str | None:
        arn = self._text(value, path)
        if arn is None:
            return None
        try:
            canonicalize_arn(arn)
        except InvalidARNError as exc:
            self.problem(path, str(exc))
            return None
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
        lines = "\n".join(f"  {p}" for p in problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise ConfigError(f"{where}: {count} in the mappings:\n{lines}")


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
            docs = parse_yaml_text(raw)
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


def _crd_into(parser: _Parser, items: Sequence[object]) -> None:
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            parser.problem(f"items[{i}]", "must be an IAMIdentityMapping object")
            continue
        metadata = item.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        path = f"iamidentitymapping/{name}" if isinstance(name, str) else f"items[{i}]"
        spec = item.get("spec")
        if not isinstance(spec, Mapping):
            parser.problem(f"{path}.spec", "is required")
            continue
        arn = parser._arn(spec.get("arn"), f"{path}.spec.arn")
        username = parser._text(spec.get("username"), f"{path}.spec.username")
        groups = parser._groups(spec.get("groups"), f"{path}.spec.groups")
        if arn is None or username is None or groups is None:
            continue
        kind = "role" if _is_role_arn(arn) else "user"
        entry = MappingEntry(arn, username, groups, kind, f"{parser.where}: {path}")
        (parser.roles if kind == "role" else parser.users).append(entry)


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
    """Parse an aws-auth ConfigMap's ``data`` (authentication.md section 8).

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
        docs = parse_yaml_text(text)
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


# --- mapping an identity ----------------------------------------------------


def evaluate_mapping(
    identity: Identity,
    sources: Sequence[MappingSet],
    *,
    ec2_private_dns: Callable[[str], str] | None = None,
) -> MappingResult:
    """Decide which Kubernetes user an identity is, and why (SPEC section 6).

    Args:
        identity: The verified identity.
        sources: The mapping sets, in precedence order.
        ec2_private_dns: Returns an instance's private DNS name, or ``""`` when
            it cannot (only called for ``{{EC2PrivateDNSName}}``).

    Returns:
        The result; ``result.user`` is None when the identity is not authenticated.
    """
    key = identity_match_key(identity.canonical_arn)
    if key is not None:
        for mapping_set in sources:
            entry = mapping_set.find_entry(key)
            if entry is not None:
                return _render_entry(identity, entry, mapping_set, ec2_private_dns)
            if mapping_set.maps_account(identity.account_id):
                return _finish(identity, identity.canonical_arn, (), mapping_set, None)
    return MappingResult(
        None, MappingOutcome.NOT_MAPPED, "", f"{identity.canonical_arn} is not mapped"
    )


def map_identity(
    identity: Identity,
    sources: Sequence[MappingSet],
    *,
    ec2_private_dns: Callable[[str], str] | None = None,
) -> KubernetesUser | None:
    """Return the Kubernetes user for an identity, or None (:func:`evaluate_mapping`).

    Args:
        identity: The verified identity.
        sources: The mapping sets, in precedence order.
        ec2_private_dns: The EC2 private DNS lookup.

    Returns:
        The user, or None when the identity is not authenticated.
    """
    return evaluate_mapping(identity, sources, ec2_private_dns=ec2_private_dns).user


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Replace the known placeholders of a template in one pass.

    Args:
        template: A username or group template.
        values: Placeholder name (``AccountID``, ...) -> value.

    Returns:
        The rendered text; placeholders without a value stay literal.
    """
    return TEMPLATE_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _render_entry(
    identity: Identity,
    entry: MappingEntry,
    mapping_set: MappingSet,
    ec2_private_dns: Callable[[str], str] | None,
) -> MappingResult:
    values = {
        "AccountID": identity.account_id,
        "SessionName": identity.session_name.replace("@", "-"),
        "SessionNameRaw": identity.session_name,
        "AccessKeyID": identity.access_key_id,
    }
    if any(EC2_TEMPLATE in t for t in (entry.username, *entry.groups)):
        problem = ""
        if not INSTANCE_ID_RE.fullmatch(identity.session_name):
            problem = "SessionName did not contain an instance id"
        elif ec2_private_dns is None:
            problem = "no EC2 lookup is configured for {{EC2PrivateDNSName}}"
        elif not (dns := ec2_private_dns(identity.session_name)):
            problem = f"no private DNS name for instance {identity.session_name}"
        else:
            values["EC2PrivateDNSName"] = dns
        if problem:
            return MappingResult(
                None, MappingOutcome.TEMPLATE_ERROR, mapping_set.source, problem, entry
            )
    username = render_template(entry.username, values)
    groups = tuple(g for g in (render_template(t, values) for t in entry.groups) if g)
    return _finish(identity, username, groups, mapping_set, entry)


def _finish(
    identity: Identity,
    username: str,
    groups: tuple[str, ...],
    mapping_set: MappingSet,
    entry: MappingEntry | None,
) -> MappingResult:
    if not username:
        return MappingResult(
            None,
            MappingOutcome.TEMPLATE_ERROR,
            mapping_set.source,
            "the username rendered empty",
            entry,
        )
    for prefix in mapping_set.reserved_prefixes:
        if username.startswith(prefix):
            return MappingResult(
                None,
                MappingOutcome.RESERVED_PREFIX,
                mapping_set.source,
                f"username {username!r} begins with {prefix!r}, reserved for source "
                f"{mapping_set.source}",
                entry,
            )
    user = build_kubernetes_user(identity, username, groups)
    return MappingResult(user, MappingOutcome.MAPPED, mapping_set.source, "", entry)


def build_kubernetes_user(
    identity: Identity, username: str, groups: Sequence[str]
) -> KubernetesUser:
    """Build the user with the uid and extra of SPEC section 4.

    Args:
        identity: The verified identity.
        username: The rendered username.
        groups: The rendered groups.

    Returns:
        The user.
    """
    return KubernetesUser(
        username=username,
        uid=f"{UID_PREFIX}:{identity.account_id}:{identity.user_id}",
        groups=tuple(groups),
        extra={
            "arn": (identity.arn,),
            "canonicalArn": (identity.canonical_arn,),
            "sessionName": (identity.session_name,),
            "accessKeyId": (identity.access_key_id,),
            "principalId": (identity.user_id,),
            PRINCIPAL_ID_EXTRA: (identity.user_id,),
        },
    )
