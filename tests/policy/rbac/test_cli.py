"""`kubeiam policy can-i | rbac | who-can | covers` via main(argv) and the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from policy.rbac.builtin import builtin_objects, with_builtin
from policy.rbac.cli import CAN_I_ERROR, main, parse_resource_arg
from policy.rbac.load import RBACObjects
from policy.rbac.model import NonResourceAttributes, ResourceAttributes

DATA = Path(__file__).resolve().parents[2] / "data" / "rbac"
RBAC = ["--rbac", str(DATA / "cluster")]
MAPPING = ["--mapping", str(DATA / "aws-auth.yaml")]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run main(argv) and capture its output."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


class TestCanI:
    """kubectl auth can-i's shape: yes/no and exit 0/1."""

    @pytest.mark.parametrize(
        ("args", "answer"),
        [
            (
                [
                    "--as",
                    "alice",
                    "create",
                    "rolebindings.rbac.authorization.k8s.io",
                    "-n",
                    "dev",
                ],
                "yes",
            ),
            (["--as", "alice", "create", "rolebindings", "-n", "dev"], "yes"),
            (["--as", "alice", "create", "rolebindings", "-n", "prod"], "no"),
            (
                [
                    "--as",
                    "carol",
                    "--as-group",
                    "dev-team",
                    "update",
                    "deploy/scale",
                    "-n",
                    "dev",
                ],
                "yes",
            ),
            (
                [
                    "--as",
                    "carol",
                    "--as-group",
                    "dev-team",
                    "get",
                    "pods",
                    "--subresource",
                    "log",
                    "-n",
                    "dev",
                ],
                "yes",
            ),
            (
                [
                    "--as",
                    "carol",
                    "--as-group",
                    "dev-team",
                    "get",
                    "secrets",
                    "-n",
                    "dev",
                ],
                "yes",
            ),
            (["--as", "carol", "--as-group", "dev-team", "get", "secrets", "-A"], "no"),
            (["--as", "dave", "get", "/apis/apps/v1"], "yes"),
            (["--as", "dave", "get", "/metrics"], "no"),
            (["--as", "bob", "get", "nodes", "-n", "dev"], "no"),
            (
                [
                    "--as",
                    "system:serviceaccount:prod:deployer",
                    "get",
                    "configmaps",
                    "app-config",
                    "-n",
                    "prod",
                ],
                "yes",
            ),
            (
                [
                    "--as",
                    "system:serviceaccount:monitoring:node-exporter",
                    "list",
                    "nodes",
                ],
                "yes",
            ),
            (
                ["--as", "root", "--as-group", "system:masters", "delete", "nodes"],
                "yes",
            ),
        ],
    )
    def test_answers(self, capsys, args, answer):
        """Answers on the realistic fixture (cluster-scoped types ignore -n)."""
        code, out, _ = run(capsys, "can-i", *RBAC, *args)
        assert out.split(" - ")[0].strip() == answer  # "no - <reason>"
        assert code == (0 if answer == "yes" else 1)

    def test_json(self, capsys):
        """-o json carries the reason and the user the request ran as."""
        code, out, _ = run(
            capsys,
            "can-i",
            *RBAC,
            "--as",
            "alice",
            "-o",
            "json",
            "get",
            "pods",
            "-n",
            "dev",
        )
        doc = json.loads(out)
        assert code == 0
        assert doc["allowed"] is True
        assert (
            doc["reason"]
            == 'RBAC: allowed by RoleBinding "dev-admins/dev" of ClusterRole "admin" '
            'to User "alice"'
        )
        assert doc["user"] == {"username": "alice", "groups": ["system:authenticated"]}

    def test_unknown_type_warns(self, capsys):
        """An unknown resource type is used as written, with kubectl's warning."""
        code, out, err = run(capsys, "can-i", *RBAC, "--as", "u", "get", "widgets")
        assert (code, out.split(" - ")[0]) == (1, "no")
        assert "doesn't have a resource type 'widgets'" in err

    def test_privileged_bypass_can_be_disabled(self, capsys):
        """Without the bypass, system:masters is an ordinary (bound) group."""
        code, out, _ = run(
            capsys,
            "can-i",
            *RBAC,
            "--as",
            "x",
            "--as-group",
            "system:masters",
            "--no-privileged-bypass",
            "delete",
            "nodes",
        )
        assert (code, out.strip()) == (0, "yes")


