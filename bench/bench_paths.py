"""Access paths at scale: 5,000 IAM roles and 50,000 RBAC objects, graph + --findings.

No other tool computes paths across IAM and RBAC, so the peer row is the budget
the issue sets (30 s on this machine); ratio > 1 means under budget.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import Row
from policy.iam.accounts import parse_account_authorization_details
from policy.paths.graph import AccessGraph, PathInputs
from policy.paths.query import find_findings
from policy.rbac.load import parse_rbac_documents

ACCOUNT = "111122223333"
ROLES = 5_000
NAMESPACES = 500
PER_NAMESPACE = 100  # RBAC objects (Roles + RoleBindings) per namespace
BUDGET_S = 30.0
_RBAC = "rbac.authorization.k8s.io/v1"


def _role(i: int) -> dict[str, Any]:
    iam = f"arn:aws:iam::{ACCOUNT}"
    # Every 10th role may assume the next role; every 500th is an administrator.
    stmts: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": f"arn:aws:s3:::b{i}/*",
        }
    ]
    if i % 10 == 0:
        stmts.append(
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": f"{iam}:role/r{i + 1}",
            }
        )
    if i % 500 == 1:
        stmts = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    trust = (
        {"AWS": f"{iam}:role/r{i - 1}"}
        if i % 10 == 1
        else {"Service": "ec2.amazonaws.com"}
    )
    return {
        "RoleName": f"r{i}",
        "Arn": f"{iam}:role/r{i}",
        "Path": "/",
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": trust, "Action": "sts:AssumeRole"}
            ],
        },
        "RolePolicyList": [
            {
                "PolicyName": "default",
                "PolicyDocument": {"Version": "2012-10-17", "Statement": stmts},
            }
        ],
        "AttachedManagedPolicies": [],
    }


def _rbac_docs() -> list[tuple[str, object]]:
    docs: list[tuple[str, object]] = [
        (
            "crb",
            {
                "apiVersion": _RBAC,
                "kind": "ClusterRole",
                "metadata": {"name": "all"},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
            },
        ),
    ]
    for n in range(NAMESPACES):
        ns = f"ns{n}"
        docs.append(
            (
                "sa",
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "app", "namespace": ns},
                },
            )
        )
        for k in range(PER_NAMESPACE // 2):
            verbs = ["create"] if k == 0 else ["get", "list"]
            resource = "pods" if k == 0 else f"widgets{k}"
            docs.append(
                (
                    ns,
                    {
                        "apiVersion": _RBAC,
                        "kind": "Role",
                        "metadata": {"name": f"role{k}", "namespace": ns},
                        "rules": [
                            {"apiGroups": [""], "resources": [resource], "verbs": verbs}
                        ],
                    },
                )
            )
            docs.append(
                (
                    ns,
                    {
                        "apiVersion": _RBAC,
                        "kind": "RoleBinding",
                        "metadata": {"name": f"rb{k}", "namespace": ns},
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "Role",
                            "name": f"role{k}",
                        },
                        "subjects": [{"kind": "Group", "name": f"team{n}"}],
                    },
                )
            )
    # ns0's app SA is cluster-admin: the team that can create pods there reaches it.
    docs.append(
        (
            "crb",
            {
                "apiVersion": _RBAC,
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "app0-all"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "all",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "app", "namespace": "ns0"}
                ],
            },
        )
    )
    return docs


def build_and_find() -> tuple[float, int, int]:
    """Parse, build the graph, answer --findings; (seconds, edges, findings)."""
    details = {
        "RoleDetailList": [_role(i) for i in range(ROLES)],
        "UserDetailList": [],
        "GroupDetailList": [],
        "Policies": [],
    }
    docs = _rbac_docs()
    t0 = time.perf_counter()
    account = parse_account_authorization_details(details)
    rbac = parse_rbac_documents(docs).policy()

    def mapper(arn: str) -> tuple[str, tuple[str, ...]] | None:
        n = int(arn.rsplit("/r", 1)[1])
        return (f"u{n}", (f"team{n % NAMESPACES}",)) if n % 5 == 0 else None

    graph = AccessGraph(PathInputs(accounts=[account], rbac=rbac, mapper=mapper))
    findings = find_findings(graph)
    elapsed = time.perf_counter() - t0
    edges = sum(len(v) for v in graph._edges.values())
    return elapsed, edges, len(findings)


def run() -> list[Row]:
    """The scale row."""
    elapsed, _edges, _found = build_and_find()
    return [
        Row(
            f"paths: {ROLES} roles + {NAMESPACES * PER_NAMESPACE} RBAC objects, "
            "graph + --findings",
            "s",
            elapsed,
            BUDGET_S,
            "issue budget",
        )
    ]


if __name__ == "__main__":
    print(build_and_find())
