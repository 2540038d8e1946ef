"""The access graph across IAM and Kubernetes (pure).

Built from the inputs kubeiam already reads: accounts (:mod:`policy.iam.accounts`), RBAC
objects (:mod:`policy.rbac.evaluator`), the IAM -> Kubernetes mapping (a
:data:`policy.tiers.model.KubeMapper` the shell builds from aws-auth, mapping files or
the CRD), EKS access entries, ServiceAccounts with IRSA annotations, Pod Identity
associations and ECS task definitions. Edges are computed on first use and kept:
:mod:`policy.paths.iam` decides IAM edges, :mod:`policy.paths.k8s` RBAC edges; this
module adds the bridges (mapping, access entries, IRSA, Pod Identity) and the query
targets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from policy.iam.accounts import Account, Principal
from policy.iam.evaluator import evaluate
from policy.iam.request import PolicySet, Request
from policy.paths.iam import ESCALATED_SUFFIX, IAMSide, decisive_statements
from policy.paths.k8s import K8sSide, sa_node_id, with_access_policies
from policy.paths.model import (
    AWS_ADMIN_PREFIX,
    CLUSTER_ADMIN,
    Edge,
    EdgeKind,
    Node,
    NodeKind,
    Target,
    TargetKind,
)
from policy.rbac.evaluator import RBACPolicy
from policy.rbac.model import ResourceAttributes
from policy.tiers.model import KubeMapper
from policy.tiers.workloads import (
    AccessEntry,
    ECSTask,
    EKSWorkload,
    PodIdentityAssociation,
)

__all__ = ["AccessGraph", "PathInputs"]

# IRSA: the audience the EKS pod identity webhook projects (EKS User Guide).
STS_AUDIENCE = "sts.amazonaws.com"
# Pod Identity: the service principal the EKS Pod Identity Agent assumes as.
POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"


@dataclass(frozen=True, slots=True)
class PathInputs:
    """Everything the graph is built from (all optional)."""

    accounts: Sequence[Account] = ()
    rbac: RBACPolicy | None = None
    mapper: KubeMapper | None = None
    access_entries: Sequence[AccessEntry] = ()
    workloads: Sequence[EKSWorkload] = ()
    pod_identity: Sequence[PodIdentityAssociation] = ()
    tasks: Sequence[ECSTask] = ()
    cluster_arns: Sequence[str] = ()


@dataclass(slots=True)
class AccessGraph:
    """Nodes and (lazily computed) edges of the access graph.

    Args:
        inputs: The parsed inputs.
    """

    inputs: PathInputs
    iam: IAMSide = field(init=False)
    k8s: K8sSide = field(init=False)
    nodes: dict[str, Node] = field(init=False, default_factory=dict)
    _bridges: dict[str, list[Edge]] = field(init=False, default_factory=dict)
    _edges: dict[str, list[Edge]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        inp = self.inputs
        entry_keys = frozenset(
            e.principal_arn.lower() for e in inp.access_entries
        ) | frozenset(_strip(e.principal_arn) for e in inp.access_entries)
        self.iam = IAMSide(inp.accounts, inp.tasks, inp.cluster_arns, entry_keys)
        policy = with_access_policies(
            inp.rbac or RBACPolicy([], [], []), inp.access_entries
        )
        sas = [(w.namespace, w.service_account) for w in inp.workloads]
        sas += [(p.namespace, p.service_account) for p in inp.pod_identity]
        self.k8s = K8sSide(policy, sas)
        for arn in self.iam.principals:
            self.nodes[arn] = self.iam.node(arn)
            self._map(arn)
        for node_id, ident in self.k8s.identities.items():
            self.nodes[node_id] = ident.node
        self._workload_bridges()

    # --- bridges ------------------------------------------------------------------

    def _add_bridge(self, edge: Edge) -> None:
        self._bridges.setdefault(edge.src, []).append(edge)

    def _map(self, arn: str) -> None:
        account, p = self.iam.principals[arn]
        for entry in self.inputs.access_entries:
            if entry.matches(arn):
                node_id = self.k8s.add_user(entry.username, entry.groups)
                policies = ", ".join(
                    pol[0].rsplit("/", 1)[-1] for pol in entry.policies
                )
                self._add_bridge(
                    Edge(
                        arn,
                        node_id,
                        EdgeKind.ACCESS_ENTRY,
                        f"EKS access entry maps it to {entry.username}"
                        + (f" (access policies: {policies})" if policies else ""),
                        (f"access entry {entry.principal_arn}",),
                    )
                )
                return  # an access entry wins over aws-auth (EKS User Guide)
        if self.inputs.mapper is None:
            return
        mapped = self.inputs.mapper(arn)
        if mapped is None:
            return
        username, groups = mapped
        node_id = self.k8s.add_user(username, groups)
        self._add_bridge(
            Edge(
                arn,
                node_id,
                EdgeKind.MAPPING,
                f"mapped to Kubernetes user {username}"
                + (f" in groups {', '.join(groups)}" if groups else ""),
                (f"mapping for {p.kind} {p.name} ({account.account_id})",),
            )
        )

    def _workload_bridges(self) -> None:
        annotated: dict[str, set[str]] = {}
        for w in self.inputs.workloads:
            if w.irsa_role_arn:
                annotated.setdefault(_strip(w.irsa_role_arn), set()).add(
                    sa_node_id(w.namespace, w.service_account)
                )
        all_sas = [
            n
            for n, i in self.k8s.identities.items()
            if i.node.kind is NodeKind.K8S_SERVICE_ACCOUNT
        ]
        for arn, (account, role) in self.iam.principals.items():
            if role.kind != "role" or role.trust_policy is None:
                continue
            text = json.dumps(role.trust_policy)
            if "oidc-provider/" in text:
                # Any pod can project a token for sts.amazonaws.com, so a loose
                # `sub` condition matters beyond the annotated ServiceAccounts.
                loose = "Like" in text or ":sub" not in text
                candidates = (
                    all_sas if loose else sorted(annotated.get(_strip(arn), ()))
                )
                for sa in candidates:
                    self._irsa(account, role, sa)
        for assoc in self.inputs.pod_identity:
            hit = self.iam.principals.get(assoc.role_arn) or self._find(assoc.role_arn)
            if hit is None:
                continue
            account, role = hit
            trust = account.trust(role)
            if trust is None:
                continue
            results = [
                evaluate(
                    PolicySet(resource=trust),
                    Request({"Service": POD_IDENTITY_SERVICE}, action, role.arn),
                    explain=False,
                )
                for action in ("sts:AssumeRole", "sts:TagSession")
            ]
            if all(r.allowed for r in results):
                self._add_bridge(
                    Edge(
                        sa_node_id(assoc.namespace, assoc.service_account),
                        role.arn,
                        EdgeKind.POD_IDENTITY,
                        f"Pod Identity association gives its pods role {role.name}",
                        tuple(s for r in results for s in decisive_statements(r)),
                    )
                )

    def _find(self, arn: str) -> tuple[Account, Principal] | None:
        key = _strip(arn)
        for candidate, hit in self.iam.principals.items():
            if _strip(candidate) == key:
                return hit
        return None

    def _irsa(self, account: Account, role: Principal, sa: str) -> None:
        trust = account.trust(role)
        if trust is None:
            return
        ns, _, name = sa.removeprefix("k8s:sa:").partition("/")
        subject = f"system:serviceaccount:{ns}:{name}"
        for st in trust.statements:
            if st.principal is None:
                continue
            for provider in st.principal.federated:
                if ":oidc-provider/" not in provider:
                    continue
                issuer = provider.split(":oidc-provider/", 1)[1]
                req = Request(
                    {"Federated": provider},
                    "sts:AssumeRoleWithWebIdentity",
                    role.arn,
                    context={f"{issuer}:sub": subject, f"{issuer}:aud": STS_AUDIENCE},
                )
                result = evaluate(PolicySet(resource=trust), req, explain=False)
                if result.allowed:
                    self._add_bridge(
                        Edge(
                            sa,
                            role.arn,
                            EdgeKind.IRSA,
                            f"its web identity token ({issuer}) may assume {role.name}",
                            decisive_statements(result),
                        )
                    )
                    return

    # --- nodes and edges ------------------------------------------------------------

    def node(self, node_id: str) -> Node:
        """A node by id (escalated and capability nodes made on first use).

        Args:
            node_id: The id.

        Returns:
            The node.
        """
        node = self.nodes.get(node_id)
        if node is None:
            if node_id.endswith(ESCALATED_SUFFIX):
                node = self.iam.node(node_id)
            else:
                node = Node(node_id, NodeKind.CAPABILITY, node_id)
            self.nodes[node_id] = node
        return node

    def edges_from(self, node_id: str) -> list[Edge]:
        """The edges out of a node (computed once).

        Args:
            node_id: The node.

        Returns:
            Its edges, bridges first.
        """
        edges = self._edges.get(node_id)
        if edges is not None:
            return edges
        kind = self.node(node_id).kind
        edges = list(self._bridges.get(node_id, ()))
        if kind.is_iam:
            edges += self.iam.edges_from(node_id)
        elif kind.is_k8s:
            edges += self.k8s.edges_from(node_id)
        for e in edges:
            self.node(e.dst)
        self._edges[node_id] = edges
        return edges

    def all_edges(self) -> Iterator[Edge]:
        """Every edge of the graph (computes all of them).

        Yields:
            Edges, by source.
        """
        todo = list(self.nodes)
        seen = set(todo)
        while todo:
            node_id = todo.pop()
            for edge in self.edges_from(node_id):
                if edge.dst not in seen:
                    seen.add(edge.dst)
                    todo.append(edge.dst)
                yield edge

    def target_edge(self, node_id: str, target: Target) -> Edge | None:
        """The final step when ``node_id`` satisfies ``target`` by itself.

        Args:
            node_id: A node.
            target: The query target.

        Returns:
            An edge from the node to the target's node, or None.
        """
        kind = self.node(node_id).kind
        dst = target.node_id
        if target.kind is TargetKind.AWS_ACTION and kind.is_iam:
            hit = self.iam.actor(node_id).check(target.value, target.resource)
            if hit is not None:
                return Edge(
                    node_id,
                    dst,
                    EdgeKind.GRANTS,
                    f"allowed {target.value} on {target.resource}",
                    decisive_statements(hit),
                )
        elif target.kind is TargetKind.K8S_ACTION and kind.is_k8s:
            resource, _, sub = target.resource.partition("/")
            attrs = ResourceAttributes(
                target.value,
                resource,
                group=target.api_group,
                namespace=target.namespace,
                subresource=sub,
            )
            reason = self.k8s.allowed(node_id, attrs)
            if reason is not None:
                return Edge(
                    node_id,
                    dst,
                    EdgeKind.GRANTS,
                    f"may {target.value} {target.resource}"
                    + (f" in {target.namespace}" if target.namespace else ""),
                    (reason,),
                )
        elif (
            target.kind is TargetKind.K8S_GROUP
            and kind.is_k8s
            and target.value in self.k8s.identities[node_id].user.groups
        ):
            return Edge(
                node_id, dst, EdgeKind.GRANTS, f"member of group {target.value}"
            )
        return None

    def is_target(self, node_id: str, target: Target) -> bool:
        """Whether a node is the target itself.

        Args:
            node_id: A node.
            target: The target.

        Returns:
            True for the target's node (any ``aws-admin:`` node for aws-admin).
        """
        if target.kind is TargetKind.AWS_ADMIN:
            return node_id.startswith(AWS_ADMIN_PREFIX)
        if target.kind is TargetKind.CLUSTER_ADMIN:
            return node_id == CLUSTER_ADMIN
        return node_id == target.node_id


def _strip(arn: str) -> str:
    head, sep, rest = arn.partition(":role/")
    return (head + sep + rest.rsplit("/", 1)[-1]).lower() if sep else arn.lower()
