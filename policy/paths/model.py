"""Access paths: nodes, edges, paths and targets (pure value types).

A node is an IAM principal (a user or role, by ARN), an IAM principal that has
given itself any policy (``<arn> (any policy)``), a Kubernetes identity
(a mapped user with its groups, or a ServiceAccount) or a capability
(``cluster-admin``, ``aws-admin:<account>``, or the target of a query). An
edge says that whoever acts as its source can act as its destination, and
carries the IAM statements or RBAC grants that decided it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from policy.errors import InvalidPolicyError

__all__ = [
    "AWS_ADMIN_PREFIX",
    "CLUSTER_ADMIN",
    "Edge",
    "EdgeKind",
    "Node",
    "NodeKind",
    "Path",
    "Target",
    "TargetKind",
    "parse_target",
]

# The capability node every cluster-admin-equivalent Kubernetes identity reaches.
CLUSTER_ADMIN = "cluster-admin"
# Capability node per account: allowed every action on every resource.
AWS_ADMIN_PREFIX = "aws-admin:"


class NodeKind(enum.Enum):
    """What a node stands for."""

    IAM_USER = "iam-user"
    IAM_ROLE = "iam-role"
    IAM_ESCALATED = "iam-any-policy"
    K8S_USER = "k8s-user"
    K8S_SERVICE_ACCOUNT = "k8s-serviceaccount"
    CAPABILITY = "capability"

    @property
    def is_iam(self) -> bool:
        """Whether the node acts with IAM permissions."""
        return self in (NodeKind.IAM_USER, NodeKind.IAM_ROLE, NodeKind.IAM_ESCALATED)

    @property
    def is_k8s(self) -> bool:
        """Whether the node is a Kubernetes identity."""
        return self in (NodeKind.K8S_USER, NodeKind.K8S_SERVICE_ACCOUNT)


class EdgeKind(enum.Enum):
    """Why one node can act as another (each decided by the IAM or RBAC engine)."""

    ASSUME_ROLE = "sts:AssumeRole"
    UPDATE_TRUST = "iam:UpdateAssumeRolePolicy"
    PASS_ROLE = "iam:PassRole"  # noqa: S105 - an action name, not a password
    RUN_TASK = "ecs:RunTask"
    ACCESS_KEY = "iam:CreateAccessKey"
    LOGIN_PROFILE = "iam:Create/UpdateLoginProfile"
    EDIT_POLICY = "edit-policy"
    EKS_ACCESS_ENTRY = "eks:AssociateAccessPolicy"
    MAPPING = "mapping"
    ACCESS_ENTRY = "access-entry"
    CREATE_POD = "create-pod"
    EXEC = "pods/exec"
    ATTACH = "pods/attach"
    READ_SECRETS = "read-secrets"
    TOKEN_REQUEST = "serviceaccounts/token"  # noqa: S105 - a resource, not a secret
    IMPERSONATE = "impersonate"
    BIND = "bind"
    ESCALATE = "escalate"
    AWS_AUTH_WRITE = "aws-auth-write"
    IRSA = "irsa"
    POD_IDENTITY = "pod-identity"
    GRANTS = "grants"


@dataclass(frozen=True, slots=True)
class Node:
    """One node of the access graph.

    Attributes:
        id: Stable identifier (an ARN, ``k8s:...``, ``cluster-admin``, ...).
        kind: What it stands for.
        label: Short human name.
        account: The AWS account for IAM nodes.
        groups: Kubernetes groups of a Kubernetes identity.
    """

    id: str
    kind: NodeKind
    label: str
    account: str = ""
    groups: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        out: dict[str, object] = {"id": self.id, "kind": self.kind.value}
        if self.account:
            out["account"] = self.account
        if self.groups:
            out["groups"] = list(self.groups)
        return out


@dataclass(frozen=True, slots=True)
class Edge:
    """One step: ``src`` can act as ``dst``.

    Attributes:
        src: Source node id.
        dst: Destination node id.
        kind: The mechanism.
        reason: One sentence.
        evidence: The statements (``identity policy 'managed:X' /Statement/0``)
            or RBAC grants (``ClusterRoleBinding "b" of ClusterRole "r" to ...``)
            that decided the edge.
    """

    src: str
    dst: str
    kind: EdgeKind
    reason: str
    evidence: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "from": self.src,
            "to": self.dst,
            "kind": self.kind.value,
            "reason": self.reason,
            "evidence": list(self.evidence),
        }


@dataclass(frozen=True, slots=True)
class Path:
    """A chain of edges from a source to a target."""

    edges: tuple[Edge, ...]

    @property
    def source(self) -> str:
        """The first node."""
        return self.edges[0].src

    @property
    def target(self) -> str:
        """The last node."""
        return self.edges[-1].dst

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node in order."""
        return (self.edges[0].src, *(e.dst for e in self.edges))

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "from": self.source,
            "to": self.target,
            "hops": len(self.edges),
            "steps": [e.to_json() for e in self.edges],
        }


