"""RBAC decisions/s with 1,000 roles and 1,000 bindings: indexed against a linear scan.

The policy is synthetic but shaped like a large multi-tenant cluster: 60
namespaces, 700 Roles (namespaced) and 300 ClusterRoles with 3-8 rules each
(some ``*`` verbs, ``*/scale`` subresources, resourceNames, non-resource URLs),
800 RoleBindings and 200 ClusterRoleBindings to 400 users, 80 groups and
service accounts. The request mix is fixed (seeded): resource requests in a
namespace, cluster-wide requests, non-resource URLs; about a third are allowed.

Both paths run the same requests against the same ``RBACPolicy`` and must give
the same answers (checked before timing). "ours" is
``evaluate_rbac(..., indexed=True)`` (subject index + (verb, group, resource)
rule index); "peer" is the linear scan that mirrors upstream's loop over every
ClusterRoleBinding and RoleBinding of the namespace.
"""

from __future__ import annotations

import random

from bench.common import Row, paired_row, time_call
from policy.rbac.aggregate import build_rbac_policy
from policy.rbac.evaluator import RBACPolicy, evaluate_rbac
from policy.rbac.model import (
    Binding,
    ClusterRole,
    NonResourceAttributes,
    PolicyRule,
    ResourceAttributes,
    Role,
    RoleRef,
    Subject,
    UserInfo,
)

SEED = 6
NAMESPACES = [f"team-{i:02d}" for i in range(60)]
USERS = [f"user-{i:03d}" for i in range(400)]
GROUPS = [f"group-{i:02d}" for i in range(80)]
RESOURCES = [
    ("", "pods"),
    ("", "pods/log"),
    ("", "pods/exec"),
    ("", "configmaps"),
    ("", "secrets"),
    ("", "services"),
    ("apps", "deployments"),
    ("apps", "deployments/scale"),
    ("apps", "statefulsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("networking.k8s.io", "ingresses"),
    ("", "nodes"),
    ("", "namespaces"),
]
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
REQUESTS = 2_000
RUNS = 5


def _rule(rng: random.Random, *, cluster: bool) -> PolicyRule:
    if cluster and rng.random() < 0.1:
        return PolicyRule(
            ("get",),
            non_resource_urls=(rng.choice(["/healthz*", "/metrics", "/apis/*"]),),
        )
    picks = rng.sample(RESOURCES, rng.randint(1, 3))
    groups = tuple(sorted({g for g, _ in picks}))
    resources = tuple(r for _, r in picks)
    if rng.random() < 0.05:
        resources += ("*/scale",)
    verbs = (
        ("*",) if rng.random() < 0.1 else tuple(rng.sample(VERBS, rng.randint(1, 4)))
    )
    names = (f"obj-{rng.randint(0, 9)}",) if rng.random() < 0.15 else ()
    return PolicyRule(verbs, groups, resources, names)


def _subjects(rng: random.Random, namespace: str) -> tuple[Subject, ...]:
    out = []
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        if roll < 0.5:
            out.append(Subject("User", rng.choice(USERS)))
        elif roll < 0.85:
            out.append(Subject("Group", rng.choice(GROUPS)))
        else:
            ns = namespace or rng.choice(NAMESPACES)
            out.append(Subject("ServiceAccount", f"sa-{rng.randint(0, 9)}", ns))
    return tuple(out)


def build_policy(seed: int = SEED) -> RBACPolicy:
    """The synthetic 1,000-role / 1,000-binding policy."""
    rng = random.Random(seed)
    roles = [
        Role(
            f"role-{i}",
            ns,
            tuple(_rule(rng, cluster=False) for _ in range(rng.randint(3, 8))),
        )
        for i in range(700)
        for ns in [rng.choice(NAMESPACES)]
    ]
    cluster_roles = [
        ClusterRole(
            f"clusterrole-{i}",
            tuple(_rule(rng, cluster=True) for _ in range(rng.randint(3, 8))),
        )
        for i in range(300)
    ]
    bindings = []
    for i in range(200):
        bindings.append(
            Binding(
                f"crb-{i}",
                RoleRef("ClusterRole", f"clusterrole-{rng.randrange(300)}"),
                _subjects(rng, ""),
            )
        )
    for i in range(800):
        role = rng.choice(roles) if rng.random() < 0.7 else None
        ns = role.namespace if role else rng.choice(NAMESPACES)
        ref = (
            RoleRef("Role", role.name)
            if role
            else RoleRef("ClusterRole", f"clusterrole-{rng.randrange(300)}")
        )
        bindings.append(Binding(f"rb-{i}", ref, _subjects(rng, ns), ns))
    return build_rbac_policy(roles, cluster_roles, bindings)


def build_requests(
    seed: int = SEED,
) -> list[tuple[UserInfo, ResourceAttributes | NonResourceAttributes]]:
    """The fixed request mix."""
    rng = random.Random(seed + 1)
    out: list[tuple[UserInfo, ResourceAttributes | NonResourceAttributes]] = []
    for _ in range(REQUESTS):
        if rng.random() < 0.15:
            ns = rng.choice(NAMESPACES)
            user = UserInfo(
                f"system:serviceaccount:{ns}:sa-{rng.randint(0, 9)}",
                (
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{ns}",
                    "system:authenticated",
                ),
            )
        else:
            user = UserInfo(
                rng.choice(USERS),
                (*rng.sample(GROUPS, rng.randint(0, 3)), "system:authenticated"),
            )
        roll = rng.random()
        if roll < 0.05:
            attrs: ResourceAttributes | NonResourceAttributes = NonResourceAttributes(
                "get", rng.choice(["/healthz", "/metrics", "/apis/apps"])
            )
        else:
            group, res = rng.choice(RESOURCES)
            resource, _, sub = res.partition("/")
            ns = (
                ""
                if roll < 0.15 or resource in ("nodes", "namespaces")
                else rng.choice(NAMESPACES)
            )
            name = f"obj-{rng.randint(0, 9)}" if rng.random() < 0.5 else ""
            attrs = ResourceAttributes(
                rng.choice(VERBS), resource, group, ns, sub, name
            )
        out.append((user, attrs))
    return out


def run() -> list[Row]:
    """Measure decisions/s through the index and the linear scan."""
    policy = build_policy()
    requests = build_requests()
    indexed = [evaluate_rbac(policy, u, a, indexed=True).allowed for u, a in requests]
    linear = [evaluate_rbac(policy, u, a, indexed=False).allowed for u, a in requests]
    if indexed != linear:
        raise AssertionError("indexed and linear RBAC evaluation disagree")

    def batch(flag: bool) -> None:
        for u, a in requests:
            evaluate_rbac(policy, u, a, indexed=flag)

    fast = [REQUESTS / (ms / 1000) for ms in time_call(lambda: batch(True), runs=RUNS)]
    slow = [REQUESTS / (ms / 1000) for ms in time_call(lambda: batch(False), runs=RUNS)]
    allowed = sum(indexed)
    return [
        paired_row(
            f"RBAC decisions, 1000 roles + 1000 bindings "
            f"({allowed}/{REQUESTS} allowed)",
            "decisions/s",
            ours=fast,
            peer=slow,
            peer_name="linear scan (upstream loop)",
            labels=("indexed", "linear"),
            higher_is_better=True,
        )
    ]
