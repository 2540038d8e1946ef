"""Compiled policy types: statements, matchers and policies (immutable values).

``policy.iam.model`` builds them from JSON; ``policy.iam.evaluator`` evaluates them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from authenticator.findings import Finding
from policy.iam.conditions import ConditionClause
from policy.iam.variables import Template

__all__ = [
    "ActionMatcher",
    "CompiledPolicy",
    "Effect",
    "PolicyKind",
    "PrincipalSpec",
    "ResourcePattern",
    "Statement",
]


class PolicyKind(enum.Enum):
    """The policy types of the evaluation logic."""

    IDENTITY = "identity"
    RESOURCE = "resource"
    TRUST = "trust"
    BOUNDARY = "boundary"
    SESSION = "session"
    SCP = "scp"
    RCP = "rcp"

    @property
    def takes_principal(self) -> bool:
        """True for policy types that carry Principal/NotPrincipal."""
        return self in (PolicyKind.RESOURCE, PolicyKind.TRUST, PolicyKind.RCP)


class Effect(enum.Enum):
    """A statement's effect."""

    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True, slots=True)
class ActionMatcher:
    """Compiled Action/NotAction patterns (case-insensitive).

    Attributes:
        patterns: As written.
        exact: Lower-cased patterns without wildcards.
        globs: Compiled wildcard patterns.
        services: Lower-cased service prefixes without wildcards, or None when
            some pattern's prefix has a wildcard (the statement is then indexed
            under every service).
    """

    patterns: tuple[str, ...]
    exact: frozenset[str]
    globs: tuple[re.Pattern[str], ...]
    services: frozenset[str] | None

    def matches(self, action: str) -> bool:
        """Whether some pattern matches an action.

        Args:
            action: ``service:Action`` (any case).

        Returns:
            True when a pattern matches, case-insensitively.
        """
        low = action.lower()
        return low in self.exact or any(g.fullmatch(low) for g in self.globs)


@dataclass(frozen=True, slots=True)
class ResourcePattern:
    """One Resource/NotResource entry.

    Attributes:
        raw: As written.
        template: Parsed for policy variables.
        compiled: The pre-compiled matcher when the pattern has no variables
            (None for ``*``, which matches everything).
        match_all: True for ``*``.
    """

    raw: str
    template: Template
    compiled: re.Pattern[str] | None
    match_all: bool


@dataclass(frozen=True, slots=True)
class PrincipalSpec:
    """A Principal/NotPrincipal element.

    Attributes:
        wildcard: ``"*"`` or ``{"AWS": "*"}``: everyone, anonymous included.
        aws: Account IDs and ARNs under ``AWS``.
        service: Service principals.
        federated: Identity-provider principals.
        canonical: S3 canonical user IDs.
    """

    wildcard: bool = False
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Statement:
    """One compiled statement.

    Attributes:
        index: Position in the policy (0 for a single-object Statement).
        sid: The Sid, if any.
        pointer: ``/Statement/<i> (Sid "...")`` for errors and traces.
        effect: Allow or Deny.
        actions: The Action or NotAction patterns.
        not_action: True when ``actions`` came from NotAction.
        resources: Resource or NotResource patterns; None when both are absent.
        not_resource: True for NotResource.
        principal: Principal or NotPrincipal; None when both are absent.
        not_principal: True for NotPrincipal.
        conditions: All clauses of the Condition block (ANDed).
    """

    index: int
    sid: str | None
    pointer: str
    effect: Effect
    actions: ActionMatcher
    not_action: bool
    resources: tuple[ResourcePattern, ...] | None
    not_resource: bool
    principal: PrincipalSpec | None
    not_principal: bool
    conditions: tuple[ConditionClause, ...]


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """A parsed, validated policy: compile once, evaluate many times.

    Attributes:
        name: The policy's name (for errors and traces).
        kind: The policy type.
        version: The Version element, or None.
        statements: The compiled statements, in document order.
        warnings: Validation warnings (``lint``).
        document: The source document, for round trips.
    """

    name: str
    kind: PolicyKind
    version: str | None
    statements: tuple[Statement, ...]
    warnings: tuple[Finding, ...] = ()
    document: Mapping[str, object] = field(default_factory=dict, compare=False)
    _by_service: Mapping[str, tuple[Statement, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _any_service: tuple[Statement, ...] = field(default=(), compare=False, repr=False)
    # Lower-cased action -> (Deny, Allow) statements whose Action/NotAction
    # matches it; filled on first sight of an action (``by_action``).
    _by_action: dict[str, tuple[tuple[Statement, ...], tuple[Statement, ...]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def candidates(self, service: str) -> tuple[Statement, ...]:
        """Statements whose Action/NotAction can concern ``service``.

        Args:
            service: The lower-cased service prefix of the request's action.

        Returns:
            The statements to test, in document order.
        """
        return self._by_service.get(service, self._any_service)

    def by_action(
        self, action: str
    ) -> tuple[tuple[Statement, ...], tuple[Statement, ...]]:
        """The statements whose Action/NotAction matches ``action``, by effect.

        An index filled lazily, one entry per distinct action (bounded: cleared
        past ``ACTION_INDEX_LIMIT`` entries); the decision-only path tests just
        these statements' other elements.

        Args:
            action: The request's action, lower-cased.

        Returns:
            (Deny statements, Allow statements), each in document order.
        """
        hit = self._by_action.get(action)
        if hit is None:
            matching = [
                st
                for st in self.candidates(action.split(":", 1)[0])
                if st.actions.matches(action) != st.not_action
            ]
            hit = (
                tuple(st for st in matching if st.effect is Effect.DENY),
                tuple(st for st in matching if st.effect is Effect.ALLOW),
            )
            if len(self._by_action) >= ACTION_INDEX_LIMIT:
                self._by_action.clear()
            self._by_action[action] = hit
        return hit


# Distinct actions remembered per policy by ``CompiledPolicy.by_action``.
ACTION_INDEX_LIMIT = 4096
