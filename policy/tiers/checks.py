"""The probes behind the cluster and task tiers (pure).

Each question goes to the IAM engine. Trust policies are probed with requests
they should refuse (another account's task, another service account, another
audience), so a guard written in any shape is recognised.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from authenticator.findings import Finding, Severity
from policy.iam.accounts import Account, Principal
from policy.iam.evaluator import evaluate
from policy.iam.request import Decision, PolicySet, Request
from policy.iam.statement import CompiledPolicy
from policy.iam.trace import StatementResult
from policy.tiers.model import DEPENDS, Check, KubeMapper, PrincipalAccess, TierReport
from policy.tiers.workloads import AccessEntry, ECSTask, EKSWorkload

__all__ = [
    "ECS_TASKS",
    "EKS_PODS",
    "Answer",
    "arn_account",
    "ask",
    "can",
    "describe",
    "ecs_cluster_tier",
    "ecs_trust",
    "eks_cluster_tier",
    "find_role",
    "foreign_principal_trust",
    "irsa_trust",
    "pod_identity_tags",
    "pod_identity_trust",
    "requested_region",
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

# aws:RequestedRegion of IAM's global endpoint (AWS global condition context keys).
IAM_REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class Answer:
    """One engine answer with the statements behind it.

    Attributes:
        decision: A :class:`Decision` value, or :data:`DEPENDS` when the identity
            side allows a cross-account resource whose own policy was not given.
        granted_by: The statements that allow (``policy-type policy /Statement/i``).
        denied_by: The explicit Deny, or why nothing allows.
    """

    decision: str
    granted_by: str = ""
    denied_by: str = ""

    @property
    def allowed(self) -> bool:
        """Whether the engine said Allowed."""
        return self.decision == Decision.ALLOWED.value


def requested_region(action: str, resource: str, region: str) -> str:
    """The ``aws:RequestedRegion`` AWS sends with a request.

    Args:
        action: ``service:Action``.
        resource: The resource ARN or ``*``.
        region: The workload's region (cluster or association ARN).

    Returns:
        ``us-east-1`` for IAM calls (its global endpoint; ``iam:PassRole`` rides
        on the calling service's request), else the resource ARN's region, else
        the workload's region.
    """
    if action.lower().startswith("iam:") and action.lower() != "iam:passrole":
        return IAM_REGION
    fields = resource.split(":")
    if resource.startswith("arn:") and len(fields) > 3 and fields[3]:
        return fields[3]
    return region


def arn_account(arn: str) -> str:
    """The account field of an ARN ("" for ``*`` or an account-less ARN)."""
    fields = arn.split(":")
    return fields[4] if arn.startswith("arn:") and len(fields) > 4 else ""


def describe(results: Sequence[StatementResult]) -> str:
    """Name statements the way a reviewer finds them: type, policy, pointer."""
    return "; ".join(f"{r.policy_type} {r.policy} {r.statement}" for r in results)


def _caller(account: Account, p: Principal) -> str:
    # Roles act through sessions; aws:PrincipalArn is derived from them.
    if p.kind == "role":
        sts = f"arn:{account.partition}:sts::{account.account_id}"
        return f"{sts}:assumed-role/{p.name}/{_PROBE}"
    return p.arn


def ask(
    account: Account,
    p: Principal,
    action: str,
    resource: str,
    context: Mapping[str, object] | None = None,
    policy_set: PolicySet | None = None,
    *,
    region: str = "",
    tags: Mapping[str, str] | None = None,
    resource_policy: CompiledPolicy | None = None,
) -> Answer:
    """Ask the engine one question with the context AWS would send.

    Args:
        account: The account data.
        p: The caller.
        action: ``service:Action``.
        resource: The resource ARN.
        context: Request-specific condition keys (win over the derived ones).
        policy_set: The caller's policies (default: from the account).
        region: The workload's region, for ``aws:RequestedRegion``.
        tags: Session tags of the caller (``aws:PrincipalTag/<key>``).
        resource_policy: The resource's own policy, when known.

    Returns:
        The answer; :data:`DEPENDS` for a cross-account resource allowed on the
        identity side whose resource policy was not given.
    """
    ps = policy_set or account.policy_set(p)
    ctx: dict[str, object] = {}
    if region:
        ctx["aws:RequestedRegion"] = requested_region(action, resource, region)
    for key, value in (tags or {}).items():
        ctx[f"aws:PrincipalTag/{key}"] = value
    ctx.update(context or {})
    r_acct = arn_account(resource)
    cross = bool(r_acct) and r_acct != account.account_id
    if resource_policy is not None:
        ps = dataclasses.replace(ps, resource=resource_policy)
    own = account.account_id if cross and resource_policy is None else None
    req = Request(
        _caller(account, p), action, resource, resource_account=own, context=ctx
    )
    res = evaluate(ps, req, explain=False)
    decisive = list(res.trace.decisive)
    if res.decision is Decision.ALLOWED:
        decision = DEPENDS if own else res.decision.value
        return Answer(decision, granted_by=describe(decisive))
    if res.decision is Decision.EXPLICITLY_DENIED:
        return Answer(res.decision.value, denied_by=describe(decisive))
    return Answer(res.decision.value, denied_by=res.trace.reason)


def can(
    account: Account,
    p: Principal,
    action: str,
    resource: str,
    context: Mapping[str, object] | None = None,
    policy_set: PolicySet | None = None,
    *,
    region: str = "",
    tags: Mapping[str, str] | None = None,
) -> Decision:
    """:func:`ask` reduced to a decision ("depends" counts as allowed)."""
    a = ask(account, p, action, resource, context, policy_set, region=region, tags=tags)
    return Decision.ALLOWED if a.decision == DEPENDS else Decision(a.decision)


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
    any_role = f"arn:{part}:iam::{acct}:role/{_PROBE}"
    admin = ask(
        account, role, f"{_PROBE}:{_PROBE}", "*", None, ps, region=region, tags=tags
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
    foreign = f"arn:{account.partition}:iam::{FOREIGN_ACCOUNT}:role/{_PROBE}"
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
        if ok(f"system:serviceaccount:{_PROBE}:{_PROBE}"):
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
        elif ok(f"system:serviceaccount:{w.namespace}:{_PROBE}"):
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
        if ok(sa, aud=_PROBE):
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
        "kubernetes-pod-name": f"{service_account}-{_PROBE}",
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
        f"arn:{part}:eks:{cluster_arn.split(':')[3]}:{FOREIGN_ACCOUNT}:cluster/{_PROBE}"
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


def find_role(
    report: TierReport, account: Account, arn: str, label: str, fid: str, tier: str
) -> Principal | None:
    role = account.role(arn)
    if role is None:
        report.add(
            Finding(
                code=fid,
                severity=Severity.HIGH,
                tier=tier,
                message=f"{label} {arn} is not in the account data",
                detail=(
                    "it cannot be analysed (and the task fails if it does not exist)"
                ),
                where=arn,
            )
        )
    return role


# --- cluster tier ------------------------------------------------------------------


def ecs_cluster_tier(
    report: TierReport, account: Account, task: ECSTask, cluster_arn: str, service: str
) -> None:
    part, acct = account.partition, account.account_id
    region = cluster_arn.split(":")[3]
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
