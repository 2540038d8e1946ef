"""ECS/EKS permission tiers: who operates a workload, what it may do, what AWS does.

Pure: the account (:mod:`policy.accounts`), the workload
(:mod:`policy.workloads`) and, for EKS, a Kubernetes mapper (IAM ARN ->
username and groups, injected by the shell) go in; a :class:`TierReport` comes
out. Every permission question is answered by the IAM engine
(:func:`policy.iam.evaluate`); the probes live in :mod:`policy.tiers_checks`.

Tiers (iam.md §8):

* **cluster**: principals that can run, stop, update, describe or exec into the
  cluster's tasks and services (``ecs:cluster`` conditions, task-definition
  resources, ``iam:PassRole`` of the task's roles), or, for EKS, reach the
  Kubernetes API and with which groups (through the mappings), or grant
  themselves access (access entries, Pod Identity associations);
* **task**: the task role / IRSA / Pod Identity role: admin, ``iam:PassRole``
  on ``*``, escalation actions, wildcard actions; trust soundness
  (confused-deputy guards, IRSA ``sub``/``aud``, ``sts:TagSession``);
* **housekeeping**: the task execution role pulls each ECR image, writes each
  awslogs group, reads each secret (and KMS key); the ECS service-linked role
  exists; for Pod Identity, some node role may call
  ``eks-auth:AssumeRoleForPodIdentity``.

Finding IDs are stable: ``KI-C0xx`` cluster, ``KI-T0xx`` task, ``KI-H0xx``
housekeeping, ``KI-X0xx`` input. Severities: critical (the workload is broken
or anyone can take it over), high, medium, low, info.
"""

from __future__ import annotations

from collections.abc import Sequence

from policy.accounts import Account, Principal
from policy.iam import Decision, PolicySet
from policy.tiers_checks import (
    ECS_SLR_NAME,
    can,
    ecs_cluster_tier,
    ecs_trust,
    eks_cluster_tier,
    find_role,
    foreign_principal_trust,
    irsa_trust,
    pod_identity_trust,
    task_role_grants,
)
from policy.tiers_model import (
    Check,
    Finding,
    KubeMapper,
    PrincipalAccess,
    Severity,
    TierReport,
)
from policy.workloads import (
    DEFAULT_REGION,
    AccessEntry,
    ECSTask,
    EKSWorkload,
    ecr_repository,
)

__all__ = [
    "Check",
    "Finding",
    "KubeMapper",
    "PrincipalAccess",
    "Severity",
    "TierReport",
    "evaluate_ecs_tiers",
    "evaluate_eks_tiers",
]

_HK = "housekeeping"


def _require(
    report: TierReport,
    account: Account,
    role: Principal,
    ps: PolicySet,
    needs: Sequence[tuple[str, str]],
    *,
    purpose: str,
    fid: str,
    subject: str,
) -> bool:
    missing = []
    for action, resource in needs:
        d = can(account, role, action, resource, policy_set=ps)
        report.checks.append(Check(_HK, role.arn, action, resource, d.value, purpose))
        if d is not Decision.ALLOWED:
            missing.append(f"{action} on {resource}")
    if missing:
        report.add(
            Finding(
                fid,
                Severity.CRITICAL,
                _HK,
                f"execution role {role.name} cannot {purpose}",
                "missing: " + "; ".join(missing) + " (the task fails to start)",
                subject,
            )
        )
    return not missing


def _secret_resource(value_from: str, task: ECSTask) -> tuple[str, str]:
    part, region, acct = task.partition, task.region, task.account
    if value_from.startswith("arn:"):
        fields = value_from.split(":")
        if len(fields) > 2 and fields[2] == "secretsmanager":
            # valueFrom may append :json-key:version-stage:version-id to the secret ARN.
            return "secretsmanager:GetSecretValue", ":".join(fields[:7])
        return "ssm:GetParameters", value_from
    name = value_from if value_from.startswith("/") else "/" + value_from
    return "ssm:GetParameters", f"arn:{part}:ssm:{region}:{acct}:parameter{name}"


