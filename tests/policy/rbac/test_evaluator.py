"""RBAC evaluation: upstream's authorizer, rule-matching and resolver cases, restated.

Sources: plugin/pkg/auth/authorizer/rbac/rbac_test.go (TestAuthorizer,
TestRuleMatches), pkg/registry/rbac/validation/rule_test.go (TestAppliesTo,
TestDefaultRuleResolver) and pkg/controller/clusterroleaggregation tests.
Every case runs through the indexed path and the linear scan.
"""

from __future__ import annotations

import pytest

from policy.rbac.aggregate import aggregate_cluster_roles, build_rbac_policy
from policy.rbac.evaluator import (
    RBACPolicy,
    applies_to,
    evaluate_rbac,
    rule_allows,
    rules_for,
    who_can,
)
from policy.rbac.model import (
    Attributes,
    AuthzDecision,
    Binding,
    ClusterRole,
    LabelSelector,
    LabelSelectorRequirement,
    NonResourceAttributes,
    PolicyRule,
    ResourceAttributes,
    Role,
    RoleRef,
    Subject,
    UserInfo,
    service_account_groups,
    service_account_username,
)


def _rule(verbs: str, groups: str, resources: str, urls: str) -> PolicyRule:
    """Upstream's newRule: comma lists, each possibly the empty string."""
    return PolicyRule(
        tuple(verbs.split(",")),
        tuple(groups.split(",")),
        tuple(resources.split(",")),
        (),
        tuple(urls.split(",")),
    )


def _subjects(*specs: str) -> tuple[Subject, ...]:
    out = []
    for spec in specs:
        kind, name = spec.split(":", 1)
        out.append(Subject(kind, name))
    return tuple(out)


def _crb(role: str, *subjects: str) -> Binding:
    return Binding(f"crb-{role}", RoleRef("ClusterRole", role), _subjects(*subjects))


def _rb(ns: str, role: str, kind: str, *subjects: str) -> Binding:
    return Binding(f"rb-{role}", RoleRef(kind, role), _subjects(*subjects), ns)


def _res(
    user: str, groups: str, verb: str, resource: str, sub: str, ns: str, group: str
) -> tuple[UserInfo, ResourceAttributes]:
    u = UserInfo(user, tuple(g for g in groups.split(",") if g))
    return u, ResourceAttributes(verb, resource, group, ns, sub)


def _both(policy: RBACPolicy, user: UserInfo, attrs: Attributes) -> bool:
    """Decide through the index and the linear scan; they must agree."""
    a = evaluate_rbac(policy, user, attrs, indexed=True)
    b = evaluate_rbac(policy, user, attrs, indexed=False)
    assert a == b
    return a.allowed


