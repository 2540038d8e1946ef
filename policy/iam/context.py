"""The request context both IAM evaluators derive before reading a policy (pure).

``policy.iam.evaluator.decide`` (the decision-only path) and
``policy.iam.traced.evaluate_traced`` (the explaining reference) share these
rules: the actions that are always allowed, the trust-policy actions, the
resource's account and the keys AWS adds to every request context
(docs/policy-semantics.md).
"""

from __future__ import annotations

from policy.iam.arnmatch import split_arn
from policy.iam.principals import PrincipalInfo, PrincipalKind
from policy.iam.request import Request

__all__ = [
    "ALWAYS_ALLOWED",
    "TRUST_ACTIONS",
    "derived_context",
    "resource_account_of",
]

TRUST_ACTIONS = frozenset(
    {
        "sts:assumerole",
        "sts:assumerolewithwebidentity",
        "sts:assumerolewithsaml",
        "sts:tagsession",
        "sts:setsourceidentity",
        "sts:setcontext",
    }
)
# Always allowed, even against an explicit deny (STS API reference).
ALWAYS_ALLOWED = frozenset({"sts:getcalleridentity"})


def resource_account_of(req: Request, p: PrincipalInfo) -> str | None:
    if req.resource_account:
        return req.resource_account
    parts = split_arn(req.resource)
    if parts is not None and parts[4]:
        return parts[4]
    return p.account


def derived_context(
    req: Request, p: PrincipalInfo, resource_account: str | None
) -> dict[str, tuple[str, ...]]:
    """Keys AWS puts in every request context, unless the case gives them."""
    derived: dict[str, tuple[str, ...]] = {}
    if p.kind.is_iam:
        if p.principal_arn:
            derived["aws:principalarn"] = (p.principal_arn,)
        if p.account:
            derived["aws:principalaccount"] = (p.account,)
        # A role acts through sessions: its type is AssumedRole (global condition keys).
        ptype = "AssumedRole" if p.kind is PrincipalKind.ROLE else p.kind.value
        derived["aws:principaltype"] = (ptype,)
        if p.kind is PrincipalKind.USER and p.name:
            derived["aws:username"] = (p.name,)
    if p.kind is PrincipalKind.SERVICE:
        derived["aws:principalservicename"] = (p.arn,)
    if p.kind is not PrincipalKind.ANONYMOUS:
        derived["aws:principalisawsservice"] = (
            "true" if p.kind is PrincipalKind.SERVICE else "false",
        )
    if resource_account and (req.resource_account or req.resource != "*"):
        derived["aws:resourceaccount"] = (resource_account,)
    derived.update(req._ctx)
    return derived
