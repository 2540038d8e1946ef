"""Kubernetes RBAC, evaluated exactly as kube-apiserver's RBAC authorizer does.

Pure: every function takes the objects it needs and returns values. The rules
are those of ``plugin/pkg/auth/authorizer/rbac`` (``RuleAllows``),
``pkg/apis/rbac/v1/evaluation_helpers.go`` (verb, group, resource, name and
URL matching) and ``pkg/registry/rbac/validation/rule.go`` (which bindings
apply, subject matching, the "allowed by" reason). ClusterRole aggregation is
in :mod:`policy.rbac.aggregate`; the escalation comparator (``Covers``) in
:mod:`policy.rbac.covers`.

Typical use::

    policy = load_rbac_paths([Path("rbac/")]).policy()   # aggregated, indexed
    attrs = ResourceAttributes(verb="get", resource="pods", namespace="dev")
    result = evaluate_rbac(policy, UserInfo("alice", ("dev",)), attrs)
    result.decision is AuthzDecision.ALLOW

Absence of a grant is a value (``AuthzDecision.NO_OPINION``), not an error:
RBAC never denies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from policy.rbac.model import (
    RBAC_GROUP,
    Attributes,
    AuthzDecision,
    Binding,
    ClusterRole,
    Grant,
    NonResourceAttributes,
    PolicyRule,
    RBACResult,
    ResourceAttributes,
    Role,
    RoleRef,
    Subject,
    UserInfo,
    service_account_username,
)

__all__ = [
    "RBACPolicy",
    "applies_to",
    "evaluate_rbac",
    "rule_allows",
    "rules_for",
    "who_can",
]

# rbacv1.VerbAll / APIGroupAll / ResourceAll / NonResourceAll are all "*".
_ALL = "*"

# --- rule matching (evaluation_helpers.go) ----------------------------------------


def _resource_matches(rule: PolicyRule, combined: str, subresource: str) -> bool:
    for res in rule.resources:
        if res in (_ALL, combined):
            return True
        # "*/<sub>" matches that subresource of every resource; "pods/*" is literal.
        if subresource and res == "*/" + subresource:
            return True
    return False


def _url_matches(rule: PolicyRule, path: str) -> bool:
    for url in rule.non_resource_urls:
        if url in (_ALL, path):
            return True
        # A trailing "*" is a prefix match on the URL minus ALL trailing "*"s.
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: PolicyRule) -> bool:
    """Whether one rule allows a request (upstream ``RuleAllows``).

    Args:
        attrs: The request.
        rule: The rule.

    Returns:
        True when verb, group, resource(/subresource) and name all match, or for a
        non-resource request verb and URL.
    """
    if _ALL not in rule.verbs and attrs.verb not in rule.verbs:
        return False
    if isinstance(attrs, NonResourceAttributes):
        return _url_matches(rule, attrs.path)
    if _ALL not in rule.api_groups and attrs.group not in rule.api_groups:
        return False
    combined = (
        f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    )
    if not _resource_matches(rule, combined, attrs.subresource):
        return False
    # resourceNames: empty = every name; an empty requested name never matches a list.
    return not rule.resource_names or attrs.name in rule.resource_names


# --- which rules apply (rule.go) -------------------------------------------------


def _subject_applies(user: UserInfo, subject: Subject, namespace: str) -> bool:
    if subject.kind == "User":
        return user.name == subject.name
    if subject.kind == "Group":
        return subject.name in user.groups
    if subject.kind == "ServiceAccount":
        # A RoleBinding's SA subject without namespace means the binding's namespace.
        sa_ns = subject.namespace or namespace
        return bool(sa_ns) and user.name == service_account_username(
            sa_ns, subject.name
        )
    return False


def applies_to(
    user: UserInfo, subjects: Sequence[Subject], namespace: str
) -> Subject | None:
    """The first subject of a binding that matches the user (upstream ``appliesTo``).

    Args:
        user: The requesting user.
        subjects: The binding's subjects.
        namespace: The RoleBinding's namespace, ``""`` for a ClusterRoleBinding.

    Returns:
        The matching subject, or None.
    """
    for subject in subjects:
        if _subject_applies(user, subject, namespace):
            return subject
    return None


@dataclass(slots=True)
class _RuleIndex:
    """A role's rules indexed by (verb, group, resource); ``*`` entries kept as keys."""

    by_key: dict[tuple[str, str, str], list[PolicyRule]] = field(default_factory=dict)
    by_url_verb: dict[str, list[PolicyRule]] = field(default_factory=dict)

    @classmethod
    def build(cls, rules: Iterable[PolicyRule]) -> _RuleIndex:
        index = cls()
        for rule in rules:
            for verb in rule.verbs:
                for group in rule.api_groups:
                    for res in rule.resources:
                        index.by_key.setdefault((verb, group, res), []).append(rule)
                if rule.non_resource_urls:
                    index.by_url_verb.setdefault(verb, []).append(rule)
        return index

    def allows(self, attrs: Attributes) -> bool:
        verbs = (attrs.verb, _ALL)
        if isinstance(attrs, NonResourceAttributes):
            return any(
                _url_matches(rule, attrs.path)
                for verb in verbs
                for rule in self.by_url_verb.get(verb, ())
            )
        combined = (
            f"{attrs.resource}/{attrs.subresource}"
            if attrs.subresource
            else attrs.resource
        )
        resources = (
            (combined, _ALL, "*/" + attrs.subresource)
            if attrs.subresource
            else (combined, _ALL)
        )
        for verb in verbs:
            for group in (attrs.group, _ALL):
                for res in resources:
                    for rule in self.by_key.get((verb, group, res), ()):
                        if not rule.resource_names or attrs.name in rule.resource_names:
                            return True
        return False


