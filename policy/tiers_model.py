"""The values of a tier report: severities, findings, checks, rows (pure).

See :mod:`policy.tiers` for the analysis.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from policy.iam import Decision

__all__ = [
    "Check",
    "Finding",
    "KubeMapper",
    "PrincipalAccess",
    "Severity",
    "TierReport",
]

# IAM ARN -> (Kubernetes username, groups) or None; built from mappings by the shell.
KubeMapper = Callable[[str], tuple[str, tuple[str, ...]] | None]


class Severity(enum.Enum):
    """Finding severities, most severe first."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for critical ... 4 for info."""
        return list(Severity).index(self)


@dataclass(frozen=True, slots=True)
class Finding:
    """One result worth a human's attention."""

    id: str
    severity: Severity
    tier: str
    title: str
    detail: str = ""
    subject: str = ""

    def to_json(self) -> dict[str, str]:
        """The finding as JSON."""
        return {
            "id": self.id,
            "severity": self.severity.value,
            "tier": self.tier,
            "title": self.title,
            "detail": self.detail,
            "subject": self.subject,
        }


@dataclass(frozen=True, slots=True)
class Check:
    """One evaluated permission: who, action, resource, decision, and why it matters."""

    tier: str
    principal: str
    action: str
    resource: str
    decision: str
    purpose: str = ""

    @property
    def allowed(self) -> bool:
        """Whether the decision is Allowed."""
        return self.decision == Decision.ALLOWED.value

    def to_json(self) -> dict[str, object]:
        """The check as JSON."""
        return {
            "tier": self.tier,
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "decision": self.decision,
            "allowed": self.allowed,
            "purpose": self.purpose,
        }


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


@dataclass(slots=True)
class TierReport:
    """The three tiers of one workload, with findings (most severe first)."""

    workload: dict[str, object]
    cluster: list[PrincipalAccess] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        """Record a finding (duplicates by id and subject are dropped).

        Args:
            finding: The finding.
        """
        if not any(
            f.id == finding.id and f.subject == finding.subject for f in self.findings
        ):
            self.findings.append(finding)

    def sorted_findings(self) -> list[Finding]:
        """Findings by severity, then id."""
        return sorted(self.findings, key=lambda f: (f.severity.rank, f.id, f.subject))

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
            },
            "findings": [f.to_json() for f in self.sorted_findings()],
            "summary": {
                s.value: sum(f.severity is s for f in self.findings) for s in Severity
            },
        }
