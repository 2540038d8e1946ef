"""The escalations a workload role's credentials open, one hop out (pure).

What an attacker holding the task / IRSA / Pod Identity credentials would try
(docs/rbac-and-tiers.md, Findings): rewrite its own policies or trust, take over
another user (access key, login profile) or group, run code as a more
privileged role through a compute service (``iam:PassRole`` with ECS
RegisterTaskDefinition / RunTask ``overrides.taskRoleArn`` / CreateService,
Lambda, EC2), or assume another role directly. Each path is reported as what it
is, a path to the target's permissions, with the severity of the target's
power. Every question is asked of the IAM engine against the real ARNs of the
account's users, groups, roles and customer managed policies. The full graph
across accounts and Kubernetes is ``kubeiam policy paths``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from authenticator.findings import Finding, Severity
from policy.iam.accounts import Account, Principal
from policy.iam.evaluator import evaluate
from policy.iam.request import PolicySet, Request
from policy.tiers.checks import Answer, ask
from policy.tiers.model import TierReport

__all__ = ["Power", "escalations", "power"]

_PROBE = "kubeiam-probe"
# Compute services that run code as a passed role, and the calls that launch it.
_LAUNCHERS: dict[str, tuple[tuple[tuple[str, str], ...], ...]] = {
    # ECS: RunTask with overrides.taskRoleArn, or RegisterTaskDefinition + RunTask
    # / CreateService (ECS: task IAM role; iam:PassRole for ECS).
    "ecs-tasks.amazonaws.com": (
        (("ecs:RunTask", "task-definition"),),
        (("ecs:RegisterTaskDefinition", "*"), ("ecs:CreateService", "service")),
    ),
    "lambda.amazonaws.com": (
        (("lambda:CreateFunction", "function"), ("lambda:InvokeFunction", "function")),
        (
            ("lambda:CreateFunction", "function"),
            ("lambda:CreateEventSourceMapping", "*"),
        ),
    ),
    "ec2.amazonaws.com": ((("ec2:RunInstances", "instance"),),),
}
_SELF_ROLE = (
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
)
_ON_USER = (
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:PutUserPolicy",
    "iam:AttachUserPolicy",
)
_ON_ROLE = ("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy")
_ON_GROUP = ("iam:AddUserToGroup", "iam:PutGroupPolicy", "iam:AttachGroupPolicy")
_ON_POLICY = ("iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion")
_TAKEOVER = {"iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile"}


@dataclass(frozen=True, slots=True)
class Power:
    """How much a principal may do: admin, IAM write, and sensitive reach."""

    admin: bool
    iam_write: bool
    reach: frozenset[str]

    def severity(self, source: Power) -> Severity | None:
        """The severity of a path from ``source`` to this power (None: no gain)."""
        if self.admin:
            return None if source.admin else Severity.CRITICAL
        if self.iam_write and not source.iam_write:
            return Severity.HIGH
        return Severity.MEDIUM if self.reach - source.reach else None

    def describe(self) -> str:
        """A short human description."""
        if self.admin:
            return "every action on every resource"
        parts = ["IAM write"] if self.iam_write else []
        parts += sorted(self.reach)
        return ", ".join(parts) or "nothing sensitive"


def _sensitive(part: str, region: str, acct: str) -> tuple[tuple[str, str], ...]:
    return (
        (
            "secretsmanager:GetSecretValue",
            f"arn:{part}:secretsmanager:{region}:{acct}:secret:{_PROBE}-AbCdEf",
        ),
        ("ssm:GetParameter", f"arn:{part}:ssm:{region}:{acct}:parameter/{_PROBE}"),
        ("kms:Decrypt", f"arn:{part}:kms:{region}:{acct}:key/{_PROBE}"),
        ("s3:GetObject", f"arn:{part}:s3:::{_PROBE}/{_PROBE}"),
        ("s3:PutObject", f"arn:{part}:s3:::{_PROBE}/{_PROBE}"),
        ("dynamodb:Scan", f"arn:{part}:dynamodb:{region}:{acct}:table/{_PROBE}"),
        ("ec2:RunInstances", f"arn:{part}:ec2:{region}:{acct}:instance/*"),
        ("lambda:UpdateFunctionCode", f"arn:{part}:lambda:{region}:{acct}:function:x"),
        ("sts:AssumeRole", f"arn:{part}:iam::{acct}:role/{_PROBE}"),
    )


def power(
    account: Account,
    p: Principal,
    region: str,
    tags: Mapping[str, str] | None = None,
    cache: dict[str, Power] | None = None,
) -> Power:
    """Probe what a principal may do: admin, IAM write, sensitive actions.

    Args:
        account: The account data.
        p: The principal.
        region: The region for ``aws:RequestedRegion``.
        tags: Its session tags.
        cache: Results by ARN.

    Returns:
        Its power.
    """
    if cache is not None and p.arn in cache:
        return cache[p.arn]
    acct, part = account.account_id, account.partition
    ps = account.policy_set(p)

    def ok(action: str, resource: str) -> bool:
        return ask(
            account, p, action, resource, None, ps, region=region, tags=tags
        ).allowed

    any_role = f"arn:{part}:iam::{acct}:role/{_PROBE}"
    out = Power(
        admin=ok(f"{_PROBE}:{_PROBE}", "*"),
        iam_write=ok("iam:AttachRolePolicy", any_role)
        or ok("iam:PutRolePolicy", any_role)
        or ok("iam:CreatePolicyVersion", f"arn:{part}:iam::{acct}:policy/{_PROBE}"),
        reach=frozenset(a for a, r in _sensitive(part, region, acct) if ok(a, r)),
    )
    if cache is not None:
        cache[p.arn] = out
    return out


def _trusts_service(
    account: Account, role: Principal, service: str, region: str
) -> bool:
    trust = account.trust(role)
    if trust is None:
        return False
    acct, part = account.account_id, account.partition
    ctx: dict[str, object] = {"aws:SourceAccount": acct}
    if service == "ecs-tasks.amazonaws.com":
        # What ECS sends when it assumes a task role (confused-deputy prevention).
        ctx["aws:SourceArn"] = f"arn:{part}:ecs:{region}:{acct}:task/{_PROBE}/0"
    req = Request(service, "sts:AssumeRole", role.arn, context=ctx)
    return evaluate(PolicySet(resource=trust), req, explain=False).allowed


def escalations(
    report: TierReport,
    account: Account,
    role: Principal,
    label: str,
    region: str,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Add the escalation paths of a workload role to the report.

    Args:
        report: Where findings go.
        account: The account data.
        role: The workload role.
        label: How findings name it.
        region: The workload's region.
        tags: Its session tags (Pod Identity).
    """
    acct, part = account.account_id, account.partition
    ps = account.policy_set(role)
    cache: dict[str, Power] = {}
    mine = power(account, role, region, tags, cache)
    if mine.admin:
        return  # KI-T001 already says it all.
    cluster = str(report.workload.get("cluster", ""))
    ecs_ctx = {"ecs:cluster": cluster} if ":ecs:" in cluster else {}

    def ok(
        action: str, resource: str, ctx: Mapping[str, object] | None = None
    ) -> Answer:
        return ask(account, role, action, resource, ctx, ps, region=region, tags=tags)

    # 1. Its own policies, trust and boundary.
    own = [(a, role.arn) for a in _SELF_ROLE]
    own += [
        (a, pol.arn)
        for pol in role.identity_policies
        if pol.arn and f":iam::{acct}:policy/" in pol.arn
        for a in _ON_POLICY
    ]
    granted = [(a, r, ans) for a, r in own if (ans := ok(a, r)).allowed]
    if granted:
        boundary_escape = role.boundary is None or any(
            a in ("iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary")
            for a, _r, _ans in granted
        )
        report.add(
            Finding(
                code="KI-T003",
                severity=Severity.CRITICAL if boundary_escape else Severity.MEDIUM,
                tier="task",
                message=f"{label} may rewrite its own permissions",
                detail=", ".join(f"{a} on {r}" for a, r, _ in granted)
                + (
                    "" if boundary_escape else " (its permissions boundary still holds)"
                ),
                where=role.arn,
                granted_by="; ".join(sorted({ans.granted_by for _, _, ans in granted})),
                remediation="remove IAM write actions on the role itself and its "
                "policies from the workload role",
            )
        )
    # 2. Other users, roles and groups.
    groups: set[str] = set()
    for p in account.principals.values():
        groups.update(p.groups)
        if p.arn == role.arn or p.is_service_linked:
            continue
        actions = _ON_USER if p.kind == "user" else _ON_ROLE
        hits = [(a, ans) for a in actions if (ans := ok(a, p.arn)).allowed]
        if not hits:
            continue
        names = {a for a, _ in hits}
        target = power(account, p, region, None, cache)
        takeover = bool(names & _TAKEOVER)
        sev = target.severity(mine) if takeover else Severity.HIGH
        if sev is None:
            sev = Severity.LOW
        what = (
            f"has a path to {p.kind} {p.name}'s permissions ({target.describe()})"
            if takeover
            else f"can grant {p.kind} {p.name} any permission"
        )
        report.add(
            Finding(
                code="KI-E010" if takeover else "KI-E011",
                severity=sev,
                tier="task",
                message=f"{label} {what}",
                detail=", ".join(sorted(names)) + f" on {p.arn}",
                where=p.arn,
                granted_by="; ".join(sorted({ans.granted_by for _, ans in hits})),
                remediation=f"remove {', '.join(sorted(names))} on {p.arn} from the "
                "workload role",
            )
        )
    for g in sorted(groups):
        garn = f"arn:{part}:iam::{acct}:group/{g}"
        hits = [(a, ans) for a in _ON_GROUP if (ans := ok(a, garn)).allowed]
        if hits:
            report.add(
                Finding(
                    code="KI-E012",
                    severity=Severity.HIGH,
                    tier="task",
                    message=f"{label} can change group {g}'s members or permissions",
                    detail=", ".join(a for a, _ in hits) + f" on {garn}",
                    where=garn,
                    granted_by="; ".join(sorted({ans.granted_by for _, ans in hits})),
                    remediation=f"remove group writes on {garn} from the workload role",
                )
            )
    # 3. Run code as another role; 4. assume it directly (one hop).
    for target_role in account.principals.values():
        if (
            target_role.kind != "role"
            or target_role.arn == role.arn
            or target_role.is_service_linked
        ):
            continue
        paths: list[str] = []
        grants: set[str] = set()
        for service, routes in _LAUNCHERS.items():
            if not _trusts_service(account, target_role, service, region):
                continue
            passed = ok(
                "iam:PassRole", target_role.arn, {"iam:PassedToService": service}
            )
            if not passed.allowed:
                continue
            for route in routes:
                answers = [
                    ok(a, _launch_arn(part, region, acct, kind), ecs_ctx)
                    for a, kind in route
                ]
                if all(x.allowed for x in answers):
                    paths.append(
                        "iam:PassRole to "
                        + service
                        + " + "
                        + " + ".join(a for a, _ in route)
                        + (
                            " (overrides.taskRoleArn)"
                            if route[0][0] == "ecs:RunTask"
                            else ""
                        )
                    )
                    grants.add(passed.granted_by)
                    grants.update(x.granted_by for x in answers)
                    break
        assume = ok("sts:AssumeRole", target_role.arn, None)
        trust = account.trust(target_role)
        if assume.allowed and trust is not None:
            both = ask(
                account,
                role,
                "sts:AssumeRole",
                target_role.arn,
                None,
                ps,
                region=region,
                tags=tags,
                resource_policy=trust,
            )
            if both.allowed:
                paths.append("sts:AssumeRole (its trust policy allows this role)")
                grants.update((assume.granted_by, both.granted_by))
        if not paths:
            continue
        target = power(account, target_role, region, None, cache)
        sev = target.severity(mine)
        if sev is None:
            continue
        report.add(
            Finding(
                code="KI-E001",
                severity=sev,
                tier="task",
                message=f"{label} has a path to role {target_role.name}'s permissions "
                f"({target.describe()})",
                detail="; ".join(paths),
                where=target_role.arn,
                granted_by="; ".join(sorted(g for g in grants if g)),
                remediation=f"limit iam:PassRole / sts:AssumeRole to roles no more "
                f"privileged than the workload, or narrow {target_role.name}",
            )
        )


def _launch_arn(part: str, region: str, acct: str, kind: str) -> str:
    base = f"arn:{part}"
    return {
        "task-definition": f"{base}:ecs:{region}:{acct}:task-definition/{_PROBE}:1",
        "service": f"{base}:ecs:{region}:{acct}:service/{_PROBE}/{_PROBE}",
        "function": f"{base}:lambda:{region}:{acct}:function:{_PROBE}",
        "instance": f"{base}:ec2:{region}:{acct}:instance/*",
        "*": "*",
    }[kind]