class TestAuthorizer:
    """TestAuthorizer from rbac_test.go."""

    def test_rolebinding_to_clusterrole_is_namespace_scoped(self):
        """A RoleBinding of a `*` ClusterRole grants only in its namespace."""
        policy = build_rbac_policy(
            [],
            [ClusterRole("admin", (_rule("*", "*", "*", "*"),))],
            [_rb("ns1", "admin", "ClusterRole", "User:admin", "Group:admins")],
        )
        passes = [
            _res("admin", "", "get", "Pods", "", "ns1", ""),
            _res("admin", "", "watch", "Pods", "", "ns1", ""),
            _res("admin", "group1", "watch", "Foobar", "", "ns1", ""),
            _res("joe", "admins", "watch", "Foobar", "", "ns1", ""),
            _res("joe", "group1,admins", "watch", "Foobar", "", "ns1", ""),
        ]
        fails = [
            _res("admin", "", "GET", "Pods", "", "ns2", ""),
            _res("admin", "", "GET", "Nodes", "", "", ""),
            _res("admin", "admins", "GET", "Pods", "", "ns2", ""),
            _res("admin", "admins", "GET", "Nodes", "", "", ""),
        ]
        assert all(_both(policy, u, a) for u, a in passes)
        assert not any(_both(policy, u, a) for u, a in fails)

    @pytest.mark.parametrize(
        ("user", "groups", "verb", "path", "allowed"),
        [
            ("foo", (), "get", "/apis", True),
            ("", ("bar",), "get", "/apis", True),
            ("admin", (), "get", "/apis", True),
            ("", ("admin",), "get", "/apis", True),
            ("admin", (), "watch", "/apis", True),
            ("", ("admin",), "watch", "/apis", True),
            ("prefixed", (), "get", "/apis/v1", True),
            ("", ("prefixed",), "get", "/apis/v1", True),
            ("prefixed", (), "get", "/apis/v1/foobar", True),
            ("", ("prefixed",), "get", "/apis/v1/foorbar", True),
            ("foo", (), "watch", "/apis", False),
            ("", ("bar",), "watch", "/apis", False),
            ("foo", (), "get", "/api/v1", False),
            ("", ("bar",), "get", "/api/v1", False),
            ("admin", (), "get", "/api/v1", False),
            ("", ("admin",), "get", "/api/v1", False),
            ("prefixed", (), "get", "/api/v1", False),
            ("", ("prefixed",), "get", "/api/v1", False),
        ],
    )
    def test_non_resource_urls(self, user, groups, verb, path, allowed):
        """Non-resource URLs: exact paths, `*` verbs and `/apis/*` prefixes."""
        policy = build_rbac_policy(
            [],
            [
                ClusterRole(
                    "non-resource-url-getter", (_rule("get", "", "", "/apis"),)
                ),
                ClusterRole("non-resource-url", (_rule("*", "", "", "/apis"),)),
                ClusterRole(
                    "non-resource-url-prefix", (_rule("get", "", "", "/apis/*"),)
                ),
            ],
            [
                _crb("non-resource-url-getter", "User:foo", "Group:bar"),
                _crb("non-resource-url", "User:admin", "Group:admin"),
                _crb("non-resource-url-prefix", "User:prefixed", "Group:prefixed"),
            ],
        )
        attrs = NonResourceAttributes(verb, path)
        assert _both(policy, UserInfo(user, groups), attrs) is allowed

    @pytest.mark.parametrize(
        ("resources", "sub", "allowed"),
        [
            ("pods", "", True),
            ("pods", "status", False),
            ("pods/status", "status", True),
            ("pods/status", "", False),
        ],
    )
    def test_subresource_resolution(self, resources, sub, allowed):
        """`pods` does not grant `pods/status`, nor the reverse."""
        policy = build_rbac_policy(
            [],
            [ClusterRole("admin", (_rule("*", "*", resources, "*"),))],
            [_rb("ns1", "admin", "ClusterRole", "User:admin", "Group:admins")],
        )
        u, a = _res("admin", "", "get", "pods", sub, "ns1", "")
        assert _both(policy, u, a) is allowed


def _req(
    verb: str, group: str, resource: str, sub: str = "", name: str = ""
) -> ResourceAttributes:
    return ResourceAttributes(verb, resource, group, "", sub, name)


