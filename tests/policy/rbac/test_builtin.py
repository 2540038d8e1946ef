"""The roles and bindings every cluster has, known to can-i / rbac / who-can.

The objects are Kubernetes 1.36's bootstrap policy (policy/rbac/bootstrap/*.yaml,
the API server's own golden files); these tests check the commands use them by
default, that ``--no-builtin-roles`` turns them off, and that the files win.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policy.rbac.builtin import builtin_objects, with_builtin
from policy.rbac.cli import main
from policy.rbac.load import RBACObjects
from tests.policy.rbac.test_cli import run

BINDINGS = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-view, namespace: dev}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-admin, namespace: dev}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
"""


@pytest.fixture
def rbac_dir(tmp_path: Path) -> Path:
    """Only bindings: every role they name is a built-in one."""
    (tmp_path / "bindings.yaml").write_text(BINDINGS)
    return tmp_path


def _can_i(
    capsys: pytest.CaptureFixture[str], rbac: Path, *args: str
) -> tuple[int, str]:
    code, out, _ = run(capsys, "can-i", "--rbac", str(rbac), *args)
    return code, out.split(" - ")[0].strip()


class TestCanIKnowsBuiltins:
    """can-i answers as a real 1.36 cluster does."""

    @pytest.mark.parametrize(
        ("user", "request_args", "answer"),
        [
            ("alice", ["get", "pods", "-n", "dev"], "yes"),  # view
            ("alice", ["get", "secrets", "-n", "dev"], "no"),  # view has no secrets
            ("alice", ["get", "pods", "-n", "prod"], "no"),  # bound in dev only
            ("bob", ["create", "rolebindings", "-n", "dev"], "yes"),  # admin
            ("bob", ["delete", "secrets", "-n", "dev"], "yes"),  # admin ⊃ edit
            ("bob", ["create", "resourcequotas", "-n", "dev"], "no"),
            # system:basic-user, bound to system:authenticated in every cluster
            ("carol", ["create", "selfsubjectaccessreviews"], "yes"),
            # system:public-info-viewer / system:discovery
            ("carol", ["get", "/version"], "yes"),
            ("carol", ["get", "/api"], "yes"),
            ("carol", ["get", "/metrics"], "no"),
        ],
    )
    def test_answers(
        self,
        capsys: pytest.CaptureFixture[str],
        rbac_dir: Path,
        user: str,
        request_args: list[str],
        answer: str,
    ) -> None:
        """Each answer is the cluster's, with no role written in the files."""
        code, got = _can_i(capsys, rbac_dir, "--as", user, *request_args)
        assert got == answer
        assert code == (0 if answer == "yes" else 1)

    def test_flag_turns_them_off(
        self, capsys: pytest.CaptureFixture[str], rbac_dir: Path
    ) -> None:
        """--no-builtin-roles: the binding's ClusterRole does not exist, so no."""
        args = ["--as", "alice", "get", "pods", "-n", "dev"]
        assert _can_i(capsys, rbac_dir, *args) == (0, "yes")
        assert _can_i(capsys, rbac_dir, "--no-builtin-roles", *args) == (1, "no")

    def test_masters_without_bypass(
        self, capsys: pytest.CaptureFixture[str], rbac_dir: Path
    ) -> None:
        """system:masters gets everything through the cluster-admin binding too."""
        args = ["--as", "root", "--as-group", "system:masters"]
        args += ["--no-privileged-bypass", "delete", "nodes"]
        assert _can_i(capsys, rbac_dir, *args) == (0, "yes")
        assert _can_i(capsys, rbac_dir, "--no-builtin-roles", *args) == (1, "no")

    def test_files_win(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A view ClusterRole in the files replaces the built-in one."""
        (tmp_path / "b.yaml").write_text(BINDINGS)
        (tmp_path / "view.yaml").write_text(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
            "metadata: {name: view}\n"
            "rules: [{apiGroups: [''], resources: [secrets], verbs: [get]}]\n"
        )
        base = ["--as", "alice", "-n", "dev"]
        assert _can_i(capsys, tmp_path, *base, "get", "secrets") == (0, "yes")
        assert _can_i(capsys, tmp_path, *base, "get", "pods") == (1, "no")


class TestOtherCommands:
    """who-can and rbac (batch) see the built-ins too."""

    def test_who_can(self, capsys: pytest.CaptureFixture[str], rbac_dir: Path) -> None:
        """Who may delete nodes: system:masters and the controllers that do."""
        code, out, _ = run(
            capsys, "who-can", "--rbac", str(rbac_dir), "delete", "nodes", "-o", "json"
        )
        assert code == 0
        subjects = {(s["kind"], s["name"]) for s in json.loads(out)["subjects"]}
        assert ("Group", "system:masters") in subjects
        assert ("ServiceAccount", "node-controller") in subjects
        code, out, _ = run(
            capsys,
            "who-can",
            "--rbac",
            str(rbac_dir),
            "--no-builtin-roles",
            "delete",
            "nodes",
            "-o",
            "json",
        )
        assert json.loads(out)["subjects"] == []

    def test_rbac_batch(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A SubjectAccessReview spec is decided with the built-in view role."""
        (tmp_path / "in").mkdir()  # not in rbac_dir (the same tmp_path)
        requests = tmp_path / "in" / "requests.json"
        requests.write_text(
            json.dumps(
                [
                    {
                        "user": "alice",
                        "resourceAttributes": {
                            "verb": "list",
                            "resource": "deployments",
                            "group": "apps",
                            "namespace": "dev",
                        },
                    }
                ]
            )
        )
        (tmp_path / "rbac").mkdir()
        (tmp_path / "rbac" / "bindings.yaml").write_text(BINDINGS)
        argv = ["rbac", "--rbac", str(tmp_path / "rbac"), "--requests", str(requests)]
        code = main([*argv, "-o", "json"])
        assert code == 0
        assert json.loads(capsys.readouterr().out)[0]["allowed"] is True


class TestData:
    """The bootstrap data itself."""

    def test_well_known_objects(self) -> None:
        """view, edit, admin, cluster-admin and system roles with their bindings."""
        objects = builtin_objects()
        names = {c.name for c in objects.cluster_roles}
        assert {"view", "edit", "admin", "cluster-admin"} <= names
        assert {"system:node", "system:kube-scheduler", "system:basic-user"} <= names
        assert "system:controller:node-controller" in names
        admin_binding = next(b for b in objects.bindings if b.name == "cluster-admin")
        assert [s.name for s in admin_binding.subjects] == ["system:masters"]
        assert {r.namespace for r in objects.roles} == {"kube-system", "kube-public"}

    def test_with_builtin_keeps_user_objects_last(self) -> None:
        """The user's objects are kept whole; built-ins they redefine are dropped."""
        user = RBACObjects()
        merged = with_builtin(user)
        assert len(merged.cluster_roles) == len(builtin_objects().cluster_roles)
        assert merged is not builtin_objects()