class RBACPolicy:
    """A resolved set of RBAC objects with aggregation applied and lookup indexes.

    Build it with :func:`build_rbac_policy` (in :mod:`policy.rbac.aggregate`),
    which computes aggregated ClusterRoles first. Bindings keep their input
    order, which decides which binding an "allowed by" reason names.

    Args:
        roles: Roles.
        cluster_roles: ClusterRoles (aggregated rules already computed).
        bindings: RoleBindings and ClusterRoleBindings.
    """

    def __init__(
        self,
        roles: Iterable[Role],
        cluster_roles: Iterable[ClusterRole],
        bindings: Iterable[Binding],
    ) -> None:
        self.roles: dict[tuple[str, str], Role] = {
            (r.namespace, r.name): r for r in roles
        }
        self.cluster_roles: dict[str, ClusterRole] = {c.name: c for c in cluster_roles}
        all_bindings = list(bindings)
        self.cluster_role_bindings: list[Binding] = [
            b for b in all_bindings if not b.namespace
        ]
        self.role_bindings: dict[str, list[Binding]] = {}
        for b in all_bindings:
            if b.namespace:
                self.role_bindings.setdefault(b.namespace, []).append(b)
        self._role_index: dict[tuple[str, str, str], _RuleIndex] = {}
        # Subject indexes: username (User and SA subjects) / group -> positions.
        self._crb_users, self._crb_groups = self._index_subjects(
            self.cluster_role_bindings, ""
        )
        self._rb_index = {
            ns: self._index_subjects(items, ns)
            for ns, items in self.role_bindings.items()
        }

    @staticmethod
    def _index_subjects(
        bindings: Sequence[Binding], namespace: str
    ) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        users: dict[str, list[int]] = {}
        groups: dict[str, list[int]] = {}
        for pos, binding in enumerate(bindings):
            for s in binding.subjects:
                if s.kind == "User":
                    users.setdefault(s.name, []).append(pos)
                elif s.kind == "Group":
                    groups.setdefault(s.name, []).append(pos)
                elif s.kind == "ServiceAccount" and (s.namespace or namespace):
                    key = service_account_username(s.namespace or namespace, s.name)
                    users.setdefault(key, []).append(pos)
        return users, groups

    def role_rules(self, ref: RoleRef, namespace: str) -> tuple[PolicyRule, ...] | None:
        """Resolve a roleRef (upstream ``GetRoleReferenceRules``).

        Args:
            ref: The binding's roleRef.
            namespace: The binding's namespace (``""`` for ClusterRoleBindings).

        Returns:
            The rules, or None for a dangling reference (legal; grants nothing).
        """
        if ref.kind == "ClusterRole":
            cr = self.cluster_roles.get(ref.name)
            return cr.rules if cr else None
        if ref.kind == "Role" and namespace:
            role = self.roles.get((namespace, ref.name))
            return role.rules if role else None
        return None

    def rule_index(self, ref: RoleRef, namespace: str) -> _RuleIndex | None:
        """The (verb, group, resource) index of a roleRef's rules, built once.

        Args:
            ref: The binding's roleRef.
            namespace: The binding's namespace.

        Returns:
            The index, or None for a dangling reference.
        """
        key = (ref.kind, namespace if ref.kind == "Role" else "", ref.name)
        index = self._role_index.get(key)
        if index is None:
            rules = self.role_rules(ref, namespace)
            if rules is None:
                return None
            index = self._role_index[key] = _RuleIndex.build(rules)
        return index

    def candidate_bindings(self, user: UserInfo, namespace: str) -> Iterator[Binding]:
        """Bindings that may apply to ``user``, in upstream's visiting order.

        Args:
            user: The user.
            namespace: The request namespace.

        Yields:
            ClusterRoleBindings, then RoleBindings of ``namespace`` naming the user,
            one of its groups or (as a ServiceAccount) its username.
        """
        yield from self._pick(
            self.cluster_role_bindings, self._crb_users, self._crb_groups, user
        )
        if namespace and namespace in self._rb_index:
            users, groups = self._rb_index[namespace]
            yield from self._pick(self.role_bindings[namespace], users, groups, user)

    @staticmethod
    def _pick(
        bindings: Sequence[Binding],
        users: dict[str, list[int]],
        groups: dict[str, list[int]],
        user: UserInfo,
    ) -> Iterator[Binding]:
        positions = set(users.get(user.name, ()))
        for g in user.groups:
            positions.update(groups.get(g, ()))
        for pos in sorted(positions):
            yield bindings[pos]


