"""ECS task definitions and EKS workload identities, parsed from AWS's JSON (pure).

Inputs as the tools print them: ``aws ecs describe-task-definition`` output
(``{"taskDefinition": {...}}``) or the bare task definition; a Kubernetes
ServiceAccount (IRSA annotation ``eks.amazonaws.com/role-arn``); ``aws eks
describe-pod-identity-association`` output (``{"association": {...}}``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from authenticator.arn import parse_arn, strip_role_path
from authenticator.errors import InvalidARNError
from policy.errors import InvalidPolicyError

__all__ = [
    "IRSA_ANNOTATION",
    "AccessEntry",
    "Container",
    "ECSTask",
    "EKSWorkload",
    "PodIdentityAssociation",
    "ecr_repository",
    "parse_access_entries",
    "parse_pod_identity_association",
    "parse_service_account",
    "parse_task_definition",
]

# The annotation the EKS pod identity webhook reads for IRSA.
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
# <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]/<repository>[:tag|@digest]
_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com"
    r"(?P<cn>\.cn)?/(?P<repo>[^:@]+)"
)
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class Container:
    """What one container definition asks of the task execution role."""

    name: str
    image: str
    log_group: str = ""
    log_region: str = ""
    create_log_group: bool = False
    secrets: tuple[tuple[str, str], ...] = ()
    repository_credentials: str = ""
    log_stream_prefix: str = ""


@dataclass(frozen=True, slots=True)
class ECSTask:
    """An ECS task definition, reduced to what the tiers need."""

    family: str
    revision: int
    arn: str
    region: str
    account: str
    partition: str
    task_role_arn: str
    execution_role_arn: str
    network_mode: str
    containers: tuple[Container, ...]


@dataclass(frozen=True, slots=True)
class PodIdentityAssociation:
    """An EKS Pod Identity association."""

    cluster_name: str
    namespace: str
    service_account: str
    role_arn: str
    association_arn: str = ""

    @property
    def region(self) -> str:
        """The region from the association ARN ("" when not given)."""
        fields = self.association_arn.split(":")
        return fields[3] if len(fields) > 3 else ""


@dataclass(frozen=True, slots=True)
class EKSWorkload:
    """A service account and the IAM role it gets (IRSA and/or Pod Identity)."""

    namespace: str
    service_account: str
    irsa_role_arn: str = ""
    pod_identity: PodIdentityAssociation | None = None


def ecr_repository(image: str) -> tuple[str, str, str, str] | None:
    """Split an ECR image reference.

    Args:
        image: The container image.

    Returns:
        (account, region, repository, partition), or None if not an ECR image.
    """
    m = _ECR_IMAGE.match(image)
    if m is None:
        return None
    return m["account"], m["region"], m["repo"], "aws-cn" if m["cn"] else "aws"


def _m(raw: object, where: str) -> Mapping[str, object]:
    if not isinstance(raw, Mapping):
        raise InvalidPolicyError("must be an object", policy=where)
    return raw


def _s(m: Mapping[str, object], key: str) -> str:
    value = m.get(key)
    return value if isinstance(value, str) else ""


def _container(raw: object, where: str) -> Container:
    c = _m(raw, where)
    log = c.get("logConfiguration")
    group = region = prefix = ""
    create = False
    if isinstance(log, Mapping) and log.get("logDriver") == "awslogs":
        opts = log.get("options")
        if isinstance(opts, Mapping):
            group, region = _s(opts, "awslogs-group"), _s(opts, "awslogs-region")
            prefix = _s(opts, "awslogs-stream-prefix")
            create = str(opts.get("awslogs-create-group", "")).lower() == "true"
    secrets: list[tuple[str, str]] = []
    raw_secrets = c.get("secrets")
    for s in raw_secrets if isinstance(raw_secrets, list) else []:
        if isinstance(s, Mapping) and _s(s, "valueFrom"):
            secrets.append((_s(s, "name"), _s(s, "valueFrom")))
    creds = c.get("repositoryCredentials")
    cred_param = _s(creds, "credentialsParameter") if isinstance(creds, Mapping) else ""
    return Container(
        _s(c, "name"),
        _s(c, "image"),
        group,
        region,
        create,
        tuple(secrets),
        cred_param,
        prefix,
    )


def parse_task_definition(doc: object) -> ECSTask:
    """Parse a task definition (describe-task-definition output or the bare object).

    Args:
        doc: The decoded JSON.

    Returns:
        The task.

    Raises:
        InvalidPolicyError: Not a task definition, or no account can be found.
    """
    td = _m(doc, "task definition")
    if isinstance(td.get("taskDefinition"), Mapping):
        td = _m(td["taskDefinition"], "taskDefinition")
    family = _s(td, "family")
    defs = td.get("containerDefinitions")
    if not family or not isinstance(defs, list) or not defs:
        raise InvalidPolicyError(
            "needs family and containerDefinitions", policy="task definition"
        )
    containers = tuple(
        _container(c, f"containerDefinitions/{i}") for i, c in enumerate(defs)
    )
    rev = td.get("revision")
    revision = rev if isinstance(rev, int) else 1
    arn = _s(td, "taskDefinitionArn")
    account, region, partition = "", "", "aws"
    for candidate in (arn, _s(td, "executionRoleArn"), _s(td, "taskRoleArn")):
        try:
            parsed = parse_arn(candidate)
        except InvalidARNError:
            continue
        account, partition = parsed.account, parsed.partition
        region = region or parsed.region
        break
    if not account:
        raise InvalidPolicyError(
            "no taskDefinitionArn or role ARN names the account",
            policy="task definition",
        )
    # No silent default: "" when nothing names the region (the caller must ask).
    region = region or next((c.log_region for c in containers if c.log_region), "")
    if not arn and region:
        prefix = f"arn:{partition}:ecs:{region}:{account}"
        arn = f"{prefix}:task-definition/{family}:{revision}"
    return ECSTask(
        family,
        revision,
        arn,
        region,
        account,
        partition,
        _s(td, "taskRoleArn"),
        _s(td, "executionRoleArn"),
        _s(td, "networkMode") or "bridge",
        containers,
    )


def parse_service_account(doc: object) -> EKSWorkload:
    """Parse a ServiceAccount manifest.

    Args:
        doc: The decoded YAML.

    Returns:
        The workload (IRSA role from the annotation, if any).

    Raises:
        InvalidPolicyError: Not a ServiceAccount.
    """
    sa = _m(doc, "service account")
    if sa.get("kind") != "ServiceAccount":
        raise InvalidPolicyError(
            "kind must be ServiceAccount", policy="service account"
        )
    meta = _m(sa.get("metadata"), "service account/metadata")
    annotations = meta.get("annotations")
    role = _s(annotations, IRSA_ANNOTATION) if isinstance(annotations, Mapping) else ""
    return EKSWorkload(_s(meta, "namespace") or "default", _s(meta, "name"), role)


def parse_pod_identity_association(doc: object) -> PodIdentityAssociation:
    """Parse describe-pod-identity-association output (or the bare association).

    Args:
        doc: The decoded JSON.

    Returns:
        The association.

    Raises:
        InvalidPolicyError: Required fields are missing.
    """
    a = _m(doc, "pod identity association")
    if isinstance(a.get("association"), Mapping):
        a = _m(a["association"], "association")
    fields = [
        _s(a, k) for k in ("clusterName", "namespace", "serviceAccount", "roleArn")
    ]
    if not all(fields):
        raise InvalidPolicyError(
            "needs clusterName, namespace, serviceAccount and roleArn",
            policy="pod identity association",
        )
    cluster, namespace, service_account, role = fields
    return PodIdentityAssociation(
        cluster, namespace, service_account, role, _s(a, "associationArn")
    )


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """An EKS access entry (``describe-access-entry``) and its access policies."""

    principal_arn: str
    username: str
    groups: tuple[str, ...] = ()
    type: str = "STANDARD"
    policies: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def matches(self, arn: str) -> bool:
        """Whether the entry is for ``arn`` (role paths ignored, case-insensitive).

        Args:
            arn: A user or role ARN.

        Returns:
            True on a match.
        """
        return (
            strip_role_path(self.principal_arn).lower() == strip_role_path(arn).lower()
        )


def _default_username(principal_arn: str) -> str:
    # EKS default (docs/rbac-and-tiers.md): the user ARN, or the role's session ARN
    # template.
    try:
        parsed = parse_arn(principal_arn)
    except InvalidARNError:
        return principal_arn
    if parsed.resource.startswith("role/"):
        name = parsed.resource.rsplit("/", 1)[-1]
        sts = f"arn:{parsed.partition}:sts::{parsed.account}"
        return f"{sts}:assumed-role/{name}/{{{{SessionName}}}}"
    return principal_arn


def _entry(raw: object, where: str) -> AccessEntry:
    m = _m(raw, where)
    body = (
        _m(m["accessEntry"], where) if isinstance(m.get("accessEntry"), Mapping) else m
    )
    arn = _s(body, "principalArn") or _s(m, "principalArn")
    if not arn:
        raise InvalidPolicyError("principalArn is required", policy=where)
    groups = body.get("kubernetesGroups")
    group_list = tuple(str(g) for g in groups) if isinstance(groups, list) else ()
    policies: list[tuple[str, str, tuple[str, ...]]] = []
    raw_policies = m.get("associatedAccessPolicies") or body.get(
        "associatedAccessPolicies"
    )
    for pol in raw_policies if isinstance(raw_policies, list) else []:
        if not isinstance(pol, Mapping) or not _s(pol, "policyArn"):
            raise InvalidPolicyError("access policies need policyArn", policy=where)
        scope = pol.get("accessScope")
        scope_type = _s(scope, "type") if isinstance(scope, Mapping) else ""
        spaces = scope.get("namespaces") if isinstance(scope, Mapping) else None
        names = tuple(str(n) for n in spaces) if isinstance(spaces, list) else ()
        policies.append((_s(pol, "policyArn"), scope_type or "cluster", names))
    return AccessEntry(
        arn,
        _s(body, "username") or _default_username(arn),
        group_list,
        _s(body, "type") or "STANDARD",
        tuple(policies),
    )


def parse_access_entries(doc: object) -> list[AccessEntry]:
    """Parse EKS access entries.

    Accepts a list of ``describe-access-entry`` outputs (``{"accessEntry":
    {...}}``) or bare entries; an item may carry ``associatedAccessPolicies``
    (as ``list-associated-access-policies`` prints them). A single object or
    ``{"accessEntries": [...]}`` works too.

    Args:
        doc: The decoded JSON.

    Returns:
        The entries.

    Raises:
        InvalidPolicyError: An entry lacks ``principalArn``.
    """
    if isinstance(doc, Mapping) and isinstance(doc.get("accessEntries"), list):
        doc = doc["accessEntries"]
    items = doc if isinstance(doc, list) else [doc]
    return [_entry(item, f"access entries/{i}") for i, item in enumerate(items)]
