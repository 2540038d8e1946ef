"""Access-path edges decided by the RBAC engine (pure).

The edges are the escalation routes of the Kubernetes "RBAC good practices"
page: creating pods (and so running as any ServiceAccount of the namespace),
``pods/exec`` and ``pods/attach``, reading Secrets (long-lived ServiceAccount
tokens), ``serviceaccounts/token`` (TokenRequest), impersonation, ``bind`` and
``escalate``; plus, on EKS, writing the ``aws-auth`` ConfigMap or
``IAMIdentityMapping`` objects, which can map any IAM identity to
``system:masters``. Each edge carries the RBAC grant that allows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from policy.paths.model import CLUSTER_ADMIN, Edge, EdgeKind, Node, NodeKind
from policy.rbac.evaluator import RBACPolicy, evaluate_rbac
from policy.rbac.model import (
    Binding,
    ClusterRole,
    PolicyRule,
    ResourceAttributes,
    RoleRef,
    Subject,
    UserInfo,
    service_account_groups,
    service_account_username,
)
from policy.tiers.workloads import AccessEntry

__all__ = [
    "ACCESS_POLICY_RULES",
    "K8sIdentity",
    "K8sSide",
    "sa_node_id",
    "user_node_id",
    "with_access_policies",
]

# The group that bypasses RBAC (kube-apiserver's authorizer chain).
MASTERS = "system:masters"
# Where EKS reads aws-auth, and the CRD group of IAMIdentityMapping.
AWS_AUTH = ("kube-system", "aws-auth")
IAM_MAPPING_GROUP = "iamauthenticator.k8s.aws"
_RW = ("create", "delete", "get", "list", "patch", "update", "watch")
_WORKLOADS = (
    "pods",
    "pods/exec",
    "pods/attach",
    "pods/portforward",
    "secrets",
    "serviceaccounts",
    "serviceaccounts/token",
    "configmaps",
    "services",
    "deployments",
    "jobs",
)
# EKS access policies (EKS User Guide, "Access policy permissions"), as RBAC
# rules: ClusterAdmin is cluster-admin; Admin/Edit/View follow the Kubernetes
# admin/edit/view user-facing roles they are documented to match.
ACCESS_POLICY_RULES: dict[str, tuple[PolicyRule, ...]] = {
    "AmazonEKSClusterAdminPolicy": (
        PolicyRule(("*",), ("*",), ("*",)),
        PolicyRule(("*",), non_resource_urls=("*",)),
    ),
    "AmazonEKSAdminPolicy": (
        PolicyRule(_RW, ("", "apps", "batch"), _WORKLOADS),
        PolicyRule(_RW, ("rbac.authorization.k8s.io",), ("roles", "rolebindings")),
    ),
    "AmazonEKSEditPolicy": (PolicyRule(_RW, ("", "apps", "batch"), _WORKLOADS),),
    "AmazonEKSViewPolicy": (
        PolicyRule(
            ("get", "list", "watch"),
            ("", "apps", "batch"),
            ("pods", "configmaps", "services", "deployments", "jobs"),
        ),
    ),
}


def sa_node_id(namespace: str, name: str) -> str:
    """The node id of a ServiceAccount.

    Args:
        namespace: Its namespace.
        name: Its name.

    Returns:
        ``k8s:sa:<namespace>/<name>``.
    """
    return f"k8s:sa:{namespace}/{name}"


def user_node_id(username: str, groups: Sequence[str]) -> str:
    """The node id of a mapped Kubernetes user with its groups.

    Args:
        username: The username.
        groups: Its groups.

    Returns:
        ``k8s:user:<name>`` plus `` [g1,g2]`` when it has groups.
    """
    return f"k8s:user:{username}" + (f" [{','.join(groups)}]" if groups else "")


def with_access_policies(
    policy: RBACPolicy, entries: Iterable[AccessEntry]
) -> RBACPolicy:
    """The RBAC policy plus a binding for each EKS access-policy association.

    Args:
        policy: The cluster's RBAC objects.
        entries: Access entries with ``associatedAccessPolicies``.

    Returns:
        A new policy (the input is unchanged).
    """
    roles = dict(policy.cluster_roles)
    bindings = [*policy.cluster_role_bindings]
    for ns_bindings in policy.role_bindings.values():
        bindings += ns_bindings
    for entry in entries:
        for n, (arn, scope, namespaces) in enumerate(entry.policies):
            name = arn.rsplit("/", 1)[-1]
            rules = ACCESS_POLICY_RULES.get(name)
            if rules is None:
                continue
            role_name = f"eks-access-policy:{name}"
            roles.setdefault(role_name, ClusterRole(role_name, rules))
            ref = RoleRef("ClusterRole", role_name)
            subject = (Subject("User", entry.username),)
            label = f"eks-access-entry:{entry.principal_arn}:{n}"
            if scope == "namespace":
                bindings += [Binding(label, ref, subject, ns) for ns in namespaces]
            else:
                bindings.append(Binding(label, ref, subject))
    return RBACPolicy(policy.roles.values(), roles.values(), bindings)


@dataclass(frozen=True, slots=True)
class K8sIdentity:
    """A Kubernetes identity node and the user RBAC sees."""

    node: Node
    user: UserInfo


class K8sSide:
    """Kubernetes identities and the RBAC-decided edges between them.

    Args:
        policy: The RBAC objects (access policies already added).
        service_accounts: Known ``(namespace, name)`` pairs.
    """

    def __init__(
        self, policy: RBACPolicy, service_accounts: Iterable[tuple[str, str]]
    ) -> None:
        self.policy = policy
        self.identities: dict[str, K8sIdentity] = {}
        self.by_namespace: dict[str, list[str]] = {}
        self._ns_of_user: dict[str, set[str]] = {}
        self._ns_of_group: dict[str, set[str]] = {}
        sas = set(service_accounts)
        for ns, items in policy.role_bindings.items():
            for b in items:
                for s in b.subjects:
                    if s.kind == "Group":
                        self._ns_of_group.setdefault(s.name, set()).add(ns)
                    elif s.kind == "User":
                        self._ns_of_user.setdefault(s.name, set()).add(ns)
                    elif s.kind == "ServiceAccount":
                        sa_ns = s.namespace or ns
                        sas.add((sa_ns, s.name))
                        key = service_account_username(sa_ns, s.name)
                        self._ns_of_user.setdefault(key, set()).add(ns)
        for b in policy.cluster_role_bindings:
            sas.update(
                (s.namespace, s.name)
                for s in b.subjects
                if s.kind == "ServiceAccount" and s.namespace
            )
        for ns, name in sorted(sas):
            node_id = sa_node_id(ns, name)
            user = UserInfo(
                service_account_username(ns, name), service_account_groups(ns)
            )
            node = Node(node_id, NodeKind.K8S_SERVICE_ACCOUNT, f"sa {ns}/{name}")
            self.identities[node_id] = K8sIdentity(node, user)
            self.by_namespace.setdefault(ns, []).append(node_id)

    def add_user(self, username: str, groups: Sequence[str]) -> str:
        """Register a mapped user (idempotent).

        Args:
            username: The Kubernetes username.
            groups: Its groups (``system:authenticated`` is added for RBAC).

        Returns:
            The node id.
        """
        node_id = user_node_id(username, groups)
        if node_id not in self.identities:
            node = Node(node_id, NodeKind.K8S_USER, username, groups=tuple(groups))
            user = UserInfo(username, (*groups, "system:authenticated"))
            self.identities[node_id] = K8sIdentity(node, user)
        return node_id

    def allowed(self, node_id: str, attrs: ResourceAttributes) -> str | None:
        """The RBAC reason when the identity may make the request, else None.

        Args:
            node_id: A Kubernetes identity node.
            attrs: The request.

        Returns:
            ``RBAC: allowed by ...`` (or the ``system:masters`` bypass), or None.
        """
        user = self.identities[node_id].user
        if MASTERS in user.groups:
            return f"member of {MASTERS}, which bypasses RBAC"
        result = evaluate_rbac(self.policy, user, attrs)
        return result.reason if result.allowed else None

    def _namespaces(self, user: UserInfo) -> list[str]:
        out = set(self._ns_of_user.get(user.name, ()))
        for g in user.groups:
            out.update(self._ns_of_group.get(g, ()))
        return sorted(out)

    def edges_from(self, node_id: str) -> list[Edge]:
        """Every RBAC-decided edge out of a Kubernetes identity.

        Args:
            node_id: A Kubernetes identity node.

        Returns:
            The edges.
        """
        ident = self.identities[node_id]
        admin = self.allowed(node_id, ResourceAttributes("*", "*", group="*"))
        if admin is not None:
            return [
                Edge(
                    node_id,
                    CLUSTER_ADMIN,
                    EdgeKind.GRANTS,
                    "allowed every verb on every resource",
                    (admin,),
                )
            ]
        edges: dict[tuple[str, EdgeKind], Edge] = {}
        for edge in self._cluster_edges(node_id):
            edges.setdefault((edge.dst, edge.kind), edge)
        for ns in ["", *self._namespaces(ident.user)]:
            for edge in self._namespace_edges(node_id, ns):
                edges.setdefault((edge.dst, edge.kind), edge)
        return [e for e in edges.values() if e.dst != node_id]

    def _sas(self, namespace: str) -> list[str]:
        if namespace:
            return self.by_namespace.get(namespace, [])
        return [i for ids in self.by_namespace.values() for i in ids]

    def _namespace_edges(self, node_id: str, ns: str) -> Iterator[Edge]:
        where = f"namespace {ns}" if ns else "every namespace"
        for attrs, kind, why in (
            (
                ResourceAttributes("create", "pods", namespace=ns),
                EdgeKind.CREATE_POD,
                "may create pods that run as any ServiceAccount in",
            ),
            (
                ResourceAttributes("create", "pods", namespace=ns, subresource="exec"),
                EdgeKind.EXEC,
                "may exec into pods (and read their tokens) in",
            ),
            (
                ResourceAttributes(
                    "create", "pods", namespace=ns, subresource="attach"
                ),
                EdgeKind.ATTACH,
                "may attach to pods in",
            ),
            (
                ResourceAttributes("get", "secrets", namespace=ns),
                EdgeKind.READ_SECRETS,
                "may read Secrets (ServiceAccount tokens) in",
            ),
            (
                ResourceAttributes("list", "secrets", namespace=ns),
                EdgeKind.READ_SECRETS,
                "may list Secrets (ServiceAccount tokens) in",
            ),
        ):
            reason = self.allowed(node_id, attrs)
            if reason is None:
                continue
            for sa in self._sas(ns):
                yield Edge(node_id, sa, kind, f"{why} {where}", (reason,))
        for sa in self._sas(ns):
            sa_ns, _, name = sa.removeprefix("k8s:sa:").partition("/")
            for attrs, kind, why in (
                (
                    ResourceAttributes(
                        "create",
                        "serviceaccounts",
                        namespace=sa_ns,
                        subresource="token",
                        name=name,
                    ),
                    EdgeKind.TOKEN_REQUEST,
                    "may request a token (TokenRequest) for",
                ),
                (
                    ResourceAttributes(
                        "impersonate", "serviceaccounts", namespace=sa_ns, name=name
                    ),
                    EdgeKind.IMPERSONATE,
                    "may impersonate",
                ),
            ):
                reason = self.allowed(node_id, attrs)
                if reason is not None:
                    yield Edge(
                        node_id,
                        sa,
                        kind,
                        f"{why} ServiceAccount {sa_ns}/{name}",
                        (reason,),
                    )

    def _cluster_edges(self, node_id: str) -> Iterator[Edge]:
        ok = self.allowed
        for other, ident in self.identities.items():
            if ident.node.kind is not NodeKind.K8S_USER or other == node_id:
                continue
            reason = ok(
                node_id,
                ResourceAttributes("impersonate", "users", name=ident.user.name),
            )
            if reason is not None:
                yield Edge(
                    node_id,
                    other,
                    EdgeKind.IMPERSONATE,
                    f"may impersonate user {ident.user.name}",
                    (reason,),
                )
        users = ok(node_id, ResourceAttributes("impersonate", "users"))
        masters = ok(node_id, ResourceAttributes("impersonate", "groups", name=MASTERS))
        if users is not None and masters is not None:
            yield Edge(
                node_id,
                CLUSTER_ADMIN,
                EdgeKind.IMPERSONATE,
                f"may impersonate any user in group {MASTERS}",
                (users, masters),
            )
        rbac = "rbac.authorization.k8s.io"
        bind = ok(
            node_id,
            ResourceAttributes(
                "bind", "clusterroles", group=rbac, name="cluster-admin"
            ),
        )
        create_crb = ok(
            node_id, ResourceAttributes("create", "clusterrolebindings", group=rbac)
        )
        if bind is not None and create_crb is not None:
            yield Edge(
                node_id,
                CLUSTER_ADMIN,
                EdgeKind.BIND,
                "may bind the cluster-admin ClusterRole to itself",
                (bind, create_crb),
            )
        escalate = ok(
            node_id, ResourceAttributes("escalate", "clusterroles", group=rbac)
        )
        if escalate is not None:
            grant = create_crb or self._bound_role_update(node_id)
            if grant is not None:
                yield Edge(
                    node_id,
                    CLUSTER_ADMIN,
                    EdgeKind.ESCALATE,
                    "may add any rule to a ClusterRole bound to it",
                    (escalate, grant),
                )
        ns, name = AWS_AUTH
        for verb in ("update", "patch"):
            reason = ok(
                node_id,
                ResourceAttributes(verb, "configmaps", namespace=ns, name=name),
            )
            if reason is not None:
                yield Edge(
                    node_id,
                    CLUSTER_ADMIN,
                    EdgeKind.AWS_AUTH_WRITE,
                    f"may {verb} the aws-auth ConfigMap and map any IAM identity "
                    f"to {MASTERS}",
                    (reason,),
                )
                break
        reason = ok(
            node_id,
            ResourceAttributes(
                "create", "iamidentitymappings", group=IAM_MAPPING_GROUP
            ),
        )
        if reason is not None:
            yield Edge(
                node_id,
                CLUSTER_ADMIN,
                EdgeKind.AWS_AUTH_WRITE,
                f"may create IAMIdentityMapping objects mapping any IAM identity to "
                f"{MASTERS}",
                (reason,),
            )

    def _bound_role_update(self, node_id: str) -> str | None:
        user = self.identities[node_id].user
        for b in self.policy.cluster_role_bindings:
            if b.role_ref.kind != "ClusterRole":
                continue
            if not any(
                (s.kind == "User" and s.name == user.name)
                or (s.kind == "Group" and s.name in user.groups)
                or (
                    s.kind == "ServiceAccount"
                    and service_account_username(s.namespace, s.name) == user.name
                )
                for s in b.subjects
            ):
                continue
            attrs = ResourceAttributes(
                "update",
                "clusterroles",
                group="rbac.authorization.k8s.io",
                name=b.role_ref.name,
            )
            reason = self.allowed(node_id, attrs)
            if reason is not None:
                return reason
        return None
