"""The escalation comparator: upstream's policy_comparator_test.go cases, restated."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from policy.rbac.aggregate import build_rbac_policy
from policy.rbac.covers import confirm_no_escalation, covers, non_resource_url_covers
from policy.rbac.model import (
    Binding,
    ClusterRole,
    PolicyRule,
    RoleRef,
    Subject,
    UserInfo,
)


def R(  # noqa: N802 - reads like upstream's rbacv1.PolicyRule literals
    groups: Sequence[str] = (),
    verbs: Sequence[str] = (),
    resources: Sequence[str] = (),
    names: Sequence[str] = (),
    urls: Sequence[str] = (),
) -> PolicyRule:
    """A rule from keyword lists, like upstream's struct literals."""
    return PolicyRule(
        tuple(verbs), tuple(groups), tuple(resources), tuple(names), tuple(urls)
    )


CASES = {
    "exact match": (
        [R(["v1"], ["get"], ["builds"])],
        [R(["v1"], ["get"], ["builds"])],
        [],
    ),
    "subresource wildcard": (
        [R(["v1"], ["get"], ["*/scale"])],
        [R(["v1"], ["get"], ["foo/scale"])],
        [],
    ),
    "multiple rules covering single rule": (
        [
            R(["v1"], ["delete"], ["deployments"]),
            R(["v1"], ["delete"], ["builds"]),
            R(["v1"], ["update"], ["builds", "deployments"]),
        ],
        [R(["v1"], ["delete", "update"], ["builds", "deployments"])],
        [],
    ),
    "multiple api groups covering single rule": (
        [R([g], ["delete"], ["deployments"]) for g in ("group1", "group2")]
        + [R([g], ["delete"], ["builds"]) for g in ("group1", "group2")]
        + [R([g], ["update"], ["builds", "deployments"]) for g in ("group1", "group2")],
        [R(["group1", "group2"], ["delete", "update"], ["builds", "deployments"])],
        [],
    ),
    "single api group rule covering multiple": (
        [R(["group1", "group2"], ["delete", "update"], ["builds", "deployments"])],
        [
            R(["group1"], ["delete"], ["deployments"]),
            R(["group2"], ["update"], ["builds"]),
        ],
        [],
    ),
    "missing single verb/resource combination": (
        [
            R(["v1"], ["delete", "update"], ["builds", "deployments"]),
            R(["v1"], ["delete"], ["pods"]),
        ],
        [R(["v1"], ["delete", "update"], ["builds", "deployments", "pods"])],
        [R(["v1"], ["update"], ["pods"])],
    ),
    "api group star covering multiple": (
        [R(["*"], ["get"], ["roles"])],
        [R(["group1", "group2"], ["get"], ["roles"])],
        [],
    ),
    "enumeration not covering api group star": (
        [R(["dummy-group"], ["get"], ["roles"])],
        [R(["*"], ["get"], ["roles"])],
        [R(["*"], ["get"], ["roles"])],
    ),
    "api group star covering star": (
        [R(["*"], ["get"], ["roles"])],
        [R(["*"], ["get"], ["roles"])],
        [],
    ),
    "verb star covering multiple": (
        [R(["v1"], ["*"], ["roles"])],
        [R(["v1"], ["watch", "list"], ["roles"])],
        [],
    ),
    "enumeration not covering verb star": (
        [
            R(
                ["v1"],
                ["get", "list", "watch", "create", "update", "delete", "exec"],
                ["roles"],
            )
        ],
        [R(["v1"], ["*"], ["roles"])],
        [R(["v1"], ["*"], ["roles"])],
    ),
    "verb star covering star": (
        [R(["v1"], ["*"], ["roles"])],
        [R(["v1"], ["*"], ["roles"])],
        [],
    ),
    "resource star covering multiple": (
        [R(["v1"], ["get"], ["*"])],
        [R(["v1"], ["get"], ["resourcegroup:deployments"])],
        [],
    ),
    "enumeration not covering resource star": (
        [R(["v1"], ["get"], ["roles", "resourcegroup:deployments"])],
        [R(["v1"], ["get"], ["*"])],
        [R(["v1"], ["get"], ["*"])],
    ),
    "resource star covering star": (
        [R(["v1"], ["get"], ["*"])],
        [R(["v1"], ["get"], ["*"])],
        [],
    ),
    "resource name empty covering multiple": (
        [R(["v1"], ["get"], ["pods"])],
        [R(["v1"], ["get"], ["pods"], ["foo", "bar"])],
        [],
    ),
    "enumeration not covering resource name empty": (
        [R(["v1"], ["get"], ["pods"], ["foo", "bar"])],
        [R(["v1"], ["get"], ["pods"])],
        [R(["v1"], ["get"], ["pods"])],
    ),
    "non-resource urls": (
        [R(verbs=["*"], urls=["/apis"])],
        [R(verbs=["*"], urls=["/apis"])],
        [],
    ),
    "non-resource urls star": (
        [R(verbs=["*"], urls=["*"])],
        [R(verbs=["*"], urls=["/apis", "/apis/v1", "/"])],
        [],
    ),
    "non-resource urls star after prefix doesn't cover": (
        [R(verbs=["*"], urls=["/apis/*"])],
        [R(verbs=["get"], urls=["/apis", "/apis/v1"])],
        [R(verbs=["get"], urls=["/apis"])],
    ),
    "non-resource urls star after prefix": (
        [R(verbs=["*"], urls=["/apis/*"])],
        [R(verbs=["get"], urls=["/apis/v1/foo", "/apis/v1"])],
        [],
    ),
    "non-resource urls with other fields": (
        [R(["v1"], ["get"], ["builds"], urls=["/apis"])],
        [R(["v1"], ["get"], ["builds"], urls=["/apis"])],
        [],
    ),
    "non-resource urls with other fields failure": (
        [R(["v1"], ["get"], ["builds"])],
        [R(["v1"], ["get"], ["builds"], urls=["/apis"])],
        [R(verbs=["get"], urls=["/apis"])],
    ),
}


