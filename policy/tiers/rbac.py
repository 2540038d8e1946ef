"""Who in Kubernetes can act as the workload's service account (pure).

For an EKS workload the IAM role is only half the story: whoever may create a
pod (or a Deployment, Job, ...) in the namespace can run it as the service
account and receive the role's credentials (IRSA or Pod Identity), and whoever
may create ``serviceaccounts/token`` for it can mint the projected token IRSA
exchanges with ``sts:AssumeRoleWithWebIdentity``. The RBAC engine
(:func:`policy.rbac.evaluator.who_can`) answers; ``system:masters`` bypasses RBAC and is
reported by the cluster tier's mapping checks.
"""

from __future__ import annotations

from authenticator.findings import Finding, Severity
from policy.rbac.evaluator import RBACPolicy, who_can
from policy.rbac.model import ResourceAttributes
from policy.tiers.model import TierReport

__all__ = ["rbac_operators"]

# Creating any of these runs a pod as a service account of the namespace.
_POD_MAKERS = (
    ("pods", ""),
    ("deployments", "apps"),
    ("statefulsets", "apps"),
    ("daemonsets", "apps"),
    ("replicasets", "apps"),
    ("jobs", "batch"),
    ("cronjobs", "batch"),
)


def _system(kind: str, name: str, namespace: str) -> bool:
    # Control-plane identities and kube-system controllers: not operators.
    return name.startswith("system:") or (
        kind == "ServiceAccount" and namespace == "kube-system"
    )


def rbac_operators(
    report: TierReport,
    rbac: RBACPolicy,
    namespace: str,
    service_account: str,
    irsa: bool,
    role_label: str,
) -> None:
    """Add who may run pods as, or mint tokens for, the service account.

    Args:
        report: Where findings go (and ``workload["kubernetesOperators"]``).
        rbac: The cluster's RBAC objects.
        namespace: The workload's namespace.
        service_account: The workload's service account.
        irsa: Whether the role is delivered through IRSA (tokens matter).
        role_label: How findings name the IAM role.
    """
    found: dict[tuple[str, str, str], list[str]] = {}
    for resource, group in _POD_MAKERS:
        attrs = ResourceAttributes("create", resource, group, namespace)
        for g in who_can(rbac, attrs):
            s = g.subject
            if _system(s.kind, s.name, s.namespace):
                continue
            key = (s.kind, s.name, s.namespace)
            found.setdefault(key, [])
            how = f"create {resource}{'.' + group if group else ''}"
            if how not in found[key]:
                found[key].append(how)
            found[key].append("by " + g.describe())
    token = ResourceAttributes(
        "create", "serviceaccounts", "", namespace, "token", service_account
    )
    minters = [
        g
        for g in who_can(rbac, token)
        if not _system(g.subject.kind, g.subject.name, g.subject.namespace)
    ]
    rows: list[dict[str, object]] = []
    for (kind, name, ns), hows in sorted(found.items()):
        who = f"{kind} {ns + '/' if ns else ''}{name}"
        verbs = [h for h in hows if not h.startswith("by ")]
        by = [h[3:] for h in hows if h.startswith("by ")]
        rows.append({"subject": who, "can": verbs, "grantedBy": sorted(set(by))})
        report.add(
            Finding(
                code="KI-C020",
                severity=Severity.MEDIUM,
                tier="cluster",
                message=f"{who} can run pods in {namespace} and so use {role_label}",
                detail=", ".join(verbs) + f" (any pod may name serviceAccountName "
                f"{service_account})",
                where=who,
                granted_by="; ".join(sorted(set(by))),
                remediation=f"expected for the deployers of {namespace}; otherwise "
                "remove the binding, or move the workload to a namespace only its "
                "deployers can write",
            )
        )
    for g in minters:
        s = g.subject
        who = f"{s.kind} {s.namespace + '/' if s.namespace else ''}{s.name}"
        rows.append({"subject": who, "can": ["create serviceaccounts/token"]})
        report.add(
            Finding(
                code="KI-C021",
                severity=Severity.HIGH if irsa else Severity.LOW,
                tier="cluster",
                message=f"{who} can mint tokens for {namespace}/{service_account}",
                detail="create serviceaccounts/token"
                + (
                    f": with IRSA a token is enough to assume {role_label}"
                    if irsa
                    else " (Pod Identity needs a pod as well)"
                ),
                where=who,
                granted_by=g.describe(),
                remediation="grant serviceaccounts/token only to the components "
                "that need it (resourceNames)",
            )
        )
    report.workload["kubernetesOperators"] = rows