class TargetKind(enum.Enum):
    """The kinds of query target."""

    NODE = "node"
    AWS_ACTION = "aws-action"
    K8S_ACTION = "k8s-action"
    K8S_GROUP = "k8s-group"
    CLUSTER_ADMIN = "cluster-admin"
    AWS_ADMIN = "aws-admin"


@dataclass(frozen=True, slots=True)
class Target:
    """What a query looks for.

    Attributes:
        kind: The kind.
        spec: As written.
        value: Node id, ``service:Action``, Kubernetes verb or group name.
        resource: IAM resource ARN or Kubernetes ``resource[/subresource]``.
        namespace: Kubernetes namespace (empty: cluster-wide).
        api_group: Kubernetes API group.
    """

    kind: TargetKind
    spec: str
    value: str = ""
    resource: str = "*"
    namespace: str = ""
    api_group: str = ""

    @property
    def node_id(self) -> str:
        """The id of the node that stands for this target in a path."""
        if self.kind is TargetKind.NODE:
            return self.value
        if self.kind is TargetKind.CLUSTER_ADMIN:
            return CLUSTER_ADMIN
        return f"target:{self.spec}"


def _bad(spec: str, why: str) -> InvalidPolicyError:
    return InvalidPolicyError(f"bad target {spec!r}: {why}", policy="paths")


def parse_target(spec: str, *, known: frozenset[str] = frozenset()) -> Target:
    """Parse a query target.

    Forms: ``cluster-admin``; ``aws-admin``; an IAM user/role ARN (or ``role/NAME``,
    ``user/NAME`` resolved against ``known``); ``aws:SERVICE:ACTION[@RESOURCE]``;
    ``k8s:VERB:RESOURCE[/SUB][@NAMESPACE]`` (``RESOURCE`` may be ``group/resource``);
    ``group:NAME`` (a Kubernetes group); ``sa:NAMESPACE/NAME``; ``k8s-user:NAME``.

    Args:
        spec: The target as written.
        known: Node ids of the graph, to resolve short names.

    Returns:
        The target.

    Raises:
        InvalidPolicyError: The target is not of a known form.
    """
    s = spec.strip()
    if s == CLUSTER_ADMIN:
        return Target(TargetKind.CLUSTER_ADMIN, s)
    if s == "aws-admin":
        return Target(TargetKind.AWS_ADMIN, s)
    if s.startswith("aws:"):
        body, _, resource = s[4:].partition("@")
        if body.count(":") != 1 or not all(body.split(":")):
            raise _bad(spec, "expected aws:SERVICE:ACTION[@RESOURCE]")
        return Target(TargetKind.AWS_ACTION, s, body, resource or "*")
    if s.startswith("k8s:"):
        body, _, namespace = s[4:].partition("@")
        verb, _, resource = body.partition(":")
        if not verb or not resource:
            raise _bad(spec, "expected k8s:VERB:RESOURCE[/SUB][@NAMESPACE]")
        group = ""
        if resource.count("/") == 2 or ("." in resource.split("/")[0]):
            group, _, resource = resource.partition("/")
        return Target(TargetKind.K8S_ACTION, s, verb, resource, namespace, group)
    if s.startswith("group:") and s[6:]:
        return Target(TargetKind.K8S_GROUP, s, s[6:])
    if s.startswith("sa:") and "/" in s:
        return Target(TargetKind.NODE, s, "k8s:sa:" + s[3:])
    if s.startswith("k8s-user:") and s[9:]:
        prefix = "k8s:user:" + s[9:]
        hits = sorted(k for k in known if k == prefix or k.startswith(prefix + " "))
        return Target(TargetKind.NODE, s, hits[0] if hits else prefix)
    if s.startswith("arn:"):
        return Target(TargetKind.NODE, s, s)
    if s.startswith(("role/", "user/")):
        kind, _, name = s.partition("/")
        hits = sorted(
            k
            for k in known
            if k.startswith("arn:")
            and not k.endswith(")")
            and f":{kind}/" in k
            and k.rsplit("/", 1)[-1] == name
        )
        if not hits:
            raise _bad(spec, f"no IAM {kind} named {name!r} in the inputs")
        return Target(TargetKind.NODE, s, hits[0])
    raise _bad(
        spec,
        "expected cluster-admin, aws-admin, an ARN, role/NAME, user/NAME, "
        "aws:SERVICE:ACTION[@RESOURCE], k8s:VERB:RESOURCE[@NAMESPACE], group:NAME, "
        "sa:NAMESPACE/NAME or k8s-user:NAME",
    )