class TestRuleMatches:
    """TestRuleMatches from rbac_test.go, plus the `*/sub` and name rules."""

    @pytest.mark.parametrize(
        ("rule", "cases"),
        [
            (
                PolicyRule(("*",), ("group1",), ("resource1",)),
                {
                    ("verb1", "group1", "resource1"): True,
                    ("verb1", "group2", "resource1"): False,
                    ("verb1", "group1", "resource2"): False,
                    ("verb2", "group1", "resource1"): True,
                },
            ),
            (
                PolicyRule(("verb1",), ("*",), ("resource1",)),
                {
                    ("verb1", "group1", "resource1"): True,
                    ("verb1", "group2", "resource1"): True,
                    ("verb1", "group1", "resource2"): False,
                    ("verb2", "group1", "resource1"): False,
                },
            ),
            (
                PolicyRule(("verb1",), ("group1",), ("*",)),
                {
                    ("verb1", "group1", "resource1"): True,
                    ("verb1", "group1", "resource2"): True,
                    ("verb1", "group2", "resource1"): False,
                    ("verb2", "group1", "resource2"): False,
                },
            ),
            (
                PolicyRule(
                    ("verb1", "verb2"), ("group1", "group2"), ("resource1", "resource2")
                ),
                {
                    (v, g, r): True
                    for v in ("verb1", "verb2")
                    for g in ("group1", "group2")
                    for r in ("resource1", "resource2")
                },
            ),
        ],
    )
    def test_tuple_expansion(self, rule, cases):
        """Star verb / group / resource and tuple expansion."""
        for (verb, group, resource), expected in cases.items():
            assert rule_allows(_req(verb, group, resource), rule) is expected

    @pytest.mark.parametrize(
        ("resource", "sub", "expected"),
        [
            ("resource1", "subresource1", True),
            ("resource1", "subresource2", False),
            ("resource2", "subresource1", False),
        ],
    )
    def test_subresource_expansion(self, resource, sub, expected):
        """`resource1/subresource1` matches only that pair."""
        rule = PolicyRule(("*",), ("*",), ("resource1/subresource1",))
        assert rule_allows(_req("verb1", "group1", resource, sub), rule) is expected

    @pytest.mark.parametrize(
        ("rule_resource", "resource", "sub", "expected"),
        [
            ("*/scale", "deployments", "scale", True),
            ("*/scale", "statefulsets", "scale", True),
            ("*/scale", "deployments", "", False),
            ("*/scale", "deployments", "status", False),
            ("*/scale", "deployments", "scalex", False),
            ("pods/*", "pods", "log", False),
            ("pods/*", "pods", "*", True),
            ("*", "pods", "log", True),
            ("deployments", "deployments", "scale", False),
        ],
    )
    def test_subresource_wildcards(self, rule_resource, resource, sub, expected):
        """`*/sub` matches any resource's sub; `pods/*` is literal; `*` is all."""
        rule = PolicyRule(("get",), ("*",), (rule_resource,))
        assert rule_allows(_req("get", "apps", resource, sub), rule) is expected

    @pytest.mark.parametrize(
        ("verb", "name", "expected"),
        [
            ("get", "a", True),
            ("get", "b", False),
            ("get", "", False),
            ("list", "", False),
            ("create", "", False),
            ("deletecollection", "", False),
            ("list", "a", True),
        ],
    )
    def test_resource_names(self, verb, name, expected):
        """A resourceNames list never allows an unnamed request (create/list/...)."""
        rule = PolicyRule(("*",), ("",), ("configmaps",), ("a",))
        assert rule_allows(_req(verb, "", "configmaps", name=name), rule) is expected

    def test_verbs_are_case_sensitive(self):
        """Verbs compare exactly: `GET` is not `get`."""
        rule = PolicyRule(("get",), ("",), ("pods",))
        assert not rule_allows(_req("GET", "", "pods"), rule)

    @pytest.mark.parametrize(
        ("urls", "path", "expected"),
        [
            (("*",), "/foo/bar/one", True),
            (("/foo/*",), "/foo", False),
            (("/foo/*",), "/foo/bar", True),
            (("/foo/*",), "/foo/baz/one", True),
            (("/foo/*",), "/notfoo/bar", False),
            (("/foo", "/foo/bar/one"), "/foo", True),
            (("/foo", "/foo/bar/one"), "/foo/bar", False),
            (("/foo", "/foo/bar/one"), "/foo/bar/one", True),
            (("/apis/*",), "/apis/", True),
            (("/apis/*",), "/apis", False),
            (("/healthz*",), "/healthzzz", True),
            (("/a/*/c",), "/a/b/c", False),
            (("/api/**",), "/api/x", True),
        ],
    )
    def test_non_resource_prefixes(self, urls, path, expected):
        """Only trailing `*`s are a prefix wildcard; an inner `*` is literal."""
        rule = PolicyRule(("get",), non_resource_urls=urls)
        assert rule_allows(NonResourceAttributes("get", path), rule) is expected

    def test_resource_rule_ignores_urls(self):
        """A resource request never matches through nonResourceURLs and vice versa."""
        rule = PolicyRule(("*",), ("*",), ("pods",), (), ("*",))
        assert rule_allows(_req("get", "", "pods"), rule)
        assert rule_allows(NonResourceAttributes("get", "/x"), rule)
        only_urls = PolicyRule(("*",), non_resource_urls=("*",))
        assert not rule_allows(_req("get", "", "pods"), only_urls)


