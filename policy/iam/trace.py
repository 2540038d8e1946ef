"""Explain traces: how each statement fared and why a decision was reached (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from policy.iam.conditions import ClauseResult
from policy.iam.principals import Grant, PrincipalInfo
from policy.iam.request import Decision

__all__ = ["EvaluationResult", "StatementResult", "Trace"]


@dataclass(frozen=True, slots=True)
class StatementResult:
    """How one statement fared against the request.

    Attributes:
        policy_type: identity, resource, boundary, session, scp or rcp.
        policy: The policy's name.
        statement: The statement's pointer (index and Sid).
        index: The statement's index.
        sid: The Sid.
        effect: Allow or Deny.
        applies: True when every element matched.
        failed: The first element that did not match (Action, Resource,
            Principal, Condition), or None.
        conditions: Clause results (all of them in explain mode).
        grant: For resource policies: how the Principal named the caller.
        level: For SCPs/RCPs: the level index.
    """

    policy_type: str
    policy: str
    statement: str
    index: int
    sid: str | None
    effect: str
    applies: bool
    failed: str | None
    conditions: tuple[ClauseResult, ...] = ()
    grant: Grant | None = None
    level: int | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        out: dict[str, object] = {
            "policyType": self.policy_type,
            "policy": self.policy,
            "statement": self.index,
            "sid": self.sid,
            "effect": self.effect,
            "applies": self.applies,
        }
        if self.failed:
            out["failed"] = self.failed
        if self.conditions:
            out["conditions"] = [c.to_json() for c in self.conditions]
        if self.grant is not None:
            out["principalMatch"] = self.grant.name.lower()
        if self.level is not None:
            out["level"] = self.level
        return out


@dataclass(frozen=True, slots=True)
class Trace:
    """Why a decision was reached.

    Attributes:
        reason: One sentence.
        verdicts: Policy type -> Allowed / ImplicitlyDenied / ExplicitlyDenied /
            NotApplicable.
        decisive: The statements that decided.
        statements: Every statement whose action matched (explain mode) or that
            applied.
        principal: The classified principal.
        resource_account: The resource's account as used.
        cross_account: True when principal and resource accounts differ.
        missing_keys: Condition keys tested but absent from the context.
    """

    reason: str
    verdicts: Mapping[str, str]
    decisive: tuple[StatementResult, ...]
    statements: tuple[StatementResult, ...]
    principal: PrincipalInfo
    resource_account: str | None
    cross_account: bool
    missing_keys: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (the ``explain`` object of ``policy simulate``)."""
        return {
            "reason": self.reason,
            "principal": {
                "arn": self.principal.arn,
                "type": self.principal.kind.value,
                "account": self.principal.account,
            },
            "resourceAccount": self.resource_account,
            "crossAccount": self.cross_account,
            "policyTypes": dict(self.verdicts),
            "decisive": [s.to_json() for s in self.decisive],
            "statements": [s.to_json() for s in self.statements],
            "missingKeys": list(self.missing_keys),
        }


class EvaluationResult:
    """A decision and its trace.

    The trace is built on first access when ``evaluate`` decided on its fast
    path (a decision alone never pays for the explanation).

    Attributes:
        decision: The decision.
        trace: The explanation.
    """

    __slots__ = ("_lazy", "_trace", "decision")

    def __init__(
        self,
        decision: Decision,
        trace: Trace | None,
        lazy: tuple[Callable[..., Trace], *tuple[object, ...]] | None = None,
    ) -> None:
        """A result with its trace, or with ``lazy`` = (build, *args) to build it.

        Args:
            decision: The decision.
            trace: The trace, or None when ``lazy`` builds it.
            lazy: ``(build, *args)``: the trace is ``build(*args)``, called on
                first access.
        """
        self.decision = decision
        self._trace = trace
        self._lazy = lazy

    @property
    def trace(self) -> Trace:
        """The explanation (computed once, on first access)."""
        trace = self._trace
        if trace is None:
            assert self._lazy is not None  # noqa: S101 - one of the two is set
            build, *args = self._lazy
            trace = build(*args)
            self._trace = trace
            self._lazy = None
        return trace

    @property
    def allowed(self) -> bool:
        """True when the decision is Allowed."""
        return self.decision is Decision.ALLOWED

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EvaluationResult):
            return NotImplemented
        return self.decision is other.decision and self.trace == other.trace

    def __hash__(self) -> int:
        return hash((self.decision, self.trace.reason))

    def __repr__(self) -> str:
        return f"EvaluationResult(decision={self.decision!r}, trace={self.trace!r})"
