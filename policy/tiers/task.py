"""The task tier's probes: task roles and the trust policies behind them (pure).

Trust policies are probed with requests they should refuse (another account's
task, another service account, another audience), so a guard written in any
shape is recognised. Every question goes to the IAM engine
(:mod:`policy.tiers.checks`).
"""

from __future__ import annotations

from collections.abc import Mapping

from authenticator.findings import Finding, Severity
from policy.iam.accounts import Account, Principal
from policy.iam.evaluator import evaluate
from policy.iam.request import PolicySet, Request
from policy.tiers.checks import (
    ECS_TASKS,
    EKS_PODS,
    PROBE,
    ask,
)
from policy.tiers.model import Check, TierReport
from policy.tiers.workloads import EKSWorkload

__all__ = [
    "ecs_trust",
    "foreign_principal_trust",
    "irsa_trust",
    "pod_identity_tags",
    "pod_identity_trust",
    "task_role_grants",
]

# Probe values: another account and an audience (trust guard checks).
FOREIGN_ACCOUNT = "999999999999"
STS_AUDIENCE = "sts.amazonaws.com"


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


# --- the probes ------------------------------------------------------------------


def task_role_grants(
    report: TierReport,
    account: Account,
    role: Principal,
    label: str,
    region: str,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Admin, PassRole on any role and wildcard statements of the workload role.

    Args:
        report: Where findings and checks go.
        account: The account data.
        role: The task / IRSA / Pod Identity role.
        label: How findings name it.
        region: The workload's region (``aws:RequestedRegion``).
        tags: Its session tags (Pod Identity).
    """
    ps = account.policy_set(role)
    acct, part = account.account_id, account.partition
    any_role = f"arn:{part}:iam::{acct}:role/{PROBE}"
    admin = ask(
        account, role, f"{PROBE}:{PROBE}", "*", None, ps, region=region, tags=tags
    )
    if admin.allowed:
        report.add(
            Finding(
                code="KI-T001",
                severity=Severity.CRITICAL,
                tier="task",
                message=f"{label} may perform every action on every resource",
                where=role.arn,
                granted_by=admin.granted_by,
                remediation="replace the grant with the actions and resources the "
                "application uses (see the application tier)",
            )
        )
    passed = {"iam:PassedToService": "ec2.amazonaws.com"}
    a = ask(
        account, role, "iam:PassRole", any_role, passed, ps, region=region, tags=tags
    )
    report.checks.append(
        Check(
            "task",
            role.arn,
            "iam:PassRole",
            any_role,
            a.decision,
            "pass any role to any service",
            a.granted_by,
            a.denied_by,
        )
    )
    if a.allowed:
        report.add(
            Finding(
                code="KI-T002",
                severity=Severity.HIGH,
                tier="task",
                message=f"{label} may pass any role to any service (iam:PassRole on *)",
                detail="with a compute service it can run code as any role the service "
                "may assume",
                where=role.arn,
                granted_by=a.granted_by,
                remediation="list the roles in Resource and add a StringEquals "
                "iam:PassedToService condition",
            )
        )
    for where in _wildcard_statements(role):
        report.add(
            Finding(
                code="KI-T004",
                severity=Severity.MEDIUM,
                tier="task",
                message=f"{label} has wildcard actions on every resource",
                detail=where,
                where=f"{role.arn} {where}",
                granted_by=where.rsplit(": ", 1)[0],
                remediation="name the actions the application calls and the "
                "resources it uses",
            )
        )


def foreign_principal_trust(
    report: TierReport, account: Account, role: Principal, label: str
) -> None:
    foreign = f"arn:{account.partition}:iam::{FOREIGN_ACCOUNT}:role/{PROBE}"
    if _trust_allows(account, role, foreign, "sts:AssumeRole", {}):
        report.add(
            Finding(
                code="KI-T011",
                severity=Severity.CRITICAL,
                tier="task",
                message=f"{label} can be assumed from any AWS account",
                detail=f"the trust policy lets {foreign} assume it",
                where=role.arn,
                granted_by=f"trust policy of {role.name}",
                remediation=(
                    'name the principals allowed to assume the role (no Principal "*" '
                    "without an aws:PrincipalOrgID or aws:PrincipalAccount condition)"
                ),
            )
        )


def ecs_trust(
    report: TierReport,
    account: Account,
    role: Principal,
    label: str,
    tier: str,
    cluster_arn: str,
) -> None:
    """Can ECS deliver the role to this cluster's tasks, and only to them?

    The request carries what ECS sends (Task IAM role, confused-deputy
    prevention): ``aws:SourceAccount`` and ``aws:SourceArn`` = the task ARN in
    the cluster's region.

    Args:
        report: Where findings go.
        account: The account data.
        role: The task or execution role.
        label: How findings name it.
        tier: ``task`` or ``housekeeping`` (the execution role).
        cluster_arn: The cluster the task runs in.
    """
    acct, part = account.account_id, account.partition
    region = cluster_arn.split(":")[3]
    cluster = cluster_arn.rsplit("/", 1)[-1]
    task_id = "0123456789abcdef0123456789abcdef"
    own = {
        "aws:SourceAccount": acct,
        "aws:SourceArn": f"arn:{part}:ecs:{region}:{acct}:task/{cluster}/{task_id}",
    }
    if not _trust_allows(account, role, ECS_TASKS, "sts:AssumeRole", own):
        fid, sev = (
            ("KI-H002", Severity.CRITICAL)
            if tier == "housekeeping"
            else ("KI-T012", Severity.HIGH)
        )
        report.add(
            Finding(
                code=fid,
                severity=sev,
                tier=tier,
                message=f"{label} cannot be assumed by {ECS_TASKS}",
                detail="the task gets no credentials for it (tasks fail to start "
                "when it is the execution role)",
                where=role.arn,
                denied_by=f"trust policy of {role.name}",
                remediation=f"allow Principal.Service {ECS_TASKS} sts:AssumeRole, "
                f"with aws:SourceAccount {acct} and aws:SourceArn "
                f"arn:{part}:ecs:{region}:{acct}:*",
            )
        )
        return
    foreign = {
        "aws:SourceAccount": FOREIGN_ACCOUNT,
        "aws:SourceArn": f"arn:{part}:ecs:{region}:{FOREIGN_ACCOUNT}:task/x/{task_id}",
    }
    if _trust_allows(account, role, ECS_TASKS, "sts:AssumeRole", foreign):
        # AWS's own execution-role trust has no guard: low; a task role: medium
        # (Task IAM role: "we recommend" the conditions).
        sev = Severity.LOW if tier == "housekeeping" else Severity.MEDIUM
        report.add(
            Finding(
                code="KI-T010",
                severity=sev,
                tier=tier,
                message=f"{label} trusts {ECS_TASKS} without confused-deputy guards",
                detail="add StringEquals aws:SourceAccount and ArnLike aws:SourceArn "
                f"arn:{part}:ecs:{region}:{acct}:*",
                where=role.arn,
                granted_by=f"trust policy of {role.name}",
                remediation=f'"Condition": {{"StringEquals": {{"aws:SourceAccount": '
                f'"{acct}"}}, "ArnLike": {{"aws:SourceArn": '
                f'"arn:{part}:ecs:{region}:{acct}:*"}}}}',
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
                code="KI-T020",
                severity=Severity.HIGH,
                tier="task",
                message="IRSA role does not trust any OIDC provider",
                detail="pods of the service account cannot assume it",
                where=role.arn,
                remediation=(
                    f"trust the cluster's OIDC provider (Federated) with "
                    f"StringEquals <issuer>:sub "
                    f"system:serviceaccount:{w.namespace}:{w.service_account}"
                ),
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
                    code="KI-T020",
                    severity=Severity.HIGH,
                    tier="task",
                    message=f"IRSA trust does not let {sa} assume the role",
                    detail=f"provider {issuer}",
                    where=role.arn,
                    denied_by=f"trust policy of {role.name}",
                    remediation=f"StringEquals {issuer}:sub = {sa}",
                )
            )
            continue
        if ok(f"system:serviceaccount:{PROBE}:{PROBE}"):
            report.add(
                Finding(
                    code="KI-T021",
                    severity=Severity.CRITICAL,
                    tier="task",
                    message=(
                        "IRSA trust lets every service account of the cluster assume it"
                    ),
                    detail=f"no effective {issuer}:sub condition",
                    where=role.arn,
                    remediation=f"StringEquals {issuer}:sub = {sa}",
                )
            )
        elif ok(f"system:serviceaccount:{w.namespace}:{PROBE}"):
            report.add(
                Finding(
                    code="KI-T022",
                    severity=Severity.HIGH,
                    tier="task",
                    message=(
                        f"IRSA trust lets every service account in {w.namespace} "
                        "assume it"
                    ),
                    detail=f"{issuer}:sub matches a wildcard",
                    where=role.arn,
                    remediation=f"StringEquals {issuer}:sub = {sa}",
                )
            )
        if ok(sa, aud=PROBE):
            report.add(
                Finding(
                    code="KI-T023",
                    severity=Severity.MEDIUM,
                    tier="task",
                    message="IRSA trust does not check the token audience",
                    detail=f"add StringEquals {issuer}:aud = {STS_AUDIENCE}",
                    where=role.arn,
                    remediation=f"StringEquals {issuer}:aud = {STS_AUDIENCE}",
                )
            )


def pod_identity_tags(
    cluster_arn: str, namespace: str, service_account: str
) -> dict[str, str]:
    """The session tags EKS Pod Identity attaches (EKS: Pod Identity session tags).

    Args:
        cluster_arn: The cluster.
        namespace: The pod's namespace.
        service_account: The pod's service account.

    Returns:
        Tag key -> value (pod name and UID are per pod: probe values).
    """
    return {
        "eks-cluster-arn": cluster_arn,
        "eks-cluster-name": cluster_arn.rsplit("/", 1)[-1],
        "kubernetes-namespace": namespace,
        "kubernetes-service-account": service_account,
        "kubernetes-pod-name": f"{service_account}-{PROBE}",
        "kubernetes-pod-uid": "00000000-0000-4000-8000-000000000000",
    }


def _pod_identity_request(
    account_id: str, cluster_arn: str, tags: Mapping[str, str]
) -> dict[str, object]:
    ctx: dict[str, object] = {
        "aws:SourceAccount": account_id,
        "aws:SourceArn": cluster_arn,
        "aws:TagKeys": list(tags),
    }
    for key, value in tags.items():
        ctx[f"aws:RequestTag/{key}"] = value
    return ctx


def pod_identity_trust(
    report: TierReport,
    account: Account,
    role: Principal,
    cluster_arn: str,
    namespace: str,
    service_account: str,
) -> None:
    """Can the Pod Identity agent deliver the role to this service account?

    The request is the one EKS makes: ``sts:AssumeRole`` and ``sts:TagSession``
    from ``pods.eks.amazonaws.com`` with ``aws:SourceAccount``, ``aws:SourceArn``
    = the cluster, and the session tags as ``aws:RequestTag/*``.

    Args:
        report: Where findings go.
        account: The account data.
        role: The associated role.
        cluster_arn: The cluster.
        namespace: The association's namespace.
        service_account: The association's service account.
    """
    tags = pod_identity_tags(cluster_arn, namespace, service_account)
    own = _pod_identity_request(account.account_id, cluster_arn, tags)
    missing = [
        a
        for a in ("sts:AssumeRole", "sts:TagSession")
        if not _trust_allows(account, role, EKS_PODS, a, own)
    ]
    if missing:
        report.add(
            Finding(
                code="KI-T030",
                severity=Severity.CRITICAL,
                tier="task",
                message=f"Pod Identity trust does not allow {' and '.join(missing)} "
                f"for {EKS_PODS}",
                detail="the association cannot deliver credentials (pods get none)",
                where=role.arn,
                denied_by=f"trust policy of {role.name}",
                remediation=f"allow Principal.Service {EKS_PODS} the actions "
                "sts:AssumeRole and sts:TagSession",
            )
        )
        return
    part = account.partition
    foreign_cluster = (
        f"arn:{part}:eks:{cluster_arn.split(':')[3]}:{FOREIGN_ACCOUNT}:cluster/{PROBE}"
    )
    foreign = _pod_identity_request(
        FOREIGN_ACCOUNT,
        foreign_cluster,
        pod_identity_tags(foreign_cluster, namespace, service_account),
    )
    if _trust_allows(account, role, EKS_PODS, "sts:AssumeRole", foreign):
        report.add(
            Finding(
                code="KI-T031",
                severity=Severity.MEDIUM,
                tier="task",
                message=(
                    "Pod Identity trust has no aws:SourceAccount/aws:SourceArn guard"
                ),
                detail="any cluster's association could use the role",
                where=role.arn,
                granted_by=f"trust policy of {role.name}",
                remediation=f"add StringEquals aws:SourceAccount {account.account_id}"
                f" and ArnEquals aws:SourceArn {cluster_arn}",
            )
        )
