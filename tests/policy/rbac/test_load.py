"""Reading RBAC objects from files: multi-document YAML, Lists, JSON, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.errors import InvalidPolicyError
from policy.rbac.evaluator import evaluate_rbac
from policy.rbac.load import load_rbac_paths, parse_rbac_documents
from policy.rbac.model import (
    NonResourceAttributes,
    PolicyRule,
    ResourceAttributes,
    UserInfo,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "rbac"
AUTH = ("system:authenticated",)


@pytest.fixture(scope="module")
def cluster():
    """The realistic cluster fixture, read from its directory."""
    return load_rbac_paths([DATA / "cluster"])


class TestLoad:
    """Directory loading and the decisions it supports."""

    def test_counts(self, cluster):
        """YAML documents, a v1 List, a ClusterRoleList in JSON; other kinds skipped."""
        assert len(cluster.cluster_roles) == 10
        assert len(cluster.roles) == 1
        assert len(cluster.bindings) == 10
        assert {b.namespace for b in cluster.bindings if b.namespace} == {"dev", "prod"}

    def test_aggregation_from_files(self, cluster):
        """admin ⊇ edit ⊇ view after aggregation, and edit's stale rule is gone."""
        roles = cluster.policy().cluster_roles
        view, edit, admin = (set(roles[n].rules) for n in ("view", "edit", "admin"))
        assert view and view < edit < admin
        assert PolicyRule(("get",), ("stale",), ("leftovers",)) not in edit

    @pytest.mark.parametrize(
        ("user", "groups", "attrs", "allowed"),
        [
            (
                "alice",
                AUTH,
                ResourceAttributes(
                    "create", "rolebindings", "rbac.authorization.k8s.io", "dev"
                ),
                True,
            ),
            (
                "carol",
                ("dev-team", *AUTH),
                ResourceAttributes(
                    "create", "rolebindings", "rbac.authorization.k8s.io", "dev"
                ),
                False,
            ),
            (
                "carol",
                ("dev-team", *AUTH),
                ResourceAttributes("update", "deployments", "apps", "dev", "scale"),
                True,
            ),
            (
                "carol",
                ("dev-team", *AUTH),
                ResourceAttributes("get", "pods", "", "dev", "log"),
                True,
            ),
            (
                "carol",
                ("dev-team", *AUTH),
                ResourceAttributes("get", "pods", "", "prod"),
                False,
            ),
            (
                "dave",
                ("auditors", *AUTH),
                ResourceAttributes("list", "pods", "", ""),
                True,
            ),
            (
                "dave",
                ("auditors", *AUTH),
                ResourceAttributes("get", "secrets", "", "dev"),
                False,
            ),
            ("dave", AUTH, NonResourceAttributes("get", "/apis/apps/v1"), True),
            ("dave", AUTH, NonResourceAttributes("get", "/metrics"), False),
            (
                "dave",
                AUTH,
                ResourceAttributes(
                    "create", "selfsubjectaccessreviews", "authorization.k8s.io"
                ),
                True,
            ),
            ("bob", AUTH, ResourceAttributes("get", "nodes", ""), False),
            ("bob", AUTH, ResourceAttributes("get", "nodes", "", "dev"), True),
            (
                "system:serviceaccount:prod:deployer",
                AUTH,
                ResourceAttributes("get", "configmaps", "", "prod", "", "app-config"),
                True,
            ),
            (
                "system:serviceaccount:prod:deployer",
                AUTH,
                ResourceAttributes("get", "configmaps", "", "prod", "", "other"),
                False,
            ),
            (
                "system:serviceaccount:ci:builder",
                AUTH,
                ResourceAttributes(
                    "update", "configmaps", "", "prod", "", "app-config"
                ),
                True,
            ),
            (
                "system:serviceaccount:monitoring:node-exporter",
                (),
                ResourceAttributes("watch", "nodes", ""),
                True,
            ),
            (
                "eve",
                ("system:masters",),
                ResourceAttributes("delete", "nodes", ""),
                True,
            ),
        ],
    )
    def test_decisions(self, cluster, user, groups, attrs, allowed):
        """Decisions on the realistic fixture, indexed and linear alike."""
        policy = cluster.policy()
        u = UserInfo(user, groups)
        assert evaluate_rbac(policy, u, attrs).allowed is allowed
        assert evaluate_rbac(policy, u, attrs, indexed=False).allowed is allowed


def _doc(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "x", "namespace": "ns"},
    }
    return base | kw


