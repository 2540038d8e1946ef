"""`kubeiam policy can-i | rbac | who-can | covers` via main(argv) and the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from policy.rbac.cli import main, parse_resource_arg
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
