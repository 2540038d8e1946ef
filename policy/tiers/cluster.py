"""The cluster tier's probes: the ECS and EKS control planes (pure).

Every question goes to the IAM engine (:mod:`policy.tiers.checks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from authenticator.findings import Finding, Severity
from policy.iam.accounts import Account, Principal
from policy.iam.request import Decision
from policy.tiers.checks import (
    ECS_TASKS,
    EKS_PODS,
    PROBE,
    can,
)
from policy.tiers.model import KubeMapper, PrincipalAccess, TierReport
from policy.tiers.workloads import AccessEntry, ECSTask

__all__ = [
    "ecs_cluster_tier",
    "eks_cluster_tier",
]


def ecs_cluster_tier(
    report: TierReport, account: Account, task: ECSTask, cluster_arn: str, service: str
) -> None:
    part, acct = account.partition, account.account_id
    region = cluster_arn.split(":")[3]
    cluster = cluster_arn.rsplit("/", 1)[-1]
    task_arn = f"arn:{part}:ecs:{region}:{acct}:task/{cluster}/{PROBE}"
    service_arn = f"arn:{part}:ecs:{region}:{acct}:service/{cluster}/{service}"
    other_td = f"arn:{part}:ecs:{region}:{acct}:task-definition/{PROBE}:1"
    c = {"ecs:cluster": cluster_arn}
    probes: list[tuple[str, str, Mapping[str, object]]] = [
        ("ecs:RunTask", task.arn, c),
        ("ecs:StartTask", task.arn, c),
        ("ecs:StopTask", task_arn, c),
        ("ecs:DescribeTasks", task_arn, c),
        (
            "ecs:ListTasks",
            f"arn:{part}:ecs:{region}:{acct}:container-instance/{cluster}/*",
            c,
        ),
        ("ecs:ExecuteCommand", task_arn, c | {"ecs:task": task_arn}),
        ("ecs:UpdateService", service_arn, c | {"ecs:task-definition": task.arn}),
        ("ecs:CreateService", service_arn, c | {"ecs:task-definition": task.arn}),
        ("ecs:DescribeServices", service_arn, c),
        ("ecs:RegisterTaskDefinition", "*", {}),
    ]
    roles = [r for r in (task.task_role_arn, task.execution_role_arn) if r]
    for p in account.principals.values():
        if p.is_service_linked:
            continue
        ps = account.policy_set(p)
        allowed = tuple(
            a
            for a, r, ctx in probes
            if can(account, p, a, r, ctx, policy_set=ps, region=region)
            is Decision.ALLOWED
        )
        if not allowed:
            continue
        report.cluster.append(PrincipalAccess(p.arn, p.kind, allowed))
        passes = all(
            can(
                account,
                p,
                "iam:PassRole",
                r,
                {"iam:PassedToService": ECS_TASKS},
                policy_set=ps,
                region=region,
            )
            is Decision.ALLOWED
            for r in roles
        )
        runs = {
            "ecs:RunTask",
            "ecs:StartTask",
            "ecs:UpdateService",
            "ecs:CreateService",
        } & set(allowed)
        if runs and passes:
            report.add(
                Finding(
                    code="KI-C001",
                    severity=Severity.MEDIUM,
                    tier="cluster",
                    message=(
                        f"{p.kind} {p.name} can start this task definition in "
                        f"{cluster} and pass its roles"
                    ),
                    detail=", ".join(sorted(runs)),
                    where=p.arn,
                    remediation=(
                        "expected for a deployer; otherwise remove "
                        "ecs:RunTask/StartTask/CreateService/UpdateService on this "
                        "cluster or iam:PassRole of the task roles"
                    ),
                )
            )
        if "ecs:ExecuteCommand" in allowed:
            report.add(
                Finding(
                    code="KI-C002",
                    severity=Severity.HIGH,
                    tier="cluster",
                    message=(
                        f"{p.kind} {p.name} can open a shell in the cluster's tasks "
                        "(ecs:ExecuteCommand)"
                    ),
                    detail="",
                    where=p.arn,
                    remediation=(
                        "limit ecs:ExecuteCommand with ecs:cluster and "
                        "aws:ResourceTag conditions to the people who debug this "
                        "service"
                    ),
                )
            )
        if "ecs:UpdateService" in allowed:
            ctx = c | {"ecs:task-definition": other_td}
            if (
                can(
                    account,
                    p,
                    "ecs:UpdateService",
                    service_arn,
                    ctx,
                    policy_set=ps,
                    region=region,
                )
                is Decision.ALLOWED
            ):
                report.add(
                    Finding(
                        code="KI-C003",
                        severity=Severity.LOW,
                        tier="cluster",
                        message=f"{p.kind} {p.name} can point the service at any task "
                        "definition",
                        detail="no ecs:task-definition condition",
                        where=p.arn,
                        remediation=(
                            "add an ArnEquals ecs:task-definition condition on "
                            "ecs:UpdateService"
                        ),
                    )
                )


def _policy_label(policy: tuple[str, str, tuple[str, ...]]) -> str:
    arn, scope, namespaces = policy
    where = f" in {', '.join(namespaces)}" if scope == "namespace" else " (cluster)"
    return arn.rsplit("/", 1)[-1] + where


def _access_policy_findings(
    report: TierReport, p: Principal, entry: AccessEntry, cluster: str
) -> None:
    for arn, scope, _namespaces in entry.policies:
        if arn.endswith("/AmazonEKSClusterAdminPolicy") and scope == "cluster":
            report.add(
                Finding(
                    code="KI-C013",
                    severity=Severity.HIGH,
                    tier="cluster",
                    message=(
                        f"{p.kind} {p.name} is cluster-admin of {cluster} through an "
                        "access policy"
                    ),
                    detail="AmazonEKSClusterAdminPolicy, cluster scope (invisible to "
                    "kubectl auth can-i --list)",
                    where=p.arn,
                    remediation=(
                        "use a namespace-scoped access policy (AmazonEKSEditPolicy / "
                        "AmazonEKSViewPolicy) unless this principal administers the "
                        "cluster"
                    ),
                )
            )


def eks_cluster_tier(
    report: TierReport,
    account: Account,
    cluster_arn: str,
    role_arn: str,
    mapper: KubeMapper | None,
    access_entries: Sequence[AccessEntry] = (),
) -> None:
    name = cluster_arn.rsplit("/", 1)[-1]
    region = cluster_arn.split(":")[3]
    entry = (
        cluster_arn.replace(":cluster/", ":access-entry/")
        + f"/role/{account.account_id}/{PROBE}/x"
    )
    probes: list[tuple[str, str]] = [
        ("eks:DescribeCluster", cluster_arn),
        ("eks:AccessKubernetesApi", cluster_arn),
        ("eks:CreateAccessEntry", cluster_arn),
        ("eks:AssociateAccessPolicy", entry),
        ("eks:CreatePodIdentityAssociation", cluster_arn),
    ]
    for p in account.principals.values():
        if p.is_service_linked:
            continue
        ps = account.policy_set(p)
        allowed = tuple(
            a
            for a, r in probes
            if can(account, p, a, r, policy_set=ps, region=region) is Decision.ALLOWED
        )
        # An access entry wins over aws-auth (API_AND_CONFIG_MAP, docs/eks.md).
        entry_for = next((e for e in access_entries if e.matches(p.arn)), None)
        mapped = mapper(p.arn) if mapper else None
        via = "aws-auth" if mapped else ""
        policies: tuple[str, ...] = ()
        if entry_for is not None:
            mapped = (entry_for.username, entry_for.groups)
            via = "access entry"
            policies = tuple(_policy_label(pol) for pol in entry_for.policies)
            _access_policy_findings(report, p, entry_for, name)
        if not allowed and mapped is None:
            continue
        user, groups = mapped if mapped else ("", ())
        report.cluster.append(
            PrincipalAccess(p.arn, p.kind, allowed, user, groups, via, policies)
        )
        if "system:masters" in groups:
            report.add(
                Finding(
                    code="KI-C010",
                    severity=Severity.CRITICAL,
                    tier="cluster",
                    message=f"{p.kind} {p.name} maps to group system:masters in {name}",
                    detail="it bypasses every authorizer; use a narrower RBAC group",
                    where=p.arn,
                    remediation=(
                        "map the principal to an RBAC group bound to the ClusterRole "
                        "it needs, not system:masters"
                    ),
                )
            )
        if {"eks:CreateAccessEntry", "eks:AssociateAccessPolicy"} <= set(allowed):
            report.add(
                Finding(
                    code="KI-C011",
                    severity=Severity.HIGH,
                    tier="cluster",
                    message=(
                        f"{p.kind} {p.name} can create access entries and associate "
                        f"access policies on {name}"
                    ),
                    detail="it can make itself cluster-admin",
                    where=p.arn,
                    remediation=(
                        "limit eks:CreateAccessEntry / eks:AssociateAccessPolicy to "
                        "cluster administrators (condition eks:accessPolicyArn / "
                        "eks:namespaces)"
                    ),
                )
            )
        if (
            "eks:CreatePodIdentityAssociation" in allowed
            and role_arn
            and can(
                account,
                p,
                "iam:PassRole",
                role_arn,
                {"iam:PassedToService": EKS_PODS},
                policy_set=ps,
                region=region,
            )
            is Decision.ALLOWED
        ):
            report.add(
                Finding(
                    code="KI-C012",
                    severity=Severity.MEDIUM,
                    tier="cluster",
                    message=(
                        f"{p.kind} {p.name} can associate the workload role with any "
                        "service account"
                    ),
                    detail="eks:CreatePodIdentityAssociation + iam:PassRole",
                    where=p.arn,
                    remediation=(
                        "limit iam:PassRole of the workload role to the platform "
                        "pipeline, or eks:CreatePodIdentityAssociation with "
                        "eks:namespace conditions"
                    ),
                )
            )