class TestList:
    """can-i --list: the rules held in a namespace."""

    def test_table(self, capsys):
        """kubectl's four columns; RoleBinding rules only in their namespace."""
        args = ["can-i", *RBAC, "--as", "carol", "--as-group", "dev-team", "--list"]
        code, out, _ = run(capsys, *args, "-n", "dev")
        lines = out.splitlines()
        assert code == 0
        assert lines[0].split() == [
            "Resources",
            "Non-Resource",
            "URLs",
            "Resource",
            "Names",
            "Verbs",
        ]
        assert any(
            line.split()
            == [
                "deployments.apps/scale",
                "[]",
                "[]",
                "[create",
                "delete",
                "deletecollection",
                "patch",
                "update",
                "get",
                "list",
                "watch]",
            ]
            for line in lines
        )
        code, out, _ = run(capsys, *args, "-n", "prod")
        assert "deployments.apps" not in out and "[/healthz]" in out

    def test_json_and_usage(self, capsys):
        """-o json lists rules and errors; no request and no --list is a usage error."""
        _code, out, _ = run(
            capsys,
            "can-i",
            *RBAC,
            "--as",
            "x",
            "--as-group",
            "dev-team",
            "--list",
            "-n",
            "prod",
            "-o",
            "json",
        )
        doc = json.loads(out)
        assert doc["errors"] == [
            'role.rbac.authorization.k8s.io "does-not-exist" '
            "not found in namespace prod"
        ]
        with pytest.raises(SystemExit) as info:
            main(["can-i", *RBAC, "--as", "x"])
        assert info.value.code == 2


class TestAsARN:
    """From an IAM identity through aws-auth to a Kubernetes decision."""

    @pytest.mark.parametrize(
        ("arn", "args", "answer", "user"),
        [
            (
                "arn:aws:sts::111122223333:assumed-role/DevRole/carol@example.com",
                ["update", "deployments", "-n", "dev"],
                "yes",
                "dev:carol-example.com",
            ),
            (
                "arn:aws:iam::111122223333:role/DevRole",
                ["get", "secrets", "-n", "prod"],
                "no",
                "dev:",
            ),
            (
                "arn:aws:iam::111122223333:role/Auditor",
                ["list", "pods", "-A"],
                "yes",
                "auditor",
            ),
            (
                "arn:aws:iam::111122223333:user/alice",
                ["create", "roles", "-n", "dev"],
                "yes",
                "alice",
            ),
            (
                "arn:aws:sts::111122223333:assumed-role/ClusterAdmin/ops",
                ["delete", "nodes"],
                "yes",
                "admin:ops",
            ),
        ],
    )
    def test_walk(self, capsys, arn, args, answer, user):
        """The mapped username and groups decide, with system:authenticated added."""
        code, out, _ = run(
            capsys, "can-i", *RBAC, *MAPPING, "--as-arn", arn, "-o", "json", *args
        )
        doc = json.loads(out)
        assert doc["allowed"] is (answer == "yes")
        assert doc["user"]["username"] == user
        assert "system:authenticated" in doc["user"]["groups"]
        assert code == (0 if answer == "yes" else 1)

    def test_unmapped(self, capsys):
        """An identity no entry maps is a 'no' that says why."""
        code, out, _ = run(
            capsys,
            "can-i",
            *RBAC,
            *MAPPING,
            "--as-arn",
            "arn:aws:iam::444455556666:role/Other",
            "get",
            "pods",
        )
        assert code == 1
        assert out.startswith("no - arn:aws:iam::444455556666:role/Other is not mapped")

    def test_needs_mapping(self, capsys):
        """--as-arn without --mapping is an error with one clear line."""
        code, _, err = run(
            capsys,
            "can-i",
            *RBAC,
            "--as-arn",
            "arn:aws:iam::111122223333:user/a",
            "get",
            "pods",
        )
        assert code == 3  # an error, not "no"
        assert "--as-arn needs --mapping" in err