def _ecs_housekeeping(
    report: TierReport, account: Account, task: ECSTask, kms_keys: Sequence[str]
) -> None:
    part, acct = task.partition, task.account
    reasons = []
    if any(ecr_repository(c.image) for c in task.containers):
        reasons.append("ECR images")
    if any(c.log_group for c in task.containers):
        reasons.append("awslogs")
    if any(c.secrets or c.repository_credentials for c in task.containers):
        reasons.append("secrets")
    if reasons and not task.execution_role_arn:
        report.add(
            Finding(
                "KI-H001",
                Severity.CRITICAL,
                _HK,
                "the task has no execution role but needs one",
                f"needed for {', '.join(reasons)} (the task fails to start)",
                task.arn,
            )
        )
    role = (
        find_role(
            report, account, task.execution_role_arn, "execution role", "KI-H001", _HK
        )
        if task.execution_role_arn
        else None
    )
    if role is not None:
        ecs_trust(
            report, account, role, f"execution role {role.name}", _HK, task.region
        )
        ps = account.policy_set(role)
        for c in task.containers:
            repo = ecr_repository(c.image)
            if repo is not None:
                r_acct, r_region, r_name, r_part = repo
                repo_arn = f"arn:{r_part}:ecr:{r_region}:{r_acct}:repository/{r_name}"
                needs = [
                    ("ecr:GetAuthorizationToken", "*"),
                    ("ecr:BatchGetImage", repo_arn),
                    ("ecr:GetDownloadUrlForLayer", repo_arn),
                ]
                _require(
                    report,
                    account,
                    role,
                    ps,
                    needs,
                    purpose=f"pull {c.image}",
                    fid="KI-H010",
                    subject=c.image,
                )
                if r_acct != acct:
                    report.add(
                        Finding(
                            "KI-H011",
                            Severity.INFO,
                            _HK,
                            f"{c.image} is in another account's ECR",
                            "its repository policy must also allow the execution "
                            "role (not analysed)",
                            c.image,
                        )
                    )
            if c.log_group:
                region = c.log_region or task.region
                group = f"arn:{part}:logs:{region}:{acct}:log-group:{c.log_group}"
                needs = [
                    ("logs:CreateLogStream", f"{group}:log-stream:{c.name}"),
                    ("logs:PutLogEvents", f"{group}:log-stream:{c.name}"),
                ]
                if c.create_log_group:
                    needs.append(("logs:CreateLogGroup", f"{group}:*"))
                _require(
                    report,
                    account,
                    role,
                    ps,
                    needs,
                    purpose=f"write logs to {c.log_group}",
                    fid="KI-H020",
                    subject=c.log_group,
                )
            for name, value_from in c.secrets:
                needs = [_secret_resource(value_from, task)]
                _require(
                    report,
                    account,
                    role,
                    ps,
                    needs,
                    purpose=f"read secret {name}",
                    fid="KI-H030",
                    subject=value_from,
                )
            if c.repository_credentials:
                needs = [_secret_resource(c.repository_credentials, task)]
                _require(
                    report,
                    account,
                    role,
                    ps,
                    needs,
                    purpose="read the private registry credentials",
                    fid="KI-H032",
                    subject=c.repository_credentials,
                )
        for key in kms_keys:
            _require(
                report,
                account,
                role,
                ps,
                [("kms:Decrypt", key)],
                purpose=f"decrypt with {key}",
                fid="KI-H031",
                subject=key,
            )
    if account.role(ECS_SLR_NAME) is None:
        sev = Severity.MEDIUM if task.network_mode == "awsvpc" else Severity.LOW
        report.add(
            Finding(
                "KI-H040",
                sev,
                _HK,
                f"the ECS service-linked role {ECS_SLR_NAME} is missing",
                "ECS creates it on first use only if the caller may "
                "iam:CreateServiceLinkedRole; awsvpc tasks and services need it",
                ECS_SLR_NAME,
            )
        )


def _policy_names(role: Principal) -> list[str]:
    return [f"{p.source}:{p.name}" for p in role.identity_policies]


def _unresolved(report: TierReport, account: Account) -> None:
    for arn in account.unresolved:
        report.add(
            Finding(
                "KI-X001",
                Severity.LOW,
                "input",
                "a managed policy is attached but its document is not in the "
                "account data",
                "results that depend on it may be wrong",
                arn,
            )
        )


