"""Baselines for ``kubeiam policy tiers`` in CI, and resource-policy inputs (pure).

A baseline lists accepted findings by ``id`` and ``subject`` (``*`` for any
subject) with the ``reason`` they are accepted; accepted findings move to
``suppressed`` and no longer count for ``--fail-on``. Entries that match
nothing are reported as ``unusedSuppressions`` so a baseline does not rot.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from policy.errors import InvalidPolicyError, describe_parse_error
from policy.iam.model import compile_policy
from policy.iam.statement import CompiledPolicy
from policy.tiers.model import TierReport

__all__ = [
    "apply_baseline",
    "baseline_document",
    "parse_baseline",
    "resource_policy_document",
]


def parse_baseline(doc: object, where: str = "baseline") -> list[tuple[str, str, str]]:
    """Parse a baseline document.

    Args:
        doc: ``{"suppressions": [{"id", "subject", "reason"}, ...]}``.
        where: The file, for errors.

    Returns:
        (id, subject, reason) triples.

    Raises:
        InvalidPolicyError: Wrong shape, or an entry without id, subject or reason.
    """
    if not isinstance(doc, Mapping) or not isinstance(doc.get("suppressions"), list):
        raise InvalidPolicyError("needs a suppressions list", policy=where)
    out = []
    for i, item in enumerate(doc["suppressions"]):
        at = f"{where} suppressions[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidPolicyError("must be an object", policy=at)
        fields = [item.get(k) for k in ("id", "subject", "reason")]
        if not all(isinstance(f, str) and f.strip() for f in fields):
            raise InvalidPolicyError(
                "needs id, subject and reason (non-empty strings)", policy=at
            )
        fid, subject, reason = (str(f) for f in fields)
        out.append((fid, subject, reason))
    return out


def apply_baseline(report: TierReport, entries: list[tuple[str, str, str]]) -> None:
    """Move accepted findings to ``report.suppressed``.

    Args:
        report: The report (changed in place).
        entries: From :func:`parse_baseline`.
    """
    used: set[int] = set()
    kept = []
    for f in report.findings:
        hit = next(
            (
                i
                for i, (fid, subject, _r) in enumerate(entries)
                if fid == f.code and subject in ("*", f.where)
            ),
            None,
        )
        if hit is None:
            kept.append(f)
        else:
            used.add(hit)
            report.suppressed.append((f, entries[hit][2]))
    report.findings = kept
    report.unused_suppressions = [
        (fid, subject) for i, (fid, subject, _r) in enumerate(entries) if i not in used
    ]


def baseline_document(report: TierReport, reason: str) -> dict[str, object]:
    """A baseline accepting every current finding.

    Args:
        report: The report.
        reason: The reason written on every entry.

    Returns:
        The document (write it as JSON or YAML).
    """
    return {
        "suppressions": [
            {"id": f.code, "subject": f.where, "reason": reason, "title": f.message}
            for f in report.sorted_findings()
        ]
    }


def resource_policy_document(doc: object, where: str) -> tuple[str, CompiledPolicy]:
    """A resource policy from a service's get-*-policy output or a bare document.

    Accepts ``aws ecr get-repository-policy`` (``policyText``), ``aws kms
    get-key-policy`` (``Policy``), ``aws secretsmanager get-resource-policy``
    (``ResourcePolicy`` and ``ARN``) or the policy document itself.

    Args:
        doc: The decoded output.
        where: The file, for errors.

    Returns:
        (ARN named by the output or "", compiled policy).

    Raises:
        InvalidPolicyError: No policy in it, or not a valid policy.
    """
    if not isinstance(doc, Mapping):
        raise InvalidPolicyError("must be an object", policy=where)
    arn = doc.get("ARN") if isinstance(doc.get("ARN"), str) else ""
    body: object = doc
    for key in ("policyText", "Policy", "ResourcePolicy"):
        if key in doc:
            body = doc[key]
            break
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise InvalidPolicyError(
                f"the policy text is not JSON: {describe_parse_error(exc)}",
                policy=where,
            ) from exc
    if not isinstance(body, Mapping) or "Statement" not in body:
        raise InvalidPolicyError(
            "no policy document (policyText, Policy, ResourcePolicy or Statement)",
            policy=where,
        )
    return str(arn), compile_policy(dict(body), name=where, kind="resource")