@pytest.mark.parametrize(
    ("owner", "servant", "uncovered"), CASES.values(), ids=list(CASES)
)
def test_covers(owner, servant, uncovered):
    """Covers(owner, servant) returns upstream's verdict and uncovered atomic rules."""
    ok, missing = covers(owner, servant)
    assert ok is (not uncovered)
    assert sorted(missing, key=repr) == sorted(uncovered, key=repr)


@pytest.mark.parametrize(
    ("owner", "requested", "want"),
    [
        ("*", "", True),
        ("*", "/", True),
        ("*", "/api", True),
        ("/*", "", False),
        ("/*", "/", True),
        ("/*", "/foo", True),
        ("/api", "/api", True),
        ("/apis", "/api", False),
        ("/api/v1", "/api", False),
        ("/api/v1", "/api/v1", True),
        ("/api/*", "/api/v1", True),
        ("/api/*", "/api", False),
        ("/api/*/*", "/api/v1", False),
        ("/*/v1/*", "/api/v1", False),
    ],
)
def test_non_resource_url_covers(owner, requested, want):
    """TestNonResourceURLCovers."""
    assert non_resource_url_covers(owner, requested) is want


def test_compact_string():
    """Uncovered rules print in upstream's CompactString form."""
    rule = R([""], ["get"], ["pods"], ["a"])
    assert (
        rule.compact()
        == '{APIGroups:[""], Resources:["pods"], ResourceNames:["a"], Verbs:["get"]}'
    )


class TestConfirmNoEscalation:
    """A user may grant only rules it holds in that namespace."""

    policy = build_rbac_policy(
        [],
        [ClusterRole("edit", (R([""], ["get", "create"], ["pods"]),))],
        [Binding("b", RoleRef("ClusterRole", "edit"), (Subject("User", "u"),), "dev")],
    )

    def test_held_in_namespace(self):
        """Rules held through a RoleBinding cover a role in that namespace."""
        assert confirm_no_escalation(
            self.policy, UserInfo("u"), "dev", [R([""], ["get"], ["pods"])]
        ) == (True, [])

    def test_not_held_elsewhere(self):
        """The same rules are not held in another namespace or cluster-wide."""
        for ns in ("prod", ""):
            ok, missing = confirm_no_escalation(
                self.policy, UserInfo("u"), ns, [R([""], ["get"], ["pods"])]
            )
            assert not ok
            assert missing == [R([""], ["get"], ["pods"])]
