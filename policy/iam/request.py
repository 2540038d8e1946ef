"""Inputs and outcome of an IAM evaluation: requests, policy sets, decisions (pure).

``Request`` normalises the request context (key names folded to lower case,
values to tuples of strings: a JSON list is a multi-valued key) and classifies
the principal. ``PolicySet`` gathers the compiled policies that take part in a
principal's requests; SCP and RCP lists are organisation levels.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from policy.errors import InvalidPolicyError
from policy.iam.keys import is_single_valued
from policy.iam.principals import PrincipalInfo, parse_principal
from policy.iam.statement import CompiledPolicy

__all__ = ["NOT_APPLICABLE", "Decision", "Level", "PolicySet", "Request"]


class Decision(enum.Enum):
    """The outcome of an evaluation (docs/policy-semantics.md strings)."""

    ALLOWED = "Allowed"
    IMPLICITLY_DENIED = "ImplicitlyDenied"
    EXPLICITLY_DENIED = "ExplicitlyDenied"


NOT_APPLICABLE = "NotApplicable"


@dataclass(frozen=True, slots=True)
class Level:
    """One organization level (root, an OU, the account) of SCPs or RCPs.

    Attributes:
        policies: The policies attached at this level.
        name: The level's identifier (``orgIdentifier``), for traces.
    """

    policies: tuple[CompiledPolicy, ...]
    name: str = ""


def _levels(value: object) -> tuple[Level, ...]:
    if not value:
        return ()
    items: list[object] = list(value) if isinstance(value, Iterable) else [value]
    flat = [i for i in items if isinstance(i, CompiledPolicy)]
    if len(flat) == len(items):
        return (Level(tuple(flat)),)
    out: list[Level] = []
    for item in items:
        if isinstance(item, Level):
            out.append(item)
        elif isinstance(item, CompiledPolicy):
            out.append(Level((item,)))
        elif isinstance(item, Iterable):
            out.append(Level(_policies(item)))
        else:
            raise TypeError(f"not an SCP/RCP level: {item!r}")
    return tuple(out)


def _policies(value: object) -> tuple[CompiledPolicy, ...]:
    if value is None:
        return ()
    if isinstance(value, CompiledPolicy):
        return (value,)
    if isinstance(value, Iterable):
        items = list(value)
        out = tuple(p for p in items if isinstance(p, CompiledPolicy))
        if len(out) == len(items):
            return out
    raise TypeError(f"not a policy list: {value!r}")


@dataclass(frozen=True, slots=True)
class PolicySet:
    """The policies that take part in one principal's requests.

    Sequences are normalised to tuples; ``scps``/``rcps`` accept a flat list of
    policies (one level) or a list of levels (lists or ``Level``).

    Attributes:
        identity: The principal's identity policies (user, its groups, or role).
        resource: The resource-based (or trust) policy, if any.
        boundaries: The permissions boundary (several documents are one boundary).
        session: Session policies (inline and managed; together one session policy).
        scps: SCP levels of the principal's account (root -> OUs -> account).
        rcps: RCP levels of the resource's account.
    """

    identity: Sequence[CompiledPolicy] = ()
    resource: CompiledPolicy | None = None
    boundaries: Sequence[CompiledPolicy] = ()
    session: Sequence[CompiledPolicy] | CompiledPolicy | None = None
    scps: Sequence[object] = ()
    rcps: Sequence[object] = ()
    # (lower-cased action, resource) -> the statements of every policy type
    # that can apply to it (built by ``policy.iam.decide``, bounded).
    _by_action: dict[tuple[str, str], object] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "identity", _policies(self.identity))
        object.__setattr__(self, "boundaries", _policies(self.boundaries))
        object.__setattr__(self, "session", _policies(self.session))
        object.__setattr__(self, "scps", _levels(self.scps))
        object.__setattr__(self, "rcps", _levels(self.rcps))

    @property
    def scp_levels(self) -> tuple[Level, ...]:
        """The SCP levels (normalised)."""
        return cast("tuple[Level, ...]", self.scps)  # normalised in __post_init__

    @property
    def rcp_levels(self) -> tuple[Level, ...]:
        """The RCP levels (normalised)."""
        return cast("tuple[Level, ...]", self.rcps)  # normalised in __post_init__


def _context_values(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            out.append(str(item))
        else:
            raise InvalidPolicyError(
                "context values must be strings, numbers, booleans or lists of them",
                pointer="/request/context",
                policy="request",
            )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Request:
    """One authorization request.

    Attributes:
        principal: The caller (ARN, account ID, service principal, identity
            provider, ``{"Service": ...}``-style object, or None for anonymous).
        action: ``service:Action``.
        resource: The resource ARN, or ``*``.
        resource_account: The resource's account; default: from the ARN, else
            the principal's account.
        context: Condition keys -> one value or a list (a list is a set of
            values; key names are case-insensitive).
    """

    principal: object
    action: str
    resource: str = "*"
    resource_account: str | None = None
    context: Mapping[str, object] = field(default_factory=dict)
    _ctx: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _principal: PrincipalInfo = field(init=False, repr=False, compare=False)
    # What ``policy.iam.evaluate`` derives from the request alone (the context
    # AWS adds, the resource account), computed once on first evaluation.
    _derived: object = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.action, str) or ":" not in self.action:
            raise InvalidPolicyError(
                "action must be service:Action",
                pointer="/request/action",
                policy="request",
            )
        if not isinstance(self.resource, str) or not self.resource:
            raise InvalidPolicyError(
                "resource must be an ARN or *",
                pointer="/request/resource",
                policy="request",
            )
        if not isinstance(self.context, Mapping):
            raise InvalidPolicyError(
                "context must be an object",
                pointer="/request/context",
                policy="request",
            )
        ctx: dict[str, tuple[str, ...]] = {}
        for key, value in self.context.items():
            values = _context_values(value)
            if values is not None and len(values) > 1 and is_single_valued(str(key)):
                # Never coerce a set to one value (docs/policy-semantics.md).
                raise InvalidPolicyError(
                    f"{key} is single-valued but was given {len(values)} values",
                    pointer=f"/request/context/{key}",
                    policy="request",
                )
            if values is not None:
                ctx[str(key).lower()] = values
        object.__setattr__(self, "_ctx", ctx)
        object.__setattr__(
            self, "_principal", parse_principal(self.principal, action=self.action)
        )

    @property
    def principal_info(self) -> PrincipalInfo:
        """The classified principal."""
        return self._principal
