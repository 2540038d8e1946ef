"""The RBAC escalation comparator: does one set of rules cover another.

Pure. Reproduces ``k8s.io/component-helpers/auth/rbac/validation``
(``Covers``, ``BreakdownRule``, ``ruleCovers``) and the resolver half of
``ConfirmNoEscalation`` (``pkg/registry/rbac/validation/rule.go``): each
requested rule is split into atomic tuples (one group, resource, verb and
resource name; non-resource rules into (URL, verb)), and each tuple must be
covered by a single owner rule. Enumeration never covers a wildcard.
"""

from __future__ import annotations

from collections.abc import Sequence

from policy.rbac.evaluator import RBACPolicy, rules_for
from policy.rbac.model import PolicyRule, UserInfo

__all__ = [
    "breakdown_rule",
    "confirm_no_escalation",
    "covers",
    "non_resource_url_covers",
]

_ALL = "*"


def breakdown_rule(rule: PolicyRule) -> list[PolicyRule]:
    """Split a rule into one-verb/group/resource/name rules (``BreakdownRule``).

    Args:
        rule: The rule.

    Returns:
        The atomic rules; non-resource URLs combine only with verbs.
    """
    out: list[PolicyRule] = []
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                if rule.resource_names:
                    out.extend(
                        PolicyRule((verb,), (group,), (resource,), (name,))
                        for name in rule.resource_names
                    )
                else:
                    out.append(PolicyRule((verb,), (group,), (resource,)))
    for url in rule.non_resource_urls:
        out.extend(PolicyRule((verb,), non_resource_urls=(url,)) for verb in rule.verbs)
    return out


def _resources_cover(owner: Sequence[str], wanted: Sequence[str]) -> bool:
    if _ALL in owner or all(w in owner for w in wanted):
        return True
    for path in wanted:
        if path in owner:
            continue
        if "/" not in path:
            return False
        if "*/" + path.split("/", 1)[1] not in owner:
            return False
    return True


def non_resource_url_covers(owner: str, wanted: str) -> bool:
    """Whether an owner URL covers a requested one (``nonResourceURLCovers``).

    Args:
        owner: The owner rule's URL (a trailing ``*`` is a prefix match).
        wanted: The requested URL.

    Returns:
        True on equality or a prefix match.
    """
    return owner == wanted or (
        owner.endswith("*") and wanted.startswith(owner.rstrip("*"))
    )


def _rule_covers(owner: PolicyRule, sub: PolicyRule) -> bool:
    verbs = _ALL in owner.verbs or all(v in owner.verbs for v in sub.verbs)
    groups = _ALL in owner.api_groups or all(
        g in owner.api_groups for g in sub.api_groups
    )
    resources = _resources_cover(owner.resources, sub.resources)
    urls = all(
        any(non_resource_url_covers(o, w) for o in owner.non_resource_urls)
        for w in sub.non_resource_urls
    )
    if sub.resource_names:
        names = not owner.resource_names or all(
            n in owner.resource_names for n in sub.resource_names
        )
    else:
        names = not owner.resource_names
    return verbs and groups and resources and names and urls


def covers(
    owner_rules: Sequence[PolicyRule], servant_rules: Sequence[PolicyRule]
) -> tuple[bool, list[PolicyRule]]:
    """Whether ``owner_rules`` cover ``servant_rules`` (upstream ``Covers``).

    Args:
        owner_rules: Rules held.
        servant_rules: Rules requested.

    Returns:
        (covered, the atomic rules left uncovered).
    """
    uncovered = [
        sub
        for rule in servant_rules
        for sub in breakdown_rule(rule)
        if not any(_rule_covers(owner, sub) for owner in owner_rules)
    ]
    return not uncovered, uncovered


def compact_rules(rules: Sequence[PolicyRule]) -> list[PolicyRule]:
    """Merge rules that differ only in their verbs (as upstream's ``CompactRules``).

    Args:
        rules: Usually the atomic rules :func:`covers` left uncovered.

    Returns:
        Fewer rules with the same meaning, in first-seen order.
    """
    merged: dict[tuple[tuple[str, ...], ...], list[str]] = {}
    for r in rules:
        key = (r.api_groups, r.resources, r.resource_names, r.non_resource_urls)
        verbs = merged.setdefault(key, [])
        verbs.extend(v for v in r.verbs if v not in verbs)
    return [PolicyRule(tuple(v), g, res, n, u) for (g, res, n, u), v in merged.items()]


def confirm_no_escalation(
    policy: RBACPolicy, user: UserInfo, namespace: str, rules: Sequence[PolicyRule]
) -> tuple[bool, list[PolicyRule]]:
    """Whether ``user`` holds every rule it grants (``ConfirmNoEscalation``).

    Held rules come from the RBAC resolver only: ClusterRoleBindings plus the
    RoleBindings of ``namespace``. (The API server also lets ``system:masters``
    and holders of the ``escalate``/``bind`` verbs through; callers check those.)

    Args:
        policy: The RBAC objects.
        user: The user creating or updating a role or binding.
        namespace: The namespace of the object (``""`` for cluster-scoped).
        rules: The rules of the new role, or of the role a binding references.

    Returns:
        (no escalation, the atomic rules not held).
    """
    held, _errors = rules_for(policy, user, namespace)
    return covers([rule for _grant, rule in held], rules)
