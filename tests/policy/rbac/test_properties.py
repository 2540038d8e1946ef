"""Properties: the index agrees with the linear scan; `covers` is sound."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policy.rbac.aggregate import build_rbac_policy
from policy.rbac.covers import covers
from policy.rbac.evaluator import RBACPolicy, evaluate_rbac, rule_allows
from policy.rbac.model import (
    Binding,
    ClusterRole,
    NonResourceAttributes,
    PolicyRule,
    ResourceAttributes,
    Role,
    RoleRef,
    Subject,
    UserInfo,
)

VERBS = st.sampled_from(["get", "list", "update", "*"])
GROUPS = st.sampled_from(["", "apps", "*"])
RESOURCES = st.sampled_from(
    ["pods", "pods/log", "deployments", "deployments/scale", "*/scale", "*", "pods/*"]
)
NAMES = st.sampled_from(["a", "b"])
URLS = st.sampled_from(["/healthz", "/apis", "/apis/*", "/api*", "*", "/a/*/b"])
NAMESPACES = st.sampled_from(["", "dev", "prod"])
USERS = st.sampled_from(["alice", "bob", "system:serviceaccount:dev:ci"])
GROUP_NAMES = st.sampled_from(["g1", "g2", "system:serviceaccounts:dev"])


def _tuple(
    elements: st.SearchStrategy[str], min_size: int = 1
) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(elements, min_size=min_size, max_size=3, unique=True).map(tuple)


RESOURCE_RULES = st.builds(
    PolicyRule, _tuple(VERBS), _tuple(GROUPS), _tuple(RESOURCES), _tuple(NAMES, 0)
)
URL_RULES = st.builds(PolicyRule, _tuple(VERBS), non_resource_urls=_tuple(URLS))
RULES = st.one_of(RESOURCE_RULES, URL_RULES)
REQ_VERBS = st.sampled_from(["get", "list", "update", "delete"])
RESOURCE_REQUESTS = st.builds(
    ResourceAttributes,
    REQ_VERBS,
    st.sampled_from(["pods", "deployments", "nodes"]),
    st.sampled_from(["", "apps"]),
    NAMESPACES,
    st.sampled_from(["", "log", "scale", "*"]),
    st.sampled_from(["", "a", "b"]),
)
URL_REQUESTS = st.builds(
    NonResourceAttributes,
    REQ_VERBS,
    st.sampled_from(["/healthz", "/apis", "/apis/", "/apis/v1", "/api", "/a/x/b"]),
)
REQUESTS = st.one_of(RESOURCE_REQUESTS, URL_REQUESTS)
SUBJECTS = st.one_of(
    st.builds(Subject, st.just("User"), USERS),
    st.builds(Subject, st.just("Group"), GROUP_NAMES),
    st.builds(
        Subject, st.just("ServiceAccount"), st.just("ci"), st.sampled_from(["", "dev"])
    ),
)


@st.composite
def policies(draw: st.DrawFn) -> RBACPolicy:
    """Small random policies: roles, cluster roles, bindings (dangling refs too)."""
    roles = [
        Role(
            f"r{i}",
            draw(st.sampled_from(["dev", "prod"])),
            tuple(draw(st.lists(RULES, max_size=3))),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    crs = [
        ClusterRole(f"c{i}", tuple(draw(st.lists(RULES, max_size=3))))
        for i in range(draw(st.integers(0, 3)))
    ]
    bindings = []
    for i in range(draw(st.integers(0, 6))):
        ns = draw(NAMESPACES)
        kind = "ClusterRole" if not ns or draw(st.booleans()) else "Role"
        ref = RoleRef(kind, draw(st.sampled_from(["r0", "r1", "c0", "c1", "gone"])))
        bindings.append(
            Binding(
                f"b{i}",
                ref,
                tuple(draw(st.lists(SUBJECTS, min_size=1, max_size=3))),
                ns,
            )
        )
    return build_rbac_policy(roles, crs, bindings)


@settings(max_examples=120, deadline=None)
@given(policies(), USERS, st.lists(GROUP_NAMES, max_size=2, unique=True), REQUESTS)
def test_index_agrees_with_linear_scan(policy, user, groups, attrs):
    """Same decision, reason, grant and errors through the index and the scan."""
    u = UserInfo(user, tuple(groups))
    assert evaluate_rbac(policy, u, attrs, indexed=True) == evaluate_rbac(
        policy, u, attrs, indexed=False
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(RULES, max_size=3), st.lists(RULES, min_size=1, max_size=2), REQUESTS)
def test_covers_is_sound(owner, servant, attrs):
    """If owner covers servant, every request servant allows, owner allows."""
    ok, _ = covers(owner, servant)
    if ok and any(rule_allows(attrs, r) for r in servant):
        assert any(rule_allows(attrs, r) for r in owner)


@settings(max_examples=60, deadline=None)
@given(st.lists(RULES, min_size=1, max_size=3))
def test_rules_cover_themselves(rules):
    """Every rule set covers itself (reflexivity)."""
    assert covers(rules, rules) == (True, [])
