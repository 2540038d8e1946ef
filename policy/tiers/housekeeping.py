"""EKS housekeeping: what the node role does for the workload (pure).

The node group role pulls images from ECR, lets the VPC CNI manage ENIs (unless
``aws-node`` has its own IRSA role) and, for Pod Identity, calls
``eks-auth:AssumeRoleForPodIdentity``: the agent on the node acts as the node
role, so the question is asked of the node role, not of any role.
"""

from __future__ import annotations

from collections.abc import Sequence

from authenticator.findings import Finding, Severity
from policy.iam.accounts import Account, Principal
from policy.iam.evaluator import evaluate
from policy.iam.request import PolicySet, Request
from policy.tiers.checks import ask, find_role
from policy.tiers.model import Check, TierReport

__all__ = ["CNI_ACTIONS", "eks_housekeeping", "node_role_candidates"]

_HK = "housekeeping"
EC2 = "ec2.amazonaws.com"
# AmazonEKS_CNI_Policy's core ENI actions (Amazon VPC CNI: IAM role).
CNI_ACTIONS = (
    "ec2:AssignPrivateIpAddresses",
    "ec2:AttachNetworkInterface",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
)


def node_role_candidates(account: Account) -> list[Principal]:
    """Roles EC2 may assume (node roles when none is named).

    Args:
        account: The account data.

    Returns:
        The roles whose trust lets ec2.amazonaws.com assume them.
    """
    out = []
    for p in account.principals.values():
        trust = account.trust(p) if p.kind == "role" else None
        if trust is None or p.is_service_linked:
            continue
        req = Request(EC2, "sts:AssumeRole", p.arn)
        if evaluate(PolicySet(resource=trust), req, explain=False).allowed:
            out.append(p)
    return out


def eks_housekeeping(
    report: TierReport,
    account: Account,
    cluster_arn: str,
    pod_identity: bool,
    node_roles: Sequence[str],
) -> None:
    """Node-role checks for an EKS workload.

    Args:
        report: Where checks and findings go.
        account: The account data.
        cluster_arn: The cluster.
        pod_identity: The workload uses a Pod Identity association.
        node_roles: Named node roles; empty: roles EC2 may assume (then only
            the Pod Identity agent question is asked).
    """
    region = cluster_arn.split(":")[3]
    named = bool(node_roles)
    roles: list[Principal] = []
    for arn in node_roles:
        role = find_role(report, account, arn, "node role", "KI-H051", _HK)
        if role is not None:
            roles.append(role)
    if not named:
        roles = node_role_candidates(account)
    if named:
        for role in roles:
            _node_role(report, account, role, region)
    if not pod_identity:
        return
    agents = []
    for role in roles:
        a = ask(
            account,
            role,
            "eks-auth:AssumeRoleForPodIdentity",
            cluster_arn,
            region=region,
        )
        report.checks.append(
            Check(
                _HK,
                role.arn,
                "eks-auth:AssumeRoleForPodIdentity",
                cluster_arn,
                a.decision,
                "the Pod Identity agent on the nodes (node role)",
                a.granted_by,
                a.denied_by,
            )
        )
        if a.allowed:
            agents.append(role.arn)
    if not agents:
        report.add(
            Finding(
                code="KI-H050",
                severity=Severity.CRITICAL if named else Severity.HIGH,
                tier=_HK,
                message=(
                    "no node role may call eks-auth:AssumeRoleForPodIdentity on the "
                    "cluster"
                ),
                detail="the Pod Identity agent acts as the node role; pods get no "
                "credentials"
                + ("" if named else " (node roles guessed: give --node-role)"),
                where=cluster_arn,
                denied_by="; ".join(
                    c.denied_by
                    for c in report.checks
                    if c.action == "eks-auth:AssumeRoleForPodIdentity" and c.denied_by
                ),
                remediation="attach AmazonEKSWorkerNodePolicy to the node role",
            )
        )


def _node_role(
    report: TierReport, account: Account, role: Principal, region: str
) -> None:
    acct, part = account.account_id, account.partition
    repo = f"arn:{part}:ecr:{region}:{acct}:repository/kubeiam-probe"
    ps = account.policy_set(role)
    missing_ecr: list[str] = []
    missing_cni: list[str] = []
    for action, resource, purpose, missing in (
        ("ecr:GetAuthorizationToken", "*", "pull ECR images", missing_ecr),
        ("ecr:BatchGetImage", repo, "pull ECR images", missing_ecr),
        ("ecr:GetDownloadUrlForLayer", repo, "pull ECR images", missing_ecr),
        *((a, "*", "VPC CNI ENI management", missing_cni) for a in CNI_ACTIONS),
    ):
        a = ask(account, role, action, resource, None, ps, region=region)
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
            )
        )
        if not a.allowed:
            missing.append(action)
    if missing_ecr:
        report.add(
            Finding(
                code="KI-H052",
                severity=Severity.HIGH,
                tier=_HK,
                message=f"node role {role.name} cannot pull images from ECR",
                detail="missing: " + ", ".join(missing_ecr),
                where=role.arn,
                remediation="attach AmazonEC2ContainerRegistryReadOnly (or "
                "AmazonEC2ContainerRegistryPullOnly) to the node role",
            )
        )
    if missing_cni:
        report.add(
            Finding(
                code="KI-H053",
                severity=Severity.LOW,
                tier=_HK,
                message=f"node role {role.name} has no VPC CNI permissions",
                detail="missing: "
                + ", ".join(missing_cni)
                + " (correct when aws-node uses its own IRSA role, as AWS "
                "recommends)",
                where=role.arn,
                remediation="attach AmazonEKS_CNI_Policy to the aws-node IRSA role "
                "(or the node role)",
            )
        )
