"""ClusterRole aggregation and building an :class:`~policy.rbac.evaluator.RBACPolicy`.

Pure. Reproduces the clusterrole-aggregation controller
(``pkg/controller/clusterroleaggregation``): for a ClusterRole with an
``aggregationRule``, each selector in order lists the ClusterRoles it matches
(sorted by name, the role itself skipped) and appends each of their rules not
already present (deep equality; similar rules are not merged). The role's own
hand-written rules are replaced by that union. An evaluator that reads objects
from files must run this itself, to a fixed point, since aggregated roles may
select other aggregated roles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from policy.rbac.evaluator import RBACPolicy
from policy.rbac.model import Binding, ClusterRole, PolicyRule, Role

__all__ = ["aggregate_cluster_roles", "build_rbac_policy"]

# Upper bound on passes: each pass can only propagate rules one aggregation level
# further, so depth <= number of ClusterRoles; a cycle is cut off here.
_EXTRA_PASSES = 2


def _aggregate_one(
    role: ClusterRole, current: dict[str, ClusterRole]
) -> tuple[PolicyRule, ...]:
    rules: list[PolicyRule] = []
    seen: set[PolicyRule] = set()
    for selector in role.aggregation or ():
        for name in sorted(current):
            other = current[name]
            if name == role.name or not selector.matches(dict(other.labels)):
                continue
            for rule in other.rules:
                if rule not in seen:
                    seen.add(rule)
                    rules.append(rule)
    return tuple(rules)


def aggregate_cluster_roles(cluster_roles: Sequence[ClusterRole]) -> list[ClusterRole]:
    """Compute the rules of every aggregated ClusterRole, iterating to a fixed point.

    Args:
        cluster_roles: ClusterRoles as written (aggregated ones may carry stale rules).

    Returns:
        The same ClusterRoles, in input order, with aggregated rules computed.
    """
    current = {c.name: c for c in cluster_roles}
    aggregated = sorted(n for n, c in current.items() if c.aggregation is not None)
    for _ in range(len(aggregated) + _EXTRA_PASSES):
        changed = False
        for name in aggregated:
            role = current[name]
            rules = _aggregate_one(role, current)
            if rules != role.rules:
                current[name] = ClusterRole(
                    role.name, rules, role.labels, role.aggregation
                )
                changed = True
        if not changed:
            break
    return [current[c.name] for c in cluster_roles]


def build_rbac_policy(
    roles: Iterable[Role],
    cluster_roles: Iterable[ClusterRole],
    bindings: Iterable[Binding],
) -> RBACPolicy:
    """Build an indexed policy with ClusterRole aggregation applied.

    Args:
        roles: Roles.
        cluster_roles: ClusterRoles as written.
        bindings: RoleBindings and ClusterRoleBindings, in evaluation order.

    Returns:
        The policy.
    """
    return RBACPolicy(roles, aggregate_cluster_roles(list(cluster_roles)), bindings)
