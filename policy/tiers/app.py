"""The application tier: what the workload's role can reach (pure).

A summary by service and resource pattern of the Allow statements of the task
role (or IRSA / Pod Identity role), each line naming its statement, and
findings for the reads an attacker in the container wants first: every secret,
every parameter, every KMS key, every S3 object. Those are asked of the IAM
engine with the workload's request context (region, session tags), so a
condition that narrows them is honoured; ``NotAction`` / ``NotResource``
statements are worded for what they are ("every action except ...").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from authenticator.findings import Finding, Severity
from policy.iam.accounts import Account, Principal
from policy.tiers.checks import ask
from policy.tiers.model import AppGrant, Check, TierReport

__all__ = ["application_tier", "summarize"]

_PROBE = "kubeiam-probe"


def _list(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, str)]


def _pointer(i: int, st: Mapping[str, object]) -> str:
    sid = st.get("Sid")
    return f"/Statement/{i}" + (f' (Sid "{sid}")' if isinstance(sid, str) else "")


def summarize(role: Principal) -> list[AppGrant]:
    """The Allow statements of a role, one line per statement and service.

    Args:
        role: The workload role.

    Returns:
        The lines, in policy order.
    """
    out: list[AppGrant] = []
    for pol in role.identity_policies:
        statements = pol.document.get("Statement")
        items = statements if isinstance(statements, list) else [statements]
        for i, st in enumerate(items):
            if not isinstance(st, Mapping) or st.get("Effect") != "Allow":
                continue
            where = f"identity {pol.source}:{pol.name} {_pointer(i, st)}"
            cond = " (with conditions)" if st.get("Condition") else ""
            if "NotResource" in st:
                resources = tuple(_list(st.get("NotResource")))
                on = "every resource except " + ", ".join(resources)
            else:
                resources = tuple(_list(st.get("Resource")))
                on = ", ".join(resources)
            if "NotAction" in st:
                excluded = tuple(_list(st.get("NotAction")))
                out.append(
                    AppGrant(
                        "*",
                        excluded,
                        resources,
                        where,
                        ("NotAction",)
                        + (("NotResource",) if "NotResource" in st else ()),
                        f"may call every action of every service except "
                        f"{', '.join(excluded)} on {on}{cond}",
                    )
                )
                continue
            by_service: dict[str, list[str]] = {}
            for action in _list(st.get("Action")):
                svc = action.split(":", 1)[0].lower() if ":" in action else "*"
                by_service.setdefault(svc, []).append(action)
            for svc, actions in by_service.items():
                flags: tuple[str, ...] = ()
                if "NotResource" in st:
                    flags = ("NotResource",)
                if "*" in resources:
                    flags += ("any resource",)
                out.append(
                    AppGrant(
                        svc,
                        tuple(actions),
                        resources,
                        where,
                        flags,
                        f"may {', '.join(actions)} on {on}{cond}",
                    )
                )
    return out


def _sensitive_reads(
    part: str, region: str, acct: str
) -> Sequence[tuple[str, str, str, str]]:
    return (
        (
            "KI-A001",
            "secretsmanager:GetSecretValue",
            f"arn:{part}:secretsmanager:{region}:{acct}:secret:{_PROBE}-AbCdEf",
            "read every secret in Secrets Manager",
        ),
        (
            "KI-A002",
            "ssm:GetParameters",
            f"arn:{part}:ssm:{region}:{acct}:parameter/{_PROBE}",
            "read every SSM parameter",
        ),
        (
            "KI-A003",
            "kms:Decrypt",
            f"arn:{part}:kms:{region}:{acct}:key/{_PROBE}",
            "decrypt with every KMS key that delegates to IAM",
        ),
        (
            "KI-A004",
            "s3:GetObject",
            f"arn:{part}:s3:::{_PROBE}/{_PROBE}",
            "read every S3 object",
        ),
    )


def application_tier(
    report: TierReport,
    account: Account,
    role: Principal,
    label: str,
    region: str,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Add the application tier of a workload role.

    Args:
        report: Where lines, checks and findings go.
        account: The account data.
        role: The workload role.
        label: How findings name it.
        region: The workload's region.
        tags: Its session tags.
    """
    lines = summarize(role)
    report.application.extend(lines)
    ps = account.policy_set(role)
    acct, part = account.account_id, account.partition
    for fid, action, resource, what in _sensitive_reads(part, region, acct):
        a = ask(account, role, action, resource, None, ps, region=region, tags=tags)
        report.checks.append(
            Check(
                "task",
                role.arn,
                action,
                resource,
                a.decision,
                f"{what} (any name)",
                a.granted_by,
                a.denied_by,
            )
        )
        if a.allowed:
            report.add(
                Finding(
                    code=fid,
                    severity=Severity.MEDIUM,
                    tier="application",
                    message=f"{label} may {what}",
                    detail=f"{action} is allowed on a resource name nobody uses",
                    where=role.arn,
                    granted_by=a.granted_by,
                    remediation=f"scope {action} to the application's own resources "
                    "(ARN prefix, or a tag condition)",
                )
            )
    for line in lines:
        if "NotAction" in line.flags:
            report.add(
                Finding(
                    code="KI-A010",
                    severity=Severity.MEDIUM,
                    tier="application",
                    message=f"{label} {line.wording}",
                    detail=(
                        "an Allow with NotAction grants every other action, including "
                        "ones added to AWS later"
                    ),
                    where=f"{role.arn} {line.granted_by}",
                    granted_by=line.granted_by,
                    remediation="list the allowed actions instead of NotAction",
                )
            )
        elif "NotResource" in line.flags:
            report.add(
                Finding(
                    code="KI-A011",
                    severity=Severity.LOW,
                    tier="application",
                    message=f"{label} {line.wording}",
                    detail="an Allow with NotResource grants every other resource",
                    where=f"{role.arn} {line.granted_by}",
                    granted_by=line.granted_by,
                    remediation="list the allowed resources instead of NotResource",
                )
            )
