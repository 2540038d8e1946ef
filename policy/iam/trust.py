"""Who may assume a role, answered by the IAM engine from its trust policy (pure).

For each principal a trust policy names in an ``Allow`` statement (``AWS``
accounts and ARNs, ``*``, ``Federated`` providers, ``Service`` principals, and
everyone for ``NotPrincipal``) one probe request goes through
:func:`policy.iam.evaluator.evaluate` with the trust policy as the resource
policy: ``sts:AssumeRole`` (``sts:AssumeRoleWithWebIdentity`` or
``sts:AssumeRoleWithSAML`` for identity providers). So ``Deny`` statements,
``NotAction``, action wildcards and conditions count as AWS counts them:

* an ``Allow`` that applies: the principal may assume the role;
* an ``Allow`` that fails only on condition keys the probe cannot know (the
  caller's ``sts:ExternalId``, an OIDC ``sub``, ``aws:PrincipalOrgID``...): it
  may, when those keys hold (``conditional``, with the keys);
* otherwise (principal not named, a condition on a known key fails, an
  explicit ``Deny``): it may not.

Naming an account only delegates to that account's identity policies; the
trust side of that question is what is answered here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from policy.errors import InvalidPolicyError
from policy.iam.evaluator import evaluate
from policy.iam.model import compile_policy
from policy.iam.request import Decision, PolicySet, Request
from policy.iam.statement import Effect, PrincipalSpec
from policy.iam.trace import StatementResult

__all__ = ["PROBE_NAME", "TrustAnswer", "who_can_assume"]

# The role name of the probe principal for "*" and account principals.
PROBE_NAME = "kubeiam-trust-probe"
# An account no trust policy names, for "*" and NotPrincipal.
_ANY_ACCOUNT = "000000000000"


@dataclass(frozen=True, slots=True)
class TrustAnswer:
    """Who may assume a role.

    Attributes:
        people: Principals other than AWS services that may assume it, as
            written (``AWS:arn:...``, ``AWS:*``, ``Federated:...``).
        conditional: Principals that may assume it only when condition keys
            hold: ``(principal, keys)``.
        services: Service principals that may assume it (``Service:...``).
    """

    people: tuple[str, ...]
    conditional: tuple[tuple[str, tuple[str, ...]], ...]
    services: tuple[str, ...]


def _probes(
    spec: PrincipalSpec | None, not_principal: bool, role_arn: str, named: list[str]
) -> list[tuple[str, list[object], str]]:
    """(label, candidate principals, action) for each principal a statement names.

    ``*`` and ``NotPrincipal`` are probed from another account, from the role's
    own account and as each principal ARN the statement's conditions name; an
    account as a principal of that account.
    """
    partition, account = role_arn.split(":")[1], role_arn.split(":")[4]

    def in_account(acct: str) -> str:
        return f"arn:{partition}:iam::{acct}:role/{PROBE_NAME}"

    anyone: list[object] = [in_account(_ANY_ACCOUNT), in_account(account), *named]
    if not_principal or spec is None:
        return [("NotPrincipal (everyone else)", anyone, "sts:AssumeRole")]
    if spec.wildcard:
        return [("AWS:*", anyone, "sts:AssumeRole")]
    out: list[tuple[str, list[object], str]] = []
    for value in spec.aws:
        if value == "*":
            out.append(("AWS:*", anyone, "sts:AssumeRole"))
        elif value.isdigit() or value.endswith(":root"):
            acct = value if value.isdigit() else value.split(":")[4]
            out.append((f"AWS:{value}", [in_account(acct)], "sts:AssumeRole"))
        else:
            out.append((f"AWS:{value}", [value.replace("*", "x")], "sts:AssumeRole"))
    for value in spec.federated:
        action = (
            "sts:AssumeRoleWithSAML"
            if ":saml-provider/" in value
            else "sts:AssumeRoleWithWebIdentity"
        )
        out.append((f"Federated:{value}", [value], action))
    for value in spec.service:
        out.append((f"Service:{value}", [{"Service": value}], "sts:AssumeRole"))
    return out


def _named_principals(raw: object) -> list[str]:
    """ARNs a raw statement's conditions name under ``aws:PrincipalArn``."""
    condition = raw.get("Condition") if isinstance(raw, Mapping) else None
    out: list[str] = []
    for clause in condition.values() if isinstance(condition, Mapping) else ():
        if not isinstance(clause, Mapping):
            continue
        for key, values in clause.items():
            if str(key).lower() != "aws:principalarn":
                continue
            for value in values if isinstance(values, list) else [values]:
                if isinstance(value, str) and value.startswith("arn:"):
                    out.append(value.replace("*", "x").replace("?", "x"))
    return out


def who_can_assume(role_arn: str, document: Mapping[str, object]) -> TrustAnswer:
    """Ask the IAM engine who may assume ``role_arn`` under its trust policy.

    Args:
        role_arn: The role's ARN.
        document: The trust policy (``AssumeRolePolicyDocument``), parsed.

    Returns:
        Who may assume the role, and who may under conditions.

    Raises:
        InvalidPolicyError: The trust policy or the role ARN is invalid.
    """
    if role_arn.count(":") < 5:
        raise InvalidPolicyError(f"{role_arn!r} is not a role ARN")
    trust = compile_policy(document, name=role_arn, kind="trust")
    policies = PolicySet(resource=trust)
    raw = document.get("Statement")
    raw_statements = raw if isinstance(raw, list) else [raw]
    people: list[str] = []
    services: list[str] = []
    conditional: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()
    for statement in trust.statements:
        if statement.effect is not Effect.ALLOW:
            continue
        named = _named_principals(raw_statements[statement.index])
        for label, candidates, action in _probes(
            statement.principal, statement.not_principal, role_arn, named
        ):
            if label in seen:
                continue
            seen.add(label)
            kind = services if label.startswith("Service:") else people
            keys: tuple[str, ...] = ()
            for principal in candidates:
                answer = _ask(policies, Request(principal, action, role_arn))
                if isinstance(answer, bool):
                    kind.append(label)
                    break
                keys = keys or answer
            else:
                if keys:
                    conditional.append((label, keys))
    return TrustAnswer(tuple(people), tuple(conditional), tuple(services))


def _ask(policies: PolicySet, request: Request) -> bool | tuple[str, ...]:
    """True when the trust policy lets the probe assume the role, else the
    condition keys that would have to hold (empty: it may not)."""
    result = evaluate(policies, request)
    if result.decision is Decision.EXPLICITLY_DENIED:
        return ()
    allows = [
        s
        for s in result.trace.statements
        if s.policy_type == "resource" and s.effect == "Allow"
    ]
    if result.allowed or any(s.applies for s in allows):
        return True
    return _missing_only(allows)


def _missing_only(allows: list[StatementResult]) -> tuple[str, ...]:
    """The keys of the first Allow that failed only on absent condition keys."""
    for s in allows:
        if s.failed != "Condition":
            continue
        false = [c for c in s.conditions if not c.result]
        if false and all(c.missing for c in false):
            return tuple(sorted({c.key for c in false}))
    return ()
