"""The shared probe helpers of the cluster and task tiers (pure).

Each question goes to the IAM engine through :func:`ask` (the decision, what
granted or denied it, "depends" for an own-account grant) or :func:`can` (the
decision alone). The tiers' probes live in :mod:`policy.tiers.task` (task
roles and their trust policies) and :mod:`policy.tiers.cluster` (the ECS and
EKS control planes).
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
from policy.tiers.model import DEPENDS, TierReport

__all__ = [
    "ECS_SLR_NAME",
    "ECS_TASKS",
    "EKS_PODS",
    "PROBE",
    "Answer",
    "arn_account",
    "ask",
    "can",
    "describe",
    "find_role",
    "requested_region",
]


# A name nobody uses, in probe ARNs and sessions.
PROBE = "kubeiam-probe"
ECS_TASKS = "ecs-tasks.amazonaws.com"
EKS_PODS = "pods.eks.amazonaws.com"
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
        return f"{sts}:assumed-role/{p.name}/{PROBE}"
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