class TestAppliesTo:
    """TestAppliesTo from rule_test.go."""

    @pytest.mark.parametrize(
        ("subjects", "user", "namespace", "expected"),
        [
            ((Subject("User", "foobar"),), UserInfo("foobar"), "", True),
            (
                (Subject("User", "barfoo"), Subject("User", "foobar")),
                UserInfo("foobar"),
                "",
                True,
            ),
            (
                (Subject("User", "barfoo"), Subject("User", "foobar")),
                UserInfo("zimzam"),
                "",
                False,
            ),
            (
                (Subject("User", "barfoo"), Subject("Group", "foobar")),
                UserInfo("zimzam", ("foobar",)),
                "",
                True,
            ),
            (
                (Subject("User", "barfoo"), Subject("Group", "foobar")),
                UserInfo("zimzam", ("foobar",)),
                "namespace1",
                True,
            ),
            (
                (
                    Subject("User", "barfoo"),
                    Subject("Group", "foobar"),
                    Subject("ServiceAccount", "default", "kube-system"),
                ),
                UserInfo("system:serviceaccount:kube-system:default"),
                "default",
                True,
            ),
            ((Subject("User", "*"),), UserInfo("foobar"), "default", False),
            (
                (
                    Subject("Group", "system:authenticated"),
                    Subject("Group", "system:unauthenticated"),
                ),
                UserInfo("foobar", ("system:authenticated",)),
                "default",
                True,
            ),
            (
                (
                    Subject("Group", "system:authenticated"),
                    Subject("Group", "system:unauthenticated"),
                ),
                UserInfo("system:anonymous", ("system:unauthenticated",)),
                "default",
                True,
            ),
            (
                (Subject("ServiceAccount", "sa"),),
                UserInfo("system:serviceaccount:dev:sa"),
                "dev",
                True,
            ),
            (
                (Subject("ServiceAccount", "sa"),),
                UserInfo("system:serviceaccount:dev:sa"),
                "",
                False,
            ),
            (
                (Subject("ServiceAccount", "sa", "ops"),),
                UserInfo("system:serviceaccount:dev:sa"),
                "dev",
                False,
            ),
            ((Subject("Robot", "x"),), UserInfo("x"), "", False),
        ],
    )
    def test_applies_to(self, subjects, user, namespace, expected):
        """User exact, group membership, SA namespace defaulting, `*` literal."""
        assert (applies_to(user, subjects, namespace) is not None) is expected

    def test_first_matching_subject_is_reported(self):
        """The reason names the first subject that matched."""
        subjects = (Subject("User", "a"), Subject("Group", "g"), Subject("User", "u"))
        assert applies_to(UserInfo("u", ("g",)), subjects, "") == Subject("Group", "g")