def evaluate_ecs_tiers(
    account: Account,
    task: ECSTask,
    *,
    cluster_arn: str = "",
    service: str = "",
    kms_keys: Sequence[str] = (),
) -> TierReport:
    """The cluster, task and housekeeping tiers of an ECS task definition.

    Args:
        account: The account data.
        task: The task definition.
        cluster_arn: The cluster (default: ``cluster/default`` in the task's region).
        service: The service name used for service probes (default: the family).
        kms_keys: Customer managed keys that encrypt the task's secrets.

    Returns:
        The report.
    """
    cluster_arn = cluster_arn or (
        f"arn:{task.partition}:ecs:{task.region}:{task.account}:cluster/default"
    )
    report = TierReport(
        {
            "type": "ecs-task",
            "taskDefinition": task.arn,
            "cluster": cluster_arn,
            "taskRole": task.task_role_arn,
            "executionRole": task.execution_role_arn,
            "containers": [c.image for c in task.containers],
        }
    )
    _unresolved(report, account)
    ecs_cluster_tier(report, account, task, cluster_arn, service or task.family)
    if task.task_role_arn:
        role = find_role(
            report, account, task.task_role_arn, "task role", "KI-T040", "task"
        )
        if role is not None:
            report.workload["taskRolePolicies"] = _policy_names(role)
            label = f"task role {role.name}"
            task_role_grants(report, account, role, label)
            ecs_trust(report, account, role, label, "task", task.region)
    _ecs_housekeeping(report, account, task, kms_keys)
    return report


def evaluate_eks_tiers(
    account: Account,
    workload: EKSWorkload,
    *,
    cluster_arn: str = "",
    mapper: KubeMapper | None = None,
    access_entries: Sequence[AccessEntry] = (),
) -> TierReport:
    """The cluster, task and housekeeping tiers of an EKS workload identity.

    Args:
        account: The account data.
        workload: The service account (IRSA) and/or Pod Identity association.
        cluster_arn: The cluster (default: from the association, in us-east-1).
        mapper: IAM ARN -> Kubernetes user and groups (aws-auth mappings).
        access_entries: EKS access entries (they win over aws-auth).

    Returns:
        The report.
    """
    pia = workload.pod_identity
    if not cluster_arn:
        name = pia.cluster_name if pia else "cluster"
        prefix = f"arn:{account.partition}:eks:{DEFAULT_REGION}:{account.account_id}"
        cluster_arn = f"{prefix}:cluster/{name}"
    region = cluster_arn.split(":")[3] or DEFAULT_REGION
    role_arn = pia.role_arn if pia else workload.irsa_role_arn
    report = TierReport(
        {
            "type": "eks-workload",
            "cluster": cluster_arn,
            "serviceAccount": f"{workload.namespace}/{workload.service_account}",
            "irsaRole": workload.irsa_role_arn,
            "podIdentityRole": pia.role_arn if pia else "",
        }
    )
    _unresolved(report, account)
    eks_cluster_tier(report, account, cluster_arn, role_arn, mapper, access_entries)
    for arn, kind in (
        (workload.irsa_role_arn, "irsa"),
        (pia.role_arn if pia else "", "pod"),
    ):
        if not arn:
            continue
        role = find_role(report, account, arn, "workload role", "KI-T040", "task")
        if role is None:
            continue
        report.workload[f"{kind}RolePolicies"] = _policy_names(role)
        label = f"workload role {role.name}"
        task_role_grants(report, account, role, label)
        if kind == "irsa":
            irsa_trust(report, account, role, workload)
        else:
            pod_identity_trust(report, account, role, region)
        foreign_principal_trust(report, account, role, label)
    if pia is not None:
        agents = [
            p.arn
            for p in account.principals.values()
            if p.kind == "role"
            and can(account, p, "eks-auth:AssumeRoleForPodIdentity", cluster_arn)
            is Decision.ALLOWED
        ]
        report.checks.append(
            Check(
                _HK,
                ", ".join(agents) or "(no role)",
                "eks-auth:AssumeRoleForPodIdentity",
                cluster_arn,
                Decision.ALLOWED.value if agents else "ImplicitlyDenied",
                "the Pod Identity agent on the nodes",
            )
        )
        if not agents:
            report.add(
                Finding(
                    "KI-H050",
                    Severity.HIGH,
                    _HK,
                    "no role may call eks-auth:AssumeRoleForPodIdentity on the cluster",
                    "the node role needs it (AmazonEKSWorkerNodePolicy) or pods get "
                    "no credentials",
                    cluster_arn,
                )
            )
    return report
