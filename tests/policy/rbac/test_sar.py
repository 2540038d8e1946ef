"""SubjectAccessReview parsing/answers and the deny-rule chain."""

from __future__ import annotations

import pytest

from policy.errors import InvalidPolicyError
from policy.rbac.aggregate import build_rbac_policy
from policy.rbac.authz import decide, parse_deny_rules
from policy.rbac.model import (
    AuthzDecision,
    Binding,
    ClusterRole,
    NonResourceAttributes,
    PolicyRule,
    ResourceAttributes,
    RoleRef,
    Subject,
    UserInfo,
)
from policy.rbac.sar import (
    build_sar_response,
    parse_sar_spec,
    parse_subject_access_review,
)

SPEC = {
    "resourceAttributes": {
        "namespace": "dev",
        "verb": "get",
        "group": "apps",
        "version": "v1",
        "resource": "deployments",
        "subresource": "scale",
        "name": "web",
    },
    "user": "alice",
    "uid": "aws-iam-authenticator:111122223333:AIDA",
    "extra": {"arn": ["arn:aws:iam::111122223333:user/alice"]},
}


class TestParse:
    """v1 spells `groups`, v1beta1 `group`."""

    def test_v1(self):
        """A v1 review reads `groups` and every resource attribute."""
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": SPEC | {"groups": ["dev-team", "system:authenticated"]},
            "status": {"allowed": False},
        }
        review = parse_subject_access_review(body)
        assert review.api_version == "authorization.k8s.io/v1"
        assert review.user == UserInfo(
            "alice",
            ("dev-team", "system:authenticated"),
            "aws-iam-authenticator:111122223333:AIDA",
            (("arn", ("arn:aws:iam::111122223333:user/alice",)),),
        )
        assert review.attributes == ResourceAttributes(
            "get", "deployments", "apps", "dev", "scale", "web", "v1"
        )

    def test_v1beta1_group_singular(self):
        """A v1beta1 review reads `group`; a `groups` key there is ignored."""
        body = {
            "apiVersion": "authorization.k8s.io/v1beta1",
            "kind": "SubjectAccessReview",
            "spec": SPEC | {"group": ["dev-team"], "groups": ["ignored"]},
        }
        assert parse_subject_access_review(body).user.groups == ("dev-team",)

    def test_v1_ignores_singular_group(self):
        """A v1 review's groups come only from `groups`."""
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": SPEC | {"group": ["dev-team"]},
        }
        assert parse_subject_access_review(body).user.groups == ()

    def test_non_resource(self):
        """nonResourceAttributes become a path request."""
        _user, attrs = parse_sar_spec(
            {"user": "u", "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}
        )
        assert attrs == NonResourceAttributes("get", "/healthz")

    def test_selectors_are_ignored(self):
        """fieldSelector/labelSelector only narrow a request; they are not parsed."""
        spec = {
            "user": "u",
            "resourceAttributes": {
                "verb": "list",
                "resource": "pods",
                "fieldSelector": {
                    "requirements": [
                        {"key": "spec.nodeName", "operator": "In", "values": ["n1"]}
                    ]
                },
            },
        }
        assert parse_sar_spec(spec)[1] == ResourceAttributes("list", "pods")

    @pytest.mark.parametrize(
        ("body", "pointer"),
        [
            ([], ""),
            (
                {
                    "apiVersion": "authorization.k8s.io/v2",
                    "kind": "SubjectAccessReview",
                },
                "/apiVersion",
            ),
            ({"apiVersion": "authorization.k8s.io/v1", "kind": "TokenReview"}, "/kind"),
            (
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "spec": 3,
                },
                "/spec",
            ),
            (
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "spec": {"user": "u"},
                },
                "/spec",
            ),
            (
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "spec": {
                        "user": "u",
                        "resourceAttributes": {},
                        "nonResourceAttributes": {},
                    },
                },
                "/spec",
            ),
            (
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "spec": {"user": 5, "resourceAttributes": {}},
                },
                "/spec/user",
            ),
            (
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "spec": {"groups": "g", "resourceAttributes": {}},
                },
                "/spec/groups",
            ),
        ],
    )
    def test_malformed(self, body, pointer):
        """Malformed reviews raise InvalidPolicyError pointing at the field."""
        with pytest.raises(InvalidPolicyError) as info:
            parse_subject_access_review(body)
        assert info.value.pointer == pointer


class TestResponse:
    """The status fields the API server reads."""

    @pytest.mark.parametrize(
        ("decision", "status"),
        [
            (AuthzDecision.ALLOW, {"allowed": True, "reason": "r"}),
            (AuthzDecision.DENY, {"allowed": False, "denied": True, "reason": "r"}),
            (AuthzDecision.NO_OPINION, {"allowed": False, "reason": "r"}),
        ],
    )
    def test_status(self, decision, status):
        """allowed/denied combinations: Allow, Deny, NoOpinion."""
        for version in ("authorization.k8s.io/v1", "authorization.k8s.io/v1beta1"):
            assert build_sar_response(version, decision, reason="r") == {
                "apiVersion": version,
                "kind": "SubjectAccessReview",
                "status": status,
            }

    def test_evaluation_error(self):
        """evaluationError is informational and sent only when set."""
        out = build_sar_response(
            "authorization.k8s.io/v1",
            AuthzDecision.NO_OPINION,
            evaluation_error="role missing",
        )
        assert out["status"] == {"allowed": False, "evaluationError": "role missing"}