class TestResolver:
    """TestDefaultRuleResolver from rule_test.go and the reason strings."""

    read_pods = PolicyRule(("GET", "WATCH"), ("v1",), ("pods",))
    read_services = PolicyRule(("GET", "WATCH"), ("v1",), ("services",))
    write_nodes = PolicyRule(("PUT", "CREATE", "UPDATE"), ("v1",), ("nodes",))
    admin = PolicyRule(("*",), ("*",), ("*",))

    def _policy(self) -> RBACPolicy:
        return build_rbac_policy(
            [Role("readthings", "namespace1", (self.read_pods, self.read_services))],
            [
                ClusterRole("cluster-admin", (self.admin,)),
                ClusterRole("write-nodes", (self.write_nodes,)),
            ],
            [
                Binding(
                    "b1",
                    RoleRef("Role", "readthings"),
                    (Subject("User", "foobar"), Subject("Group", "group1")),
                    "namespace1",
                ),
                Binding(
                    "b2",
                    RoleRef("ClusterRole", "cluster-admin"),
                    (Subject("User", "admin"), Subject("Group", "admin")),
                ),
            ],
        )

    @pytest.mark.parametrize(
        ("user", "namespace", "expected"),
        [
            (UserInfo("foobar"), "namespace1", {"read_pods", "read_services"}),
            (UserInfo("foobar"), "namespace2", set()),
            (UserInfo("foobar", ("admin",)), "", {"admin"}),
            (UserInfo(""), "", set()),
        ],
    )
    def test_rules_for(self, user, namespace, expected):
        """Only cluster rules apply without a namespace; Role rules only in theirs."""
        rules, errors = rules_for(self._policy(), user, namespace)
        assert {r for _, r in rules} == {getattr(self, n) for n in expected}
        assert errors == []

    def test_reason_strings(self):
        """Reasons are upstream's `RBAC: allowed by ...` text."""
        policy = self._policy()
        r = evaluate_rbac(
            policy,
            UserInfo("foobar"),
            ResourceAttributes("GET", "pods", "v1", "namespace1"),
        )
        assert r.reason == (
            'RBAC: allowed by RoleBinding "b1/namespace1" of Role "readthings" '
            'to User "foobar"'
        )
        r = evaluate_rbac(
            policy, UserInfo("x", ("admin",)), ResourceAttributes("get", "nodes")
        )
        assert r.reason == (
            'RBAC: allowed by ClusterRoleBinding "b2" of ClusterRole '
            '"cluster-admin" to Group "admin"'
        )

    def test_dangling_reference_grants_nothing_and_is_reported(self):
        """A binding to a missing role is legal: NoOpinion, error in the reason."""
        policy = build_rbac_policy(
            [],
            [],
            [Binding("b", RoleRef("Role", "gone"), (Subject("User", "u"),), "dev")],
        )
        for indexed in (True, False):
            r = evaluate_rbac(
                policy,
                UserInfo("u"),
                ResourceAttributes("get", "pods", "", "dev"),
                indexed=indexed,
            )
            assert r.decision is AuthzDecision.NO_OPINION
            assert r.errors == (
                'role.rbac.authorization.k8s.io "gone" not found in namespace dev',
            )
            assert r.reason.startswith("RBAC: role.rbac")

    def test_clusterrolebinding_cannot_reference_role(self):
        """A ClusterRoleBinding's Role reference resolves to nothing."""
        policy = build_rbac_policy(
            [Role("r", "dev", (self.admin,))],
            [],
            [Binding("b", RoleRef("Role", "r"), (Subject("User", "u"),))],
        )
        assert not _both(
            policy, UserInfo("u"), ResourceAttributes("get", "pods", "", "dev")
        )


