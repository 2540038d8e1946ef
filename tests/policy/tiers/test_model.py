"""Tier findings as JSON: the shape and baseline keys stay as documented."""

from __future__ import annotations

from authenticator.findings import Finding, Severity
from policy.tiers.model import TierReport, finding_json


def test_finding_json_keeps_the_tier_shape() -> None:
    """id/subject (the baseline key), title, tier; grantedBy etc. only when set."""
    f = Finding(
        Severity.HIGH,
        "KI-T002",
        "arn:aws:iam::111122223333:role/app",
        "task role may pass any role",
        detail="iam:PassRole on *",
        tier="task",
        granted_by="inline:p statement 0",
    )
    assert finding_json(f) == {
        "id": "KI-T002",
        "severity": "high",
        "tier": "task",
        "title": "task role may pass any role",
        "detail": "iam:PassRole on *",
        "subject": "arn:aws:iam::111122223333:role/app",
        "grantedBy": "inline:p statement 0",
    }


def test_report_drops_duplicates_by_key_and_sorts_by_severity() -> None:
    """A second finding with the same (id, subject) is dropped; critical first."""
    report = TierReport(workload={})
    low = Finding(Severity.LOW, "KI-A001", "s", "low one", tier="application")
    report.add(low)
    report.add(Finding(Severity.HIGH, "KI-A001", "s", "same key", tier="task"))
    report.add(Finding(Severity.CRITICAL, "KI-T001", "s", "worst", tier="task"))
    assert [f.code for f in report.sorted_findings()] == ["KI-T001", "KI-A001"]
    assert report.findings[0] is low
    summary = report.to_json()["summary"]
    assert summary == {"critical": 1, "high": 0, "medium": 0, "low": 1, "info": 0}