class TestBatchAndReverse:
    """rbac (batch), who-can and covers."""

    def test_batch_json(self, capsys):
        """Each spec gets a decision in order."""
        code, out, _ = run(
            capsys,
            "rbac",
            *RBAC,
            "--requests",
            str(DATA / "requests.json"),
            "-o",
            "json",
        )
        assert code == 0
        assert [r["allowed"] for r in json.loads(out)] == [
            True,
            False,
            True,
            True,
            True,
        ]

    def test_batch_accepts_whole_reviews_and_v1beta1(self, capsys, tmp_path):
        """Whole SubjectAccessReviews and v1beta1's `group` are accepted too."""
        f = tmp_path / "r.yaml"
        f.write_text(
            "apiVersion: authorization.k8s.io/v1beta1\nkind: SubjectAccessReview\n"
            "spec: {user: u, group: [auditors],\n"
            "  resourceAttributes: {verb: list, resource: pods}}\n"
        )
        _code, out, _ = run(capsys, "rbac", *RBAC, "--requests", str(f), "-o", "json")
        assert json.loads(out)[0]["allowed"] is True

    def test_batch_bad_spec(self, capsys, tmp_path):
        """A malformed spec names its index."""
        f = tmp_path / "r.json"
        f.write_text('[{"user": "u"}]')
        code, _, err = run(capsys, "rbac", *RBAC, "--requests", str(f))
        assert code == 1
        assert "/0/spec: needs exactly one" in err

    def test_who_can(self, capsys):
        """Subjects from ClusterRoleBindings and the namespace's RoleBindings."""
        _code, out, _ = run(
            capsys,
            "who-can",
            *RBAC,
            "--no-builtin-roles",  # only the files' subjects (built-ins: elsewhere)
            "update",
            "configmaps",
            "app-config",
            "-n",
            "prod",
            "-o",
            "json",
        )
        subjects = {
            (s["kind"], s["namespace"], s["name"]) for s in json.loads(out)["subjects"]
        }
        assert subjects == {
            ("Group", "", "system:masters"),
            ("ServiceAccount", "prod", "deployer"),
            ("ServiceAccount", "ci", "builder"),
        }

    def test_covers(self, capsys):
        """admin covers edit; view does not, and the gap is compacted by verbs."""
        assert run(capsys, "covers", *RBAC, "admin", "clusterrole/edit")[0] == 0
        code, out, _ = run(capsys, "covers", *RBAC, "view", "edit", "-o", "json")
        doc = json.loads(out)
        assert code == 1 and doc["covers"] is False
        assert {
            "apiGroups": [""],
            "resources": ["serviceaccounts"],
            "verbs": ["impersonate"],
        } in doc["uncovered"]

    def test_covers_unknown_role(self, capsys):
        """An unknown role name is an error."""
        code, _, err = run(capsys, "covers", *RBAC, "role/dev/nope", "view")
        assert code == 1 and "no such role" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("get", "pods", "", "dev"), ResourceAttributes("get", "pods", "", "dev")),
        (
            ("get", "po/log", "web", "dev"),
            ResourceAttributes("get", "pods", "", "dev", "log", "web"),
        ),
        (
            ("get", "deployments.apps/scale", "", "dev"),
            ResourceAttributes("get", "deployments", "apps", "dev", "scale"),
        ),
        (("list", "nodes", "", "dev"), ResourceAttributes("list", "nodes", "", "")),
        (("get", "/healthz", "", "dev"), NonResourceAttributes("get", "/healthz")),
    ],
)
def test_parse_resource_arg(args, expected):
    """TYPE[.group][/subresource], short names, cluster scope and URLs."""
    assert parse_resource_arg(*args)[0] == expected


