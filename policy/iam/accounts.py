"""An AWS account's principals and policies, from AWS's own JSON (pure).

Input is what ``aws iam get-account-authorization-details`` prints:
``UserDetailList`` (``GroupList``, ``UserPolicyList``, ``AttachedManagedPolicies``,
``PermissionsBoundary``), ``GroupDetailList`` (``GroupPolicyList``,
``AttachedManagedPolicies``), ``RoleDetailList`` (``AssumeRolePolicyDocument``,
``RolePolicyList``, ``AttachedManagedPolicies``, ``PermissionsBoundary``) and
``Policies`` (``PolicyVersionList`` with ``IsDefaultVersion``). Policy documents
may be JSON objects (as awscli prints them) or URL-encoded JSON strings (as the
IAM API returns them). Optional SCPs are a list of policies (one level), a list
of ``{orgIdentifier, policies}`` levels, or ``aws organizations
describe-policy`` output (``{"Policy": {"Content": "..."}}``).

An AWS managed policy that is attached but absent from ``Policies`` is taken
from a small built-in table (the policies of docs/rbac-and-tiers.md plus
AdministratorAccess); otherwise it is listed in ``Account.unresolved`` and the
analysis says so.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from authenticator.arn import parse_arn
from authenticator.errors import InvalidARNError
from policy.errors import InvalidPolicyError
from policy.iam.model import compile_policy
from policy.iam.request import PolicySet
from policy.iam.statement import CompiledPolicy

__all__ = [
    "BUILTIN_MANAGED_POLICIES",
    "Account",
    "NamedPolicy",
    "Principal",
    "parse_account_authorization_details",
    "parse_scps",
]


def _allow(actions: list[str], resource: str = "*") -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}],
    }


_AWS = "arn:aws:iam::aws:policy/"
# AWS managed policies (docs/rbac-and-tiers.md; AdministratorAccess / ReadOnly ECR from
# the
# IAM console), used when the account JSON does not carry their documents.
BUILTIN_MANAGED_POLICIES: dict[str, dict[str, object]] = {
    _AWS + "AdministratorAccess": _allow(["*"]),
    _AWS + "service-role/AmazonECSTaskExecutionRolePolicy": _allow(
        [
            "ecr:GetAuthorizationToken",
            "ecr:BatchCheckLayerAvailability",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchGetImage",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        ]
    ),
    _AWS + "AmazonEC2ContainerRegistryReadOnly": _allow(
        [
            "ecr:GetAuthorizationToken",
            "ecr:BatchCheckLayerAvailability",
            "ecr:GetDownloadUrlForLayer",
            "ecr:GetRepositoryPolicy",
            "ecr:DescribeRepositories",
            "ecr:ListImages",
            "ecr:DescribeImages",
            "ecr:BatchGetImage",
            "ecr:GetLifecyclePolicy",
            "ecr:GetLifecyclePolicyPreview",
            "ecr:ListTagsForResource",
            "ecr:DescribeImageScanFindings",
        ]
    ),
    _AWS + "AmazonEKSWorkerNodePolicy": _allow(
        [
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeRouteTables",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets",
            "ec2:DescribeVolumes",
            "ec2:DescribeVolumesModifications",
            "ec2:DescribeVpcs",
            "eks:DescribeCluster",
            "eks-auth:AssumeRoleForPodIdentity",
        ]
    ),
}
# Service-linked roles live under this path (IAM User Guide, service-linked roles).
SERVICE_LINKED_PATH = "/aws-service-role/"


@dataclass(frozen=True, slots=True)
class NamedPolicy:
    """A policy document and its origin (``inline``, ``managed``, ``group:G/...``)."""

    name: str
    source: str
    document: Mapping[str, object]
    arn: str = ""


@dataclass(frozen=True, slots=True)
class Principal:
    """An IAM user or role with everything that decides its requests."""

    kind: str
    name: str
    arn: str
    path: str = "/"
    identity_policies: tuple[NamedPolicy, ...] = ()
    boundary: NamedPolicy | None = None
    trust_policy: Mapping[str, object] | None = None
    groups: tuple[str, ...] = ()

    @property
    def is_service_linked(self) -> bool:
        """Whether this is a service-linked role (SCPs do not apply to it)."""
        return self.kind == "role" and self.path.startswith(SERVICE_LINKED_PATH)


@dataclass(slots=True)
class Account:
    """The parsed account: principals by ARN, managed policies, SCP levels."""

    account_id: str
    partition: str
    principals: dict[str, Principal] = field(default_factory=dict)
    managed: dict[str, Mapping[str, object]] = field(default_factory=dict)
    scps: list[list[NamedPolicy]] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    _compiled: dict[tuple[str, str, str, int], CompiledPolicy] = field(
        default_factory=dict
    )

    def role(self, name_or_arn: str) -> Principal | None:
        """Find a role by ARN (path ignored) or name.

        Args:
            name_or_arn: ``arn:aws:iam::<acct>:role/[path/]Name`` or ``Name``.

        Returns:
            The role, or None.
        """
        name = name_or_arn.rsplit("/", 1)[-1]
        for p in self.principals.values():
            if p.kind == "role" and p.name == name:
                return p
        return None

    def compiled(self, policy: NamedPolicy, kind: str) -> CompiledPolicy:
        """Compile a policy once (cached).

        Args:
            policy: The policy.
            kind: identity, boundary, trust or scp.

        Returns:
            The compiled policy.

        Raises:
            InvalidPolicyError: The document is not a valid policy.
        """
        # Inline policies of different principals may share a name: the
        # document itself (alive as long as the account) is part of the key.
        key = (policy.source, policy.name, kind, id(policy.document))
        if key not in self._compiled:
            label = f"{policy.source}:{policy.name}"
            self._compiled[key] = compile_policy(
                dict(policy.document), name=label, kind=kind
            )
        return self._compiled[key]

    def policy_set(self, principal: Principal) -> PolicySet:
        """The principal's identity policies, boundary and SCP levels.

        Args:
            principal: A user or role of this account.

        Returns:
            A PolicySet for :func:`policy.iam.evaluator.evaluate` (no resource policy).
        """
        identity = [self.compiled(p, "identity") for p in principal.identity_policies]
        bounds = (
            [self.compiled(principal.boundary, "boundary")]
            if principal.boundary
            else []
        )
        scps = [] if principal.is_service_linked else self.scp_levels()
        return PolicySet(identity=identity, boundaries=bounds, scps=scps)

    def scp_levels(self) -> list[list[CompiledPolicy]]:
        """The SCP levels, compiled.

        Returns:
            One list of policies per organization level.
        """
        return [[self.compiled(p, "scp") for p in level] for level in self.scps]

    def trust(self, principal: Principal) -> CompiledPolicy | None:
        """A role's compiled trust policy.

        Args:
            principal: A role.

        Returns:
            The trust policy, or None for users.
        """
        if principal.trust_policy is None:
            return None
        doc = NamedPolicy("trust", f"role:{principal.name}", principal.trust_policy)
        return self.compiled(doc, "trust")


def _document(raw: object, where: str) -> Mapping[str, object]:
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, str):
        for text in (raw, urllib.parse.unquote(raw)):
            try:
                doc = json.loads(text)
            except ValueError:
                continue
            if isinstance(doc, Mapping):
                return doc
    raise InvalidPolicyError(
        "not a policy document (object or URL-encoded JSON)", policy=where
    )


def _list(
    raw: Mapping[str, object], key: str, where: str
) -> list[Mapping[str, object]]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise InvalidPolicyError(
            "must be a list of objects", pointer=f"/{key}", policy=where
        )
    return value


def _str(m: Mapping[str, object], key: str, where: str) -> str:
    value = m.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidPolicyError(f"{key} is required", pointer=f"/{key}", policy=where)
    return value


def _inline(entity: Mapping[str, object], key: str, where: str) -> list[NamedPolicy]:
    return [
        NamedPolicy(
            _str(p, "PolicyName", where),
            "inline",
            _document(p.get("PolicyDocument"), f"{where}/{key}"),
        )
        for p in _list(entity, key, where)
    ]


class _Builder:
    def __init__(self, details: Mapping[str, object]) -> None:
        self.details = details
        self.managed: dict[str, Mapping[str, object]] = {}
        self.unresolved: list[str] = []
        for i, pol in enumerate(_list(details, "Policies", "Policies")):
            where = f"Policies/{i}"
            arn = _str(pol, "Arn", where)
            versions = _list(pol, "PolicyVersionList", where)
            default = [v for v in versions if v.get("IsDefaultVersion") is True]
            chosen = default or [
                v for v in versions if v.get("VersionId") == pol.get("DefaultVersionId")
            ]
            if chosen:
                self.managed[arn] = _document(chosen[0].get("Document"), where)

    def attached(
        self, entity: Mapping[str, object], where: str, *, record: bool = True
    ) -> list[NamedPolicy]:
        out: list[NamedPolicy] = []
        for ref in _list(entity, "AttachedManagedPolicies", where):
            arn = _str(ref, "PolicyArn", where)
            name = str(ref.get("PolicyName") or arn.rsplit("/", 1)[-1])
            doc = self.managed.get(arn) or BUILTIN_MANAGED_POLICIES.get(arn)
            if doc is None:
                # Service-linked roles are not analysed: their policies may be absent.
                if record and arn not in self.unresolved:
                    self.unresolved.append(arn)
                continue
            out.append(NamedPolicy(name, "managed", doc, arn))
        return out

    def boundary(self, entity: Mapping[str, object], where: str) -> NamedPolicy | None:
        raw = entity.get("PermissionsBoundary")
        if not isinstance(raw, Mapping):
            return None
        arn = _str(raw, "PermissionsBoundaryArn", where)
        doc = self.managed.get(arn) or BUILTIN_MANAGED_POLICIES.get(arn)
        if doc is None:
            self.unresolved.append(arn)
            # An unknown boundary must not widen access: treat it as allowing nothing.
            doc = {"Version": "2012-10-17", "Statement": []}
        return NamedPolicy(arn.rsplit("/", 1)[-1], "boundary", doc, arn)


def parse_account_authorization_details(
    details: object, *, scps: Sequence[Sequence[NamedPolicy]] = ()
) -> Account:
    """Parse ``aws iam get-account-authorization-details`` output.

    Args:
        details: The decoded JSON.
        scps: SCP levels from :func:`parse_scps`.

    Returns:
        The account (its ID taken from the first principal ARN).

    Raises:
        InvalidPolicyError: The JSON is not of that shape or holds a bad document.
    """
    if not isinstance(details, Mapping):
        raise InvalidPolicyError("must be a JSON object", policy="account")
    b = _Builder(details)
    groups: dict[str, tuple[list[NamedPolicy], str]] = {}
    for i, g in enumerate(_list(details, "GroupDetailList", "account")):
        where = f"GroupDetailList/{i}"
        name = _str(g, "GroupName", where)
        pols = _inline(g, "GroupPolicyList", where) + b.attached(g, where)
        groups[name] = (
            [
                NamedPolicy(p.name, f"group:{name}/{p.source}", p.document, p.arn)
                for p in pols
            ],
            _str(g, "Arn", where),
        )
    principals: dict[str, Principal] = {}
    for i, u in enumerate(_list(details, "UserDetailList", "account")):
        where = f"UserDetailList/{i}"
        raw_groups = u.get("GroupList") or []
        if not isinstance(raw_groups, list):
            raise InvalidPolicyError(
                "must be a list", pointer="/GroupList", policy=where
            )
        member = [str(n) for n in raw_groups]
        pols = _inline(u, "UserPolicyList", where) + b.attached(u, where)
        for group_name in member:
            pols += groups.get(group_name, ([], ""))[0]
        arn = _str(u, "Arn", where)
        principals[arn] = Principal(
            "user",
            _str(u, "UserName", where),
            arn,
            str(u.get("Path") or "/"),
            tuple(pols),
            b.boundary(u, where),
            None,
            tuple(member),
        )
    for i, r in enumerate(_list(details, "RoleDetailList", "account")):
        where = f"RoleDetailList/{i}"
        arn = _str(r, "Arn", where)
        trust = _document(
            r.get("AssumeRolePolicyDocument"), f"{where}/AssumeRolePolicyDocument"
        )
        path = str(r.get("Path") or "/")
        slr = path.startswith(SERVICE_LINKED_PATH)
        pols = _inline(r, "RolePolicyList", where) + b.attached(
            r, where, record=not slr
        )
        principals[arn] = Principal(
            "role",
            _str(r, "RoleName", where),
            arn,
            str(r.get("Path") or "/"),
            tuple(pols),
            b.boundary(r, where),
            trust,
        )
    account_id, partition = "", "aws"
    for arn in principals:
        try:
            parsed = parse_arn(arn)
        except InvalidARNError as exc:
            raise InvalidPolicyError(f"bad ARN {arn!r}", policy="account") from exc
        account_id, partition = parsed.account, parsed.partition
        break
    return Account(
        account_id,
        partition,
        principals,
        b.managed,
        [list(level) for level in scps],
        b.unresolved,
    )


def _scp_doc(item: object, where: str) -> NamedPolicy:
    if isinstance(item, Mapping) and isinstance(item.get("Policy"), Mapping):
        pol = item["Policy"]
        assert isinstance(pol, Mapping)  # noqa: S101 - narrowed just above
        summary = pol.get("PolicySummary")
        name = summary.get("Name", where) if isinstance(summary, Mapping) else where
        return NamedPolicy(str(name), "scp", _document(pol.get("Content"), where))
    if isinstance(item, Mapping) and "policy" in item and "name" in item:
        return NamedPolicy(str(item["name"]), "scp", _document(item["policy"], where))
    return NamedPolicy(where, "scp", _document(item, where))


def parse_scps(raw: object) -> list[list[NamedPolicy]]:
    """Parse SCPs: one level of policies, or ``[{orgIdentifier, policies}]`` levels.

    Args:
        raw: The decoded JSON (a policy, a list of policies, or a list of levels).

    Returns:
        SCP levels, root first.

    Raises:
        InvalidPolicyError: A level or policy is malformed.
    """
    items = raw if isinstance(raw, list) else [raw]
    if items and all(isinstance(i, Mapping) and "policies" in i for i in items):
        levels: list[list[NamedPolicy]] = []
        for n, level in enumerate(items):
            assert isinstance(level, Mapping)  # noqa: S101 - checked by all() above
            ident = str(level.get("orgIdentifier") or f"level{n}")
            pols = level.get("policies")
            if not isinstance(pols, list):
                raise InvalidPolicyError("policies must be a list", policy=f"scps/{n}")
            levels.append([_scp_doc(p, f"{ident}/{j}") for j, p in enumerate(pols)])
        return levels
    return [[_scp_doc(p, f"scp{j}") for j, p in enumerate(items)]]