POLICY = build_rbac_policy(
    [],
    [
        ClusterRole(
            "all",
            (
                PolicyRule(("*",), ("*",), ("*",)),
                PolicyRule(("*",), non_resource_urls=("*",)),
            ),
        )
    ],
    [
        Binding("ops", RoleRef("ClusterRole", "all"), (Subject("Group", "ops"),)),
        Binding("gone", RoleRef("ClusterRole", "missing"), (Subject("Group", "ops"),)),
    ],
)
DENY = parse_deny_rules(
    [
        {
            "name": "no-prod-secrets",
            "subjects": [{"kind": "Group", "name": "contractors"}],
            "verbs": ["get", "list", "watch"],
            "apiGroups": [""],
            "resources": ["secrets"],
            "namespaces": ["prod"],
        },
        {
            "name": "no-debug",
            "subjects": [{"kind": "Group", "name": "system:authenticated"}],
            "verbs": ["*"],
            "nonResourceURLs": ["/debug/*"],
        },
        {
            "name": "no-exec-ci",
            "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "ci"}],
            "verbs": ["create"],
            "apiGroups": [""],
            "resources": ["*/exec"],
        },
    ]
)


class TestChain:
    """system:masters first, then deny rules, then RBAC, else NoOpinion."""

    @pytest.mark.parametrize(
        ("user", "attrs", "decision"),
        [
            (
                UserInfo("c", ("ops", "contractors")),
                ResourceAttributes("get", "secrets", "", "prod"),
                AuthzDecision.DENY,
            ),
            (
                UserInfo("c", ("ops", "contractors")),
                ResourceAttributes("get", "secrets", "", "dev"),
                AuthzDecision.ALLOW,
            ),
            (
                UserInfo("c", ("contractors",)),
                ResourceAttributes("get", "secrets", "", "dev"),
                AuthzDecision.NO_OPINION,
            ),
            (
                UserInfo("o", ("ops", "system:authenticated")),
                NonResourceAttributes("get", "/debug/pprof"),
                AuthzDecision.DENY,
            ),
            (
                UserInfo("o", ("ops", "system:authenticated")),
                NonResourceAttributes("get", "/debug"),
                AuthzDecision.ALLOW,
            ),
            (
                UserInfo("system:serviceaccount:ci:ci", ("ops",)),
                ResourceAttributes("create", "pods", "", "ci", "exec"),
                AuthzDecision.DENY,
            ),
            (
                UserInfo("system:serviceaccount:ci:ci", ("ops",)),
                ResourceAttributes("create", "pods", "", "ci"),
                AuthzDecision.ALLOW,
            ),
            (
                UserInfo("m", ("system:masters", "contractors")),
                ResourceAttributes("get", "secrets", "", "prod"),
                AuthzDecision.ALLOW,
            ),
        ],
    )
    def test_decide(self, user, attrs, decision):
        """Deny rules win over RBAC; system:masters wins over deny rules."""
        assert decide(POLICY, user, attrs, deny_rules=DENY).decision is decision

    def test_reasons(self):
        """Reasons name the deny rule; NoOpinion carries resolution errors."""
        r = decide(
            POLICY,
            UserInfo("c", ("contractors",)),
            ResourceAttributes("get", "secrets", "", "prod"),
            deny_rules=DENY,
        )
        assert r.reason == "kubeiam: denied by deny rule 'no-prod-secrets'"
        r = decide(POLICY, UserInfo("x", ("ops",)), NonResourceAttributes("get", "/x"))
        assert r.reason.startswith('RBAC: allowed by ClusterRoleBinding "ops"')
        r = decide(
            POLICY,
            UserInfo("y", ("ops",)),
            ResourceAttributes("get", "pods"),
            privileged_bypass=False,
        )
        assert r.decision is AuthzDecision.ALLOW
        none = build_rbac_policy(
            [],
            [],
            [Binding("b", RoleRef("ClusterRole", "nope"), (Subject("User", "u"),))],
        )
        r = decide(none, UserInfo("u"), ResourceAttributes("get", "pods"))
        assert (r.decision, r.evaluation_error) == (
            AuthzDecision.NO_OPINION,
            'clusterrole.rbac.authorization.k8s.io "nope" not found',
        )

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            ("x", "must be a list"),
            (
                [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
                "/0/subjects: needs at least one",
            ),
            (
                [{"subjects": [{"kind": "Robot", "name": "r"}]}],
                "/0/subjects/0: needs kind",
            ),
            (
                [{"subjects": [{"kind": "ServiceAccount", "name": "r"}]}],
                "/0/subjects/0/namespace",
            ),
            (
                [
                    {
                        "subjects": [{"kind": "User", "name": "u"}],
                        "apiGroups": [""],
                        "resources": ["p"],
                    }
                ],
                "/0/verbs: verbs must contain",
            ),
            (
                [
                    {
                        "subjects": [{"kind": "User", "name": "u"}],
                        "verbs": ["get"],
                        "nonResourceURLs": ["/x"],
                        "namespaces": "prod",
                    }
                ],
                "/0/namespaces",
            ),
        ],
    )
    def test_bad_deny_rules(self, raw, message):
        """Deny-rule config errors name the rule and field."""
        with pytest.raises(InvalidPolicyError, match=message):
            parse_deny_rules(raw)
