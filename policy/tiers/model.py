"""The values of a tier report: severities, findings, checks, rows (pure).

See :mod:`policy.tiers.report` for the analysis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from authenticator.findings import Finding, Severity
from policy.iam.request import Decision

__all__ = [
    "DEPENDS",
    "AppGrant",
    "Check",
    "KubeMapper",
    "PrincipalAccess",
    "TierReport",
    "finding_json",
]

# The third answer: the identity side allows, the resource's own policy decides.
DEPENDS = "DependsOnResourcePolicy"

# IAM ARN -> (Kubernetes username, groups) or None; built from mappings by the shell.
KubeMapper = Callable[[str], tuple[str, tuple[str, ...]] | None]


def finding_json(finding: Finding) -> dict[str, str]:
    """A tier finding as ``kubeiam policy tiers -o json`` prints it.

    ``id`` and ``subject`` are the baseline key; ``grantedBy``, ``deniedBy``
    and ``remediation`` appear when known.

    Args:
        finding: The finding.

    Returns:
        The JSON object.
    """
    out = {
        "id": finding.code,
        "severity": finding.severity.value,
        "tier": finding.tier,
        "title": finding.message,
        "detail": finding.detail,
        "subject": finding.where,
    }
    for key, value in (
        ("grantedBy", finding.granted_by),
        ("deniedBy", finding.denied_by),
        ("remediation", finding.remediation),
    ):
        if value:
            out[key] = value
    return out


@dataclass(frozen=True, slots=True)
class Check:
    """One evaluated permission: who, action, resource, decision, and why it matters."""

    tier: str
    principal: str
    action: str
    resource: str
    decision: str
    purpose: str = ""
    granted_by: str = ""
    denied_by: str = ""
    context: tuple[tuple[str, str], ...] = ()

    @property
    def allowed(self) -> bool:
        """Whether the decision is Allowed."""
        return self.decision == Decision.ALLOWED.value

    @property
    def depends(self) -> bool:
        """Whether the answer depends on a resource policy that was not given."""
        return self.decision == DEPENDS

    def to_json(self) -> dict[str, object]:
        """The check as JSON."""
        out: dict[str, object] = {
            "tier": self.tier,
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "decision": self.decision,
            "allowed": self.allowed,
            "purpose": self.purpose,
        }
        if self.granted_by:
            out["grantedBy"] = self.granted_by
        if self.denied_by:
            out["deniedBy"] = self.denied_by
        if self.context:
            out["context"] = dict(self.context)
        return out


@dataclass(frozen=True, slots=True)
class PrincipalAccess:
    """A principal's cluster-tier capabilities (and Kubernetes identity, for EKS)."""

    principal: str
    kind: str
    actions: tuple[str, ...]
    kubernetes_user: str = ""
    kubernetes_groups: tuple[str, ...] = ()
    kubernetes_via: str = ""
    access_policies: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The row as JSON."""
        out: dict[str, object] = {
            "principal": self.principal,
            "kind": self.kind,
            "actions": list(self.actions),
        }
        if self.kubernetes_user:
            out["kubernetes"] = {
                "username": self.kubernetes_user,
                "groups": list(self.kubernetes_groups),
                "via": self.kubernetes_via,
                "accessPolicies": list(self.access_policies),
            }
        return out


@dataclass(frozen=True, slots=True)
class AppGrant:
    """One line of the application tier: what the workload role reaches."""

    service: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    granted_by: str
    flags: tuple[str, ...] = ()
    wording: str = ""

    def to_json(self) -> dict[str, object]:
        """The line as JSON."""
        return {
            "service": self.service,
            "actions": list(self.actions),
            "resources": list(self.resources),
            "grantedBy": self.granted_by,
            "flags": list(self.flags),
            "wording": self.wording,
        }


@dataclass(slots=True)
class TierReport:
    """The three tiers of one workload, with findings (most severe first)."""

    workload: dict[str, object]
    cluster: list[PrincipalAccess] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    application: list[AppGrant] = field(default_factory=list)
    suppressed: list[tuple[Finding, str]] = field(default_factory=list)
    unused_suppressions: list[tuple[str, str]] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        """Record a finding (duplicates by id and subject are dropped).

        Args:
            finding: The finding.
        """
        if not any(f.key == finding.key for f in self.findings):
            self.findings.append(finding)

    def sorted_findings(self) -> list[Finding]:
        """Findings by severity, then id."""
        return sorted(self.findings, key=lambda f: (f.severity.rank, f.code, f.where))

    def to_json(self) -> dict[str, object]:
        """The whole report as JSON (``kubeiam policy tiers -o json``)."""
        return {
            "workload": self.workload,
            "tiers": {
                "cluster": [row.to_json() for row in self.cluster],
                "task": [c.to_json() for c in self.checks if c.tier == "task"],
                "housekeeping": [
                    c.to_json() for c in self.checks if c.tier == "housekeeping"
                ],
                "application": [g.to_json() for g in self.application],
            },
            "findings": [finding_json(f) for f in self.sorted_findings()],
            "suppressed": [
                finding_json(f) | {"reason": why} for f, why in self.suppressed
            ],
            "unusedSuppressions": [
                {"id": i, "subject": s} for i, s in self.unused_suppressions
            ],
            "summary": {
                s.value: sum(f.severity is s for f in self.findings) for s in Severity
            },
        }
