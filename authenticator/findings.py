"""The one finding and severity types shared by every lint and report (pure).

``kubeiam mappings lint`` (:mod:`authenticator.mapping_lint`), ``kubeiam policy
lint`` (:mod:`policy.iam.model`), ``kubeiam policy tiers``
(:mod:`policy.tiers`) and ``kubeiam policy paths`` (:mod:`policy.paths`) all
build :class:`Finding` values ranked by :class:`Severity`; each command keeps
its own JSON shape, rendered by the command from these fields.

This module sits in ``authenticator`` because that is the one package every
other may import (``policy`` imports nothing else from below); it imports
nothing first-party, so any module may use it without a cycle.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Finding", "Severity"]


class Severity(enum.Enum):
    """How much a finding matters, most severe first (the enum's order)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for critical ... 4 for info: sort by it, most severe first."""
        return _RANK[self]

    def at_least(self, threshold: Severity) -> bool:
        """Whether this severity is ``threshold`` or more severe (``--fail-on``).

        Args:
            threshold: The least severe level that counts.

        Returns:
            True when ``self`` ranks at or above ``threshold``.
        """
        return self.rank <= threshold.rank


_RANK = {s: i for i, s in enumerate(Severity)}


@dataclass(frozen=True, slots=True)
class Finding:
    """One result worth a human's attention.

    Attributes:
        severity: How much it matters.
        code: A stable identifier: a kebab-case code (``system-masters``) or
            a tier finding ID (``KI-T001``); the JSON ``code`` or ``id``.
        where: What it is about: a mapping entry (``aws-auth.yaml:
            mapRoles[2]``), a JSON pointer into a policy, or a tier finding's
            subject ARN; the JSON ``where``, ``pointer`` or ``subject``.
        message: What is wrong, in one line (the JSON ``message`` or ``title``).
        detail: Why, at more length (tiers).
        tier: The tier or area the finding belongs to (tiers).
        granted_by: The statement that allows what should not be (tiers).
        denied_by: The statement that denies what should be allowed (tiers).
        remediation: A concrete fix (tiers).
    """

    severity: Severity
    code: str
    where: str
    message: str
    detail: str = ""
    tier: str = ""
    granted_by: str = ""
    denied_by: str = ""
    remediation: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """The identity of a finding across runs: ``(code, where)`` (baselines)."""
        return self.code, self.where