class TestScope:
    """RoleBinding scope limits and ServiceAccount subjects end to end."""

    policy = build_rbac_policy(
        [Role("pods", "dev", (PolicyRule(("get",), ("",), ("pods",)),))],
        [
            ClusterRole(
                "nodes", (PolicyRule(("get", "list"), ("",), ("nodes", "pods")),)
            ),
            ClusterRole(
                "urls", (PolicyRule(("get",), non_resource_urls=("/metrics",)),)
            ),
        ],
        [
            Binding(
                "rb", RoleRef("ClusterRole", "nodes"), (Subject("User", "u"),), "dev"
            ),
            Binding(
                "rb-urls",
                RoleRef("ClusterRole", "urls"),
                (Subject("User", "u"),),
                "dev",
            ),
            Binding(
                "sa", RoleRef("Role", "pods"), (Subject("ServiceAccount", "ci"),), "dev"
            ),
            Binding(
                "crb-sa",
                RoleRef("ClusterRole", "nodes"),
                (Subject("ServiceAccount", "exporter", "monitoring"),),
            ),
            Binding(
                "crb-ns-group",
                RoleRef("ClusterRole", "urls"),
                (Subject("Group", "system:serviceaccounts:monitoring"),),
            ),
        ],
    )

    @pytest.mark.parametrize(
        ("user", "attrs", "expected"),
        [
            (UserInfo("u"), ResourceAttributes("get", "pods", "", "dev"), True),
            (UserInfo("u"), ResourceAttributes("get", "pods", "", "prod"), False),
            (UserInfo("u"), ResourceAttributes("list", "pods", "", ""), False),
            (UserInfo("u"), ResourceAttributes("get", "nodes", "", ""), False),
            (UserInfo("u"), NonResourceAttributes("get", "/metrics"), False),
            (
                UserInfo(
                    service_account_username("dev", "ci"), service_account_groups("dev")
                ),
                ResourceAttributes("get", "pods", "", "dev"),
                True,
            ),
            (
                UserInfo(
                    service_account_username("prod", "ci"),
                    service_account_groups("prod"),
                ),
                ResourceAttributes("get", "pods", "", "dev"),
                False,
            ),
            (
                UserInfo(service_account_username("monitoring", "exporter")),
                ResourceAttributes("list", "nodes"),
                True,
            ),
            (
                UserInfo(
                    "system:serviceaccount:monitoring:other",
                    service_account_groups("monitoring"),
                ),
                NonResourceAttributes("get", "/metrics"),
                True,
            ),
        ],
    )
    def test_scope(self, user, attrs, expected):
        """RoleBindings never grant cluster-scoped, all-namespace or URL requests."""
        assert _both(self.policy, user, attrs) is expected

    def test_who_can(self):
        """The reverse question fills in a RoleBinding SA's namespace."""
        grants = who_can(self.policy, ResourceAttributes("get", "pods", "", "dev"))
        assert [(g.binding.name, g.subject) for g in grants] == [
            ("crb-sa", Subject("ServiceAccount", "exporter", "monitoring")),
            ("rb", Subject("User", "u")),
            ("sa", Subject("ServiceAccount", "ci", "dev")),
        ]
        assert (
            who_can(self.policy, ResourceAttributes("get", "secrets", "", "dev")) == []
        )


