"""ECS/EKS permission tiers: who operates a workload, what it may do, what AWS does.

Pure: the account (:mod:`policy.iam.accounts`), the workload
(:mod:`policy.tiers.workloads`) and, for EKS, a Kubernetes mapper (IAM ARN ->
username and groups, injected by the shell) go in; a :class:`TierReport` comes
out. Every permission question is answered by the IAM engine
(:func:`policy.iam.evaluator.evaluate`); the probes live in :mod:`policy.tiers.task`
and :mod:`policy.tiers.cluster`, on the helpers of :mod:`policy.tiers.checks`.

Tiers (docs/rbac-and-tiers.md):

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

Every request carries the context AWS would send: ``aws:RequestedRegion``
(from the cluster or association ARN, never a default), ``kms:ViaService`` and
the encryption context for secret decryption, Pod Identity's session tags, and
``aws:SourceAccount``/``aws:SourceArn`` where the service sets them. A resource
in another account is allowed only by its own policy too: without that policy
the answer is :data:`DEPENDS` ("depends on a resource policy"), never "denied".

Finding IDs are stable: ``KI-C0xx`` cluster, ``KI-T0xx`` task, ``KI-A0xx``
application, ``KI-E0xx`` escalation, ``KI-H0xx`` housekeeping, ``KI-X0xx``
input. Severities: critical (the workload is broken or anyone can take it
over), high, medium, low, info. Every finding names the statement that grants
(``grantedBy``) or what denies (``deniedBy``) and a remediation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from authenticator.findings import Finding, Severity
from policy.errors import InvalidPolicyError
from policy.iam.accounts import Account, Principal
from policy.iam.request import PolicySet
from policy.iam.statement import CompiledPolicy
from policy.rbac.evaluator import RBACPolicy
from policy.tiers.app import application_tier
from policy.tiers.checks import ECS_SLR_NAME, Answer, ask, find_role
from policy.tiers.cluster import ecs_cluster_tier, eks_cluster_tier
from policy.tiers.escalation import escalations
from policy.tiers.housekeeping import eks_housekeeping
from policy.tiers.model import DEPENDS, Check, KubeMapper, TierReport
from policy.tiers.rbac import rbac_operators
from policy.tiers.task import (
    ecs_trust,
    foreign_principal_trust,
    irsa_trust,
    pod_identity_tags,
    pod_identity_trust,
    task_role_grants,
)
from policy.tiers.workloads import (
    AccessEntry,
    ECSTask,
    EKSWorkload,
    ecr_repository,
)

__all__ = [
    "evaluate_ecs_tiers",
    "evaluate_eks_tiers",
]

_HK = "housekeeping"
# The actions ECS Exec needs from the task role (ECS Exec: IAM permissions required).
ECS_EXEC_ACTIONS = (
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
)
# A 32-hex ECS task ID: awslogs streams are <prefix>/<container>/<task-id>.
_TASK_ID = "0123456789abcdef0123456789abcdef"


def _require(
    report: TierReport,
    account: Account,
    role: Principal,
    ps: PolicySet,
    needs: Sequence[tuple[str, str, Mapping[str, object]]],
    *,
    region: str,
    purpose: str,
    fid: str,
    subject: str,
    policies: Mapping[str, CompiledPolicy],
    remediation: str,
) -> bool:
    missing: list[str] = []
    denied_by: list[str] = []
    depends: list[str] = []
    for action, resource, ctx in needs:
        a = ask(
            account,
            role,
            action,
            resource,
            ctx,
            ps,
            region=region,
            resource_policy=policies.get(resource) or policies.get(_key_id(resource)),
        )
        report.checks.append(
            Check(
                _HK,
                role.arn,
                action,
                resource,
                a.decision,
                purpose,
                a.granted_by,
                a.denied_by,
                tuple((k, str(v)) for k, v in ctx.items()),
            )
        )
        if a.decision == DEPENDS:
            depends.append(f"{action} on {resource}")
        elif not a.allowed:
            missing.append(f"{action} on {resource}")
            if a.denied_by and a.denied_by not in denied_by:
                denied_by.append(a.denied_by)
    if missing:
        if any(d.startswith("scp ") or "SCP" in d for d in denied_by):
            remediation = (
                "an SCP of the organization denies this (see deniedBy): run the "
                "workload where the SCP allows it (e.g. an allowed Region) or ask "
                "the organization's administrators for an exception; "
                "identity-side fix, if any: " + remediation
            )
        report.add(
            Finding(
                code=fid,
                severity=Severity.CRITICAL,
                tier=_HK,
                message=f"execution role {role.name} cannot {purpose}",
                detail="missing: " + "; ".join(missing) + " (the task fails to start)",
                where=subject,
                denied_by="; ".join(denied_by),
                remediation=remediation,
            )
        )
    elif depends:
        report.add(
            Finding(
                code="KI-H012",
                severity=Severity.MEDIUM,
                tier=_HK,
                message=(
                    f"whether execution role {role.name} can {purpose} depends on a "
                    "resource policy"
                ),
                detail="the identity side allows "
                + "; ".join(depends)
                + "; the resource is in another account and its policy decides",
                where=subject,
                remediation="give --resource-policy ARN=FILE with the output of "
                "aws ecr get-repository-policy / kms get-key-policy / "
                "secretsmanager get-resource-policy",
            )
        )
    return not missing


def _key_id(arn: str) -> str:
    # A key policy given for key/<id> also answers for its ARN in any form.
    return arn.rsplit("/", 1)[-1] if ":key/" in arn else arn


def _secret_resource(value_from: str, task: ECSTask, region: str) -> tuple[str, str]:
    part, acct = task.partition, task.account
    if value_from.startswith("arn:"):
        fields = value_from.split(":")
        if len(fields) > 2 and fields[2] == "secretsmanager":
            # valueFrom may append :json-key:version-stage:version-id to the secret ARN.
            return "secretsmanager:GetSecretValue", ":".join(fields[:7])
        return "ssm:GetParameters", value_from
    name = value_from if value_from.startswith("/") else "/" + value_from
    return "ssm:GetParameters", f"arn:{part}:ssm:{region}:{acct}:parameter{name}"


def _kms_context(action: str, resource: str, account_id: str) -> dict[str, object]:
    # What Secrets Manager / Parameter Store send to KMS when they decrypt for
    # the caller (Secrets Manager: encryption and decryption; Parameter Store:
    # how it uses AWS KMS): the service endpoint and the encryption context.
    region = resource.split(":")[3]
    if action.startswith("secretsmanager:"):
        return {
            "kms:ViaService": f"secretsmanager.{region}.amazonaws.com",
            "kms:EncryptionContext:SecretARN": resource,
            "kms:EncryptionContextKeys": ["SecretARN", "SecretVersionId"],
            "kms:CallerAccount": account_id,
        }
    return {
        "kms:ViaService": f"ssm.{region}.amazonaws.com",
        "kms:EncryptionContext:PARAMETER_ARN": resource,
        "kms:EncryptionContextKeys": ["PARAMETER_ARN"],
        "kms:CallerAccount": account_id,
    }


def _log_stream(c_name: str, prefix: str) -> str:
    # awslogs: <prefix>/<container-name>/<task-id> with awslogs-stream-prefix,
    # else the container ID (ECS developer guide: Using the awslogs log driver).
    return f"{prefix}/{c_name}/{_TASK_ID}" if prefix else _TASK_ID + _TASK_ID


def _ecs_housekeeping(
    report: TierReport,
    account: Account,
    task: ECSTask,
    region: str,
    cluster_arn: str,
    kms_keys: Sequence[str],
    policies: Mapping[str, CompiledPolicy],
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
                code="KI-H001",
                severity=Severity.CRITICAL,
                tier=_HK,
                message="the task has no execution role but needs one",
                detail=f"needed for {', '.join(reasons)} (the task fails to start)",
                where=task.arn,
                remediation="set executionRoleArn to a role with "
                "AmazonECSTaskExecutionRolePolicy (and secret reads)",
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
            report, account, role, f"execution role {role.name}", _HK, cluster_arn
        )
        ps = account.policy_set(role)
        exec_role = role
        secret_refs: list[tuple[str, str]] = []

        def need(
            needs: Sequence[tuple[str, str, Mapping[str, object]]],
            purpose: str,
            fid: str,
            subject: str,
            fix: str,
        ) -> None:
            _require(
                report,
                account,
                exec_role,
                ps,
                needs,
                region=region,
                purpose=purpose,
                fid=fid,
                subject=subject,
                policies=policies,
                remediation=fix,
            )

        for c in task.containers:
            repo = ecr_repository(c.image)
            if repo is not None:
                r_acct, r_region, r_name, r_part = repo
                repo_arn = f"arn:{r_part}:ecr:{r_region}:{r_acct}:repository/{r_name}"
                in_region = {"aws:RequestedRegion": r_region}
                need(
                    [
                        ("ecr:GetAuthorizationToken", "*", in_region),
                        ("ecr:BatchGetImage", repo_arn, {}),
                        ("ecr:GetDownloadUrlForLayer", repo_arn, {}),
                    ],
                    f"pull {c.image}",
                    "KI-H010",
                    c.image,
                    "attach AmazonECSTaskExecutionRolePolicy, or allow "
                    f"ecr:GetAuthorizationToken on * and ecr:BatchGetImage, "
                    f"ecr:GetDownloadUrlForLayer on {repo_arn}",
                )
            if c.log_group:
                log_region = c.log_region or region
                group = f"arn:{part}:logs:{log_region}:{acct}:log-group:{c.log_group}"
                stream = (
                    f"{group}:log-stream:{_log_stream(c.name, c.log_stream_prefix)}"
                )
                needs: list[tuple[str, str, Mapping[str, object]]] = [
                    ("logs:CreateLogStream", stream, {}),
                    ("logs:PutLogEvents", stream, {}),
                ]
                if c.create_log_group:
                    needs.append(("logs:CreateLogGroup", f"{group}:*", {}))
                need(
                    needs,
                    f"write logs to {c.log_group}",
                    "KI-H020",
                    c.log_group,
                    f"allow logs:CreateLogStream and logs:PutLogEvents on {group}:*",
                )
            for name, value_from in c.secrets:
                action, resource = _secret_resource(value_from, task, region)
                secret_refs.append((action, resource))
                need(
                    [(action, resource, {})],
                    f"read secret {name}",
                    "KI-H030",
                    value_from,
                    f"allow {action} on {resource}",
                )
            if c.repository_credentials:
                action, resource = _secret_resource(
                    c.repository_credentials, task, region
                )
                secret_refs.append((action, resource))
                need(
                    [(action, resource, {})],
                    "read the private registry credentials",
                    "KI-H032",
                    c.repository_credentials,
                    f"allow {action} on {resource}",
                )
        for spec in kms_keys:
            # KEY or KEY=SECRET: the key must decrypt every secret it protects
            # (all of the task's, or the one named), asked the way the service
            # asks: kms:ViaService and the encryption context.
            key, _, only = spec.partition("=")
            refs = [
                (a, r)
                for a, r in secret_refs
                if not only or r == _secret_resource(only, task, region)[1]
            ]
            needs = [
                ("kms:Decrypt", key, _kms_context(action, resource, acct))
                for action, resource in refs
            ] or [("kms:Decrypt", key, {"kms:CallerAccount": acct})]
            need(
                needs,
                f"decrypt with {key}",
                "KI-H031",
                key,
                f"allow kms:Decrypt on {key} (a kms:ViaService condition for "
                "secretsmanager/ssm in the region is the recommended scope)",
            )
    if account.role(ECS_SLR_NAME) is None:
        sev = Severity.MEDIUM if task.network_mode == "awsvpc" else Severity.LOW
        report.add(
            Finding(
                code="KI-H040",
                severity=sev,
                tier=_HK,
                message=f"the ECS service-linked role {ECS_SLR_NAME} is missing",
                detail="ECS creates it on first use only if the caller may "
                "iam:CreateServiceLinkedRole; awsvpc tasks and services need it",
                where=ECS_SLR_NAME,
                remediation="aws iam create-service-linked-role "
                "--aws-service-name ecs.amazonaws.com",
            )
        )


def _policy_names(role: Principal) -> list[str]:
    return [f"{p.source}:{p.name}" for p in role.identity_policies]


def _unresolved(report: TierReport, account: Account) -> None:
    for arn in account.unresolved:
        report.add(
            Finding(
                code="KI-X001",
                severity=Severity.LOW,
                tier="input",
                message="a managed policy is attached but its document is not in the "
                "account data",
                detail="results that depend on it may be wrong",
                where=arn,
                remediation="export with aws iam get-account-authorization-details "
                "(it includes the managed policies)",
            )
        )


def _region_of(arn: str) -> str:
    fields = arn.split(":")
    return fields[3] if arn.startswith("arn:") and len(fields) > 3 else ""


def _workload_role(
    report: TierReport,
    account: Account,
    role: Principal,
    label: str,
    region: str,
    tags: Mapping[str, str] | None,
) -> None:
    task_role_grants(report, account, role, label, region, tags)
    escalations(report, account, role, label, region, tags)
    application_tier(report, account, role, label, region, tags)


def _ecs_exec(
    report: TierReport,
    account: Account,
    role: Principal | None,
    region: str,
) -> None:
    # ECS Exec: the task role (not the execution role) opens the SSM channels.
    if role is None:
        report.add(
            Finding(
                code="KI-T050",
                severity=Severity.HIGH,
                tier="task",
                message=(
                    "ECS Exec is enabled on the service but the task has no task role"
                ),
                detail="execute-command sessions fail",
                where=str(report.workload.get("service", "")),
                remediation="set taskRoleArn to a role allowing "
                + ", ".join(ECS_EXEC_ACTIONS),
            )
        )
        return
    ps = account.policy_set(role)
    missing: list[str] = []
    denied: list[str] = []
    for action in ECS_EXEC_ACTIONS:
        a: Answer = ask(account, role, action, "*", None, ps, region=region)
        report.checks.append(
            Check(
                "task",
                role.arn,
                action,
                "*",
                a.decision,
                "ECS Exec (enableExecuteCommand)",
                a.granted_by,
                a.denied_by,
            )
        )
        if not a.allowed:
            missing.append(action)
            if a.denied_by not in denied:
                denied.append(a.denied_by)
    if missing:
        report.add(
            Finding(
                code="KI-T050",
                severity=Severity.HIGH,
                tier="task",
                message=(
                    f"ECS Exec is enabled but task role {role.name} cannot open the "
                    "SSM channels"
                ),
                detail="missing: "
                + ", ".join(missing)
                + " (execute-command sessions fail)",
                where=role.arn,
                denied_by="; ".join(denied),
                remediation="allow " + ", ".join(ECS_EXEC_ACTIONS) + " on *",
            )
        )


def evaluate_ecs_tiers(
    account: Account,
    task: ECSTask,
    *,
    cluster_arn: str = "",
    service: str = "",
    kms_keys: Sequence[str] = (),
    resource_policies: Mapping[str, CompiledPolicy] | None = None,
    exec_enabled: bool = False,
) -> TierReport:
    """The cluster, task, application and housekeeping tiers of an ECS task.

    Args:
        account: The account data.
        task: The task definition.
        cluster_arn: The cluster (default: ``cluster/default`` in the task's region).
        service: The service name used for service probes (default: the family).
        kms_keys: Customer managed keys that encrypt the task's secrets
            (``KEY_ARN``: all of them; ``KEY_ARN=SECRET``: that one).
        resource_policies: ARN (or KMS key ID) -> the resource's own policy.
        exec_enabled: The service has ECS Exec on (``describe-services``).

    Returns:
        The report.

    Raises:
        InvalidPolicyError: Neither the cluster ARN nor the task names the region.
    """
    region = _region_of(cluster_arn) or task.region
    if not region:
        raise InvalidPolicyError(
            "nothing names the region: give --cluster-arn (or a task definition "
            "with taskDefinitionArn)",
            policy="task definition",
        )
    if not task.arn or not task.region:
        prefix = f"arn:{task.partition}:ecs:{region}:{task.account}"
        arn = task.arn or f"{prefix}:task-definition/{task.family}:{task.revision}"
        task = dataclasses.replace(task, arn=arn, region=region)
    cluster_arn = cluster_arn or (
        f"arn:{task.partition}:ecs:{region}:{task.account}:cluster/default"
    )
    policies = dict(resource_policies or {})
    report = TierReport(
        {
            "type": "ecs-task",
            "taskDefinition": task.arn,
            "cluster": cluster_arn,
            "region": region,
            "taskRole": task.task_role_arn,
            "executionRole": task.execution_role_arn,
            "containers": [c.image for c in task.containers],
        }
    )
    if service:
        report.workload["service"] = service
    _unresolved(report, account)
    ecs_cluster_tier(report, account, task, cluster_arn, service or task.family)
    role: Principal | None = None
    if task.task_role_arn:
        role = find_role(
            report, account, task.task_role_arn, "task role", "KI-T040", "task"
        )
        if role is not None:
            report.workload["taskRolePolicies"] = _policy_names(role)
            label = f"task role {role.name}"
            _workload_role(report, account, role, label, region, None)
            ecs_trust(report, account, role, label, "task", cluster_arn)
    if exec_enabled:
        _ecs_exec(report, account, role, region)
    _ecs_housekeeping(report, account, task, region, cluster_arn, kms_keys, policies)
    return report


def _association_mismatch(report: TierReport, workload: EKSWorkload) -> None:
    pia = workload.pod_identity
    if pia is None:
        return
    want = (workload.namespace, workload.service_account)
    got = (pia.namespace, pia.service_account)
    if want != got:
        report.add(
            Finding(
                code="KI-T032",
                severity=Severity.HIGH if workload.irsa_role_arn else Severity.CRITICAL,
                tier="task",
                message=(
                    f"the Pod Identity association is for {got[0]}/{got[1]}, not the "
                    f"workload's {want[0]}/{want[1]}"
                ),
                detail="pods of the workload's service account do not get the "
                "association's role",
                where=pia.association_arn or pia.role_arn,
                remediation="create the association for namespace "
                f"{want[0]} and service account {want[1]}",
            )
        )


def evaluate_eks_tiers(
    account: Account,
    workload: EKSWorkload,
    *,
    cluster_arn: str = "",
    mapper: KubeMapper | None = None,
    access_entries: Sequence[AccessEntry] = (),
    node_roles: Sequence[str] = (),
    rbac: RBACPolicy | None = None,
) -> TierReport:
    """The cluster, task, application and housekeeping tiers of an EKS workload.

    Args:
        account: The account data.
        workload: The service account (IRSA) and/or Pod Identity association.
        cluster_arn: The cluster (default: from the association ARN).
        mapper: IAM ARN -> Kubernetes user and groups (aws-auth mappings).
        access_entries: EKS access entries (they win over aws-auth).
        node_roles: The node group roles (default: roles ec2.amazonaws.com may
            assume).
        rbac: The cluster's RBAC objects: who may run pods as, or mint tokens
            for, the service account.

    Returns:
        The report.

    Raises:
        InvalidPolicyError: Neither the cluster ARN nor the association names
            the region.
    """
    pia = workload.pod_identity
    if not cluster_arn:
        if pia is None or not pia.region:
            raise InvalidPolicyError(
                "nothing names the region: give --cluster-arn (or an association "
                "with associationArn)",
                policy="workload",
            )
        region = pia.region
        prefix = f"arn:{account.partition}:eks:{region}:{account.account_id}"
        cluster_arn = f"{prefix}:cluster/{pia.cluster_name}"
    region = _region_of(cluster_arn)
    if not region:
        raise InvalidPolicyError("the cluster ARN names no region", policy=cluster_arn)
    role_arn = pia.role_arn if pia else workload.irsa_role_arn
    report = TierReport(
        {
            "type": "eks-workload",
            "cluster": cluster_arn,
            "region": region,
            "serviceAccount": f"{workload.namespace}/{workload.service_account}",
            "irsaRole": workload.irsa_role_arn,
            "podIdentityRole": pia.role_arn if pia else "",
        }
    )
    _unresolved(report, account)
    _association_mismatch(report, workload)
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
        tags = (
            pod_identity_tags(cluster_arn, workload.namespace, workload.service_account)
            if kind == "pod"
            else None
        )
        _workload_role(report, account, role, label, region, tags)
        if kind == "irsa" or pia is None:
            irsa_trust(report, account, role, workload)
        else:
            pod_identity_trust(
                report, account, role, cluster_arn, pia.namespace, pia.service_account
            )
        foreign_principal_trust(report, account, role, label)
    if rbac is not None and role_arn:
        rbac_operators(
            report,
            rbac,
            workload.namespace,
            workload.service_account,
            bool(workload.irsa_role_arn),
            f"role {role_arn.rsplit('/', 1)[-1]}",
        )
    eks_housekeeping(report, account, cluster_arn, pia is not None, node_roles)
    return report
