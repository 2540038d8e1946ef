"""The authorizer chain kubeiam answers with: privileged group, deny rules, RBAC.

Pure. kube-apiserver always runs a privileged-group authorizer first (a user in
group ``system:masters`` is allowed everything, docs/rbac-and-tiers.md). A webhook
placed before RBAC can then deny what RBAC would allow; kubeiam's ``/authorize``
does that with explicit deny rules, then answers from RBAC objects, and says
NoOpinion where neither has a rule, so the API server's own RBAC still decides.

Deny rules (``authorization.denyRules`` in the server config)::

    - name: no-secrets-for-contractors      # shown in the reason
      subjects: [{kind: Group, name: contractors}]
      verbs: [get, list, watch]              # required
      apiGroups: [""]                        # resource rules: as RBAC rules
      resources: [secrets]
      resourceNames: []                      # empty = every name
      namespaces: [prod]                     # empty = every namespace and cluster scope
    - name: no-debug
      subjects: [{kind: Group, name: system:authenticated}]
      verbs: ["*"]
      nonResourceURLs: [/debug/*]

A rule matches with RBAC's own matching (``rule_allows``), so ``*``,
``*/subresource`` and trailing-``*`` URLs mean what they mean in RBAC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from policy.errors import InvalidPolicyError
from policy.rbac.evaluator import RBACPolicy, applies_to, evaluate_rbac, rule_allows
from policy.rbac.load import parse_rule
from policy.rbac.model import (
    Attributes,
    AuthzDecision,
    PolicyRule,
    ResourceAttributes,
    Subject,
    UserInfo,
)

__all__ = ["PRIVILEGED_GROUP", "AuthzResult", "DenyRule", "decide", "parse_deny_rules"]

# k8s.io/apiserver/pkg/authentication/user.SystemPrivilegedGroup.
PRIVILEGED_GROUP = "system:masters"
_SUBJECT_KINDS = ("User", "Group", "ServiceAccount")


@dataclass(frozen=True, slots=True)
class DenyRule:
    """An explicit deny: subjects x an RBAC-shaped rule x namespaces."""

    name: str
    subjects: tuple[Subject, ...]
    rule: PolicyRule
    namespaces: tuple[str, ...] = ()

    def matches(self, user: UserInfo, attrs: Attributes) -> bool:
        """Whether this rule denies the request.

        Args:
            user: The requesting user.
            attrs: The request.

        Returns:
            True when a subject, the rule and the namespace all match.
        """
        if applies_to(user, self.subjects, "") is None:
            return False
        if self.namespaces:
            ns = attrs.namespace if isinstance(attrs, ResourceAttributes) else ""
            if ns not in self.namespaces:
                return False
        return rule_allows(attrs, self.rule)


@dataclass(frozen=True, slots=True)
class AuthzResult:
    """A chain decision with the reason and informational evaluation error."""

    decision: AuthzDecision
    reason: str = ""
    evaluation_error: str = ""


def parse_deny_rules(raw: object, *, where: str = "denyRules") -> tuple[DenyRule, ...]:
    """Parse the ``denyRules`` list of the server config.

    Args:
        raw: The list (None = no rules).
        where: The config path used in errors.

    Returns:
        The rules, in order.

    Raises:
        InvalidPolicyError: A rule is malformed.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidPolicyError("must be a list", policy=where)
    out: list[DenyRule] = []
    for i, item in enumerate(raw):
        p = f"/{i}"
        if not isinstance(item, dict):
            raise InvalidPolicyError("must be an object", pointer=p, policy=where)
        name = str(item.get("name") or f"denyRules[{i}]")
        subjects: list[Subject] = []
        for j, s in enumerate(item.get("subjects") or []):
            kind = s.get("kind") if isinstance(s, dict) else None
            sname = s.get("name") if isinstance(s, dict) else None
            ns = s.get("namespace", "") if isinstance(s, dict) else ""
            if kind not in _SUBJECT_KINDS or not isinstance(sname, str) or not sname:
                raise InvalidPolicyError(
                    "needs kind User, Group or ServiceAccount and a name",
                    pointer=f"{p}/subjects/{j}",
                    policy=where,
                )
            if kind == "ServiceAccount" and not ns:
                raise InvalidPolicyError(
                    "a ServiceAccount subject needs a namespace",
                    pointer=f"{p}/subjects/{j}/namespace",
                    policy=where,
                )
            subjects.append(Subject(str(kind), sname, str(ns)))
        if not subjects:
            raise InvalidPolicyError(
                "needs at least one subject", pointer=f"{p}/subjects", policy=where
            )
        rule_raw = {
            k: v for k, v in item.items() if k not in ("name", "subjects", "namespaces")
        }
        try:
            rule = parse_rule(rule_raw, namespaced=False)
        except InvalidPolicyError as exc:
            raise InvalidPolicyError(
                exc.detail, pointer=p + exc.pointer, policy=where
            ) from exc
        namespaces = item.get("namespaces") or []
        if not isinstance(namespaces, list) or not all(
            isinstance(n, str) for n in namespaces
        ):
            raise InvalidPolicyError(
                "must be a list of strings", pointer=f"{p}/namespaces", policy=where
            )
        out.append(DenyRule(name, tuple(subjects), rule, tuple(namespaces)))
    return tuple(out)


def decide(
    policy: RBACPolicy,
    user: UserInfo,
    attrs: Attributes,
    *,
    deny_rules: Sequence[DenyRule] = (),
    privileged_bypass: bool = True,
) -> AuthzResult:
    """Run the chain: system:masters, then deny rules, then RBAC.

    Args:
        policy: The RBAC objects.
        user: The requesting user (groups as the review carries them).
        attrs: The request.
        deny_rules: Explicit denies, checked before RBAC.
        privileged_bypass: Allow ``system:masters`` first, as kube-apiserver does.

    Returns:
        ALLOW, DENY or NO_OPINION with a reason.
    """
    if privileged_bypass and PRIVILEGED_GROUP in user.groups:
        return AuthzResult(AuthzDecision.ALLOW, f"privileged group {PRIVILEGED_GROUP}")
    for rule in deny_rules:
        if rule.matches(user, attrs):
            return AuthzResult(
                AuthzDecision.DENY, f"kubeiam: denied by deny rule {rule.name!r}"
            )
    result = evaluate_rbac(policy, user, attrs)
    if result.allowed:
        return AuthzResult(AuthzDecision.ALLOW, result.reason)
    return AuthzResult(AuthzDecision.NO_OPINION, "", "; ".join(result.errors))
