"""The probes behind the cluster and task tiers (pure).

Each question goes to the IAM engine. Trust policies are probed with requests
they should refuse (another account's task, another service account, another
audience), so a guard written in any shape is recognised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policy.accounts import Account, Principal
from policy.iam import Decision, PolicySet, Request, evaluate
from policy.tiers_model import (
    Check,
    Finding,
    KubeMapper,
    PrincipalAccess,
    Severity,
    TierReport,
)
from policy.workloads import AccessEntry, ECSTask, EKSWorkload

__all__ = [
    "ECS_TASKS",
    "EKS_PODS",
    "can",
    "ecs_cluster_tier",
    "ecs_trust",
    "eks_cluster_tier",
    "find_role",
    "foreign_principal_trust",
    "irsa_trust",
    "pod_identity_trust",
    "task_role_grants",
]


# Probe values: another account and names nobody uses (trust guard checks).
FOREIGN_ACCOUNT = "999999999999"
_PROBE = "kubeiam-probe"
ECS_TASKS = "ecs-tasks.amazonaws.com"
EKS_PODS = "pods.eks.amazonaws.com"
STS_AUDIENCE = "sts.amazonaws.com"
# IAM actions that let a principal raise its own privileges on "*".
ESCALATION_ACTIONS = (
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:PutRolePolicy",
    "iam:PutUserPolicy",
    "iam:CreateAccessKey",
    "iam:UpdateAssumeRolePolicy",
    "iam:CreateLoginProfile",
    "sts:AssumeRole",
)
# The ECS name of the service-linked role (Using service-linked roles for Amazon ECS).
ECS_SLR_NAME = "AWSServiceRoleForECS"


# --- evaluation helpers ------------------------------------------------------------


def _caller(account: Account, p: Principal) -> str:
    # Roles act through sessions; aws:PrincipalArn is derived from them.
    if p.kind == "role":
        sts = f"arn:{account.partition}:sts::{account.account_id}"
        return f"{sts}:assumed-role/{p.name}/{_PROBE}"
    return p.arn


def can(
    account: Account,
    p: Principal,
    action: str,
    resource: str,
    context: Mapping[str, object] | None = None,
    policy_set: PolicySet | None = None,
) -> Decision:
    ps = policy_set or account.policy_set(p)
    req = Request(_caller(account, p), action, resource, context=dict(context or {}))
    return evaluate(ps, req, explain=False).decision


def _trust_allows(
    account: Account,
    role: Principal,
    principal: object,
    action: str,
    context: Mapping[str, object],
) -> bool:
    trust = account.trust(role)
    if trust is None:
        return False
    req = Request(principal, action, role.arn, context=dict(context))
    return evaluate(PolicySet(resource=trust), req, explain=False).allowed


def _federated_providers(role: Principal) -> list[str]:
    out: list[str] = []
    statements = (role.trust_policy or {}).get("Statement")
    items = statements if isinstance(statements, list) else [statements]
    for st in items:
        principal = st.get("Principal") if isinstance(st, Mapping) else None
        fed = principal.get("Federated") if isinstance(principal, Mapping) else None
        for value in fed if isinstance(fed, list) else [fed]:
            if (
                isinstance(value, str)
                and ":oidc-provider/" in value
                and value not in out
            ):
                out.append(value)
    return out


def _wildcard_statements(role: Principal) -> list[str]:
    found: list[str] = []
    for pol in role.identity_policies:
        statements = pol.document.get("Statement")
        items = statements if isinstance(statements, list) else [statements]
        for i, st in enumerate(items):
            if not isinstance(st, Mapping) or st.get("Effect") != "Allow":
                continue
            actions = st.get("Action")
            resources = st.get("Resource")
            acts = actions if isinstance(actions, list) else [actions]
            res = resources if isinstance(resources, list) else [resources]
            wild = [a for a in acts if isinstance(a, str) and a.endswith("*")]
            if wild and "*" in res:
                found.append(
                    f"{pol.source}:{pol.name} statement {i}: {', '.join(wild)} on *"
                )
    return found


# --- task tier ---------------------------------------------------------------------


def task_role_grants(
    report: TierReport, account: Account, role: Principal, label: str
) -> None:
    ps = account.policy_set(role)
    acct, part = account.account_id, account.partition
    any_role = f"arn:{part}:iam::{acct}:role/{_PROBE}"
    if can(account, role, f"{_PROBE}:{_PROBE}", "*", policy_set=ps) is Decision.ALLOWED:
        report.add(
            Finding(
                "KI-T001",
                Severity.CRITICAL,
                "task",
                f"{label} may perform every action on every resource",
                subject=role.arn,
            )
        )
    passed = {"iam:PassedToService": "ec2.amazonaws.com"}
    d = can(account, role, "iam:PassRole", any_role, passed, policy_set=ps)
    report.checks.append(
        Check(
            "task",
            role.arn,
            "iam:PassRole",
            any_role,
            d.value,
            "pass any role to any service",
        )
    )
    if d is Decision.ALLOWED:
        report.add(
            Finding(
                "KI-T002",
                Severity.HIGH,
                "task",
                f"{label} may pass any role to any service (iam:PassRole on *)",
                "limit the Resource and add iam:PassedToService",
                role.arn,
            )
        )
    escalations = []
    for action in ESCALATION_ACTIONS:
        d = can(account, role, action, any_role, policy_set=ps)
        report.checks.append(
            Check("task", role.arn, action, any_role, d.value, "escalation")
        )
        if d is Decision.ALLOWED:
            escalations.append(action)
    if escalations:
        report.add(
            Finding(
                "KI-T003",
                Severity.HIGH,
                "task",
                f"{label} may escalate privileges",
                ", ".join(escalations),
                role.arn,
            )
        )
    for where in _wildcard_statements(role):
        report.add(
            Finding(
                "KI-T004",
                Severity.MEDIUM,
                "task",
                f"{label} has wildcard actions on every resource",
                where,
                f"{role.arn} {where}",
            )
        )


def foreign_principal_trust(
    report: TierReport, account: Account, role: Principal, label: str
) -> None:
    foreign = f"arn:{account.partition}:iam::{FOREIGN_ACCOUNT}:role/{_PROBE}"
    if _trust_allows(account, role, foreign, "sts:AssumeRole", {}):
        report.add(
            Finding(
                "KI-T011",
                Severity.CRITICAL,
                "task",
                f"{label} can be assumed from any AWS account",
                f"the trust policy lets {foreign} assume it",
                role.arn,
            )
        )


def ecs_trust(
    report: TierReport,
    account: Account,
    role: Principal,
    label: str,
    tier: str,
    region: str,
) -> None:
    acct, part = account.account_id, account.partition
    own = {
        "aws:SourceAccount": acct,
        "aws:SourceArn": f"arn:{part}:ecs:{region}:{acct}:task/{_PROBE}/0",
    }
    if not _trust_allows(account, role, ECS_TASKS, "sts:AssumeRole", own):
        fid, sev = (
            ("KI-H002", Severity.CRITICAL)
            if tier == "housekeeping"
            else ("KI-T012", Severity.HIGH)
        )
        report.add(
            Finding(
                fid,
                sev,
                tier,
                f"{label} cannot be assumed by {ECS_TASKS}",
                "the task gets no credentials for it (tasks fail to start "
                "when it is the execution role)",
                role.arn,
            )
        )
        return
    foreign = {
        "aws:SourceAccount": FOREIGN_ACCOUNT,
        "aws:SourceArn": f"arn:{part}:ecs:{region}:{FOREIGN_ACCOUNT}:task/{_PROBE}/0",
    }
    if _trust_allows(account, role, ECS_TASKS, "sts:AssumeRole", foreign):
        report.add(
            Finding(
                "KI-T010",
                Severity.HIGH,
                tier,
                f"{label} trusts {ECS_TASKS} without confused-deputy guards",
                "add StringEquals aws:SourceAccount and ArnLike aws:SourceArn "
                f"arn:{part}:ecs:{region}:{acct}:*",
                role.arn,
            )
        )
    foreign_principal_trust(report, account, role, label)


def irsa_trust(
    report: TierReport, account: Account, role: Principal, w: EKSWorkload
) -> None:
    providers = _federated_providers(role)
    if not providers:
        report.add(
            Finding(
                "KI-T020",
                Severity.HIGH,
                "task",
                "IRSA role does not trust any OIDC provider",
                "pods of the service account cannot assume it",
                role.arn,
            )
        )
        return
    for provider in providers:
        issuer = provider.split(":oidc-provider/", 1)[1]

        def ok(
            sub: str,
            aud: str = STS_AUDIENCE,
            issuer: str = issuer,
            provider: str = provider,
        ) -> bool:
            return _trust_allows(
                account,
                role,
                provider,
                "sts:AssumeRoleWithWebIdentity",
                {f"{issuer}:sub": sub, f"{issuer}:aud": aud},
            )

        sa = f"system:serviceaccount:{w.namespace}:{w.service_account}"
        if not ok(sa):
            report.add(
                Finding(
                    "KI-T020",
                    Severity.HIGH,
                    "task",
                    f"IRSA trust does not let {sa} assume the role",
                    f"provider {issuer}",
                    role.arn,
                )
            )
            continue
        if ok(f"system:serviceaccount:{_PROBE}:{_PROBE}"):
            report.add(
                Finding(
                    "KI-T021",
                    Severity.CRITICAL,
                    "task",
                    "IRSA trust lets every service account of the cluster assume it",
                    f"no effective {issuer}:sub condition",
                    role.arn,
                )
            )
        elif ok(f"system:serviceaccount:{w.namespace}:{_PROBE}"):
            report.add(
                Finding(
                    "KI-T022",
                    Severity.HIGH,
                    "task",
                    f"IRSA trust lets every service account in {w.namespace} assume it",
                    f"{issuer}:sub matches a wildcard",
                    role.arn,
                )
            )
        if ok(sa, aud=_PROBE):
            report.add(
                Finding(
                    "KI-T023",
                    Severity.MEDIUM,
                    "task",
                    "IRSA trust does not check the token audience",
                    f"add StringEquals {issuer}:aud = {STS_AUDIENCE}",
                    role.arn,
                )
            )


def pod_identity_trust(
    report: TierReport, account: Account, role: Principal, region: str
) -> None:
    acct, part = account.account_id, account.partition
    own = {
        "aws:SourceAccount": acct,
        "aws:SourceArn": f"arn:{part}:eks:{region}:{acct}:cluster/{_PROBE}",
    }
    missing = [
        a
        for a in ("sts:AssumeRole", "sts:TagSession")
        if not _trust_allows(account, role, EKS_PODS, a, own)
    ]
    if missing:
        report.add(
            Finding(
                "KI-T030",
                Severity.HIGH,
                "task",
                f"Pod Identity trust does not allow {' and '.join(missing)} "
                f"for {EKS_PODS}",
                "the association cannot deliver credentials",
                role.arn,
            )
        )
        return
    foreign = {
        "aws:SourceAccount": FOREIGN_ACCOUNT,
        "aws:SourceArn": f"arn:{part}:eks:{region}:{FOREIGN_ACCOUNT}:cluster/{_PROBE}",
    }
    if _trust_allows(account, role, EKS_PODS, "sts:AssumeRole", foreign):
        report.add(
            Finding(
                "KI-T031",
                Severity.MEDIUM,
                "task",
                "Pod Identity trust has no aws:SourceAccount/aws:SourceArn guard",
                "any cluster's association could use the role",
                role.arn,
            )
        )


def find_role(
    report: TierReport, account: Account, arn: str, label: str, fid: str, tier: str
) -> Principal | None:
    role = account.role(arn)
    if role is None:
        report.add(
            Finding(
                fid,
                Severity.HIGH,
                tier,
                f"{label} {arn} is not in the account data",
                "it cannot be analysed (and the task fails if it does not exist)",
                arn,
            )
        )
    return role


# --- cluster tier ------------------------------------------------------------------


def ecs_cluster_tier(
    report: TierReport, account: Account, task: ECSTask, cluster_arn: str, service: str
) -> None:
    part, region, acct = account.partition, task.region, account.account_id
    cluster = cluster_arn.rsplit("/", 1)[-1]
    task_arn = f"arn:{part}:ecs:{region}:{acct}:task/{cluster}/{_PROBE}"
    service_arn = f"arn:{part}:ecs:{region}:{acct}:service/{cluster}/{service}"
    other_td = f"arn:{part}:ecs:{region}:{acct}:task-definition/{_PROBE}:1"
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
            if can(account, p, a, r, ctx, policy_set=ps) is Decision.ALLOWED
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
                    "KI-C001",
                    Severity.MEDIUM,
                    "cluster",
                    f"{p.kind} {p.name} can start this task definition in {cluster} "
                    "and pass its roles",
                    ", ".join(sorted(runs)),
                    p.arn,
                )
            )
        if "ecs:ExecuteCommand" in allowed:
            report.add(
                Finding(
                    "KI-C002",
                    Severity.HIGH,
                    "cluster",
                    f"{p.kind} {p.name} can open a shell in the cluster's tasks "
                    "(ecs:ExecuteCommand)",
                    "",
                    p.arn,
                )
            )
        if "ecs:UpdateService" in allowed:
            ctx = c | {"ecs:task-definition": other_td}
            if (
                can(account, p, "ecs:UpdateService", service_arn, ctx, policy_set=ps)
                is Decision.ALLOWED
            ):
                report.add(
                    Finding(
                        "KI-C003",
                        Severity.LOW,
                        "cluster",
                        f"{p.kind} {p.name} can point the service at any task "
                        "definition",
                        "no ecs:task-definition condition",
                        p.arn,
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
                    "KI-C013",
                    Severity.HIGH,
                    "cluster",
                    f"{p.kind} {p.name} is cluster-admin of {cluster} through an "
                    "access policy",
                    "AmazonEKSClusterAdminPolicy, cluster scope (invisible to "
                    "kubectl auth can-i --list)",
                    p.arn,
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
    entry = (
        cluster_arn.replace(":cluster/", ":access-entry/")
        + f"/role/{account.account_id}/{_PROBE}/x"
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
            if can(account, p, a, r, policy_set=ps) is Decision.ALLOWED
        )
        # An access entry wins over aws-auth (API_AND_CONFIG_MAP, kubernetes.md §6.1).
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
                    "KI-C010",
                    Severity.CRITICAL,
                    "cluster",
                    f"{p.kind} {p.name} maps to group system:masters in {name}",
                    "it bypasses every authorizer; use a narrower RBAC group",
                    p.arn,
                )
            )
        if {"eks:CreateAccessEntry", "eks:AssociateAccessPolicy"} <= set(allowed):
            report.add(
                Finding(
                    "KI-C011",
                    Severity.HIGH,
                    "cluster",
                    f"{p.kind} {p.name} can create access entries and associate "
                    f"access policies on {name}",
                    "it can make itself cluster-admin",
                    p.arn,
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
            )
            is Decision.ALLOWED
        ):
            report.add(
                Finding(
                    "KI-C012",
                    Severity.MEDIUM,
                    "cluster",
                    f"{p.kind} {p.name} can associate the workload role with any "
                    "service account",
                    "eks:CreatePodIdentityAssociation + iam:PassRole",
                    p.arn,
                )
            )