class TestValidation:
    """Invalid objects are rejected with FILE[DOC]/field locations."""

    @pytest.mark.parametrize(
        ("doc", "where", "message"),
        [
            (
                _doc(kind="Role", rules=[{"apiGroups": [""], "resources": ["pods"]}]),
                "/rules/0/verbs",
                "at least one",
            ),
            (
                _doc(kind="Role", rules=[{"verbs": ["get"], "resources": ["pods"]}]),
                "/rules/0/apiGroups",
                "api group",
            ),
            (
                _doc(kind="Role", rules=[{"verbs": ["get"], "apiGroups": [""]}]),
                "/rules/0/resources",
                "resource",
            ),
            (
                _doc(
                    kind="Role", rules=[{"verbs": ["get"], "nonResourceURLs": ["/x"]}]
                ),
                "/rules/0/nonResourceURLs",
                "namespaced",
            ),
            (
                _doc(
                    kind="ClusterRole",
                    rules=[
                        {
                            "verbs": ["get"],
                            "nonResourceURLs": ["/x"],
                            "resources": ["p"],
                        }
                    ],
                ),
                "/rules/0/nonResourceURLs",
                "both",
            ),
            (
                _doc(kind="Role", rules=[{"verbs": "get"}]),
                "/rules/0/verbs",
                "list of strings",
            ),
            (
                _doc(
                    kind="ClusterRoleBinding",
                    roleRef={
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": "r",
                    },
                ),
                "/roleRef/kind",
                "only reference ClusterRole",
            ),
            (
                _doc(kind="RoleBinding", roleRef={"kind": "Role", "name": "r"}),
                "/roleRef/apiGroup",
                "required",
            ),
            (
                _doc(
                    kind="ClusterRoleBinding",
                    roleRef={
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "r",
                    },
                    subjects=[{"kind": "ServiceAccount", "name": "sa"}],
                ),
                "/subjects/0/namespace",
                "required",
            ),
            (
                _doc(
                    kind="RoleBinding",
                    roleRef={
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": "r",
                    },
                    subjects=[{"kind": "Robot", "name": "r2"}],
                ),
                "/subjects/0/kind",
                "Robot",
            ),
            (
                _doc(
                    kind="ClusterRole",
                    aggregationRule={
                        "clusterRoleSelectors": [
                            {"matchExpressions": [{"key": "k", "operator": "Near"}]}
                        ]
                    },
                ),
                "/aggregationRule/clusterRoleSelectors/0/matchExpressions/0/operator",
                "Near",
            ),
            (
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": {},
                },
                "/metadata/name",
                "required",
            ),
            (
                _doc(kind="Role", apiVersion="v1"),
                "/apiVersion",
                "not an RBAC apiVersion",
            ),
        ],
    )
    def test_invalid(self, doc, where, message):
        """Each malformed object names file, document and field."""
        with pytest.raises(InvalidPolicyError) as info:
            parse_rbac_documents([("f.yaml[3]", doc)])
        assert str(info.value).startswith(f"f.yaml[3]{where}: ")
        assert message in str(info.value)

    def test_duplicates(self):
        """A second object of the same kind, namespace and name is an error."""
        role = _doc(kind="Role", rules=[])
        with pytest.raises(
            InvalidPolicyError,
            match=r"^b\[1\]/metadata/name: duplicate Role 'ns/x' "
            r"\(first defined in a\[0\]\)",
        ):
            parse_rbac_documents([("a[0]", role), ("b[1]", role)])
        other_ns = role | {"metadata": {"name": "x", "namespace": "other"}}
        assert (
            len(parse_rbac_documents([("a[0]", role), ("b[1]", other_ns)]).roles) == 2
        )

    def test_list_item_location(self):
        """An error inside a List points at the item."""
        doc = {
            "apiVersion": "v1",
            "kind": "List",
            "items": [_doc(kind="Role", rules=[{"verbs": []}])],
        }
        with pytest.raises(
            InvalidPolicyError, match=r"^f\[0\]/items/0/rules/0/verbs: "
        ):
            parse_rbac_documents([("f[0]", doc)])

    def test_file_errors(self, tmp_path):
        """Unparsable YAML and unreadable files are InvalidPolicyError with the path."""
        bad = tmp_path / "bad.yaml"
        bad.write_text("kind: [unclosed\n")
        with pytest.raises(InvalidPolicyError, match=r"bad\.yaml: not valid YAML"):
            load_rbac_paths([bad])
        with pytest.raises(InvalidPolicyError, match="cannot read"):
            load_rbac_paths([tmp_path / "missing.yaml"])

    def test_defaults(self, tmp_path):
        """Namespace defaults to `default`; User/Group apiGroup defaults to rbac's."""
        f = tmp_path / "rb.yaml"
        f.write_text(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
            "metadata: {name: b}\n"
            "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\n"
            "subjects: [{kind: User, name: u}]\n"
        )
        (binding,) = load_rbac_paths([f]).bindings
        assert binding.namespace == "default"
        assert binding.subjects[0].api_group == "rbac.authorization.k8s.io"