def _missing(binding: Binding) -> str:
    ref = binding.role_ref
    where = f" in namespace {binding.namespace}" if ref.kind == "Role" else ""
    return f'{ref.kind.lower()}.{RBAC_GROUP} "{ref.name}" not found{where}'


def evaluate_rbac(
    policy: RBACPolicy, user: UserInfo, attrs: Attributes, *, indexed: bool = True
) -> RBACResult:
    """Decide a request as the RBAC authorizer does: ALLOW or NO_OPINION.

    ClusterRoleBindings apply everywhere; RoleBindings only when the request's
    namespace is theirs (so never to cluster-scoped, all-namespace or
    non-resource requests).

    Args:
        policy: The RBAC objects.
        user: The requesting user (groups exactly as given; add
            ``system:authenticated`` yourself where the chain would).
        attrs: The request.
        indexed: Use the subject and rule indexes (False: the linear scan that
            mirrors upstream's loop; same answers, kept for the benchmark).

    Returns:
        The decision, ``RBAC: allowed by ...`` as reason, and resolution errors.
    """
    namespace = attrs.namespace if isinstance(attrs, ResourceAttributes) else ""
    errors: list[str] = []
    bindings: Iterable[Binding]
    if indexed:
        bindings = policy.candidate_bindings(user, namespace)
    else:
        bindings = list(policy.cluster_role_bindings)
        if namespace:
            bindings = [*bindings, *policy.role_bindings.get(namespace, ())]
    for binding in bindings:
        subject = applies_to(user, binding.subjects, binding.namespace)
        if subject is None:
            continue
        if indexed:
            index = policy.rule_index(binding.role_ref, binding.namespace)
            hit = index.allows(attrs) if index is not None else None
        else:
            rules = policy.role_rules(binding.role_ref, binding.namespace)
            hit = (
                any(rule_allows(attrs, r) for r in rules) if rules is not None else None
            )
        if hit is None:
            errors.append(_missing(binding))
        elif hit:
            grant = Grant(binding, subject)
            return RBACResult(
                AuthzDecision.ALLOW, f"RBAC: allowed by {grant.describe()}", grant
            )
    reason = "RBAC: " + ", ".join(errors) if errors else ""
    return RBACResult(AuthzDecision.NO_OPINION, reason, None, tuple(errors))


def rules_for(
    policy: RBACPolicy, user: UserInfo, namespace: str
) -> tuple[list[tuple[Grant, PolicyRule]], list[str]]:
    """Every rule that applies to ``user`` in ``namespace`` (upstream ``RulesFor``).

    Args:
        policy: The RBAC objects.
        user: The user.
        namespace: ``""`` for cluster-wide (ClusterRoleBindings only).

    Returns:
        (grant, rule) pairs and resolution errors.
    """
    out: list[tuple[Grant, PolicyRule]] = []
    errors: list[str] = []
    for binding in policy.candidate_bindings(user, namespace):
        subject = applies_to(user, binding.subjects, binding.namespace)
        if subject is None:
            continue
        rules = policy.role_rules(binding.role_ref, binding.namespace)
        if rules is None:
            errors.append(_missing(binding))
            continue
        grant = Grant(binding, subject)
        out.extend((grant, rule) for rule in rules)
    return out, errors


def who_can(policy: RBACPolicy, attrs: Attributes) -> list[Grant]:
    """The reverse question: every (binding, subject) whose role allows ``attrs``.

    ServiceAccount subjects of RoleBindings come back with their namespace filled
    in. The privileged ``system:masters`` group is not listed (it bypasses RBAC).

    Args:
        policy: The RBAC objects.
        attrs: The request.

    Returns:
        Grants in visiting order (ClusterRoleBindings, then RoleBindings).
    """
    namespace = attrs.namespace if isinstance(attrs, ResourceAttributes) else ""
    bindings = list(policy.cluster_role_bindings)
    if namespace:
        bindings += policy.role_bindings.get(namespace, [])
    out: list[Grant] = []
    for binding in bindings:
        index = policy.rule_index(binding.role_ref, binding.namespace)
        if index is None or not index.allows(attrs):
            continue
        for s in binding.subjects:
            if s.kind == "ServiceAccount" and not s.namespace:
                if not binding.namespace:
                    continue  # matches nothing in a ClusterRoleBinding
                s = Subject(s.kind, s.name, binding.namespace, s.api_group)
            out.append(Grant(binding, s))
    return out
