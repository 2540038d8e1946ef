"""The shared Finding and Severity (authenticator.findings)."""

from __future__ import annotations

import pytest

from authenticator.findings import Finding, Severity


class TestSeverity:
    """One ladder, most severe first, and the ``--fail-on`` threshold."""

    def test_order_is_most_severe_first(self) -> None:
        """critical > high > medium > low > info, ranked 0..4."""
        assert [s.value for s in sorted(Severity, key=lambda s: s.rank)] == [
            "critical",
            "high",
            "medium",
            "low",
            "info",
        ]
        assert [s.rank for s in Severity] == [0, 1, 2, 3, 4]

    @pytest.mark.parametrize(
        ("severity", "threshold", "counts"),
        [
            (Severity.CRITICAL, Severity.HIGH, True),
            (Severity.HIGH, Severity.HIGH, True),
            (Severity.MEDIUM, Severity.HIGH, False),
            (Severity.INFO, Severity.INFO, True),
            (Severity.HIGH, Severity.CRITICAL, False),
            (Severity.LOW, Severity.MEDIUM, False),
            (Severity.MEDIUM, Severity.LOW, True),
        ],
    )
    def test_at_least(
        self, severity: Severity, threshold: Severity, counts: bool
    ) -> None:
        """A finding counts for ``--fail-on X`` when it is X or more severe."""
        assert severity.at_least(threshold) is counts


class TestFinding:
    """The value every lint and report builds."""

    def test_key_is_code_and_where(self) -> None:
        """The baseline key is (code, where), whatever else differs."""
        a = Finding(Severity.HIGH, "KI-T001", "arn:aws:iam::1:role/r", "title")
        b = Finding(
            Severity.LOW, "KI-T001", "arn:aws:iam::1:role/r", "other", tier="task"
        )
        assert a.key == b.key == ("KI-T001", "arn:aws:iam::1:role/r")
        assert a != b

    def test_optional_fields_default_empty(self) -> None:
        """Lint findings need only severity, code, where and message."""
        f = Finding(Severity.INFO, "c", "w", "m")
        assert (f.detail, f.tier, f.granted_by, f.denied_by, f.remediation) == (
            "",
            "",
            "",
            "",
            "",
        )