def test_through_the_kubeiam_command():
    """The installed command dispatches `policy can-i` and sets the exit code."""
    cmd = [
        sys.executable,
        "-m",
        "kubeiam",
        "policy",
        "can-i",
        *RBAC,
        "--as",
        "dave",
        "get",
        "/healthz",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout.strip()) == (0, "yes")
    proc = subprocess.run(
        [*cmd[:-2], "delete", "nodes"], capture_output=True, text=True, check=False
    )
    assert (proc.returncode, proc.stdout.split(" - ")[0]) == (1, "no")


# --- The roles and bindings every cluster has, known to can-i / rbac / who-can.

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


# --- `kubeiam policy can-i` says why, and tells "no" from an error (issue 14, item 7).


class TestReasonInText:
    """Text mode prints the reason: on stdout after "no", on stderr after "yes"."""

    def test_yes_keeps_stdout_and_gives_the_reason(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """stdout is exactly "yes" (scripts compare it); stderr says which binding."""
        code, out, err = run(
            capsys,
            "can-i",
            *RBAC,
            "--as",
            "x",
            "--as-group",
            "auditors",
            "list",
            "pods",
            "-A",
        )
        assert (code, out) == (0, "yes\n")
        assert err.startswith("reason: ") and "auditors" in err

    def test_no_says_why(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A denial prints "no - <reason>" like kubectl does."""
        code, out, _ = run(capsys, "can-i", *RBAC, "--as", "nobody", "delete", "nodes")
        assert code == 1
        assert out.startswith("no - ") and len(out.strip()) > len("no - ")


class TestExitCodes:
    """0 yes, 1 no, 2 usage, 3 error."""

    def test_error_is_not_no(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A missing RBAC path or a bad ARN exits 3, with one line on stderr."""
        code, out, err = run(
            capsys,
            "can-i",
            "--rbac",
            str(tmp_path / "nope"),
            "--as",
            "a",
            "get",
            "pods",
        )
        assert (code, out) == (CAN_I_ERROR, "")
        assert err.count("\n") == 1
        code, _, err = run(
            capsys, "can-i", *RBAC, *MAPPING, "--as-arn", "not-an-arn", "get", "pods"
        )
        assert code == CAN_I_ERROR == 3
        assert "arn" in err.lower()

    def test_usage_is_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No verb and no --list is a usage error."""
        with pytest.raises(SystemExit) as info:
            main(["can-i", *RBAC, "--as", "a"])
        assert info.value.code == 2

    def test_installed_command(self, tmp_path: Path) -> None:
        """The exit code reaches the shell: 1 for no, 3 for an error."""
        base = [sys.executable, "-m", "kubeiam", "policy", "can-i"]
        no = subprocess.run(
            [*base, *RBAC, "--as", "nobody", "delete", "nodes"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        bad = subprocess.run(
            [*base, "--rbac", str(tmp_path / "nope"), "--as", "a", "get", "pods"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert (no.returncode, bad.returncode) == (1, 3)


class TestEmptySessionWarning:
    """--as-arn with a {{SessionName}} template and an ARN without a session."""

    def test_role_arn_warns(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The role's own ARN renders dev: with an empty session: a warning says so."""
        _code, _out, err = run(
            capsys,
            "can-i",
            *RBAC,
            *MAPPING,
            "--as-arn",
            "arn:aws:iam::111122223333:role/team/DevRole",
            "get",
            "pods",
            "-n",
            "dev",
        )
        assert "warning:" in err and "{{SessionName}}" in err
        assert "mapRoles[0]" in err

    @pytest.mark.parametrize(
        "arn",
        [
            "arn:aws:sts::111122223333:assumed-role/DevRole/alice",
            "arn:aws:iam::111122223333:role/Auditor",  # no template: nothing to warn
        ],
    )
    def test_no_warning(self, capsys: pytest.CaptureFixture[str], arn: str) -> None:
        """A session ARN, or an entry without the template, gives no warning."""
        _code, _out, err = run(
            capsys, "can-i", *RBAC, *MAPPING, "--as-arn", arn, "get", "pods"
        )
        assert "warning:" not in err