class TestAggregation:
    """The clusterrole-aggregation controller's test cases."""

    hammer = (
        PolicyRule(("hammer",), (), ("nails",)),
        PolicyRule(("hammer",), (), ("wedges",)),
    )
    chisel = (PolicyRule(("chisel",), (), ("mortises",)),)
    saw = (PolicyRule(("saw",), (), ("boards",)),)

    @staticmethod
    def _role(
        name: str, labels: dict[str, str], rules: tuple[PolicyRule, ...]
    ) -> ClusterRole:
        return ClusterRole(name, rules, tuple(labels.items()))

    @staticmethod
    def _combined(
        selectors: list[dict[str, str]], *rules: tuple[PolicyRule, ...]
    ) -> ClusterRole:
        sels = tuple(LabelSelector(tuple(s.items())) for s in selectors)
        return ClusterRole("combined", tuple(r for rs in rules for r in rs), (), sels)

    def _sync(self, roles: list[ClusterRole]) -> tuple[PolicyRule, ...]:
        return {c.name: c for c in aggregate_cluster_roles(roles)}["combined"].rules

    def test_remove_dead_rules(self):
        """Hand-written rules of an aggregated role are replaced."""
        out = self._sync(
            [
                self._role("hammer", {"foo": "bar"}, self.hammer),
                self._combined([{"foo": "bar"}], self.saw),
            ]
        )
        assert out == self.hammer

    def test_strip_rules(self):
        """Nothing selected: the aggregated role ends up empty."""
        out = self._sync(
            [
                self._role("hammer", {"foo": "not-bar"}, self.hammer),
                self._combined([{"foo": "bar"}], self.hammer),
            ]
        )
        assert out == ()

    def test_select_properly_and_put_in_order(self):
        """Selected roles contribute in name order."""
        out = self._sync(
            [
                self._role("hammer", {"foo": "bar"}, self.hammer),
                self._role("chisel", {"foo": "bar"}, self.chisel),
                self._role("saw", {"foo": "not-bar"}, self.saw),
                self._combined([{"foo": "bar"}]),
            ]
        )
        assert out == self.chisel + self.hammer

    def test_multiple_selectors_and_duplicates(self):
        """Selectors are ORed in order; identical rules are kept once."""
        out = self._sync(
            [
                self._role("hammer", {"foo": "bar"}, self.hammer),
                self._role("chisel", {"foo": "bar"}, self.chisel),
                self._role("saw", {"foo": "bar"}, self.saw),
                self._role("other-saw", {"foo": "not-bar"}, self.saw),
                self._combined([{"foo": "bar"}, {"foo": "not-bar"}]),
            ]
        )
        assert out == self.chisel + self.hammer + self.saw

    def test_nested_aggregation_reaches_fixed_point(self):
        """admin ⊇ edit ⊇ view through two aggregation levels, regardless of order."""
        view_rule = PolicyRule(("get",), ("",), ("pods",))
        edit_rule = PolicyRule(("create",), ("",), ("pods",))
        roles = [
            ClusterRole("admin", (), (), (LabelSelector((("to-admin", "true"),)),)),
            ClusterRole(
                "edit",
                (),
                (("to-admin", "true"),),
                (LabelSelector((("to-edit", "true"),)),),
            ),
            ClusterRole(
                "view",
                (),
                (("to-edit", "true"),),
                (LabelSelector((("to-view", "true"),)),),
            ),
            ClusterRole("e", (edit_rule,), (("to-edit", "true"),)),
            ClusterRole("v", (view_rule,), (("to-view", "true"),)),
        ]
        out = {c.name: c.rules for c in aggregate_cluster_roles(roles)}
        assert out["view"] == (view_rule,)
        assert set(out["edit"]) == {view_rule, edit_rule}
        assert set(out["admin"]) == {view_rule, edit_rule}

    @pytest.mark.parametrize(
        ("expr", "labels", "expected"),
        [
            (LabelSelectorRequirement("tier", "In", ("a", "b")), {"tier": "a"}, True),
            (LabelSelectorRequirement("tier", "In", ("a",)), {}, False),
            (LabelSelectorRequirement("tier", "NotIn", ("a",)), {}, True),
            (LabelSelectorRequirement("tier", "NotIn", ("a",)), {"tier": "a"}, False),
            (LabelSelectorRequirement("tier", "Exists"), {"tier": ""}, True),
            (LabelSelectorRequirement("tier", "DoesNotExist"), {"tier": ""}, False),
        ],
    )
    def test_match_expressions(self, expr, labels, expected):
        """matchExpressions follow labels.Selector (NotIn matches a missing key)."""
        assert LabelSelector((), (expr,)).matches(labels) is expected

    def test_empty_selector_selects_every_other_role(self):
        """An empty clusterRoleSelector selects everything except the role itself."""
        roles = [
            ClusterRole("a", self.saw),
            ClusterRole("all", self.hammer, (), (LabelSelector(),)),
        ]
        assert {c.name: c.rules for c in aggregate_cluster_roles(roles)}[
            "all"
        ] == self.saw
